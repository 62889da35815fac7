namespace Crsc.Configuration;

/// <summary>One configuration key: its YAML path, environment variable(s), command-line flag, and how it is applied.</summary>
internal sealed record ConfigKey(
    string YamlPath,
    string[] EnvironmentVariables,
    string Flag,
    string Description,
    Func<CrscOptions, string> Get,
    Func<CrscOptions, string, CrscOptions> Set);

/// <summary>The table of DESIGN.md §4 (plus logging), the single source for file, environment, flags and docs.</summary>
internal static class ConfigKeys
{
    public static readonly IReadOnlyList<ConfigKey> All =
    [
        new("nodeName", ["NODE_NAME"], "--node-name", "this node's name (default: host name)",
            o => o.NodeName, (o, v) => o with { NodeName = v }),
        new("kubeconfig", ["CRSC_KUBECONFIG", "KUBECONFIG"], "--kubeconfig", "kubeconfig file; empty = in-cluster",
            o => o.Kubeconfig, (o, v) => o with { Kubeconfig = v }),
        new("runtime.endpoint", ["CRSC_RUNTIME_ENDPOINT"], "--runtime-endpoint", "CRI socket of the container runtime",
            o => o.RuntimeEndpoint, (o, v) => o with { RuntimeEndpoint = v }),
        new("runtime.checkpointVia", ["CRSC_CHECKPOINT_VIA"], "--checkpoint-via", "cri or kubelet",
            o => o.CheckpointVia, (o, v) => o with { CheckpointVia = v }),
        new("kubelet.url", ["CRSC_KUBELET_URL"], "--kubelet-url", "the kubelet's HTTPS endpoint",
            o => o.KubeletUrl, (o, v) => o with { KubeletUrl = v }),
        new("kubelet.caFile", ["CRSC_KUBELET_CA_FILE"], "--kubelet-ca-file",
            "PEM CA bundle the kubelet's serving certificate must chain to (self-signed kubelet: /var/lib/kubelet/pki/kubelet.crt); empty = the cluster CA, else the system's",
            o => o.KubeletCaFile, (o, v) => o with { KubeletCaFile = v }),
        new("kubelet.serverName", ["CRSC_KUBELET_SERVER_NAME"], "--kubelet-server-name", "name the kubelet's serving certificate must carry; empty = nodeName",
            o => o.KubeletServerName, (o, v) => o with { KubeletServerName = v }),
        new("kubelet.checkpointDir", ["CRSC_KUBELET_CHECKPOINT_DIR"], "--kubelet-checkpoint-dir", "the kubelet's checkpoint directory: archives it names must be files directly inside",
            o => o.KubeletCheckpointDir, (o, v) => o with { KubeletCheckpointDir = v }),
        new("kubelet.allowHttp", ["CRSC_KUBELET_ALLOW_HTTP"], "--kubelet-allow-http", "true: accept an http:// kubelet.url (tests only)",
            o => o.KubeletAllowHttp, (o, v) => o with { KubeletAllowHttp = v }),
        new("stateDir", ["CRSC_STATE_DIR"], "--state-dir", "schedules, outbox, node state",
            o => o.StateDir, (o, v) => o with { StateDir = v }),
        new("checkpointDir", ["CRSC_CHECKPOINT_DIR"], "--checkpoint-dir", "the archive store",
            o => o.CheckpointDir, (o, v) => o with { CheckpointDir = v }),
        new("stagingDir", ["CRSC_STAGING_DIR"], "--staging-dir", "in-flight archives",
            o => o.StagingDir, (o, v) => o with { StagingDir = v }),
        new("manifestsDir", ["CRSC_MANIFESTS_DIR"], "--manifests-dir", "active static pods (read by the kubelet)",
            o => o.ManifestsDir, (o, v) => o with { ManifestsDir = v }),
        new("inactiveManifestsDir", ["CRSC_INACTIVE_MANIFESTS_DIR"], "--inactive-manifests-dir", "inactive static-pod checkpoints",
            o => o.InactiveManifestsDir, (o, v) => o with { InactiveManifestsDir = v }),
        new("checkpointSecretsDir", ["CRSC_CHECKPOINT_SECRETS_DIR"], "--checkpoint-secrets-dir", "Secrets saved for static-pod checkpoints",
            o => o.CheckpointSecretsDir, (o, v) => o with { CheckpointSecretsDir = v }),
        new("checkpointConfigMapsDir", ["CRSC_CHECKPOINT_CONFIGMAPS_DIR"], "--checkpoint-configmaps-dir", "ConfigMaps saved for static-pod checkpoints",
            o => o.CheckpointConfigMapsDir, (o, v) => o with { CheckpointConfigMapsDir = v }),
        new("socket", ["CRSC_SOCKET"], "--socket", "the node API's Unix socket (root only)",
            o => o.Socket, (o, v) => o with { Socket = v }),
        new("metrics.address", ["CRSC_METRICS_ADDRESS"], "--metrics-address", "host:port for metrics and health over TCP; empty = off",
            o => o.MetricsAddress, (o, v) => o with { MetricsAddress = v }),
        new("images.listen", ["CRSC_IMAGES_LISTEN"], "--images-listen", "host:port of the read-only OCI endpoint serving checkpoint images; empty = off",
            o => o.ImagesListen, (o, v) => o with { ImagesListen = v }),
        new("images.advertise", ["CRSC_IMAGES_ADVERTISE"], "--images-advertise", "host:port put in checkpoint image references (default: images.listen)",
            o => o.ImagesAdvertise, (o, v) => o with { ImagesAdvertise = v }),
        new("namespace", ["CRSC_NAMESPACE"], "--namespace", "namespace of the Leases (the leader's and each node agent's) and the daemon's Events",
            o => o.Namespace, (o, v) => o with { Namespace = v }),
        new("log.format", ["CRSC_LOG_FORMAT"], "--log-format", "auto, console, json or journald",
            o => o.LogFormat, (o, v) => o with { LogFormat = v }),
        new("log.level", ["CRSC_LOG_LEVEL"], "--log-level", "trace, debug, information, warning or error",
            o => o.LogLevel, (o, v) => o with { LogLevel = v }),
        new("images.tlsCertFile", ["CRSC_IMAGES_TLS_CERT_FILE"], "--images-tls-cert-file", "PEM certificate the image endpoint serves TLS with (required beyond loopback)",
            o => o.ImagesTlsCertFile, (o, v) => o with { ImagesTlsCertFile = v }),
        new("images.tlsKeyFile", ["CRSC_IMAGES_TLS_KEY_FILE"], "--images-tls-key-file", "PEM private key of images.tlsCertFile (0600)",
            o => o.ImagesTlsKeyFile, (o, v) => o with { ImagesTlsKeyFile = v }),
        new("images.registry", ["CRSC_IMAGES_REGISTRY"], "--images-registry", "host[:port][/prefix] of a registry to push checkpoint images to; empty = none",
            o => o.ImagesRegistry, (o, v) => o with { ImagesRegistry = v }),
        new("images.registryAuthFile", ["CRSC_IMAGES_REGISTRY_AUTH_FILE"], "--images-registry-auth-file", "docker-config JSON with the registry's credentials (mode 0600); empty = anonymous",
            o => o.ImagesRegistryAuthFile, (o, v) => o with { ImagesRegistryAuthFile = v }),
        new("images.registryInsecure", ["CRSC_IMAGES_REGISTRY_INSECURE"], "--images-registry-insecure", "true: plain HTTP to the registry",
            o => o.ImagesRegistryInsecure, (o, v) => o with { ImagesRegistryInsecure = v }),
        new("outbox.maxBytes", ["CRSC_OUTBOX_MAX_BYTES"], "--outbox-max-bytes", "bound of the on-disk outbox of writes waiting for the API server, in bytes",
            o => o.OutboxMaxBytes, (o, v) => o with { OutboxMaxBytes = v }),
        new("nodeAgent.absentAfter", ["CRSC_NODE_AGENT_ABSENT_AFTER"], "--node-agent-absent-after",
            "how long a node's crsc may go without renewing its Lease before the leader lets its deleted checkpoints go (their archives stay on that node); at least 1m",
            o => o.NodeAgentAbsentAfter, (o, v) => o with { NodeAgentAbsentAfter = v }),
    ];

    public static ConfigKey? ByYamlPath(string path) => All.FirstOrDefault(k => k.YamlPath == path);
    public static ConfigKey? ByFlag(string flag) => All.FirstOrDefault(k => k.Flag == flag);
}

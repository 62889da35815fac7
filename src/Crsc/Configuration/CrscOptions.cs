namespace Crsc.Configuration;

/// <summary>
/// The daemon's effective configuration: the one option tree of DESIGN.md §4, after the file, the
/// environment and the flags were applied (in that order). Key names are stable; tooling relies on them.
/// </summary>
public sealed record CrscOptions
{
    public string NodeName { get; init; } = DefaultNodeName();
    /// <summary>Empty = in-cluster (service account), or none when not running in a cluster.</summary>
    public string Kubeconfig { get; init; } = "";
    public string RuntimeEndpoint { get; init; } = "unix:///var/run/crio/crio.sock";
    /// <summary><c>cri</c> (default) or <c>kubelet</c>.</summary>
    public string CheckpointVia { get; init; } = "cri";
    public string KubeletUrl { get; init; } = "https://127.0.0.1:10250";
    /// <summary>
    /// PEM bundle the kubelet's serving certificate must chain to; empty = the cluster CA the daemon trusts for its API
    /// server (the kubeconfig's, else the in-cluster service account's <c>ca.crt</c>), else the system's trust store.
    /// </summary>
    public string KubeletCaFile { get; init; } = "";
    /// <summary>The name the kubelet's serving certificate must carry; empty = <see cref="NodeName"/>.</summary>
    public string KubeletServerName { get; init; } = "";
    /// <summary>Where the kubelet writes checkpoint archives: the only place an archive path it answers may point.</summary>
    public string KubeletCheckpointDir { get; init; } = "/var/lib/kubelet/checkpoints";
    /// <summary><c>true</c>: an <c>http://</c> <see cref="KubeletUrl"/> is accepted (tests only); <c>false</c> (default).</summary>
    public string KubeletAllowHttp { get; init; } = "false";

    public bool KubeletHttpAllowed => string.Equals(KubeletAllowHttp, "true", StringComparison.OrdinalIgnoreCase);

    /// <summary><see cref="KubeletServerName"/>, else the node's name (kubelet certificates name the node).</summary>
    public string EffectiveKubeletServerName => KubeletServerName.Length > 0 ? KubeletServerName : NodeName;
    public string StateDir { get; init; } = "/var/lib/crsc/state";
    public string CheckpointDir { get; init; } = "/var/lib/crsc/checkpoints";
    public string StagingDir { get; init; } = "/var/lib/crsc/staging";
    public string ManifestsDir { get; init; } = "/etc/kubernetes/manifests";
    public string InactiveManifestsDir { get; init; } = "/etc/kubernetes/inactive-manifests";
    /// <summary>Secrets of static-pod checkpoints: <c>&lt;dir&gt;/&lt;ns&gt;/&lt;pod&gt;/&lt;secret&gt;/&lt;key&gt;</c> (0700/0600).</summary>
    public string CheckpointSecretsDir { get; init; } = "/etc/kubernetes/checkpoint-secrets";
    /// <summary>ConfigMaps of static-pod checkpoints: <c>&lt;dir&gt;/&lt;ns&gt;/&lt;pod&gt;/&lt;configmap&gt;/&lt;key&gt;</c>.</summary>
    public string CheckpointConfigMapsDir { get; init; } = "/etc/kubernetes/checkpoint-configmaps";
    public string Socket { get; init; } = "/run/crsc/crsc.sock";
    /// <summary><c>host:port</c> for /metrics, /healthz, /readyz over TCP; empty = off.</summary>
    public string MetricsAddress { get; init; } = "";
    /// <summary><c>host:port</c> of the embedded read-only OCI distribution endpoint serving checkpoint images; empty = off.</summary>
    public string ImagesListen { get; init; } = "127.0.0.1:5055";
    /// <summary><c>host:port</c> written into checkpoint image references; empty = <see cref="ImagesListen"/>.</summary>
    public string ImagesAdvertise { get; init; } = "";
    /// <summary>What image references name: <see cref="ImagesAdvertise"/>, else <see cref="ImagesListen"/>; empty when images are off.</summary>
    public string EffectiveImagesAdvertise => ImagesListen.Length == 0 ? "" : ImagesAdvertise.Length > 0 ? ImagesAdvertise : ImagesListen;
    /// <summary>Namespace of the Lease and of the daemon's own Events.</summary>
    public string Namespace { get; init; } = "crsc-system";
    /// <summary><c>auto</c> (journald under systemd, console on a terminal, JSON lines otherwise), <c>console</c>, <c>json</c>, <c>journald</c>.</summary>
    public string LogFormat { get; init; } = "auto";
    /// <summary><c>trace</c>, <c>debug</c>, <c>information</c>, <c>warning</c>, <c>error</c>.</summary>
    public string LogLevel { get; init; } = "information";
    /// <summary>The image of the interceptor sidecar (a crsc image); empty = <c>ghcr.io/crsc-io/crsc:&lt;this version&gt;</c>.</summary>
    public string InterceptorImage { get; init; } = "";
    /// <summary><c>host[:port][/prefix]</c> of a registry checkpoint images are pushed to; empty = none.</summary>
    public string ImagesRegistry { get; init; } = "";
    /// <summary>docker-config-style JSON with the registry's credentials (0600); empty = anonymous.</summary>
    public string ImagesRegistryAuthFile { get; init; } = "";
    /// <summary><c>true</c>: plain HTTP to the registry; <c>false</c> (default): HTTPS.</summary>
    public string ImagesRegistryInsecure { get; init; } = "false";
    /// <summary>
    /// What <see cref="ImagesRegistry"/> is for: <c>publish</c> (default): every checkpoint image is pushed there and its
    /// reference names the registry; <c>replicate</c>: the image endpoint publishes, and the checkpoints of schedules with
    /// <c>replicate: Registry</c> are copied to the registry in the background.
    /// </summary>
    public string ImagesRegistryMode { get; init; } = "publish";
    /// <summary>PEM certificate (chain) the image endpoint serves TLS with; required when it listens beyond loopback.</summary>
    public string ImagesTlsCertFile { get; init; } = "";
    /// <summary>PEM private key of <see cref="ImagesTlsCertFile"/> (0600, owned by crsc's user).</summary>
    public string ImagesTlsKeyFile { get; init; } = "";

    /// <summary>
    /// <c>&lt;namespace&gt;/&lt;name&gt;</c> of a Secret whose data key <c>key</c> holds the crsc key (64 hex digits) the
    /// node agents of a cluster share, so that one node verifies another's manifests and pull tokens; empty (default) =
    /// the node-local key only.
    /// </summary>
    public string SecurityKeySecret { get; init; } = "";

    /// <summary>Bound of the outbox under <see cref="StateDir"/> (bytes of records waiting for the API server).</summary>
    public string OutboxMaxBytes { get; init; } = "67108864";

    /// <summary><see cref="OutboxMaxBytes"/> as a number (validated at start).</summary>
    public long OutboxMaxBytesValue => long.TryParse(OutboxMaxBytes, System.Globalization.NumberStyles.None,
        System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : 64L * 1024 * 1024;

    /// <summary>
    /// How long a node's agent may go without renewing its presence Lease (while its Node is still there) before the
    /// leader removes the archive finalizer of that node's deleted ContainerCheckpoints, leaving their archives on the node.
    /// A Go duration with a unit, at least <see cref="MinNodeAgentAbsentAfter"/>.
    /// </summary>
    public string NodeAgentAbsentAfter { get; init; } = "10m";

    /// <summary>Three renewals of the node agent's Lease (every 20 s): one missed renewal never lets anything go.</summary>
    public static readonly TimeSpan MinNodeAgentAbsentAfter = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How long after a lost pod's newest checkpoint its replacement is still restored from it (a Go duration with a
    /// unit, more than zero): the pods of a node whose Node is gone or not Ready.
    /// </summary>
    public string NodeAgentLostRestoreWindow { get; init; } = "30m";

    /// <summary><see cref="NodeAgentLostRestoreWindow"/> as a duration (validated at start).</summary>
    public TimeSpan NodeAgentLostRestoreWindowValue =>
        ConfigValidator.TryParseDurationWithUnit(NodeAgentLostRestoreWindow, out var v) && v > TimeSpan.Zero ? v : TimeSpan.FromMinutes(30);

    /// <summary><see cref="NodeAgentAbsentAfter"/> as a duration (validated at start).</summary>
    public TimeSpan NodeAgentAbsentAfterValue => ConfigValidator.TryParseDurationWithUnit(NodeAgentAbsentAfter, out var v) ? v : TimeSpan.FromMinutes(10);

    /// <summary>
    /// How long the leader's Lease may go without being seen to change before each node's agent acts for its own pods'
    /// failures in the leader's place (issue 16), until a leader renews it again. A Go duration with a unit, at least
    /// <see cref="MinLeaderAbsentAfter"/>.
    /// </summary>
    public string LeaderAbsentAfter { get; init; } = "3s";

    /// <summary>The leader renews every 2 s: a shorter threshold would take a leader between two renewals for absent.</summary>
    public static readonly TimeSpan MinLeaderAbsentAfter = TimeSpan.FromSeconds(3);

    /// <summary><see cref="LeaderAbsentAfter"/> as a duration (validated at start).</summary>
    public TimeSpan LeaderAbsentAfterValue => ConfigValidator.TryParseDurationWithUnit(LeaderAbsentAfter, out var v) ? v : TimeSpan.FromSeconds(3);

    /// <summary>
    /// Where <c>state.json</c> (is this node going away, and why) is published for pods, which mount it read-only through
    /// a hostPath; created 0755 when missing, left as it is when it exists.
    /// </summary>
    public string NodeStateDirectory { get; init; } = "/run/crsc/node-state";

    /// <summary>Comma-separated taint keys that mean the node is going away; empty = none (a cordon still counts).</summary>
    public string NodeStateDrainTaints { get; init; } = string.Join(",", Crsc.Controllers.Nodes.NodeDisruptionOptions.DefaultDrainTaints);

    /// <summary><see cref="NodeStateDrainTaints"/> as a list.</summary>
    public IReadOnlyList<string> DrainTaintList =>
        [.. NodeStateDrainTaints.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];

    /// <summary><c>true</c> (default): hold a logind delay inhibitor and checkpoint the managed containers at shutdown.</summary>
    public string ShutdownCheckpoint { get; init; } = "true";

    public bool ShutdownCheckpointEnabled => string.Equals(ShutdownCheckpoint, "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Checkpoints at a time at shutdown and drain (1-64).</summary>
    public string ShutdownParallelism { get; init; } = "4";

    public int ShutdownParallelismValue => int.TryParse(ShutdownParallelism, System.Globalization.NumberStyles.None,
        System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : 4;

    /// <summary>
    /// How long after a drain or shutdown checkpoint a new pod of its workload is still restored from it (a Go duration
    /// with a unit, more than zero).
    /// </summary>
    public string ShutdownRestoreWindow { get; init; } = "15m";

    /// <summary><see cref="ShutdownRestoreWindow"/> as a duration (validated at start).</summary>
    public TimeSpan ShutdownRestoreWindowValue =>
        ConfigValidator.TryParseDurationWithUnit(ShutdownRestoreWindow, out var v) && v > TimeSpan.Zero ? v : TimeSpan.FromMinutes(15);

    /// <summary>The D-Bus address of logind's bus; empty = the system bus.</summary>
    public string ShutdownBusAddress { get; init; } = "";

    public bool RegistryInsecure => string.Equals(ImagesRegistryInsecure, "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>What the registry does for checkpoints on this node (none when <see cref="ImagesRegistry"/> is empty).</summary>
    public Crsc.Controllers.Replication.CheckpointRegistryMode RegistryModeValue =>
        ImagesRegistry.Length == 0 ? Crsc.Controllers.Replication.CheckpointRegistryMode.None
        : ImagesRegistryMode == "replicate" ? Crsc.Controllers.Replication.CheckpointRegistryMode.Replicate
        : Crsc.Controllers.Replication.CheckpointRegistryMode.Publish;

    public static string DefaultNodeName()
    {
        try { return Environment.MachineName.ToLowerInvariant(); }
        catch (InvalidOperationException) { return "localhost"; }
    }
}

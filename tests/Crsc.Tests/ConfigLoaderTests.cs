using Crsc.Configuration;
using Crsc.Testing;

namespace Crsc.Tests;

public sealed class ConfigLoaderTests : IDisposable
{
    private readonly TempDir _dir = new();
    private static readonly Dictionary<string, string> NoEnv = [];
    private static readonly Dictionary<string, string> NoFlags = [];

    public void Dispose() => _dir.Dispose();

    private string Write(string yaml)
    {
        var path = _dir.Combine($"config-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, yaml);
        return path;
    }

    [Fact]
    public void Defaults_match_the_design_table()
    {
        // an absent default file means defaults, no error
        var r = ConfigLoader.Load(null, NoEnv, NoFlags, defaultPath: _dir.Combine("absent.yaml"));
        Assert.True(r.IsValid, string.Join("; ", r.Errors));
        var o = r.Options;
        Assert.Equal("unix:///var/run/crio/crio.sock", o.RuntimeEndpoint);
        Assert.Equal("cri", o.CheckpointVia);
        Assert.Equal("https://127.0.0.1:10250", o.KubeletUrl);
        Assert.Equal("/var/lib/crsc/state", o.StateDir);
        Assert.Equal("/var/lib/crsc/checkpoints", o.CheckpointDir);
        Assert.Equal("/etc/kubernetes/manifests", o.ManifestsDir);
        Assert.Equal("/etc/kubernetes/inactive-manifests", o.InactiveManifestsDir);
        Assert.Equal("/etc/kubernetes/checkpoint-secrets", o.CheckpointSecretsDir);
        Assert.Equal("/etc/kubernetes/checkpoint-configmaps", o.CheckpointConfigMapsDir);
        Assert.Equal("/run/crsc/crsc.sock", o.Socket);
        Assert.Equal("", o.MetricsAddress);
        Assert.Equal("127.0.0.1:5055", o.ImagesListen);
        Assert.Equal("", o.ImagesAdvertise);
        Assert.Equal("127.0.0.1:5055", o.EffectiveImagesAdvertise);
        Assert.Equal("crsc-system", o.Namespace);
        Assert.Equal("", o.Kubeconfig);
        Assert.Null(r.File);
        Assert.All(r.Sources.Values, s => Assert.Equal("default", s));
    }

    [Fact]
    public void Every_key_of_the_design_table_is_read_from_the_file_with_its_exact_name()
    {
        var kubeconfig = _dir.Combine("kubeconfig");
        var tls = TestCertificates.WriteSelfSigned(_dir.Path);
        File.WriteAllText(kubeconfig, "apiVersion: v1\nkind: Config\n");
        var path = Write($"""
            nodeName: node-a
            kubeconfig: {kubeconfig}
            runtime:
              endpoint: unix:///run/containerd/containerd.sock
              checkpointVia: kubelet
            kubelet:
              url: https://10.0.0.5:10250
            stateDir: /srv/crsc/state
            checkpointDir: /srv/crsc/checkpoints
            stagingDir: /srv/crsc/staging
            manifestsDir: /srv/k8s/manifests
            inactiveManifestsDir: /srv/k8s/inactive
            socket: /tmp/crsc-test.sock
            metrics:
              address: 127.0.0.1:9464
            images:
              listen: 0.0.0.0:5056
              advertise: node-a.example:5056
              tlsCertFile: {tls.CertFile}
              tlsKeyFile: {tls.KeyFile}
            namespace: crsc-test
            log:
              format: json
              level: debug
            """);
        var r = ConfigLoader.Load(path, NoEnv, NoFlags);
        Assert.True(r.IsValid, string.Join("; ", r.Errors));
        var o = r.Options;
        Assert.Equal("node-a", o.NodeName);
        Assert.Equal(kubeconfig, o.Kubeconfig);
        Assert.Equal("unix:///run/containerd/containerd.sock", o.RuntimeEndpoint);
        Assert.Equal("kubelet", o.CheckpointVia);
        Assert.Equal("https://10.0.0.5:10250", o.KubeletUrl);
        Assert.Equal("/srv/crsc/state", o.StateDir);
        Assert.Equal("/srv/crsc/checkpoints", o.CheckpointDir);
        Assert.Equal("/srv/crsc/staging", o.StagingDir);
        Assert.Equal("/srv/k8s/manifests", o.ManifestsDir);
        Assert.Equal("/srv/k8s/inactive", o.InactiveManifestsDir);
        Assert.Equal("/tmp/crsc-test.sock", o.Socket);
        Assert.Equal("127.0.0.1:9464", o.MetricsAddress);
        Assert.Equal("0.0.0.0:5056", o.ImagesListen);
        Assert.Equal("node-a.example:5056", o.ImagesAdvertise);
        Assert.Equal("node-a.example:5056", o.EffectiveImagesAdvertise);
        Assert.Equal("crsc-test", o.Namespace);
        Assert.Equal("json", o.LogFormat);
        Assert.Equal("debug", o.LogLevel);
        Assert.Equal($"{path}:4", r.Sources["runtime.endpoint"]);
    }

    [Fact]
    public void Environment_overrides_file_and_flags_override_environment()
    {
        var path = Write("nodeName: from-file\nnamespace: from-file\nsocket: /tmp/file.sock\n");
        var env = new Dictionary<string, string> { ["NODE_NAME"] = "from-env", ["CRSC_SOCKET"] = "/tmp/env.sock" };
        var flags = new Dictionary<string, string> { ["--socket"] = "/tmp/flag.sock" };
        var r = ConfigLoader.Load(path, env, flags);
        Assert.True(r.IsValid, string.Join("; ", r.Errors));
        Assert.Equal("from-env", r.Options.NodeName);
        Assert.Equal("from-file", r.Options.Namespace);
        Assert.Equal("/tmp/flag.sock", r.Options.Socket);
        Assert.Equal("env NODE_NAME", r.Sources["nodeName"]);
        Assert.Equal("flag --socket", r.Sources["socket"]);
    }

    [Fact]
    public void Every_environment_variable_of_the_design_table_is_honoured()
    {
        var kubeconfig = _dir.Combine("kc");
        File.WriteAllText(kubeconfig, "");
        var env = new Dictionary<string, string>
        {
            ["NODE_NAME"] = "n1",
            ["CRSC_KUBECONFIG"] = kubeconfig,
            ["CRSC_RUNTIME_ENDPOINT"] = "/run/x.sock",
            ["CRSC_CHECKPOINT_VIA"] = "kubelet",
            ["CRSC_KUBELET_URL"] = "https://127.0.0.2:10250",
            ["CRSC_STATE_DIR"] = "/s",
            ["CRSC_CHECKPOINT_DIR"] = "/c",
            ["CRSC_MANIFESTS_DIR"] = "/m",
            ["CRSC_INACTIVE_MANIFESTS_DIR"] = "/i",
            ["CRSC_CHECKPOINT_SECRETS_DIR"] = "/cs",
            ["CRSC_CHECKPOINT_CONFIGMAPS_DIR"] = "/cc",
            ["CRSC_SOCKET"] = "/tmp/s.sock",
            ["CRSC_METRICS_ADDRESS"] = "[::1]:9000",
            ["CRSC_NAMESPACE"] = "ns1",
            ["CRSC_IMAGES_LISTEN"] = "[::1]:5057",
            ["CRSC_IMAGES_ADVERTISE"] = "[::1]:5057",
        };
        var r = ConfigLoader.Load(null, env, NoFlags, defaultPath: _dir.Combine("absent.yaml"));
        Assert.True(r.IsValid, string.Join("; ", r.Errors));
        var o = r.Options;
        Assert.Equal(("n1", kubeconfig, "/run/x.sock", "kubelet", "https://127.0.0.2:10250"), (o.NodeName, o.Kubeconfig, o.RuntimeEndpoint, o.CheckpointVia, o.KubeletUrl));
        Assert.Equal(("/s", "/c", "/m", "/i", "/tmp/s.sock", "[::1]:9000", "ns1"), (o.StateDir, o.CheckpointDir, o.ManifestsDir, o.InactiveManifestsDir, o.Socket, o.MetricsAddress, o.Namespace));
        Assert.Equal(("[::1]:5057", "[::1]:5057"), (o.ImagesListen, o.ImagesAdvertise));
        Assert.Equal(("/cs", "/cc"), (o.CheckpointSecretsDir, o.CheckpointConfigMapsDir));
    }

    [Fact]
    public void KUBECONFIG_is_used_when_CRSC_KUBECONFIG_is_not_set_and_loses_to_it_when_it_is()
    {
        var a = _dir.Combine("a"); File.WriteAllText(a, "");
        var b = _dir.Combine("b"); File.WriteAllText(b, "");
        Assert.Equal(a, ConfigLoader.Load(null, new Dictionary<string, string> { ["KUBECONFIG"] = a }, NoFlags).Options.Kubeconfig);
        Assert.Equal(b, ConfigLoader.Load(null, new Dictionary<string, string> { ["KUBECONFIG"] = a, ["CRSC_KUBECONFIG"] = b }, NoFlags).Options.Kubeconfig);
    }

    [Fact]
    public void CRSC_CONFIG_picks_the_file_and_a_missing_explicit_file_is_an_error()
    {
        var path = Write("namespace: via-env-file\n");
        var r = ConfigLoader.Load(null, new Dictionary<string, string> { ["CRSC_CONFIG"] = path }, NoFlags);
        Assert.Equal("via-env-file", r.Options.Namespace);

        var missing = ConfigLoader.Load(_dir.Combine("nope.yaml"), NoEnv, NoFlags);
        var e = Assert.Single(missing.Errors);
        Assert.Equal("config", e.Key);
        Assert.Contains("nope.yaml", e.ToString());
        Assert.Contains("does not exist", e.ToString());
    }

    [Theory]
    [InlineData("runtime:\n  checkpointVia: crio\n", "runtime.checkpointVia", "crio")]
    [InlineData("runtime:\n  endpoint: tcp://1.2.3.4:10000\n", "runtime.endpoint", "tcp://1.2.3.4:10000")]
    [InlineData("kubelet:\n  url: not-a-url\n", "kubelet.url", "not-a-url")]
    [InlineData("kubelet:\n  url: http://127.0.0.1:10255\n", "kubelet.url", "http://127.0.0.1:10255")]
    [InlineData("kubelet:\n  allowHttp: sometimes\n", "kubelet.allowHttp", "sometimes")]
    [InlineData("kubelet:\n  checkpointDir: checkpoints\n", "kubelet.checkpointDir", "checkpoints")]
    [InlineData("kubelet:\n  checkpointDir: /var/lib/kubelet/../checkpoints\n", "kubelet.checkpointDir", "/var/lib/kubelet/../checkpoints")]
    [InlineData("kubelet:\n  checkpointDir: /var/lib/kubelet/checkpoints/\n", "kubelet.checkpointDir", "/var/lib/kubelet/checkpoints/")]
    [InlineData("kubelet:\n  checkpointDir: /\n", "kubelet.checkpointDir", "/")]
    [InlineData("kubelet:\n  caFile: ca.crt\n", "kubelet.caFile", "ca.crt")]
    [InlineData("runtime:\n  checkpointVia: kubelet\nkubelet:\n  caFile: /nonexistent/ca.crt\n", "kubelet.caFile", "/nonexistent/ca.crt")]
    [InlineData("kubelet:\n  serverName: Node_A\n", "kubelet.serverName", "Node_A")]
    [InlineData("stateDir: relative/dir\n", "stateDir", "relative/dir")]
    [InlineData("checkpointDir: /var/lib/../etc\n", "checkpointDir", "/var/lib/../etc")]
    [InlineData("socket: sock\n", "socket", "sock")]
    [InlineData("metrics:\n  address: 127.0.0.1:99999\n", "metrics.address", "127.0.0.1:99999")]
    [InlineData("metrics:\n  address: nonsense\n", "metrics.address", "nonsense")]
    [InlineData("namespace: Bad_NS\n", "namespace", "Bad_NS")]
    [InlineData("security:\n  keySecret: crsc-key\n", "security.keySecret", "crsc-key")]
    [InlineData("security:\n  keySecret: Crsc/crsc-key\n", "security.keySecret", "Crsc/crsc-key")]
    [InlineData("security:\n  keySecret: crsc-system/crsc_key\n", "security.keySecret", "crsc-system/crsc_key")]
    [InlineData("security:\n  keySecret: crsc-system/a/b\n", "security.keySecret", "crsc-system/a/b")]
    [InlineData("nodeName: NODE!\n", "nodeName", "NODE!")]
    [InlineData("log:\n  format: xml\n", "log.format", "xml")]
    [InlineData("log:\n  level: loud\n", "log.level", "loud")]
    [InlineData("kubeconfig: /nonexistent/kubeconfig\n", "kubeconfig", "/nonexistent/kubeconfig")]
    [InlineData("stagingDir: /var/lib/crsc/checkpoints/staging\n", "stagingDir", "/var/lib/crsc/checkpoints/staging")]
    [InlineData("inactiveManifestsDir: /etc/kubernetes/manifests\n", "inactiveManifestsDir", "/etc/kubernetes/manifests")]
    [InlineData("checkpointSecretsDir: secrets\n", "checkpointSecretsDir", "secrets")]
    [InlineData("checkpointSecretsDir: /etc/kubernetes/manifests\n", "checkpointSecretsDir", "/etc/kubernetes/manifests")]
    [InlineData("checkpointConfigMapsDir: /etc/../x\n", "checkpointConfigMapsDir", "/etc/../x")]
    [InlineData("checkpointConfigMapsDir: /etc/kubernetes/inactive-manifests\n", "checkpointConfigMapsDir", "/etc/kubernetes/inactive-manifests")]
    [InlineData("images:\n  listen: nonsense\n", "images.listen", "nonsense")]
    [InlineData("images:\n  listen: 127.0.0.1:70000\n", "images.listen", "127.0.0.1:70000")]
    [InlineData("images:\n  listen: 127.0.0.1:9464\nmetrics:\n  address: 127.0.0.1:9464\n", "images.listen", "127.0.0.1:9464")]
    [InlineData("images:\n  listen: 127.0.0.1:5055\n  advertise: 0.0.0.0:5055\n", "images.advertise", "0.0.0.0:5055")]
    [InlineData("images:\n  listen: 10.0.0.5:5055\n", "images.listen", "10.0.0.5:5055")]
    [InlineData("images:\n  listen: node-a.example:5055\n", "images.listen", "node-a.example:5055")]
    [InlineData("images:\n  listen: '[fd00::1]:5055'\n", "images.listen", "[fd00::1]:5055")]
    [InlineData("images:\n  tlsCertFile: /etc/crsc/tls.crt\n", "images.tlsCertFile", "/etc/crsc/tls.crt")]
    [InlineData("images:\n  tlsKeyFile: /etc/crsc/tls.key\n", "images.tlsKeyFile", "/etc/crsc/tls.key")]
    [InlineData("images:\n  advertise: http://10.0.0.5:5055\n", "images.advertise", "http://10.0.0.5:5055")]
    [InlineData("nodeState:\n  directory: run/node-state\n", "nodeState.directory", "run/node-state")]
    [InlineData("nodeState:\n  drainTaints: \"ToBeDeletedByClusterAutoscaler, bad key!\"\n", "nodeState.drainTaints", "bad key!")]
    [InlineData("shutdown:\n  checkpoint: \"yes\"\n", "shutdown.checkpoint", "yes")]
    [InlineData("shutdown:\n  parallelism: \"0\"\n", "shutdown.parallelism", "0")]
    [InlineData("shutdown:\n  parallelism: \"65\"\n", "shutdown.parallelism", "65")]
    [InlineData("images:\n  listen: \"\"\n  advertise: 10.0.0.5:5055\n", "images.advertise", "10.0.0.5:5055")]
    [InlineData("images:\n  registry: registry.example\n  registryMode: mirror\n", "images.registryMode", "mirror")]
    [InlineData("images:\n  registryMode: replicate\n", "images.registryMode", "replicate")]
    public void A_bad_value_is_named_with_its_key_value_and_source(string yaml, string key, string value)
    {
        var path = Write(yaml);
        var r = ConfigLoader.Load(path, NoEnv, NoFlags);
        var e = Assert.Single(r.Errors);
        Assert.Equal(key, e.Key);
        Assert.Equal(value, e.Value);
        Assert.StartsWith(path, e.Source);
        Assert.Contains(key, e.ToString());
        Assert.Contains(value, e.ToString());
    }

    [Theory]
    [InlineData("10.0.0.5:5055", "")]
    [InlineData("0.0.0.0:5055", "node-a.example:5055")]
    public void The_image_endpoint_listens_beyond_loopback_only_with_TLS(string listen, string advertise)
    {
        var tls = TestCertificates.WriteSelfSigned(_dir.Path);
        var yaml = $"images:\n  listen: {listen}\n" + (advertise.Length > 0 ? $"  advertise: {advertise}\n" : "");
        var without = ConfigLoader.Load(Write(yaml), NoEnv, NoFlags);
        var e = Assert.Single(without.Errors);
        Assert.Equal("images.listen", e.Key);
        Assert.Contains("without TLS", e.ToString());

        var with = ConfigLoader.Load(Write(yaml + $"  tlsCertFile: {tls.CertFile}\n  tlsKeyFile: {tls.KeyFile}\n"), NoEnv, NoFlags);
        Assert.True(with.IsValid, string.Join("; ", with.Errors));
    }

    [Fact]
    public void A_TLS_key_others_can_read_or_behind_a_link_or_not_matching_is_refused_naming_the_key()
    {
        var tls = TestCertificates.WriteSelfSigned(_dir.Path);
        string Yaml(string cert, string key) => $"images:\n  listen: 10.0.0.5:5055\n  tlsCertFile: {cert}\n  tlsKeyFile: {key}\n";

        File.SetUnixFileMode(tls.KeyFile, (UnixFileMode)0b110_100_100);
        var open = Assert.Single(ConfigLoader.Load(Write(Yaml(tls.CertFile, tls.KeyFile)), NoEnv, NoFlags).Errors);
        Assert.Equal(("images.tlsKeyFile", tls.KeyFile), (open.Key, open.Value));
        Assert.Contains("accessible by group or others", open.ToString());
        Assert.Equal((UnixFileMode)0b110_100_100, File.GetUnixFileMode(tls.KeyFile)); // left as it was
        File.SetUnixFileMode(tls.KeyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var link = _dir.Combine("link.key");
        File.CreateSymbolicLink(link, tls.KeyFile);
        var linked = Assert.Single(ConfigLoader.Load(Write(Yaml(tls.CertFile, link)), NoEnv, NoFlags).Errors);
        Assert.Equal("images.tlsKeyFile", linked.Key);
        Assert.Contains("symbolic link", linked.ToString());

        var other = TestCertificates.WriteSelfSigned(_dir.Path, "other");
        var mismatch = Assert.Single(ConfigLoader.Load(Write(Yaml(tls.CertFile, other.KeyFile)), NoEnv, NoFlags).Errors);
        Assert.Equal("images.tlsCertFile", mismatch.Key);
        Assert.Contains("not a PEM certificate and its private key", mismatch.ToString());

        var garbage = _dir.Combine("garbage.crt");
        File.WriteAllText(garbage, "not a certificate");
        Assert.Equal("images.tlsCertFile", Assert.Single(ConfigLoader.Load(Write(Yaml(garbage, tls.KeyFile)), NoEnv, NoFlags).Errors).Key);
    }

    [Fact]
    public void An_http_kubelet_url_is_refused_naming_kubelet_url_unless_kubelet_allowHttp_is_true()
    {
        var refused = ConfigLoader.Load(null, new Dictionary<string, string> { ["CRSC_KUBELET_URL"] = "http://127.0.0.1:10255" }, NoFlags,
            defaultPath: _dir.Combine("absent.yaml"));
        var e = Assert.Single(refused.Errors);
        Assert.Equal("kubelet.url", e.Key);
        Assert.Equal("env CRSC_KUBELET_URL", e.Source);
        Assert.Contains("kubelet.allowHttp", e.Problem);

        var allowed = ConfigLoader.Load(null, new Dictionary<string, string> { ["CRSC_KUBELET_URL"] = "http://127.0.0.1:10255" },
            new Dictionary<string, string> { ["--kubelet-allow-http"] = "true" }, defaultPath: _dir.Combine("absent.yaml"));
        Assert.True(allowed.IsValid, string.Join("; ", allowed.Errors));
        Assert.True(allowed.Options.KubeletHttpAllowed);
    }

    [Fact]
    public void The_kubelet_keys_have_safe_defaults_and_are_read_from_file_environment_and_flags()
    {
        var defaults = ConfigLoader.Load(null, NoEnv, NoFlags, defaultPath: _dir.Combine("absent.yaml")).Options;
        Assert.Equal(("", "", "/var/lib/kubelet/checkpoints", "false"),
            (defaults.KubeletCaFile, defaults.KubeletServerName, defaults.KubeletCheckpointDir, defaults.KubeletAllowHttp));
        Assert.Equal(defaults.NodeName, defaults.EffectiveKubeletServerName);

        var ca = _dir.Combine("kubelet.crt");
        using (var pki = Crsc.Testing.Kube.TestPki.Create()) File.WriteAllText(ca, pki.CaPem);
        var r = ConfigLoader.Load(Write($"runtime:\n  checkpointVia: kubelet\nkubelet:\n  caFile: {ca}\n"),
            new Dictionary<string, string> { ["CRSC_KUBELET_SERVER_NAME"] = "node-a.example" },
            new Dictionary<string, string> { ["--kubelet-checkpoint-dir"] = _dir.Path });
        Assert.True(r.IsValid, string.Join("; ", r.Errors));
        Assert.Equal((ca, "node-a.example", _dir.Path), (r.Options.KubeletCaFile, r.Options.EffectiveKubeletServerName, r.Options.KubeletCheckpointDir));
    }

    [Fact]
    public void A_kubelet_ca_file_without_a_certificate_is_refused_in_kubelet_mode()
    {
        var ca = _dir.Combine("empty.crt");
        File.WriteAllText(ca, "not a certificate\n");
        var r = ConfigLoader.Load(Write($"runtime:\n  checkpointVia: kubelet\nkubelet:\n  caFile: {ca}\n"), NoEnv, NoFlags);
        var e = Assert.Single(r.Errors);
        Assert.Equal(("kubelet.caFile", ca), (e.Key, e.Value));
        Assert.Contains("no PEM certificate", e.Problem);
    }

    [Fact]
    public void A_kubelet_checkpoint_dir_reached_through_a_symbolic_link_is_refused_in_kubelet_mode()
    {
        var real = Directory.CreateDirectory(_dir.Combine("real", "checkpoints")).FullName;
        var link = _dir.Combine("link");
        Directory.CreateSymbolicLink(link, _dir.Combine("real"));
        foreach (var configured in new[] { Path.Join(link, "checkpoints"), link })
        {
            var r = ConfigLoader.Load(Write($"runtime:\n  checkpointVia: kubelet\nkubelet:\n  checkpointDir: {configured}\n"), NoEnv, NoFlags);
            var e = Assert.Single(r.Errors);
            Assert.Equal(("kubelet.checkpointDir", configured), (e.Key, e.Value));
            Assert.Contains($"symbolic link ({link} -> ", e.Problem);
        }

        var file = _dir.Combine("file");
        File.WriteAllText(file, "");
        var notDir = ConfigLoader.Load(Write($"runtime:\n  checkpointVia: kubelet\nkubelet:\n  checkpointDir: {file}/checkpoints\n"), NoEnv, NoFlags);
        Assert.Equal("kubelet.checkpointDir", Assert.Single(notDir.Errors).Key);

        // the real directory, or one the kubelet has not made yet, is fine
        Assert.True(ConfigLoader.Load(Write($"runtime:\n  checkpointVia: kubelet\nkubelet:\n  checkpointDir: {real}\n"), NoEnv, NoFlags).IsValid);
        Assert.True(ConfigLoader.Load(Write($"runtime:\n  checkpointVia: kubelet\nkubelet:\n  checkpointDir: {real}/later\n"), NoEnv, NoFlags).IsValid);
    }

    [Fact]
    public void An_empty_images_listen_turns_the_image_endpoint_off()
    {
        var r = ConfigLoader.Load(Write("images:\n  listen: \"\"\n"), NoEnv, NoFlags);
        Assert.True(r.IsValid, string.Join("; ", r.Errors));
        Assert.Equal("", r.Options.ImagesListen);
        Assert.Equal("", r.Options.EffectiveImagesAdvertise);
        var flags = ConfigLoader.Load(null, NoEnv, new Dictionary<string, string> { ["--images-listen"] = "" }, defaultPath: _dir.Combine("absent.yaml"));
        Assert.True(flags.IsValid, string.Join("; ", flags.Errors));
        Assert.Equal("", flags.Options.ImagesListen);
    }

    [Fact]
    public void A_bad_value_from_the_environment_names_the_variable()
    {
        var r = ConfigLoader.Load(null, new Dictionary<string, string> { ["CRSC_CHECKPOINT_VIA"] = "docker" }, NoFlags);
        var e = Assert.Single(r.Errors);
        Assert.Equal("env CRSC_CHECKPOINT_VIA", e.Source);
    }

    private string AuthFile(string json, UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite)
    {
        var path = _dir.Combine($"auth-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        File.SetUnixFileMode(path, mode);
        return path;
    }

    private static string AuthJson(string host) =>
        "{\"auths\":{\"" + host + "\":{\"auth\":\"" + Convert.ToBase64String("user:pw"u8.ToArray()) + "\"}}}";

    [Fact]
    public void Registry_keys_default_to_no_registry_anonymous_and_tls()
    {
        var o = ConfigLoader.Load(null, NoEnv, NoFlags, defaultPath: _dir.Combine("absent.yaml")).Options;
        Assert.Equal(("", "", "false", false), (o.ImagesRegistry, o.ImagesRegistryAuthFile, o.ImagesRegistryInsecure, o.RegistryInsecure));
    }

    [Fact]
    public void Registry_keys_are_read_from_the_file_with_their_exact_names()
    {
        var auth = AuthFile(AuthJson("registry.example:5000"));
        var path = Write($"""
            images:
              registry: registry.example:5000/crsc
              registryAuthFile: {auth}
              registryInsecure: true
            """);
        var r = ConfigLoader.Load(path, NoEnv, NoFlags);
        Assert.True(r.IsValid, string.Join("; ", r.Errors));
        Assert.Equal("registry.example:5000/crsc", r.Options.ImagesRegistry);
        Assert.Equal(auth, r.Options.ImagesRegistryAuthFile);
        Assert.True(r.Options.RegistryInsecure);
        Assert.Equal($"{path}:2", r.Sources["images.registry"]);
    }

    [Fact]
    public void Registry_keys_are_read_from_the_environment_and_flags()
    {
        var auth = AuthFile(AuthJson("https://10.0.0.9:5000/v2/"));
        var env = new Dictionary<string, string>
        {
            ["CRSC_IMAGES_REGISTRY"] = "10.0.0.9:5000",
            ["CRSC_IMAGES_REGISTRY_AUTH_FILE"] = auth,
            ["CRSC_IMAGES_REGISTRY_INSECURE"] = "true",
        };
        var r = ConfigLoader.Load(null, env, NoFlags, defaultPath: _dir.Combine("absent.yaml"));
        Assert.True(r.IsValid, string.Join("; ", r.Errors));
        Assert.Equal(("10.0.0.9:5000", auth, true), (r.Options.ImagesRegistry, r.Options.ImagesRegistryAuthFile, r.Options.RegistryInsecure));
        Assert.Equal("env CRSC_IMAGES_REGISTRY_AUTH_FILE", r.Sources["images.registryAuthFile"]);

        var flags = new Dictionary<string, string> { ["--images-registry"] = "other.example/x", ["--images-registry-insecure"] = "false", ["--images-registry-auth-file"] = "" };
        var f = ConfigLoader.Load(null, env, flags, defaultPath: _dir.Combine("absent.yaml"));
        Assert.True(f.IsValid, string.Join("; ", f.Errors));
        Assert.Equal(("other.example/x", "", false), (f.Options.ImagesRegistry, f.Options.ImagesRegistryAuthFile, f.Options.RegistryInsecure));
    }

    [Theory]
    [InlineData("images:\n  registry: https://registry.example\n", "images.registry", "https://registry.example", "without a scheme")]
    [InlineData("images:\n  registry: registry.example:70000\n", "images.registry", "registry.example:70000", "between 1 and 65535")]
    [InlineData("images:\n  registry: registry.example/Crsc\n", "images.registry", "registry.example/Crsc", "repository path")]
    [InlineData("images:\n  registry: reg istry\n", "images.registry", "reg istry", "host[:port]")]
    [InlineData("images:\n  registryInsecure: yes-please\n", "images.registryInsecure", "yes-please", "true or false")]
    [InlineData("interceptor:\n  image: https://registry.example/crsc:1\n", "interceptor.image", "https://registry.example/crsc:1", "not an image reference")]
    [InlineData("interceptor:\n  image: 'crsc :1'\n", "interceptor.image", "crsc :1", "not an image reference")]
    [InlineData("images:\n  registryAuthFile: auth.json\n", "images.registryAuthFile", "auth.json", "absolute path")]
    [InlineData("images:\n  registryAuthFile: /nonexistent/auth.json\n", "images.registryAuthFile", "/nonexistent/auth.json", "does not exist")]
    public void A_bad_registry_value_is_named_with_its_key(string yaml, string key, string value, string problem)
    {
        var r = ConfigLoader.Load(Write(yaml), NoEnv, NoFlags);
        var e = Assert.Single(r.Errors);
        Assert.Equal((key, value), (e.Key, e.Value));
        Assert.Contains(problem, e.Problem);
    }

    [Fact]
    public void A_registry_auth_file_readable_by_others_is_refused_naming_its_mode()
    {
        var auth = AuthFile(AuthJson("registry.example"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var r = ConfigLoader.Load(null, new Dictionary<string, string> { ["CRSC_IMAGES_REGISTRY"] = "registry.example", ["CRSC_IMAGES_REGISTRY_AUTH_FILE"] = auth }, NoFlags,
            defaultPath: _dir.Combine("absent.yaml"));
        var e = Assert.Single(r.Errors);
        Assert.Equal("images.registryAuthFile", e.Key);
        Assert.Contains("0644", e.Problem);
        Assert.Contains("0600", e.Problem);
        Assert.Equal("env CRSC_IMAGES_REGISTRY_AUTH_FILE", e.Source);
    }

    [Theory]
    [InlineData("{not json", "not valid JSON")]
    [InlineData("{\"credsStore\":\"x\"}", "no \"auths\"")]
    [InlineData("{\"auths\":{\"registry.example\":{\"auth\":\"!!\"}}}", "not base64")]
    [InlineData("{\"auths\":{\"registry.example\":{\"email\":\"a@b\"}}}", "neither")]
    [InlineData("{\"auths\":{\"other.example\":{\"username\":\"u\",\"password\":\"p\"}}}", "no entry for registry registry.example (it has: other.example)")]
    public void A_registry_auth_file_that_cannot_be_used_is_an_error_saying_why(string json, string problem)
    {
        var auth = AuthFile(json);
        var r = ConfigLoader.Load(null, new Dictionary<string, string> { ["CRSC_IMAGES_REGISTRY"] = "registry.example/crsc", ["CRSC_IMAGES_REGISTRY_AUTH_FILE"] = auth }, NoFlags,
            defaultPath: _dir.Combine("absent.yaml"));
        var e = Assert.Single(r.Errors);
        Assert.Equal(("images.registryAuthFile", auth), (e.Key, e.Value));
        Assert.Contains(problem, e.Problem);
    }

    [Fact]
    public void Unknown_keys_are_errors_naming_the_key_and_line()
    {
        var path = Write("runtime:\n  endpont: unix:///x.sock\n");
        var e = Assert.Single(ConfigLoader.Load(path, NoEnv, NoFlags).Errors);
        Assert.Equal("runtime.endpont", e.Key);
        Assert.Contains("line 2", e.Problem);
        Assert.Contains("runtime.endpoint", e.Problem); // the list of known keys helps spot the typo
    }

    [Theory]
    [InlineData("runtime: [a, b]\n", "runtime")]
    [InlineData("nodeName: {a: b}\n", "nodeName")]
    [InlineData("- a\n- b\n", "config")]
    [InlineData("a: b\n---\nc: d\n", "config")]
    [InlineData("nodeName: [unclosed\n", "config")]
    public void Malformed_yaml_is_an_error_not_an_exception(string yaml, string key)
    {
        var r = ConfigLoader.Load(Write(yaml), NoEnv, NoFlags);
        Assert.False(r.IsValid);
        Assert.Contains(r.Errors, e => e.Key == key || e.Key.StartsWith(key + ".", StringComparison.Ordinal));
    }

    [Fact]
    public void An_empty_file_and_null_values_mean_defaults()
    {
        Assert.True(ConfigLoader.Load(Write(""), NoEnv, NoFlags).IsValid);
        var r = ConfigLoader.Load(Write("namespace: ~\nmetrics:\n  address: null\n"), NoEnv, NoFlags);
        Assert.True(r.IsValid, string.Join("; ", r.Errors));
        Assert.Equal("crsc-system", r.Options.Namespace);
    }

    [Fact]
    public void Several_errors_are_all_reported_at_once()
    {
        var r = ConfigLoader.Load(Write("namespace: X\nsocket: rel\nruntime:\n  checkpointVia: y\n"), NoEnv, NoFlags);
        Assert.Equal(["namespace", "runtime.checkpointVia", "socket"], r.Errors.Select(e => e.Key).Order().ToArray());
    }

    [Fact]
    public void Node_agent_absent_after_defaults_to_ten_minutes_and_comes_from_file_environment_and_flag()
    {
        var defaults = ConfigLoader.Load(null, NoEnv, NoFlags, defaultPath: _dir.Combine("absent.yaml")).Options;
        Assert.Equal(("10m", TimeSpan.FromMinutes(10)), (defaults.NodeAgentAbsentAfter, defaults.NodeAgentAbsentAfterValue));

        var path = Write("nodeAgent:\n  absentAfter: 1h30m\n");
        var file = ConfigLoader.Load(path, NoEnv, NoFlags);
        Assert.True(file.IsValid, string.Join("; ", file.Errors));
        Assert.Equal(TimeSpan.FromMinutes(90), file.Options.NodeAgentAbsentAfterValue);
        Assert.Equal($"{path}:2", file.Sources["nodeAgent.absentAfter"]);

        var env = ConfigLoader.Load(path, new Dictionary<string, string> { ["CRSC_NODE_AGENT_ABSENT_AFTER"] = "2m" }, NoFlags);
        Assert.Equal((TimeSpan.FromMinutes(2), "env CRSC_NODE_AGENT_ABSENT_AFTER"), (env.Options.NodeAgentAbsentAfterValue, env.Sources["nodeAgent.absentAfter"]));
        var flag = ConfigLoader.Load(path, new Dictionary<string, string> { ["CRSC_NODE_AGENT_ABSENT_AFTER"] = "2m" },
            new Dictionary<string, string> { ["--node-agent-absent-after"] = "90s" });
        Assert.Equal((TimeSpan.FromSeconds(90), "flag --node-agent-absent-after"), (flag.Options.NodeAgentAbsentAfterValue, flag.Sources["nodeAgent.absentAfter"]));
    }

    [Fact]
    public void Leader_absent_after_defaults_to_three_seconds_and_comes_from_file_environment_and_flag()
    {
        var defaults = ConfigLoader.Load(null, NoEnv, NoFlags, defaultPath: _dir.Combine("absent.yaml")).Options;
        Assert.Equal(("3s", TimeSpan.FromSeconds(3)), (defaults.LeaderAbsentAfter, defaults.LeaderAbsentAfterValue));

        var path = Write("leader:\n  absentAfter: 4500ms\n");
        var file = ConfigLoader.Load(path, NoEnv, NoFlags);
        Assert.True(file.IsValid, string.Join("; ", file.Errors));
        Assert.Equal(TimeSpan.FromMilliseconds(4500), file.Options.LeaderAbsentAfterValue);
        Assert.Equal($"{path}:2", file.Sources["leader.absentAfter"]);

        var env = ConfigLoader.Load(path, new Dictionary<string, string> { ["CRSC_LEADER_ABSENT_AFTER"] = "5s" }, NoFlags);
        Assert.Equal((TimeSpan.FromSeconds(5), "env CRSC_LEADER_ABSENT_AFTER"), (env.Options.LeaderAbsentAfterValue, env.Sources["leader.absentAfter"]));
        var flag = ConfigLoader.Load(path, new Dictionary<string, string> { ["CRSC_LEADER_ABSENT_AFTER"] = "5s" },
            new Dictionary<string, string> { ["--leader-absent-after"] = "10s" });
        Assert.Equal((TimeSpan.FromSeconds(10), "flag --leader-absent-after"), (flag.Options.LeaderAbsentAfterValue, flag.Sources["leader.absentAfter"]));
    }

    [Theory]
    [InlineData("3")]     // a bare number: refused, like the CLI's duration flags
    [InlineData("2s")]    // the leader renews every 2 s: it would look absent between two renewals
    [InlineData("soon")]
    [InlineData("")]
    public void Leader_absent_after_needs_a_unit_and_at_least_three_seconds(string value)
    {
        var path = Write($"leader:\n  absentAfter: \"{value}\"\n");
        var e = Assert.Single(ConfigLoader.Load(path, NoEnv, NoFlags).Errors);
        Assert.Equal(("leader.absentAfter", value), (e.Key, e.Value));
        Assert.Contains("must be a duration with a unit, at least 3s", e.Problem);
        Assert.StartsWith(path, e.Source);
    }

    [Theory]
    [InlineData("600")]   // a bare number: seconds or minutes? refused, like the CLI's duration flags
    [InlineData("59s")]   // shorter than three renewals of the node agent's Lease
    [InlineData("soon")]
    [InlineData("")]
    public void Node_agent_absent_after_needs_a_unit_and_at_least_a_minute(string value)
    {
        var path = Write($"nodeAgent:\n  absentAfter: \"{value}\"\n");
        var e = Assert.Single(ConfigLoader.Load(path, NoEnv, NoFlags).Errors);
        Assert.Equal(("nodeAgent.absentAfter", value), (e.Key, e.Value));
        Assert.Contains("must be a duration with a unit, at least 1m", e.Problem);
        Assert.StartsWith(path, e.Source);
    }

    [Fact]
    public void Shutdown_restore_window_defaults_to_fifteen_minutes_comes_from_the_file_and_needs_a_positive_duration()
    {
        var defaults = ConfigLoader.Load(null, NoEnv, NoFlags, defaultPath: _dir.Combine("absent.yaml")).Options;
        Assert.Equal(("15m", TimeSpan.FromMinutes(15)), (defaults.ShutdownRestoreWindow, defaults.ShutdownRestoreWindowValue));

        var path = Write("shutdown:\n  restoreWindow: 30m\n");
        var file = ConfigLoader.Load(path, NoEnv, NoFlags);
        Assert.True(file.IsValid, string.Join("; ", file.Errors));
        Assert.Equal(TimeSpan.FromMinutes(30), file.Options.ShutdownRestoreWindowValue);
        var env = ConfigLoader.Load(path, new Dictionary<string, string> { ["CRSC_SHUTDOWN_RESTORE_WINDOW"] = "5m" }, NoFlags);
        Assert.Equal(TimeSpan.FromMinutes(5), env.Options.ShutdownRestoreWindowValue);

        foreach (var bad in new[] { "900", "0s", "later" })
        {
            var e = Assert.Single(ConfigLoader.Load(Write($"shutdown:\n  restoreWindow: \"{bad}\"\n"), NoEnv, NoFlags).Errors);
            Assert.Equal(("shutdown.restoreWindow", bad), (e.Key, e.Value));
        }
    }

    [Fact]
    public void Lost_node_restore_window_defaults_to_thirty_minutes_comes_from_the_file_env_and_flag_and_needs_a_positive_duration()
    {
        var defaults = ConfigLoader.Load(null, NoEnv, NoFlags, defaultPath: _dir.Combine("absent.yaml")).Options;
        Assert.Equal(("30m", TimeSpan.FromMinutes(30)), (defaults.NodeAgentLostRestoreWindow, defaults.NodeAgentLostRestoreWindowValue));

        var path = Write("nodeAgent:\n  lostRestoreWindow: 1h\n");
        var file = ConfigLoader.Load(path, NoEnv, NoFlags);
        Assert.True(file.IsValid, string.Join("; ", file.Errors));
        Assert.Equal(TimeSpan.FromHours(1), file.Options.NodeAgentLostRestoreWindowValue);
        var env = ConfigLoader.Load(path, new Dictionary<string, string> { ["CRSC_NODE_AGENT_LOST_RESTORE_WINDOW"] = "5m" }, NoFlags);
        Assert.Equal(TimeSpan.FromMinutes(5), env.Options.NodeAgentLostRestoreWindowValue);

        foreach (var bad in new[] { "900", "0s", "later" })
        {
            var e = Assert.Single(ConfigLoader.Load(Write($"nodeAgent:\n  lostRestoreWindow: \"{bad}\"\n"), NoEnv, NoFlags).Errors);
            Assert.Equal(("nodeAgent.lostRestoreWindow", bad), (e.Key, e.Value));
        }
    }

    // .NET's '$' also matches before a final '\n': NODE_NAME=$'node1\n' must not pass
    [Theory]
    [InlineData("node1\n")]
    [InlineData("node1\r\n")]
    public void A_node_name_with_a_trailing_newline_is_refused(string name)
    {
        var r = ConfigLoader.Load(null, new Dictionary<string, string> { ["NODE_NAME"] = name }, NoFlags, defaultPath: _dir.Combine("absent.yaml"));
        Assert.Contains(r.Errors, e => e.Key == "nodeName");
    }

    [Theory]
    [InlineData("nodeName: &a [*a]\n", 1, "&a")] // recursive: the representation model built a cycle and crsc crashed walking it
    [InlineData("namespace: x\nlabels: &l\n  a: 1\nnodeAgent: *l\n", 2, "&l")]
    [InlineData("a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n", 1, "&a")]
    [InlineData("namespace: *undefined\n", 1, "*undefined")]
    public void Anchors_and_aliases_are_refused_naming_the_file_and_line_before_any_expansion(string yaml, int line, string named)
    {
        var path = Write(yaml);
        var r = ConfigLoader.Load(path, NoEnv, NoFlags);
        var e = Assert.Single(r.Errors);
        Assert.Equal(("config", path), (e.Key, e.Value));
        Assert.Contains($"{named} at line {line},", e.Problem);
        Assert.Contains("anchors and aliases are not accepted", e.Problem);
        Assert.Contains(path, e.ToString());
    }

    [Fact]
    public void The_drain_taints_are_a_comma_separated_list_the_default_the_looked_up_one()
    {
        var r = ConfigLoader.Load(Write("nodeState:\n  drainTaints: \" example.com/leaving , Other \"\nshutdown:\n  parallelism: \"8\"\n"), NoEnv, NoFlags);
        Assert.True(r.IsValid, string.Join("; ", r.Errors));
        Assert.Equal(["example.com/leaving", "Other"], r.Options.DrainTaintList);
        Assert.Equal(8, r.Options.ShutdownParallelismValue);
        Assert.Equal(Crsc.Controllers.Nodes.NodeDisruptionOptions.DefaultDrainTaints, new CrscOptions().DrainTaintList);
        Assert.Equal(("/run/crsc/node-state", true), (new CrscOptions().NodeStateDirectory, new CrscOptions().ShutdownCheckpointEnabled));
    }
}

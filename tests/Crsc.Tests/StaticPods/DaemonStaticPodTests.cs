using System.Text;
using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Configuration;
using Crsc.Controllers.Health;
using Crsc.Cri;
using Crsc.Daemon;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Crsc.Testing.Kube;
using Crsc.Tests.Cluster;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Runtime.V1;
using Container = Crsc.Api.Kubernetes.Container;
using Crsc.Controllers.StaticPods;

namespace Crsc.Tests.StaticPods;

/// <summary>
/// The static-pod checkpointer in the daemon as <see cref="DaemonHost.Build"/> composes it, against a
/// <see cref="FakeApiServer"/> (stopped and started for the outage) and a <see cref="FakeCriServer"/> played like a
/// kubelet: an annotated pod's checkpoint and Secrets/ConfigMaps are written, activated when the pod is gone and the
/// API server away, deactivated when the pod runs again, and removed when the API server says the pod is deleted.
/// </summary>
public sealed class DaemonStaticPodTests : IAsyncLifetime
{
    private const string Node = "node-t";
    private const UnixFileMode File0600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode Dir0700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly TempDir _dir = new();
    private FakeApiServer _server = null!;
    private FakeCriServer _cri = null!;
    private CriClient _kubelet = null!;
    private WebApplication? _app;

    private string Inactive => _dir.Combine("inactive", "default-web.json");
    private string Active => _dir.Combine("manifests", "default-web.json");
    private string SecretFile => _dir.Combine("secrets", "default", "web", "web-tls", "tls.key");
    private string ConfigMapFile => _dir.Combine("configmaps", "default", "web", "web-cfg", "app.conf");

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit 2 runs IAsyncLifetime.DisposeAsync on a test class, never IAsyncDisposable's: cleanup must be here
    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync(ClusterTestKit.Timeout());
            await _app.DisposeAsync();
        }
        _kubelet?.Dispose();
        if (_cri is not null) await _cri.DisposeAsync();
        if (_server is not null) await _server.DisposeAsync();
        _dir.Dispose();
    }

    private static Pod Web() => new()
    {
        Metadata = new ObjectMeta
        {
            Name = "web", Namespace = "default", Labels = new() { ["app"] = "web" },
            Annotations = new() { [Annotations.StaticCheckpoint] = "true", ["note"] = "dropped" },
        },
        Spec = new PodSpec
        {
            NodeName = Node,
            ServiceAccountName = "web",
            Containers = [new Container
            {
                Name = "main", Image = "registry.local/web:1",
                VolumeMounts = [new VolumeMount { Name = "tls", MountPath = "/tls" }, new VolumeMount { Name = "cfg", MountPath = "/cfg" }],
            }],
            Volumes =
            [
                new Volume { Name = "tls", Secret = new SecretVolumeSource { SecretName = "web-tls" } },
                new Volume { Name = "cfg", ConfigMap = new ConfigMapVolumeSource { Name = "web-cfg" } },
            ],
        },
    };

    private async Task<string> RunSandboxAsync(string ns, string name)
    {
        var response = await _kubelet.RunPodSandboxAsync(new RunPodSandboxRequest
        {
            Config = new PodSandboxConfig
            {
                Metadata = new PodSandboxMetadata { Name = name, Namespace = ns, Uid = Guid.NewGuid().ToString() },
                Labels = { ["io.kubernetes.pod.name"] = name, ["io.kubernetes.pod.namespace"] = ns },
            },
        }, ct: ClusterTestKit.Timeout());
        return response.PodSandboxId;
    }

    private async Task StartAsync()
    {
        _server = await FakeApiServer.StartAsync();
        _server.Seed(Resources.Pods, Web());
        _server.Seed(Resources.Pods, ClusterTestKit.Pod("plain", Node));
        _server.Seed(Resources.Secrets, new Secret
        {
            Metadata = new ObjectMeta { Name = "web-tls", Namespace = "default" },
            Data = new() { ["tls.key"] = Encoding.UTF8.GetBytes("KEY-1") },
        });
        _server.Seed(Resources.ConfigMaps, new ConfigMap
        {
            Metadata = new ObjectMeta { Name = "web-cfg", Namespace = "default" },
            Data = new() { ["app.conf"] = "x=1" },
        });
        _cri = await FakeCriServer.StartAsync(_dir.Combine("cri.sock"));
        _kubelet = new CriClient(_cri.Endpoint);

        var kubeconfig = _dir.Combine("kubeconfig");
        await File.WriteAllTextAsync(kubeconfig, _server.KubeconfigYaml());
        Directory.CreateDirectory(_dir.Combine("manifests"));
        await File.WriteAllTextAsync(_dir.Combine("manifests", "etcd.yaml"), "apiVersion: v1\nkind: Pod\n");
        var options = new CrscOptions
        {
            NodeName = Node, Kubeconfig = kubeconfig, Socket = _dir.Combine("crsc.sock"), Namespace = "crsc-system",
            CheckpointDir = _dir.Combine("checkpoints"), StagingDir = _dir.Combine("staging"), StateDir = _dir.Combine("state"),
            // the node state and logind of the test, not the machine's
            NodeStateDirectory = _dir.Combine("node-state"), ShutdownBusAddress = "unix:path=" + _dir.Combine("no-bus"),
            RuntimeEndpoint = _cri.Endpoint, ImagesListen = "",
            ManifestsDir = _dir.Combine("manifests"), InactiveManifestsDir = _dir.Combine("inactive"),
            CheckpointSecretsDir = _dir.Combine("secrets"), CheckpointConfigMapsDir = _dir.Combine("configmaps"),
        };
        _app = DaemonHost.Build(options, new Serilog.LoggerConfiguration().CreateLogger(), TimeProvider.System);
        var timings = _app.Services.GetRequiredService<ClusterConnectionOptions>();
        timings.ProbeInterval = TimeSpan.FromMilliseconds(300);
        timings.InitialRetry = TimeSpan.FromMilliseconds(200);
        timings.MaxRetry = TimeSpan.FromMilliseconds(500);
        var settings = _app.Services.GetRequiredService<StaticPodSettings>();
        settings.Self = null;
        settings.Interval = TimeSpan.FromMilliseconds(100);
        settings.ActivationGrace = TimeSpan.FromSeconds(1);
        settings.DeactivationGrace = TimeSpan.FromSeconds(1);
        settings.RefreshInterval = TimeSpan.FromMilliseconds(500);
        await _app.StartAsync(ClusterTestKit.Timeout());
    }

    private string? StaticPodsHealth() =>
        _app!.Services.GetRequiredService<HealthRegistry>().Snapshot().FirstOrDefault(e => e.Component == "static-pods")?.Message;

    [Fact]
    public async Task Checkpointed_while_running_activated_in_an_outage_deactivated_when_back_and_removed_when_deleted()
    {
        await StartAsync();
        var sandbox = await RunSandboxAsync("default", "web");

        // running: an inactive checkpoint and its Secret and ConfigMap, nothing active
        await Eventually.TrueAsync(() => File.Exists(Inactive) && File.Exists(SecretFile) && File.Exists(ConfigMapFile), "inactive checkpoint written");
        var manifest = StaticPodManifest.Deserialize(await File.ReadAllBytesAsync(Inactive));
        Assert.Equal("web", manifest.Metadata.Annotations![Annotations.CheckpointOf]);
        Assert.Null(manifest.Metadata.Labels);
        Assert.False(manifest.Metadata.Annotations.ContainsKey("note"));
        Assert.Null(manifest.Spec.ServiceAccountName);
        Assert.Null(manifest.Spec.NodeName);
        Assert.Equal(_dir.Combine("secrets", "default", "web", "web-tls"), manifest.Spec.Volumes!.Single(v => v.Name == "tls").HostPath!.Path);
        Assert.Equal(_dir.Combine("configmaps", "default", "web", "web-cfg"), manifest.Spec.Volumes!.Single(v => v.Name == "cfg").HostPath!.Path);
        Assert.Equal("KEY-1", await File.ReadAllTextAsync(SecretFile));
        Assert.Equal("x=1", await File.ReadAllTextAsync(ConfigMapFile));
        Assert.Equal(File0600, File.GetUnixFileMode(SecretFile));
        Assert.Equal(Dir0700, File.GetUnixFileMode(Path.GetDirectoryName(SecretFile)!));
        Assert.False(File.Exists(_dir.Combine("inactive", "default-plain.json")));
        await Eventually.TrueAsync(() => StaticPodsHealth() == "1 checkpoint(s), 0 active", "health: 1 checkpoint, none active");

        // the ConfigMap changes: the saved copy follows
        var cms = ClusterTestKit.Api(_server).Resource(Resources.ConfigMaps);
        var cm = await cms.GetAsync("default", "web-cfg", ClusterTestKit.Timeout());
        cm.Data!["app.conf"] = "x=2";
        await cms.UpdateAsync(cm, ClusterTestKit.Timeout());
        await Eventually.TrueAsync(() => File.ReadAllText(ConfigMapFile) == "x=2", "the changed ConfigMap saved");

        // outage: the API server stops and the pod's sandbox goes away -> the checkpoint runs as a static pod
        await _server.StopAsync();
        await _kubelet.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = sandbox }, ct: ClusterTestKit.Timeout());
        await Eventually.TrueAsync(() => File.Exists(Active), "checkpoint activated into the manifest directory");
        Assert.Equal(await File.ReadAllBytesAsync(Inactive), await File.ReadAllBytesAsync(Active));
        await Eventually.TrueAsync(() => StaticPodsHealth() == "1 checkpoint(s), 1 active", "health: 1 active");

        // the kubelet runs the checkpoint as web-node-t (not the parent: StaticCheckpointPlannerTests cover the keying)
        await RunSandboxAsync("default", "web-" + Node);

        // the parent runs again (API server still away) -> deactivated after the grace period
        await RunSandboxAsync("default", "web");
        await Eventually.TrueAsync(() => !File.Exists(Active), "checkpoint deactivated");
        Assert.True(File.Exists(Inactive));

        // the API server is back and says the pod is deleted -> everything removed, other manifests untouched
        await _server.StartAsync();
        await ClusterTestKit.Api(_server).Resource(Resources.Pods).DeleteAsync("default", "web", null, ClusterTestKit.Timeout());
        await Eventually.TrueAsync(() => !File.Exists(Inactive) && !Directory.Exists(_dir.Combine("secrets", "default"))
                                         && !Directory.Exists(_dir.Combine("configmaps", "default")), "checkpoint removed");
        Assert.False(File.Exists(Active));
        Assert.Equal("apiVersion: v1\nkind: Pod\n", await File.ReadAllTextAsync(_dir.Combine("manifests", "etcd.yaml")));
        await Eventually.TrueAsync(() => StaticPodsHealth() == "0 checkpoint(s), 0 active", "health: none");
        // timers and written versions are kept across restarts
        Assert.True(File.Exists(_dir.Combine("state", "static-pods", "state.json")));
    }
}

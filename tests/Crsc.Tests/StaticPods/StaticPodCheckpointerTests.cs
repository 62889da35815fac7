using System.Text;
using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Health;
using Crsc.Controllers.StaticPods;
using Crsc.Cri;
using Crsc.Kube;
using Crsc.Storage.StaticManifests;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Crsc.Testing.Kube;
using Crsc.Tests.Cluster;
using Microsoft.Extensions.Logging.Abstractions;
using Container = Crsc.Api.Kubernetes.Container;

namespace Crsc.Tests.StaticPods;

/// <summary>
/// One <see cref="StaticPodCheckpointer"/> round at a time, with a test clock, the real disk store, the real API
/// client against <see cref="FakeApiServer"/> and the real CRI client against <see cref="FakeCriServer"/>: what
/// happens with missing or hostile Secrets and ConfigMaps, and that grace periods survive a restart.
/// </summary>
public sealed class StaticPodCheckpointerTests : IAsyncLifetime
{
    private const string Node = "node-t";
    private readonly TempDir _dir = new();
    private readonly ManualTimeProvider _time = new();
    private readonly HealthRegistry _health;
    private readonly ApiServerState _api;
    private FakeApiServer _server = null!;
    private KubeApi _client = null!;
    private FakeCriServer _cri = null!;
    private CriContainerRuntime _runtime = null!;
    private List<Pod>? _pods = [];

    public StaticPodCheckpointerTests()
    {
        _health = new HealthRegistry(_time);
        _api = new ApiServerState(_time);
    }

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync();
        _client = ClusterTestKit.Api(_server);
        _cri = await FakeCriServer.StartAsync(_dir.Combine("cri.sock"));
        _runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = _cri.Endpoint });
    }

    public async Task DisposeAsync()
    {
        _runtime.Dispose();
        _client.Dispose();
        await _cri.DisposeAsync();
        await _server.DisposeAsync();
        _dir.Dispose();
    }

    private DiskStaticManifestStore Store() => new(new StaticManifestStoreOptions
    {
        ManifestsDir = _dir.Combine("manifests"), InactiveManifestsDir = _dir.Combine("inactive"),
        SecretsDir = _dir.Combine("secrets"), ConfigMapsDir = _dir.Combine("configmaps"), StateDir = _dir.Combine("state"),
        Key = _key,
    });

    private readonly Crsc.Storage.Security.NodeKey _key = Crsc.Storage.Security.NodeKey.Generate();

    private StaticPodCheckpointer Checkpointer() => new(Store(), _runtime, _api, () => _pods,
        _client.Resource(Resources.Secrets), _client.Resource(Resources.ConfigMaps),
        new StaticPodCheckpointerOptions
        {
            Planner = new StaticCheckpointPlannerOptions { NodeName = Node, ActivationGrace = TimeSpan.FromSeconds(30) },
            Paths = new StaticCheckpointPaths(_dir.Combine("secrets"), _dir.Combine("configmaps")),
        },
        _time, NullLogger.Instance, _health);

    private static Pod Web(params Volume[] volumes) => new()
    {
        Metadata = new ObjectMeta { Name = "web", Namespace = "default", ResourceVersion = "7", Annotations = new() { [Annotations.StaticCheckpoint] = "true" } },
        Spec = new PodSpec { NodeName = Node, Containers = [new Container { Name = "main", Image = "registry.local/web:1" }], Volumes = [.. volumes] },
    };

    [Fact]
    public async Task A_node_without_static_checkpoints_or_annotated_pods_does_not_ask_the_runtime()
    {
        var checkpointer = Checkpointer();
        _api.ReportReachable();
        _pods = [new Pod
        {
            Metadata = new ObjectMeta { Name = "plain", Namespace = "default", ResourceVersion = "1" },
            Spec = new PodSpec { NodeName = Node, Containers = [new Container { Name = "main", Image = "registry.local/web:1" }] },
        }];

        Assert.Empty(await checkpointer.RunOnceAsync(CancellationToken.None));
        _api.ReportUnreachable("down");
        Assert.Empty(await checkpointer.RunOnceAsync(CancellationToken.None));
        Assert.Empty(_cri.CallsTo("ListPodSandbox"));
        Assert.Equal("Healthy: 0 checkpoint(s), 0 active", Health());

        // an annotated pod on the node: now the local truth matters
        _api.ReportReachable();
        _pods = [Web()];
        await checkpointer.RunOnceAsync(CancellationToken.None);
        Assert.NotEmpty(_cri.CallsTo("ListPodSandbox"));
    }

    private string? Health() => _health.Snapshot().SingleOrDefault(e => e.Component == "static-pods") is { } e ? $"{e.Status}: {e.Message}" : null;

    [Fact]
    public async Task A_missing_required_secret_keeps_the_checkpoint_from_being_written_until_it_exists_and_an_optional_configmap_mounts_empty()
    {
        _api.ReportReachable();
        _pods = [Web(new Volume { Name = "tls", Secret = new SecretVolumeSource { SecretName = "web-tls" } },
            new Volume { Name = "cfg", ConfigMap = new ConfigMapVolumeSource { Name = "absent", Optional = true } })];
        var checkpointer = Checkpointer();

        Assert.Empty(await checkpointer.RunOnceAsync(default));
        Assert.False(File.Exists(_dir.Combine("inactive", "default-web.json")));
        Assert.Equal("Degraded: 0 checkpoint(s), 0 active; default/web: Checkpoint failed: Secret default/web-tls, which the pod mounts, does not exist; the checkpoint is not updated",
            Health());

        _server.Seed(Resources.Secrets, new Secret { Metadata = new ObjectMeta { Name = "web-tls", Namespace = "default" }, Data = new() { ["k"] = "v"u8.ToArray() } });
        var done = await checkpointer.RunOnceAsync(default);
        Assert.Equal(StaticPodActionKind.Checkpoint, Assert.Single(done).Kind);
        Assert.Equal("v", File.ReadAllText(_dir.Combine("secrets", "default", "web", "web-tls", "k")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir.Combine("configmaps", "default", "web", "absent")));
        Assert.Equal("Healthy: 1 checkpoint(s), 0 active", Health());
    }

    [Fact]
    public async Task A_data_key_that_would_escape_its_directory_refuses_the_checkpoint_and_writes_nothing()
    {
        _api.ReportReachable();
        _server.Seed(Resources.ConfigMaps, new ConfigMap { Metadata = new ObjectMeta { Name = "cfg", Namespace = "default" }, Data = new() { ["..data"] = "x" } });
        _pods = [Web(new Volume { Name = "cfg", ConfigMap = new ConfigMapVolumeSource { Name = "cfg" } })];
        Assert.Empty(await Checkpointer().RunOnceAsync(default));
        Assert.Contains("\"..data\" is refused", Health());
        Assert.False(Directory.Exists(_dir.Combine("configmaps")));
        Assert.False(Directory.Exists(_dir.Combine("inactive")));
    }

    [Fact]
    public async Task The_activation_grace_period_goes_on_across_a_restart_of_the_checkpointer()
    {
        _api.ReportReachable();
        _pods = [Web()];
        await Checkpointer().RunOnceAsync(default);
        Assert.True(File.Exists(_dir.Combine("inactive", "default-web.json")));

        // the API server goes away; the parent does not run here (no sandbox)
        _api.ReportUnreachable("test outage");
        _pods = null;
        Assert.Empty(await Checkpointer().RunOnceAsync(default));
        _time.Advance(TimeSpan.FromSeconds(20));

        // a new process: the timer started 20 s ago is read back, so 10 more seconds are enough
        var restarted = Checkpointer();
        Assert.Empty(await restarted.RunOnceAsync(default));
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(StaticPodActionKind.Activate, Assert.Single(await restarted.RunOnceAsync(default)).Kind);
        Assert.True(File.Exists(_dir.Combine("manifests", "default-web.json")));
        Assert.Equal("Healthy: 1 checkpoint(s), 1 active", Health());
    }

    [Fact]
    public async Task A_parent_running_in_the_runtime_is_not_activated_however_long_the_api_server_is_away()
    {
        _api.ReportReachable();
        _pods = [Web()];
        var checkpointer = Checkpointer();
        await checkpointer.RunOnceAsync(default);
        _cri.AddRunningContainer("default", "web", "main");
        _api.ReportUnreachable("test outage");
        for (var i = 0; i < 10; i++)
        {
            Assert.Empty(await checkpointer.RunOnceAsync(default));
            _time.Advance(TimeSpan.FromSeconds(10));
        }
        Assert.False(File.Exists(_dir.Combine("manifests", "default-web.json")));
    }
}

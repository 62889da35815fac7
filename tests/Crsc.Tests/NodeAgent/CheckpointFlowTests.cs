using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.NodeAgent;
using Crsc.Cri;
using Crsc.Cri.Grpc;
using Crsc.Kube;
using Crsc.Storage;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Crsc.Testing.Kube;
using Crsc.Tests.Cluster;
using Microsoft.Extensions.Logging.Abstractions;
using CriContainerState = global::Runtime.V1.ContainerState;

namespace Crsc.Tests.NodeAgent;

/// <summary>
/// The node agent's checkpoint path end to end in one process: the real HTTP client against a fake kube-apiserver
/// serving the crsc CRDs, the real CRI client against a fake CRI server, and a real on-disk store.
/// </summary>
public sealed class CheckpointFlowTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private FakeApiServer _server = null!;
    private FakeCriServer _cri = null!;
    private KubeApi _kube = null!;
    private CriContainerRuntime _runtime = null!;
    private DiskCheckpointStore _store = null!;
    private EventRecorder _events = null!;
    private CheckpointRunner _runner = null!;
    private MetricsRegistry _metrics = null!;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _running = [];

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync();
        ClusterTestKit.RegisterCrds(_server);
        _cri = await FakeCriServer.StartAsync();
        _kube = ClusterTestKit.Api(_server);
        _runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = _cri.Endpoint });
        _store = new DiskCheckpointStore(new DiskCheckpointStoreOptions
        {
            CheckpointDirectory = _dir.Combine("checkpoints"),
            StagingDirectory = _dir.Combine("staging"),
            NodeName = "n1",
            Key = Crsc.Storage.Security.NodeKey.Generate(),
        });
        _events = new EventRecorder(new ApiEventSink(_kube.Resource(Resources.CoreEvents)),
            new EventRecorderOptions { Host = "n1" }, TimeProvider.System, NullLogger.Instance);
        _metrics = new MetricsRegistry();
        var metrics = new CheckpointMetrics(_metrics);

        // the wiring the daemon does: pods informer first (it names workloads for the runner), then the rest
        var manager = new ControllerManager(new ControllerManagerOptions
        {
            Kube = _kube, Events = _events, Time = TimeProvider.System, Loggers = NullLoggerFactory.Instance,
        });
        var pods = manager.Informers.PodsOnNode("n1");
        // CRIU logs where this test's "runtime" keeps them: <dir>/<container id>/dump.log
        _runner = new CheckpointRunner(_runtime, _runtime, _store,
            new CheckpointRunnerOptions { NodeName = "n1", CriuLogLocations = [_dir.Combine("{id}", "dump.log")] },
            TimeProvider.System, new Crsc.Storage.FileStagingArea(), metrics: metrics, workloads: new PodOwnerWorkloadResolver(pods));
        ContainerCheckpointReconciler.SetUp(manager, "n1", _runner, _store, metrics);
        manager.AddRunnable("event recorder", _events.RunAsync);
        _running.Add(manager.RunAsync(_stop.Token));
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running).WaitAsync(TimeSpan.FromSeconds(30));
        _runner.Dispose();
        _store.Dispose();
        _runtime.Dispose();
        _kube.Dispose();
        await _cri.DisposeAsync();
        await _server.DisposeAsync();
        _dir.Dispose();
        _stop.Dispose();
    }

    private void SeedPod(string name, string node, string container)
    {
        var pod = ClusterTestKit.Pod(name, node, ns: "shop");
        pod.Spec.Containers = [new Container { Name = container, Image = "registry.local/busybox:1" }];
        pod.Metadata.OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "StatefulSet", Name = "counter", Uid = "ss-1", Controller = true }];
        _server.Seed(Resources.Pods, pod);
    }

    [Fact]
    public async Task A_ContainerCheckpoint_of_a_pod_on_this_node_completes_with_a_verified_archive_and_a_content_object()
    {
        SeedPod("counter-0", "n1", "counter");
        var (_, containerId) = _cri.AddRunningContainer("shop", "counter-0", "counter");
        var checkpoints = _kube.Resource(CrscResources.ContainerCheckpoints);

        var created = await checkpoints.CreateAsync(new ContainerCheckpoint
        {
            Metadata = new ObjectMeta { Namespace = "shop", Name = "counter-0-now" },
            Spec = new ContainerCheckpointSpec { PodName = "counter-0", Container = "counter", DeletionPolicy = DeletionPolicy.Delete },
        }, ClusterTestKit.Timeout());

        ContainerCheckpoint? done = null;
        await Eventually.TrueAsync(async () =>
        {
            done = await checkpoints.GetAsync("shop", "counter-0-now", CancellationToken.None);
            return done.Status?.Phase is ContainerCheckpointPhase.Completed or ContainerCheckpointPhase.Failed;
        }, "checkpoint finished", TimeSpan.FromSeconds(60));

        var status = done!.Status!;
        Assert.True(status.Phase == ContainerCheckpointPhase.Completed, $"{status.Phase}: {status.Message}");
        Assert.Equal("n1", status.Node);
        Assert.StartsWith("sha256:", status.Digest);
        Assert.True(status.SizeBytes > 0);
        Assert.NotNull(status.StartedAt);
        Assert.NotNull(status.CompletedAt);
        Assert.True(status.IsConditionTrue(ConditionTypes.Ready));
        Assert.Equal(ContainerCheckpointReconciler.ContentNameFor(created.Metadata.Uid!), status.ContentName);
        Assert.Contains(Finalizers.Archive, done.Metadata.Finalizers!);

        var content = await _kube.Resource(CrscResources.ContainerCheckpointContents).GetAsync(null, status.ContentName!, ClusterTestKit.Timeout());
        Assert.Equal("n1", content.Spec.Node);
        Assert.Equal(status.Digest, content.Spec.Digest);
        Assert.Equal(status.SizeBytes, content.Spec.SizeBytes);
        Assert.Equal(ArchiveCompression.Zstd, content.Spec.Compression);
        Assert.Equal(("shop", "counter-0", "counter"), (content.Spec.Source.Namespace, content.Spec.Source.Pod, content.Spec.Source.Container));
        Assert.Equal("registry.local/busybox:1", content.Spec.Source.Image);
        Assert.Equal(created.Metadata.Uid, content.Spec.CheckpointRef.Uid);
        Assert.Equal(DeletionPolicy.Delete, content.Spec.DeletionPolicy);
        Assert.Equal(created.Metadata.Uid, Assert.Single(content.Metadata.OwnerReferences!).Uid);
        Assert.Empty(content.Spec.Validate());

        var archive = Assert.Single(_store.List());
        Assert.Equal("counter", archive.Workload); // the StatefulSet, from the pod informer
        Assert.Equal(archive.ArchivePath, content.Spec.Path);
        Assert.True(File.Exists(content.Spec.Path));
        var verified = await _store.VerifyAsync(archive.Id, ClusterTestKit.Timeout());
        Assert.True(verified.Valid, verified.Problem);
        Assert.Empty(Directory.GetFiles(_store.StagingDirectory));

        // the runtime checkpointed that container, which keeps running
        var call = Assert.Single(_cri.CallsTo("CheckpointContainer"));
        Assert.NotNull(call);
        Assert.Equal(CriContainerState.ContainerRunning, _cri.Containers.Single(c => c.Id == containerId).State);

        await Eventually.TrueAsync(() => _server.All(_server.ResourceOf(Resources.CoreEvents))
            .Any(e => (string?)e["reason"] == "CheckpointCompleted"), "CheckpointCompleted event");
        Assert.Contains("crsc_checkpoints_total{result=\"succeeded\"} 1", _metrics.Render());

        // deletionPolicy Delete: deleting the object removes the archive and the content, then the object goes
        await checkpoints.DeleteAsync("shop", "counter-0-now", null, ClusterTestKit.Timeout());
        await Eventually.TrueAsync(() => _server.Get(CrscResources.ContainerCheckpoints, "shop", "counter-0-now") is null,
            "checkpoint object gone");
        Assert.Null(_server.Get(CrscResources.ContainerCheckpointContents, null, status.ContentName!));
        Assert.Empty(_store.List());
        Assert.False(File.Exists(content.Spec.Path));
    }

    [Fact]
    public async Task A_runtime_failure_fails_the_object_with_the_runtimes_message_and_the_end_of_the_criu_log()
    {
        SeedPod("counter-1", "n1", "counter");
        var (_, containerId) = _cri.AddRunningContainer("shop", "counter-1", "counter");
        var log = Directory.CreateDirectory(_dir.Combine(containerId)).FullName + "/dump.log";
        await File.WriteAllTextAsync(log, string.Concat(Enumerable.Range(0, 300).Select(i => $"({i:D6}) Dumping task\n"))
            + "Error (criu/sk-inet.c:191): inet: Connected TCP socket, consider using --tcp-established option.\n");
        _cri.Inject("CheckpointContainer", CriFault.Error(GrpcStatusCode.Unknown,
            $"failed to checkpoint container: criu failed: type NOTIFY errno 0\nlog file: {log}"));
        var checkpoints = _kube.Resource(CrscResources.ContainerCheckpoints);
        await checkpoints.CreateAsync(new ContainerCheckpoint
        {
            Metadata = new ObjectMeta { Namespace = "shop", Name = "counter-1-now" },
            Spec = new ContainerCheckpointSpec { PodName = "counter-1", Container = "counter" },
        }, ClusterTestKit.Timeout());

        ContainerCheckpoint? done = null;
        await Eventually.TrueAsync(async () =>
        {
            done = await checkpoints.GetAsync("shop", "counter-1-now", CancellationToken.None);
            return done.Status?.Phase is ContainerCheckpointPhase.Completed or ContainerCheckpointPhase.Failed;
        }, "checkpoint finished", TimeSpan.FromSeconds(60));

        var status = done!.Status!;
        Assert.Equal(ContainerCheckpointPhase.Failed, status.Phase);
        Assert.Contains("criu failed", status.Message);
        Assert.EndsWith("consider using --tcp-established option.\n", status.CriuLog);
        Assert.True(status.CriuLog!.Length <= ContainerCheckpointStatus.MaxCriuLogLength);
        Assert.Null(status.ContentName);
        Assert.Empty(_store.List());
        Assert.Empty(Directory.GetFiles(_store.StagingDirectory));
        await Eventually.TrueAsync(() => _server.All(_server.ResourceOf(Resources.CoreEvents))
            .Any(e => (string?)e["reason"] == "CheckpointFailed" && (string?)e["type"] == "Warning"), "CheckpointFailed event");
        Assert.Single(_cri.CallsTo("CheckpointContainer"));
    }

    [Fact]
    public async Task A_ContainerCheckpoint_of_a_pod_on_another_node_is_left_alone()
    {
        SeedPod("web-0", "n2", "app");
        var checkpoints = _kube.Resource(CrscResources.ContainerCheckpoints);
        await checkpoints.CreateAsync(new ContainerCheckpoint
        {
            Metadata = new ObjectMeta { Namespace = "shop", Name = "web-0-now" },
            Spec = new ContainerCheckpointSpec { PodName = "web-0", Container = "app" },
        }, ClusterTestKit.Timeout());

        await Task.Delay(TimeSpan.FromSeconds(1));

        var ckpt = await checkpoints.GetAsync("shop", "web-0-now", ClusterTestKit.Timeout());
        Assert.Null(ckpt.Status);
        Assert.Null(ckpt.Metadata.Finalizers);
        Assert.Empty(_cri.CallsTo("CheckpointContainer"));
    }
}

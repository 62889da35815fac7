using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Storage;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Controllers.Workloads;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Workloads;

public sealed class NodeAwayRestoreReconcilerTests : IAsyncLifetime
{
    private const string Ns = "shop";
    private static readonly DateTimeOffset Drained = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly ManualTimeProvider _time = new(Drained.AddMinutes(1));
    private readonly FakeKube _kube;
    private readonly FakeResourceClient<Pod> _podsApi;
    private readonly FakeResourceClient<Deployment> _deployApi;
    private readonly FakeResourceClient<ContainerCheckpoint> _checkpointsApi;
    private readonly FakeResourceClient<Restore> _restoresApi;
    private readonly RecordingEventRecorder _events = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _running = [];
    private string _deploymentUid = "";

    public NodeAwayRestoreReconcilerTests()
    {
        _kube = new FakeKube(_time);
        _podsApi = _kube.For(Resources.Pods);
        _deployApi = _kube.For(Resources.Deployments);
        _checkpointsApi = _kube.For(CrscResources.ContainerCheckpoints);
        _restoresApi = _kube.For(CrscResources.Restores);
    }

    public async Task InitializeAsync()
    {
        var d = await _deployApi.SeedAsync(new Deployment
        {
            Metadata = new ObjectMeta { Namespace = Ns, Name = "web", Annotations = new() { [Annotations.CheckpointRestore] = "true" } },
        });
        _deploymentUid = d.Metadata.Uid!;
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running);
        _stop.Dispose();
    }

    /// <summary>A new reconciler over caches that show the API as it is now; reconciles the Deployment once.</summary>
    private async Task ReconcileAsync(NodeAwayRestoreOptions? options = null)
    {
        Informer<T> Informer<T>(FakeResourceClient<T> api) where T : class, IKubernetesObject
        {
            var i = new Informer<T>(api, new InformerOptions(), TimeProvider.System, NullLogger.Instance);
            _running.Add(i.RunAsync(_stop.Token));
            return i;
        }
        var pods = Informer(_podsApi);
        var deployments = Informer(_deployApi);
        var checkpoints = Informer(_checkpointsApi);
        var restores = Informer(_restoresApi);
        foreach (var i in new IInformer[] { pods, deployments, checkpoints, restores }) await i.WaitForSyncAsync(_stop.Token);
        var reconciler = new NodeAwayRestoreReconciler(_kube, pods, deployments, checkpoints, restores, _events,
            options ?? new NodeAwayRestoreOptions(), _time, NullLogger.Instance);
        await reconciler.ReconcileAsync(new ObjectKey(Ns, "web"), CancellationToken.None);
    }

    private Task SeedPodAsync(string name, DateTimeOffset created, string node = "n2", Dictionary<string, string>? annotations = null,
        DateTimeOffset? appStarted = null) =>
        _podsApi.SeedAsync(new Pod
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns,
                Name = name,
                CreationTimestamp = created,
                Annotations = annotations,
                Labels = new() { [PodOwnerWorkloadResolver.PodTemplateHashLabel] = "7d9f8b6c5" },
                OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = "web-7d9f8b6c5", Uid = "rs-uid", Controller = true }],
            },
            Spec = new PodSpec { NodeName = node, Containers = [new Container { Name = "app", Image = "registry.local/app:1" }] },
            Status = new PodStatus
            {
                Phase = "Running",
                ContainerStatuses = appStarted is { } at
                    ? [new ContainerStatus { Name = "app", State = new ContainerState { Running = new ContainerStateRunning { StartedAt = at } } }]
                    : null,
            },
        });

    private Task SeedCheckpointAsync(string name, string? reason = CheckpointReasons.NodeDrain, DateTimeOffset? at = null,
        ContainerCheckpointPhase phase = ContainerCheckpointPhase.Completed) =>
        _checkpointsApi.SeedAsync(new ContainerCheckpoint
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns,
                Name = name,
                Labels = new() { [Labels.Workload] = "web", [Labels.Container] = "app" },
                Annotations = reason is null ? [] : new() { [Annotations.CheckpointReason] = reason },
            },
            Spec = new ContainerCheckpointSpec { PodName = "web-7d9f8b6c5-old", Container = "app" },
            Status = new ContainerCheckpointStatus { Phase = phase, Node = "n1", StartedAt = at ?? Drained, CompletedAt = (at ?? Drained).AddSeconds(5) },
        });

    [Fact]
    public async Task A_new_pod_after_a_drain_gets_exactly_one_restore_naming_the_node_away_checkpoint()
    {
        await SeedPodAsync("web-7d9f8b6c5-old", Drained.AddHours(-1), node: "n1");
        // an older scheduled checkpoint (no reason) and the node-away one
        await SeedCheckpointAsync("web-app-20260101115000", reason: null, at: Drained.AddMinutes(-10));
        await SeedCheckpointAsync("web-app-away-20260101120000-abcdef");
        // on the checkpoint's own node (the drain was cancelled, the node uncordoned): the archive is there
        await SeedPodAsync("web-7d9f8b6c5-new", Drained.AddSeconds(30), node: "n1");

        await ReconcileAsync();
        var restore = Assert.Single(_restoresApi.AllStored());
        Assert.Equal("web-app-away-20260101120000-abcdef-restore", restore.Metadata.Name);
        Assert.Equal("web-app-away-20260101120000-abcdef", restore.Spec.CheckpointName);
        Assert.Equal((RestoreTargetKind.Deployment, "web", "app"), (restore.Spec.Target.Kind, restore.Spec.Target.Name, restore.Spec.Container));
        Assert.Equal("web-7d9f8b6c5-new", restore.Metadata.Annotations![Annotations.FailedPod]);
        Assert.Equal(CheckpointReasons.NodeDrain, restore.Metadata.Annotations[Annotations.CheckpointReason]);
        Assert.Equal(_deploymentUid, restore.Metadata.OwnerReferences!.Single().Uid);
        Assert.Null(_podsApi.AllStored().Single(p => p.Metadata.Name == "web-7d9f8b6c5-new").Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFrom));

        // again (a second reconcile, a new leader): the checkpoint is used, nothing more
        await ReconcileAsync();
        Assert.Single(_restoresApi.AllStored());
    }

    [Fact]
    public async Task A_new_pod_on_another_node_is_annotated_restore_from_so_that_its_node_fetches_the_checkpoint()
    {
        await SeedCheckpointAsync("web-app-away-20260101120000-abcdef");
        await SeedPodAsync("web-7d9f8b6c5-new", Drained.AddSeconds(30), node: "n2");
        await SeedPodAsync("web-7d9f8b6c5-newer", Drained.AddSeconds(40), node: "n3");

        await ReconcileAsync();
        // no Restore from here (node n2 cannot pull node n1's archive by itself): its own agent makes one after the fetch
        Assert.Empty(_restoresApi.AllStored());
        Assert.Equal([("web-7d9f8b6c5-new", "web-app-away-20260101120000-abcdef")], Asked());
        var e = Assert.Single(_events.Events, e => e.Reason == NodeAwayRestoreReconciler.RestoreCreatedReason);
        Assert.Contains("taken on node n1 and the pod runs on node n2: annotated crsc.io/restore-from", e.Message);

        // again (a new leader): the annotation claims the checkpoint; the other new pod is not asked for it too
        await ReconcileAsync();
        Assert.Equal([("web-7d9f8b6c5-new", "web-app-away-20260101120000-abcdef")], Asked());
        Assert.Empty(_restoresApi.AllStored());
    }

    private List<(string, string)> Asked() => _podsApi.AllStored()
        .Where(p => p.Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFrom) is not null)
        .Select(p => (p.Metadata.Name!, p.Metadata.Annotations![Annotations.RestoreFrom]))
        .OrderBy(x => x.Item1, StringComparer.Ordinal).ToList();

    [Fact]
    public async Task Only_the_old_pod_no_restore()
    {
        await SeedCheckpointAsync("web-app-away-20260101120000-abcdef");
        // created before the checkpoint (the drained one, or one that survived elsewhere), and the checkpointed pod itself
        await SeedPodAsync("web-7d9f8b6c5-before", Drained.AddMinutes(-30));
        await SeedPodAsync("web-7d9f8b6c5-old", Drained.AddSeconds(20), node: "n1");
        await ReconcileAsync();
        Assert.Empty(_restoresApi.AllStored());
    }

    [Fact]
    public async Task After_a_shutdown_the_checkpointed_pod_back_on_its_rebooted_node_is_restored_once_its_container_started_again()
    {
        await SeedCheckpointAsync("web-app-away-20260101120000-abcdef", reason: CheckpointReasons.NodeShutdown);
        // still the instance that was checkpointed (the shutdown was cancelled): nothing
        await SeedPodAsync("web-7d9f8b6c5-old", Drained.AddHours(-1), node: "n1", appStarted: Drained.AddHours(-1));
        await ReconcileAsync();
        Assert.Empty(_restoresApi.AllStored());

        // the node rebooted and the kubelet started the container again
        await SeedPodAsync("web-7d9f8b6c5-old", Drained.AddHours(-1), node: "n1", appStarted: Drained.AddMinutes(3));
        await ReconcileAsync();
        var restore = Assert.Single(_restoresApi.AllStored());
        Assert.Equal(("web-app-away-20260101120000-abcdef", "web-7d9f8b6c5-old"),
            (restore.Spec.CheckpointName, restore.Metadata.Annotations![Annotations.FailedPod]));
    }

    [Fact]
    public async Task Without_a_node_away_checkpoint_no_restore()
    {
        await SeedCheckpointAsync("web-app-20260101120000", reason: null);
        await SeedCheckpointAsync("web-app-away-20260101120000-abcdef", phase: ContainerCheckpointPhase.Failed);
        await SeedPodAsync("web-7d9f8b6c5-new", Drained.AddSeconds(30));
        await ReconcileAsync();
        Assert.Empty(_restoresApi.AllStored());
    }

    [Fact]
    public async Task A_pod_created_outside_the_window_no_restore()
    {
        await SeedCheckpointAsync("web-app-away-20260101120000-abcdef");
        await SeedPodAsync("web-7d9f8b6c5-late", Drained.AddMinutes(16), node: "n1");
        _time.SetUtcNow(Drained.AddMinutes(10));
        await ReconcileAsync();
        Assert.Empty(_restoresApi.AllStored());
        // a shorter window leaves out a pod the default one takes
        await SeedPodAsync("web-7d9f8b6c5-new", Drained.AddMinutes(3), node: "n1");
        await ReconcileAsync(new NodeAwayRestoreOptions { Window = TimeSpan.FromMinutes(2) });
        Assert.Empty(_restoresApi.AllStored());
        await ReconcileAsync();
        Assert.Single(_restoresApi.AllStored());
    }

    [Fact]
    public async Task A_checkpoint_a_restore_names_already_or_a_pod_restored_already_no_restore()
    {
        await SeedCheckpointAsync("web-app-away-20260101120000-abcdef");
        await _restoresApi.SeedAsync(new Restore
        {
            Metadata = new ObjectMeta { Namespace = Ns, Name = "by-hand" },
            Spec = new RestoreSpec
            {
                Target = new RestoreTarget { Kind = RestoreTargetKind.Deployment, Name = "web" },
                CheckpointName = "web-app-away-20260101120000-abcdef",
            },
        });
        await SeedPodAsync("web-7d9f8b6c5-new", Drained.AddSeconds(30));
        await ReconcileAsync();
        Assert.Equal(["by-hand"], _restoresApi.AllStored().Select(r => r.Metadata.Name));

        // a second node-away checkpoint, and the only new pod runs a checkpoint image already
        await SeedCheckpointAsync("web-app-away-20260101120100-abcdef", at: Drained.AddMinutes(1));
        await _podsApi.DeleteAsync(Ns, "web-7d9f8b6c5-new", null, CancellationToken.None);
        await SeedPodAsync("web-7d9f8b6c5-restored", Drained.AddMinutes(2),
            annotations: new() { [Annotations.RestoredFrom] = "web-app-away-20260101120100-abcdef" });
        await ReconcileAsync();
        Assert.Equal(["by-hand"], _restoresApi.AllStored().Select(r => r.Metadata.Name));
    }
}

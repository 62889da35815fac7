using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Storage;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Controllers.Workloads;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Workloads;

public sealed class NodeLostRestoreReconcilerTests : IAsyncLifetime
{
    private const string Ns = "shop";
    private const string OldPod = "web-7d9f8b6c5-old";
    /// <summary>When node n1 stopped answering (its Ready condition went Unknown).</summary>
    private static readonly DateTimeOffset LostAt = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly ManualTimeProvider _time = new(LostAt.AddMinutes(6));
    private readonly FakeKube _kube;
    private readonly FakeResourceClient<Pod> _podsApi;
    private readonly FakeResourceClient<Node> _nodesApi;
    private readonly FakeResourceClient<Deployment> _deployApi;
    private readonly FakeResourceClient<ContainerCheckpoint> _checkpointsApi;
    private readonly FakeResourceClient<ContainerCheckpointContent> _contentsApi;
    private readonly FakeResourceClient<Restore> _restoresApi;
    private readonly RecordingEventRecorder _events = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _running = [];

    public NodeLostRestoreReconcilerTests()
    {
        _kube = new FakeKube(_time);
        _podsApi = _kube.For(Resources.Pods);
        _nodesApi = _kube.For(Resources.Nodes);
        _deployApi = _kube.For(Resources.Deployments);
        _checkpointsApi = _kube.For(CrscResources.ContainerCheckpoints);
        _contentsApi = _kube.For(CrscResources.ContainerCheckpointContents);
        _restoresApi = _kube.For(CrscResources.Restores);
    }

    public async Task InitializeAsync()
    {
        await _deployApi.SeedAsync(new Deployment
        {
            Metadata = new ObjectMeta { Namespace = Ns, Name = "web", Annotations = new() { [Annotations.CheckpointRestore] = "true" } },
        });
        await SeedNodeAsync("n2", "True");
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running);
        _stop.Dispose();
    }

    /// <summary>A new reconciler over caches that show the API as it is now (a new leader); reconciles the Deployment once.</summary>
    private async Task<ReconcileResult> ReconcileAsync(NodeLostRestoreOptions? options = null)
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
        var contents = Informer(_contentsApi);
        var restores = Informer(_restoresApi);
        foreach (var i in new IInformer[] { pods, deployments, checkpoints, contents, restores }) await i.WaitForSyncAsync(_stop.Token);
        var reconciler = new NodeLostRestoreReconciler(_kube, pods, deployments, checkpoints, contents, restores, _events,
            options ?? new NodeLostRestoreOptions(), _time, NullLogger.Instance);
        return await reconciler.ReconcileAsync(new ObjectKey(Ns, "web"), CancellationToken.None);
    }

    private Task SeedNodeAsync(string name, string ready, DateTimeOffset? since = null) =>
        _nodesApi.SeedAsync(new Node
        {
            Metadata = new ObjectMeta { Name = name },
            Spec = new NodeSpec(),
            Status = new NodeStatus
            {
                Conditions = [new NodeCondition
                {
                    Type = "Ready", Status = ready, Reason = ready == "True" ? "KubeletReady" : "NodeStatusUnknown",
                    LastTransitionTime = since ?? LostAt.AddDays(-1),
                }],
            },
        });

    /// <summary>Node n1 stopped posting its status at <see cref="LostAt"/> (the node controller made Ready Unknown).</summary>
    private Task LoseNodeAsync() => SeedNodeAsync("n1", "Unknown", LostAt);

    private Task<Pod> SeedPodAsync(string name, DateTimeOffset created, string node = "n2", Dictionary<string, string>? annotations = null,
        DateTimeOffset? deleting = null, string container = "app") =>
        _podsApi.SeedAsync(new Pod
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns,
                Name = name,
                CreationTimestamp = created,
                DeletionTimestamp = deleting,
                Annotations = annotations,
                Labels = new() { [PodOwnerWorkloadResolver.PodTemplateHashLabel] = "7d9f8b6c5" },
                OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = "web-7d9f8b6c5", Uid = "rs-uid", Controller = true }],
            },
            Spec = new PodSpec { NodeName = node, Containers = [new Container { Name = container, Image = "registry.local/app:1" }] },
            Status = new PodStatus { Phase = "Running" },
        });

    private async Task SeedCheckpointAsync(string name, DateTimeOffset at, string pod = OldPod, string node = "n1", string? reason = null,
        ContainerCheckpointPhase phase = ContainerCheckpointPhase.Completed, CheckpointCopy? copy = null)
    {
        await _contentsApi.SeedAsync(new ContainerCheckpointContent
        {
            Metadata = new ObjectMeta { Name = "content-" + name },
            Spec = new ContainerCheckpointContentSpec
            {
                Node = node, ImageReference = $"127.0.0.1:5055/crsc/{Ns}/{name}:1",
                CheckpointRef = new NamespacedObjectReference { Namespace = Ns, Name = name },
            },
            Status = copy is null ? null : new ContainerCheckpointContentStatus { Copies = [copy] },
        });
        await _checkpointsApi.SeedAsync(new ContainerCheckpoint
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns,
                Name = name,
                Labels = new() { [Labels.Workload] = "web", [Labels.Container] = "app" },
                Annotations = reason is null ? [] : new() { [Annotations.CheckpointReason] = reason },
            },
            Spec = new ContainerCheckpointSpec { PodName = pod, Container = "app" },
            Status = new ContainerCheckpointStatus { Phase = phase, Node = node, StartedAt = at, CompletedAt = at.AddSeconds(2), ContentName = "content-" + name },
        });
    }

    private List<(string Pod, string Checkpoint)> Asked() => _podsApi.AllStored()
        .Where(p => p.Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFrom) is not null)
        .Select(p => (p.Metadata.Name!, p.Metadata.Annotations![Annotations.RestoreFrom]))
        .OrderBy(x => x.Item1, StringComparer.Ordinal).ToList();

    [Fact]
    public async Task The_replacement_of_a_pod_evicted_from_a_not_ready_node_is_asked_to_restore_that_pods_newest_checkpoint()
    {
        await LoseNodeAsync();
        // the lost pod: evicted (being deleted; its kubelet is gone, so it stays Terminating)
        await SeedPodAsync(OldPod, LostAt.AddHours(-2), node: "n1", deleting: LostAt.AddMinutes(5));
        await SeedCheckpointAsync("web-app-1140", LostAt.AddMinutes(-20));
        await SeedCheckpointAsync("web-app-1150", LostAt.AddMinutes(-10));
        // a failed later one is not the memory to bring back
        await SeedCheckpointAsync("web-app-1158", LostAt.AddMinutes(-2), phase: ContainerCheckpointPhase.Failed);
        // the ReplicaSet's replacement, made at the eviction
        await SeedPodAsync("web-7d9f8b6c5-new", LostAt.AddMinutes(5).AddSeconds(1));

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());
        Assert.Equal([("web-7d9f8b6c5-new", "web-app-1150")], Asked());
        // the node of the replacement makes the Restore (after fetching the archive), not the leader
        Assert.Empty(_restoresApi.AllStored());
        var e = Assert.Single(_events.Events, e => e.Reason == NodeLostRestoreReconciler.RestoreRequestedReason);
        Assert.Contains($"replaces pod {OldPod} of lost node n1 (its Node is not Ready (Unknown, NodeStatusUnknown))", e.Message);

        // again, with another pod made since (a scale-up): the checkpoint is claimed by the annotation, nothing more
        await SeedPodAsync("web-7d9f8b6c5-more", LostAt.AddMinutes(6));
        await ReconcileAsync();
        Assert.Equal([("web-7d9f8b6c5-new", "web-app-1150")], Asked());
        Assert.Single(_events.Events, e => e.Reason == NodeLostRestoreReconciler.RestoreRequestedReason);
    }

    [Fact]
    public async Task The_newest_checkpoint_with_a_copy_off_the_lost_node_is_chosen_else_the_newest()
    {
        await LoseNodeAsync();
        var registry = new CheckpointCopy { Kind = CheckpointCopyKind.Registry, ImageReference = "registry.local/crsc/web-app-1150:1" };
        await SeedCheckpointAsync("web-app-1140", LostAt.AddMinutes(-20), copy: new CheckpointCopy { Kind = CheckpointCopyKind.Registry, ImageReference = "registry.local/crsc/web-app-1140:1" });
        await SeedCheckpointAsync("web-app-1150", LostAt.AddMinutes(-10), copy: registry);
        // completed just before the node was lost, not copied yet (its copy on n1 itself does not count)
        await SeedCheckpointAsync("web-app-1159", LostAt.AddMinutes(-1),
            copy: new CheckpointCopy { Kind = CheckpointCopyKind.Node, Node = "n1", ImageReference = "127.0.0.1:5055/x:1" });
        // another pod lost with the node, none of whose checkpoints was copied: its newest
        await SeedCheckpointAsync("web-app-b-1150", LostAt.AddMinutes(-10), pod: "web-7d9f8b6c5-b");
        await SeedCheckpointAsync("web-app-b-1155", LostAt.AddMinutes(-5), pod: "web-7d9f8b6c5-b");
        await SeedPodAsync("web-7d9f8b6c5-x", LostAt.AddMinutes(5));
        await SeedPodAsync("web-7d9f8b6c5-y", LostAt.AddMinutes(5).AddSeconds(1));
        await ReconcileAsync();
        // newest memory first: web-app-b-1155 (5 min old) before web-app-1150 (10 min old, copied)
        Assert.Equal([("web-7d9f8b6c5-x", "web-app-b-1155"), ("web-7d9f8b6c5-y", "web-app-1150")], Asked());
    }

    [Fact]
    public async Task When_the_node_object_is_gone_and_its_pods_with_it_the_replacement_is_asked_too()
    {
        // no Node n1 at all (deleted by the cloud controller), and the pod garbage-collected with it
        await SeedCheckpointAsync("web-app-1150", LostAt.AddMinutes(-10));
        // no replacement yet: looked at again when the window ends (a new pod brings the workload back sooner)
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromMinutes(14)), await ReconcileAsync());
        await SeedPodAsync("web-7d9f8b6c5-new", LostAt.AddSeconds(3));
        await ReconcileAsync();
        Assert.Equal([("web-7d9f8b6c5-new", "web-app-1150")], Asked());
        Assert.Contains(_events.Events, e => e.Message.Contains("(its Node no longer exists)"));
    }

    [Fact]
    public async Task Two_pods_lost_with_the_node_each_give_their_memory_to_one_replacement()
    {
        await LoseNodeAsync();
        await SeedCheckpointAsync("web-app-a-1150", LostAt.AddMinutes(-10), pod: "web-7d9f8b6c5-a");
        await SeedCheckpointAsync("web-app-b-1155", LostAt.AddMinutes(-5), pod: "web-7d9f8b6c5-b");
        await SeedPodAsync("web-7d9f8b6c5-x", LostAt.AddMinutes(5));
        await SeedPodAsync("web-7d9f8b6c5-y", LostAt.AddMinutes(5).AddSeconds(1), node: "n3");
        await SeedNodeAsync("n3", "True");
        await ReconcileAsync();
        // the newest memory goes to the first replacement
        Assert.Equal([("web-7d9f8b6c5-x", "web-app-b-1155"), ("web-7d9f8b6c5-y", "web-app-a-1150")], Asked());
    }

    [Fact]
    public async Task A_pod_gone_from_a_node_that_is_there_is_not_a_lost_pod()
    {
        // a rollout or a scale-down deleted the pod; its node is Ready
        await SeedNodeAsync("n1", "True");
        await SeedCheckpointAsync("web-app-1150", LostAt.AddMinutes(-10));
        await SeedPodAsync("web-7d9f8b6c5-new", LostAt.AddMinutes(5));
        await ReconcileAsync();
        Assert.Empty(Asked());
    }

    [Fact]
    public async Task A_pod_still_on_its_not_ready_node_is_not_replaced_yet()
    {
        await LoseNodeAsync();
        // not evicted yet (the toleration of not-ready is 5 minutes): its checkpoint is not given to another pod
        await SeedPodAsync(OldPod, LostAt.AddHours(-2), node: "n1");
        await SeedCheckpointAsync("web-app-1150", LostAt.AddMinutes(-10));
        await SeedPodAsync("web-7d9f8b6c5-other", LostAt.AddMinutes(2));
        await ReconcileAsync();
        Assert.Empty(Asked());
    }

    [Fact]
    public async Task Old_memory_pods_made_before_the_loss_and_checkpoints_in_use_are_left_alone()
    {
        await LoseNodeAsync();
        await SeedCheckpointAsync("web-app-1150", LostAt.AddMinutes(-10));
        // made after the checkpoint but well before the node was lost: another replica, with its own memory
        await SeedPodAsync("web-7d9f8b6c5-before", LostAt.AddMinutes(-5));
        // a replacement made later than the window allows
        await SeedPodAsync("web-7d9f8b6c5-late", LostAt.AddMinutes(21));
        await ReconcileAsync(new NodeLostRestoreOptions { Window = TimeSpan.FromMinutes(30) });
        Assert.Empty(Asked());
        // a shorter window than the checkpoint's age: nothing even for a timely replacement
        await SeedPodAsync("web-7d9f8b6c5-new", LostAt.AddMinutes(5));
        await ReconcileAsync(new NodeLostRestoreOptions { Window = TimeSpan.FromMinutes(12) });
        Assert.Empty(Asked());
        // a Restore names it already (a person, or the failure detector)
        await _restoresApi.SeedAsync(new Restore
        {
            Metadata = new ObjectMeta { Namespace = Ns, Name = "by-hand" },
            Spec = new RestoreSpec { Target = new RestoreTarget { Kind = RestoreTargetKind.Deployment, Name = "web" }, CheckpointName = "web-app-1150" },
        });
        await ReconcileAsync();
        Assert.Empty(Asked());
        // without it, the timely replacement is asked
        await _restoresApi.DeleteAsync(Ns, "by-hand", null, CancellationToken.None);
        await ReconcileAsync();
        Assert.Equal([("web-7d9f8b6c5-new", "web-app-1150")], Asked());
    }

    [Fact]
    public async Task Once_the_window_has_passed_a_replacement_that_ran_cold_meanwhile_is_not_asked()
    {
        await LoseNodeAsync();
        await SeedCheckpointAsync("web-app-1150", LostAt.AddMinutes(-10));
        await SeedPodAsync("web-7d9f8b6c5-new", LostAt.AddMinutes(5));
        // a leader that first looks 36 minutes after the checkpoint (the replacement has run cold for 21)
        _time.SetUtcNow(LostAt.AddMinutes(26));
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());
        Assert.Empty(Asked());
    }

    [Fact]
    public async Task Drain_and_shutdown_checkpoints_are_left_to_the_node_away_restore_and_restored_pods_are_not_asked()
    {
        await LoseNodeAsync();
        await SeedCheckpointAsync("web-app-away-1159", LostAt.AddMinutes(-1), reason: CheckpointReasons.NodeShutdown);
        await SeedCheckpointAsync("web-app-1150", LostAt.AddMinutes(-10));
        await SeedPodAsync("web-7d9f8b6c5-new", LostAt.AddMinutes(5));
        await ReconcileAsync();
        Assert.Empty(Asked());

        await _checkpointsApi.DeleteAsync(Ns, "web-app-away-1159", null, CancellationToken.None);
        // the only replacement runs a checkpoint image already, or names a checkpoint of its own
        await SeedPodAsync("web-7d9f8b6c5-new", LostAt.AddMinutes(5), annotations: new() { [Annotations.RestoredFrom] = "web-app-other" });
        await ReconcileAsync();
        Assert.Empty(Asked());
        await SeedPodAsync("web-7d9f8b6c5-new", LostAt.AddMinutes(5), annotations: new() { [Annotations.RestoreFrom] = "web-app-mine" });
        await ReconcileAsync();
        Assert.Equal([("web-7d9f8b6c5-new", "web-app-mine")], Asked());
    }

    [Fact]
    public async Task A_pod_changed_between_the_read_and_the_patch_is_not_overwritten()
    {
        await LoseNodeAsync();
        await SeedCheckpointAsync("web-app-1150", LostAt.AddMinutes(-10));
        await SeedPodAsync("web-7d9f8b6c5-new", LostAt.AddMinutes(5));
        // someone names another checkpoint on the pod right before crsc's patch: the patch is conditional on the read
        _podsApi.BeforeCall = (verb, _) =>
        {
            if (verb != "patch") return;
            _podsApi.BeforeCall = null;
            var pod = _podsApi.AllStored().Single();
            pod.Metadata.Annotations = new() { [Annotations.RestoreFrom] = "web-app-mine" };
            _podsApi.SeedAsync(pod).GetAwaiter().GetResult();
        };
        await ReconcileAsync();
        Assert.Equal([("web-7d9f8b6c5-new", "web-app-mine")], Asked());
        Assert.DoesNotContain(_events.Events, e => e.Reason == NodeLostRestoreReconciler.RestoreRequestedReason);
    }
}

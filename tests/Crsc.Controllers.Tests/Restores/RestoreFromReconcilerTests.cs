using System.Collections.Concurrent;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Restores;
using Crsc.Controllers.Storage;
using Crsc.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using static Crsc.Controllers.Tests.Restores.RestoreFixture;

namespace Crsc.Controllers.Tests.Restores;

/// <summary>A recording <see cref="ICheckpointTransfer"/>: answers each call with <see cref="OnFetch"/>, else a local image.</summary>
public sealed class FakeCheckpointTransfer : ICheckpointTransfer
{
    public const string LocalImage = "10.0.0.2:5055/shop/counter-app@sha256:" + "2222222222222222222222222222222222222222222222222222222222222222";

    public ConcurrentQueue<CheckpointTransferRequest> Calls { get; } = new();
    public Func<CheckpointTransferRequest, IProgress<long>?, CancellationToken, Task<CheckpointTransferResult>>? OnFetch { get; set; }

    public Task<CheckpointTransferResult> FetchAsync(CheckpointTransferRequest request, IProgress<long>? progress, CancellationToken ct)
    {
        Calls.Enqueue(request);
        return OnFetch?.Invoke(request, progress, ct) ?? Task.FromResult(new CheckpointTransferResult(LocalImage, "archive-1", 4096, false));
    }

    public IReadOnlyList<string> Images => [.. Calls.Select(c => c.ImageReference)];
}

public sealed class RestoreFromReconcilerTests : IAsyncLifetime
{
    private const string PodName = "counter-new";
    private const string Here = "n2";
    private const string Registry = "registry.example/crsc/shop/counter-app@sha256:3333333333333333333333333333333333333333333333333333333333333333";
    private readonly RestoreFixture _f = new();
    private readonly FakeCheckpointTransfer _transfer = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _running = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running);
        await _f.DisposeAsync();
        _stop.Dispose();
    }

    private DateTimeOffset Now => _f.Time.GetUtcNow();

    // ---- world ----

    /// <summary>
    /// Checkpoint c1 taken on n1 (its Content with an archive id), nodes n1 and n2 there (Node Ready, CheckpointNode able
    /// to restore), and the annotated pod running on <paramref name="node"/>.
    /// </summary>
    private async Task SeedAsync(string node = Here, string annotation = "c1", bool originThere = true, bool running = true)
    {
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        var content = _f.ContentsApi.Stored(null, "ckpt-c1")!;
        content.Metadata.Annotations = new() { [Annotations.ArchiveId] = "archive-1" };
        await _f.ContentsApi.SeedAsync(content);
        await _f.SetNodeRestoreAsync(Here, CapabilityState.Supported, "restores");
        await NodeAsync(Here, ready: true);
        if (originThere)
        {
            await _f.SetNodeRestoreAsync("n1", CapabilityState.Supported, "restores");
            await NodeAsync("n1", ready: true);
        }
        await _f.CreatePodAsync(PodName, node: node, replicaSet: null);
        var pod = _f.Pod(PodName)!;
        pod.Metadata.Annotations = new() { [Annotations.RestoreFrom] = annotation };
        if (!running) pod.Status!.ContainerStatuses![0].State = Waiting("ContainerCreating");
        await _f.PodsApi.SeedAsync(pod);
    }

    private async Task NodeAsync(string name, bool ready, string reason = "KubeletReady")
    {
        var api = _f.Kube.For(Resources.Nodes);
        await api.SeedAsync(new Crsc.Api.Kubernetes.Node
        {
            Metadata = new ObjectMeta { Name = name },
            Status = new NodeStatus { Conditions = [new NodeCondition { Type = "Ready", Status = ready ? "True" : "Unknown", Reason = reason }] },
        });
    }

    private async Task AddCopyAsync(CheckpointCopyKind kind, string image, string? node = null)
    {
        var content = _f.ContentsApi.Stored(null, "ckpt-c1")!;
        content.Status ??= new ContainerCheckpointContentStatus();
        (content.Status.Copies ??= []).Add(new CheckpointCopy { Kind = kind, Node = node, ImageReference = image, CopiedAt = Now });
        await _f.ContentsApi.SeedAsync(content);
    }

    /// <summary>A node agent of <paramref name="node"/> as the daemon starts it: fresh caches.</summary>
    private async Task<Agent> StartAgentAsync(string node = Here, RestoreFromOptions? options = null)
    {
        var pods = Run(new Informer<Pod>(_f.PodsApi, new InformerOptions { FieldSelector = $"spec.nodeName={node}" }, TimeProvider.System,
            NullLogger.Instance));
        var checkpoints = Run(new Informer<ContainerCheckpoint>(_f.CheckpointsApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance));
        var contents = Run(new Informer<ContainerCheckpointContent>(_f.ContentsApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance));
        var restores = Run(new Informer<Restore>(_f.RestoresApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance));
        var nodes = Run(new Informer<CheckpointNode>(_f.NodesApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance));
        var reconciler = new RestoreFromReconciler(_f.Kube, pods, checkpoints, contents, restores, nodes, _transfer, _f.Events,
            options ?? new RestoreFromOptions { NodeName = node }, _f.Time, NullLogger.Instance);
        await Task.WhenAll(pods.WaitForSyncAsync(_stop.Token), checkpoints.WaitForSyncAsync(_stop.Token), contents.WaitForSyncAsync(_stop.Token),
            restores.WaitForSyncAsync(_stop.Token), nodes.WaitForSyncAsync(_stop.Token));
        return new Agent(_f, node, reconciler, pods, checkpoints, contents, restores, nodes);
    }

    private sealed record Agent(RestoreFixture F, string Node, RestoreFromReconciler Reconciler, Informer<Pod> Pods,
        Informer<ContainerCheckpoint> Checkpoints, Informer<ContainerCheckpointContent> Contents, Informer<Restore> Restores,
        Informer<CheckpointNode> Nodes)
    {
        public async Task<ReconcileResult> ReconcileAsync(string pod = RestoreFromReconcilerTests.PodName)
        {
            await Eventually.TrueAsync(() => InSync(Checkpoints, F.CheckpointsApi) && InSync(Contents, F.ContentsApi)
                && InSync(Restores, F.RestoresApi) && InSync(Nodes, F.NodesApi)
                && Pods.List().Count == F.PodsApi.AllStored().Count(p => p.Spec.NodeName == Node)
                && Pods.List().All(p => F.PodsApi.Stored(p.Metadata.Namespace, p.Metadata.Name!)?.Metadata.ResourceVersion == p.Metadata.ResourceVersion),
                "agent caches as stored");
            return await Reconciler.ReconcileAsync(new ObjectKey(Ns, pod), CancellationToken.None);
        }
    }

    private Informer<T> Run<T>(Informer<T> informer) where T : class, IKubernetesObject
    {
        _running.Add(informer.RunAsync(_stop.Token));
        return informer;
    }

    private PodCondition? Condition() => _f.Pod(PodName)!.Status!.Conditions?.SingleOrDefault(c => c.Type == PodConditions.RestoreFrom);

    private string RestoreOfPod() => RestoreFromReconciler.RestoreName(PodName, _f.Pod(PodName)!.Metadata.Uid!);

    private IReadOnlyList<(string Type, string Reason, string Message)> PodEvents() =>
        [.. _f.Events.Events.Where(e => e.Kind == "Pod" && e.Name == PodName).Select(e => (e.Type, e.Reason, e.Message))];

    private void AssertColdWith(string reason, params string[] mentions)
    {
        var c = Condition();
        Assert.NotNull(c);
        Assert.Equal(("False", reason), (c.Status, c.Reason));
        foreach (var m in mentions) Assert.Contains(m, c.Message);
        Assert.Contains(PodEvents(), e => e.Type == "Warning" && e.Reason == reason);
        Assert.Empty(_f.RestoresApi.AllStored());
    }

    // ---- the happy path ----

    [Fact]
    public async Task Fetches_the_checkpoint_from_the_node_that_took_it_records_the_copy_and_makes_one_Restore()
    {
        await SeedAsync();
        var agent = await StartAgentAsync();

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync());

        var call = Assert.Single(_transfer.Calls);
        Assert.Equal(new CheckpointTransferRequest(ImageOf("c1"), FromPeer: true, CheckpointId: "archive-1"), call);
        var copy = Assert.Single(_f.ContentsApi.Stored(null, "ckpt-c1")!.Status!.Copies!);
        Assert.Equal((CheckpointCopyKind.Node, Here, FakeCheckpointTransfer.LocalImage), (copy.Kind, copy.Node, copy.ImageReference));
        Assert.NotNull(copy.CopiedAt);

        var restore = Assert.Single(_f.RestoresApi.AllStored());
        var uid = _f.Pod(PodName)!.Metadata.Uid!;
        Assert.Equal(RestoreFromReconciler.RestoreName(PodName, uid), restore.Metadata.Name);
        Assert.Equal(uid, restore.Metadata.Labels![Labels.RestoreFromPodUid]);
        Assert.Equal(PodName, restore.Metadata.Annotations![Annotations.RestoreFromPod]);
        Assert.Equal((RestoreTargetKind.Pod, PodName), (restore.Spec.Target.Kind, restore.Spec.Target.Name));
        Assert.Equal((RestoreFixture.Container, "c1", RestoreFallback.ColdStart), (restore.Spec.Container, restore.Spec.CheckpointName, restore.Spec.Fallback));
        var owner = Assert.Single(restore.Metadata.OwnerReferences!);
        Assert.Equal(("Pod", PodName, uid), (owner.Kind, owner.Name, owner.Uid));

        var condition = Condition()!;
        Assert.Equal(("True", RestoreFromReconciler.RestoreRequested), (condition.Status, condition.Reason));
        Assert.Contains(restore.Metadata.Name!, condition.Message);
        Assert.Contains(PodEvents(), e => e.Reason == "CheckpointFetched");

        // again, and after a restart of the agent: nothing more
        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync());
        var restarted = await StartAgentAsync();
        Assert.Equal(ReconcileResult.Done, await restarted.ReconcileAsync());
        Assert.Single(_transfer.Calls);
        Assert.Single(_f.RestoresApi.AllStored());
        Assert.Single(_f.ContentsApi.Stored(null, "ckpt-c1")!.Status!.Copies!);
    }

    [Fact]
    public async Task An_agent_restarted_after_making_the_Restore_but_before_the_condition_writes_the_condition_and_nothing_else()
    {
        await SeedAsync(node: "n1"); // local: no transfer
        var pod = _f.Pod(PodName)!;
        await _f.RestoresApi.SeedAsync(new Restore
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns, Name = RestoreOfPod(), Labels = new() { [Labels.RestoreFromPodUid] = pod.Metadata.Uid! },
            },
            Spec = new RestoreSpec { Target = new RestoreTarget { Kind = RestoreTargetKind.Pod, Name = PodName }, CheckpointName = "c1" },
        });
        var agent = await StartAgentAsync("n1");

        await agent.ReconcileAsync();

        Assert.Single(_f.RestoresApi.AllStored());
        Assert.Equal(0, _f.RestoresApi.CallCount("create"));
        Assert.Equal(RestoreFromReconciler.RestoreRequested, Condition()!.Reason);
    }

    [Fact]
    public void A_pod_made_again_under_the_same_name_gets_a_Restore_of_its_own()
    {
        var first = RestoreFromReconciler.RestoreName(PodName, "uid-1");
        Assert.Equal(first, RestoreFromReconciler.RestoreName(PodName, "uid-1"));
        Assert.NotEqual(first, RestoreFromReconciler.RestoreName(PodName, "uid-2"));
        Assert.StartsWith(PodName + "-from-", first);

        var longName = new string('a', 250);
        var cut = RestoreFromReconciler.RestoreName(longName, "uid-1");
        Assert.Equal(253, cut.Length);
        Assert.EndsWith(first[PodName.Length..], cut);
    }

    [Fact]
    public async Task A_checkpoint_in_this_nodes_store_is_not_fetched()
    {
        await SeedAsync(node: "n1");
        var agent = await StartAgentAsync("n1");

        await agent.ReconcileAsync();

        Assert.Empty(_transfer.Calls);
        Assert.Single(_f.RestoresApi.AllStored());
        Assert.Null(_f.ContentsApi.Stored(null, "ckpt-c1")!.Status?.Copies);
    }

    [Fact]
    public async Task A_copy_this_node_fetched_before_is_not_fetched_again()
    {
        await SeedAsync();
        await AddCopyAsync(CheckpointCopyKind.Node, FakeCheckpointTransfer.LocalImage, Here);
        var agent = await StartAgentAsync();

        await agent.ReconcileAsync();

        Assert.Empty(_transfer.Calls);
        Assert.Single(_f.RestoresApi.AllStored());
    }

    [Fact]
    public async Task Waits_for_the_pod_to_run_the_checkpoints_container()
    {
        await SeedAsync(running: false);
        var agent = await StartAgentAsync();

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync());

        Assert.Empty(_transfer.Calls);
        Assert.Empty(_f.RestoresApi.AllStored());
        Assert.Null(Condition());

        await _f.SetContainerStateAsync(PodName, Running(Now));
        await agent.ReconcileAsync();
        Assert.Single(_transfer.Calls);
        Assert.Single(_f.RestoresApi.AllStored());
    }

    // ---- sources ----

    [Fact]
    public async Task A_registry_copy_is_fetched_before_the_node_that_took_it()
    {
        await SeedAsync();
        await AddCopyAsync(CheckpointCopyKind.Registry, Registry, "n1");
        var agent = await StartAgentAsync();

        await agent.ReconcileAsync();

        var call = Assert.Single(_transfer.Calls);
        Assert.Equal((Registry, false, "archive-1"), (call.ImageReference, call.FromPeer, call.CheckpointId));
        Assert.Single(_f.RestoresApi.AllStored());
    }

    [Fact]
    public async Task Origin_gone_and_no_copy_is_CheckpointUnreachable_naming_the_node_and_the_checkpoint_and_tried_again_later()
    {
        await SeedAsync(originThere: false); // n1 has neither a CheckpointNode nor a Node any more
        var agent = await StartAgentAsync();

        var first = await agent.ReconcileAsync();

        Assert.Empty(_transfer.Calls);
        AssertColdWith(RestoreFromReconciler.CheckpointUnreachable, "checkpoint shop/c1", "node n1", "gone", "no registry copy");
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(10)), first);
        // the next pass, once the wait is over, waits longer
        _f.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(20)), await agent.ReconcileAsync());
    }

    [Fact]
    public async Task A_pod_enqueued_again_within_the_wait_asks_no_source_until_the_wait_is_over_or_the_Content_changes()
    {
        // its own condition write enqueues the pod again at once: that is not a new pass (the E2E saw a peer asked six
        // times within a second and the wait at its 5 min maximum)
        await SeedAsync();
        _transfer.OnFetch = (r, _, _) => throw new CheckpointTransferException(r.ImageReference, "connection refused", refused: false);
        var agent = await StartAgentAsync();

        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(10)), await agent.ReconcileAsync());
        _f.Time.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(6)), await agent.ReconcileAsync());
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(6)), await agent.ReconcileAsync());
        Assert.Single(_transfer.Calls);
        AssertColdWith(RestoreFromReconciler.CheckpointUnreachable, "trying again in 10s");

        // the wait is over: a second pass, and the one after it waits twice as long
        _f.Time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(20)), await agent.ReconcileAsync());
        Assert.Equal(2, _transfer.Calls.Count);

        // a new copy on the Content is worth asking at once
        _transfer.OnFetch = null;
        await AddCopyAsync(CheckpointCopyKind.Registry, "registry.example/crsc/shop/counter/app@sha256:" + new string('d', 64));
        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync());
        Assert.Equal(3, _transfer.Calls.Count);
    }

    [Fact]
    public async Task A_node_whose_kubelet_is_not_Ready_is_gone_and_not_asked()
    {
        await SeedAsync();
        await NodeAsync("n1", ready: false, reason: "NodeStatusUnknown");
        var agent = await StartAgentAsync();

        await agent.ReconcileAsync();

        Assert.Empty(_transfer.Calls);
        AssertColdWith(RestoreFromReconciler.CheckpointUnreachable, "node n1", "not Ready", "NodeStatusUnknown");
    }

    [Fact]
    public async Task A_source_that_answers_with_an_error_is_named_with_its_answer()
    {
        await SeedAsync();
        _transfer.OnFetch = (r, _, _) => throw new CheckpointTransferException(r.ImageReference, "connection refused", refused: false);
        var agent = await StartAgentAsync();

        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(10)), await agent.ReconcileAsync());

        Assert.Single(_transfer.Calls);
        AssertColdWith(RestoreFromReconciler.CheckpointUnreachable, "node n1", "answered: connection refused", "no registry copy");

        // the node answers again: the next pass fetches
        _transfer.OnFetch = null;
        _f.Time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync());
        Assert.Single(_f.RestoresApi.AllStored());
    }

    [Fact]
    public async Task Origin_gone_with_a_registry_copy_is_fetched_from_the_registry()
    {
        await SeedAsync(originThere: false);
        await AddCopyAsync(CheckpointCopyKind.Registry, Registry, "n1");
        var agent = await StartAgentAsync();

        await agent.ReconcileAsync();

        Assert.Equal([Registry], _transfer.Images);
        Assert.Single(_f.RestoresApi.AllStored());
        Assert.Equal(RestoreFromReconciler.RestoreRequested, Condition()!.Reason);
    }

    [Fact]
    public async Task A_refused_transfer_is_CheckpointRefused_and_that_source_is_not_asked_again_in_the_pass()
    {
        await SeedAsync();
        _transfer.OnFetch = (r, _, _) => throw new CheckpointTransferException(r.ImageReference, "digest mismatch: sha256:bad", refused: true);
        var agent = await StartAgentAsync();

        await agent.ReconcileAsync();

        Assert.Equal([ImageOf("c1")], _transfer.Images);
        AssertColdWith(RestoreFromReconciler.CheckpointRefused, "refused", "digest mismatch: sha256:bad");
    }

    [Fact]
    public async Task A_refused_registry_copy_gives_way_to_the_node_that_took_it()
    {
        await SeedAsync();
        await AddCopyAsync(CheckpointCopyKind.Registry, Registry, "n1");
        _transfer.OnFetch = (r, _, _) => r.ImageReference == Registry
            ? throw new CheckpointTransferException(r.ImageReference, "MAC does not verify", refused: true)
            : Task.FromResult(new CheckpointTransferResult(FakeCheckpointTransfer.LocalImage, "archive-1", 4096, false));
        var agent = await StartAgentAsync();

        await agent.ReconcileAsync();

        Assert.Equal([Registry, ImageOf("c1")], _transfer.Images);
        Assert.Single(_f.RestoresApi.AllStored());
    }

    [Fact]
    public async Task While_fetching_the_condition_tells_the_bytes_so_far()
    {
        await SeedAsync();
        var release = new TaskCompletionSource();
        var reported = new TaskCompletionSource();
        _transfer.OnFetch = async (_, progress, ct) =>
        {
            progress!.Report(1024);
            reported.SetResult();
            await release.Task.WaitAsync(ct);
            return new CheckpointTransferResult(FakeCheckpointTransfer.LocalImage, "archive-1", 4096, false);
        };
        var agent = await StartAgentAsync();

        var reconcile = agent.ReconcileAsync();
        await reported.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await Eventually.TrueAsync(() => Condition()?.Reason == RestoreFromReconciler.Fetching, "Fetching");
        Assert.Equal("Unknown", Condition()!.Status);
        Assert.Contains("0 of 4096 bytes", Condition()!.Message);

        _f.Time.Advance(TimeSpan.FromSeconds(2));
        await Eventually.TrueAsync(() => Condition()?.Message?.Contains("1024 of 4096 bytes", StringComparison.Ordinal) == true,
            "progress written after the interval");
        Assert.Contains("node n1", Condition()!.Message);

        release.SetResult();
        Assert.Equal(ReconcileResult.Done, await reconcile);
        Assert.Equal(RestoreFromReconciler.RestoreRequested, Condition()!.Reason);
    }

    // ---- what is wrong ----

    [Theory]
    [InlineData("Not_A_Name", RestoreFromReconciler.InvalidAnnotation, "not the name of a ContainerCheckpoint")]
    [InlineData("c9", RestoreFromReconciler.CheckpointNotFound, "there is no shop/c9")]
    public async Task A_bad_annotation_is_the_pods_condition_and_no_Restore(string value, string reason, string why)
    {
        await SeedAsync(annotation: value);
        var agent = await StartAgentAsync();

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync());

        Assert.Empty(_transfer.Calls);
        AssertColdWith(reason, $"pod {PodName}", $"\"{value}\"", why);
        Assert.Equal("Running", _f.Pod(PodName)!.Status!.Phase);
    }

    [Fact]
    public async Task A_checkpoint_of_a_container_the_pod_does_not_have_is_NoSuchContainer()
    {
        await SeedAsync();
        var c = _f.CheckpointsApi.Stored(Ns, "c1")!;
        c.Spec.Container = "sidecar";
        await _f.CheckpointsApi.SeedAsync(c);
        var agent = await StartAgentAsync();

        await agent.ReconcileAsync();

        Assert.Empty(_transfer.Calls);
        AssertColdWith(RestoreFromReconciler.NoSuchContainer, "container sidecar", $"it has {RestoreFixture.Container}");
    }

    [Fact]
    public async Task An_unfinished_checkpoint_is_waited_for()
    {
        await SeedAsync();
        var c = _f.CheckpointsApi.Stored(Ns, "c1")!;
        c.Status!.Phase = ContainerCheckpointPhase.Running;
        await _f.CheckpointsApi.SeedAsync(c);
        var agent = await StartAgentAsync();

        await agent.ReconcileAsync();

        Assert.Empty(_transfer.Calls);
        AssertColdWith(RestoreFromReconciler.CheckpointNotCompleted, "not finished", "phase Running");
    }

    [Fact]
    public async Task A_node_whose_runtime_cannot_restore_fetches_nothing_and_says_why()
    {
        await SeedAsync();
        await _f.SetNodeRestoreAsync(Here, CapabilityState.NotSupported, "criu is not installed", fix: "install criu");
        var agent = await StartAgentAsync();

        await agent.ReconcileAsync();

        Assert.Empty(_transfer.Calls);
        AssertColdWith(RestoreFromReconciler.RuntimeCannotRestore, $"node {Here}", "containerd v2.3.4", "criu is not installed", "install criu");
    }

    [Fact]
    public async Task The_same_verdict_again_writes_nothing_and_records_no_second_Event()
    {
        await SeedAsync(annotation: "c9");
        var agent = await StartAgentAsync();
        await agent.ReconcileAsync();
        var patches = _f.PodsApi.CallCount("patch");

        await agent.ReconcileAsync();

        Assert.Equal(patches, _f.PodsApi.CallCount("patch"));
        Assert.Single(PodEvents(), e => e.Reason == RestoreFromReconciler.CheckpointNotFound);
    }

    // ---- set up ----

    [Fact]
    public async Task Set_up_as_node_work_it_restores_by_watches_alone()
    {
        await SeedAsync();
        var manager = new ControllerManager(new ControllerManagerOptions
        {
            Kube = _f.Kube, Events = _f.Events, Time = TimeProvider.System, Loggers = NullLoggerFactory.Instance,
        });
        var setUp = RestoreFromReconciler.SetUp(manager, _transfer, new RestoreFromOptions { NodeName = Here });
        Assert.False(manager.Controllers.Single(c => c.Controller == setUp.Controller).LeaderOnly);
        var running = manager.RunAsync(_stop.Token);

        await Eventually.TrueAsync(() => _f.RestoresApi.AllStored().Count == 1, "Restore made");
        Assert.Single(_transfer.Calls);
        await _stop.CancelAsync();
        await running;
    }
}

/// <summary>Which image a pod's node restores from, and how the copies of a checkpoint are kept.</summary>
public sealed class RestoreFromSourcesTests : IAsyncLifetime
{
    private const string P1 = "counter-7d9f8c6b5-abcde";
    private const string Local = "10.0.0.2:5055/shop/counter-app@sha256:" + "2222222222222222222222222222222222222222222222222222222222222222";
    private const string Registry = "registry.example/crsc/shop/counter-app@sha256:" + "3333333333333333333333333333333333333333333333333333333333333333";
    private readonly RestoreFixture _f = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _f.DisposeAsync().AsTask();

    private async Task AddCopyAsync(CheckpointCopyKind kind, string image, string? node = null)
    {
        var content = _f.ContentsApi.Stored(null, "ckpt-c1")!;
        content.Status ??= new ContainerCheckpointContentStatus();
        (content.Status.Copies ??= []).Add(new CheckpointCopy { Kind = kind, Node = node, ImageReference = image, CopiedAt = _f.Time.GetUtcNow() });
        await _f.ContentsApi.SeedAsync(content);
    }

    /// <summary>Pod P1 on <paramref name="node"/>, checkpoint c1 taken on n1, a Restore of P1 from c1 chosen by the leader.</summary>
    private async Task<string?> ChosenImageAsync(string node)
    {
        await _f.CreatePodAsync(P1, node: node);
        await _f.CreateRestoreAsync("r1", kind: RestoreTargetKind.Pod, target: P1, checkpoint: "c1");
        var leader = await _f.StartLeaderAsync();
        await leader.ReconcileAsync("r1");
        return _f.Restore("r1").Status!.Image;
    }

    [Fact]
    public async Task The_chooser_takes_the_copy_in_the_pods_nodes_store()
    {
        await _f.CreateCheckpointAsync("c1", _f.Time.GetUtcNow().AddMinutes(-5));
        await _f.SetNodeRestoreAsync("n1", CapabilityState.Supported, "restores");
        await AddCopyAsync(CheckpointCopyKind.Registry, Registry, "n1");
        await AddCopyAsync(CheckpointCopyKind.Node, Local, "n2");

        Assert.Equal(Local, await ChosenImageAsync("n2"));
    }

    [Fact]
    public async Task The_chooser_takes_the_origin_while_it_is_there_and_no_copy_is_local()
    {
        await _f.CreateCheckpointAsync("c1", _f.Time.GetUtcNow().AddMinutes(-5));
        await _f.SetNodeRestoreAsync("n1", CapabilityState.Supported, "restores");
        await _f.SetNodeRestoreAsync("n3", CapabilityState.Supported, "restores");
        await AddCopyAsync(CheckpointCopyKind.Registry, Registry, "n1");
        await AddCopyAsync(CheckpointCopyKind.Node, Local, "n2");

        Assert.Equal(ImageOf("c1"), await ChosenImageAsync("n3"));
    }

    [Fact]
    public async Task The_chooser_takes_the_registry_copy_when_the_origin_is_gone()
    {
        await _f.CreateCheckpointAsync("c1", _f.Time.GetUtcNow().AddMinutes(-5));
        await _f.SetNodeRestoreAsync("n3", CapabilityState.Supported, "restores"); // n1 has no CheckpointNode: gone
        await AddCopyAsync(CheckpointCopyKind.Registry, Registry, "n1");

        Assert.Equal(Registry, await ChosenImageAsync("n3"));
    }

    [Fact]
    public void Sources_are_the_registry_then_the_origin_then_other_copies_newest_first_and_gone_nodes_are_left_out_with_why()
    {
        var content = new ContainerCheckpointContent
        {
            Metadata = new ObjectMeta { Name = "ckpt-c1" },
            Spec = new ContainerCheckpointContentSpec { Node = "n1", ImageReference = "n1/img" },
            Status = new ContainerCheckpointContentStatus
            {
                Copies =
                [
                    new CheckpointCopy { Kind = CheckpointCopyKind.Node, Node = "n3", ImageReference = "n3/img" },
                    new CheckpointCopy { Kind = CheckpointCopyKind.Node, Node = "n4", ImageReference = "n4/img" },
                    new CheckpointCopy { Kind = CheckpointCopyKind.Registry, Node = "n1", ImageReference = "reg/img" },
                ],
            },
        };

        var plan = RestoreFromSources.For(content, "n2", n => n == "n4" ? "its Node no longer exists" : null);

        Assert.Equal([("reg/img", false), ("n1/img", true), ("n3/img", true)], plan.Sources.Select(s => (s.ImageReference, s.FromPeer)));
        Assert.Equal(["node n4, which holds a copy, is gone (its Node no longer exists)"], plan.LeftOut);
        Assert.True(plan.HasRegistryCopy);

        var originGone = RestoreFromSources.For(content, "n2", n => n == "n1" ? "no CheckpointNode" : null);
        Assert.Equal(["reg/img", "n4/img", "n3/img"], originGone.Sources.Select(s => s.ImageReference));
        Assert.Contains("node n1, which took it, is gone (no CheckpointNode)", originGone.LeftOut);
    }

    [Fact]
    public void A_copy_is_recorded_once_per_node_and_the_list_is_kept_short()
    {
        var content = new ContainerCheckpointContent { Spec = new ContainerCheckpointContentSpec { Node = "n1" } };
        var t0 = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        content.Status = new ContainerCheckpointContentStatus
        {
            Copies = [new CheckpointCopy { Kind = CheckpointCopyKind.Registry, ImageReference = "reg/img", CopiedAt = t0 }],
        };
        for (var i = 0; i < ContainerCheckpointContentStatus.MaxCopies + 3; i++)
            Assert.True(RestoreFromSources.RecordCopy(content, $"node-{i}", $"node-{i}/img", t0.AddMinutes(i + 1)));
        Assert.False(RestoreFromSources.RecordCopy(content, "node-18", "node-18/img", t0.AddHours(1)));
        Assert.True(RestoreFromSources.RecordCopy(content, "node-18", "node-18/img2", t0.AddHours(1)));

        var copies = content.Status.Copies!;
        Assert.Equal(ContainerCheckpointContentStatus.MaxCopies, copies.Count);
        Assert.Single(copies, c => c.Kind == CheckpointCopyKind.Registry);
        Assert.Single(copies, c => c.Node == "node-18");
        Assert.Equal("node-18/img2", copies.Single(c => c.Node == "node-18").ImageReference);
        Assert.DoesNotContain(copies, c => c.Node is "node-0" or "node-1" or "node-2" or "node-3"); // the oldest went
    }
}

using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Autonomy;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Nodes;
using Crsc.Controllers.Storage;
using Crsc.Controllers.Tests.Autonomy;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Nodes;

/// <summary>A runner that records each request and, when given a gate, waits on it (to see how many run at once).</summary>
internal sealed class RecordingRunner(TimeProvider time) : ICheckpointRunner
{
    private readonly FakeCheckpointStore _store = new(time);
    private int _running;
    public List<CheckpointRequest> Requests { get; } = [];
    public int MaxConcurrent { get; private set; }
    public TaskCompletionSource? Gate { get; set; }
    public Func<CheckpointRequest, Exception?>? Fail { get; set; }

    public async Task<CheckpointOutcome> CheckpointAsync(CheckpointRequest request, IProgress<CheckpointProgress>? progress, CancellationToken ct)
    {
        lock (Requests)
        {
            Requests.Add(request);
            MaxConcurrent = Math.Max(MaxConcurrent, ++_running);
        }
        try
        {
            if (Gate is { } gate) await gate.Task.WaitAsync(ct);
            if (Fail?.Invoke(request) is { } e) throw e;
            var info = _store.Add(request.Namespace, request.Pod, request.Container!, request.Pod, time.GetUtcNow());
            return new CheckpointOutcome(info, "node-a", "c1", TimeSpan.Zero, TimeSpan.Zero);
        }
        finally
        {
            lock (Requests) _running--;
        }
    }

    public IReadOnlyList<CheckpointRequest> Snapshot() { lock (Requests) return [.. Requests]; }
}

public sealed class NodeGoingAwayTests
{
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 8, 0, 0, TimeSpan.Zero));

    [Fact]
    public void An_episode_starts_with_the_first_signal_shows_the_most_urgent_and_ends_when_none_is_left()
    {
        var state = new NodeGoingAway(_time);
        var changes = new List<NodeAwayChange>();
        state.Changed += changes.Add;
        Assert.False(state.Current.GoingAway);

        var start = _time.GetUtcNow();
        Assert.True(state.Report(NodeAwaySource.NodeObject, NodeAwayReason.Drain, "cordoned")!.EpisodeStarted);
        Assert.Equal((true, NodeAwayReason.Drain, "cordoned", start, 1),
            (state.Current.GoingAway, state.Current.Reason, state.Current.Detail, state.Current.Since, state.Current.Episode));
        // the same signal again changes nothing
        Assert.Null(state.Report(NodeAwaySource.NodeObject, NodeAwayReason.Drain, "cordoned"));

        _time.Advance(TimeSpan.FromSeconds(5));
        var shutdown = state.Report(NodeAwaySource.Logind, NodeAwayReason.Shutdown, "PrepareForShutdown(true)")!;
        Assert.False(shutdown.EpisodeStarted);
        Assert.Equal((NodeAwayReason.Shutdown, start, _time.GetUtcNow()), (state.Current.Reason, state.Current.Since, state.Current.Updated));

        state.Report(NodeAwaySource.Logind, null);
        Assert.Equal((NodeAwayReason.Drain, start), (state.Current.Reason, state.Current.Since));

        state.Report(NodeAwaySource.NodeObject, null);
        Assert.Equal((false, (NodeAwayReason?)null, (DateTimeOffset?)null), (state.Current.GoingAway, state.Current.Reason, state.Current.Since));

        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(state.Report(NodeAwaySource.NodeObject, NodeAwayReason.Taint, "taint x")!.EpisodeStarted);
        Assert.Equal((_time.GetUtcNow(), 2), (state.Current.Since, state.Current.Episode));
        Assert.Equal(5, changes.Count);
    }

    [Fact]
    public void A_listed_taint_names_the_cause_a_cordon_is_a_drain_and_other_taints_are_nothing()
    {
        var taints = new HashSet<string>(NodeDisruptionOptions.DefaultDrainTaints);
        static Node N(bool cordoned, params Taint[] taints) => new()
        {
            Metadata = new ObjectMeta { Name = "node-a" },
            Spec = new NodeSpec { Unschedulable = cordoned, Taints = [.. taints] },
        };
        Assert.Equal(((NodeAwayReason?)null, (string?)null),
            NodeDisruptionWatcher.Evaluate(N(false, new Taint { Key = "dedicated", Value = "gpu", Effect = "NoSchedule" }), taints));
        Assert.Equal((NodeAwayReason.Drain, "cordoned (spec.unschedulable)"), NodeDisruptionWatcher.Evaluate(N(true), taints));
        Assert.Equal((NodeAwayReason.Taint, "taint karpenter.sh/disrupted:NoSchedule (and cordoned)"),
            NodeDisruptionWatcher.Evaluate(N(true, new Taint { Key = "karpenter.sh/disrupted", Effect = "NoSchedule" }), taints));
        Assert.Equal((NodeAwayReason.Taint, "taint aws-node-termination-handler/spot-itn=1234:NoSchedule"),
            NodeDisruptionWatcher.Evaluate(N(false, new Taint { Key = "aws-node-termination-handler/spot-itn", Value = "1234", Effect = "NoSchedule" }), taints));
        foreach (var key in new[] { "ToBeDeletedByClusterAutoscaler", "karpenter.sh/disruption", "cloud.google.com/impending-node-termination" })
            Assert.Equal(NodeAwayReason.Taint, NodeDisruptionWatcher.Evaluate(N(false, new Taint { Key = key, Effect = "NoSchedule" }), taints).Reason);
    }

    [Fact]
    public void The_managed_containers_are_those_a_schedule_selects_in_its_pods_on_this_node()
    {
        static CheckpointSchedule S(string name, params string[] containers) => new()
        {
            Metadata = new ObjectMeta { Name = name, Namespace = "shop" },
            Spec = new CheckpointScheduleSpec { Target = new ScheduleTarget { Kind = ScheduleTargetKind.Deployment, Name = name }, Containers = [.. containers] },
        };
        var state = new NodeState
        {
            Node = "node-a",
            Schedules = [new SavedSchedule(S("cart"), ["cart-1", "cart-2"]), new SavedSchedule(S("db", "pg"), ["db-0", "gone"])],
            Pods =
            [
                new SavedPod("shop", "cart-1", "u1", "cart", ["app", "crsc-interceptor"]),
                new SavedPod("shop", "cart-2", "u2", "cart", ["app"]),
                new SavedPod("shop", "db-0", "u3", "db", ["pg", "metrics"]),
            ],
        };
        Assert.Equal(["shop/cart-1/app", "shop/cart-2/app", "shop/db-0/pg"],
            NodeAwayCheckpointer.ManagedOn(state).Select(c => c.ToString()));
    }

    [Fact]
    public async Task Every_managed_container_is_checkpointed_at_most_N_at_a_time_smallest_first_with_the_reason()
    {
        var runner = new RecordingRunner(_time) { Gate = new TaskCompletionSource() };
        ManagedContainer[] containers =
        [
            new("shop", "a", "app", 300 << 20), new("shop", "b", "app"), new("shop", "c", "app", 10 << 20),
            new("shop", "d", "app", 100 << 20), new("shop", "e", "app"),
        ];
        var checkpointer = new NodeAwayCheckpointer(runner, () => containers, _time, NullLogger.Instance);
        var run = checkpointer.CheckpointAllAsync(CheckpointReasons.NodeShutdown, 2, null, CancellationToken.None);
        await Eventually.TrueAsync(() => runner.Snapshot().Count == 2, "two started");
        Assert.Equal(["c", "d"], runner.Snapshot().Select(r => r.Pod));
        runner.Gate.SetResult();
        var result = await run;
        Assert.Equal(2, runner.MaxConcurrent);
        Assert.Equal(["c", "d", "a", "b", "e"], runner.Snapshot().Select(r => r.Pod));
        Assert.All(runner.Snapshot(), r => Assert.Equal("NodeShutdown", r.Reason));
        Assert.Equal((5, 0), (result.Stored, result.Failed));
    }

    [Fact]
    public async Task With_a_deadline_each_checkpoint_gets_what_is_left_and_none_starts_without_time()
    {
        var runner = new RecordingRunner(_time);
        var deadline = _time.GetUtcNow().AddSeconds(30);
        runner.Fail = r =>
        {
            if (r.Pod == "a") _time.Advance(TimeSpan.FromSeconds(29.5)); // the first one takes almost all of it
            return r.Pod == "b" ? new InvalidOperationException("runtime said no") : null;
        };
        ManagedContainer[] containers = [new("shop", "a", "app", 1), new("shop", "b", "app", 2), new("shop", "c", "app", 3)];
        var run = await new NodeAwayCheckpointer(runner, () => containers, _time, NullLogger.Instance)
            .CheckpointAllAsync(CheckpointReasons.NodeShutdown, 1, deadline, CancellationToken.None);

        Assert.Equal(TimeSpan.FromSeconds(30), runner.Snapshot()[0].Timeout);
        Assert.Single(runner.Snapshot()); // b and c: half a second left, under the minimum
        Assert.Equal(("a", (string?)null), (run.Checkpoints[0].Container.Pod, run.Checkpoints[0].Error));
        Assert.Equal(["no time left before the deadline", "no time left before the deadline"], run.Checkpoints.Skip(1).Select(c => c.Error));
        Assert.Equal((1, 2), (run.Stored, run.Failed));
    }
}

/// <summary>What the logind monitor's announcement does: the state says Shutdown, and the checkpoints fit the budget.</summary>
public sealed class ShutdownCheckpointsTests
{
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 8, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task A_shutdown_says_so_and_checkpoints_within_the_budget_a_cancel_clears_it()
    {
        var state = new NodeGoingAway(_time);
        var runner = new RecordingRunner(_time);
        ManagedContainer[] managed = [new("shop", "cart-1", "app"), new("shop", "db-0", "pg")];
        var shutdown = new ShutdownCheckpoints(state, new NodeAwayCheckpointer(runner, () => managed, _time, NullLogger.Instance), 4,
            _time, NullLogger.Instance);

        await shutdown.ShuttingDownAsync(TimeSpan.FromSeconds(25), CancellationToken.None);
        Assert.Equal((true, NodeAwayReason.Shutdown), (state.Current.GoingAway, state.Current.Reason));
        Assert.Equal([("cart-1", "NodeShutdown", TimeSpan.FromSeconds(25)), ("db-0", "NodeShutdown", TimeSpan.FromSeconds(25))],
            runner.Snapshot().Select(r => (r.Pod, r.Reason, r.Timeout!.Value)));
        Assert.Equal(2, shutdown.LastRun!.Stored);

        shutdown.ShutdownCancelled();
        Assert.False(state.Current.GoingAway);
    }
}

/// <summary>The node agent watching its own Node on the in-process API server: drain and taints → one checkpoint run per episode.</summary>
public sealed class NodeDrainTests : IAsyncLifetime
{
    private const string NodeName = "node-a";
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 8, 0, 0, TimeSpan.Zero));
    private readonly FakeKube _kube;
    private readonly FakeResourceClient<Node> _nodes;
    private readonly FakeResourceClient<Pod> _pods;
    private readonly CancellationTokenSource _stop = new();
    private readonly RecordingRunner _runner;
    private readonly NodeGoingAway _state;
    private NodeDrainCheckpoints _drain = null!;
    private PodEvictionWatcher _evictions = null!;
    private List<ManagedContainer> _managed = [new("shop", "cart-1", "app") { PodUid = "uid-cart-1" }, new("shop", "db-0", "pg") { PodUid = "uid-db-0" }];
    private ControllerManager _manager = null!;
    private Task _running = Task.CompletedTask;

    public NodeDrainTests()
    {
        _kube = new FakeKube(_time);
        _nodes = _kube.For(Resources.Nodes);
        _pods = _kube.For(Resources.Pods);
        _runner = new RecordingRunner(_time);
        _state = new NodeGoingAway(_time);
    }

    public async Task InitializeAsync()
    {
        await _nodes.SeedAsync(Node(NodeName, cordoned: false));
        await _nodes.SeedAsync(Node("node-b", cordoned: true)); // another node's drain is not ours
        var manager = _manager = new ControllerManager(new ControllerManagerOptions
        {
            Kube = _kube, Events = new RecordingEventRecorder(), Time = _time, Loggers = NullLoggerFactory.Instance,
        });
        NodeDisruptionWatcher.SetUp(manager, _state, new NodeDisruptionOptions { NodeName = NodeName });
        foreach (var c in _managed) await _pods.SeedAsync(Pod(c.Pod, NodeName, c.PodUid!));
        await _pods.SeedAsync(Pod("unmanaged-1", NodeName, "uid-unmanaged-1"));
        var checkpointer = new NodeAwayCheckpointer(_runner, () => _managed, _time, NullLogger.Instance);
        _evictions = new PodEvictionWatcher(_state, NodeName, checkpointer.Managed, NullLogger.Instance);
        _evictions.Watch(manager.Informers.PodsOnNode(NodeName));
        // one at a time: the order the checkpoints start in is the order they are asked for
        _drain = new NodeDrainCheckpoints(_state, checkpointer, 1, NullLogger.Instance, _evictions);
        manager.AddRunnable("drain checkpoints", _drain.RunAsync);
        _running = manager.RunAsync(_stop.Token);
        await Eventually.TrueAsync(() => manager.NodeInformers.All(i => i.HasSynced), "informers synced");
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _running.WaitAsync(TimeSpan.FromSeconds(20));
        _stop.Dispose();
    }

    /// <summary>Until the informer's cache has the Node as stored (every handler has been told).</summary>
    private Task SeenAsync() => Eventually.TrueAsync(() =>
        _manager.Informers.For(Resources.Nodes, new() { FieldSelector = $"metadata.name={NodeName}" })
            .Get(Crsc.Api.ObjectKey.Cluster(NodeName))?.Metadata.ResourceVersion == _nodes.Stored(null, NodeName)?.Metadata.ResourceVersion,
        "the informer at the stored Node");

    private static Pod Pod(string name, string node, string uid, string? disruption = null) => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = "shop", Uid = uid },
        Spec = new PodSpec { NodeName = node, Containers = [new Container { Name = "app", Image = "app:1" }] },
        Status = new PodStatus
        {
            Phase = "Running",
            Conditions = disruption is null ? [] : [new PodCondition { Type = PodEvictionWatcher.DisruptionTarget, Status = "True", Reason = disruption }],
        },
    };

    private static Node Node(string name, bool cordoned, params string[] taints) => new()
    {
        Metadata = new ObjectMeta { Name = name },
        Spec = new NodeSpec { Unschedulable = cordoned ? true : null, Taints = [.. taints.Select(t => new Taint { Key = t, Effect = "NoSchedule" })] },
    };

    [Fact]
    public async Task A_cordon_checkpoints_every_managed_container_once_per_episode()
    {
        Assert.False(_state.Current.GoingAway);
        Assert.Empty(_runner.Snapshot());

        await _nodes.SeedAsync(Node(NodeName, cordoned: true));
        await Eventually.TrueAsync(() => _drain.Runs == 1, "the drain run");
        Assert.Equal([("cart-1", "app", "NodeDrain"), ("db-0", "pg", "NodeDrain")],
            _runner.Snapshot().Select(r => (r.Pod, r.Container, r.Reason)));
        Assert.Equal(NodeAwayReason.Drain, _state.Current.Reason);

        // the same episode: a termination taint after the cordon, and more updates of the Node, take nothing more
        await _nodes.SeedAsync(Node(NodeName, cordoned: true, "karpenter.sh/disrupted"));
        await Eventually.TrueAsync(() => _state.Current.Reason == NodeAwayReason.Taint, "the taint seen");
        await _nodes.SeedAsync(Node(NodeName, cordoned: true, "karpenter.sh/disrupted", "unrelated"));
        await SeenAsync();
        Assert.Equal(1, _drain.Runs);
        Assert.Equal(2, _runner.Snapshot().Count);

        // uncordoned and untainted ends it; the next cordon is a new episode
        await _nodes.SeedAsync(Node(NodeName, cordoned: false));
        await Eventually.TrueAsync(() => !_state.Current.GoingAway, "back");
        await _nodes.SeedAsync(Node(NodeName, cordoned: false, "ToBeDeletedByClusterAutoscaler"));
        await Eventually.TrueAsync(() => _drain.Runs == 2, "the second episode's run");
        Assert.Equal(4, _runner.Snapshot().Count);
        Assert.Equal(NodeAwayReason.Taint, _state.Current.Reason);
    }

    [Fact]
    public async Task Another_nodes_drain_and_unlisted_taints_are_nothing()
    {
        await _nodes.SeedAsync(Node("node-b", cordoned: true, "ToBeDeletedByClusterAutoscaler"));
        await _nodes.SeedAsync(Node(NodeName, cordoned: false, "dedicated"));
        await SeenAsync();
        Assert.False(_state.Current.GoingAway);
        Assert.Equal(0, _drain.Runs);
        Assert.Empty(_runner.Snapshot());
        await _nodes.SeedAsync(Node(NodeName, cordoned: true));
        await Eventually.TrueAsync(() => _drain.Runs == 1, "our own cordon is seen");
        Assert.Equal(2, _runner.Snapshot().Count); // and only that one run took checkpoints
    }

    /// <summary>Issue 18: an eviction of a managed pod (its DisruptionTarget condition, set before the deletion) is a node-state source and is checkpointed before the pod is gone.</summary>
    [Fact]
    public async Task An_evicted_managed_pod_is_checkpointed_from_its_condition_on_and_the_state_says_so_until_it_is_gone()
    {
        _runner.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // an unmanaged pod's eviction is nothing here
        await _pods.SeedAsync(Pod("unmanaged-1", NodeName, "uid-unmanaged-1", "EvictionByEvictionAPI"));
        await _pods.SeedAsync(Pod("cart-1", NodeName, "uid-cart-1")); // a write after it, to know the informer saw it
        await Eventually.TrueAsync(() => _manager.Informers.PodsOnNode(NodeName).Get(new Crsc.Api.ObjectKey("shop", "cart-1"))?.Metadata.ResourceVersion
            == _pods.Stored("shop", "cart-1")?.Metadata.ResourceVersion, "the informer at the stored pods");
        Assert.False(_state.Current.GoingAway);
        Assert.Empty(_runner.Snapshot());

        // the Eviction API sets the condition first, then deletes: the checkpoint starts at the condition
        await _pods.SeedAsync(Pod("cart-1", NodeName, "uid-cart-1", "EvictionByEvictionAPI"));
        await Eventually.TrueAsync(() => _runner.Snapshot().Count == 1, "the evicted pod's checkpoint started");
        Assert.Equal(("cart-1", "app", "NodeDrain"), _runner.Snapshot().Select(r => (r.Pod, r.Container, r.Reason)).Single());
        Assert.NotNull(_pods.Stored("shop", "cart-1")); // before the deletion
        Assert.True(_state.Current.GoingAway);
        Assert.Equal(NodeAwayReason.Eviction, _state.Current.Reason);
        Assert.Contains("shop/cart-1 (EvictionByEvictionAPI)", _state.Current.Detail, StringComparison.Ordinal);

        // the deletion while the checkpoint runs does not stop it; once the pod is gone the node is not going away
        await _pods.DeleteAsync("shop", "cart-1", null, CancellationToken.None);
        await Eventually.TrueAsync(() => !_state.Current.GoingAway, "the eviction is over when the pod is gone");
        _runner.Gate.SetResult();
        await Eventually.TrueAsync(() => _drain.Runs == 1, "the eviction run ends");
        Assert.Equal(1, _drain.LastRun!.Stored);
        Assert.Single(_runner.Snapshot()); // and nothing else was taken
    }

    /// <summary>Issue 18, eviction ordering: during a drain, a pod being evicted goes ahead of the run's order, and no pod is taken twice in an episode.</summary>
    [Fact]
    public async Task During_a_drain_a_pod_being_evicted_goes_first_and_no_pod_is_checkpointed_twice()
    {
        _managed = [.. _managed, new("shop", "web-1", "app") { PodUid = "uid-web-1" }, new("shop", "zeta-0", "app") { PodUid = "uid-zeta-0" }];
        foreach (var c in _managed.Skip(2)) await _pods.SeedAsync(Pod(c.Pod, NodeName, c.PodUid!));
        _runner.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await _nodes.SeedAsync(Node(NodeName, cordoned: true));
        await Eventually.TrueAsync(() => _runner.Snapshot().Count == 1, "the drain run's first checkpoint");
        // the last of the run's order is evicted while the first checkpoint runs
        await _pods.SeedAsync(Pod("zeta-0", NodeName, "uid-zeta-0", "EvictionByEvictionAPI"));
        await Eventually.TrueAsync(() => _evictions.Evicting.Count == 1, "the eviction seen");
        _runner.Gate.SetResult();
        await Eventually.TrueAsync(() => _drain.Runs == 1, "the drain run ends");
        Assert.Equal(["cart-1", "zeta-0", "db-0", "web-1"], _runner.Snapshot().Select(r => r.Pod));
        Assert.Equal(4, _drain.LastRun!.Stored);
        // the state shows the drain (more urgent than the eviction); the evicted pod is not taken again, now or later in the episode
        Assert.Equal(NodeAwayReason.Drain, _state.Current.Reason);
        await _pods.SeedAsync(Pod("web-1", NodeName, "uid-web-1", "EvictionByEvictionAPI"));
        await Eventually.TrueAsync(() => _evictions.Evicting.Count == 2, "the second eviction seen");
        await _pods.DeleteAsync("shop", "zeta-0", null, CancellationToken.None);
        await Eventually.TrueAsync(() => _evictions.Evicting.Count == 1, "the first evicted pod gone");
        await _nodes.SeedAsync(Node(NodeName, cordoned: true, "karpenter.sh/disrupted"));
        await SeenAsync();
        Assert.Equal(1, _drain.Runs);
        Assert.Equal(4, _runner.Snapshot().Count);

        // a later pod of the same name (a StatefulSet's) is another pod: its eviction is checkpointed
        _managed = [.. _managed.Where(c => c.Pod != "zeta-0"), new("shop", "zeta-0", "app") { PodUid = "uid-zeta-0-b" }];
        await _pods.SeedAsync(Pod("zeta-0", NodeName, "uid-zeta-0-b", "EvictionByEvictionAPI"));
        await Eventually.TrueAsync(() => _drain.Runs == 2, "the new pod's run");
        Assert.Equal("zeta-0", _runner.Snapshot()[^1].Pod);
        Assert.Equal(5, _runner.Snapshot().Count);
    }
}

/// <summary>Issue 18: a daemon restarted in the middle of a drain does not take the drain's checkpoints again.</summary>
public sealed class NodeDrainRestartTests
{
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 8, 0, 0, TimeSpan.Zero));
    private readonly MemoryStateFile _file = new();
    private readonly List<ManagedContainer> _managed = [new("shop", "cart-1", "app") { PodUid = "uid-cart-1" }, new("shop", "db-0", "pg") { PodUid = "uid-db-0" }];

    /// <summary>One daemon's life: its node state (loaded from the shared file), its drain component, running.</summary>
    private sealed class Life(NodeGoingAway state, NodeDrainCheckpoints drain, Task running, CancellationTokenSource stop) : IAsyncDisposable
    {
        public NodeGoingAway State => state;
        public NodeDrainCheckpoints Drain => drain;

        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            await running;
            stop.Dispose();
        }
    }

    private Life Start(RecordingRunner runner)
    {
        var store = new NodeStateStore(_file, "node-a");
        store.Load();
        var state = new NodeGoingAway(_time);
        var drain = new NodeDrainCheckpoints(state, new NodeAwayCheckpointer(runner, () => _managed, _time, NullLogger.Instance), 2,
            NullLogger.Instance, null, store, TimeSpan.FromMinutes(15), _time);
        var stop = new CancellationTokenSource();
        return new Life(state, drain, drain.RunAsync(stop.Token), stop);
    }

    [Fact]
    public async Task The_pods_a_drain_took_are_not_taken_again_by_the_restarted_daemon_and_are_forgotten_when_it_ends()
    {
        var first = new RecordingRunner(_time);
        await using (var life = Start(first))
        {
            life.State.Report(NodeAwaySource.NodeObject, NodeAwayReason.Drain, "cordoned");
            await Eventually.TrueAsync(() => life.Drain.Runs == 1, "the drain run");
        }
        Assert.Equal(2, first.Snapshot().Count);
        Assert.Equal(2, _file.Saved!.AwayTried.Count);

        // restarted while the node is still cordoned: the Node object shows the drain again, nothing is taken twice
        var second = new RecordingRunner(_time);
        _managed.Add(new("shop", "web-1", "app") { PodUid = "uid-web-1" }); // scheduled here since (before the cordon)
        await using (var life = Start(second))
        {
            life.State.Report(NodeAwaySource.NodeObject, NodeAwayReason.Drain, "cordoned");
            await Eventually.TrueAsync(() => life.Drain.Runs == 1, "the drain run after the restart");
            Assert.Equal(["web-1"], second.Snapshot().Select(r => r.Pod));

            // uncordoned: the episode ended, and with it what the node state kept of it
            life.State.Report(NodeAwaySource.NodeObject, null);
            await Eventually.TrueAsync(() => _file.Saved!.AwayTried.Count == 0, "forgotten");
        }

        // the next drain, after another restart, takes every pod again
        var third = new RecordingRunner(_time);
        await using (var life = Start(third))
        {
            life.State.Report(NodeAwaySource.NodeObject, NodeAwayReason.Drain, "cordoned");
            await Eventually.TrueAsync(() => life.Drain.Runs == 1, "a new episode's run");
        }
        Assert.Equal(3, third.Snapshot().Count);
    }

    [Fact]
    public async Task What_an_earlier_episode_took_longer_ago_than_the_restore_window_is_taken_again()
    {
        var first = new RecordingRunner(_time);
        await using (var life = Start(first))
        {
            life.State.Report(NodeAwaySource.NodeObject, NodeAwayReason.Drain, "cordoned");
            await Eventually.TrueAsync(() => life.Drain.Runs == 1, "the drain run");
        }
        _time.Advance(TimeSpan.FromMinutes(16));
        var second = new RecordingRunner(_time);
        await using (var life = Start(second))
        {
            life.State.Report(NodeAwaySource.NodeObject, NodeAwayReason.Drain, "cordoned");
            await Eventually.TrueAsync(() => life.Drain.Runs == 1, "the drain run after the restart");
        }
        Assert.Equal(2, second.Snapshot().Count);
    }
}


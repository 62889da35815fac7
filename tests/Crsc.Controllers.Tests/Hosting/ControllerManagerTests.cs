using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Health;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Leadership;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Hosting;

/// <summary>
/// The manager the daemon and the tests set controllers up with: shared informers, node and leader-only controllers,
/// and the leadership term that decides which run.
/// </summary>
public sealed class ControllerManagerTests : IAsyncLifetime
{
    private const string Ns = "crsc-system";
    private readonly FakeKube _kube = new();
    private readonly RecordingEventRecorder _events = new();
    private readonly List<(CancellationTokenSource Stop, Task Run)> _managers = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var (stop, _) in _managers) await stop.CancelAsync();
        await Task.WhenAll(_managers.Select(m => m.Run)).WaitAsync(TimeSpan.FromSeconds(20));
    }

    private ControllerManager NewManager(string? identity = null) => new(new ControllerManagerOptions
    {
        Kube = _kube,
        Events = _events,
        Loggers = NullLoggerFactory.Instance,
        Elector = identity is null ? null : new LeaderElector(_kube.For(Resources.Leases), new LeaderElectionOptions
        {
            Namespace = Ns,
            Identity = identity,
            LeaseDuration = TimeSpan.FromSeconds(10), // long: a loaded machine must not lose a term here
            RenewDeadline = TimeSpan.FromSeconds(8),
            RetryPeriod = TimeSpan.FromMilliseconds(100),
        }, TimeProvider.System, NullLogger.Instance, new HealthRegistry(TimeProvider.System)),
    });

    private CancellationTokenSource Start(ControllerManager manager)
    {
        var stop = new CancellationTokenSource();
        _managers.Add((stop, manager.RunAsync(stop.Token)));
        return stop;
    }

    private sealed class Recording : IReconciler
    {
        private readonly List<ObjectKey> _keys = [];
        public IReadOnlyList<ObjectKey> Keys { get { lock (_keys) return [.. _keys]; } }
        public ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
        {
            lock (_keys) _keys.Add(key);
            return ValueTask.FromResult(ReconcileResult.Done);
        }
    }

    /// <summary>A node controller over this node's pods and a leader-only one over Deployments and the same pods.</summary>
    private static (Recording Node, Recording Leader) SetUpBoth(ControllerManager manager, string node)
    {
        var onNode = new Recording();
        var leading = new Recording();
        var pods = manager.Informers.PodsOnNode(node);
        manager.Add(new Controller("node-work", onNode, TimeProvider.System, NullLogger.Instance).Watch(pods), leaderOnly: false);
        manager.Add(new Controller("leader-work", leading, TimeProvider.System, NullLogger.Instance)
            .Watch(manager.Informers.For(Resources.Deployments)).Watch(pods), leaderOnly: true);
        return (onNode, leading);
    }

    private async Task SeedAsync()
    {
        await _kube.For(Resources.Pods).CreateAsync(new Pod
        {
            Metadata = new ObjectMeta { Namespace = "apps", Name = "web-0" },
            Spec = new PodSpec { NodeName = "n1" },
        }, CancellationToken.None);
        await _kube.For(Resources.Deployments).CreateAsync(new Deployment
        {
            Metadata = new ObjectMeta { Namespace = "apps", Name = "web" },
        }, CancellationToken.None);
    }

    [Fact]
    public void The_shared_informers_hand_out_one_informer_per_type_and_selection()
    {
        var manager = NewManager();
        var pods = manager.Informers.For(Resources.Pods);
        Assert.Same(pods, manager.Informers.For(Resources.Pods, new InformerOptions { Name = "another name", PageSize = 7 }));
        Assert.Same(manager.Informers.PodsOnNode("n1"), manager.Informers.For(Resources.Pods,
            new InformerOptions { FieldSelector = "spec.nodeName=n1" }));
        Assert.NotSame(pods, manager.Informers.PodsOnNode("n1"));
        Assert.NotSame(manager.Informers.PodsOnNode("n1"), manager.Informers.PodsOnNode("n2"));
        Assert.NotSame(pods, manager.Informers.For(Resources.Pods, new InformerOptions { Namespace = "apps" }));
        Assert.NotSame(pods, manager.Informers.For(Resources.Pods, new InformerOptions { LabelSelector = "app=web" }));
        Assert.Equal(
            ["informer/pods", "informer/pods-on-node", "informer/pods-on-node", "informer/pods in apps", "informer/pods [app=web]"],
            manager.Informers.All.Select(i => i.Name));
    }

    [Fact]
    public async Task Nothing_is_added_once_the_manager_runs()
    {
        var manager = NewManager();
        var pods = manager.Informers.For(Resources.Pods);
        Start(manager);
        Assert.Same(pods, manager.Informers.For(Resources.Pods)); // what it runs is still handed out
        Assert.Throws<InvalidOperationException>(() => manager.Informers.For(Resources.Deployments));
        Assert.Throws<InvalidOperationException>(() =>
            manager.Add(new Controller("late", new Recording(), TimeProvider.System, NullLogger.Instance), leaderOnly: false));
        Assert.Throws<InvalidOperationException>(() => manager.AddRunnable("late", _ => Task.CompletedTask));
        await Eventually.TrueAsync(() => pods.HasSynced, "its informer runs");
    }

    [Fact]
    public void Two_controllers_of_one_name_are_refused()
    {
        var manager = NewManager();
        manager.Add(new Controller("same", new Recording(), TimeProvider.System, NullLogger.Instance), leaderOnly: false);
        var e = Assert.Throws<InvalidOperationException>(() =>
            manager.Add(new Controller("same", new Recording(), TimeProvider.System, NullLogger.Instance), leaderOnly: true));
        Assert.Contains("same", e.Message);
    }

    [Fact]
    public async Task Without_an_elector_node_and_leader_only_controllers_run_for_the_whole_run()
    {
        await SeedAsync();
        var manager = NewManager();
        var (node, leader) = SetUpBoth(manager, "n1");
        Start(manager);
        await Eventually.TrueAsync(() => node.Keys.Contains(new ObjectKey("apps", "web-0")), "the node controller reconciles");
        await Eventually.TrueAsync(() => leader.Keys.Contains(new ObjectKey("apps", "web")), "the leader-only controller reconciles");
        Assert.True(manager.IsLeading);
    }

    [Fact]
    public async Task Leader_only_controllers_and_the_informers_only_they_watch_run_while_leading_and_move_on_handover()
    {
        await SeedAsync();
        var first = NewManager("first");
        var (firstNode, firstLeader) = SetUpBoth(first, "n1");
        var second = NewManager("second");
        var (secondNode, secondLeader) = SetUpBoth(second, "n1");

        // the Deployments informer is the leader's only; the node's pods are watched by node work too: they always run
        var deployments = second.Informers.For(Resources.Deployments);
        var pods = second.Informers.PodsOnNode("n1");
        Assert.True(second.RunsOnlyWhileLeading(deployments));
        Assert.False(second.RunsOnlyWhileLeading(pods));
        Assert.Equal([pods], second.NodeInformers);

        var stopFirst = Start(first);
        await Eventually.TrueAsync(() => firstLeader.Keys.Contains(new ObjectKey("apps", "web")), "the first leads");
        Start(second);
        await Eventually.TrueAsync(() => secondNode.Keys.Contains(new ObjectKey("apps", "web-0")), "the second's node work runs");
        Assert.True(pods.HasSynced);
        await Task.Delay(300); // three retry periods: a follower that wrongly ran leader work would have by now
        Assert.False(second.IsLeading);
        Assert.False(deployments.HasSynced, "a follower keeps no cache only leader work reads");
        Assert.Empty(secondLeader.Keys);
        Assert.Contains(new ObjectKey("apps", "web-0"), firstNode.Keys);

        // the first stops (and releases the Lease): the second's term starts, lists Deployments and reconciles
        await stopFirst.CancelAsync();
        await Eventually.TrueAsync(() => secondLeader.Keys.Contains(new ObjectKey("apps", "web")), "the second leads");
        Assert.True(second.IsLeading);
        Assert.True(deployments.HasSynced);
        Assert.False(first.IsLeading);
    }

    [Fact]
    public async Task A_failing_runnable_ends_alone()
    {
        var manager = NewManager();
        var other = new TaskCompletionSource();
        manager.AddRunnable("broken", _ => throw new InvalidOperationException("boom"));
        manager.AddRunnable("fine", async ct =>
        {
            other.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct);
        });
        var stop = Start(manager);
        await other.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await Task.Delay(100);
        Assert.False(_managers[^1].Run.IsCompleted, "the manager goes on");
        await stop.CancelAsync();
        await _managers[^1].Run.WaitAsync(TimeSpan.FromSeconds(10));
    }
}

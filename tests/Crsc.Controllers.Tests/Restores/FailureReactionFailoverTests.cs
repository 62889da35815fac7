using System.Collections.Concurrent;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Health;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Leadership;
using Crsc.Controllers.Restores;
using Crsc.Controllers.Tests.Fakes;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Controllers.Workloads;
using Crsc.Testing;
using Crsc.Testing.Kube;
using static Crsc.Controllers.Tests.Fakes.FailureWorld;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Restores;

/// <summary>
/// The failure-reaction invariant across a leader change: two daemons' leader halves (each its own
/// <see cref="ControllerManager"/>, informers and Lease elector on one <see cref="FakeKube"/>) run the failure detector and
/// the Restore reconciler as the daemon sets them up; 20 managed Deployments each see one container failure, and the
/// leader goes away in the middle — while it holds attempts it has counted but not patched yet, attempts it has patched
/// whose container has not come back yet, and incidents it has only just been told of. Every incident still ends with
/// exactly one Restore, Restored after one attempt, one image PATCH of its pod that the API server took (none refused,
/// none repeated) and no pod deleted.
/// </summary>
public sealed class FailureReactionFailoverTests : IAsyncLifetime
{
    private const int Incidents = 20;
    /// <summary>Incidents the first leader finishes before it goes (the answer to the last one's PATCH is lost on the way back).</summary>
    private static readonly int[] FinishedByTheFirst = [0, 1, 2, 3, 4];
    /// <summary>
    /// Incidents whose attempt the first leader has counted and not patched when it goes: the first one's PATCH is on its
    /// way (held in the daemon until its work is cancelled), the others' PATCHes fail as a broken connection does.
    /// </summary>
    private static readonly int[] CountedNotPatched = [5, 6, 7];
    /// <summary>Incidents whose pod the first leader has patched and whose restored container has not run when it goes.</summary>
    private static readonly int[] PatchedNotFinished = [8, 9, 10];
    /// <summary>Incidents reported just before the leader goes (in flight, wherever they are).</summary>
    private static readonly int[] AtTheHandover = [11, 12, 13, 14];
    /// <summary>Incidents reported while the leadership moves (the answer to the first one's PATCH is lost on the way back).</summary>
    private static readonly int[] DuringTheHandover = [15, 16, 17, 18, 19];

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private readonly FakeKube _kube = new();
    private readonly FailureWorld _world;

    public FailureReactionFailoverTests() => _world = new FailureWorld(_kube);
    private readonly RecordingEventRecorder _events = new();
    private readonly ConcurrentQueue<PodPatch> _patches = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _simulators = [];
    private readonly List<Daemon> _daemons = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var d in _daemons) await d.Stop.CancelAsync();
        await _stop.CancelAsync();
        await Task.WhenAll(_daemons.Select(d => d.Run).Concat(_simulators)).WaitAsync(TimeSpan.FromSeconds(30));
        foreach (var d in _daemons) d.Stop.Dispose();
        _stop.Dispose();
    }

    public enum Handover
    {
        /// <summary>The leader's daemon stops: its work is cancelled and drained, then it releases the Lease.</summary>
        LeaderStops,
        /// <summary>The leader cannot renew the Lease any more: it steps down at the renew deadline, the other takes over when the Lease expires.</summary>
        LeaderLosesTheLease,
    }

    [Theory]
    [InlineData(Handover.LeaderStops)]
    [InlineData(Handover.LeaderLosesTheLease)]
    public async Task Every_incident_gets_one_Restore_one_patch_and_no_pod_deletion_across_a_leader_change(Handover handover)
    {
        for (var i = 0; i < Incidents; i++) await _world.SeedWorkloadAsync(i, "n1");
        _simulators.Add(_world.KubeletAsync(_stop.Token));
        _simulators.Add(_world.NodeAgentAsync(_stop.Token));

        var first = StartDaemon("first");
        await WaitForAsync(() => first.Manager.IsLeading, "the first daemon leads");
        var second = StartDaemon("second");
        await WaitForAsync(() => second.Elector.CurrentLeader == "first", "the second daemon follows");

        first.Pods.LoseAnswer(PodName(FinishedByTheFirst[^1]));
        foreach (var d in new[] { first, second }) d.Pods.LoseAnswer(PodName(DuringTheHandover[0])); // whichever leads then
        first.Pods.HoldPatch(PodName(CountedNotPatched[0]));
        foreach (var i in CountedNotPatched[1..]) first.Pods.CutPatch(PodName(i));
        foreach (var i in PatchedNotFinished) _world.KubeletHolds[PodName(i)] = 0;
        foreach (var i in FinishedByTheFirst.Concat(CountedNotPatched).Concat(PatchedNotFinished)) await _world.FailAsync(i);

        await WaitForAsync(() => FinishedByTheFirst.All(i => _world.RestoreOf(i)?.Status?.Phase == RestorePhase.Restored),
            "the first leader restores the first incidents");
        foreach (var i in CountedNotPatched)
        {
            await first.Pods.PatchTried(PodName(i)).WaitAsync(Wait);
            Assert.NotNull(_world.RestoreOf(i)!.Status!.PatchedAt); // the attempt is counted before the patch
            Assert.Equal(Image, _world.ImageOfPod(i));
        }
        await WaitForAsync(() => PatchedNotFinished.All(i => _world.ImageOfPod(i)?.StartsWith(CheckpointRegistry, StringComparison.Ordinal) == true),
            "the first leader patches the pods whose containers the kubelet holds back");
        Assert.All(PatchedNotFinished, i => Assert.Equal(RestorePhase.Restoring, _world.RestoreOf(i)!.Status!.Phase));
        Assert.True(first.Manager.IsLeading, "the first daemon led through all of it");
        foreach (var i in AtTheHandover) await _world.FailAsync(i);

        // the leader goes in the middle of its work
        if (handover == Handover.LeaderStops) await first.Stop.CancelAsync();
        else first.Leases.Unavailable = true;
        foreach (var i in DuringTheHandover) await _world.FailAsync(i);
        await WaitForAsync(() => second.Manager.IsLeading && !first.Manager.IsLeading, "the second daemon takes over");
        foreach (var i in PatchedNotFinished) _world.KubeletHolds.TryRemove(PodName(i), out _);

        await WaitForAsync(() => Enumerable.Range(0, Incidents).All(i => _world.RestoreOf(i)?.Status?.Phase == RestorePhase.Restored),
            "every incident's Restore is Restored");
        await Task.Delay(300); // a second Restore or a late write would show by now

        var patches = _patches.ToList();
        var pods = _kube.For(Resources.Pods);
        for (var i = 0; i < Incidents; i++)
        {
            var restores = _kube.For(CrscResources.Restores).AllStored().Where(r => r.Spec.Target.Name == Deployment(i)).ToList();
            var restore = Assert.Single(restores);
            Assert.Equal((RestorePhase.Restored, 1), (restore.Status!.Phase, restore.Status.Attempts));
            Assert.Equal(PodName(i), restore.Status.PodName);
            var patch = Assert.Single(patches, p => p.Pod == PodName(i));
            Assert.Equal(PatchOutcome.Applied, patch.Outcome);
            Assert.Equal(restore.Status.Image, _world.ImageOfPod(i));
            Assert.Equal("uid-" + PodName(i), pods.Stored(Ns, PodName(i))!.Metadata.Uid); // the pod kept, restored in place
        }
        // the attempts the first leader counted are patched by the second, those it patched are not patched again
        Assert.All(CountedNotPatched, i => Assert.Equal("second", patches.Single(p => p.Pod == PodName(i)).Daemon));
        Assert.All(PatchedNotFinished, i => Assert.Equal("first", patches.Single(p => p.Pod == PodName(i)).Daemon));
        Assert.Equal(Incidents, pods.CallCount("patch")); // what reached the API server, whoever sent it
        await first.Pods.PatchTried(PodName(FinishedByTheFirst[^1])).WaitAsync(Wait); // a patch whose answer was lost is not sent again
        await Task.WhenAny(first.Pods.PatchTried(PodName(DuringTheHandover[0])), second.Pods.PatchTried(PodName(DuringTheHandover[0])))
            .WaitAsync(Wait);
        Assert.Equal(0, pods.CallCount("delete"));
        Assert.Equal(Incidents, _kube.For(CrscResources.Restores).AllStored().Count);
    }

    /// <summary>Waits for <paramref name="condition"/>; a timeout says where every incident stands.</summary>
    private async Task WaitForAsync(Func<bool> condition, string what)
    {
        try
        {
            await Eventually.TrueAsync(condition, what, Wait);
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}; {State()}", e);
        }
    }

    private string State() => string.Join("; ", Enumerable.Range(0, Incidents).Select(i =>
        _world.RestoreOf(i) is { } r
            ? $"{i}: {r.Metadata.Name} {r.Status?.Phase} attempts={r.Status?.Attempts} patchedAt={r.Status?.PatchedAt:HH:mm:ss.fff} image={_world.ImageOfPod(i)} ({r.Status?.Message})"
            : $"{i}: no Restore"))
        + "; leaders: " + string.Join(", ", _daemons.Select(d => $"{d.Name}={d.Manager.IsLeading}"))
        + "; patches: " + string.Join(", ", _patches.Select(p => $"{p.Daemon}:{p.Pod}:{p.Outcome}"))
        + "; sims: " + string.Join(",", _simulators.Select(t => t.Status)) + $" rounds {_world.Rounds}"
        + string.Concat(_simulators.Where(t => t.IsFaulted).Select(t => "; simulator failed: " + t.Exception!.InnerException));

    // ---- the daemons' leader halves ----

    private sealed record Daemon(string Name, ControllerManager Manager, LeaderElector Elector, PartitionedClient<Lease> Leases,
        DaemonPods Pods, CancellationTokenSource Stop, Task Run);

    private Daemon StartDaemon(string name)
    {
        var leases = new PartitionedClient<Lease>(_kube.For(Resources.Leases));
        var elector = new LeaderElector(leases, new LeaderElectionOptions
        {
            Namespace = "crsc-system",
            Identity = name,
            LeaseDuration = TimeSpan.FromSeconds(5),
            RenewDeadline = TimeSpan.FromSeconds(3),
            RetryPeriod = TimeSpan.FromMilliseconds(250),
        }, TimeProvider.System, NullLogger.Instance, new HealthRegistry(TimeProvider.System));
        var pods = new DaemonPods(name, _kube.For(Resources.Pods), _patches);
        var manager = new ControllerManager(new ControllerManagerOptions
        {
            Kube = new DaemonApi(_kube, pods), Events = _events, Loggers = NullLoggerFactory.Instance, Elector = elector,
        });
        PodFailureReconciler.SetUp(manager);
        RestoreReconciler.SetUp(manager);
        var stop = new CancellationTokenSource();
        var daemon = new Daemon(name, manager, elector, leases, pods, stop, manager.RunAsync(stop.Token));
        _daemons.Add(daemon);
        return daemon;
    }

    /// <summary>One daemon's API client: the shared store, its pod writes seen through <see cref="DaemonPods"/>.</summary>
    private sealed class DaemonApi(FakeKube kube, DaemonPods pods) : IKubeApi
    {
        public IKubeResourceClient<T> Resource<T>(ResourceType<T> type) where T : class, IKubernetesObject =>
            ReferenceEquals(type, Resources.Pods) ? (IKubeResourceClient<T>)(object)pods : kube.For(type);
    }

    private enum PatchOutcome { Applied, Refused }

    private sealed record PodPatch(string Daemon, string Pod, PatchOutcome Outcome, string? Error);

    /// <summary>
    /// One daemon's pod client. Records every PATCH that reaches the API server and what it answered. A held pod's PATCH
    /// never leaves the daemon: it waits until the daemon's work is cancelled (what the HTTP client does with a request it
    /// has not sent yet), keeping a worker busy. A cut pod's PATCH fails as a broken connection does, every time.
    /// </summary>
    private sealed class DaemonPods(string daemon, FakeResourceClient<Pod> inner, ConcurrentQueue<PodPatch> record) : IKubeResourceClient<Pod>
    {
        private enum Mode { Hold, Cut, LoseAnswer }

        private readonly ConcurrentDictionary<string, (Mode Mode, TaskCompletionSource Tried)> _blocked = new(StringComparer.Ordinal);

        public void HoldPatch(string pod) => Block(pod, Mode.Hold);

        public void CutPatch(string pod) => Block(pod, Mode.Cut);

        /// <summary>The first PATCH of <paramref name="pod"/> reaches the API server, its answer does not come back (a request timeout).</summary>
        public void LoseAnswer(string pod) => Block(pod, Mode.LoseAnswer);

        private void Block(string pod, Mode mode) => _blocked[pod] = (mode, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

        /// <summary>Completes when a PATCH of <paramref name="pod"/> was held, cut or sent without an answer.</summary>
        public Task PatchTried(string pod) => _blocked[pod].Tried.Task;

        public ResourceType<Pod> Type => inner.Type;

        public async Task<Pod> PatchAsync(string? ns, string name, PatchType type, string body, CancellationToken ct, bool status = false,
            string? fieldManager = null, bool force = false)
        {
            var loseAnswer = false;
            if (_blocked.TryGetValue(name, out var blocked))
            {
                var firstTry = blocked.Tried.TrySetResult();
                switch (blocked.Mode)
                {
                    case Mode.Cut: throw new KubeUnavailableException("connection refused (fake)");
                    case Mode.Hold: await Task.Delay(Timeout.Infinite, ct); break;
                    default: loseAnswer = firstTry; break;
                }
            }
            try
            {
                var patched = await inner.PatchAsync(ns, name, type, body, ct, status, fieldManager, force);
                record.Enqueue(new PodPatch(daemon, name, PatchOutcome.Applied, null));
                if (loseAnswer)
                    throw new KubeUnavailableException($"the API server did not answer PATCH of pod {name} within 30 s (fake)");
                return patched;
            }
            catch (KubeApiException e)
            {
                record.Enqueue(new PodPatch(daemon, name, PatchOutcome.Refused, $"{e.Code} {e.Message}"));
                throw;
            }
        }

        public Task<Pod> GetAsync(string? ns, string name, CancellationToken ct) => inner.GetAsync(ns, name, ct);
        public Task<KubeList<Pod>> ListAsync(string? ns, ListOptions options, CancellationToken ct) => inner.ListAsync(ns, options, ct);
        public IAsyncEnumerable<WatchEvent<Pod>> WatchAsync(string? ns, WatchOptions options, CancellationToken ct) => inner.WatchAsync(ns, options, ct);
        public Task<Pod> CreateAsync(Pod obj, CancellationToken ct) => inner.CreateAsync(obj, ct);
        public Task<Pod> UpdateAsync(Pod obj, CancellationToken ct) => inner.UpdateAsync(obj, ct);
        public Task<Pod> UpdateStatusAsync(Pod obj, CancellationToken ct) => inner.UpdateStatusAsync(obj, ct);
        public Task DeleteAsync(string? ns, string name, DeleteOptions? options, CancellationToken ct) => inner.DeleteAsync(ns, name, options, ct);
    }
}

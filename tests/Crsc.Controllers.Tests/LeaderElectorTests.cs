using System.Collections.Concurrent;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Health;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Leadership;
using Crsc.Controllers.Tests.Fakes;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests;

public sealed class LeaderElectorTests : IAsyncLifetime
{
    private const string Ns = "crsc-system";
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(500);
    private readonly ManualTimeProvider _time = new();
    private readonly FakeKube _kube;
    private readonly FakeResourceClient<Lease> _leases;
    private readonly List<Candidate> _candidates = [];
    private readonly ConcurrentQueue<string> _log = new();
    private int _seed;
    private readonly Support.RecordingLogger Logger = new();

    public LeaderElectorTests()
    {
        _kube = new FakeKube(_time);
        _leases = _kube.For(Resources.Leases);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var c in _candidates) await c.Cts.CancelAsync();
        await Task.WhenAll(_candidates.Select(c => c.Run)).WaitAsync(TimeSpan.FromSeconds(20));
    }

    private sealed class Candidate(string id, PartitionedClient<Lease> client, LeaderElector elector, HealthRegistry health,
        ConcurrentQueue<string> log)
    {
        public string Id { get; } = id;
        public PartitionedClient<Lease> Client { get; } = client;
        public LeaderElector Elector { get; } = elector;
        public HealthRegistry Health { get; } = health;
        public CancellationTokenSource Cts { get; } = new();
        public Task Run { get; set; } = Task.CompletedTask;
        public bool Running => !Run.IsCompleted;
        public int WorkStarts => Volatile.Read(ref _starts);
        public int WorkRunning => Volatile.Read(ref _running);
        public int WorkCancelled => Volatile.Read(ref _cancelled);
        public Func<CancellationToken, Task>? Work { get; set; }
        private int _starts, _running, _cancelled;

        public async Task WorkAsync(CancellationToken ct)
        {
            Interlocked.Increment(ref _starts);
            Interlocked.Increment(ref _running);
            log.Enqueue($"{Id} start");
            try
            {
                if (Work is { } work) await work(ct);
                else await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                Interlocked.Increment(ref _cancelled);
                throw;
            }
            finally
            {
                log.Enqueue($"{Id} stop");
                Interlocked.Decrement(ref _running);
            }
        }
    }

    private sealed class EventSpy : IEventRecorder
    {
        public ConcurrentQueue<(string Kind, string Type, string Reason, string Message)> Recorded { get; } = new();
        public void Record(IKubernetesObject regarding, string type, string reason, string message)
            => Recorded.Enqueue((regarding.Kind ?? "", type, reason, message));
    }

    private Candidate Add(string id, bool releaseOnCancel = true, IEventRecorder? events = null, bool start = true)
    {
        var client = new PartitionedClient<Lease>(_leases);
        var health = new HealthRegistry(_time);
        var elector = new LeaderElector(client, new LeaderElectionOptions
        {
            Namespace = Ns,
            Identity = id,
            ReleaseOnCancel = releaseOnCancel,
        }, _time, Logger, health, events, new Random(++_seed));
        var c = new Candidate(id, client, elector, health, _log);
        _candidates.Add(c);
        if (start) c.Run = elector.RunAsync(c.WorkAsync, c.Cts.Token);
        return c;
    }

    private IEnumerable<Candidate> Running => _candidates.Where(c => c.Running);

    /// <summary>Every running candidate waits on the clock (one timer each): nothing moves until time does.</summary>
    private async Task SettleAsync()
    {
        await Eventually.TrueAsync(() =>
        {
            var running = Running.ToList();
            // idle: each waits on its clock, and a leader's work has started (a follower's has stopped)
            return running.All(c => c.Elector.IsWaitingOnClock && c.Elector.IsLeader == (c.WorkRunning == 1))
                && _candidates.Where(c => !c.Running).All(c => c.WorkRunning == 0)
                && _time.ActiveTimers == running.Count;
        }, "candidates idle");
        CheckInvariants();
    }

    private void CheckInvariants()
    {
        var leaders = _candidates.Where(c => c.Elector.IsLeader).Select(c => c.Id).ToList();
        Assert.True(leaders.Count <= 1, $"{_time.GetUtcNow():HH:mm:ss.f}: more than one leader: {string.Join(", ", leaders)}");
        var working = _candidates.Where(c => c.WorkRunning > 0).Select(c => c.Id).ToList();
        Assert.True(working.Count <= 1, $"{_time.GetUtcNow():HH:mm:ss.f}: leader work runs on {string.Join(", ", working)}");
        foreach (var c in _candidates) Assert.InRange(c.WorkRunning, 0, 1);
    }

    private async Task StepAsync(TimeSpan total)
    {
        for (var t = TimeSpan.Zero; t < total; t += Step)
        {
            await SettleAsync();
            _time.Advance(Step);
        }
        await SettleAsync();
    }

    /// <summary>Steps until <paramref name="done"/> holds; returns the simulated time it took.</summary>
    private async Task<TimeSpan> StepUntilAsync(Func<bool> done, TimeSpan max, string what)
    {
        var start = _time.GetUtcNow();
        await SettleAsync();
        while (!done())
        {
            if (_time.GetUtcNow() - start > max)
                throw new TimeoutException($"not within {max}: {what}\n" + string.Join("\n", Logger.Entries.Select(e => $"{e.Level} {e.Message} {e.Exception?.Message}")));
            _time.Advance(Step);
            await SettleAsync();
        }
        return _time.GetUtcNow() - start;
    }

    private Candidate Leader => Assert.Single(_candidates, c => c.Elector.IsLeader);

    private Lease StoredLease => _leases.Stored(Ns, LeaderElectionOptions.DefaultLeaseName)!;

    [Fact]
    public async Task Of_two_candidates_one_leads_steadily_and_the_other_follows()
    {
        var events = new EventSpy();
        var a = Add("node-a_1", events: events);
        var b = Add("node-b_2", events: events);
        await StepUntilAsync(() => _candidates.Any(c => c.Elector.IsLeader), TimeSpan.FromSeconds(10), "a leader");
        var leader = Leader;
        var follower = leader == a ? b : a;
        await StepAsync(TimeSpan.FromSeconds(60));
        Assert.Same(leader, Leader); // no flapping while the leader renews
        Assert.Equal(1, leader.WorkStarts);
        Assert.Equal(1, leader.WorkRunning);
        Assert.Equal(0, follower.WorkStarts);
        Assert.Equal(leader.Id, follower.Elector.CurrentLeader);
        Assert.Equal(leader.Id, leader.Elector.CurrentLeader);
        var lease = StoredLease;
        Assert.Equal(leader.Id, lease.Spec.HolderIdentity);
        Assert.Equal(15, lease.Spec.LeaseDurationSeconds);
        Assert.Equal(0, lease.Spec.LeaseTransitions);
        Assert.True(_time.GetUtcNow() - lease.Spec.RenewTime <= TimeSpan.FromSeconds(2), "renewed every retry period");
        Assert.Contains("leading", leader.Health.Summary());
        Assert.Contains($"following {leader.Id}", follower.Health.Summary());
        var ev = Assert.Single(events.Recorded);
        Assert.Equal(("Lease", CoreEvent.Normal, "LeaderElection", $"{leader.Id} became leader"), ev);
    }

    [Fact]
    public async Task A_leader_that_cannot_renew_steps_down_and_another_takes_over_after_the_lease_duration()
    {
        var a = Add("a");
        await StepUntilAsync(() => a.Elector.IsLeader, TimeSpan.FromSeconds(10), "a leads");
        var b = Add("b");
        await StepAsync(TimeSpan.FromSeconds(10));
        Assert.True(a.Elector.IsLeader);

        a.Client.Unavailable = true; // a is cut off from the API server; b is not
        var lastRenew = StoredLease.Spec.RenewTime!.Value;
        DateTimeOffset? aStopped = null, bStarted = null;
        await StepUntilAsync(() =>
        {
            if (aStopped is null && !a.Elector.IsLeader) aStopped = _time.GetUtcNow();
            if (bStarted is null && b.Elector.IsLeader) bStarted = _time.GetUtcNow();
            return aStopped is not null && bStarted is not null;
        }, TimeSpan.FromSeconds(60), "failover");

        // a gives up within renew deadline (+ the retry period before the failed round began)
        Assert.InRange(aStopped!.Value - lastRenew, TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(12) + Step);
        // b waits the full lease duration from when it saw the last renewal, then at most one jittered retry more
        Assert.InRange(bStarted!.Value - lastRenew, TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(15 + 2 * (2 * 2.2) + 1));
        Assert.Equal(1, a.WorkCancelled);
        Assert.Equal(["a start", "a stop", "b start"], _log.ToList());
        Assert.Equal("b", StoredLease.Spec.HolderIdentity);
        Assert.Equal(1, StoredLease.Spec.LeaseTransitions);

        // a comes back: it follows, and never leads while b renews
        a.Client.Unavailable = false;
        await StepAsync(TimeSpan.FromSeconds(60));
        Assert.Same(b, Leader);
        Assert.Equal("b", a.Elector.CurrentLeader);
        Assert.True(a.Running, "losing the lease never ends the elector");

        // b shuts down: a wins again and its leader work starts again
        await b.Cts.CancelAsync();
        await b.Run.WaitAsync(TimeSpan.FromSeconds(10));
        await StepUntilAsync(() => a.Elector.IsLeader, TimeSpan.FromSeconds(10), "a leads again");
        Assert.Equal(2, a.WorkStarts);
        Assert.Equal(1, a.WorkRunning);
        Assert.Equal(2, StoredLease.Spec.LeaseTransitions);
    }

    private static HealthEntry LeaderHealth(Candidate c) => Assert.Single(c.Health.Snapshot(), e => e.Component == "leader-election");

    private static string Stamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task A_leader_cut_off_from_the_api_server_reads_degraded_until_it_renews_again()
    {
        var a = Add("a");
        await StepUntilAsync(() => a.Elector.IsLeader, TimeSpan.FromSeconds(10), "a leads");
        await StepAsync(TimeSpan.FromSeconds(4));
        Assert.Equal((HealthStatus.Healthy, "leading"), (LeaderHealth(a).Status, LeaderHealth(a).Message));

        a.Client.Unavailable = true;
        var lastRenew = StoredLease.Spec.RenewTime!.Value;
        var cutAt = _time.GetUtcNow();
        // the next renewal fails: still leading (within its renew deadline), but it says it cannot renew
        await StepUntilAsync(() => LeaderHealth(a).Status != HealthStatus.Healthy, TimeSpan.FromSeconds(3), "a reads degraded");
        Assert.True(a.Elector.IsLeader);
        Assert.Equal((HealthStatus.Degraded, $"leading (api-server unreachable: cannot renew since {Stamp(lastRenew)})"),
            (LeaderHealth(a).Status, LeaderHealth(a).Message));

        // past the renew deadline it steps down, and says it campaigns without an API server
        await StepUntilAsync(() => !a.Elector.IsLeader, TimeSpan.FromSeconds(15), "a steps down");
        await StepAsync(TimeSpan.FromSeconds(1));
        var down = LeaderHealth(a);
        Assert.Equal(HealthStatus.Degraded, down.Status);
        Assert.StartsWith("campaigning (api-server unreachable since ", down.Message);
        var since = DateTimeOffset.Parse(down.Message["campaigning (api-server unreachable since ".Length..^1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(since, cutAt - TimeSpan.FromSeconds(1), cutAt + TimeSpan.FromSeconds(3));

        // the API server is back: a takes its Lease again and reads exactly as before
        a.Client.Unavailable = false;
        await StepUntilAsync(() => a.Elector.IsLeader, TimeSpan.FromSeconds(30), "a leads again");
        Assert.Equal((HealthStatus.Healthy, "leading"), (LeaderHealth(a).Status, LeaderHealth(a).Message));
    }

    [Fact]
    public async Task A_follower_cut_off_from_the_api_server_does_not_claim_to_know_the_leader()
    {
        var a = Add("a");
        await StepUntilAsync(() => a.Elector.IsLeader, TimeSpan.FromSeconds(10), "a leads");
        var b = Add("b");
        await StepAsync(TimeSpan.FromSeconds(6));
        Assert.Equal((HealthStatus.Healthy, "following a"), (LeaderHealth(b).Status, LeaderHealth(b).Message));

        var cutAt = _time.GetUtcNow();
        b.Client.Unavailable = true;
        await StepUntilAsync(() => LeaderHealth(b).Status != HealthStatus.Healthy, TimeSpan.FromSeconds(6), "b reads degraded");
        var message = LeaderHealth(b).Message;
        var match = System.Text.RegularExpressions.Regex.Match(message,
            @"^following a \(api-server unreachable since (\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ): leadership unknown\)$");
        Assert.True(match.Success, message);
        // since its first attempt that got no answer
        var since = DateTimeOffset.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(since, cutAt - TimeSpan.FromSeconds(1), _time.GetUtcNow());
        // and it stays so, however long the outage lasts (the old code read "following a" for ever)
        await StepAsync(TimeSpan.FromSeconds(60));
        Assert.Equal((HealthStatus.Degraded, message), (LeaderHealth(b).Status, LeaderHealth(b).Message));
        Assert.True(a.Elector.IsLeader);

        b.Client.Unavailable = false;
        await StepUntilAsync(() => LeaderHealth(b).Status == HealthStatus.Healthy, TimeSpan.FromSeconds(6), "b healthy again");
        Assert.Equal("following a", LeaderHealth(b).Message);
    }

    [Fact]
    public async Task A_refusal_of_the_lease_reads_degraded_with_its_code()
    {
        var a = Add("a");
        await StepUntilAsync(() => a.Elector.IsLeader, TimeSpan.FromSeconds(10), "a leads");
        var b = Add("b");
        await StepAsync(TimeSpan.FromSeconds(6));
        b.Client.Failure = new ForbiddenException("Forbidden", "leases.coordination.k8s.io is forbidden");
        await StepUntilAsync(() => LeaderHealth(b).Status != HealthStatus.Healthy, TimeSpan.FromSeconds(6), "b reads degraded");
        Assert.StartsWith("following a (api-server refusing the Lease (403 Forbidden) since ", LeaderHealth(b).Message);
        Assert.EndsWith(": leadership unknown)", LeaderHealth(b).Message);
        b.Client.Failure = null;
        await StepUntilAsync(() => LeaderHealth(b).Status == HealthStatus.Healthy, TimeSpan.FromSeconds(6), "b healthy again");
        Assert.Equal("following a", LeaderHealth(b).Message);
    }

    [Fact]
    public async Task Releasing_on_shutdown_hands_over_at_once()
    {
        var a = Add("a");
        await StepUntilAsync(() => a.Elector.IsLeader, TimeSpan.FromSeconds(10), "a leads");
        var b = Add("b");
        await StepAsync(TimeSpan.FromSeconds(4));

        await a.Cts.CancelAsync();
        await a.Run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(a.Elector.IsLeader);
        Assert.Equal(0, a.WorkRunning);
        Assert.Equal(1, a.WorkCancelled);
        var released = StoredLease;
        Assert.Null(released.Spec.HolderIdentity);
        Assert.Equal(1, released.Spec.LeaseDurationSeconds);

        var took = await StepUntilAsync(() => b.Elector.IsLeader, TimeSpan.FromSeconds(15), "b leads");
        Assert.True(took <= TimeSpan.FromSeconds(2 * 2.2) + Step, $"took {took}, not a lease duration");
        Assert.Equal(1, StoredLease.Spec.LeaseTransitions);
    }

    [Fact]
    public async Task A_renewal_whose_answer_was_lost_does_not_stop_the_release()
    {
        var a = Add("a");
        await StepUntilAsync(() => a.Elector.IsLeader, TimeSpan.FromSeconds(10), "a leads");
        // a renewal that reached the API server while its answer was lost (cancelled in flight): the Lease there has a
        // newer resourceVersion than the one the leader last saw, still naming it
        var renewed = StoredLease;
        renewed.Spec.RenewTime = _time.GetUtcNow();
        await _leases.UpdateAsync(renewed, CancellationToken.None);

        await a.Cts.CancelAsync();
        await a.Run.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Null(StoredLease.Spec.HolderIdentity); // released after a re-read, not left for the others to wait out
        Assert.Equal(1, StoredLease.Spec.LeaseDurationSeconds);
    }

    [Fact]
    public async Task Three_candidates_keep_exactly_one_leader_through_crashes()
    {
        foreach (var id in new[] { "a", "b", "c" }) Add(id, releaseOnCancel: false);
        await StepUntilAsync(() => _candidates.Any(c => c.Elector.IsLeader), TimeSpan.FromSeconds(10), "a leader");
        var leaders = new List<string> { Leader.Id };
        for (var crash = 0; crash < 2; crash++)
        {
            var old = Leader;
            await old.Cts.CancelAsync(); // a crash: no release
            await old.Run.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(old.Id, StoredLease.Spec.HolderIdentity);
            var took = await StepUntilAsync(() => Running.Any(c => c.Elector.IsLeader), TimeSpan.FromSeconds(30), "a new leader");
            Assert.True(took >= TimeSpan.FromSeconds(13), $"took over after {took}: before the lease could expire");
            leaders.Add(Leader.Id);
            await StepAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(leaders[^1], Leader.Id);
        }
        Assert.Equal(3, leaders.Distinct().Count());
        Assert.Equal(2, StoredLease.Spec.LeaseTransitions);
        Assert.All(_candidates, c => Assert.Equal(1, c.WorkStarts));
    }

    [Fact]
    public async Task Conflicts_are_ordinary_contention()
    {
        var a = Add("a");
        await StepUntilAsync(() => a.Elector.IsLeader, TimeSpan.FromSeconds(10), "a leads");
        var slipIn = 1;
        a.Client.BeforeUpdate = async _ =>
        {
            if (Interlocked.Exchange(ref slipIn, 0) == 0) return;
            var other = await _leases.GetAsync(Ns, LeaderElectionOptions.DefaultLeaseName, default);
            other.Metadata.Labels = new() { ["touched"] = "yes" };
            await _leases.UpdateAsync(other, default); // someone else writes between a's read and a's write
        };
        await StepAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(1, a.Client.Conflicts);
        Assert.True(a.Elector.IsLeader, "one 409 within the renew deadline changes nothing");
        Assert.Equal(1, a.WorkStarts);
        Assert.Equal("a", StoredLease.Spec.HolderIdentity);
    }

    [Fact]
    public async Task Candidates_starting_together_race_for_the_create_and_one_wins()
    {
        for (var i = 0; i < 3; i++) Add($"c{i}", start: false);
        await Task.WhenAll(_candidates.Select(c => Task.Run(() => { c.Run = c.Elector.RunAsync(c.WorkAsync, c.Cts.Token); })));
        await StepAsync(TimeSpan.FromSeconds(10));
        var leader = Leader;
        Assert.Single(_leases.AllStored());
        Assert.Equal(0, StoredLease.Spec.LeaseTransitions);
        Assert.True(_leases.CallCount("create") >= 1);
        Assert.Equal(leader.Id, StoredLease.Spec.HolderIdentity);
        Assert.All(_candidates, c => Assert.Equal(leader.Id, c.Elector.CurrentLeader));
    }

    [Fact]
    public async Task Expiry_is_judged_on_our_clock_from_when_we_saw_the_lease_change()
    {
        // a holder whose clock is a year behind ours: its renewTime looks long expired, but it keeps renewing
        var ghostTime = _time.GetUtcNow().AddYears(-1);
        await _leases.CreateAsync(new Lease
        {
            Metadata = new ObjectMeta { Name = LeaderElectionOptions.DefaultLeaseName, Namespace = Ns },
            Spec = new LeaseSpec { HolderIdentity = "ghost", LeaseDurationSeconds = 15, RenewTime = ghostTime, AcquireTime = ghostTime },
        }, default);
        var a = Add("a");
        for (var i = 0; i < 12; i++)
        {
            await StepAsync(TimeSpan.FromSeconds(5));
            var lease = StoredLease;
            ghostTime += TimeSpan.FromSeconds(5);
            lease.Spec.RenewTime = ghostTime;
            await _leases.UpdateAsync(lease, default);
        }
        Assert.False(a.Elector.IsLeader);
        Assert.Equal("ghost", a.Elector.CurrentLeader);

        // the ghost stops renewing: a takes over once it has seen no change for the lease duration
        var took = await StepUntilAsync(() => a.Elector.IsLeader, TimeSpan.FromSeconds(30), "a leads");
        Assert.InRange(took, TimeSpan.FromSeconds(15) - Step * 2, TimeSpan.FromSeconds(15 + 2 * (2 * 2.2) + 1));
        Assert.Equal(1, StoredLease.Spec.LeaseTransitions);
    }

    [Fact]
    public async Task Leader_work_that_ends_on_its_own_steps_down_and_is_started_again()
    {
        var a = Add("a", start: false);
        var runs = 0;
        a.Work = _ => Interlocked.Increment(ref runs) == 1 ? throw new InvalidOperationException("broken") : Task.Delay(Timeout.Infinite, _);
        a.Run = a.Elector.RunAsync(a.WorkAsync, a.Cts.Token);
        await StepUntilAsync(() => a.WorkStarts == 2 && a.Elector.IsLeader, TimeSpan.FromSeconds(20), "started again");
        Assert.Equal(1, a.WorkRunning);
    }

    [Fact]
    public void Options_are_validated_and_identities_are_unique()
    {
        Assert.Throws<ArgumentException>(() => new LeaderElectionOptions
        {
            Namespace = Ns, Identity = "x", LeaseDuration = TimeSpan.FromSeconds(10), RenewDeadline = TimeSpan.FromSeconds(10),
        }.Validate());
        Assert.Throws<ArgumentException>(() => new LeaderElectionOptions { Namespace = "", Identity = "x" }.Validate());
        new LeaderElectionOptions { Namespace = Ns, Identity = "x" }.Validate();
        var ids = Enumerable.Range(0, 100).Select(_ => LeaderElectionOptions.NewIdentity("node-1")).ToList();
        Assert.All(ids, id => Assert.Matches("^node-1_[0-9a-f]+$", id));
        Assert.Equal(100, ids.Distinct().Count());
    }
}

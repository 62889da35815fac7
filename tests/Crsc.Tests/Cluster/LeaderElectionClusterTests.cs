using System.Diagnostics;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Leadership;
using Crsc.Kube;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Tests.Cluster;

/// <summary>
/// <see cref="LeaderElector"/> through the real HTTP client against <see cref="FakeApiServer"/>, on real time with
/// short leases (3 s lease, 2 s renew deadline, 0.25 s retry): the gap between "the old leader gives up" and "a
/// follower may take over" is a second, which a loaded machine keeps.
/// </summary>
public sealed class LeaderElectionClusterTests
{
    private const string Ns = "crsc-system";

    /// <summary>Counts leader terms that overlap: the leader work enters on start and leaves when cancelled.</summary>
    private sealed class Overlap
    {
        private int _current;
        private int _max;
        public int Max => Volatile.Read(ref _max);
        public void Enter()
        {
            var now = Interlocked.Increment(ref _current);
            int seen;
            while (now > (seen = Volatile.Read(ref _max)) && Interlocked.CompareExchange(ref _max, now, seen) != seen) { }
        }
        public void Leave() => Interlocked.Decrement(ref _current);
    }

    private sealed class Candidate : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly KubeApi _api;
        private readonly Task _run;
        private int _terms;
        private int _cancelledTerms;

        public Candidate(FakeApiServer server, string id, Overlap overlap, int leaseSeconds = 3, bool release = true, string? token = null)
        {
            _api = ClusterTestKit.Api(server, token);
            Elector = new LeaderElector(_api.Resource(Resources.Leases), new LeaderElectionOptions
            {
                Namespace = Ns,
                Identity = id,
                LeaseDuration = TimeSpan.FromSeconds(leaseSeconds),
                RenewDeadline = TimeSpan.FromSeconds(leaseSeconds * 2 / 3.0),
                RetryPeriod = TimeSpan.FromMilliseconds(250),
                ReleaseOnCancel = release,
            }, TimeProvider.System, NullLogger.Instance);
            _run = Elector.RunAsync(async ct =>
            {
                Interlocked.Increment(ref _terms);
                overlap.Enter();
                try
                {
                    await Task.Delay(Timeout.Infinite, ct);
                }
                finally
                {
                    overlap.Leave();
                    if (ct.IsCancellationRequested) Interlocked.Increment(ref _cancelledTerms);
                }
            }, _stop.Token);
        }

        public LeaderElector Elector { get; }
        public string Id => Elector.Identity;
        public int Terms => Volatile.Read(ref _terms);
        public int CancelledTerms => Volatile.Read(ref _cancelledTerms);
        public bool Stopped => _run.IsCompleted;

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
            await _run.WaitAsync(TimeSpan.FromSeconds(30));
        }

        public async ValueTask DisposeAsync()
        {
            if (!_run.IsCompleted) await StopAsync();
            _api.Dispose();
        }
    }

    private static async Task<Candidate> OneLeaderAsync(IReadOnlyList<Candidate> candidates)
    {
        await Eventually.TrueAsync(() => candidates.Count(c => c.Elector.IsLeader) == 1, "exactly one leader", TimeSpan.FromSeconds(30));
        var leader = candidates.Single(c => c.Elector.IsLeader);
        await Eventually.TrueAsync(() => candidates.All(c => c.Elector.CurrentLeader == leader.Id),
            "every candidate sees the leader", TimeSpan.FromSeconds(30));
        return leader;
    }

    private static Lease LeaseOf(FakeApiServer server) => server.Get(Resources.Leases, Ns, LeaderElectionOptions.DefaultLeaseName)!;

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Exactly_one_of_several_candidates_leads_and_keeps_leading(int count)
    {
        await using var server = await FakeApiServer.StartAsync();
        var overlap = new Overlap();
        var candidates = Enumerable.Range(0, count).Select(i => new Candidate(server, $"node-{i}_x", overlap)).ToList();
        try
        {
            var leader = await OneLeaderAsync(candidates);
            // two lease durations of renewals: the leader stays, nobody else ever leads meanwhile
            var sw = Stopwatch.StartNew();
            while (sw.Elapsed < TimeSpan.FromSeconds(6))
            {
                Assert.True(candidates.Count(c => c.Elector.IsLeader) <= 1);
                await Task.Delay(50);
            }
            Assert.True(leader.Elector.IsLeader);
            Assert.Equal(1, leader.Terms);
            Assert.All(candidates.Where(c => c != leader), c => Assert.Equal(0, c.Terms));
            Assert.Equal(1, overlap.Max);
            var lease = LeaseOf(server);
            Assert.Equal(leader.Id, lease.Spec.HolderIdentity);
            Assert.Equal(3, lease.Spec.LeaseDurationSeconds);
        }
        finally
        {
            foreach (var c in candidates) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_leader_that_cannot_renew_loses_its_work_and_another_takes_over()
    {
        string[] tokens = ["token-a", "token-b", "token-c"];
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { Tokens = tokens });
        var overlap = new Overlap();
        // a 9 s lease: the leader gives up at its 6 s renew deadline, 3 s before the others may take the Lease (with 3 s and
        // a 1 s margin, a loaded CI machine once ran the old leader's deadline check after the takeover)
        var candidates = tokens.Select((t, i) => new Candidate(server, $"node-{i}_x", overlap, leaseSeconds: 9, token: t)).ToList();
        try
        {
            var old = await OneLeaderAsync(candidates);
            var oldUser = "token:" + tokens[candidates.IndexOf(old)];
            // every request of the leader fails from now on: its renewals stop reaching the Lease
            server.FailNext(100_000, 503, match: r => r.User == oldUser);

            await Eventually.TrueAsync(() => candidates.Count(c => c != old && c.Elector.IsLeader) == 1,
                "a follower takes over", TimeSpan.FromSeconds(30));
            Assert.False(old.Elector.IsLeader);
            Assert.Equal(1, old.CancelledTerms); // its leader work was cancelled when it gave up
            Assert.Equal(1, overlap.Max); // it gave up (renew deadline) before the Lease expired for the others
            var next = candidates.Single(c => c.Elector.IsLeader);
            Assert.Equal(next.Id, LeaseOf(server).Spec.HolderIdentity);
            Assert.Equal(1, LeaseOf(server).Spec.LeaseTransitions);
        }
        finally
        {
            foreach (var c in candidates) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_leader_that_stops_without_release_is_replaced_after_the_lease_expires()
    {
        await using var server = await FakeApiServer.StartAsync();
        var overlap = new Overlap();
        var candidates = Enumerable.Range(0, 2).Select(i => new Candidate(server, $"node-{i}_x", overlap, release: false)).ToList();
        try
        {
            var old = await OneLeaderAsync(candidates);
            var other = candidates.Single(c => c != old);
            var sw = Stopwatch.StartNew();
            await old.StopAsync(); // a crash, as far as the Lease can tell: it is not emptied
            Assert.Equal(old.Id, LeaseOf(server).Spec.HolderIdentity);
            Assert.Equal(1, old.CancelledTerms);

            await Eventually.TrueAsync(() => other.Elector.IsLeader, "the follower takes over", TimeSpan.FromSeconds(30));
            // the follower waited for the lease duration (3 s) as measured from when it last saw the Lease change
            Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(2), $"took over after {sw.Elapsed}, before the lease expired");
            Assert.Equal(other.Id, LeaseOf(server).Spec.HolderIdentity);
        }
        finally
        {
            foreach (var c in candidates) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_leader_that_releases_on_shutdown_is_replaced_at_once()
    {
        await using var server = await FakeApiServer.StartAsync();
        var overlap = new Overlap();
        // a long lease: taking over "at once" (a retry period, 250 ms) is then far from waiting for it to expire (120 s),
        // with a margin no machine load closes (a 15 s lease and a 7 s bound failed once on a busy 2-core machine)
        var candidates = Enumerable.Range(0, 3).Select(i => new Candidate(server, $"node-{i}_x", overlap, leaseSeconds: 120)).ToList();
        try
        {
            var old = await OneLeaderAsync(candidates);
            var sw = Stopwatch.StartNew();
            await old.StopAsync();
            Assert.Equal(1, old.CancelledTerms);
            await Eventually.TrueAsync(() => candidates.Count(c => c != old && c.Elector.IsLeader) == 1,
                "a follower takes over", TimeSpan.FromSeconds(60));
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"failover took {sw.Elapsed}: the Lease was not released");
            var next = candidates.Single(c => c.Elector.IsLeader);
            Assert.Equal(next.Id, LeaseOf(server).Spec.HolderIdentity);
            Assert.Equal(1, overlap.Max);
        }
        finally
        {
            foreach (var c in candidates) await c.DisposeAsync();
        }
    }
}

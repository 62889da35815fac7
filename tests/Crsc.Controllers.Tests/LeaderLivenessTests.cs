using System.Collections.Concurrent;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Leadership;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests;

/// <summary>
/// The leader as a node sees it: a watch on the Lease, and this process's clock since the Lease last changed. The
/// clock is a <see cref="ManualTimeProvider"/>: time passes only when the test moves it. The Lease's renew times are
/// years off that clock on purpose: they are compared with nothing but the previous one.
/// </summary>
public sealed class LeaderLivenessTests : IAsyncLifetime
{
    private const string Ns = "crsc-system";
    private static readonly DateTimeOffset RemoteClock = new(2019, 6, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly ManualTimeProvider _time = new();
    private readonly FakeKube _kube;
    private readonly FakeResourceClient<Lease> _leases;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<bool> _changes = new();
    private readonly List<Task> _running = [];
    private Informer<Lease> _informer = null!;
    private LeaderLiveness _liveness = null!;
    private int _renewals;

    public LeaderLivenessTests()
    {
        _kube = new FakeKube(_time);
        _leases = _kube.For(Resources.Leases);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running).WaitAsync(TimeSpan.FromSeconds(10));
        _stop.Dispose();
    }

    private async Task StartAsync()
    {
        _informer = new Informer<Lease>(_leases,
            new InformerOptions { Namespace = Ns, FieldSelector = "metadata.name=crsc-leader" }, _time, NullLogger.Instance);
        _liveness = new LeaderLiveness(_informer, new LeaderLivenessOptions { Namespace = Ns }, _time);
        _liveness.Changed += _changes.Enqueue;
        _running.Add(_informer.RunAsync(_stop.Token));
        _running.Add(_liveness.RunAsync(_stop.Token));
        await Eventually.TrueAsync(() => _informer.HasSynced, "the Lease is listed");
        await IdleAsync();
    }

    private Task<Lease> SeedAsync(string holder) => _leases.SeedAsync(new Lease
    {
        Metadata = new ObjectMeta { Namespace = Ns, Name = "crsc-leader" },
        Spec = new LeaseSpec { HolderIdentity = holder, LeaseDurationSeconds = 15, RenewTime = RemoteClock },
    });

    /// <summary>What a leader's renewal (or a takeover, or a release) writes; waits until the watch has shown it.</summary>
    private async Task WriteLeaseAsync(string? holder)
    {
        var lease = _leases.Stored(Ns, "crsc-leader")!;
        lease.Spec.HolderIdentity = holder;
        lease.Spec.RenewTime = RemoteClock.AddSeconds(++_renewals * 2);
        await _leases.UpdateAsync(lease, CancellationToken.None);
        await Eventually.TrueAsync(() => _liveness.SinceLastChange == TimeSpan.Zero && _liveness.Holder == holder, "the change is seen");
        await IdleAsync();
    }

    private Task IdleAsync() => Eventually.TrueAsync(() => _liveness.IsIdle, "the liveness loop waits");

    /// <summary>Waits until the loop has reported the state (its transition, if it is one) and then checks the property.</summary>
    private async Task ExpectAsync(bool present, int transitions)
    {
        await Eventually.TrueAsync(() => _changes.Count == transitions, $"{transitions} transitions reported");
        Assert.Equal(present, _liveness.LeaderPresent);
        if (transitions > 0) Assert.Equal(present, _changes.Last());
    }

    [Fact]
    public async Task The_leader_is_present_while_renewals_are_seen_and_absent_after_the_threshold_without_one()
    {
        await SeedAsync("node-a_1");
        await StartAsync();
        await Eventually.TrueAsync(() => _liveness.Holder == "node-a_1", "the holder is seen");
        Assert.True(_liveness.LeaderPresent);

        // a renewal every 2 s: never absent, however long
        for (var i = 0; i < 5; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(2));
            await WriteLeaseAsync("node-a_1");
            await ExpectAsync(present: true, transitions: 0);
        }

        // the leader crashed: no more renewals, the Lease is left as it was (not released, not expired)
        _time.Advance(TimeSpan.FromSeconds(2.9));
        await ExpectAsync(present: true, transitions: 0);
        _time.Advance(TimeSpan.FromSeconds(0.1));
        await ExpectAsync(present: false, transitions: 1);
        Assert.Equal("node-a_1", _liveness.Holder);

        // the next change — a new leader took the Lease — makes it present again at once
        _time.Advance(TimeSpan.FromSeconds(12));
        await WriteLeaseAsync("node-b_2");
        await ExpectAsync(present: true, transitions: 2);
        _time.Advance(TimeSpan.FromSeconds(2));
        await ExpectAsync(present: true, transitions: 2);
    }

    [Fact]
    public async Task The_leader_is_absent_at_once_when_its_Lease_is_released_or_deleted()
    {
        await SeedAsync("node-a_1");
        await StartAsync();
        await Eventually.TrueAsync(() => _liveness.Holder == "node-a_1", "the holder is seen");

        // released (holder emptied): absent without waiting for the threshold
        await WriteLeaseAsync("");
        await ExpectAsync(present: false, transitions: 1);

        await WriteLeaseAsync("node-b_2");
        await ExpectAsync(present: true, transitions: 2);

        await _leases.DeleteAsync(Ns, "crsc-leader", null, CancellationToken.None);
        await Eventually.TrueAsync(() => _changes.Count == 3, "the deletion is reported");
        Assert.False(_liveness.LeaderPresent);
        Assert.False(_changes.Last());
        Assert.Null(_liveness.Holder);
    }

    [Fact]
    public async Task No_Lease_at_all_is_an_absent_leader_once_listed()
    {
        await StartAsync();
        await ExpectAsync(present: false, transitions: 1);
    }
}

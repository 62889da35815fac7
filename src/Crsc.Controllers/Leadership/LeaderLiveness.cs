using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;

namespace Crsc.Controllers.Leadership;

public sealed record LeaderLivenessOptions
{
    /// <summary>The default of <see cref="AbsentAfter"/>: one renewal missed at the 2 s retry period, plus a margin.</summary>
    public static readonly TimeSpan DefaultAbsentAfter = TimeSpan.FromSeconds(3);

    /// <summary>The namespace of the leader's Lease (configuration key <c>namespace</c>).</summary>
    public required string Namespace { get; init; }

    public string LeaseName { get; init; } = LeaderElectionOptions.DefaultLeaseName;

    /// <summary>
    /// The leader counts as absent when its Lease has not been seen to change (renewed, taken, released) for this long,
    /// measured on this process's clock from when the change was seen (configuration key <c>leader.absentAfter</c>).
    /// </summary>
    public TimeSpan AbsentAfter { get; init; } = DefaultAbsentAfter;

    public void Validate()
    {
        if (string.IsNullOrEmpty(Namespace)) throw new ArgumentException("leader liveness: namespace is empty");
        if (string.IsNullOrEmpty(LeaseName)) throw new ArgumentException("leader liveness: lease name is empty");
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(AbsentAfter, TimeSpan.Zero, nameof(AbsentAfter));
    }
}

/// <summary>
/// Whether a leader is there, as a node sees it: a watch on the leader's Lease alone (a name-scoped informer), and the
/// time, on this process's clock, when the Lease was last seen to change (its resourceVersion: any renewal, take-over or
/// release changes it).
/// The leader is absent when the Lease is missing, has no holder, or has not changed for
/// <see cref="LeaderLivenessOptions.AbsentAfter"/> — a leader renews every retry period (2 s), so one missed renewal is
/// enough, long before the Lease expires (15 s) and another instance may take it. As in <see cref="LeaderElector"/>, the
/// Lease's own timestamps are never compared with this clock. Until the first list the leader counts as present
/// (nothing is known that would justify acting in its place).
/// <para>
/// <see cref="Changed"/> fires on each transition, from <see cref="RunAsync"/>, which also wakes when the threshold
/// passes without a change; <see cref="LeaderPresent"/> is read at any time and always agrees with the clock.
/// </para>
/// </summary>
public sealed class LeaderLiveness
{
    private readonly Lock _gate = new();
    private readonly Informer<Lease> _lease;
    private readonly LeaderLivenessOptions _options;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _wake = new(0, 1);
    private bool _known;
    private string? _holder;
    private string? _resourceVersion;
    private long _changedAt;
    private bool _reported = true;
    private long _changes;
    private long _armedFor = -1;

    public LeaderLiveness(Informer<Lease> lease, LeaderLivenessOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _lease = lease;
        _options = options;
        _time = time;
        _changedAt = time.GetTimestamp();
        lease.AddEventHandler(new ResourceEventHandler<Lease>(Seen, (_, n) => Seen(n), Deleted));
    }

    /// <summary>
    /// A watch on the leader's Lease alone (<c>metadata.name=&lt;lease&gt;</c> in its namespace), from
    /// <paramref name="manager"/>'s informers; the manager runs it for the whole run (no controller watches it) and
    /// <see cref="RunAsync"/> as node work.
    /// </summary>
    public static LeaderLiveness SetUp(ControllerManager manager, LeaderLivenessOptions options)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(options);
        var lease = manager.Informers.For(Resources.Leases, new InformerOptions
        {
            Namespace = options.Namespace,
            FieldSelector = $"metadata.name={options.LeaseName}",
            Name = "informer/leader-lease",
        });
        var liveness = new LeaderLiveness(lease, options, manager.Time);
        manager.AddRunnable("leader liveness", liveness.RunAsync);
        return liveness;
    }

    public LeaderLivenessOptions Options => _options;

    /// <summary>True unless the leader is absent (see the class); true before the Lease was first listed.</summary>
    public bool LeaderPresent
    {
        get
        {
            lock (_gate) return Present(out _);
        }
    }

    /// <summary>The Lease's holder as last seen (null: no Lease, no holder, or not listed yet).</summary>
    public string? Holder
    {
        get
        {
            lock (_gate) return _holder;
        }
    }

    /// <summary>How long ago, on this process's clock, the Lease was last seen to change (or to go).</summary>
    public TimeSpan SinceLastChange
    {
        get
        {
            lock (_gate) return _time.GetElapsedTime(_changedAt);
        }
    }

    /// <summary>
    /// True when <see cref="RunAsync"/> waits with every change seen so far taken into account (tests move their clock
    /// only then, so that no wait is armed from a reading taken before the move).
    /// </summary>
    internal bool IsIdle
    {
        get
        {
            lock (_gate) return Volatile.Read(ref _armedFor) == _changes;
        }
    }

    /// <summary>Fires with <see cref="LeaderPresent"/>'s new value on each transition, from <see cref="RunAsync"/>.</summary>
    public event Action<bool>? Changed;

    /// <summary>
    /// Follows the Lease until <paramref name="ct"/> fires (then it returns), firing <see cref="Changed"/> on each
    /// transition. The informer is run by whoever owns it (the manager).
    /// </summary>
    public async Task RunAsync(CancellationToken ct)
    {
        try
        {
            await FollowAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private async Task FollowAsync(CancellationToken ct)
    {
        await _lease.WaitForSyncAsync(ct).ConfigureAwait(false);
        lock (_gate)
        {
            // listed: a Lease that is not there is known to be missing
            if (!_known) _changedAt = _time.GetTimestamp();
            _known = true;
            _changes++;
        }
        while (!ct.IsCancellationRequested)
        {
            bool present;
            TimeSpan wait;
            long seen;
            lock (_gate)
            {
                present = Present(out wait);
                seen = _changes;
            }
            if (present != _reported)
            {
                _reported = present;
                Changed?.Invoke(present);
            }
            using var timeout = wait == Timeout.InfiniteTimeSpan ? null : new CancellationTokenSource(wait, _time);
            using var both = timeout is null ? null : CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
            Volatile.Write(ref _armedFor, seen);
            try
            {
                await _wake.WaitAsync(both?.Token ?? ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                // the threshold passed without a change: evaluated again
            }
        }
    }

    /// <summary>Under <see cref="_gate"/>: whether the leader is present, and how long until that may change by itself.</summary>
    private bool Present(out TimeSpan wait)
    {
        wait = Timeout.InfiniteTimeSpan;
        if (!_known) return true;
        if (string.IsNullOrEmpty(_holder)) return false;
        var left = _options.AbsentAfter - _time.GetElapsedTime(_changedAt);
        if (left <= TimeSpan.Zero) return false;
        wait = left;
        return true;
    }

    private void Seen(Lease lease)
    {
        lock (_gate)
        {
            // every write of the Lease (a renewal, a take-over, a release) gives it a new resourceVersion
            var changed = !_known || lease.Metadata.ResourceVersion != _resourceVersion;
            _known = true;
            if (!changed) return; // a relist or resync announcing what was seen already
            _holder = lease.Spec.HolderIdentity;
            _resourceVersion = lease.Metadata.ResourceVersion;
            _changedAt = _time.GetTimestamp();
            _changes++;
        }
        Wake();
    }

    private void Deleted(Lease lease)
    {
        lock (_gate)
        {
            _known = true;
            _holder = null;
            _resourceVersion = null;
            _changedAt = _time.GetTimestamp();
            _changes++;
        }
        Wake();
    }

    private void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (SemaphoreFullException)
        {
            // a wake-up is pending already
        }
    }
}

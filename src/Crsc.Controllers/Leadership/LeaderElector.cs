using System.Globalization;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Health;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Queue;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Leadership;

public sealed record LeaderElectionOptions
{
    public const string DefaultLeaseName = "crsc-leader";

    /// <summary>The namespace of the Lease (configuration key <c>namespace</c>).</summary>
    public required string Namespace { get; init; }

    /// <summary>This candidate, unique per process: see <see cref="NewIdentity"/>.</summary>
    public required string Identity { get; init; }

    public string LeaseName { get; init; } = DefaultLeaseName;

    /// <summary>How long followers wait, after they last saw the Lease change, before taking it over.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long the leader keeps trying to renew before it gives the leadership up.</summary>
    public TimeSpan RenewDeadline { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Between two attempts to acquire or renew.</summary>
    public TimeSpan RetryPeriod { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Attempts to acquire wait the retry period plus a random share of up to this much of it.</summary>
    public double JitterFactor { get; init; } = 1.2;

    /// <summary>On shutdown, the leader empties the Lease so that another instance takes over at once.</summary>
    public bool ReleaseOnCancel { get; init; } = true;

    /// <summary>The name it reports under in the health registry.</summary>
    public string HealthComponent { get; init; } = "leader-election";

    /// <summary><c>&lt;node&gt;_&lt;random&gt;</c>: unique even when two daemons run on one node.</summary>
    public static string NewIdentity(string nodeName)
        => $"{nodeName}_{Random.Shared.NextInt64(0x1_0000_0000L, 0x10_0000_0000L):x}";

    public void Validate()
    {
        if (string.IsNullOrEmpty(Namespace)) throw new ArgumentException("leader election: namespace is empty");
        if (string.IsNullOrEmpty(Identity)) throw new ArgumentException("leader election: identity is empty");
        if (string.IsNullOrEmpty(LeaseName)) throw new ArgumentException("leader election: lease name is empty");
        if (RetryPeriod <= TimeSpan.Zero) throw new ArgumentException("leader election: retry period must be positive");
        if (LeaseDuration <= RenewDeadline)
            throw new ArgumentException("leader election: lease duration must be longer than the renew deadline");
        if (RenewDeadline <= RetryPeriod * Math.Max(1, JitterFactor))
            throw new ArgumentException("leader election: renew deadline must be longer than retry period × jitter");
        if (LeaseDuration.TotalSeconds < 1 || LeaseDuration.Ticks % TimeSpan.TicksPerSecond != 0)
            throw new ArgumentException("leader election: lease duration must be whole seconds");
    }
}

/// <summary>
/// Leader election on a <c>coordination.k8s.io/v1</c> Lease, with client-go's semantics: the Lease is taken when
/// it is absent, empty, ours, or has not changed for its lease duration as measured on <em>our</em> clock since we
/// last saw it change (the remote timestamps are never compared with our clock); the leader renews every retry
/// period and gives up when it could not renew within the renew deadline; 409s are ordinary contention.
/// <para>
/// Leadership is a cancellation scope: <see cref="RunAsync"/> runs the leader work while leading, cancels it and
/// waits for it when leadership is lost, then campaigns again. It returns only when its token fires, and then
/// releases the Lease so another instance takes over at once.
/// </para>
/// </summary>
public sealed class LeaderElector
{
    private readonly Lock _gate = new();
    private readonly IKubeResourceClient<Lease> _leases;
    private readonly LeaderElectionOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HealthRegistry? _health;
    private readonly IEventRecorder? _events;
    private readonly Random _random;
    private Lease? _observed;
    private DateTimeOffset _observedAt;
    private bool _isLeader;
    private string? _leader;
    private int _running;
    private int _sleeping;
    private DateTimeOffset? _unreachableSince;
    private string? _unreachableProblem;
    private DateTimeOffset? _lastRenewed;

    public LeaderElector(IKubeResourceClient<Lease> leases, LeaderElectionOptions options, TimeProvider time,
        ILogger logger, HealthRegistry? health = null, IEventRecorder? events = null, Random? random = null)
    {
        options.Validate();
        _leases = leases;
        _options = options;
        _time = time;
        _logger = logger;
        _health = health;
        _events = events;
        _random = random ?? Random.Shared;
    }

    public string Identity => _options.Identity;

    /// <summary>True while this instance holds the Lease and runs the leader work.</summary>
    public bool IsLeader { get { lock (_gate) return _isLeader; } }

    /// <summary>The holder of the Lease as last observed (null: nobody, or not known yet).</summary>
    public string? CurrentLeader { get { lock (_gate) return _leader; } }

    /// <summary>Fires with true when this instance starts leading, false when it stops.</summary>
    public event Action<bool>? LeadershipChanged;

    /// <summary>Fires when the observed holder of the Lease changes.</summary>
    public event Action<string?>? LeaderChanged;

    /// <summary>
    /// Campaigns, runs <paramref name="leaderWork"/> while leading (its token fires when leadership ends), and
    /// campaigns again after losing. Returns when <paramref name="ct"/> fires, after the work has drained and the
    /// Lease has been released.
    /// </summary>
    public async Task RunAsync(Func<CancellationToken, Task> leaderWork, CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _running, 1) != 0) throw new InvalidOperationException("leader election is running already");
        ReportHealth();
        try
        {
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    await AcquireAsync(ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
                var lost = await LeadAsync(leaderWork, ct).ConfigureAwait(false);
                if (lost == TermEnd.Cancelled)
                {
                    if (_options.ReleaseOnCancel) await ReleaseAsync().ConfigureAwait(false);
                    return;
                }
                if (lost == TermEnd.WorkEnded)
                {
                    // the leader work gave up: step down so that another instance can take over
                    await ReleaseAsync().ConfigureAwait(false);
                    try
                    {
                        await SleepAsync(_options.RetryPeriod, ct).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (ct.IsCancellationRequested)
                    {
                        return;
                    }
                }
            }
        }
        finally
        {
            _health?.Remove(_options.HealthComponent);
            Volatile.Write(ref _running, 0);
        }
    }

    /// <summary>True while the elector waits on its clock between attempts (tests use it to know it is idle).</summary>
    internal bool IsWaitingOnClock => Volatile.Read(ref _sleeping) > 0;

    private enum TermEnd { Lost, Cancelled, WorkEnded }

    private async Task SleepAsync(TimeSpan delay, CancellationToken ct)
    {
        Interlocked.Increment(ref _sleeping);
        try
        {
            await Task.Delay(delay, _time, ct).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _sleeping);
        }
    }

    private async Task<TermEnd> LeadAsync(Func<CancellationToken, Task> leaderWork, CancellationToken ct)
    {
        using var term = CancellationTokenSource.CreateLinkedTokenSource(ct);
        SetLeading(true);
        Log.StartedLeading(_logger, Identity, _options.Namespace, _options.LeaseName);
        if (_observed is { } lease) _events?.Normal(lease, "LeaderElection", $"{Identity} became leader");
        var work = RunWorkAsync(leaderWork, term.Token);
        var renew = RenewLoopAsync(term.Token);
        var first = await Task.WhenAny(work, renew).ConfigureAwait(false);
        TermEnd end;
        if (ct.IsCancellationRequested) end = TermEnd.Cancelled;
        else if (first == work) end = TermEnd.WorkEnded;
        else end = TermEnd.Lost;
        if (end == TermEnd.Lost) SetLeading(false); // we are not the leader any more, whatever the work still does
        await term.CancelAsync().ConfigureAwait(false);
        await work.ConfigureAwait(false);
        try
        {
            await renew.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        SetLeading(false);
        switch (end)
        {
            case TermEnd.Lost: Log.Lost(_logger, Identity, _options.RenewDeadline); break;
            case TermEnd.WorkEnded: Log.WorkEnded(_logger, Identity); break;
            default: Log.StoppedLeading(_logger, Identity); break;
        }
        return end;
    }

    private async Task RunWorkAsync(Func<CancellationToken, Task> leaderWork, CancellationToken ct)
    {
        try
        {
            await Task.Run(() => leaderWork(ct), CancellationToken.None).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Log.WorkFailed(_logger, e, Identity);
        }
    }

    private async Task AcquireAsync(CancellationToken ct)
    {
        Log.Campaigning(_logger, Identity, _options.Namespace, _options.LeaseName);
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (await TryAcquireOrRenewAsync(ct).ConfigureAwait(false)) return;
            var wait = Backoff.Jittered(_options.RetryPeriod, _options.JitterFactor, _random);
            await SleepAsync(wait, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Renews every retry period; returns when a renewal could not be made within the renew deadline.</summary>
    private async Task RenewLoopAsync(CancellationToken ct)
    {
        while (true)
        {
            await SleepAsync(_options.RetryPeriod, ct).ConfigureAwait(false);
            var deadline = _time.GetUtcNow() + _options.RenewDeadline;
            while (true)
            {
                if (await TryRenewBeforeAsync(deadline, ct).ConfigureAwait(false)) break;
                var left = deadline - _time.GetUtcNow();
                if (left <= TimeSpan.Zero) return;
                await SleepAsync(left < _options.RetryPeriod ? left : _options.RetryPeriod, ct).ConfigureAwait(false);
                if (_time.GetUtcNow() >= deadline) return;
            }
        }
    }

    private async Task<bool> TryRenewBeforeAsync(DateTimeOffset deadline, CancellationToken ct)
    {
        var left = deadline - _time.GetUtcNow();
        if (left <= TimeSpan.Zero) return false;
        using var attempt = new CancellationTokenSource(left, _time);
        using var link = ct.Register(static s => ((CancellationTokenSource)s!).Cancel(), attempt);
        try
        {
            return await TryAcquireOrRenewAsync(attempt.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            MarkUnreachable(null); // the API call outlived the renew deadline
            return false;
        }
    }

    /// <summary>One attempt; false when someone else holds a valid Lease or the write lost a race or failed.</summary>
    private async Task<bool> TryAcquireOrRenewAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        try
        {
            Lease current;
            try
            {
                current = await _leases.GetAsync(_options.Namespace, _options.LeaseName, ct).ConfigureAwait(false);
            }
            catch (NotFoundException)
            {
                MarkReachable();
                var fresh = new Lease
                {
                    Metadata = new ObjectMeta { Name = _options.LeaseName, Namespace = _options.Namespace },
                    Spec = NewRecord(now, previous: null),
                };
                try
                {
                    Observe(await _leases.CreateAsync(fresh, ct).ConfigureAwait(false), now);
                    Renewed(now);
                    return true;
                }
                catch (AlreadyExistsException)
                {
                    return false; // someone else created it first
                }
            }

            MarkReachable();
            Observe(current, now);
            var holder = current.Spec.HolderIdentity;
            if (!string.IsNullOrEmpty(holder) && holder != Identity && !ObservedExpired(now)) return false;

            var update = new Lease
            {
                ApiVersion = current.ApiVersion,
                Kind = current.Kind,
                Metadata = current.Metadata,
                Spec = NewRecord(now, current.Spec),
            };
            Observe(await _leases.UpdateAsync(update, ct).ConfigureAwait(false), now);
            Renewed(now);
            return true;
        }
        catch (ConflictException)
        {
            MarkReachable();
            return false; // another candidate wrote in between: ordinary contention
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            Log.AttemptFailed(_logger, e, Identity, _options.Namespace, _options.LeaseName);
            MarkUnreachable(e);
            return false;
        }
    }

    private LeaseSpec NewRecord(DateTimeOffset now, LeaseSpec? previous)
    {
        var ours = previous?.HolderIdentity == Identity;
        return new LeaseSpec
        {
            HolderIdentity = Identity,
            LeaseDurationSeconds = (int)_options.LeaseDuration.TotalSeconds,
            AcquireTime = ours ? previous!.AcquireTime ?? now : now,
            RenewTime = now,
            LeaseTransitions = previous is null ? 0 : ours ? previous.LeaseTransitions ?? 0 : (previous.LeaseTransitions ?? 0) + 1,
        };
    }

    /// <summary>Remembers the record and, when it changed, when we saw it change (on our clock).</summary>
    private void Observe(Lease lease, DateTimeOffset now)
    {
        string? changedTo = null;
        var changed = false;
        lock (_gate)
        {
            if (_observed is null || !SameRecord(_observed.Spec, lease.Spec)) _observedAt = now;
            _observed = lease;
            var holder = string.IsNullOrEmpty(lease.Spec.HolderIdentity) ? null : lease.Spec.HolderIdentity;
            if (holder != _leader)
            {
                _leader = holder;
                changedTo = holder;
                changed = true;
            }
        }
        if (!changed) return;
        Log.LeaderObserved(_logger, changedTo ?? "(nobody)");
        ReportHealth();
        try
        {
            LeaderChanged?.Invoke(changedTo);
        }
        catch (Exception e)
        {
            Log.CallbackFailed(_logger, e);
        }
    }

    private bool ObservedExpired(DateTimeOffset now)
    {
        lock (_gate)
        {
            var seconds = _observed?.Spec.LeaseDurationSeconds ?? (int)_options.LeaseDuration.TotalSeconds;
            return _observedAt + TimeSpan.FromSeconds(seconds) <= now;
        }
    }

    private static bool SameRecord(LeaseSpec a, LeaseSpec b)
        => a.HolderIdentity == b.HolderIdentity
           && a.LeaseDurationSeconds == b.LeaseDurationSeconds
           && a.AcquireTime == b.AcquireTime
           && a.RenewTime == b.RenewTime
           && a.LeaseTransitions == b.LeaseTransitions;

    /// <summary>
    /// Empties the Lease if we still hold it, so that the next candidate need not wait for it to expire. A renewal cut off
    /// by the cancellation may have reached the API server after all (its answer never came back), so a 409 is not the end:
    /// the Lease is read again and, while it still names us, released with what the server has.
    /// </summary>
    private async Task ReleaseAsync()
    {
        Lease? observed;
        lock (_gate) observed = _observed;
        if (observed is null || observed.Spec.HolderIdentity != Identity) return;
        using var timeout = new CancellationTokenSource(_options.RenewDeadline, _time);
        for (var attempt = 0; ; attempt++)
        {
            var now = _time.GetUtcNow();
            var released = new Lease
            {
                ApiVersion = observed.ApiVersion,
                Kind = observed.Kind,
                Metadata = observed.Metadata,
                Spec = new LeaseSpec
                {
                    HolderIdentity = null,
                    LeaseDurationSeconds = 1,
                    AcquireTime = now,
                    RenewTime = now,
                    LeaseTransitions = observed.Spec.LeaseTransitions,
                },
            };
            try
            {
                // with the resourceVersion of the Lease as last seen: if someone took it over meanwhile, this is a 409
                Observe(await _leases.UpdateAsync(released, timeout.Token).ConfigureAwait(false), now);
                Log.Released(_logger, Identity, _options.Namespace, _options.LeaseName);
                return;
            }
            catch (ConflictException) when (attempt < 2)
            {
                try { observed = await _leases.GetAsync(_options.Namespace, _options.LeaseName, timeout.Token).ConfigureAwait(false); }
                catch (Exception e)
                {
                    Log.ReleaseFailed(_logger, e, Identity);
                    return;
                }
                if (observed?.Spec.HolderIdentity != Identity) return; // another holds it now: nothing of ours to release
            }
            catch (Exception e)
            {
                Log.ReleaseFailed(_logger, e, Identity);
                return;
            }
        }
    }

    private void SetLeading(bool leading)
    {
        lock (_gate)
        {
            if (_isLeader == leading) return;
            _isLeader = leading;
        }
        ReportHealth();
        try
        {
            LeadershipChanged?.Invoke(leading);
        }
        catch (Exception e)
        {
            Log.CallbackFailed(_logger, e);
        }
    }

    /// <summary>The Lease was written by us (taken or renewed): the API server answers.</summary>
    private void Renewed(DateTimeOffset now)
    {
        lock (_gate) _lastRenewed = now;
        MarkReachable();
    }

    /// <summary>The API server answered (whatever it said about the Lease).</summary>
    private void MarkReachable()
    {
        lock (_gate)
        {
            if (_unreachableSince is null) return;
            _unreachableSince = null;
            _unreachableProblem = null;
        }
        ReportHealth();
    }

    /// <summary>
    /// An attempt got no answer about the Lease (<paramref name="error"/> null: it outlived the renew deadline): from now
    /// until an answer comes, neither our leadership nor the holder we saw can be known to be current.
    /// </summary>
    private void MarkUnreachable(Exception? error)
    {
        lock (_gate)
        {
            if (_unreachableSince is not null) return;
            _unreachableSince = _time.GetUtcNow();
            // a refusal is an answer, but one that leaves the Lease as unknown as no answer does
            _unreachableProblem = error is KubeApiException k ? $"api-server refusing the Lease ({k.Code} {k.Reason})" : "api-server unreachable";
        }
        ReportHealth();
    }

    /// <summary>
    /// "leading" / "following X" / "campaigning", Healthy while the API server answers; Degraded, saying since when
    /// and what cannot be known, while it does not.
    /// </summary>
    private void ReportHealth()
    {
        if (_health is null) return;
        bool leading;
        string? leader;
        DateTimeOffset? since, lastRenewed;
        string? problem;
        lock (_gate)
        {
            leading = _isLeader;
            leader = _leader;
            since = _unreachableSince;
            problem = _unreachableProblem;
            lastRenewed = _lastRenewed;
        }
        var following = !leading && leader is not null && leader != Identity;
        var message = leading ? "leading" : following ? $"following {leader}" : "campaigning";
        if (since is not { } down)
        {
            _health.Report(_options.HealthComponent, HealthStatus.Healthy, message);
            return;
        }
        var detail = leading ? $"{problem}: cannot renew since {Format(lastRenewed ?? down)}"
            : following ? $"{problem} since {Format(down)}: leadership unknown"
            : $"{problem} since {Format(down)}";
        _health.Report(_options.HealthComponent, HealthStatus.Degraded, $"{message} ({detail})");
    }

    private static string Format(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}

namespace Crsc.Controllers.Health;

/// <summary>One observation of the API server: reachable or not, since when, and why not.</summary>
public sealed record ApiServerObservation(bool Reachable, DateTimeOffset Since, string? Reason);

/// <summary>
/// Whether the API server answers, as the daemon's connection monitor last saw it. The node's autonomous parts
/// (the offline scheduler, the outbox, the static-pod checkpointer) decide from it. Until the monitor reports, the
/// API server counts as unreachable since this object was made (a daemon that never reached it, or has none
/// configured, acts alone). Thread-safe; <see cref="Changed"/> fires only when reachability flips.
/// Unreachable is not offline until the monitor has tried: <see cref="Attempted"/> says whether it has reported at all,
/// so that a daemon that has just started does not act alone before its first attempt to reach the API server.
/// </summary>
public sealed class ApiServerState
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private ApiServerObservation _current;
    private TaskCompletionSource _flipped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _attempted = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ApiServerState(TimeProvider time)
    {
        _time = time;
        _current = new ApiServerObservation(false, time.GetUtcNow(), "not connected yet");
    }

    public event Action<ApiServerObservation>? Changed;

    public ApiServerObservation Current
    {
        get { lock (_gate) return _current; }
    }

    public bool IsReachable => Current.Reachable;

    /// <summary>Whether the API server has been tried (reached or not, or found not configured) since the daemon started.</summary>
    public bool Attempted => _attempted.Task.IsCompleted;

    /// <summary>Unreachable after at least one attempt: what the node's autonomous parts act on.</summary>
    public bool IsOffline => Attempted && !IsReachable;

    /// <summary>Completes at the first report of the connection monitor (at once if there was one).</summary>
    public Task WaitForFirstAttemptAsync(CancellationToken ct) => _attempted.Task.WaitAsync(ct);

    /// <summary>When it stopped answering (or when the daemon started, if it never answered); null while reachable.</summary>
    public DateTimeOffset? UnreachableSince => Current is { Reachable: false } c ? c.Since : null;

    /// <summary>The API server answered.</summary>
    public void ReportReachable() => Report(true, null);

    /// <summary>The API server did not answer (or failed); keeps the first time of an outage.</summary>
    public void ReportUnreachable(string reason) => Report(false, reason);

    /// <summary>Completes at the next flip of reachability.</summary>
    public Task WaitForChangeAsync(CancellationToken ct)
    {
        lock (_gate) return _flipped.Task.WaitAsync(ct);
    }

    private void Report(bool reachable, string? reason)
    {
        ApiServerObservation? now = null;
        TaskCompletionSource? flipped = null;
        lock (_gate)
        {
            if (_current.Reachable == reachable)
            {
                // same state: keep the start of the outage, refresh the reason
                if (!reachable && reason != _current.Reason) _current = _current with { Reason = reason };
            }
            else
            {
                _current = now = new ApiServerObservation(reachable, _time.GetUtcNow(), reason);
                flipped = _flipped;
                _flipped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
        // after the observation is in place: a waiter for the first attempt reads what it found
        _attempted.TrySetResult();
        if (now is null || flipped is null) return;
        flipped.TrySetResult();
        Changed?.Invoke(now);
    }
}

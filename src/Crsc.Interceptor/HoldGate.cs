namespace Crsc.Interceptor;

/// <summary>Bounds of the queue that holds traffic while the app is frozen or restoring.</summary>
public sealed record HoldOptions
{
    /// <summary>Requests (HTTP) or connections (TCP) that may wait at once; one more is refused.</summary>
    public int MaxQueued { get; init; } = 1000;
    /// <summary>Bytes the waiting requests may add up to (request head plus its declared Content-Length).</summary>
    public long MaxQueuedBytes { get; init; } = 64L << 20;
    /// <summary>How long one request or connection may wait before it is refused.</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>The Retry-After a refused HTTP request is given.</summary>
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>
    /// On release the queue drains one request at a time, in arrival order: the next goes when the previous one has been
    /// answered (its response head came back) or failed, or after this long, so one slow request cannot stall the rest.
    /// </summary>
    public TimeSpan DrainStepTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>
    /// A hold nobody ends (the node agent that asked for it stopped) ends by itself after this long: the traffic goes on
    /// rather than waiting for ever. A new <c>hold</c> while held starts this time again.
    /// </summary>
    public TimeSpan MaxHold { get; init; } = TimeSpan.FromMinutes(2);
    /// <summary>
    /// <c>hold</c> answers once the requests admitted before it are done (their responses passed back), so the log
    /// position it reports is the app's state; it waits at most this long for them (then it answers, saying it did not
    /// quiesce).
    /// </summary>
    public TimeSpan QuiesceTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Null when valid; otherwise what is wrong, naming the option.</summary>
    public string? Problem() =>
        MaxQueued < 0 ? $"max queued {MaxQueued} is negative"
        : MaxQueuedBytes < 0 ? $"max queued bytes {MaxQueuedBytes} is negative"
        : MaxWait <= TimeSpan.Zero ? $"max wait {MaxWait} is not positive"
        : RetryAfter < TimeSpan.Zero ? $"retry-after {RetryAfter} is negative"
        : DrainStepTimeout <= TimeSpan.Zero ? $"drain step timeout {DrainStepTimeout} is not positive"
        : MaxHold <= TimeSpan.Zero ? $"max hold {MaxHold} is not positive"
        : QuiesceTimeout < TimeSpan.Zero ? $"quiesce timeout {QuiesceTimeout} is negative"
        : null;
}

/// <summary>What became of a request or connection that asked to pass.</summary>
public enum AdmissionOutcome
{
    /// <summary>Go on: forward it (call <see cref="Admission.Forwarded"/> once it has been answered, or dispose).</summary>
    Admitted,
    /// <summary>Refused: the queue already held <see cref="HoldOptions.MaxQueued"/> waiters.</summary>
    QueueFull,
    /// <summary>Refused: its bytes would take the queue over <see cref="HoldOptions.MaxQueuedBytes"/>.</summary>
    BytesFull,
    /// <summary>Refused: it waited <see cref="HoldOptions.MaxWait"/> and the hold was still on.</summary>
    TimedOut,
}

/// <summary>
/// The answer of <see cref="HoldGate.EnterAsync"/>. Call <see cref="Forwarded"/> when the app answered (the next queued
/// one may go), and dispose it when the request is done (its response passed back): until then it is in flight, and a
/// hold's quiesce waits for it.
/// </summary>
public sealed class Admission : IDisposable
{
    private readonly HoldGate? _gate;
    private int _done, _disposed;

    internal Admission(AdmissionOutcome outcome, TimeSpan waited, HoldGate? gate)
    {
        Outcome = outcome;
        Waited = waited;
        _gate = gate;
        if (gate is null) _done = _disposed = 1;
    }

    public AdmissionOutcome Outcome { get; }
    public bool Admitted => Outcome == AdmissionOutcome.Admitted;
    /// <summary>How long it waited in the queue (zero when it passed at once).</summary>
    public TimeSpan Waited { get; }
    /// <summary>True when it waited in the queue (it was held), whatever became of it.</summary>
    public bool WasQueued { get; internal init; }

    /// <summary>It has been forwarded and answered (or failed): the next queued one may go. Idempotent.</summary>
    public void Forwarded()
    {
        if (Interlocked.Exchange(ref _done, 1) == 0) _gate!.StepDone(this);
    }

    /// <summary>Done: forwarded (if not yet) and no longer in flight. Idempotent.</summary>
    public void Dispose()
    {
        Forwarded();
        if (Interlocked.Exchange(ref _disposed, 1) == 0) _gate!.Finished();
    }
}

/// <summary>A snapshot of the gate: the hold, the queue and the counters since start (<c>status</c> prints it).</summary>
public sealed record HoldStatus
{
    public bool Held { get; init; }
    public string? Reason { get; init; }
    public double HeldForSeconds { get; init; }
    public int Queued { get; init; }
    public long QueuedBytes { get; init; }
    /// <summary>Holds started since start.</summary>
    public long Holds { get; init; }
    /// <summary>Requests (or connections) that had to wait in the queue since start.</summary>
    public long HeldRequests { get; init; }
    /// <summary>Of those, released and forwarded.</summary>
    public long ReleasedRequests { get; init; }
    public long RejectedQueueFull { get; init; }
    public long RejectedBytes { get; init; }
    public long RejectedTimeout { get; init; }
    /// <summary>Time spent held, over every finished hold.</summary>
    public double TotalHoldSeconds { get; init; }
    public double LongestHoldSeconds { get; init; }
    public double LongestWaitSeconds { get; init; }
    /// <summary>Holds that ended by themselves after <see cref="HoldOptions.MaxHold"/> (nobody released them).</summary>
    public long ExpiredHolds { get; init; }
    /// <summary>Requests admitted and not done yet.</summary>
    public int InFlight { get; init; }
    /// <summary>Whether the last hold saw every request admitted before it done (false: its quiesce timed out).</summary>
    public bool? Quiesced { get; init; }
    /// <summary>The replay log (null when replay is off).</summary>
    public ReplayLogStatus? Replay { get; init; }
    /// <summary>The last connect to the app was refused (or unreachable) and none has succeeded since.</summary>
    public bool UpstreamDown { get; init; }
    /// <summary>Requests (or connections) waiting now for the app to accept a connection (they count toward the queue bounds).</summary>
    public int UpstreamWaiting { get; init; }
    /// <summary>Requests (or connections) that had to wait for the app to accept, since start.</summary>
    public long UpstreamWaits { get; init; }
    /// <summary>Requests sent to the app again after it closed without answering (the app died, or an idempotent one).</summary>
    public long UpstreamRetries { get; init; }
    /// <summary>Answered 503 (a TCP connection closed) because the app did not accept within --max-wait or the queue was full.</summary>
    public long UpstreamGaveUp { get; init; }
    /// <summary>Answered 502: the app closed without a response and the request was not safe to send again.</summary>
    public long UpstreamBadGateway { get; init; }
}

/// <summary>
/// The hold: while it is on, whoever asks to pass (<see cref="EnterAsync"/>) waits in a bounded FIFO queue; over a bound
/// it is refused at once, and after <see cref="HoldOptions.MaxWait"/> it is refused too. On <see cref="Release"/> the queue
/// drains in arrival order, one at a time (each goes when the one before it was answered), and whatever arrives while it
/// drains queues behind it, so nothing overtakes a request that waited. Requests admitted before the hold are not touched.
/// Every wait is timed with the injected <see cref="TimeProvider"/>.
/// </summary>
public sealed class HoldGate : IDisposable
{
    private readonly HoldOptions _options;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly LinkedList<Waiter> _queue = new();
    private bool _held;
    private string? _reason;
    private long _heldSince;
    private long _queuedBytes;
    private Admission? _draining;
    private ITimer? _stepTimer;
    private ITimer? _holdTimer;
    private long _expiredHolds;
    private long _holds, _heldRequests, _released, _rejectedQueue, _rejectedBytes, _rejectedTimeout;
    private TimeSpan _totalHold, _longestHold, _longestWait;
    private int _inFlight;
    private TaskCompletionSource? _quiet;
    private bool _upstreamDown;
    private int _upstreamWaiting;
    private long _upstreamWaitingBytes, _upstreamWaits, _upstreamRetries, _upstreamGaveUp, _upstreamBadGateway;

    public HoldGate(HoldOptions options, TimeProvider time)
    {
        if (options.Problem() is { } problem) throw new ArgumentException(problem, nameof(options));
        _options = options;
        _time = time;
    }

    public HoldOptions Options => _options;

    /// <summary>Starts holding (again: only the reason changes). Whatever was admitted before goes on.</summary>
    public void Hold(string reason)
    {
        lock (_gate)
        {
            _reason = reason;
            // (again) at most MaxHold from now
            _holdTimer?.Dispose();
            _holdTimer = _time.CreateTimer(static s => ((HoldGate)s!).Expire(), this, _options.MaxHold, Timeout.InfiniteTimeSpan);
            if (_held) return;
            _held = true;
            _holds++;
            _heldSince = _time.GetTimestamp();
        }
    }

    private void Expire()
    {
        lock (_gate)
        {
            if (!_held) return;
            _expiredHolds++;
            ReleaseLocked();
        }
    }

    /// <summary>Ends the hold: the queue drains in arrival order. Releasing when not held does nothing.</summary>
    public void Release()
    {
        lock (_gate) ReleaseLocked();
    }

    private void ReleaseLocked()
    {
        if (!_held) return;
        _holdTimer?.Dispose();
        _holdTimer = null;
        _held = false;
        _reason = null;
        var held = _time.GetElapsedTime(_heldSince);
        _totalHold += held;
        if (held > _longestHold) _longestHold = held;
        PumpLocked();
    }

    public HoldStatus Status()
    {
        lock (_gate)
        {
            var heldFor = _held ? _time.GetElapsedTime(_heldSince) : TimeSpan.Zero;
            var longest = heldFor > _longestHold ? heldFor : _longestHold;
            return new HoldStatus
            {
                Held = _held,
                Reason = _reason,
                HeldForSeconds = heldFor.TotalSeconds,
                Queued = _queue.Count,
                QueuedBytes = _queuedBytes,
                Holds = _holds,
                HeldRequests = _heldRequests,
                ReleasedRequests = _released,
                RejectedQueueFull = _rejectedQueue,
                RejectedBytes = _rejectedBytes,
                RejectedTimeout = _rejectedTimeout,
                TotalHoldSeconds = _totalHold.TotalSeconds,
                LongestHoldSeconds = longest.TotalSeconds,
                LongestWaitSeconds = _longestWait.TotalSeconds,
                ExpiredHolds = _expiredHolds,
                InFlight = _inFlight,
                UpstreamDown = _upstreamDown,
                UpstreamWaiting = _upstreamWaiting,
                UpstreamWaits = _upstreamWaits,
                UpstreamRetries = _upstreamRetries,
                UpstreamGaveUp = _upstreamGaveUp,
                UpstreamBadGateway = _upstreamBadGateway,
            };
        }
    }

    /// <summary>
    /// Asks to pass with <paramref name="bytes"/> (what the request holds while it waits). Returns at once when nothing is
    /// held or queued; otherwise waits in the queue. Cancelling (the client went away) takes it out of the queue.
    /// </summary>
    public ValueTask<Admission> EnterAsync(long bytes, CancellationToken ct)
    {
        Waiter waiter;
        lock (_gate)
        {
            if (!_held && _draining is null && _queue.Count == 0)
            {
                _inFlight++;
                return ValueTask.FromResult(new Admission(AdmissionOutcome.Admitted, TimeSpan.Zero, this));
            }
            _heldRequests++;
            if (_queue.Count + _upstreamWaiting >= _options.MaxQueued)
            {
                _rejectedQueue++;
                return ValueTask.FromResult(new Admission(AdmissionOutcome.QueueFull, TimeSpan.Zero, null) { WasQueued = true });
            }
            if (_queuedBytes + _upstreamWaitingBytes + bytes > _options.MaxQueuedBytes)
            {
                _rejectedBytes++;
                return ValueTask.FromResult(new Admission(AdmissionOutcome.BytesFull, TimeSpan.Zero, null) { WasQueued = true });
            }
            waiter = new Waiter(bytes, _time.GetTimestamp());
            waiter.Node = _queue.AddLast(waiter);
            _queuedBytes += bytes;
            waiter.Timer = _time.CreateTimer(static s => { var (g, w) = ((HoldGate, Waiter))s!; g.TimedOut(w); },
                (this, waiter), _options.MaxWait, Timeout.InfiniteTimeSpan);
            // a hold may already have ended while draining: a waiter behind the drain is released by the pump
            PumpLocked();
        }
        if (ct.CanBeCanceled)
            waiter.Cancellation = ct.Register(static s => { var (g, w) = ((HoldGate, Waiter))s!; g.Cancelled(w); }, (this, waiter));
        return new ValueTask<Admission>(waiter.Done.Task);
    }

    /// <summary>
    /// A request (or connection) waits for the app to accept a connection (it refused: the app is down or restarting).
    /// The wait takes a place in the queue's bounds like a held request: null, with <paramref name="refused"/> saying which
    /// bound, when there is no room. Dispose the answer when the wait (one backoff step) is over.
    /// </summary>
    /// <param name="first">True for the request's first wait: it counts in <see cref="HoldStatus.UpstreamWaits"/>.</param>
    public IDisposable? WaitForUpstream(long bytes, bool first, out AdmissionOutcome refused)
    {
        lock (_gate)
        {
            if (first) _upstreamWaits++;
            refused = _queue.Count + _upstreamWaiting >= _options.MaxQueued ? AdmissionOutcome.QueueFull
                : _queuedBytes + _upstreamWaitingBytes + bytes > _options.MaxQueuedBytes ? AdmissionOutcome.BytesFull
                : AdmissionOutcome.Admitted;
            if (refused != AdmissionOutcome.Admitted) return null;
            _upstreamWaiting++;
            _upstreamWaitingBytes += bytes;
        }
        return new UpstreamWait(this, bytes);
    }

    private sealed class UpstreamWait(HoldGate gate, long bytes) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            lock (gate._gate)
            {
                gate._upstreamWaiting--;
                gate._upstreamWaitingBytes -= bytes;
            }
        }
    }

    /// <summary>A connect to the app succeeded: it is up. True when it was down until now.</summary>
    public bool UpstreamAccepted()
    {
        lock (_gate)
        {
            var was = _upstreamDown;
            _upstreamDown = false;
            return was;
        }
    }

    /// <summary>A connect to the app was refused: it is down. True when it was up until now.</summary>
    public bool UpstreamRefused()
    {
        lock (_gate)
        {
            var was = _upstreamDown;
            _upstreamDown = true;
            return !was;
        }
    }

    /// <summary>A request is sent to the app again (it closed without answering).</summary>
    public void NoteUpstreamRetry()
    {
        lock (_gate) _upstreamRetries++;
    }

    /// <summary>A request (connection) gave up waiting for the app: answered 503 (closed).</summary>
    public void NoteUpstreamGaveUp()
    {
        lock (_gate) _upstreamGaveUp++;
    }

    /// <summary>A request was answered 502: the app closed without a response and it was not safe to send again.</summary>
    public void NoteUpstreamBadGateway()
    {
        lock (_gate) _upstreamBadGateway++;
    }

    private void TimedOut(Waiter w)
    {
        lock (_gate)
        {
            if (!RemoveLocked(w)) return;
            _rejectedTimeout++;
            NoteWaitLocked(w);
        }
        w.Complete(new Admission(AdmissionOutcome.TimedOut, _time.GetElapsedTime(w.Since), null) { WasQueued = true });
    }

    private void Cancelled(Waiter w)
    {
        lock (_gate)
        {
            if (!RemoveLocked(w)) return;
        }
        w.Done.TrySetCanceled();
        w.Timer?.Dispose();
    }

    private bool RemoveLocked(Waiter w)
    {
        if (w.Node?.List is null) return false;
        _queue.Remove(w.Node);
        _queuedBytes -= w.Bytes;
        return true;
    }

    private void NoteWaitLocked(Waiter w)
    {
        var waited = _time.GetElapsedTime(w.Since);
        if (waited > _longestWait) _longestWait = waited;
    }

    /// <summary>Lets the first waiter go when nothing is held and no earlier one is still being forwarded.</summary>
    private void PumpLocked()
    {
        if (_held || _draining is not null || _queue.First is not { } first) return;
        var w = first.Value;
        RemoveLocked(w);
        _released++;
        NoteWaitLocked(w);
        var admission = new Admission(AdmissionOutcome.Admitted, _time.GetElapsedTime(w.Since), this) { WasQueued = true };
        _inFlight++;
        _draining = admission;
        _stepTimer = _time.CreateTimer(static s => { var (g, a) = ((HoldGate, Admission))s!; g.StepDone(a); },
            (this, admission), _options.DrainStepTimeout, Timeout.InfiniteTimeSpan);
        // completed outside of any caller's stack: its continuation runs on the pool (RunContinuationsAsynchronously)
        w.Complete(admission);
    }

    internal void StepDone(Admission admission)
    {
        lock (_gate)
        {
            if (!ReferenceEquals(_draining, admission)) return;
            _draining = null;
            _stepTimer?.Dispose();
            _stepTimer = null;
            PumpLocked();
        }
    }

    /// <summary>An admitted request is done.</summary>
    internal void Finished()
    {
        TaskCompletionSource? quiet = null;
        lock (_gate)
        {
            if (--_inFlight == 0)
            {
                quiet = _quiet;
                _quiet = null;
            }
        }
        quiet?.TrySetResult();
    }

    /// <summary>
    /// Waits (at most <see cref="HoldOptions.QuiesceTimeout"/>) until no admitted request is in flight; true when none
    /// is. Meant while held: then nothing new is admitted, and the app's state is that of every request answered so far.
    /// </summary>
    public async Task<bool> QuiesceAsync(CancellationToken ct)
    {
        Task quiet;
        lock (_gate)
        {
            if (_inFlight == 0) return true;
            quiet = (_quiet ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
        try
        {
            await quiet.WaitAsync(_options.QuiesceTimeout, _time, ct);
            return true;
        }
        catch (TimeoutException) { return false; }
    }

    public void Dispose()
    {
        List<Waiter> left;
        lock (_gate)
        {
            left = [.. _queue];
            _queue.Clear();
            _queuedBytes = 0;
            _stepTimer?.Dispose();
            _holdTimer?.Dispose();
        }
        foreach (var w in left) { w.Timer?.Dispose(); w.Done.TrySetCanceled(); }
    }

    private sealed class Waiter(long bytes, long since)
    {
        public readonly long Bytes = bytes;
        public readonly long Since = since;
        public readonly TaskCompletionSource<Admission> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public LinkedListNode<Waiter>? Node;
        public ITimer? Timer;
        public CancellationTokenRegistration Cancellation;

        public void Complete(Admission a)
        {
            Timer?.Dispose();
            Cancellation.Unregister(); // never waits for a running callback (it may wait for the gate's lock)
            if (!Done.TrySetResult(a)) a.Dispose();
        }
    }
}

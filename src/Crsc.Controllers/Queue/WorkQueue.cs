using Crsc.Controllers.Metrics;

namespace Crsc.Controllers.Queue;

/// <summary>
/// The controller work queue (client-go's rate-limited delaying queue, in C#):
/// <list type="bullet">
/// <item>de-duplicating: a key added while it waits is queued once;</item>
/// <item>single flight: a key handed to a worker is not handed to another until <see cref="Done"/>; a key added
/// while it is being processed is queued again on <see cref="Done"/>;</item>
/// <item>delayed adds (<see cref="AddAfter"/>) on the injected <see cref="TimeProvider"/>, a key waiting several
/// times keeps its earliest due time;</item>
/// <item>rate-limited adds (<see cref="AddRateLimited"/>, <see cref="Forget"/>, <see cref="NumRequeues"/>);</item>
/// <item>shutdown: adds are ignored afterwards, workers still get what was queued, and
/// <see cref="ShutDownWithDrainAsync"/> waits until the keys in flight are done.</item>
/// </list>
/// With <see cref="WorkQueueMetrics"/> it reports as client-go's queue does: depth (keys added and not yet taken),
/// adds, retries (delayed adds), the wait from add to take and the work from take to done, on the queue's clock.
/// </summary>
public sealed class WorkQueue<TKey> : IDisposable where TKey : notnull
{
    private readonly Lock _gate = new();
    private readonly Queue<TKey> _queue = new();
    private readonly HashSet<TKey> _dirty = [];
    private readonly HashSet<TKey> _processing = [];
    private readonly LinkedList<TaskCompletionSource<TKey>> _waiters = new();
    private readonly Dictionary<TKey, Delayed> _delayed = [];
    private readonly TimeProvider _time;
    private readonly IRateLimiter<TKey> _limiter;
    private readonly WorkQueueMetrics? _metrics;
    private readonly Dictionary<TKey, long> _addedAt = []; // with metrics: when each dirty key was added
    private readonly Dictionary<TKey, long> _takenAt = []; // with metrics: when each key in flight was taken
    private TaskCompletionSource? _drained;
    private bool _shuttingDown;

    public WorkQueue(TimeProvider time, IRateLimiter<TKey>? rateLimiter = null, WorkQueueMetrics? metrics = null)
    {
        _time = time;
        _limiter = rateLimiter ?? RateLimiters.DefaultControllerRateLimiter<TKey>(time);
        _metrics = metrics;
    }

    /// <summary>Keys waiting for a worker (not the delayed ones, not the ones in flight).</summary>
    public int Count { get { lock (_gate) return _queue.Count; } }

    /// <summary>Keys waiting for their delay to pass.</summary>
    public int DelayedCount { get { lock (_gate) return _delayed.Count; } }

    /// <summary>Keys handed to a worker and not yet <see cref="Done"/>.</summary>
    public int InFlight { get { lock (_gate) return _processing.Count; } }

    public bool IsShuttingDown { get { lock (_gate) return _shuttingDown; } }

    /// <summary>Queues <paramref name="key"/> unless it is queued already; ignored after shutdown.</summary>
    public void Add(TKey key)
    {
        lock (_gate)
        {
            if (_shuttingDown || !_dirty.Add(key)) return;
            if (_metrics is not null)
            {
                _metrics.Added();
                _addedAt.TryAdd(key, _time.GetTimestamp());
            }
            if (!_processing.Contains(key)) Enqueue(key); // else Done queues it again
            _metrics?.Depth(_dirty.Count);
        }
    }

    /// <summary>Queues <paramref name="key"/> once <paramref name="delay"/> has passed on the queue's clock.</summary>
    public void AddAfter(TKey key, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            lock (_gate) if (!_shuttingDown) _metrics?.Retried();
            Add(key);
            return;
        }
        Delayed? replaced;
        lock (_gate)
        {
            if (_shuttingDown) return;
            _metrics?.Retried();
            var due = _time.GetUtcNow() + delay;
            if (_delayed.TryGetValue(key, out replaced) && replaced.Due <= due) return; // an earlier add wins
            var entry = new Delayed(due);
            _delayed[key] = entry;
            // the timer may fire (ManualTimeProvider: synchronously) before CreateTimer returns; the entry decides
            entry.Timer = _time.CreateTimer(static s => ((DelayedState)s!).Fire(), new DelayedState(this, key, entry),
                delay, Timeout.InfiniteTimeSpan);
        }
        replaced?.Timer?.Dispose();
    }

    /// <summary>Queues <paramref name="key"/> after the rate limiter's delay for it (one more failure).</summary>
    public void AddRateLimited(TKey key) => AddAfter(key, _limiter.When(key));

    /// <summary>The key succeeded: its failure history is cleared.</summary>
    public void Forget(TKey key) => _limiter.Forget(key);

    public int NumRequeues(TKey key) => _limiter.NumRequeues(key);

    /// <summary>
    /// The next key to process; the caller must call <see cref="Done"/> with it. Returns <c>(false, default)</c>
    /// once the queue is shut down and empty.
    /// </summary>
    public async ValueTask<(bool Got, TKey Key)> GetAsync(CancellationToken ct)
    {
        TaskCompletionSource<TKey> waiter;
        LinkedListNode<TaskCompletionSource<TKey>> node;
        lock (_gate)
        {
            ct.ThrowIfCancellationRequested();
            if (_queue.TryDequeue(out var ready))
            {
                Take(ready);
                ObserveTaken(ready);
                _metrics?.Depth(_dirty.Count);
                return (true, ready);
            }
            if (_shuttingDown) return (false, default!);
            waiter = new TaskCompletionSource<TKey>(TaskCreationOptions.RunContinuationsAsynchronously);
            node = _waiters.AddLast(waiter);
        }
        await using var registration = ct.Register(() =>
        {
            lock (_gate)
            {
                // a waiter that already got a key keeps it (TrySetCanceled fails); otherwise it leaves the line
                if (waiter.TrySetCanceled(ct) && node.List is not null) _waiters.Remove(node);
            }
        });
        try
        {
            return (true, await waiter.Task.ConfigureAwait(false));
        }
        catch (ShutDownSignal)
        {
            return (false, default!);
        }
    }

    /// <summary>The worker finished <paramref name="key"/>; if it was added meanwhile it is queued again.</summary>
    public void Done(TKey key)
    {
        lock (_gate)
        {
            if (!_processing.Remove(key)) return;
            if (_metrics is not null && _takenAt.Remove(key, out var taken)) _metrics.Worked(_time.GetElapsedTime(taken));
            if (_dirty.Contains(key))
            {
                Enqueue(key);
                _metrics?.Depth(_dirty.Count);
            }
            if (_processing.Count == 0) _drained?.TrySetResult();
        }
    }

    /// <summary>Stops accepting keys and wakes idle workers; queued keys are still handed out.</summary>
    public void ShutDown()
    {
        List<ITimer?> timers;
        lock (_gate)
        {
            if (_shuttingDown) return;
            _shuttingDown = true;
            timers = [.. _delayed.Values.Select(d => d.Timer)];
            _delayed.Clear();
            while (_waiters.First is { } first)
            {
                _waiters.RemoveFirst();
                first.Value.TrySetException(new ShutDownSignal());
            }
        }
        foreach (var t in timers) t?.Dispose();
    }

    /// <summary>
    /// <see cref="ShutDown"/>, then waits until every key handed to a worker is <see cref="Done"/>.
    /// </summary>
    public async Task ShutDownWithDrainAsync(CancellationToken ct)
    {
        ShutDown();
        Task drained;
        lock (_gate)
        {
            if (_processing.Count == 0) return;
            _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            drained = _drained.Task;
        }
        await drained.WaitAsync(ct).ConfigureAwait(false);
    }

    public void Dispose() => ShutDown();

    // caller holds _gate; key is dirty and not in flight
    private void Enqueue(TKey key)
    {
        while (_waiters.First is { } first)
        {
            _waiters.RemoveFirst();
            Take(key);
            if (first.Value.TrySetResult(key))
            {
                ObserveTaken(key);
                return;
            }
            // that waiter was cancelled meanwhile: undo and try the next one
            _processing.Remove(key);
            _dirty.Add(key);
        }
        _queue.Enqueue(key);
    }

    // caller holds _gate
    private void Take(TKey key)
    {
        _processing.Add(key);
        _dirty.Remove(key);
    }

    // caller holds _gate; the key was handed to a worker
    private void ObserveTaken(TKey key)
    {
        if (_metrics is null) return;
        var now = _time.GetTimestamp();
        if (_addedAt.Remove(key, out var added)) _metrics.Taken(_time.GetElapsedTime(added, now));
        _takenAt[key] = now;
    }

    private void DelayedFired(TKey key, Delayed entry)
    {
        lock (_gate)
        {
            if (!_delayed.TryGetValue(key, out var current) || !ReferenceEquals(current, entry)) return;
            _delayed.Remove(key);
        }
        entry.Timer?.Dispose();
        Add(key);
    }

    private sealed class Delayed(DateTimeOffset due)
    {
        public DateTimeOffset Due { get; } = due;
        public ITimer? Timer { get; set; }
    }

    private sealed class DelayedState(WorkQueue<TKey> queue, TKey key, Delayed entry)
    {
        public void Fire() => queue.DelayedFired(key, entry);
    }

    private sealed class ShutDownSignal : Exception;
}

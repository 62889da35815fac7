using System.Collections;
using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.Queue;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Reconciling;

public sealed record ControllerOptions
{
    /// <summary>Keys reconciled at the same time (never the same key twice at once).</summary>
    public int Workers { get; init; } = 1;

    /// <summary>Retry delays; default client-go's (5 ms doubling to 1000 s per key, 10/s burst 100 overall).</summary>
    public Func<TimeProvider, IRateLimiter<ObjectKey>>? RateLimiter { get; init; }

    /// <summary>Wait for the watched informers' first list before the first reconcile (default true).</summary>
    public bool WaitForCacheSync { get; init; } = true;
}

/// <summary>
/// Runs one <see cref="IReconciler"/>: watch sources turn object changes into keys in a de-duplicating,
/// rate-limited work queue; N workers take keys (one worker per key at a time) and reconcile them, each inside
/// a logging scope (controller, namespace, name, reconcile id). Results: Done forgets the key's failures,
/// Requeue retries with backoff, RequeueAfter retries after the delay, an exception retries with backoff, a
/// <see cref="TerminalException"/> is logged and not retried.
/// <para>
/// <see cref="RunAsync"/> may be called again after it returned (a new leadership term): each run has its own
/// queue, and the watch sources replay the informers' caches into it.
/// </para>
/// <para>
/// With <see cref="UseMetrics"/> it reports controller-runtime's series for itself and its queue (see
/// <see cref="ControllerMetrics"/>), labelled with its name.
/// </para>
/// </summary>
public sealed class Controller
{
    private readonly List<Func<Action<ObjectKey>, IDisposable>> _sources = [];
    private readonly List<IInformer> _informers = [];
    private readonly List<IInformer> _notAwaited = [];
    private readonly IReconciler _reconciler;
    private readonly ControllerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private WorkQueue<ObjectKey>? _queue;
    private ControllerMetrics? _metrics;
    private WorkQueueMetrics? _queueMetrics;
    private int _running;

    public Controller(string name, IReconciler reconciler, TimeProvider time, ILogger logger,
        ControllerOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        _options = options ?? new ControllerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.Workers, 1);
        Name = name;
        _reconciler = reconciler;
        _time = time;
        _logger = logger;
    }

    public string Name { get; }

    /// <summary>The informers this controller watches (what it waits for before its first reconcile).</summary>
    public IReadOnlyList<IInformer> Informers => _informers;

    /// <summary>The queue of the current run; null while not running.</summary>
    public WorkQueue<ObjectKey>? Queue => Volatile.Read(ref _queue);

    /// <summary>Reconcile the objects of <paramref name="informer"/> themselves (the controller's primary type).</summary>
    public Controller Watch<T>(Informer<T> informer) where T : class, IKubernetesObject
        => Watch(informer, EnqueueHandlers.ForObject<T>);

    /// <summary>Reconcile the owners (of <paramref name="ownerKind"/>) of the objects of <paramref name="informer"/>.</summary>
    public Controller WatchOwned<T>(Informer<T> informer, string ownerKind, bool onlyController = false)
        where T : class, IKubernetesObject
        => Watch(informer, enqueue => EnqueueHandlers.ForOwner<T>(ownerKind, enqueue, onlyController: onlyController));

    /// <summary>
    /// As <see cref="Watch{T}(Informer{T}, Func{T, IEnumerable{ObjectKey}})"/>, but the controller starts without waiting
    /// for this informer's first list: for a kind that may not be served yet (a CRD of a newer crsc not applied), whose
    /// objects only refine decisions the controller can make without them.
    /// </summary>
    public Controller WatchWithoutWaiting<T>(Informer<T> informer, Func<T, IEnumerable<ObjectKey>> map)
        where T : class, IKubernetesObject
    {
        Watch(informer, map);
        if (!_notAwaited.Contains(informer)) _notAwaited.Add(informer);
        return this;
    }

    /// <summary>Reconcile the keys <paramref name="map"/> derives from the objects of <paramref name="informer"/>.</summary>
    public Controller Watch<T>(Informer<T> informer, Func<T, IEnumerable<ObjectKey>> map)
        where T : class, IKubernetesObject
        => Watch(informer, enqueue => EnqueueHandlers.ForMapped(map, enqueue));

    /// <summary>Any handler built from the enqueue function.</summary>
    public Controller Watch<T>(Informer<T> informer, Func<Action<ObjectKey>, IResourceEventHandler<T>> handler)
        where T : class, IKubernetesObject
    {
        if (Volatile.Read(ref _running) != 0) throw new InvalidOperationException($"controller {Name} is running");
        _sources.Add(enqueue => informer.AddEventHandler(handler(enqueue)));
        if (!_informers.Contains(informer)) _informers.Add(informer);
        return this;
    }

    /// <summary>Reports this controller's reconciles and queue into <paramref name="metrics"/> (before it runs).</summary>
    public Controller UseMetrics(ControllerMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        if (Volatile.Read(ref _running) != 0) throw new InvalidOperationException($"controller {Name} is running");
        _metrics = metrics;
        _queueMetrics = metrics.ForQueue(Name);
        return this;
    }

    /// <summary>Queues <paramref name="key"/> for reconciling; ignored while the controller is not running.</summary>
    public void Enqueue(ObjectKey key) => Queue?.Add(key);

    /// <summary>Queues <paramref name="key"/> after <paramref name="delay"/>; ignored while not running.</summary>
    public void EnqueueAfter(ObjectKey key, TimeSpan delay) => Queue?.AddAfter(key, delay);

    /// <summary>
    /// Reconciles until <paramref name="ct"/> fires, then stops taking keys, lets the reconciles in flight see the
    /// cancellation and waits for them.
    /// </summary>
    public async Task RunAsync(CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _running, 1) != 0)
            throw new InvalidOperationException($"controller {Name} is running already");
        var queue = new WorkQueue<ObjectKey>(_time,
            _options.RateLimiter?.Invoke(_time) ?? RateLimiters.DefaultControllerRateLimiter<ObjectKey>(_time), _queueMetrics);
        _metrics?.MaxConcurrentReconciles.Set(_options.Workers, Name);
        Volatile.Write(ref _queue, queue);
        var registrations = new List<IDisposable>();
        try
        {
            foreach (var source in _sources) registrations.Add(source(queue.Add));
            if (_options.WaitForCacheSync && _informers.Count > 0)
            {
                try
                {
                    await Task.WhenAll(_informers.Except(_notAwaited).Select(i => i.WaitForSyncAsync(ct))).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
            }
            Log.Started(_logger, Name, _options.Workers);
            var workers = new Task[_options.Workers];
            for (var i = 0; i < workers.Length; i++) workers[i] = Task.Run(() => WorkerAsync(queue, ct), CancellationToken.None);
            await Task.WhenAll(workers).ConfigureAwait(false);
            Log.Stopped(_logger, Name);
        }
        finally
        {
            foreach (var r in registrations) r.Dispose();
            queue.ShutDown();
            // the keys left in this run's queue are dropped with it; the next run starts empty
            _queueMetrics?.Depth(0);
            _metrics?.MaxConcurrentReconciles.Set(0, Name);
            Volatile.Write(ref _queue, null);
            Volatile.Write(ref _running, 0);
        }
    }

    private async Task WorkerAsync(WorkQueue<ObjectKey> queue, CancellationToken ct)
    {
        while (true)
        {
            (bool Got, ObjectKey Key) next;
            try
            {
                next = await queue.GetAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            if (!next.Got) return;
            try
            {
                await ReconcileAsync(queue, next.Key, ct).ConfigureAwait(false);
            }
            finally
            {
                queue.Done(next.Key);
            }
        }
    }

    private async Task ReconcileAsync(WorkQueue<ObjectKey> queue, ObjectKey key, CancellationToken ct)
    {
        var id = Guid.NewGuid().ToString("N")[..16];
        using var scope = _logger.BeginScope(new ReconcileScope(Name, key, id));
        var started = _time.GetTimestamp();
        _metrics?.ActiveWorkers.Add(1, Name);
        try
        {
            var result = await _reconciler.ReconcileAsync(key, ct).ConfigureAwait(false);
            switch (result.Outcome)
            {
                case ReconcileOutcome.Requeue:
                    queue.AddRateLimited(key);
                    Count(started, ControllerMetrics.ResultRequeue);
                    break;
                case ReconcileOutcome.RequeueAfter:
                    queue.Forget(key);
                    queue.AddAfter(key, result.Delay);
                    Count(started, ControllerMetrics.ResultRequeueAfter);
                    break;
                default:
                    queue.Forget(key);
                    Count(started, ControllerMetrics.ResultSuccess);
                    break;
            }
            Log.Reconciled(_logger, Name, key.ToString(), result.ToString(), _time.GetElapsedTime(started));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // stopping: the next run (or leader) reconciles it again from scratch; not an outcome to count
        }
        catch (TerminalException e)
        {
            queue.Forget(key);
            Count(started, ControllerMetrics.ResultError, terminal: true);
            Log.Terminal(_logger, e, Name, key.ToString());
        }
        catch (Exception e)
        {
            var retries = queue.NumRequeues(key);
            queue.AddRateLimited(key);
            Count(started, ControllerMetrics.ResultError);
            Log.Failed(_logger, e, Name, key.ToString(), retries + 1);
        }
        finally
        {
            _metrics?.ActiveWorkers.Add(-1, Name);
        }
    }

    private void Count(long started, string result, bool terminal = false)
    {
        if (_metrics is null) return;
        _metrics.ReconcileTime.Observe(_time.GetElapsedTime(started).TotalSeconds, Name);
        _metrics.ReconcileTotal.Inc(1, Name, result);
        if (result != ControllerMetrics.ResultError) return;
        _metrics.ReconcileErrors.Inc(1, Name);
        if (terminal) _metrics.TerminalReconcileErrors.Inc(1, Name);
    }
}

/// <summary>
/// The logging scope of one reconcile. Structured (a list of name/value pairs) so that sinks turn it into fields.
/// </summary>
public sealed class ReconcileScope(string controller, ObjectKey key, string reconcileId)
    : IReadOnlyList<KeyValuePair<string, object?>>
{
    public string Controller { get; } = controller;
    public ObjectKey Key { get; } = key;
    public string ReconcileId { get; } = reconcileId;

    public int Count => 4;

    public KeyValuePair<string, object?> this[int index] => index switch
    {
        0 => new("Controller", Controller),
        1 => new("Namespace", Key.Namespace),
        2 => new("Name", Key.Name),
        3 => new("ReconcileId", ReconcileId),
        _ => throw new ArgumentOutOfRangeException(nameof(index)),
    };

    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        for (var i = 0; i < Count; i++) yield return this[i];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => $"{Controller} {Key} reconcile {ReconcileId}";
}

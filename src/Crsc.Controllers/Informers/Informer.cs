using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Health;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Queue;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Informers;

/// <summary>What the daemon needs to know about any informer, whatever its type.</summary>
public interface IInformer
{
    string Name { get; }
    bool HasSynced { get; }
    Task WaitForSyncAsync(CancellationToken ct);
    Task RunAsync(CancellationToken ct);
}

public sealed record InformerOptions
{
    /// <summary>Only this namespace; null for all namespaces (or a cluster-scoped type).</summary>
    public string? Namespace { get; init; }
    public string? LabelSelector { get; init; }
    /// <summary>For example <c>spec.nodeName=node-1</c> for the pods of one node.</summary>
    public string? FieldSelector { get; init; }
    /// <summary>Objects per list page (<c>limit</c>); the rest is fetched with <c>continue</c>.</summary>
    public int PageSize { get; init; } = 500;
    /// <summary>When set, every cached object is re-announced as an update this often.</summary>
    public TimeSpan? ResyncPeriod { get; init; }
    /// <summary>
    /// First wait before reconnecting (client-go's reflector: 800 ms, doubling up to <see cref="MaxBackoff"/> = 30 s
    /// after errors the API server answers, up to <see cref="UnreachableMaxBackoff"/> while it cannot be reached).
    /// </summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(800);
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>
    /// The cap while the API server cannot be reached at all (its jitter at most 25 %): the informer lists again
    /// within seconds of the server's return, however long it was away. See <see cref="ReconnectBackoff"/>.
    /// </summary>
    public TimeSpan UnreachableMaxBackoff { get; init; } = ReconnectBackoff.DefaultUnreachableMax;
    /// <summary>Each wait is stretched by a random share of up to this much of itself.</summary>
    public double JitterFactor { get; init; } = 1.0;
    /// <summary>Server-side watch timeout; null picks a random 5–10 minutes per watch, like client-go.</summary>
    public TimeSpan? WatchTimeout { get; init; }
    /// <summary>The name it reports under in the health registry; default <c>informer/&lt;plural&gt;</c>.</summary>
    public string? Name { get; init; }
}

/// <summary>
/// client-go's shared informer: lists every page, then watches from the list's resourceVersion, keeping a
/// thread-safe cache keyed by <see cref="ObjectKey"/>, with named indexes and ordered add/update/delete
/// notifications. A 410 relists and announces only the difference (deletions for objects that are gone, updates
/// for changed ones); a stream the server closes is resumed from the last resourceVersion (bookmarks move it);
/// an unreachable API server is retried forever (every few seconds at most, see <see cref="ReconnectBackoff"/>) and
/// reported as Degraded meanwhile.
/// <para>
/// Locking: handlers run outside the cache's lock, so a handler may read this informer or another one (from its
/// own thread or any other) without deadlocking, and readers never wait for a handler. Two locks, always taken in
/// this order: <c>_dispatch</c> serializes everything that produces notifications (a watch event, a relist, a
/// resync round, <see cref="AddEventHandler"/>) and is held while they are delivered, so handlers see changes one
/// at a time and in the cache's order; <c>_gate</c> guards the cache and indexes and is held only to change or read
/// them, never while a handler runs. Each change is made under <c>_gate</c>, the notifications it produces are
/// collected, <c>_gate</c> is released and then they are delivered. A handler may add or remove handlers on its
/// own thread (the lock is reentrant), but must not wait for another thread that adds a handler or disposes a
/// registration: those take <c>_dispatch</c>, so they wait for the handler in turn.
/// </para>
/// </summary>
public sealed class Informer<T> : IInformer where T : class, IKubernetesObject
{
    // taken before _gate by every path that notifies handlers, and held while they run (see the class doc)
    private readonly Lock _dispatch = new();
    // the cache, indexes, handler list and resourceVersion; never held while a handler runs
    private readonly Lock _gate = new();
    private readonly Dictionary<ObjectKey, T> _items = [];
    private readonly Dictionary<string, Func<T, IEnumerable<string>>> _indexers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, HashSet<ObjectKey>>> _indices = new(StringComparer.Ordinal);
    private Subscription[] _handlers = [];
    private TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _runs;
    private readonly IKubeResourceClient<T> _client;
    private readonly InformerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HealthRegistry? _health;
    private readonly Random _random;
    private string? _lastResourceVersion;
    private int _running;

    public Informer(IKubeResourceClient<T> client, InformerOptions options, TimeProvider time, ILogger logger,
        HealthRegistry? health = null, Random? random = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.PageSize, 1);
        _client = client;
        _options = options;
        _time = time;
        _logger = logger;
        _health = health;
        _random = random ?? Random.Shared;
        Name = options.Name ?? $"informer/{client.Type.Plural}";
    }

    public string Name { get; }

    /// <summary>True once the first complete list is in the cache (it stays true while reconnecting).</summary>
    public bool HasSynced => Volatile.Read(ref _synced).Task.IsCompleted;

    public Task WaitForSyncAsync(CancellationToken ct) => Volatile.Read(ref _synced).Task.WaitAsync(ct);

    /// <summary>The resourceVersion the cache is at: the last list, event or bookmark seen.</summary>
    public string? LastSyncResourceVersion { get { lock (_gate) return _lastResourceVersion; } }

    public int Count { get { lock (_gate) return _items.Count; } }

    public T? Get(ObjectKey key)
    {
        lock (_gate) return _items.GetValueOrDefault(key);
    }

    public IReadOnlyList<T> List()
    {
        lock (_gate) return [.. _items.Values];
    }

    public IReadOnlyList<ObjectKey> Keys()
    {
        lock (_gate) return [.. _items.Keys];
    }

    /// <summary>
    /// Registers an index under <paramref name="name"/> (see <see cref="Indexers"/>); may be called while running.
    /// </summary>
    public void AddIndexer(string name, Func<T, IEnumerable<string>> index)
    {
        if (!TryAddIndexer(name, index))
            throw new InvalidOperationException($"{Name}: an index named '{name}' exists already");
    }

    /// <summary>
    /// Registers an index unless one named <paramref name="name"/> exists: components that share an informer (or a
    /// reconciler built again over it) register the same index. False when it existed; the existing one stays.
    /// </summary>
    public bool TryAddIndexer(string name, Func<T, IEnumerable<string>> index)
    {
        lock (_gate)
        {
            if (!_indexers.TryAdd(name, index)) return false;
            var values = new Dictionary<string, HashSet<ObjectKey>>(StringComparer.Ordinal);
            _indices[name] = values;
            foreach (var (key, obj) in _items) AddToIndex(values, index, key, obj);
            return true;
        }
    }

    /// <summary>The cached objects whose index <paramref name="indexName"/> yields <paramref name="value"/>.</summary>
    public IReadOnlyList<T> ByIndex(string indexName, string value)
    {
        lock (_gate)
        {
            if (!_indices.TryGetValue(indexName, out var values))
                throw new InvalidOperationException($"{Name}: no index named '{indexName}'");
            return values.TryGetValue(value, out var keys) ? [.. keys.Select(k => _items[k])] : [];
        }
    }

    /// <summary>
    /// Adds a handler. It is first told about every object already cached (as adds), then about every change
    /// after, with nothing lost or repeated in between. Dispose the result to remove it.
    /// </summary>
    public IDisposable AddEventHandler(IResourceEventHandler<T> handler)
    {
        var subscription = new Subscription(handler);
        lock (_dispatch)
        {
            // under _dispatch no change can come between the snapshot and the handler's first notification
            List<Change> adds;
            lock (_gate)
            {
                _handlers = [.. _handlers, subscription];
                adds = [.. _items.Values.Select(Change.Added)];
            }
            Deliver([subscription], adds);
        }
        return new Registration(this, subscription);
    }

    /// <summary>Lists and watches until <paramref name="ct"/> fires. Returns then (never throws for the API's sake).</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _running, 1) != 0)
            throw new InvalidOperationException($"{Name} is running already");
        // run again (a leader-only informer in a new term): not synced until the new list, so nobody reconciles
        // from what the cache held when the last run stopped
        if (_runs++ > 0) Volatile.Write(ref _synced, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        _health?.Report(Name, HealthStatus.Degraded, "not synced yet");
        using var resyncStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var resync = _options.ResyncPeriod is { } period && period > TimeSpan.Zero
            ? ResyncLoopAsync(period, resyncStop.Token)
            : Task.CompletedTask;
        try
        {
            await ListAndWatchLoopAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            await resyncStop.CancelAsync().ConfigureAwait(false);
            await resync.ConfigureAwait(false);
            _health?.Remove(Name);
            Volatile.Write(ref _running, 0);
        }
    }

    private async Task ListAndWatchLoopAsync(CancellationToken ct)
    {
        var backoff = new ReconnectBackoff(_options.InitialBackoff, _options.MaxBackoff, _options.UnreachableMaxBackoff,
            _options.JitterFactor, _random);
        var needList = true;
        var expiredInARow = 0;
        while (!ct.IsCancellationRequested)
        {
            TimeSpan wait;
            try
            {
                if (needList)
                {
                    await ListAsync(ct).ConfigureAwait(false);
                    needList = false;
                    _health?.Report(Name, HealthStatus.Healthy, $"synced, {Count} objects");
                }
                var watchedSince = _time.GetTimestamp();
                var events = await WatchAsync(ct).ConfigureAwait(false);
                // the server closed the stream: resume from the last resourceVersion after a short wait; a watch
                // that delivered something or lasted a while is healthy, so the wait starts small again
                expiredInARow = 0;
                if (events > 0 || _time.GetElapsedTime(watchedSince) >= TimeSpan.FromSeconds(1)) backoff.Reset();
                wait = backoff.Next(null);
                Log.WatchClosed(_logger, Name, events, LastSyncResourceVersion, wait);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (ResourceExpiredException e)
            {
                // 410: our resourceVersion was compacted away; relist (at once the first time)
                needList = true;
                expiredInARow++;
                wait = expiredInARow > 1 ? backoff.Next(e) : TimeSpan.Zero;
                Log.Expired(_logger, Name, LastSyncResourceVersion, e.Message);
            }
            catch (KubeUnavailableException e)
            {
                // after an outage the watch history may be gone anyway: relist and announce the difference
                needList = true;
                wait = backoff.Next(e);
                _health?.Report(Name, HealthStatus.Degraded, $"API server unreachable: {e.Message}");
                Log.Unavailable(_logger, Name, e.Message, wait);
            }
            catch (Exception e)
            {
                needList = needList || e is not KubeApiException;
                wait = backoff.Next(e);
                _health?.Report(Name, HealthStatus.Degraded, $"list/watch failed: {e.Message}");
                Log.Failed(_logger, e, Name, wait);
            }
            if (wait > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(wait, _time, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
            }
        }
    }

    private async Task ListAsync(CancellationToken ct)
    {
        var items = new List<T>();
        string? cont = null;
        string? resourceVersion = null;
        var pages = 0;
        do
        {
            var page = await _client.ListAsync(_options.Namespace,
                new ListOptions(_options.LabelSelector, _options.FieldSelector, _options.PageSize, cont), ct)
                .ConfigureAwait(false);
            pages++;
            items.AddRange(page.Items);
            if (!string.IsNullOrEmpty(page.Metadata.ResourceVersion)) resourceVersion = page.Metadata.ResourceVersion;
            cont = string.IsNullOrEmpty(page.Metadata.Continue) ? null : page.Metadata.Continue;
        } while (cont is not null);
        var (added, updated, deleted) = Replace(items, resourceVersion);
        Log.Listed(_logger, Name, items.Count, pages, resourceVersion, added, updated, deleted);
        Volatile.Read(ref _synced).TrySetResult();
    }

    private async Task<int> WatchAsync(CancellationToken ct)
    {
        var timeout = _options.WatchTimeout ?? TimeSpan.FromSeconds(300 + _random.Next(300));
        var options = new WatchOptions(LastSyncResourceVersion, _options.LabelSelector, _options.FieldSelector,
            AllowBookmarks: true, TimeoutSeconds: (int)Math.Max(1, timeout.TotalSeconds));
        var events = 0;
        await foreach (var ev in _client.WatchAsync(_options.Namespace, options, ct).ConfigureAwait(false))
        {
            events++;
            Apply(ev);
        }
        return events;
    }

    private void Apply(WatchEvent<T> ev)
    {
        var rv = ev.Object.Metadata.ResourceVersion;
        lock (_dispatch)
        {
            var changes = new List<Change>(1);
            Subscription[] handlers;
            lock (_gate)
            {
                switch (ev.Type)
                {
                    case WatchEventType.Added:
                    case WatchEventType.Modified:
                        Upsert(ev.Object, changes);
                        break;
                    case WatchEventType.Deleted:
                        Remove(EnqueueHandlers.KeyOf(ev.Object), ev.Object, changes);
                        break;
                    case WatchEventType.Bookmark:
                        break;
                    default:
                        // an Error event the client did not turn into an exception: start over from a list
                        throw new KubeApiException(500, "WatchError", $"{Name}: the watch reported an error");
                }
                if (!string.IsNullOrEmpty(rv)) _lastResourceVersion = rv;
                handlers = _handlers;
            }
            Deliver(handlers, changes);
        }
    }

    // caller holds _gate; the notification goes into changes
    private void Upsert(T obj, List<Change> changes)
    {
        var key = EnqueueHandlers.KeyOf(obj);
        if (_items.TryGetValue(key, out var old))
        {
            Unindex(key, old);
            _items[key] = obj;
            Index(key, obj);
            changes.Add(Change.Updated(old, obj));
        }
        else
        {
            _items[key] = obj;
            Index(key, obj);
            changes.Add(Change.Added(obj));
        }
    }

    // caller holds _gate; the notification goes into changes
    private void Remove(ObjectKey key, T? lastSeen, List<Change> changes)
    {
        if (!_items.Remove(key, out var old)) return; // never saw it: nothing to announce
        Unindex(key, old);
        changes.Add(Change.Deleted(lastSeen ?? old));
    }

    private (int Added, int Updated, int Deleted) Replace(List<T> items, string? resourceVersion)
    {
        int added = 0, updated = 0, deleted = 0;
        lock (_dispatch)
        {
            var changes = new List<Change>();
            Subscription[] handlers;
            lock (_gate)
            {
                var fresh = new Dictionary<ObjectKey, T>(items.Count);
                foreach (var obj in items) fresh[EnqueueHandlers.KeyOf(obj)] = obj;
                foreach (var key in _items.Keys.Where(k => !fresh.ContainsKey(k)).ToList())
                {
                    Remove(key, null, changes);
                    deleted++;
                }
                foreach (var (key, obj) in fresh)
                {
                    if (_items.TryGetValue(key, out var old))
                    {
                        // unchanged objects are not announced again: a relist repeats nothing
                        if (old.Metadata.ResourceVersion == obj.Metadata.ResourceVersion
                            && old.Metadata.Uid == obj.Metadata.Uid) continue;
                        if (old.Metadata.Uid != obj.Metadata.Uid)
                        {
                            // deleted and created again while we were not watching
                            Remove(key, null, changes);
                            Upsert(obj, changes);
                            deleted++;
                            added++;
                            continue;
                        }
                        updated++;
                    }
                    else
                    {
                        added++;
                    }
                    Upsert(obj, changes);
                }
                if (!string.IsNullOrEmpty(resourceVersion)) _lastResourceVersion = resourceVersion;
                handlers = _handlers;
            }
            Deliver(handlers, changes);
        }
        return (added, updated, deleted);
    }

    private async Task ResyncLoopAsync(TimeSpan period, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(period, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                if (!HasSynced) continue;
                lock (_dispatch)
                {
                    List<Change> changes;
                    Subscription[] handlers;
                    lock (_gate)
                    {
                        changes = [.. _items.Values.Select(obj => Change.Updated(obj, obj))];
                        handlers = _handlers;
                    }
                    Deliver(handlers, changes);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    // caller holds _gate
    private void Index(ObjectKey key, T obj)
    {
        foreach (var (name, index) in _indexers) AddToIndex(_indices[name], index, key, obj);
    }

    // caller holds _gate
    private void Unindex(ObjectKey key, T obj)
    {
        foreach (var (name, index) in _indexers)
        {
            var values = _indices[name];
            foreach (var value in SafeIndex(index, obj))
            {
                if (values.TryGetValue(value, out var keys) && keys.Remove(key) && keys.Count == 0) values.Remove(value);
            }
        }
    }

    private void AddToIndex(Dictionary<string, HashSet<ObjectKey>> values, Func<T, IEnumerable<string>> index,
        ObjectKey key, T obj)
    {
        foreach (var value in SafeIndex(index, obj))
        {
            if (!values.TryGetValue(value, out var keys)) values[value] = keys = [];
            keys.Add(key);
        }
    }

    private IEnumerable<string> SafeIndex(Func<T, IEnumerable<string>> index, T obj)
    {
        try
        {
            return index(obj).ToList();
        }
        catch (Exception e)
        {
            Log.IndexFailed(_logger, e, Name, EnqueueHandlers.KeyOf(obj).ToString());
            return [];
        }
    }

    // caller holds _dispatch and not _gate: each change in order, to each handler in the order they were added
    private void Deliver(Subscription[] handlers, List<Change> changes)
    {
        foreach (var change in changes)
            foreach (var s in handlers)
            {
                // removed meanwhile (by a handler, on this thread): told nothing more
                if (!s.Removed) Notify(s.Handler, change);
            }
    }

    private void Notify(IResourceEventHandler<T> handler, Change change)
    {
        try
        {
            switch (change.Kind)
            {
                case ChangeKind.Add: handler.OnAdd(change.New); break;
                case ChangeKind.Update: handler.OnUpdate(change.Old!, change.New); break;
                default: handler.OnDelete(change.New); break;
            }
        }
        catch (Exception e)
        {
            Log.HandlerFailed(_logger, e, Name);
        }
    }

    private enum ChangeKind { Add, Update, Delete }

    /// <summary>One notification, made under <c>_gate</c> and delivered after it is released.</summary>
    private readonly record struct Change(ChangeKind Kind, T? Old, T New)
    {
        public static Change Added(T obj) => new(ChangeKind.Add, null, obj);
        public static Change Updated(T old, T obj) => new(ChangeKind.Update, old, obj);
        public static Change Deleted(T obj) => new(ChangeKind.Delete, null, obj);
    }

    private sealed class Subscription(IResourceEventHandler<T> handler)
    {
        public IResourceEventHandler<T> Handler { get; } = handler;
        public volatile bool Removed;
    }

    /// <summary>
    /// Removes the handler. Waits for a delivery in progress on another thread, so once this returns the handler is
    /// not called again; from inside a handler it takes effect at once (the rest of the round skips it).
    /// </summary>
    private sealed class Registration(Informer<T> owner, Subscription subscription) : IDisposable
    {
        public void Dispose()
        {
            lock (owner._dispatch)
            {
                lock (owner._gate)
                {
                    subscription.Removed = true;
                    owner._handlers = [.. owner._handlers.Where(s => !ReferenceEquals(s, subscription))];
                }
            }
        }
    }
}

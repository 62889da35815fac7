using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;

namespace Crsc.Testing.Kube;

/// <summary>
/// An in-memory API server for the controller machinery's tests: one global resourceVersion across all resource
/// types, like etcd. Hands out <see cref="FakeResourceClient{T}"/>s.
/// </summary>
public sealed class FakeKube(TimeProvider? time = null) : IKubeApi
{
    private readonly Dictionary<object, object> _clients = [];
    internal readonly Lock Gate = new();
    internal long ResourceVersion;
    internal TimeProvider Time { get; } = time ?? TimeProvider.System;

    public IKubeResourceClient<T> Resource<T>(ResourceType<T> type) where T : class, IKubernetesObject => For(type);

    public FakeResourceClient<T> For<T>(ResourceType<T> type) where T : class, IKubernetesObject
    {
        lock (Gate)
        {
            if (!_clients.TryGetValue(type, out var client)) _clients[type] = client = new FakeResourceClient<T>(this, type);
            return (FakeResourceClient<T>)client;
        }
    }

    public long CurrentResourceVersion { get { lock (Gate) return ResourceVersion; } }

    /// <summary>
    /// When true, a namespaced object is created only in a Namespace stored in this fake, as kube-apiserver's
    /// NamespaceLifecycle admission does: 404 <c>namespaces "x" not found</c> when it is missing, 403 "… because it is
    /// being terminated" when it has a deletionTimestamp. Off by default (most tests never create namespaces).
    /// </summary>
    public bool NamespacesMustExist { get; set; }

    // caller holds the gate (Lock is reentrant)
    internal void CheckNamespace(string ns, string plural, string name)
    {
        if (!NamespacesMustExist) return;
        var stored = For(Crsc.Api.Kubernetes.Resources.Namespaces).Stored(null, ns);
        if (stored is null) throw new NotFoundException("NotFound", $"namespaces \"{ns}\" not found");
        if (stored.Metadata.DeletionTimestamp is not null)
            throw new ForbiddenException("Forbidden",
                $"{plural} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated");
    }
}

/// <summary>
/// One resource type of <see cref="FakeKube"/>, behaving like kube-apiserver where the machinery relies on it:
/// resourceVersion per write, 409 on a stale update, AlreadyExists, NotFound, paginated lists at a snapshot,
/// watch from a resourceVersion replaying history, 410 for a resourceVersion older than the last
/// <see cref="Compact"/>, label/field selectors (a watch sees an object leaving its selection as DELETED), the status
/// subresource, metadata.generation (1 on create, one more for each write that changes the spec and for the
/// deletion mark; a client cannot set it), finalizers (DELETE marks, removing the last finalizer deletes), and
/// fault injection (unavailable, closing or breaking watches). Kept in line with <see cref="FakeApiServer"/> by the
/// contract suite in Crsc.Kube.Tests (ApiContractTests). State other writers would make (status, deletionTimestamp) is set up with
/// <see cref="SeedAsync"/>. Objects are copied in and out (JSON round trip), so callers never share the store's
/// instances.
/// </summary>
public sealed class FakeResourceClient<T> : IKubeResourceClient<T> where T : class, IKubernetesObject
{
    private readonly FakeKube _kube;
    private readonly SortedDictionary<string, T> _objects = new(StringComparer.Ordinal);
    private readonly List<(long Rv, WatchEventType Type, T? Old, T Obj)> _history = [];
    private readonly List<Watcher> _watchers = [];
    private readonly Dictionary<string, (long Rv, List<T> Items)> _continues = [];
    private long _compactedThrough;
    private int _continueSeq;

    internal FakeResourceClient(FakeKube kube, ResourceType<T> type)
    {
        _kube = kube;
        Type = type;
        StatusSubresource = type.Kind is not ("ConfigMap" or "Secret" or "Lease" or "Event");
    }

    public ResourceType<T> Type { get; }

    /// <summary>
    /// Whether the type has a status subresource, as in kube-apiserver: then create and update ignore the status
    /// in the body, and UpdateStatusAsync (or a status patch) changes only the status. On by default except for the
    /// built-in kinds without one (ConfigMap, Secret, Lease, Event); crsc's CRDs all declare it.
    /// </summary>
    public bool StatusSubresource { get; set; }

    /// <summary>Every call throws <see cref="KubeUnavailableException"/> while true (and open watches break).</summary>
    public bool Unavailable
    {
        get { lock (_kube.Gate) return _unavailable; }
        set
        {
            List<Watcher> broken = [];
            lock (_kube.Gate)
            {
                _unavailable = value;
                if (value) { broken.AddRange(_watchers); _watchers.Clear(); }
            }
            foreach (var w in broken) w.Channel.Writer.TryComplete(new KubeUnavailableException("connection refused (fake)"));
        }
    }
    private bool _unavailable;

    /// <summary>Runs before every call with the verb (get, list, watch, create, update, updateStatus, patch, delete); may throw.</summary>
    public Action<string, T?>? BeforeCall { get; set; }

    /// <summary>Reads a field for field selectors other than metadata.name/metadata.namespace.</summary>
    public Func<T, string, string?>? FieldReader { get; set; }

    /// <summary>How many calls of each verb were made.</summary>
    public IReadOnlyDictionary<string, int> Calls { get { lock (_kube.Gate) return new Dictionary<string, int>(_calls); } }
    private readonly Dictionary<string, int> _calls = [];

    public int CallCount(string verb) { lock (_kube.Gate) return _calls.GetValueOrDefault(verb); }

    /// <summary>Watches open now.</summary>
    public int OpenWatches { get { lock (_kube.Gate) return _watchers.Count; } }

    /// <summary>The resourceVersions watches were opened with, in order.</summary>
    public IReadOnlyList<string?> WatchResourceVersions { get { lock (_kube.Gate) return [.. _watchRvs]; } }
    private readonly List<string?> _watchRvs = [];

    /// <summary>Forgets the history: a watch or continue from an older resourceVersion now gets 410.</summary>
    public void Compact()
    {
        lock (_kube.Gate)
        {
            _compactedThrough = _kube.ResourceVersion;
            _history.Clear();
        }
    }

    /// <summary>The server ends every open watch (the clients' sequences end normally).</summary>
    public void CloseWatches()
    {
        List<Watcher> closing;
        lock (_kube.Gate) { closing = [.. _watchers]; _watchers.Clear(); }
        foreach (var w in closing) w.Channel.Writer.TryComplete();
    }

    /// <summary>Sends a bookmark at the current resourceVersion to every open watch that allows bookmarks.</summary>
    public void SendBookmark()
    {
        lock (_kube.Gate)
        {
            foreach (var w in _watchers.Where(w => w.Options.AllowBookmarks))
            {
                var mark = Copy(default!, fresh: true);
                mark.Metadata.ResourceVersion = _kube.ResourceVersion.ToString();
                w.Channel.Writer.TryWrite(new WatchEvent<T>(WatchEventType.Bookmark, mark));
            }
        }
    }

    /// <summary>Advances the global resourceVersion without touching this type (writes to other types).</summary>
    public void BumpResourceVersion(int by = 1) { lock (_kube.Gate) _kube.ResourceVersion += by; }

    /// <summary>The stored object (a copy), or null.</summary>
    public T? Stored(string? ns, string name)
    {
        lock (_kube.Gate) return _objects.TryGetValue(Key(ns, name), out var o) ? Copy(o) : null;
    }

    public IReadOnlyList<T> AllStored() { lock (_kube.Gate) return [.. _objects.Values.Select(o => Copy(o))]; }

    /// <summary>
    /// Creates or replaces an object as it is, status and deletionTimestamp included, bypassing the API's rules: a
    /// test's way to set up state that other controllers or the kubelet would produce (as
    /// <see cref="FakeApiServer.Seed"/>). Stamps uid/creationTimestamp when missing, takes a new resourceVersion and
    /// notifies watches. Counts no call and runs no <see cref="BeforeCall"/>.
    /// </summary>
    public Task<T> SeedAsync(T obj, CancellationToken ct = default)
    {
        lock (_kube.Gate)
        {
            var stored = Copy(obj);
            var meta = stored.Metadata;
            if (string.IsNullOrEmpty(meta.Name)) throw new ArgumentException("metadata.name is required", nameof(obj));
            if (!Type.Namespaced) meta.Namespace = null;
            var key = Key(meta.Namespace, meta.Name);
            var old = _objects.GetValueOrDefault(key);
            meta.Uid ??= old?.Metadata.Uid ?? Guid.NewGuid().ToString();
            meta.CreationTimestamp ??= old?.Metadata.CreationTimestamp ?? _kube.Time.GetUtcNow();
            if (meta.Generation is null or 0) meta.Generation = old?.Metadata.Generation ?? 1;
            meta.ResourceVersion = (++_kube.ResourceVersion).ToString();
            _objects[key] = stored;
            Publish(old is null ? WatchEventType.Added : WatchEventType.Modified, old, stored);
            return Task.FromResult(Copy(stored));
        }
    }

    public Task<T> GetAsync(string? ns, string name, CancellationToken ct)
    {
        lock (_kube.Gate)
        {
            Enter("get", null);
            if (!_objects.TryGetValue(Key(ns, name), out var obj)) throw NotFound(name);
            return Task.FromResult(Copy(obj));
        }
    }

    public Task<KubeList<T>> ListAsync(string? ns, ListOptions options, CancellationToken ct)
    {
        lock (_kube.Gate)
        {
            Enter("list", null);
            long rv;
            List<T> all;
            if (options.Continue is { } token)
            {
                if (!_continues.Remove(token, out var snapshot))
                    throw new ResourceExpiredException("Expired", "the provided continue parameter is too old");
                if (snapshot.Rv < _compactedThrough)
                    throw new ResourceExpiredException("Expired", "the provided continue parameter is too old to display a consistent list result");
                (rv, all) = snapshot;
            }
            else
            {
                rv = _kube.ResourceVersion;
                all = [.. _objects.Values.Where(o => Matches(o, ns, options.LabelSelector, options.FieldSelector)).Select(o => Copy(o))];
            }
            var list = new KubeList<T> { Kind = Type.Kind + "List", ApiVersion = Type.ApiVersion };
            list.Metadata.ResourceVersion = rv.ToString();
            if (options.Limit is { } limit && limit > 0 && all.Count > limit)
            {
                list.Items = all[..limit];
                var next = $"c{++_continueSeq}";
                _continues[next] = (rv, all[limit..]);
                list.Metadata.Continue = next;
                list.Metadata.RemainingItemCount = all.Count - limit;
            }
            else
            {
                list.Items = all;
            }
            return Task.FromResult(list);
        }
    }

    public IAsyncEnumerable<WatchEvent<T>> WatchAsync(string? ns, WatchOptions options, CancellationToken ct)
        => WatchCoreAsync(ns, options, ct);

    private async IAsyncEnumerable<WatchEvent<T>> WatchCoreAsync(string? ns, WatchOptions options,
        [EnumeratorCancellation] CancellationToken ct)
    {
        var watcher = Open(ns, options);
        try
        {
            await foreach (var ev in watcher.Channel.Reader.ReadAllAsync(ct).ConfigureAwait(false)) yield return ev;
        }
        finally
        {
            lock (_kube.Gate) _watchers.Remove(watcher);
        }
    }

    private Watcher Open(string? ns, WatchOptions options)
    {
        lock (_kube.Gate)
        {
            Enter("watch", null);
            _watchRvs.Add(options.ResourceVersion);
            var watcher = new Watcher(ns, options, Channel.CreateUnbounded<WatchEvent<T>>());
            if (string.IsNullOrEmpty(options.ResourceVersion) || options.ResourceVersion == "0")
            {
                // no resourceVersion: the current state as synthetic ADDED events, then changes
                foreach (var o in _objects.Values.Where(o => Matches(o, ns, options.LabelSelector, options.FieldSelector)))
                    watcher.Channel.Writer.TryWrite(new WatchEvent<T>(WatchEventType.Added, Copy(o)));
            }
            else
            {
                var from = long.Parse(options.ResourceVersion);
                if (from < _compactedThrough)
                    throw new ResourceExpiredException("Expired", $"too old resource version: {from} ({_compactedThrough})");
                foreach (var (_, type, old, obj) in _history.Where(h => h.Rv > from))
                {
                    if (EventFor(watcher, type, old, obj) is { } seen) watcher.Channel.Writer.TryWrite(new WatchEvent<T>(seen, Copy(obj)));
                }
            }
            _watchers.Add(watcher);
            return watcher;
        }
    }

    public Task<T> CreateAsync(T obj, CancellationToken ct)
    {
        lock (_kube.Gate)
        {
            Enter("create", obj);
            var stored = StatusSubresource ? WithStatus(obj, null) : Copy(obj);
            var meta = stored.Metadata;
            if (string.IsNullOrEmpty(meta.Name) && !string.IsNullOrEmpty(meta.GenerateName))
                meta.Name = meta.GenerateName + Guid.NewGuid().ToString("N")[..5];
            if (string.IsNullOrEmpty(meta.Name)) throw new InvalidException("Invalid", "metadata.name: Required value");
            if (!Type.Namespaced) meta.Namespace = null;
            else if (string.IsNullOrEmpty(meta.Namespace)) throw new InvalidException("Invalid", "metadata.namespace: Required value");
            else _kube.CheckNamespace(meta.Namespace, Type.Plural, meta.Name);
            var key = Key(meta.Namespace, meta.Name);
            if (_objects.ContainsKey(key))
                throw new AlreadyExistsException("AlreadyExists", $"{Type.Plural} \"{meta.Name}\" already exists");
            meta.Uid = Guid.NewGuid().ToString();
            meta.DeletionTimestamp = null;
            meta.Generation = 1;
            meta.CreationTimestamp = _kube.Time.GetUtcNow();
            meta.ResourceVersion = (++_kube.ResourceVersion).ToString();
            _objects[key] = stored;
            Publish(WatchEventType.Added, null, stored);
            return Task.FromResult(Copy(stored));
        }
    }

    public Task<T> UpdateAsync(T obj, CancellationToken ct) => Replace("update", obj);

    public Task<T> UpdateStatusAsync(T obj, CancellationToken ct) => Replace("updateStatus", obj);

    private Task<T> Replace(string verb, T obj)
    {
        lock (_kube.Gate)
        {
            Enter(verb, obj);
            var key = Key(obj.Metadata.Namespace, obj.Metadata.Name ?? "");
            if (!_objects.TryGetValue(key, out var old)) throw NotFound(obj.Metadata.Name ?? "");
            if (!string.IsNullOrEmpty(obj.Metadata.ResourceVersion) && obj.Metadata.ResourceVersion != old.Metadata.ResourceVersion)
                throw new ConflictException("Conflict",
                    $"Operation cannot be fulfilled on {Type.Plural} \"{obj.Metadata.Name}\": the object has been modified; please apply your changes to the latest version and try again");
            T stored;
            if (verb == "updateStatus")
            {
                if (!StatusSubresource) throw NotFound(obj.Metadata.Name ?? "");
                stored = WithStatus(old, obj);
            }
            else
            {
                stored = StatusSubresource ? WithStatus(obj, old) : Copy(obj);
                CheckPodUpdate(old, stored);
            }
            stored.Metadata.Uid = old.Metadata.Uid;
            stored.Metadata.CreationTimestamp = old.Metadata.CreationTimestamp;
            stored.Metadata.Generation = old.Metadata.Generation;
            return Task.FromResult(Commit(key, old, stored));
        }
    }

    public Task<T> PatchAsync(string? ns, string name, PatchType type, string body, CancellationToken ct,
        bool status = false, string? fieldManager = null, bool force = false)
    {
        lock (_kube.Gate)
        {
            Enter("patch", null);
            var key = Key(ns, name);
            if (!_objects.TryGetValue(key, out var old)) throw NotFound(name);
            var doc = JsonSerializer.SerializeToNode(old, Type.Json)!;
            JsonNode patched;
            try
            {
                patched = type switch
                {
                    PatchType.Merge => MergePatch(doc, JsonNode.Parse(body))!,
                    // kube-apiserver refuses strategic merge patches of custom resources (415)
                    PatchType.StrategicMerge when Type.Group.Contains('.') =>
                        throw new KubeApiException(415, "UnsupportedMediaType", $"strategic merge patch is not supported for {Type.Plural}"),
                    PatchType.StrategicMerge => JsonPatches.StrategicMergePatch(doc, JsonNode.Parse(body))!,
                    PatchType.Json => JsonPatches.ApplyJsonPatch(doc,
                        JsonNode.Parse(body) as JsonArray ?? throw new KubeApiException(400, "BadRequest", "a JSON patch must be an array")),
                    _ => throw new NotSupportedException($"the fake does not apply {type} patches"),
                };
            }
            catch (InvalidOperationException e)
            {
                throw new InvalidException("Invalid", e.Message);
            }
            // like kube-apiserver: a resourceVersion in the patch is a precondition, and the UID cannot change
            var patchedRv = (string?)patched["metadata"]?["resourceVersion"];
            if (patchedRv is not null && patchedRv != old.Metadata.ResourceVersion)
                throw new ConflictException("Conflict",
                    $"Operation cannot be fulfilled on {Type.Plural} \"{name}\": the object has been modified; please apply your changes to the latest version and try again");
            if ((string?)patched["metadata"]?["uid"] is { } patchedUid && patchedUid != old.Metadata.Uid)
                throw new InvalidException("Invalid", $"{Type.Plural} \"{name}\" is invalid: metadata.uid: Invalid value: \"{patchedUid}\": field is immutable");
            var stored = patched.Deserialize(Type.Json)!;
            if (status)
            {
                if (!StatusSubresource) throw NotFound(name);
                stored = WithStatus(old, stored);
            }
            else
            {
                if (StatusSubresource) stored = WithStatus(stored, old);
                CheckPodUpdate(old, stored);
            }
            stored.Metadata.Uid = old.Metadata.Uid;
            stored.Metadata.Name = old.Metadata.Name;
            stored.Metadata.Namespace = old.Metadata.Namespace;
            stored.Metadata.Generation = old.Metadata.Generation;
            return Task.FromResult(Commit(key, old, stored));
        }
    }

    /// <summary>kube-apiserver's scheduling gate and node affinity update rules (<see cref="PodUpdateRules"/>), for pods.</summary>
    private void CheckPodUpdate(T old, T next)
    {
        if (Type.Kind != "Pod") return;
        var oldJson = JsonSerializer.SerializeToNode(old, Type.Json)!.AsObject();
        var nextJson = JsonSerializer.SerializeToNode(next, Type.Json)!.AsObject();
        if (PodUpdateRules.Check(old.Metadata.Name ?? "", oldJson, nextJson) is { } invalid) throw new InvalidException("Invalid", invalid);
    }

    public Task DeleteAsync(string? ns, string name, DeleteOptions? options, CancellationToken ct)
    {
        lock (_kube.Gate)
        {
            Enter("delete", null);
            var key = Key(ns, name);
            if (!_objects.TryGetValue(key, out var old)) throw NotFound(name);
            if (options?.PreconditionUid is { } uid && uid != old.Metadata.Uid)
                throw new ConflictException("Conflict", $"Precondition failed: UID in precondition: {uid}, UID in object meta: {old.Metadata.Uid}");
            if (options?.PreconditionResourceVersion is { } rv && rv != old.Metadata.ResourceVersion)
                throw new ConflictException("Conflict", $"Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {old.Metadata.ResourceVersion}");
            if (old.Metadata.Finalizers is { Count: > 0 })
            {
                // like kube-apiserver: finalizers turn the delete into a mark; the last one removed completes it
                if (old.Metadata.DeletionTimestamp is not null) return Task.CompletedTask;
                var marked = Copy(old);
                marked.Metadata.DeletionTimestamp = _kube.Time.GetUtcNow();
                // the mark changes what controllers of the object must do: kube-apiserver bumps the generation
                if (marked.Metadata.Generation > 0) marked.Metadata.Generation++;
                marked.Metadata.ResourceVersion = (++_kube.ResourceVersion).ToString();
                _objects[key] = marked;
                Publish(WatchEventType.Modified, old, marked);
                return Task.CompletedTask;
            }
            _objects.Remove(key);
            var gone = Copy(old);
            gone.Metadata.ResourceVersion = (++_kube.ResourceVersion).ToString();
            Publish(WatchEventType.Deleted, old, gone);
            return Task.CompletedTask;
        }
    }

    // caller holds the gate; stored carries old's generation. Stores a write over old: a new resourceVersion, the
    // deletionTimestamp kept (a client cannot set or clear it), the generation one more when the spec changed, and a
    // marked object whose last finalizer went is deleted.
    private T Commit(string key, T old, T stored)
    {
        stored.Metadata.DeletionTimestamp = old.Metadata.DeletionTimestamp;
        stored.Metadata.ResourceVersion = old.Metadata.ResourceVersion;
        // a write that changes nothing is no write: same resourceVersion, no event
        if (JsonSerializer.Serialize(stored, Type.Json) == JsonSerializer.Serialize(old, Type.Json)) return Copy(old);
        if (!JsonNode.DeepEquals(SpecPart(old), SpecPart(stored))) stored.Metadata.Generation = (old.Metadata.Generation ?? 0) + 1;
        stored.Metadata.ResourceVersion = (++_kube.ResourceVersion).ToString();
        if (stored.Metadata.DeletionTimestamp is not null && stored.Metadata.Finalizers is not { Count: > 0 })
        {
            _objects.Remove(key);
            Publish(WatchEventType.Deleted, old, stored);
            return Copy(stored);
        }
        _objects[key] = stored;
        Publish(WatchEventType.Modified, old, stored);
        return Copy(stored);
    }

    // what the generation follows, as kube-apiserver's strategies compare it: everything outside metadata, and
    // outside status too when status is a subresource
    private JsonObject SpecPart(T obj)
    {
        var node = JsonSerializer.SerializeToNode(obj, Type.Json)!.AsObject();
        node.Remove("metadata");
        if (StatusSubresource) node.Remove("status");
        return node;
    }

    // a copy of obj with the status of source (none when source is null or has none)
    private T WithStatus(T obj, T? source)
    {
        var node = JsonSerializer.SerializeToNode(obj, Type.Json)!.AsObject();
        var status = source is null ? null : JsonSerializer.SerializeToNode(source, Type.Json)!["status"];
        if (status is null) node.Remove("status"); else node["status"] = status.DeepClone();
        return node.Deserialize(Type.Json)!;
    }

    // caller holds the gate
    private void Enter(string verb, T? obj)
    {
        _calls[verb] = _calls.GetValueOrDefault(verb) + 1;
        if (_unavailable) throw new KubeUnavailableException("connection refused (fake)");
        BeforeCall?.Invoke(verb, obj);
    }

    // caller holds the gate
    private void Publish(WatchEventType type, T? old, T obj)
    {
        _history.Add((long.Parse(obj.Metadata.ResourceVersion!), type, old is null ? null : Copy(old), Copy(obj)));
        foreach (var w in _watchers)
        {
            if (EventFor(w, type, old, obj) is { } seen) w.Channel.Writer.TryWrite(new WatchEvent<T>(seen, Copy(obj)));
        }
    }

    /// <summary>
    /// What a watch with selectors sees of a change, as kube-apiserver sends it: an object entering the selection is
    /// ADDED, one leaving it DELETED, one outside it before and after nothing.
    /// </summary>
    private WatchEventType? EventFor(Watcher w, WatchEventType type, T? old, T obj)
    {
        var wasIn = old is not null && Matches(old, w.Namespace, w.Options.LabelSelector, w.Options.FieldSelector);
        var isIn = Matches(obj, w.Namespace, w.Options.LabelSelector, w.Options.FieldSelector);
        return type switch
        {
            WatchEventType.Deleted => wasIn || (old is null && isIn) ? WatchEventType.Deleted : null,
            _ when wasIn && isIn => WatchEventType.Modified,
            _ when isIn => WatchEventType.Added,
            _ when wasIn => WatchEventType.Deleted,
            _ => null,
        };
    }

    private bool Matches(T obj, string? ns, string? labelSelector, string? fieldSelector)
    {
        if (!string.IsNullOrEmpty(ns) && obj.Metadata.Namespace != ns) return false;
        return LabelsMatch(obj.Metadata.Labels, labelSelector) && FieldsMatch(obj, fieldSelector);
    }

    private static bool LabelsMatch(Dictionary<string, string>? labels, string? selector)
    {
        if (string.IsNullOrWhiteSpace(selector)) return true;
        foreach (var raw in selector.Split(','))
        {
            var term = raw.Trim();
            string? value;
            if (term.Contains("!="))
            {
                var (k, v) = Split(term, "!=");
                if (labels?.TryGetValue(k, out value) == true && value == v) return false;
            }
            else if (term.Contains('='))
            {
                var (k, v) = Split(term, term.Contains("==") ? "==" : "=");
                if (labels?.TryGetValue(k, out value) != true || value != v) return false;
            }
            else if (term.StartsWith('!'))
            {
                if (labels?.ContainsKey(term[1..]) == true) return false;
            }
            else if (labels?.ContainsKey(term) != true) return false;
        }
        return true;
    }

    private bool FieldsMatch(T obj, string? selector)
    {
        if (string.IsNullOrWhiteSpace(selector)) return true;
        foreach (var raw in selector.Split(','))
        {
            var term = raw.Trim();
            var negate = term.Contains("!=");
            var (field, want) = Split(term, negate ? "!=" : term.Contains("==") ? "==" : "=");
            var have = field switch
            {
                "metadata.name" => obj.Metadata.Name,
                "metadata.namespace" => obj.Metadata.Namespace,
                "spec.nodeName" when obj is Pod pod => pod.Spec.NodeName,
                "status.phase" when obj is Pod pod => pod.Status?.Phase,
                _ => FieldReader?.Invoke(obj, field) ?? throw new InvalidException("BadRequest", $"field label not supported: {field}"),
            } ?? "";
            if ((have == want) == negate) return false;
        }
        return true;
    }

    private static (string, string) Split(string term, string op)
    {
        var i = term.IndexOf(op, StringComparison.Ordinal);
        return (term[..i].Trim(), term[(i + op.Length)..].Trim());
    }

    private static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject) return patch?.DeepClone();
        var result = target as JsonObject ?? new JsonObject();
        foreach (var (name, value) in patchObject)
        {
            if (value is null) result.Remove(name);
            else result[name] = MergePatch(result[name]?.DeepClone(), value);
        }
        return result;
    }

    private T Copy(T obj, bool fresh = false)
    {
        if (fresh) return JsonSerializer.Deserialize("""{"metadata":{}}""", Type.Json)!;
        return JsonSerializer.Deserialize(JsonSerializer.Serialize(obj, Type.Json), Type.Json)!;
    }

    private string Key(string? ns, string name) => Type.Namespaced ? $"{ns}/{name}" : name;

    private NotFoundException NotFound(string name) => new("NotFound", $"{Type.Plural} \"{name}\" not found");

    private sealed record Watcher(string? Namespace, WatchOptions Options, Channel<WatchEvent<T>> Channel);
}

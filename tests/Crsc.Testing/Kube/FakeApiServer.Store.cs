using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Crsc.Api.Kubernetes;

namespace Crsc.Testing.Kube;

// The API semantics of the fake: storage, resourceVersion, generation, concurrency, selectors, pagination, watch.
public sealed partial class FakeApiServer
{
    private sealed record Change(long Rv, FakeResource Resource, string Type, JsonObject? Old, JsonObject New);

    private sealed class Watcher(FakeResource resource, string? ns, LabelSelectorExpression labels, FieldSelectorExpression fields,
        bool bookmarks)
    {
        public FakeResource Resource { get; } = resource;
        public string? Namespace { get; } = ns;
        public bool Bookmarks { get; } = bookmarks;
        public Channel<string> Lines { get; } = Channel.CreateUnbounded<string>(new() { SingleReader = true });

        public bool Matches(JsonObject? obj)
            => obj is not null
               && (Namespace is null || (string?)obj["metadata"]?["namespace"] == Namespace)
               && labels.Matches(obj) && fields.Matches(obj);
    }

    private readonly Lock _gate = new();
    private readonly Dictionary<string, FakeResource> _resources = [];
    private readonly Dictionary<string, SortedDictionary<string, JsonObject>> _objects = [];
    private readonly List<Change> _history = [];
    private readonly List<Watcher> _watchers = [];
    private long _rv;
    private long _compactedRv;

    /// <summary>The newest resourceVersion handed out.</summary>
    public long ResourceVersion { get { lock (_gate) return _rv; } }

    /// <summary>Open watch streams.</summary>
    public int WatchCount { get { lock (_gate) return _watchers.Count; } }

    /// <summary>Serves another kind (a CRD, say). Objects are kept as JSON; the kind needs no C# type.</summary>
    public FakeResource Register(FakeResource resource)
    {
        lock (_gate)
        {
            _resources[RouteKey(resource.Group, resource.Version, resource.Plural)] = resource;
            _objects.TryAdd(resource.QualifiedName, new(StringComparer.Ordinal));
        }
        return resource;
    }

    public FakeResource Register<T>(ResourceType<T> type, bool hasStatusSubresource) where T : class, IKubernetesObject
        => Register(FakeResource.From(type, hasStatusSubresource));

    /// <summary>The registered resource of a typed <see cref="ResourceType{T}"/>.</summary>
    public FakeResource ResourceOf<T>(ResourceType<T> type) where T : class, IKubernetesObject
        => Find(type.Group, type.Version, type.Plural) ?? throw new ArgumentException($"{type.Plural} is not registered");

    private static string RouteKey(string group, string version, string plural) => $"{group}/{version}/{plural}";

    /// <summary>Every registered resource (for discovery).</summary>
    private List<FakeResource> Resources()
    {
        lock (_gate) return [.. _resources.Values];
    }

    private FakeResource? Find(string group, string version, string plural)
    {
        lock (_gate) return _resources.GetValueOrDefault(RouteKey(group, version, plural));
    }

    private static string StoreKey(string? ns, string name) => $"{ns}/{name}";

    // ---- direct access for tests (no HTTP, no validation) ----

    /// <summary>A copy of the stored object, or null.</summary>
    public JsonObject? Get(FakeResource resource, string? ns, string name)
    {
        lock (_gate) return _objects[resource.QualifiedName].GetValueOrDefault(StoreKey(resource.Namespaced ? ns : null, name))
            ?.DeepClone().AsObject();
    }

    public T? Get<T>(ResourceType<T> type, string? ns, string name) where T : class, IKubernetesObject
        => Get(ResourceOf(type), ns, name)?.Deserialize(type.Json);

    /// <summary>Copies of every stored object of a resource.</summary>
    public List<JsonObject> All(FakeResource resource)
    {
        lock (_gate) return _objects[resource.QualifiedName].Values.Select(o => o.DeepClone().AsObject()).ToList();
    }

    /// <summary>
    /// Creates or replaces an object as it is, status included, bypassing the API's rules (a test's way to set up
    /// state that controllers or the kubelet would produce). Stamps uid/creationTimestamp/generation when missing,
    /// takes a new resourceVersion and notifies watches.
    /// </summary>
    public JsonObject Seed(FakeResource resource, JsonObject obj)
    {
        obj = obj.DeepClone().AsObject();
        obj["apiVersion"] = resource.ApiVersion;
        obj["kind"] = resource.Kind;
        var meta = Meta(obj);
        var name = (string?)meta["name"] ?? throw new ArgumentException("metadata.name is required");
        var ns = resource.Namespaced ? (string?)meta["namespace"] ?? "default" : null;
        if (ns is null) meta.Remove("namespace"); else meta["namespace"] = ns;
        lock (_gate)
        {
            var existing = Store(resource).GetValueOrDefault(StoreKey(ns, name));
            meta["uid"] ??= (string?)existing?["metadata"]?["uid"] ?? Guid.NewGuid().ToString();
            meta["creationTimestamp"] ??= (string?)existing?["metadata"]?["creationTimestamp"] ?? Now();
            meta["generation"] ??= 1L;
            meta["resourceVersion"] = (++_rv).ToString(System.Globalization.CultureInfo.InvariantCulture);
            Store(resource)[StoreKey(ns, name)] = obj;
            Record(new Change(_rv, resource, existing is null ? "ADDED" : "MODIFIED", existing, obj));
            return obj.DeepClone().AsObject();
        }
    }

    public T Seed<T>(ResourceType<T> type, T obj) where T : class, IKubernetesObject
        => Seed(ResourceOf(type), JsonSerializer.SerializeToNode(obj, type.Json)!.AsObject()).Deserialize(type.Json)!;

    /// <summary>
    /// Changes a stored object atomically, as a status patch from the kubelet would: <paramref name="change"/> edits a
    /// copy and returns whether it changed anything; if so the copy is stored with a new resourceVersion and watches
    /// see MODIFIED. Null when there is no such object.
    /// </summary>
    public JsonObject? Mutate(FakeResource resource, string? ns, string name, Func<JsonObject, bool> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_gate)
        {
            var key = StoreKey(resource.Namespaced ? ns : null, name);
            if (!Store(resource).TryGetValue(key, out var existing)) return null;
            var next = existing.DeepClone().AsObject();
            if (!change(next)) return existing.DeepClone().AsObject();
            Meta(next)["resourceVersion"] = Rv(++_rv);
            Store(resource)[key] = next;
            Record(new Change(_rv, resource, "MODIFIED", existing, next));
            return next.DeepClone().AsObject();
        }
    }

    /// <summary>
    /// Deletes a stored object as a DELETE without options would (an object with finalizers is only marked); watches see
    /// DELETED (or MODIFIED for the mark).
    /// </summary>
    /// <exception cref="FakeStatusException">404 when there is no such object</exception>
    public JsonObject Remove(FakeResource resource, string? ns, string name) =>
        Delete(resource, resource.Namespaced ? ns : null, name, null);

    /// <summary>Drops the watch history, like an etcd compaction: a watch from an older resourceVersion gets 410.</summary>
    public void Compact()
    {
        lock (_gate)
        {
            _history.Clear();
            _compactedRv = _rv;
        }
    }

    /// <summary>Ends every open watch stream cleanly (as the API server does on its own timeouts or restarts).</summary>
    public void CloseWatches()
    {
        lock (_gate)
        {
            foreach (var w in _watchers) w.Lines.Writer.TryComplete();
            _watchers.Clear();
        }
    }

    /// <summary>Sends a BOOKMARK with the current resourceVersion to every watch that allows bookmarks.</summary>
    public void SendBookmarks()
    {
        lock (_gate)
            foreach (var w in _watchers.Where(w => w.Bookmarks))
                w.Lines.Writer.TryWrite(BookmarkLine(w.Resource));
    }

    /// <summary>Sends a raw line down every open watch (a malformed one, say).</summary>
    public void SendRawWatchLine(string line)
    {
        lock (_gate)
            foreach (var w in _watchers) w.Lines.Writer.TryWrite(line);
    }

    private string BookmarkLine(FakeResource resource)
        => new JsonObject
        {
            ["type"] = "BOOKMARK",
            ["object"] = new JsonObject
            {
                ["kind"] = resource.Kind,
                ["apiVersion"] = resource.ApiVersion,
                ["metadata"] = new JsonObject { ["resourceVersion"] = Rv(_rv) },
            },
        }.ToJsonString();

    // ---- the API ----

    private SortedDictionary<string, JsonObject> Store(FakeResource resource) => _objects[resource.QualifiedName];

    private string Now() => KubeTime.FormatTime(_options.Time.GetUtcNow());

    private static string Rv(long rv) => rv.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static JsonObject Meta(JsonObject obj)
    {
        if (obj["metadata"] is JsonObject m) return m;
        var meta = new JsonObject();
        obj["metadata"] = meta;
        return meta;
    }

    private static FakeStatusException NotFound(FakeResource r, string name)
        => new(404, "NotFound", $"{r.QualifiedName} \"{name}\" not found", r, name);

    private static FakeStatusException Modified(FakeResource r, string name)
        => new(409, "Conflict",
            $"Operation cannot be fulfilled on {r.QualifiedName} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            r, name);

    private JsonObject GetObject(FakeResource r, string? ns, string name)
    {
        lock (_gate)
            return Store(r).GetValueOrDefault(StoreKey(ns, name))?.DeepClone().AsObject() ?? throw NotFound(r, name);
    }

    private JsonObject Create(FakeResource r, string? ns, JsonObject obj)
    {
        CheckKind(r, obj);
        obj["apiVersion"] = r.ApiVersion;
        obj["kind"] = r.Kind;
        var meta = Meta(obj);
        var bodyNs = (string?)meta["namespace"];
        if (r.Namespaced)
        {
            if (!string.IsNullOrEmpty(bodyNs) && bodyNs != ns)
                throw new FakeStatusException(400, "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request", r);
            meta["namespace"] = ns;
        }
        else meta.Remove("namespace");
        if (r.HasStatusSubresource) obj.Remove("status");

        lock (_gate)
        {
            var name = (string?)meta["name"];
            if (string.IsNullOrEmpty(name))
            {
                var prefix = (string?)meta["generateName"];
                if (string.IsNullOrEmpty(prefix))
                    throw new FakeStatusException(422, "Invalid",
                        $"{r.Kind} \"\" is invalid: metadata.name: Required value: name or generateName is required", r);
                do name = prefix + RandomSuffix(); while (Store(r).ContainsKey(StoreKey(ns, name)));
                meta["name"] = name;
            }
            if (Store(r).ContainsKey(StoreKey(ns, name)))
                throw new FakeStatusException(409, "AlreadyExists", $"{r.QualifiedName} \"{name}\" already exists", r, name);
            meta["uid"] = Guid.NewGuid().ToString();
            meta["creationTimestamp"] = Now();
            meta["generation"] = 1L;
            meta.Remove("deletionTimestamp");
            meta["resourceVersion"] = Rv(++_rv);
            Store(r)[StoreKey(ns, name)] = obj;
            Record(new Change(_rv, r, "ADDED", null, obj));
            return obj.DeepClone().AsObject();
        }
    }

    private static string RandomSuffix()
    {
        const string alphabet = "bcdfghjklmnpqrstvwxz2456789";
        return string.Create(5, 0, (span, _) => { for (var i = 0; i < span.Length; i++) span[i] = alphabet[Random.Shared.Next(alphabet.Length)]; });
    }

    private static void CheckKind(FakeResource r, JsonObject obj)
    {
        var apiVersion = (string?)obj["apiVersion"];
        var kind = (string?)obj["kind"];
        if ((!string.IsNullOrEmpty(apiVersion) && apiVersion != r.ApiVersion) || (!string.IsNullOrEmpty(kind) && kind != r.Kind))
            throw new FakeStatusException(400, "BadRequest",
                $"the API version in the data ({apiVersion}) does not match the expected API version ({r.ApiVersion}) or the kind ({kind}) is not {r.Kind}", r);
    }

    /// <summary>PUT: the body replaces the object except its identity (and its status, with a status subresource).</summary>
    private JsonObject Update(FakeResource r, string? ns, string name, JsonObject body, bool status)
    {
        CheckKind(r, body);
        var bodyName = (string?)body["metadata"]?["name"];
        if (!string.IsNullOrEmpty(bodyName) && bodyName != name)
            throw new FakeStatusException(400, "BadRequest",
                $"the name of the object ({bodyName}) does not match the name on the URL ({name})", r, name);
        if (status && !r.HasStatusSubresource) throw NotFound(r, name);
        lock (_gate)
        {
            var existing = Store(r).GetValueOrDefault(StoreKey(ns, name)) ?? throw NotFound(r, name);
            var rv = (string?)body["metadata"]?["resourceVersion"];
            if (!string.IsNullOrEmpty(rv) && rv != (string?)existing["metadata"]!["resourceVersion"]) throw Modified(r, name);
            JsonObject next;
            if (status)
            {
                next = existing.DeepClone().AsObject();
                if (body["status"] is { } s) next["status"] = s.DeepClone(); else next.Remove("status");
            }
            else
            {
                next = body.DeepClone().AsObject();
                if (r.HasStatusSubresource)
                {
                    if (existing["status"] is { } s) next["status"] = s.DeepClone(); else next.Remove("status");
                }
                if (r.Kind == "Pod" && PodUpdateRules.Check(name, existing, next) is { } invalid)
                    throw new FakeStatusException(422, "Invalid", invalid, r, name);
            }
            return Commit(r, ns, name, existing, next);
        }
    }

    private JsonObject Patch(FakeResource r, string? ns, string name, string contentType, JsonNode patch, bool status,
        string? fieldManager)
    {
        if (status && !r.HasStatusSubresource) throw NotFound(r, name);
        var apply = contentType.StartsWith("application/apply-patch", StringComparison.Ordinal);
        if (apply && string.IsNullOrEmpty(fieldManager))
            throw new FakeStatusException(400, "BadRequest", "PATCH, fieldManager is required for apply requests", r, name);
        lock (_gate)
        {
            var existing = Store(r).GetValueOrDefault(StoreKey(ns, name));
            if (existing is null)
            {
                if (!apply || status || patch is not JsonObject applied) throw NotFound(r, name);
                // server-side apply creates what is absent
                var created = applied.DeepClone().AsObject();
                Meta(created)["name"] = name;
                return Create(r, ns, created);
            }
            JsonNode? result;
            try
            {
                result = contentType switch
                {
                    _ when contentType.StartsWith("application/merge-patch+json", StringComparison.Ordinal)
                        => JsonPatches.MergePatch(existing.DeepClone(), patch),
                    _ when contentType.StartsWith("application/json-patch+json", StringComparison.Ordinal)
                        => patch is JsonArray ops
                            ? JsonPatches.ApplyJsonPatch(existing.DeepClone(), ops)
                            : throw new FormatException("a JSON patch must be an array of operations"),
                    _ when contentType.StartsWith("application/strategic-merge-patch+json", StringComparison.Ordinal) || apply
                        => JsonPatches.StrategicMergePatch(existing.DeepClone(), patch),
                    _ => throw new FakeStatusException(415, "UnsupportedMediaType",
                        $"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                        r, name),
                };
            }
            catch (FormatException e) { throw new FakeStatusException(400, "BadRequest", e.Message, r, name); }
            catch (InvalidOperationException e) { throw new FakeStatusException(422, "Invalid", e.Message, r, name); }
            if (result is not JsonObject patched)
                throw new FakeStatusException(422, "Invalid", "the patch does not leave an object", r, name);
            var rv = (string?)patched["metadata"]?["resourceVersion"];
            if (rv != (string?)existing["metadata"]!["resourceVersion"]) throw Modified(r, name);
            JsonObject next;
            if (status)
            {
                next = existing.DeepClone().AsObject();
                if (patched["status"] is { } s) next["status"] = s.DeepClone(); else next.Remove("status");
            }
            else
            {
                next = patched;
                if (r.HasStatusSubresource)
                {
                    if (existing["status"] is { } s) next["status"] = s.DeepClone(); else next.Remove("status");
                }
                if (r.Kind == "Pod" && PodUpdateRules.Check(name, existing, next) is { } invalid)
                    throw new FakeStatusException(422, "Invalid", invalid, r, name);
            }
            return Commit(r, ns, name, existing, next);
        }
    }

    /// <summary>
    /// Stores <paramref name="next"/> over <paramref name="existing"/>: identity kept, no-op writes skipped (no new
    /// resourceVersion, no event), generation bumped on spec changes, a finalized deletion completed.
    /// </summary>
    private JsonObject Commit(FakeResource r, string? ns, string name, JsonObject existing, JsonObject next)
    {
        next["apiVersion"] = r.ApiVersion;
        next["kind"] = r.Kind;
        var meta = Meta(next);
        var old = existing["metadata"]!.AsObject();
        meta["name"] = name;
        if (ns is null) meta.Remove("namespace"); else meta["namespace"] = ns;
        foreach (var field in new[] { "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation" })
        {
            if (old[field] is { } value) meta[field] = value.DeepClone(); else meta.Remove(field);
        }
        meta["resourceVersion"] = old["resourceVersion"]!.DeepClone();
        if (JsonNode.DeepEquals(Comparable(existing), Comparable(next))) return existing.DeepClone().AsObject();

        if (!JsonNode.DeepEquals(SpecPart(r, existing), SpecPart(r, next)))
            meta["generation"] = Long(old["generation"]) + 1;
        meta["resourceVersion"] = Rv(++_rv);
        var finalizers = meta["finalizers"] as JsonArray;
        if (meta["deletionTimestamp"] is not null && (finalizers is null || finalizers.Count == 0))
        {
            Store(r).Remove(StoreKey(ns, name));
            Record(new Change(_rv, r, "DELETED", existing, next));
            return next.DeepClone().AsObject();
        }
        Store(r)[StoreKey(ns, name)] = next;
        Record(new Change(_rv, r, "MODIFIED", existing, next));
        return next.DeepClone().AsObject();
    }

    private static long Long(JsonNode? node)
        => node is null ? 0 : long.Parse(node.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);

    private static JsonObject Comparable(JsonObject obj)
    {
        var copy = obj.DeepClone().AsObject();
        var meta = Meta(copy);
        meta.Remove("resourceVersion");
        meta.Remove("managedFields");
        meta.Remove("generation");
        return copy;
    }

    private static JsonObject SpecPart(FakeResource r, JsonObject obj)
    {
        var copy = obj.DeepClone().AsObject();
        copy.Remove("metadata");
        if (r.HasStatusSubresource) copy.Remove("status");
        return copy;
    }

    private JsonObject Delete(FakeResource r, string? ns, string name, JsonObject? options)
    {
        var preconditions = options?["preconditions"] as JsonObject;
        var policy = (string?)options?["propagationPolicy"];
        if (policy is not null and not ("Orphan" or "Background" or "Foreground"))
            throw new FakeStatusException(400, "BadRequest", $"propagationPolicy: Unsupported value: \"{policy}\"", r, name);
        lock (_gate)
        {
            var existing = Store(r).GetValueOrDefault(StoreKey(ns, name)) ?? throw NotFound(r, name);
            var meta = existing["metadata"]!.AsObject();
            if ((string?)preconditions?["uid"] is { } uid && uid != (string?)meta["uid"])
                throw new FakeStatusException(409, "Conflict",
                    $"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta["uid"]}", r, name);
            if ((string?)preconditions?["resourceVersion"] is { } rv && rv != (string?)meta["resourceVersion"])
                throw new FakeStatusException(409, "Conflict",
                    $"Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {meta["resourceVersion"]}",
                    r, name);
            if (meta["finalizers"] is JsonArray { Count: > 0 })
            {
                if (meta["deletionTimestamp"] is not null) return existing.DeepClone().AsObject();
                var marked = existing.DeepClone().AsObject();
                marked["metadata"]!["deletionTimestamp"] = Now();
                marked["metadata"]!["deletionGracePeriodSeconds"] = 0;
                // the mark changes what controllers of the object must do: kube-apiserver bumps the generation
                if (Long(meta["generation"]) is > 0 and var generation) marked["metadata"]!["generation"] = generation + 1;
                // Commit keeps identity fields from the stored object; set them on it through the marked copy
                Store(r)[StoreKey(ns, name)] = marked;
                marked["metadata"]!["resourceVersion"] = Rv(++_rv);
                Record(new Change(_rv, r, "MODIFIED", existing, marked));
                return marked.DeepClone().AsObject();
            }
            var final = existing.DeepClone().AsObject();
            final["metadata"]!["resourceVersion"] = Rv(++_rv);
            Store(r).Remove(StoreKey(ns, name));
            Record(new Change(_rv, r, "DELETED", existing, final));
            return final.DeepClone().AsObject();
        }
    }

    private JsonObject List(FakeResource r, string? ns, string? labelSelector, string? fieldSelector, int? limit, string? continueToken)
    {
        var (labels, fields) = Selectors(r, labelSelector, fieldSelector);
        lock (_gate)
        {
            long listRv = _rv;
            string? after = null;
            if (!string.IsNullOrEmpty(continueToken))
            {
                (listRv, after) = DecodeContinue(continueToken, r);
                if (listRv < _compactedRv)
                    throw new FakeStatusException(410, "Expired",
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.", r);
            }
            var items = new JsonArray();
            string? lastKey = null;
            var remaining = 0L;
            foreach (var (key, obj) in Store(r))
            {
                if (after is not null && string.CompareOrdinal(key, after) <= 0) continue;
                if (r.Namespaced && ns is not null && (string?)obj["metadata"]?["namespace"] != ns) continue;
                if (!labels.Matches(obj) || !fields.Matches(obj)) continue;
                if (limit is > 0 && items.Count >= limit) { remaining++; continue; }
                items.Add(obj.DeepClone());
                lastKey = key;
            }
            var listMeta = new JsonObject { ["resourceVersion"] = Rv(listRv) };
            if (remaining > 0)
            {
                listMeta["continue"] = EncodeContinue(listRv, lastKey!);
                listMeta["remainingItemCount"] = remaining;
            }
            return new JsonObject
            {
                ["kind"] = r.Kind + "List",
                ["apiVersion"] = r.ApiVersion,
                ["metadata"] = listMeta,
                ["items"] = items,
            };
        }
    }

    private static string EncodeContinue(long rv, string lastKey)
    {
        var json = new JsonObject { ["rv"] = rv, ["start"] = lastKey }.ToJsonString();
        return Convert.ToBase64String(Encoding.UTF8.GetBytes(json)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    private static (long Rv, string After) DecodeContinue(string token, FakeResource r)
    {
        try
        {
            var b64 = token.Replace('-', '+').Replace('_', '/');
            b64 = b64.PadRight(b64.Length + (4 - b64.Length % 4) % 4, '=');
            var node = JsonNode.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(b64)))!;
            return ((long)node["rv"]!, (string)node["start"]!);
        }
        catch (Exception e) when (e is FormatException or JsonException or InvalidOperationException or NullReferenceException)
        {
            throw new FakeStatusException(400, "BadRequest", "continue key is not valid: " + e.Message, r);
        }
    }

    private static (LabelSelectorExpression, FieldSelectorExpression) Selectors(FakeResource r, string? labels, string? fields)
    {
        try
        {
            return (LabelSelectorExpression.Parse(labels), FieldSelectorExpression.Parse(fields, r.FieldSelectors));
        }
        catch (FormatException e)
        {
            throw new FakeStatusException(400, "BadRequest", e.Message, r);
        }
    }

    /// <summary>Registers a watch and queues what it must see first: history after its resourceVersion, or the
    /// current objects as ADDED when no resourceVersion (or "0") was given; a too old one gets a 410 ERROR.</summary>
    private Watcher StartWatch(FakeResource r, string? ns, string? rvText, string? labelSelector, string? fieldSelector, bool bookmarks)
    {
        var (labels, fields) = Selectors(r, labelSelector, fieldSelector);
        var watcher = new Watcher(r, r.Namespaced ? ns : null, labels, fields, bookmarks);
        lock (_gate)
        {
            if (string.IsNullOrEmpty(rvText) || rvText == "0")
            {
                foreach (var obj in Store(r).Values.Where(watcher.Matches))
                    watcher.Lines.Writer.TryWrite(EventLine("ADDED", obj));
            }
            else
            {
                if (!long.TryParse(rvText, out var rv) || rv < 0)
                    throw new FakeStatusException(400, "BadRequest", $"resourceVersion: Invalid value: \"{rvText}\"", r);
                if (rv < _compactedRv)
                {
                    watcher.Lines.Writer.TryWrite(new JsonObject
                    {
                        ["type"] = "ERROR",
                        ["object"] = StatusBody(410, "Expired", $"too old resource version: {rv} ({_compactedRv})", null, null),
                    }.ToJsonString());
                    watcher.Lines.Writer.TryComplete();
                    return watcher;
                }
                foreach (var change in _history.Where(c => c.Rv > rv && c.Resource.QualifiedName == r.QualifiedName))
                    if (LineFor(watcher, change) is { } line) watcher.Lines.Writer.TryWrite(line);
            }
            _watchers.Add(watcher);
        }
        return watcher;
    }

    private void StopWatch(Watcher watcher)
    {
        lock (_gate) _watchers.Remove(watcher);
        watcher.Lines.Writer.TryComplete();
    }

    /// <summary>Keeps the change for later watches and tells the open ones, as a selector-aware event.</summary>
    private void Record(Change change)
    {
        _history.Add(change);
        foreach (var w in _watchers)
            if (w.Resource.QualifiedName == change.Resource.QualifiedName && LineFor(w, change) is { } line)
                w.Lines.Writer.TryWrite(line);
    }

    private static string? LineFor(Watcher w, Change change)
    {
        var wasIn = w.Matches(change.Old);
        var isIn = w.Matches(change.New);
        var type = change.Type switch
        {
            "DELETED" => wasIn ? "DELETED" : null,
            _ when isIn && wasIn => "MODIFIED",
            _ when isIn => "ADDED",
            _ when wasIn => "DELETED",
            _ => null,
        };
        return type is null ? null : EventLine(type, change.New);
    }

    private static string EventLine(string type, JsonObject obj)
        => new JsonObject { ["type"] = type, ["object"] = obj.DeepClone() }.ToJsonString();

    internal static JsonObject StatusBody(int code, string reason, string message, FakeResource? r, string? name)
    {
        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
        };
        if (r is not null || name is not null)
        {
            var details = new JsonObject();
            if (name is not null) details["name"] = name;
            if (r is not null)
            {
                if (r.Group.Length > 0) details["group"] = r.Group;
                details["kind"] = r.Plural;
            }
            status["details"] = details;
        }
        status["code"] = code;
        return status;
    }
}

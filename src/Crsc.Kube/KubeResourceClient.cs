using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Microsoft.Extensions.Logging;

namespace Crsc.Kube;

/// <summary>Every verb of <see cref="IKubeResourceClient{T}"/> over HTTP, URLs from the <see cref="ResourceType{T}"/>.</summary>
public sealed class KubeResourceClient<T> : IKubeResourceClient<T> where T : class, IKubernetesObject
{
    private readonly KubeApi _api;
    private readonly ILogger _logger;
    private readonly string _prefix;

    internal KubeResourceClient(KubeApi api, ResourceType<T> type, ILogger logger)
    {
        _api = api;
        _logger = logger;
        Type = type;
        _prefix = type.Group.Length == 0 ? $"/api/{type.Version}" : $"/apis/{type.Group}/{type.Version}";
    }

    public ResourceType<T> Type { get; }

    private string Describe => Type.Group.Length == 0 ? Type.Plural : $"{Type.Plural}.{Type.Group}";

    /// <summary>The collection URL: all namespaces when <paramref name="ns"/> is null for a namespaced type.</summary>
    internal string CollectionPath(string? ns)
        => Type.Namespaced && !string.IsNullOrEmpty(ns)
            ? $"{_prefix}/namespaces/{Uri.EscapeDataString(ns)}/{Type.Plural}"
            : $"{_prefix}/{Type.Plural}";

    internal string ItemPath(string? ns, string name, bool status = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (Type.Namespaced && string.IsNullOrEmpty(ns))
            throw new ArgumentException($"{Describe} are namespaced: a namespace is required for '{name}'", nameof(ns));
        return $"{CollectionPath(ns)}/{Uri.EscapeDataString(name)}" + (status ? "/status" : "");
    }

    private string? NamespaceOf(T obj)
        => Type.Namespaced ? (string.IsNullOrEmpty(obj.Metadata.Namespace) ? _api.DefaultNamespace : obj.Metadata.Namespace) : null;

    public async Task<T> GetAsync(string? ns, string name, CancellationToken ct)
        => await SendAsync(HttpMethod.Get, ItemPath(ns, name), null, null, ct).ConfigureAwait(false);

    public async Task<KubeList<T>> ListAsync(string? ns, ListOptions options, CancellationToken ct)
    {
        var query = new Query()
            .Add("labelSelector", options.LabelSelector)
            .Add("fieldSelector", options.FieldSelector)
            .Add("limit", options.Limit?.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .Add("continue", options.Continue)
            .Add("resourceVersion", options.ResourceVersion);
        using var response = await _api.Http.SendAsync(HttpMethod.Get, CollectionPath(ns) + query, null, null, false, ct)
            .ConfigureAwait(false);
        return await ReadAsync(response, Type.ListJson, ct).ConfigureAwait(false);
    }

    public async IAsyncEnumerable<WatchEvent<T>> WatchAsync(string? ns, WatchOptions options,
        [EnumeratorCancellation] CancellationToken ct)
    {
        var query = new Query()
            .Add("watch", "1")
            .Add("allowWatchBookmarks", options.AllowBookmarks ? "true" : null)
            .Add("resourceVersion", options.ResourceVersion)
            .Add("labelSelector", options.LabelSelector)
            .Add("fieldSelector", options.FieldSelector)
            .Add("timeoutSeconds", options.TimeoutSeconds?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var response = await _api.Http.SendAsync(HttpMethod.Get, CollectionPath(ns) + query, null, null, streaming: true, ct)
            .ConfigureAwait(false);
        Stream stream;
        try { stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false); }
        catch (Exception e) when (e is HttpRequestException or IOException) { throw Broken(e); }
        await using var _ = stream.ConfigureAwait(false);
        // a line at a time: memory stays bounded by the largest object, not by the stream
        using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: false, bufferSize: 16 * 1024);
        while (true)
        {
            string? line;
            try { line = await reader.ReadLineAsync(ct).ConfigureAwait(false); }
            catch (Exception e) when (e is HttpRequestException or IOException && !ct.IsCancellationRequested) { throw Broken(e); }
            if (line is null) yield break;
            if (line.Length == 0) continue;
            var ev = Decode(line);
            if (ev is not null) yield return ev;
        }
    }

    private KubeUnavailableException Broken(Exception e)
        => new($"the watch of {Describe} on {_api.Http.Server} broke: {e.Message}", e);

    /// <summary>One watch line. Null for a line that is not a usable event (logged); throws for an ERROR event.</summary>
    internal WatchEvent<T>? Decode(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("type", out var typeElement) || typeElement.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("object", out var obj) || obj.ValueKind != JsonValueKind.Object)
            {
                Log.MalformedWatchLine(_logger, _api.Http.Server, Describe, "not a {\"type\",\"object\"} event");
                return null;
            }
            WatchEventType type;
            switch (typeElement.GetString())
            {
                case "ADDED": type = WatchEventType.Added; break;
                case "MODIFIED": type = WatchEventType.Modified; break;
                case "DELETED": type = WatchEventType.Deleted; break;
                case "BOOKMARK": type = WatchEventType.Bookmark; break;
                case "ERROR":
                    var status = obj.Deserialize(KubeJsonContext.Default.Status);
                    throw KubeApiException.From(status?.Code ?? 500, status?.Reason, status?.Message ?? "the watch failed");
                default:
                    Log.MalformedWatchLine(_logger, _api.Http.Server, Describe, $"unknown event type '{typeElement.GetString()}'");
                    return null;
            }
            var value = obj.Deserialize(Type.Json);
            if (value is null)
            {
                Log.MalformedWatchLine(_logger, _api.Http.Server, Describe, "null object");
                return null;
            }
            return new WatchEvent<T>(type, value);
        }
        catch (JsonException e)
        {
            Log.MalformedWatchLine(_logger, _api.Http.Server, Describe, e.Message);
            return null;
        }
    }

    public async Task<T> CreateAsync(T obj, CancellationToken ct)
        => await SendAsync(HttpMethod.Post, CollectionPath(NamespaceOf(obj)), Serialize(obj), "application/json", ct).ConfigureAwait(false);

    public async Task<T> UpdateAsync(T obj, CancellationToken ct)
        => await SendAsync(HttpMethod.Put, ItemPath(NamespaceOf(obj), NameOf(obj)), Serialize(obj), "application/json", ct)
            .ConfigureAwait(false);

    public async Task<T> UpdateStatusAsync(T obj, CancellationToken ct)
        => await SendAsync(HttpMethod.Put, ItemPath(NamespaceOf(obj), NameOf(obj), status: true), Serialize(obj), "application/json", ct)
            .ConfigureAwait(false);

    public async Task<T> PatchAsync(string? ns, string name, PatchType type, string body, CancellationToken ct,
        bool status = false, string? fieldManager = null, bool force = false)
    {
        if (type == PatchType.Apply && string.IsNullOrEmpty(fieldManager))
            throw new ArgumentException("server-side apply needs a fieldManager", nameof(fieldManager));
        var contentType = type switch
        {
            PatchType.Merge => "application/merge-patch+json",
            PatchType.Json => "application/json-patch+json",
            PatchType.StrategicMerge => "application/strategic-merge-patch+json",
            PatchType.Apply => "application/apply-patch+yaml",
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
        };
        var query = new Query()
            .Add("fieldManager", fieldManager)
            .Add("force", type == PatchType.Apply && force ? "true" : null);
        return await SendAsync(HttpMethod.Patch, ItemPath(ns, name, status) + query, body, contentType, ct).ConfigureAwait(false);
    }

    public async Task DeleteAsync(string? ns, string name, DeleteOptions? options, CancellationToken ct)
    {
        string? body = null;
        if (options is not null)
        {
            using var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("kind", "DeleteOptions");
                w.WriteString("apiVersion", "v1");
                if (options.PreconditionUid is not null || options.PreconditionResourceVersion is not null)
                {
                    w.WriteStartObject("preconditions");
                    if (options.PreconditionUid is not null) w.WriteString("uid", options.PreconditionUid);
                    if (options.PreconditionResourceVersion is not null) w.WriteString("resourceVersion", options.PreconditionResourceVersion);
                    w.WriteEndObject();
                }
                if (options.PropagationPolicy is { } policy) w.WriteString("propagationPolicy", policy.ToString());
                if (options.GracePeriodSeconds is { } grace) w.WriteNumber("gracePeriodSeconds", grace);
                w.WriteEndObject();
            }
            body = Encoding.UTF8.GetString(buffer.ToArray());
        }
        using var response = await _api.Http.SendAsync(HttpMethod.Delete, ItemPath(ns, name), body, "application/json", false, ct)
            .ConfigureAwait(false);
    }

    private static string NameOf(T obj)
        => obj.Metadata.Name is { Length: > 0 } n ? n : throw new ArgumentException("the object has no metadata.name", nameof(obj));

    private string Serialize(T obj) => JsonSerializer.Serialize(obj, Type.Json);

    private async Task<T> SendAsync(HttpMethod method, string path, string? body, string? contentType, CancellationToken ct)
    {
        using var response = await _api.Http.SendAsync(method, path, body, contentType, false, ct).ConfigureAwait(false);
        return await ReadAsync(response, Type.Json, ct).ConfigureAwait(false);
    }

    private async Task<TValue> ReadAsync<TValue>(HttpResponseMessage response, System.Text.Json.Serialization.Metadata.JsonTypeInfo<TValue> info,
        CancellationToken ct)
    {
        try
        {
            var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await using var _ = stream.ConfigureAwait(false);
            return await JsonSerializer.DeserializeAsync(stream, info, ct).ConfigureAwait(false)
                ?? throw new KubeApiException(500, "InternalError", $"the API server answered null for {Describe}");
        }
        catch (JsonException e)
        {
            throw new KubeApiException(500, "InternalError", $"the API server's answer for {Describe} is not valid JSON: {e.Message}", e);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            throw new KubeUnavailableException($"the answer of {_api.Http.Server} for {Describe} broke off: {e.Message}", e);
        }
    }

    /// <summary>A query string; null values are left out.</summary>
    private sealed class Query
    {
        private readonly StringBuilder _text = new();

        public Query Add(string name, string? value)
        {
            if (value is null) return this;
            _text.Append(_text.Length == 0 ? '?' : '&').Append(name).Append('=').Append(Uri.EscapeDataString(value));
            return this;
        }

        public override string ToString() => _text.ToString();
    }
}

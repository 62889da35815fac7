using System.Runtime.CompilerServices;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Kube;

public static class KubeResourceClientExtensions
{
    /// <summary>Every page of a list (following <c>continue</c>), with the resourceVersion of the first page.</summary>
    public static async Task<KubeList<T>> ListAllAsync<T>(this IKubeResourceClient<T> client, string? ns, ListOptions? options,
        CancellationToken ct, int pageSize = 500) where T : class, IKubernetesObject
    {
        options ??= new ListOptions();
        var first = await client.ListAsync(ns, options with { Limit = pageSize, Continue = null }, ct).ConfigureAwait(false);
        var next = first.Metadata.Continue;
        while (!string.IsNullOrEmpty(next))
        {
            var page = await client.ListAsync(ns, options with { Limit = pageSize, Continue = next }, ct).ConfigureAwait(false);
            first.Items.AddRange(page.Items);
            next = page.Metadata.Continue;
        }
        first.Metadata.Continue = null;
        first.Metadata.RemainingItemCount = null;
        return first;
    }
}

public sealed record ListWatchOptions
{
    public string? LabelSelector { get; init; }
    public string? FieldSelector { get; init; }
    public int PageSize { get; init; } = 500;
    /// <summary>Asked of the server for each watch so connections are refreshed now and then; null: none.</summary>
    public int? WatchTimeoutSeconds { get; init; }
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(200);
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// The list-then-watch loop of one resource (client-go's reflector in small): lists, watches from the list's
/// resourceVersion, resumes from the last seen resourceVersion when the server closes the stream, lists again
/// after 410 Gone and then reports only the difference to what it had reported (ADDED / MODIFIED / DELETED), so
/// no change is lost and none reported twice. Failures back off exponentially with jitter. Bookmarks only move
/// the resourceVersion and are not reported.
/// </summary>
public sealed class ListWatch<T> where T : class, IKubernetesObject
{
    private readonly IKubeResourceClient<T> _client;
    private readonly string? _namespace;
    private readonly ListWatchOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Dictionary<ObjectKeyText, T> _known = [];

    public ListWatch(IKubeResourceClient<T> client, string? ns, ListWatchOptions? options = null, ILogger? logger = null,
        TimeProvider? time = null)
    {
        _client = client;
        _namespace = ns;
        _options = options ?? new ListWatchOptions();
        _logger = logger ?? NullLogger.Instance;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The last resourceVersion seen (list, event or bookmark).</summary>
    public string? ResourceVersion { get; private set; }

    /// <summary>How many times the loop listed (1 + relists after 410).</summary>
    public int Lists { get; private set; }

    private string Resource => _client.Type.Plural;

    public async IAsyncEnumerable<WatchEvent<T>> RunAsync([EnumeratorCancellation] CancellationToken ct)
    {
        var backoff = _options.InitialBackoff;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            Exception? failure = null;
            if (ResourceVersion is null)
            {
                KubeList<T>? list = null;
                try
                {
                    list = await _client.ListAllAsync(_namespace,
                        new ListOptions(_options.LabelSelector, _options.FieldSelector), ct, _options.PageSize).ConfigureAwait(false);
                }
                catch (Exception e) when (e is KubeApiException or KubeUnavailableException) { failure = e; }
                if (list is not null)
                {
                    Lists++;
                    Log.Listed(_logger, list.Items.Count, Resource, list.Metadata.ResourceVersion ?? "");
                    foreach (var ev in Replace(list.Items)) yield return ev;
                    ResourceVersion = list.Metadata.ResourceVersion ?? "";
                }
            }

            if (failure is null)
            {
                Log.WatchStarted(_logger, Resource, ResourceVersion!);
                var watch = _client.WatchAsync(_namespace,
                    new WatchOptions(ResourceVersion, _options.LabelSelector, _options.FieldSelector, AllowBookmarks: true,
                        _options.WatchTimeoutSeconds), ct).GetAsyncEnumerator(ct);
                await using (watch.ConfigureAwait(false))
                {
                    while (true)
                    {
                        bool more;
                        try { more = await watch.MoveNextAsync().ConfigureAwait(false); }
                        catch (ResourceExpiredException)
                        {
                            Log.WatchExpired(_logger, Resource, ResourceVersion ?? "");
                            ResourceVersion = null;
                            break;
                        }
                        catch (Exception e) when (e is KubeApiException or KubeUnavailableException) { failure = e; break; }
                        if (!more)
                        {
                            Log.WatchClosed(_logger, Resource, ResourceVersion ?? "");
                            break;
                        }
                        var ev = watch.Current;
                        backoff = _options.InitialBackoff;
                        if (ev.Object.Metadata.ResourceVersion is { Length: > 0 } rv) ResourceVersion = rv;
                        if (ev.Type == WatchEventType.Bookmark) continue;
                        var key = new ObjectKeyText(ev.Object.Metadata.Namespace, ev.Object.Metadata.Name ?? "");
                        if (ev.Type == WatchEventType.Deleted) _known.Remove(key);
                        else _known[key] = ev.Object;
                        yield return ev;
                    }
                }
            }

            if (failure is not null)
            {
                var delay = Jitter(backoff);
                Log.ListWatchFailed(_logger, failure, Resource, (long)delay.TotalMilliseconds);
                await Task.Delay(delay, _time, ct).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxBackoff.Ticks));
            }
        }
    }

    /// <summary>The difference between what was reported and a fresh list, as events; the list becomes the truth.</summary>
    private List<WatchEvent<T>> Replace(List<T> items)
    {
        var events = new List<WatchEvent<T>>();
        var fresh = new Dictionary<ObjectKeyText, T>(items.Count);
        foreach (var item in items)
        {
            var key = new ObjectKeyText(item.Metadata.Namespace, item.Metadata.Name ?? "");
            fresh[key] = item;
            if (!_known.TryGetValue(key, out var old)) events.Add(new(WatchEventType.Added, item));
            else if (old.Metadata.ResourceVersion != item.Metadata.ResourceVersion) events.Add(new(WatchEventType.Modified, item));
        }
        foreach (var (key, old) in _known)
            if (!fresh.ContainsKey(key)) events.Add(new(WatchEventType.Deleted, old));
        _known.Clear();
        foreach (var (key, item) in fresh) _known[key] = item;
        return events;
    }

    private static TimeSpan Jitter(TimeSpan backoff)
        => backoff + TimeSpan.FromTicks((long)(backoff.Ticks * 0.5 * Random.Shared.NextDouble()));

    private readonly record struct ObjectKeyText(string? Namespace, string Name);
}

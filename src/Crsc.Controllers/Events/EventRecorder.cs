using System.Globalization;
using System.Threading.Channels;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Events;

/// <summary>
/// Records Kubernetes Events on objects (what <c>kubectl describe</c> shows). Never blocks and never throws:
/// events are written in the background and a failed write is logged and dropped.
/// </summary>
public interface IEventRecorder
{
    /// <param name="regarding">the object the event is about (its kind, apiVersion, namespace, name, uid)</param>
    /// <param name="type"><see cref="CoreEvent.Normal"/> or <see cref="CoreEvent.Warning"/></param>
    /// <param name="reason">UpperCamelCase, e.g. <c>CheckpointCreated</c></param>
    void Record(IKubernetesObject regarding, string type, string reason, string message);
}

public static class EventRecorderExtensions
{
    public static void Normal(this IEventRecorder recorder, IKubernetesObject regarding, string reason, string message)
        => recorder.Record(regarding, CoreEvent.Normal, reason, message);

    public static void Warning(this IEventRecorder recorder, IKubernetesObject regarding, string reason, string message)
        => recorder.Record(regarding, CoreEvent.Warning, reason, message);
}

/// <summary>
/// Where the recorder writes. The API sink writes at once; a later on-disk outbox implements the same two
/// operations to publish them, in order, when the API server is back.
/// </summary>
public interface IEventSink
{
    /// <summary>Creates <paramref name="ev"/> (its name is chosen by the recorder).</summary>
    Task CreateAsync(CoreEvent ev, CancellationToken ct);

    /// <summary>
    /// Records a repeat of an event created earlier: sets its <c>count</c> and <c>lastTimestamp</c>.
    /// </summary>
    /// <exception cref="NotFoundException">the earlier event is gone (expired); the recorder creates a new one</exception>
    Task UpdateRepeatAsync(CoreEvent ev, CancellationToken ct);
}

/// <summary>Writes events straight to the API server: create, and a merge patch of count/lastTimestamp for repeats.</summary>
public sealed class ApiEventSink(IKubeResourceClient<CoreEvent> events) : IEventSink
{
    public Task CreateAsync(CoreEvent ev, CancellationToken ct) => events.CreateAsync(ev, ct);

    public Task UpdateRepeatAsync(CoreEvent ev, CancellationToken ct)
    {
        var last = (ev.LastTimestamp ?? DateTimeOffset.UnixEpoch).UtcDateTime
            .ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var patch = string.Create(CultureInfo.InvariantCulture, $$"""{"count":{{ev.Count ?? 1}},"lastTimestamp":"{{last}}"}""");
        return events.PatchAsync(ev.Metadata.Namespace, ev.Metadata.Name!, PatchType.Merge, patch, ct);
    }
}

public sealed record EventRecorderOptions
{
    /// <summary><c>source.component</c> and <c>reportingComponent</c>.</summary>
    public string Component { get; init; } = "crsc";
    /// <summary><c>source.host</c>: the node name.</summary>
    public string? Host { get; init; }
    /// <summary><c>reportingInstance</c>: which daemon (e.g. its leader-election identity).</summary>
    public string? ReportingInstance { get; init; }
    /// <summary>The same event again within this window raises the count of the first one (client-go: 10 min).</summary>
    public TimeSpan AggregationWindow { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>Events waiting to be written; more are dropped (and counted).</summary>
    public int QueueCapacity { get; init; } = 1000;
    /// <summary>Distinct events remembered for aggregation.</summary>
    public int CacheSize { get; init; } = 4096;
}

/// <summary>
/// The core/v1 event recorder. <see cref="Record"/> stamps the event and queues it; <see cref="RunAsync"/> writes
/// them in order to the <see cref="IEventSink"/>. A repeat (same object, type, reason and message) within the
/// aggregation window is not a new Event: the first one's count and lastTimestamp are updated instead.
/// </summary>
public sealed class EventRecorder : IEventRecorder
{
    private readonly Channel<CoreEvent> _pending;
    private readonly Dictionary<string, Seen> _seen = new(StringComparer.Ordinal);
    private readonly IEventSink _sink;
    private readonly EventRecorderOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private long _sequence;
    private long _dropped;

    public EventRecorder(IEventSink sink, EventRecorderOptions options, TimeProvider time, ILogger logger)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.QueueCapacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.CacheSize, 1);
        _sink = sink;
        _options = options;
        _time = time;
        _logger = logger;
        _pending = Channel.CreateBounded<CoreEvent>(new BoundedChannelOptions(options.QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full: counted as dropped
            SingleReader = true,
        });
    }

    /// <summary>Events dropped because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public void Record(IKubernetesObject regarding, string type, string reason, string message)
    {
        try
        {
            var now = _time.GetUtcNow();
            var meta = regarding.Metadata;
            var ev = new CoreEvent
            {
                InvolvedObject = new ObjectReference
                {
                    ApiVersion = regarding.ApiVersion,
                    Kind = regarding.Kind,
                    Namespace = string.IsNullOrEmpty(meta.Namespace) ? null : meta.Namespace,
                    Name = meta.Name,
                    Uid = meta.Uid,
                    ResourceVersion = meta.ResourceVersion,
                },
                Type = type,
                Reason = reason,
                Message = message,
                Source = new CoreEventSource { Component = _options.Component, Host = _options.Host },
                ReportingComponent = _options.Component,
                ReportingInstance = _options.ReportingInstance ?? _options.Host,
                FirstTimestamp = now,
                LastTimestamp = now,
                Count = 1,
            };
            ev.Metadata.Namespace = ev.InvolvedObject.Namespace ?? "default";
            if (!_pending.Writer.TryWrite(ev))
            {
                Interlocked.Increment(ref _dropped);
                Log.Dropped(_logger, reason, meta.Name ?? "");
            }
        }
        catch (Exception e)
        {
            // recording is best effort and must never fail the caller
            Log.RecordFailed(_logger, e, reason);
        }
    }

    /// <summary>Writes events as they come until <paramref name="ct"/> fires.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        try
        {
            while (await _pending.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
                await FlushAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>Writes every event queued so far.</summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        while (_pending.Reader.TryRead(out var ev))
        {
            try
            {
                await WriteAsync(ev, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                Log.WriteFailed(_logger, e, ev.Reason ?? "", ev.InvolvedObject.Name ?? "");
            }
        }
    }

    private async Task WriteAsync(CoreEvent ev, CancellationToken ct)
    {
        var key = CorrelationKey(ev);
        var now = ev.LastTimestamp!.Value;
        if (_seen.TryGetValue(key, out var seen) && now - seen.Last <= _options.AggregationWindow)
        {
            seen.Count++;
            seen.Last = now;
            var repeat = new CoreEvent
            {
                InvolvedObject = ev.InvolvedObject,
                Type = ev.Type,
                Reason = ev.Reason,
                Message = ev.Message,
                Source = ev.Source,
                ReportingComponent = ev.ReportingComponent,
                ReportingInstance = ev.ReportingInstance,
                FirstTimestamp = seen.First,
                LastTimestamp = now,
                Count = seen.Count,
            };
            repeat.Metadata.Namespace = seen.Namespace;
            repeat.Metadata.Name = seen.Name;
            try
            {
                await _sink.UpdateRepeatAsync(repeat, ct).ConfigureAwait(false);
                return;
            }
            catch (NotFoundException)
            {
                // the first one expired (events live about an hour): start a new one carrying the count
                repeat.Metadata.Name = NewName(ev);
                seen.Name = repeat.Metadata.Name;
                await _sink.CreateAsync(repeat, ct).ConfigureAwait(false);
                return;
            }
        }
        ev.Metadata.Name = NewName(ev);
        // remembered before writing: if the create fails, a repeat still has something to count on
        Remember(key, new Seen(ev.Metadata.Namespace!, ev.Metadata.Name, now));
        await _sink.CreateAsync(ev, ct).ConfigureAwait(false);
    }

    private void Remember(string key, Seen seen)
    {
        if (_seen.Count >= _options.CacheSize && !_seen.ContainsKey(key))
        {
            var oldest = _seen.MinBy(kv => kv.Value.Last).Key;
            _seen.Remove(oldest);
        }
        _seen[key] = seen;
    }

    private string NewName(CoreEvent ev)
    {
        // like client-go: <object>.<unique hex>; the sequence keeps two events of the same instant apart
        var unique = (_time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks * 100 + Interlocked.Increment(ref _sequence);
        var suffix = "." + unique.ToString("x", CultureInfo.InvariantCulture);
        var name = ev.InvolvedObject.Name ?? "event";
        if (name.Length + suffix.Length > 253) name = name[..(253 - suffix.Length)];
        return name + suffix;
    }

    private static string CorrelationKey(CoreEvent ev)
    {
        var o = ev.InvolvedObject;
        return string.Join('\u0000', ev.Source?.Component, ev.Source?.Host, o.ApiVersion, o.Kind, o.Namespace, o.Name,
            o.Uid, o.FieldPath, ev.Type, ev.Reason, ev.Message);
    }

    private sealed class Seen(string ns, string name, DateTimeOffset first)
    {
        public string Namespace { get; } = ns;
        public string Name { get; set; } = name;
        public DateTimeOffset First { get; } = first;
        public DateTimeOffset Last { get; set; } = first;
        public int Count { get; set; } = 1;
    }
}

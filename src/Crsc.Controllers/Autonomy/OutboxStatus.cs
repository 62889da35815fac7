using System.Globalization;
using Crsc.Controllers.Health;
using Crsc.Controllers.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Autonomy;

/// <summary>
/// The outbox's health entry (<c>outbox</c>: empty / "N record(s) waiting for the API server" / "outbox full: …",
/// the last two Degraded and naming the last failed publish attempt while there is one) and metrics (<c>crsc_outbox_pending_records</c>, <c>crsc_outbox_pending_bytes</c>,
/// <c>crsc_outbox_published_total</c>). <see cref="Refresh"/> after every append and acknowledgement.
/// </summary>
public sealed partial class OutboxStatus
{
    public const string Component = "outbox";

    private readonly IOutbox _outbox;
    private readonly HealthRegistry _health;
    private readonly ILogger _logger;
    private readonly Gauge _records;
    private readonly Gauge _bytes;
    private int _full;
    private string? _lastFailure;

    public OutboxStatus(IOutbox outbox, HealthRegistry health, MetricsRegistry metrics, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        _outbox = outbox;
        _health = health;
        _logger = logger ?? NullLogger.Instance;
        _records = metrics.Gauge("crsc_outbox_pending_records", "Records in the on-disk outbox waiting for the API server");
        _bytes = metrics.Gauge("crsc_outbox_pending_bytes", "Bytes of the records in the on-disk outbox waiting for the API server");
        Published = metrics.Counter("crsc_outbox_published_total", "Outbox records published to the API server", "result");
    }

    /// <summary>By result: <c>published</c>, <c>existed</c> (already there, same object), <c>superseded</c>, <c>dropped</c>.</summary>
    public Counter Published { get; }

    /// <summary>Room that must stay free for offline checkpoints to go on (the records of one checkpoint).</summary>
    public long Reserve { get; init; } = 16 * 1024;

    /// <summary>Whether offline checkpoints pause: the outbox has less than <see cref="Reserve"/> bytes of room.</summary>
    public bool IsFull => _outbox.Usage.IsFull(Reserve);

    /// <summary>The outbox refused a record (<paramref name="what"/>): it is full.</summary>
    public void ReportRefused(string what, OutboxFullException e)
    {
        Log.Refused(_logger, what, e.Message);
        Refresh(forceFull: true);
    }

    /// <summary>
    /// Publishing the head record failed (<paramref name="reason"/>) and will be retried: the entry says so until a
    /// record is published, so an outbox stalled by a refusal (401/403) does not read like a plain wait.
    /// </summary>
    public void ReportPublishFailed(string reason)
    {
        Volatile.Write(ref _lastFailure, reason);
        Refresh(false);
    }

    /// <summary>A record was published: the last failure, if any, is over.</summary>
    public void ReportPublished() => Volatile.Write(ref _lastFailure, null);

    public void Refresh() => Refresh(false);

    private void Refresh(bool forceFull)
    {
        var usage = _outbox.Usage;
        _records.Set(usage.Records);
        _bytes.Set(usage.Bytes);
        var failure = Volatile.Read(ref _lastFailure) is { } f && usage.Records > 0 ? "; last attempt failed: " + f : "";
        var full = forceFull || usage.IsFull(Reserve);
        if (full)
        {
            var message = string.Create(CultureInfo.InvariantCulture,
                $"outbox full: {usage.Records} record(s), {usage.Bytes} of {usage.MaxBytes} bytes wait for the API server; offline checkpoints paused{failure}");
            if (Interlocked.Exchange(ref _full, 1) == 0) Log.Full(_logger, usage.Records, usage.Bytes, usage.MaxBytes);
            _health.Report(Component, HealthStatus.Degraded, message);
            return;
        }
        if (Interlocked.Exchange(ref _full, 0) == 1) Log.NotFull(_logger, usage.Bytes, usage.MaxBytes);
        if (usage.Records == 0) _health.Report(Component, HealthStatus.Healthy, "empty");
        else
            _health.Report(Component, HealthStatus.Degraded, string.Create(CultureInfo.InvariantCulture,
                $"{usage.Records} record(s) waiting for the API server ({usage.Bytes} bytes){failure}"));
    }

    private static partial class Log
    {
        [LoggerMessage(20301, LogLevel.Warning, "Outbox full: {Records} record(s), {Bytes} of {MaxBytes} bytes wait for the API server; offline checkpoints pause until they are published (outbox.maxBytes)")]
        public static partial void Full(ILogger logger, int records, long bytes, long maxBytes);

        [LoggerMessage(20302, LogLevel.Information, "Outbox has room again ({Bytes} of {MaxBytes} bytes); offline checkpoints go on")]
        public static partial void NotFull(ILogger logger, long bytes, long maxBytes);

        [LoggerMessage(20303, LogLevel.Warning, "Outbox refused {What}: {Reason}")]
        public static partial void Refused(ILogger logger, string what, string reason);
    }
}

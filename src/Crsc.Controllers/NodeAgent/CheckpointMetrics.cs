using Crsc.Controllers.Metrics;
using Crsc.Controllers.Storage;

namespace Crsc.Controllers.NodeAgent;

/// <summary>
/// The checkpoint path's metrics: <c>crsc_checkpoints_total{result}</c>, <c>crsc_checkpoint_duration_seconds{part}</c>
/// (part <c>runtime</c>: the runtime's checkpoint call; part <c>crsc</c>: everything else crsc does around it),
/// <c>crsc_checkpoint_archive_bytes</c> (the last archive as stored), <c>crsc_checkpoint_archive_bytes_total</c>
/// (sum of stored archives) and <c>crsc_store_bytes</c> (what the store holds). Register once per registry.
/// </summary>
public sealed class CheckpointMetrics
{
    public const string ResultSucceeded = "succeeded";
    public const string ResultFailed = "failed";
    public const string ResultTimeout = "timeout";
    public const string ResultRejected = "rejected";
    public const string ResultInvalid = "invalid";
    public const string ResultCanceled = "canceled";

    public CheckpointMetrics(MetricsRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        Registry = registry;
        Checkpoints = registry.Counter("crsc_checkpoints_total",
            "checkpoints executed on this node, by result (succeeded, failed, timeout, rejected, invalid, canceled)", "result");
        Duration = registry.Histogram("crsc_checkpoint_duration_seconds",
            "time of a checkpoint: part=runtime is the runtime's checkpoint call, part=crsc everything crsc adds around it",
            Histogram.DurationBuckets, "part");
        ArchiveBytes = registry.Gauge("crsc_checkpoint_archive_bytes", "size of the last committed archive as stored, in bytes");
        ArchiveBytesTotal = registry.Counter("crsc_checkpoint_archive_bytes_total", "bytes of all archives committed since the daemon started");
        StoreBytes = registry.Gauge("crsc_store_bytes", "bytes of committed archives in the node's checkpoint store");
    }

    public MetricsRegistry Registry { get; }
    public Counter Checkpoints { get; }
    public Histogram Duration { get; }
    public Gauge ArchiveBytes { get; }
    public Counter ArchiveBytesTotal { get; }
    public Gauge StoreBytes { get; }

    /// <summary>Sets <c>crsc_store_bytes</c> from the store's committed checkpoints.</summary>
    public void UpdateStoreBytes(ICheckpointStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        StoreBytes.Set(store.List().Sum(c => (double)c.Size));
    }
}

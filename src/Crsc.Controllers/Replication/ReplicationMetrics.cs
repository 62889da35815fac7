using Crsc.Controllers.Metrics;

namespace Crsc.Controllers.Replication;

/// <summary>
/// Replication's metrics: <c>crsc_replica_pushes_total{result}</c> (succeeded, failed: each try counts),
/// <c>crsc_replica_push_duration_seconds</c> (successful pushes) and <c>crsc_replica_deletions_total{result}</c>
/// (deleted, gone, refused, failed) of the manifests retention deletes. Register once per registry.
/// </summary>
public sealed class ReplicationMetrics
{
    public const string ResultSucceeded = "succeeded";
    public const string ResultFailed = "failed";
    public const string ResultDeleted = "deleted";
    public const string ResultGone = "gone";
    public const string ResultRefused = "refused";

    public ReplicationMetrics(MetricsRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        Pushes = registry.Counter("crsc_replica_pushes_total",
            "pushes of checkpoint images to the registry for schedules with replicate: Registry, by result (succeeded, failed)", "result");
        PushSeconds = registry.Histogram("crsc_replica_push_duration_seconds",
            "time of a successful push of a checkpoint image to the registry", Histogram.DurationBuckets);
        Deletions = registry.Counter("crsc_replica_deletions_total",
            "registry manifests of deleted checkpoints' copies, by result (deleted, gone, refused, failed)", "result");
    }

    public Counter Pushes { get; }
    public Histogram PushSeconds { get; }
    public Counter Deletions { get; }
}

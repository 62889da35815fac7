using System.Globalization;
using Crsc.Controllers.Health;
using Crsc.Controllers.NodeAgent;

namespace Crsc.Controllers.Storage;

/// <summary>What the store holds: its committed checkpoints and their stored bytes.</summary>
public readonly record struct StoreUsage(int Checkpoints, long Bytes);

/// <summary>
/// Keeps the <c>store</c> health entry ("N checkpoint(s), SIZE") and <c>crsc_store_bytes</c> following the node's
/// store: <see cref="Refresh"/> reads the store again; the daemon calls it when the store opens and after every change
/// the store reports (an ingest, a delete, retention). A store that cannot be listed reads Degraded, with the reason.
/// Thread-safe: refreshes are serialized, so the last one reports what the store held last.
/// </summary>
public sealed class StoreUsageReporter(ICheckpointStore store, HealthRegistry health, CheckpointMetrics? metrics = null,
    Func<long, string>? formatBytes = null)
{
    public const string Component = "store";

    private readonly Lock _gate = new();
    private StoreUsage? _last;
    private readonly Func<long, string> _formatBytes = formatBytes ?? (b => b.ToString(CultureInfo.InvariantCulture) + " B");

    /// <summary>What the last successful <see cref="Refresh"/> found (null before the first): no store read.</summary>
    public StoreUsage? Last
    {
        get { lock (_gate) return _last; }
    }

    /// <summary>Reads the store and reports it; null when it cannot be listed (the entry then says why).</summary>
    public StoreUsage? Refresh()
    {
        lock (_gate)
        {
            IReadOnlyList<CheckpointInfo> checkpoints;
            try
            {
                checkpoints = store.List();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CheckpointStoreException)
            {
                health.Report(Component, HealthStatus.Degraded, $"cannot list the store: {e.Message}");
                return null;
            }
            var usage = new StoreUsage(checkpoints.Count, checkpoints.Sum(c => c.Size));
            health.Report(Component, HealthStatus.Healthy, $"{usage.Checkpoints} checkpoint(s), {_formatBytes(usage.Bytes)}");
            metrics?.StoreBytes.Set(usage.Bytes);
            _last = usage;
            return usage;
        }
    }
}

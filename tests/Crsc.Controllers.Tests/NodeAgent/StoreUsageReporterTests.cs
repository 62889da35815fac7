using Crsc.Controllers.Health;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Storage;
using Crsc.Testing;

namespace Crsc.Controllers.Tests.NodeAgent;

public sealed class StoreUsageReporterTests
{
    private readonly ManualTimeProvider _time = new();
    private readonly FakeCheckpointStore _store;
    private readonly HealthRegistry _health;
    private readonly CheckpointMetrics _metrics = new(new MetricsRegistry());

    public StoreUsageReporterTests()
    {
        _store = new FakeCheckpointStore(_time);
        _health = new HealthRegistry(_time);
    }

    private (HealthStatus, string) Entry()
    {
        var e = Assert.Single(_health.Snapshot(), e => e.Component == StoreUsageReporter.Component);
        return (e.Status, e.Message);
    }

    [Fact]
    public void Each_refresh_reports_what_the_store_holds_now_in_the_health_entry_and_the_bytes_gauge()
    {
        var reporter = new StoreUsageReporter(_store, _health, _metrics);
        Assert.Null(reporter.Last);
        Assert.Equal(new StoreUsage(0, 0), reporter.Refresh());
        Assert.Equal((HealthStatus.Healthy, "0 checkpoint(s), 0 B"), Entry());
        Assert.Equal(0, _metrics.StoreBytes.Value());

        var first = _store.Add("shop", "web", "app", "web-0", _time.GetUtcNow());
        var second = _store.Add("shop", "web", "app", "web-0", _time.GetUtcNow());
        Assert.Equal(new StoreUsage(2, first.Size + second.Size), reporter.Refresh());
        Assert.Equal((HealthStatus.Healthy, $"2 checkpoint(s), {first.Size + second.Size} B"), Entry());
        Assert.Equal(first.Size + second.Size, _metrics.StoreBytes.Value());

        // Last is what the last refresh found, without reading the store: the delete is not in it until the next
        _store.Delete(first.Id);
        Assert.Equal(new StoreUsage(2, first.Size + second.Size), reporter.Last);
        Assert.Equal(new StoreUsage(1, second.Size), reporter.Refresh());
        Assert.Equal(new StoreUsage(1, second.Size), reporter.Last);
        Assert.Equal((HealthStatus.Healthy, $"1 checkpoint(s), {second.Size} B"), Entry());
        Assert.Equal(second.Size, _metrics.StoreBytes.Value());
    }

    [Fact]
    public void The_size_is_said_the_way_the_caller_formats_bytes_and_the_gauge_is_optional()
    {
        var info = _store.Add("shop", "web", "app", "web-0", _time.GetUtcNow());
        var reporter = new StoreUsageReporter(_store, _health, metrics: null, formatBytes: b => $"<{b}>");
        reporter.Refresh();
        Assert.Equal((HealthStatus.Healthy, $"1 checkpoint(s), <{info.Size}>"), Entry());
    }

    [Fact]
    public void A_store_that_cannot_be_listed_reads_degraded_with_the_reason_and_recovers_on_the_next_refresh()
    {
        var reporter = new StoreUsageReporter(_store, _health, _metrics);
        _store.Add("shop", "web", "app", "web-0", _time.GetUtcNow());
        reporter.Refresh();
        var bytes = _metrics.StoreBytes.Value();

        _store.ListError = new UnauthorizedAccessException("Access to the path '/var/lib/crsc/checkpoints/shop' is denied.");
        Assert.Null(reporter.Refresh());
        Assert.Equal((HealthStatus.Degraded, "cannot list the store: Access to the path '/var/lib/crsc/checkpoints/shop' is denied."), Entry());
        Assert.Equal(bytes, _metrics.StoreBytes.Value()); // the last known size stays

        _store.ListError = null;
        Assert.NotNull(reporter.Refresh());
        Assert.Equal(HealthStatus.Healthy, Entry().Item1);
    }
}

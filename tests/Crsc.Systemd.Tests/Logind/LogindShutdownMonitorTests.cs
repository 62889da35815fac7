using Crsc.Controllers.Health;
using Crsc.Controllers.Nodes;
using Crsc.Systemd.Logind;
using Crsc.Systemd.Tests.Support;
using Crsc.Testing;

namespace Crsc.Systemd.Tests.Logind;

/// <summary>The logind delay inhibitor against a real dbus-daemon, with a fake login1 service on it.</summary>
public sealed class LogindShutdownMonitorTests : IAsyncLifetime
{
    private readonly DBusTestBus _bus = new();
    private readonly HealthRegistry _health = new(TimeProvider.System);
    private readonly Listener _listener = new();
    private readonly RecordingLogger<LogindShutdownMonitor> _log = new();
    private readonly CancellationTokenSource _stop = new();
    private FakeLogind _logind = null!;
    private LogindShutdownMonitor _monitor = null!;
    private Task _running = Task.CompletedTask;

    /// <summary>Records what it is told; the shutdown work waits on <see cref="Gate"/>.</summary>
    private sealed class Listener : IShutdownListener
    {
        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource<TimeSpan> Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Cancelled;

        public async Task ShuttingDownAsync(TimeSpan budget, CancellationToken ct)
        {
            Started.TrySetResult(budget);
            await Gate.Task.WaitAsync(ct);
        }

        public void ShutdownCancelled() => Interlocked.Increment(ref Cancelled);
    }

    public async Task InitializeAsync()
    {
        _logind = await FakeLogind.StartAsync(_bus.Address);
        _logind.DelayMaxUSec = 8_000_000;
    }

    private async Task StartAsync(string? address = null, bool held = true)
    {
        _monitor = new LogindShutdownMonitor(new LogindShutdownOptions { BusAddress = address ?? _bus.Address }, _listener, _health,
            TimeProvider.System, _log);
        _running = _monitor.RunAsync(_stop.Token);
        if (held) await Eventually.TrueAsync(() => _monitor.InhibitorHeld, "the inhibitor taken");
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Gate.TrySetResult();
        await _running.WaitAsync(TimeSpan.FromSeconds(20));
        _logind.Dispose();
        _bus.Dispose();
        _stop.Dispose();
    }

    private HealthEntry Entry() => _health.Snapshot().Single(e => e.Component == LogindShutdownMonitor.Component);

    [Fact]
    public async Task The_delay_inhibitor_is_taken_at_start_and_its_fd_held()
    {
        await StartAsync();
        Assert.Equal([("shutdown", "crsc", "checkpointing containers before shutdown", "delay")], _logind.Inhibits);
        Assert.Equal(TimeSpan.FromSeconds(8), _monitor.DelayMax);
        Assert.False(_logind.Released[0].IsCompleted); // the fd came over the bus and is open
        Assert.Equal((HealthStatus.Healthy, "delay inhibitor held (logind allows 8 s)"), (Entry().Status, Entry().Message));
    }

    [Fact]
    public async Task PrepareForShutdown_true_runs_the_work_within_the_delay_and_closes_the_fd_after_not_before()
    {
        await StartAsync();
        _logind.PrepareForShutdown(true);
        var budget = await _listener.Started.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(TimeSpan.FromSeconds(7.5), budget); // the delay less the margin

        // the work runs: the inhibitor is still held
        await Task.Delay(300);
        Assert.False(_logind.Released[0].IsCompleted);
        Assert.True(_monitor.InhibitorHeld);

        _listener.Gate.SetResult();
        await _logind.Released[0].WaitAsync(TimeSpan.FromSeconds(20));
        await Eventually.TrueAsync(() => _monitor.Shutdowns == 1, "the shutdown counted");
        Assert.False(_monitor.InhibitorHeld);
    }

    [Fact]
    public async Task PrepareForShutdown_false_does_no_work_and_keeps_the_inhibitor()
    {
        await StartAsync();
        _logind.PrepareForShutdown(false);
        await Eventually.TrueAsync(() => Volatile.Read(ref _listener.Cancelled) == 1, "the cancel seen");
        Assert.False(_listener.Started.Task.IsCompleted);
        Assert.True(_monitor.InhibitorHeld);
        Assert.Single(_logind.Inhibits);
        Assert.False(_logind.Released[0].IsCompleted);
    }

    [Fact]
    public async Task A_shutdown_cancelled_after_the_release_takes_the_inhibitor_again()
    {
        await StartAsync();
        _listener.Gate.SetResult();
        _logind.PrepareForShutdown(true);
        await _logind.Released[0].WaitAsync(TimeSpan.FromSeconds(20));
        _logind.PrepareForShutdown(false);
        await Eventually.TrueAsync(() => _logind.Inhibits.Count == 2 && _monitor.InhibitorHeld, "the inhibitor taken again");
        Assert.False(_logind.Released[1].IsCompleted);
    }

    [Fact]
    public async Task The_bus_going_away_is_degraded_not_fatal()
    {
        await StartAsync();
        _bus.Stop();
        await Eventually.TrueAsync(() => Entry().Status == HealthStatus.Degraded, "degraded");
        Assert.StartsWith("system bus connection lost", Entry().Message);
        await _running.WaitAsync(TimeSpan.FromSeconds(20)); // returns; never throws
    }

    [Fact]
    public async Task No_bus_is_a_clear_log_line_and_degraded()
    {
        await StartAsync("unix:path=/nonexistent/crsc-test/bus", held: false);
        await _running.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(HealthStatus.Degraded, Entry().Status);
        Assert.Contains("containers are not checkpointed at shutdown", Entry().Message);
        Assert.Contains(_log.Entries, e => e.Id.Id == 60501 && e.Message.Contains("/nonexistent/crsc-test/bus"));
    }

    [Fact]
    public async Task A_bus_without_logind_is_degraded()
    {
        _logind.Dispose(); // the name goes with its connection
        await StartAsync(held: false);
        await _running.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(HealthStatus.Degraded, Entry().Status);
        Assert.StartsWith("logind not available", Entry().Message);
    }
}

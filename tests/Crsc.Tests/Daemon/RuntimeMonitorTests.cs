using Crsc.Configuration;
using Crsc.Controllers.Health;
using Crsc.Cri;
using Crsc.Daemon;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Tests.Daemon;

/// <summary>
/// The runtime monitor's first probe, which READY=1 waits for (bounded) so that systemd's STATUS= line names the
/// runtime from the start: a runtime that answers late is waited for, a refused socket ends the wait at once, and a
/// hung runtime costs at most the limit.
/// </summary>
public sealed class RuntimeMonitorTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly HealthRegistry _health = new(TimeProvider.System);
    private FakeCriServer? _cri;
    private CriContainerRuntime? _runtime;
    private RuntimeMonitor? _monitor;

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit 2 runs IAsyncLifetime.DisposeAsync on a test class, never IAsyncDisposable's: cleanup must be here
    public async Task DisposeAsync()
    {
        if (_monitor is not null)
        {
            await _monitor.StopAsync(CancellationToken.None);
            _monitor.Dispose();
        }
        _runtime?.Dispose();
        if (_cri is not null) await _cri.DisposeAsync();
        _dir.Dispose();
    }

    private RuntimeMonitor Monitor(string endpoint, TimeProvider time)
    {
        _runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = endpoint });
        var options = new CrscOptions { RuntimeEndpoint = endpoint, CheckpointDir = _dir.Combine("checkpoints") };
        var store = new Crsc.Storage.DiskCheckpointStore(new Crsc.Storage.DiskCheckpointStoreOptions
        {
            CheckpointDirectory = _dir.Combine("checkpoints"), StagingDirectory = _dir.Combine("staging"), NodeName = "n1",
            Key = Crsc.Storage.Security.NodeKey.Generate(),
        });
        var capabilities = new DaemonNodeReportSource(_runtime, new Crsc.Controllers.Storage.StoreUsageReporter(store, new HealthRegistry(time)),
            new Crsc.Controllers.NodeAgent.CheckpointMetrics(new Crsc.Controllers.Metrics.MetricsRegistry()), options, time);
        return _monitor = new RuntimeMonitor(_runtime, options, _health, time, NullLogger<RuntimeMonitor>.Instance, capabilities);
    }

    private string? Runtime() => _health.Snapshot().FirstOrDefault(e => e.Component == NodeCheckpointing.RuntimeComponent)?.Message;

    [Fact]
    public async Task A_runtime_that_answers_late_is_waited_for_and_named()
    {
        _cri = await FakeCriServer.StartAsync();
        _cri.Inject("Version", new CriFault { Delay = TimeSpan.FromMilliseconds(500), Times = 1 });
        var monitor = Monitor(_cri.Endpoint, TimeProvider.System);
        await monitor.StartAsync(CancellationToken.None);

        Assert.True(await monitor.WaitForFirstProbeAsync(TimeSpan.FromSeconds(30), CancellationToken.None));
        // named first; then what the probe could tell of a runtime it does not know: nothing, said as such
        Assert.Equal("fake-cri 1.0.0; checkpoint: unknown; restore: unknown", Runtime());
        Assert.Single(_cri.CallsTo("Version"));
    }

    /// <summary>
    /// A containerd 2.3.4 that has restore off (no enable_experimental_restore_via_create) is degraded, and /readyz and
    /// STATUS= say so in words; one that restores is not.
    /// </summary>
    [Theory]
    [InlineData(false, HealthStatus.Degraded, "containerd v2.3.4; checkpoint: unknown; restore: disabled by runtime config (crsc preflight shows the setting)")]
    [InlineData(true, HealthStatus.Healthy, "containerd v2.3.4; checkpoint: unknown; restore: unknown")]
    public async Task The_runtime_entry_says_what_the_runtime_can_do(bool restoreViaCreate, HealthStatus expected, string message)
    {
        _cri = await FakeCriServer.StartAsync();
        _cri.RuntimeName = "containerd";
        _cri.RuntimeVersion = "v2.3.4";
        _cri.StatusInfo["config"] = RuntimeAnswers.ContainerdConfigJson(restoreViaCreate: restoreViaCreate);
        var monitor = Monitor(_cri.Endpoint, TimeProvider.System);
        await monitor.StartAsync(CancellationToken.None);

        Assert.True(await monitor.WaitForFirstProbeAsync(TimeSpan.FromSeconds(30), CancellationToken.None));
        // whether CRIU is there is not checked from the daemon when criu is not on its own path (this machine):
        // checkpoint then is "unknown", never "missing"
        var entry = _health.Snapshot().Single(e => e.Component == NodeCheckpointing.RuntimeComponent);
        if (await CriuOnPathAsync())
        {
            message = message.Replace("checkpoint: unknown; ", "", StringComparison.Ordinal).Replace("; restore: unknown", "", StringComparison.Ordinal);
        }
        Assert.Equal(message, entry.Message);
        Assert.Equal(expected, entry.Status);
    }

    private static async Task<bool> CriuOnPathAsync()
    {
        var r = await new Crsc.Preflight.SystemProgramRunner().RunAsync("criu", ["--version"], TimeSpan.FromSeconds(10), CancellationToken.None);
        return r.Started && r.ExitCode == 0;
    }

    [Fact]
    public async Task A_missing_socket_ends_the_wait_with_the_runtime_unreachable()
    {
        var monitor = Monitor("unix://" + _dir.Combine("no-runtime.sock"), TimeProvider.System);
        await monitor.StartAsync(CancellationToken.None);

        Assert.True(await monitor.WaitForFirstProbeAsync(TimeSpan.FromSeconds(30), CancellationToken.None));
        Assert.StartsWith("unreachable: ", Runtime());
        Assert.Equal(HealthStatus.Degraded, _health.Overall);
    }

    [Fact]
    public async Task A_hung_runtime_costs_the_limit_and_no_more()
    {
        _cri = await FakeCriServer.StartAsync();
        _cri.Inject("Version", new CriFault { Delay = TimeSpan.FromHours(1), Times = 1 });
        var time = new ManualTimeProvider();
        var monitor = Monitor(_cri.Endpoint, time);
        await monitor.StartAsync(CancellationToken.None);
        await Eventually.TrueAsync(() => _cri.CallsTo("Version").Any(), "the first probe reached the runtime");

        var wait = monitor.WaitForFirstProbeAsync(TimeSpan.FromSeconds(1), CancellationToken.None);
        await Eventually.TrueAsync(() => time.ActiveTimers >= 1, "the wait's timer");
        Assert.False(wait.IsCompleted, "the probe has not answered and the limit has not passed");
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(await wait);
        Assert.Null(Runtime());
    }

    [Fact]
    public async Task A_stopped_monitor_releases_a_waiter()
    {
        _cri = await FakeCriServer.StartAsync();
        _cri.Inject("Version", new CriFault { Delay = TimeSpan.FromHours(1), Times = 1 });
        var monitor = Monitor(_cri.Endpoint, new ManualTimeProvider());
        await monitor.StartAsync(CancellationToken.None);
        await Eventually.TrueAsync(() => _cri.CallsTo("Version").Any(), "the first probe reached the runtime");

        var wait = monitor.WaitForFirstProbeAsync(TimeSpan.FromHours(1), CancellationToken.None);
        await monitor.StopAsync(CancellationToken.None);
        Assert.True(await wait.WaitAsync(TimeSpan.FromSeconds(20)));
    }
}

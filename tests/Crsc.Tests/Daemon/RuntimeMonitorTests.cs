using Crsc.Configuration;
using Crsc.Controllers.Health;
using Crsc.Cri;
using Crsc.Daemon;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Microsoft.Extensions.Logging;

namespace Crsc.Tests.Daemon;

/// <summary>
/// The runtime monitor's first probe, which READY=1 waits for (bounded) so that systemd's STATUS= line names the
/// runtime from the start: a runtime that answers late is waited for, a refused socket ends the wait at once, and a
/// hung runtime costs at most the limit. Then its cadence: a full probe every interval, and at once when the runtime's
/// socket changed (recreated), went or came back, told apart by one stat every short check.
/// </summary>
public sealed class RuntimeMonitorTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly HealthRegistry _health = new(TimeProvider.System);
    private readonly RecordingLogger _log = new();
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
        return _monitor = new RuntimeMonitor(_runtime, options, _health, time, _log, capabilities);
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

    // --- cadence: the interval, and a restart seen by the socket's identity ---

    private static readonly int ChecksPerInterval = (int)(RuntimeMonitor.Interval / RuntimeMonitor.RestartCheck);

    /// <summary>Until the monitor is between probes, waiting for its next check (its only timer on the test's clock).</summary>
    private static Task IdleAsync(ManualTimeProvider time) =>
        Eventually.TrueAsync(() => time.ActiveTimers == 1, "the monitor waits for its next check");

    /// <summary>One short check's worth of time, then until the monitor waits again (whatever it probed, done).</summary>
    private static async Task CheckAsync(ManualTimeProvider time)
    {
        await IdleAsync(time);
        time.Advance(RuntimeMonitor.RestartCheck);
        await IdleAsync(time);
    }

    private async Task<(RuntimeMonitor Monitor, ManualTimeProvider Time)> StartedAsync(string socket)
    {
        var time = new ManualTimeProvider();
        var monitor = Monitor("unix://" + socket, time);
        await monitor.StartAsync(CancellationToken.None);
        await IdleAsync(time);
        return (monitor, time);
    }

    /// <summary>
    /// The runtime restarted: the old one gone, a new one listening on a new socket at the same path. The old socket is
    /// kept under another name, so the new one cannot get its inode back: deleted and recreated within the same tick of
    /// the kernel's coarse clock (a test, not a runtime's restart), the two would have one device, inode and change time.
    /// </summary>
    private async Task RestartRuntimeAsync(string socket)
    {
        File.Move(socket, socket + ".old");
        await _cri!.DisposeAsync();
        _cri = await FakeCriServer.StartAsync(socket);
    }

    private string[] Logged(int eventId) => [.. _log.Entries.Where(e => e.Id == eventId).Select(e => e.Message)];

    [Fact]
    public async Task Asked_to_probe_now_it_probes_at_once_not_at_the_next_interval()
    {
        var socket = _dir.Combine("cri.sock");
        _cri = await FakeCriServer.StartAsync(socket);
        var (monitor, time) = await StartedAsync(socket);
        Assert.Single(_cri.CallsTo("Version"));

        monitor.ProbeNow("the runtime refused Restore shop/r1");

        await Eventually.TrueAsync(() => _cri.CallsTo("Version").Count() == 2, "probed again without any time passing");
        Assert.Contains(_log.Entries, e => e.Id == 70605 && e.Message.Contains("refused Restore shop/r1", StringComparison.Ordinal));
        // and then the interval again: one ask, one probe
        await IdleAsync(time);
        for (var i = 1; i < ChecksPerInterval; i++) await CheckAsync(time);
        Assert.Equal(2, _cri.CallsTo("Version").Count());
    }

    [Fact]
    public async Task An_unchanged_socket_is_probed_every_interval_and_no_more()
    {
        var socket = _dir.Combine("cri.sock");
        _cri = await FakeCriServer.StartAsync(socket);
        var (_, time) = await StartedAsync(socket);
        Assert.Single(_cri.CallsTo("Version"));

        for (var i = 1; i < ChecksPerInterval; i++)
        {
            await CheckAsync(time);
            Assert.Single(_cri.CallsTo("Version"));
        }
        await CheckAsync(time);
        Assert.Equal(2, _cri.CallsTo("Version").Count());
        Assert.Empty(Logged(RestartedId));
    }

    [Fact]
    public async Task A_runtime_that_restarted_is_probed_again_at_the_next_check_not_the_next_interval()
    {
        var socket = _dir.Combine("cri.sock");
        _cri = await FakeCriServer.StartAsync(socket);
        var (_, time) = await StartedAsync(socket);
        var start = time.GetUtcNow();

        await RestartRuntimeAsync(socket);
        await CheckAsync(time);

        // seen at the first check, and probed at once
        Assert.Equal(RuntimeMonitor.RestartCheck, time.GetUtcNow() - start);
        var restarted = Assert.Single(Logged(RestartedId));
        Assert.Equal($"Container runtime at unix://{socket} restarted (its socket {socket} changed); probing it again", restarted);
        if (!_cri.CallsTo("Version").Any())
        {
            // that probe met the old runtime's connection as it closed (the client had not yet seen its GOAWAY): asked
            // again at the next check, not the next interval
            Assert.StartsWith("unreachable: ", Runtime());
            await CheckAsync(time);
        }
        Assert.Single(_cri.CallsTo("Version")); // the new runtime's
        Assert.StartsWith("fake-cri 1.0.0", Runtime());
        start = time.GetUtcNow();

        // probed once for it: the new socket is the one looked at from then on, the interval starts again
        for (var i = 1; i < ChecksPerInterval; i++) await CheckAsync(time);
        Assert.Single(_cri.CallsTo("Version"));
        await CheckAsync(time);
        Assert.Equal(RuntimeMonitor.Interval, time.GetUtcNow() - start);
        Assert.Equal(2, _cri.CallsTo("Version").Count());
        Assert.Single(Logged(RestartedId));
    }

    /// <summary>
    /// A runtime binds its socket a moment before it serves (containerd: "server is not initialized yet"): after its
    /// socket appeared it is asked at every check for <see cref="RuntimeMonitor.RestartGrace"/>, then every interval.
    /// </summary>
    [Fact]
    public async Task A_runtime_not_serving_yet_on_its_new_socket_is_asked_at_every_check_for_a_while()
    {
        var socket = _dir.Combine("cri.sock");
        var (_, time) = await StartedAsync(socket);

        _cri = await FakeCriServer.StartAsync(socket);
        _cri.Inject("Version", CriFault.Error(Crsc.Cri.Grpc.GrpcStatusCode.Unknown, "server is not initialized yet"));
        await CheckAsync(time);
        Assert.Single(_cri.CallsTo("Version"));
        Assert.Contains("server is not initialized yet", Runtime());

        var graceChecks = (int)(RuntimeMonitor.RestartGrace / RuntimeMonitor.RestartCheck);
        for (var i = 0; i < graceChecks; i++)
        {
            await CheckAsync(time);
            Assert.Equal(2 + i, _cri.CallsTo("Version").Count());
        }
        // still not serving when the grace is over: back to the interval (a stale socket is not connected to every check)
        for (var i = 1; i < ChecksPerInterval; i++) await CheckAsync(time);
        Assert.Equal(1 + graceChecks, _cri.CallsTo("Version").Count());
        await CheckAsync(time);
        Assert.Equal(2 + graceChecks, _cri.CallsTo("Version").Count());

        // and one that serves at last is named
        _cri.ClearFaults();
        for (var i = 0; i < ChecksPerInterval; i++) await CheckAsync(time);
        Assert.StartsWith("fake-cri 1.0.0", Runtime());
    }

    [Fact]
    public async Task A_runtime_that_stops_and_comes_back_is_probed_at_the_next_check_each_time()
    {
        var socket = _dir.Combine("cri.sock");
        _cri = await FakeCriServer.StartAsync(socket);
        var (_, time) = await StartedAsync(socket);
        Assert.StartsWith("fake-cri 1.0.0", Runtime());

        await _cri.DisposeAsync();
        File.Delete(socket);
        await CheckAsync(time);
        Assert.StartsWith("unreachable: ", Runtime());

        _cri = await FakeCriServer.StartAsync(socket);
        _cri.RuntimeVersion = "1.1.0";
        await CheckAsync(time);
        Assert.Single(_cri.CallsTo("Version"));
        Assert.StartsWith("fake-cri 1.1.0", Runtime());
        // gone and back are said by the unreachable and reachable lines, not as a restart
        Assert.Single(Logged(UnreachableId));
        Assert.Equal(2, Logged(ReachableId).Length);
        Assert.Empty(Logged(RestartedId));
    }

    [Fact]
    public async Task A_runtime_that_was_never_there_is_probed_when_its_socket_appears()
    {
        var socket = _dir.Combine("cri.sock");
        var (_, time) = await StartedAsync(socket);
        Assert.StartsWith("unreachable: ", Runtime());

        _cri = await FakeCriServer.StartAsync(socket);
        await CheckAsync(time);
        Assert.Single(_cri.CallsTo("Version"));
        Assert.StartsWith("fake-cri 1.0.0", Runtime());
    }

    /// <summary>
    /// A runtime restarted behind a socket that stays (socket activation) shows by its Version answer at the next
    /// probe: the restart is said, and so is what the new version can do, even when it is the same as before.
    /// </summary>
    [Fact]
    public async Task Another_runtime_version_is_said_as_a_restart_and_its_capabilities_again()
    {
        var socket = _dir.Combine("cri.sock");
        _cri = await FakeCriServer.StartAsync(socket);
        var (_, time) = await StartedAsync(socket);
        var first = Assert.Single(Logged(CapabilitiesId));
        Assert.StartsWith("Container runtime fake-cri 1.0.0: ", first);

        _cri.RuntimeVersion = "2.0.0";
        for (var i = 0; i < ChecksPerInterval; i++) await CheckAsync(time);

        Assert.Equal(2, _cri.CallsTo("Version").Count());
        Assert.StartsWith("fake-cri 2.0.0", Runtime());
        Assert.Equal($"Container runtime at unix://{socket} restarted (was fake-cri 1.0.0, now fake-cri 2.0.0); probing it again",
            Assert.Single(Logged(RestartedId)));
        Assert.Equal(["Container runtime fake-cri 1.0.0: ", "Container runtime fake-cri 2.0.0: "],
            Logged(CapabilitiesId).Select(m => m[..(m.IndexOf(':', StringComparison.Ordinal) + 2)]));
        Assert.Equal(first.Replace("1.0.0", "2.0.0", StringComparison.Ordinal), Logged(CapabilitiesId)[1]);

        // the same version at the next probe: nothing said again
        for (var i = 0; i < ChecksPerInterval; i++) await CheckAsync(time);
        Assert.Equal(3, _cri.CallsTo("Version").Count());
        Assert.Single(Logged(RestartedId));
        Assert.Equal(2, Logged(CapabilitiesId).Length);
    }

    private const int ReachableId = 70601, UnreachableId = 70602, CapabilitiesId = 70603, RestartedId = 70604;

    private sealed class RecordingLogger : ILogger<RuntimeMonitor>
    {
        private readonly Lock _gate = new();
        private readonly List<(int Id, string Message)> _entries = [];

        public IReadOnlyList<(int Id, string Message)> Entries { get { lock (_gate) return [.. _entries]; } }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_gate) _entries.Add((eventId.Id, formatter(state, exception)));
        }
    }
}

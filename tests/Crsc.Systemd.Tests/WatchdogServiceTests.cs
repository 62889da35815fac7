using Crsc.Controllers.Health;
using Crsc.Systemd.Tests.Support;
using Crsc.Testing;

namespace Crsc.Systemd.Tests;

public sealed class WatchdogServiceTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Half = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Pings_at_half_the_interval_only_while_not_unhealthy()
    {
        var time = new ManualTimeProvider();
        var health = new HealthRegistry(time);
        using var systemd = DatagramReceiver.BindAbstract();
        using var notifier = new SystemdNotifier(systemd.Address);
        using var watchdog = new WatchdogService(notifier, health, new WatchdogSettings(Interval), time, new RecordingLogger<WatchdogService>());
        Assert.True(watchdog.IsEnabled);

        await watchdog.StartAsync(CancellationToken.None);
        Assert.Equal("1", (await systemd.ReceiveNotifyAsync("the first ping, at start"))["WATCHDOG"]);
        await Eventually.TrueAsync(() => watchdog.Ticks == 1, "first tick counted");

        // not before half the interval
        time.Advance(Half - TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, watchdog.Ticks);
        systemd.AssertNothingPending("half the interval has not passed");

        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal("1", (await systemd.ReceiveNotifyAsync("the ping at half the interval"))["WATCHDOG"]);
        await Eventually.TrueAsync(() => watchdog.Ticks == 2, "second tick");

        // degraded still pings: the daemon works, with less
        health.Report("kube", HealthStatus.Degraded, "api-server unreachable");
        time.Advance(Half);
        await systemd.ReceiveNotifyAsync("ping while degraded");
        await Eventually.TrueAsync(() => watchdog.Ticks == 3, "third tick");

        // unhealthy: ticks go on, pings stop, so systemd's watchdog fires
        health.Report("runtime", HealthStatus.Unhealthy, "CRI socket gone");
        for (var tick = 4; tick <= 6; tick++)
        {
            time.Advance(Half);
            await Eventually.TrueAsync(() => watchdog.Ticks == tick, $"tick {tick} while unhealthy");
            systemd.AssertNothingPending($"unhealthy at tick {tick}");
        }
        Assert.Equal(3, watchdog.Pings);

        // healthy again: pings resume on the next tick
        health.Report("runtime", HealthStatus.Healthy, "ok");
        time.Advance(Half);
        Assert.Equal("1", (await systemd.ReceiveNotifyAsync("ping after recovery"))["WATCHDOG"]);
        await Eventually.TrueAsync(() => watchdog.Pings == 4, "fourth ping counted");

        await watchdog.StopAsync(CancellationToken.None);
        time.Advance(Half * 3);
        systemd.AssertNothingPending("stopped");
    }

    [Fact]
    public async Task Does_nothing_when_systemd_set_no_watchdog()
    {
        var time = new ManualTimeProvider();
        using var systemd = DatagramReceiver.BindAbstract();
        using var notifier = new SystemdNotifier(systemd.Address);
        using var watchdog = new WatchdogService(notifier, new HealthRegistry(time),
            WatchdogSettings.Parse(null, null, Environment.ProcessId), time, new RecordingLogger<WatchdogService>());
        Assert.False(watchdog.IsEnabled);

        await watchdog.StartAsync(CancellationToken.None);
        await watchdog.ExecuteTask!;
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(0, time.ActiveTimers);
        systemd.AssertNothingPending("no watchdog");
        await watchdog.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Does_nothing_without_a_notify_socket()
    {
        var time = new ManualTimeProvider();
        using var notifier = new SystemdNotifier(null);
        using var watchdog = new WatchdogService(notifier, new HealthRegistry(time), new WatchdogSettings(Interval), time,
            new RecordingLogger<WatchdogService>());
        Assert.False(watchdog.IsEnabled);
        await watchdog.StartAsync(CancellationToken.None);
        await watchdog.ExecuteTask!;
        Assert.Equal(0, watchdog.Ticks);
        await watchdog.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_dead_notify_socket_does_not_stop_the_pings()
    {
        var time = new ManualTimeProvider();
        using var dir = new TempDir();
        var path = dir.Combine("notify");
        using var notifier = new SystemdNotifier(path);
        using var watchdog = new WatchdogService(notifier, new HealthRegistry(time), new WatchdogSettings(Interval), time,
            new RecordingLogger<WatchdogService>());

        await watchdog.StartAsync(CancellationToken.None);
        await Eventually.TrueAsync(() => watchdog.Ticks == 1, "first tick against a missing socket");
        using var systemd = DatagramReceiver.BindPath(path);
        time.Advance(Half);
        Assert.Equal("1", (await systemd.ReceiveNotifyAsync("ping once the socket exists"))["WATCHDOG"]);
        await watchdog.StopAsync(CancellationToken.None);
    }
}

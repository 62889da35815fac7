using Crsc.Controllers.Health;
using Crsc.Systemd.Tests.Support;
using Crsc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Crsc.Systemd.Tests;

public sealed class SystemdStatusReporterTests
{
    private static SystemdStatusReporter NewReporter(SystemdNotifier notifier, HealthRegistry health, TimeProvider time)
        => new(notifier, health, time, new RecordingLogger<SystemdStatusReporter>());

    [Fact]
    public async Task Sends_the_current_summary_then_one_status_per_burst_of_changes()
    {
        var time = new ManualTimeProvider();
        var health = new HealthRegistry(time);
        using var systemd = DatagramReceiver.BindAbstract();
        using var notifier = new SystemdNotifier(systemd.Address);
        using var reporter = NewReporter(notifier, health, time);

        await reporter.StartAsync(CancellationToken.None);
        await Eventually.TrueAsync(() => time.ActiveTimers == 1, "the first status waits for the coalescing delay");
        systemd.AssertNothingPending("inside the coalescing delay");
        time.Advance(reporter.CoalesceDelay);
        Assert.Equal("running", (await systemd.ReceiveNotifyAsync("initial status"))["STATUS"]);
        await Eventually.TrueAsync(() => reporter.Evaluations == 1, "first evaluation");

        // a burst: five changes, one datagram with the final state
        health.Report("kube", HealthStatus.Degraded, "connecting");
        await Eventually.TrueAsync(() => time.ActiveTimers == 1, "burst waits");
        health.Report("kube", HealthStatus.Degraded, "api-server unreachable");
        health.Report("runtime", HealthStatus.Healthy, "crio 1.31");
        health.Report("store", HealthStatus.Healthy, "12 checkpoints");
        health.Report("store", HealthStatus.Healthy, "13 checkpoints");
        time.Advance(reporter.CoalesceDelay);
        var status = (await systemd.ReceiveNotifyAsync("status after the burst"))["STATUS"];
        Assert.Equal("degraded: kube: api-server unreachable; runtime: crio 1.31; store: 13 checkpoints", status);
        Assert.Equal(health.Summary(), status);
        await Eventually.TrueAsync(() => reporter.Evaluations == 2 && time.ActiveTimers == 0, "burst handled once");
        systemd.AssertNothingPending("one datagram per burst");

        // a change that is undone within the delay sends nothing
        health.Report("store", HealthStatus.Healthy, "14 checkpoints");
        await Eventually.TrueAsync(() => time.ActiveTimers == 1, "waits");
        health.Report("store", HealthStatus.Healthy, "13 checkpoints");
        time.Advance(reporter.CoalesceDelay);
        await Eventually.TrueAsync(() => reporter.Evaluations == 3, "third evaluation");
        systemd.AssertNothingPending("same status as before");
        Assert.Equal(status, reporter.LastStatus);

        await reporter.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_ready_status_older_than_the_line_already_sent_is_followed_by_the_current_one()
    {
        // the daemon reads the summary for READY=1 while a component reports; the status loop sends the newer
        // summary first, READY's older line lands after it: systemd must not be left showing the older one
        var time = new ManualTimeProvider();
        var health = new HealthRegistry(time);
        using var systemd = DatagramReceiver.BindAbstract();
        using var notifier = new SystemdNotifier(systemd.Address);
        using var reporter = NewReporter(notifier, health, time);
        health.Report("kube", HealthStatus.Degraded, "no API server configured");
        var readSummaryForReady = health.Summary();

        await reporter.StartAsync(CancellationToken.None);
        await Eventually.TrueAsync(() => time.ActiveTimers == 1, "the first status waits for the coalescing delay");
        health.Report("runtime", HealthStatus.Degraded, "unreachable: no such file");
        time.Advance(reporter.CoalesceDelay);
        var current = health.Summary();
        Assert.Equal(current, (await systemd.ReceiveNotifyAsync("the loop's status"))["STATUS"]);
        await Eventually.TrueAsync(() => reporter.Evaluations == 1 && time.ActiveTimers == 0, "first evaluation done");

        Assert.True(await reporter.NotifyReadyAsync(readSummaryForReady));
        var ready = await systemd.ReceiveNotifyAsync("READY=1");
        Assert.Equal("degraded: kube: no API server configured", ready["STATUS"]);

        await Eventually.TrueAsync(() => time.ActiveTimers == 1, "READY is followed by one more evaluation");
        time.Advance(reporter.CoalesceDelay);
        Assert.Equal(current, (await systemd.ReceiveNotifyAsync("the current status again"))["STATUS"]);
        Assert.Equal(current, reporter.LastStatus);
        await reporter.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Ready_uses_the_health_summary_and_stopping_comes_with_a_status()
    {
        var time = new ManualTimeProvider();
        var health = new HealthRegistry(time);
        health.Report("kube", HealthStatus.Degraded, "no API server configured");
        using var dir = new TempDir();
        using var systemd = DatagramReceiver.BindPath(dir.Combine("notify"));
        using var notifier = new SystemdNotifier(systemd.Address);
        using var reporter = NewReporter(notifier, health, time);

        Assert.True(await reporter.NotifyReadyAsync());
        var ready = await systemd.ReceiveNotifyAsync("READY=1");
        Assert.Equal("1", ready["READY"]);
        Assert.Equal("degraded: kube: no API server configured", ready["STATUS"]);

        await reporter.StartAsync(CancellationToken.None);
        await reporter.StoppingAsync(CancellationToken.None);
        var stopping = await systemd.ReceiveNotifyAsync("STOPPING=1");
        Assert.Equal("1", stopping["STOPPING"]);
        Assert.Equal("stopping", stopping["STATUS"]);

        // after stopping no more STATUS lines, and StopAsync does not say it twice
        health.Report("kube", HealthStatus.Healthy, "connected");
        time.Advance(TimeSpan.FromSeconds(10));
        await reporter.StopAsync(CancellationToken.None);
        systemd.AssertNothingPending("stopped");
    }

    [Fact]
    public async Task A_host_with_the_integration_reports_ready_status_and_stopping_in_order()
    {
        var time = new ManualTimeProvider();
        using var systemd = DatagramReceiver.BindAbstract();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddSingleton<TimeProvider>(time);
        builder.Services.AddSingleton<HealthRegistry>();
        builder.Services.AddSingleton(_ => new SystemdNotifier(systemd.Address));
        builder.Services.AddSingleton(new WatchdogSettings(TimeSpan.FromSeconds(30)));
        builder.Services.AddSystemdIntegration();
        using var host = builder.Build();

        await host.StartAsync();
        var reporter = host.Services.GetRequiredService<SystemdStatusReporter>();
        var health = host.Services.GetRequiredService<HealthRegistry>();

        var first = await systemd.ReceiveNotifyAsync("the watchdog's first ping");
        Assert.Equal("1", first["WATCHDOG"]);
        await reporter.NotifyReadyAsync();
        Assert.Equal(new Dictionary<string, string> { ["READY"] = "1", ["STATUS"] = "running" }, await systemd.ReceiveNotifyAsync("READY"));

        health.Report("runtime", HealthStatus.Unhealthy, "CRI socket gone");
        await Eventually.TrueAsync(() => time.ActiveTimers == 2, "status change waits for the coalescing delay (beside the watchdog timer)");
        time.Advance(reporter.CoalesceDelay);
        Assert.Equal("unhealthy: runtime: CRI socket gone", (await systemd.ReceiveNotifyAsync("STATUS"))["STATUS"]);

        await host.StopAsync();
        var stopping = await systemd.ReceiveNotifyAsync("STOPPING");
        Assert.Equal("1", stopping["STOPPING"]);
        systemd.AssertNothingPending("nothing after STOPPING");
    }
}

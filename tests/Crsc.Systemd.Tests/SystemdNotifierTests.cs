using Crsc.Systemd.Tests.Support;
using Crsc.Testing;
using Microsoft.Extensions.Logging;

namespace Crsc.Systemd.Tests;

public sealed class SystemdNotifierTests
{
    [Fact]
    public async Task Ready_with_status_arrives_on_a_path_socket()
    {
        using var dir = new TempDir();
        using var systemd = DatagramReceiver.BindPath(dir.Combine("notify"));
        using var notifier = new SystemdNotifier(systemd.Address);

        Assert.True(notifier.IsEnabled);
        Assert.True(await notifier.NotifyReadyAsync("running: node agent"));

        var message = await systemd.ReceiveNotifyAsync("READY=1");
        Assert.Equal("1", message["READY"]);
        Assert.Equal("running: node agent", message["STATUS"]);
        Assert.Equal(2, message.Count);
    }

    [Fact]
    public async Task Every_kind_of_message_arrives_on_an_abstract_socket()
    {
        var time = new ManualTimeProvider();
        using var systemd = DatagramReceiver.BindAbstract();
        using var notifier = new SystemdNotifier(systemd.Address, time: time);
        Assert.StartsWith("@", notifier.SocketAddress, StringComparison.Ordinal);

        Assert.True(await notifier.NotifyWatchdogAsync());
        Assert.Equal(new Dictionary<string, string> { ["WATCHDOG"] = "1" }, await systemd.ReceiveNotifyAsync("WATCHDOG=1"));

        Assert.True(await notifier.NotifyStatusAsync("degraded:\nkube: api-server unreachable"));
        Assert.Equal("degraded: kube: api-server unreachable", (await systemd.ReceiveNotifyAsync("STATUS"))["STATUS"]);

        Assert.True(await notifier.NotifyStoppingAsync("stopping"));
        var stopping = await systemd.ReceiveNotifyAsync("STOPPING=1");
        Assert.Equal("1", stopping["STOPPING"]);
        Assert.Equal("stopping", stopping["STATUS"]);

        time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(await notifier.NotifyReloadingAsync());
        var reloading = await systemd.ReceiveNotifyAsync("RELOADING=1");
        Assert.Equal("1", reloading["RELOADING"]);
        Assert.Equal("5000000", reloading["MONOTONIC_USEC"]);

        Assert.True(await notifier.NotifyErrnoAsync(5, "i/o error"));
        var errno = await systemd.ReceiveNotifyAsync("ERRNO=5");
        Assert.Equal("5", errno["ERRNO"]);
        Assert.Equal("i/o error", errno["STATUS"]);
    }

    [Fact]
    public void The_system_clock_gives_CLOCK_MONOTONIC_microseconds()
    {
        var before = Environment.TickCount64 * 1000;
        var usec = SystemdNotifier.MonotonicMicroseconds(TimeProvider.System);
        var after = Environment.TickCount64 * 1000;
        // Environment.TickCount64 is CLOCK_MONOTONIC_COARSE in milliseconds on Linux
        Assert.InRange(usec, before - 50_000, after + 50_000);
    }

    [Fact]
    public async Task Without_a_socket_it_is_disabled_and_silent()
    {
        using var notifier = new SystemdNotifier(null);
        Assert.False(notifier.IsEnabled);
        Assert.Null(notifier.SocketAddress);
        Assert.False(await notifier.NotifyReadyAsync("x"));
        Assert.False(await notifier.NotifyWatchdogAsync());
    }

    [Theory]
    [InlineData("vsock:2:1234")]
    [InlineData("relative/path")]
    [InlineData("@")]
    public async Task An_unusable_address_disables_it_with_a_warning(string address)
    {
        var log = new RecordingLogger<SystemdNotifier>();
        using var notifier = new SystemdNotifier(address, log);
        Assert.False(notifier.IsEnabled);
        Assert.False(await notifier.NotifyReadyAsync());
        Assert.Contains(log.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains(address, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_socket_that_does_not_exist_never_throws_and_warns_once()
    {
        using var dir = new TempDir();
        var log = new RecordingLogger<SystemdNotifier>();
        using var notifier = new SystemdNotifier(dir.Combine("gone"), log);
        Assert.True(notifier.IsEnabled);

        for (var i = 0; i < 3; i++) Assert.False(await notifier.NotifyWatchdogAsync()); // ENOENT

        Assert.Single(log.Entries, e => e.Level == LogLevel.Warning);
        Assert.Equal(2, log.Entries.Count(e => e.Level == LogLevel.Debug && e.Message.Contains("Could not notify", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_dead_socket_never_throws_and_a_new_one_is_used_when_it_comes_back()
    {
        using var dir = new TempDir();
        var path = dir.Combine("notify");
        var log = new RecordingLogger<SystemdNotifier>();
        using var notifier = new SystemdNotifier(path, log);

        using (var first = DatagramReceiver.BindPath(path, leaveFileOnClose: true))
        {
            Assert.True(await notifier.NotifyStatusAsync("one"));
            Assert.Equal("one", (await first.ReceiveNotifyAsync("first status"))["STATUS"]);
        }
        Assert.True(File.Exists(path)); // the closed socket's file stays: ECONNREFUSED
        Assert.False(await notifier.NotifyStatusAsync("lost"));
        File.Delete(path); // now ENOENT
        Assert.False(await notifier.NotifyStatusAsync("lost too"));

        using var second = DatagramReceiver.BindPath(path);
        Assert.True(await notifier.NotifyStatusAsync("two"));
        Assert.Equal("two", (await second.ReceiveNotifyAsync("status after restart"))["STATUS"]);
        Assert.Single(log.Entries, e => e.Level == LogLevel.Warning);
        Assert.Single(log.Entries, e => e.Level == LogLevel.Information && e.Message.Contains("work again", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_abstract_name_nobody_bound_never_throws()
    {
        using var notifier = new SystemdNotifier($"@crsc-test/nobody/{Guid.NewGuid():N}");
        Assert.False(await notifier.NotifyReadyAsync("x"));
    }

    [Fact]
    public async Task A_disposed_notifier_does_not_throw()
    {
        using var systemd = DatagramReceiver.BindAbstract();
        var notifier = new SystemdNotifier(systemd.Address);
        notifier.Dispose();
        Assert.False(await notifier.NotifyWatchdogAsync());
    }

    [Fact]
    public async Task Invalid_keys_are_a_programming_error_even_when_disabled()
    {
        using var notifier = new SystemdNotifier(null);
        await Assert.ThrowsAsync<ArgumentException>(async () => await notifier.NotifyAsync([new("bad key", "1")]));
    }
}

/// <summary>Changes process-wide environment variables: not run in parallel with anything.</summary>
[Collection(SerialCollection.Name)]
public sealed class SystemdNotifierEnvironmentTests
{
    [Fact]
    public async Task FromEnvironment_uses_NOTIFY_SOCKET_and_can_unset_it()
    {
        using var systemd = DatagramReceiver.BindAbstract();
        var saved = Environment.GetEnvironmentVariable(SystemdNotifier.NotifySocketVariable);
        try
        {
            Environment.SetEnvironmentVariable(SystemdNotifier.NotifySocketVariable, systemd.Address);
            using var notifier = SystemdNotifier.FromEnvironment(unsetEnvironment: true);
            Assert.Null(Environment.GetEnvironmentVariable(SystemdNotifier.NotifySocketVariable));
            Assert.Equal(systemd.Address, notifier.SocketAddress);
            Assert.True(await notifier.NotifyReadyAsync());
            Assert.Equal("1", (await systemd.ReceiveNotifyAsync("READY=1"))["READY"]);

            using var unset = SystemdNotifier.FromEnvironment();
            Assert.False(unset.IsEnabled);
        }
        finally
        {
            Environment.SetEnvironmentVariable(SystemdNotifier.NotifySocketVariable, saved);
        }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "serial (process-wide state)";
}

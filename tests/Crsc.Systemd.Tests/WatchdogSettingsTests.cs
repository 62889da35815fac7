namespace Crsc.Systemd.Tests;

public sealed class WatchdogSettingsTests
{
    [Fact]
    public void Interval_comes_from_WATCHDOG_USEC_and_pings_go_at_half_of_it()
    {
        var settings = WatchdogSettings.Parse("30000000", null, ownPid: 42);
        Assert.True(settings.IsEnabled);
        Assert.Equal(TimeSpan.FromSeconds(30), settings.Interval);
        Assert.Equal(TimeSpan.FromSeconds(15), settings.PingPeriod);
    }

    [Fact]
    public void Our_own_WATCHDOG_PID_keeps_it_on()
    {
        Assert.True(WatchdogSettings.Parse("1000000", "42", ownPid: 42).IsEnabled);
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("", null)]
    [InlineData("0", null)]
    [InlineData("-5", null)]
    [InlineData("abc", null)]
    [InlineData("1e6", null)]
    [InlineData("99999999999999999999999", null)]
    [InlineData("1000000", "43")] // another process's watchdog
    [InlineData("1000000", "x")]
    [InlineData("1000000", "0")]
    public void It_is_off_unless_both_variables_say_it_is_ours(string? usec, string? pid)
    {
        var settings = WatchdogSettings.Parse(usec, pid, ownPid: 42);
        Assert.False(settings.IsEnabled);
        Assert.Null(settings.Interval);
        Assert.False(string.IsNullOrEmpty(settings.DisabledReason));
    }
}

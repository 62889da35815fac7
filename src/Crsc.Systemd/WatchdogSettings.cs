using System.Globalization;

namespace Crsc.Systemd;

/// <summary>
/// The systemd watchdog as the service manager set it up: <c>WATCHDOG_USEC</c>, and <c>WATCHDOG_PID</c> when
/// the pings are meant for another process. <see cref="Interval"/> is null when the watchdog is off for us.
/// </summary>
public sealed record WatchdogSettings(TimeSpan? Interval, string? DisabledReason = null)
{
    public const string UsecVariable = "WATCHDOG_USEC";
    public const string PidVariable = "WATCHDOG_PID";

    public bool IsEnabled => Interval is { } i && i > TimeSpan.Zero;

    /// <summary>Half the interval, as sd_watchdog_enabled(3) recommends.</summary>
    public TimeSpan PingPeriod => IsEnabled ? Interval!.Value / 2 : Timeout.InfiniteTimeSpan;

    public static WatchdogSettings Disabled(string reason) => new(null, reason);

    public static WatchdogSettings FromEnvironment()
        => Parse(Environment.GetEnvironmentVariable(UsecVariable), Environment.GetEnvironmentVariable(PidVariable), Environment.ProcessId);

    /// <summary>Reads the two variables the way sd_watchdog_enabled(3) does.</summary>
    public static WatchdogSettings Parse(string? watchdogUsec, string? watchdogPid, int ownPid)
    {
        if (string.IsNullOrEmpty(watchdogUsec)) return Disabled($"{UsecVariable} is not set");
        if (!ulong.TryParse(watchdogUsec, NumberStyles.None, CultureInfo.InvariantCulture, out var usec) || usec == 0
            || usec > (ulong)(TimeSpan.MaxValue.Ticks / TimeSpan.TicksPerMicrosecond))
            return Disabled($"{UsecVariable}={watchdogUsec} is not a positive number of microseconds");
        if (!string.IsNullOrEmpty(watchdogPid))
        {
            if (!int.TryParse(watchdogPid, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0)
                return Disabled($"{PidVariable}={watchdogPid} is not a process id");
            if (pid != ownPid) return Disabled($"{PidVariable}={pid} names another process (we are {ownPid})");
        }
        return new WatchdogSettings(TimeSpan.FromMicroseconds(usec));
    }
}

using Microsoft.Extensions.Logging;

namespace Crsc.Systemd;

/// <summary>What the systemd integration says about itself (the journald sink uses Serilog's SelfLog instead).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 60000, Level = LogLevel.Debug, Message = "NOTIFY_SOCKET is not set: systemd notifications are off")]
    public static partial void NotifySocketNotSet(ILogger logger);

    [LoggerMessage(EventId = 60001, Level = LogLevel.Warning, Message = "NOTIFY_SOCKET {NotifySocket} is not usable ({Reason}): systemd notifications are off")]
    public static partial void NotifySocketUnusable(ILogger logger, string notifySocket, string reason);

    [LoggerMessage(EventId = 60002, Level = LogLevel.Debug, Message = "systemd notifications go to {NotifySocket}")]
    public static partial void NotifySocketInUse(ILogger logger, string notifySocket);

    [LoggerMessage(EventId = 60003, Level = LogLevel.Warning, Message = "Could not notify systemd through {NotifySocket} ({Error}); carrying on, later failures are logged at debug level")]
    public static partial void NotifyFailedFirst(ILogger logger, string notifySocket, string error);

    [LoggerMessage(EventId = 60004, Level = LogLevel.Debug, Message = "Could not notify systemd through {NotifySocket} ({Error})")]
    public static partial void NotifyFailedAgain(ILogger logger, string notifySocket, string error);

    [LoggerMessage(EventId = 60005, Level = LogLevel.Information, Message = "systemd notifications through {NotifySocket} work again")]
    public static partial void NotifyRecovered(ILogger logger, string notifySocket);

    [LoggerMessage(EventId = 60010, Level = LogLevel.Debug, Message = "systemd watchdog off: {Reason}")]
    public static partial void WatchdogOff(ILogger logger, string reason);

    [LoggerMessage(EventId = 60011, Level = LogLevel.Information, Message = "systemd watchdog on: interval {WatchdogInterval}, pinging every {PingPeriod} while healthy")]
    public static partial void WatchdogOn(ILogger logger, TimeSpan watchdogInterval, TimeSpan pingPeriod);

    [LoggerMessage(EventId = 60012, Level = LogLevel.Warning, Message = "Withholding systemd watchdog pings while the daemon is unhealthy: {HealthSummary}")]
    public static partial void WatchdogWithheld(ILogger logger, string healthSummary);

    [LoggerMessage(EventId = 60013, Level = LogLevel.Information, Message = "Health recovered ({HealthSummary}); systemd watchdog pings resume")]
    public static partial void WatchdogResumed(ILogger logger, string healthSummary);

    [LoggerMessage(EventId = 60014, Level = LogLevel.Warning, Message = "WATCHDOG_USEC {WatchdogUsec} is not a positive number of microseconds; watchdog off")]
    public static partial void WatchdogUsecInvalid(ILogger logger, string watchdogUsec);

    [LoggerMessage(EventId = 60020, Level = LogLevel.Debug, Message = "systemd STATUS: {Status}")]
    public static partial void StatusSent(ILogger logger, string status);

    [LoggerMessage(EventId = 60021, Level = LogLevel.Error, Message = "The systemd status reporter stopped unexpectedly")]
    public static partial void StatusLoopFailed(ILogger logger, Exception exception);
}

using Serilog.Events;

namespace Crsc.Systemd.Journal;

/// <summary>syslog(3) priorities, as journald's <c>PRIORITY=</c> field wants them.</summary>
public static class JournalPriority
{
    public const int Emergency = 0;
    public const int Alert = 1;
    public const int Critical = 2;
    public const int Error = 3;
    public const int Warning = 4;
    public const int Notice = 5;
    public const int Informational = 6;
    public const int Debug = 7;

    public static int FromLevel(LogEventLevel level) => level switch
    {
        LogEventLevel.Fatal => Critical,
        LogEventLevel.Error => Error,
        LogEventLevel.Warning => Warning,
        LogEventLevel.Information => Informational,
        _ => Debug, // Debug and Verbose
    };
}

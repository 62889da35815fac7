using Serilog;
using Serilog.Configuration;
using Serilog.Events;

namespace Crsc.Systemd.Journal;

public static class JournaldLoggerConfigurationExtensions
{
    /// <summary>
    /// Writes to journald in its native protocol (<c>/run/systemd/journal/socket</c> unless <paramref name="socketPath"/>
    /// says otherwise). The sink is disposed with the logger.
    /// </summary>
    public static LoggerConfiguration Journald(
        this LoggerSinkConfiguration sinkConfiguration,
        string syslogIdentifier = "crsc",
        string socketPath = SystemdEnvironment.JournalSocketPath,
        LogEventLevel restrictedToMinimumLevel = LevelAlias.Minimum,
        IFormatProvider? formatProvider = null)
        => Journald(sinkConfiguration, new JournaldSinkOptions
        {
            SyslogIdentifier = syslogIdentifier,
            SocketPath = socketPath,
            FormatProvider = formatProvider,
        }, restrictedToMinimumLevel);

    public static LoggerConfiguration Journald(
        this LoggerSinkConfiguration sinkConfiguration,
        JournaldSinkOptions options,
        LogEventLevel restrictedToMinimumLevel = LevelAlias.Minimum)
    {
        ArgumentNullException.ThrowIfNull(sinkConfiguration);
        ArgumentNullException.ThrowIfNull(options);
        return sinkConfiguration.Sink(new JournaldSink(options), restrictedToMinimumLevel);
    }
}

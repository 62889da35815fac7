using Crsc.Configuration;
using Crsc.Systemd.Journal;
using Serilog;
using Serilog.Events;

namespace Crsc.Logging;

public enum LogTarget { Console, Json, Journald }

/// <summary>Serilog configured in code: where the daemon's logs go and at what level.</summary>
public static class LoggingSetup
{

    /// <summary>
    /// <c>auto</c>: journald when systemd started us (and its socket exists), the console when stdout is a
    /// terminal, JSON lines otherwise (a static pod's stdout is collected by the container runtime).
    /// </summary>
    public static LogTarget Choose(string configured, bool startedBySystemd, bool journalAvailable, bool stdoutIsTerminal) => configured switch
    {
        "console" => LogTarget.Console,
        "json" => LogTarget.Json,
        "journald" => LogTarget.Journald,
        _ when startedBySystemd && journalAvailable => LogTarget.Journald,
        _ when stdoutIsTerminal => LogTarget.Console,
        _ => LogTarget.Json,
    };

    public static LogEventLevel Level(string level) => level switch
    {
        "trace" => LogEventLevel.Verbose,
        "debug" => LogEventLevel.Debug,
        "warning" => LogEventLevel.Warning,
        "error" => LogEventLevel.Error,
        _ => LogEventLevel.Information,
    };

    /// <summary>What every target shares: the levels, and the properties each event carries.</summary>
    public static LoggerConfiguration Pipeline(string logLevel) => new LoggerConfiguration()
        .MinimumLevel.Is(Level(logLevel))
        // the framework's own chatter stays at warning unless asked for
        .MinimumLevel.Override("Microsoft", logLevel is "trace" or "debug" ? LogEventLevel.Debug : LogEventLevel.Warning)
        .Enrich.FromLogContext()
        // "{Namespace}" of a [LoggerMessage] with `string @namespace` rendered, not printed as is
        .Enrich.With(new TemplatePropertyNames());

    public static Serilog.Core.Logger Create(CrscOptions options, LogTarget target)
    {
        var config = Pipeline(options.LogLevel);
        config = target switch
        {
            LogTarget.Json => config.WriteTo.Console(new JsonLinesFormatter()),
            LogTarget.Journald => ConfigureJournald(config),
            _ => config.WriteTo.Console(
                outputTemplate: "{Timestamp:HH:mm:ss.fff} {Level:u3} {SourceContext}: {Message:lj}{NewLine}{Exception}",
                formatProvider: System.Globalization.CultureInfo.InvariantCulture),
        };
        return config.CreateLogger();
    }

    private static LoggerConfiguration ConfigureJournald(LoggerConfiguration config) =>
        config.WriteTo.Journald(syslogIdentifier: "crsc", formatProvider: System.Globalization.CultureInfo.InvariantCulture);
}

using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Crsc.Interceptor;

/// <summary>
/// The logs of the small <c>crsc-interceptor</c> binary, without Serilog (whose pipeline would grow the binary and its
/// resident set): one line per event on <paramref name="output"/> (stderr). As JSON lines with the fields of the daemon's
/// (<c>{"time":…,"level":…,"msg":…,"logger":…,"error":…, &lt;properties&gt;}</c>, written with <see cref="Utf8JsonWriter"/>)
/// when <paramref name="json"/>, which is when stderr is not a terminal (a pod's logs); otherwise as the daemon's console
/// lines (<c>HH:mm:ss.fff INF Crsc.Interceptor: message</c>). No scopes: the sidecar opens none.
/// </summary>
public sealed class LineLoggerFactory(TextWriter output, bool json, TimeProvider time, LogLevel minimum = LogLevel.Information) : ILoggerFactory
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly Lock _write = new();
    private LogLevel Minimum => minimum;

    /// <summary>stderr, as JSON lines unless it is a terminal.</summary>
    public static LineLoggerFactory Stderr() => new(Console.Error, json: Console.IsErrorRedirected, TimeProvider.System);

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException("LineLoggerFactory writes its lines itself");

    public void Dispose() => output.Flush();

    private void Write<TState>(string category, LogLevel level, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        var message = formatter(state, exception);
        var now = time.GetUtcNow().UtcDateTime;
        string line;
        if (json)
        {
            var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer, WriterOptions))
            {
                w.WriteStartObject();
                w.WriteString("time", now.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture));
                w.WriteString("level", LevelName(level));
                w.WriteString("msg", message);
                w.WriteString("logger", category);
                if (exception is not null) w.WriteString("error", exception.ToString());
                if (state is IReadOnlyList<KeyValuePair<string, object?>> properties)
                {
                    foreach (var (name, value) in properties)
                    {
                        if (name == "{OriginalFormat}") continue;
                        w.WritePropertyName(name is "time" or "level" or "msg" or "logger" or "error" ? "_" + name : name);
                        WriteValue(w, value);
                    }
                }
                w.WriteEndObject();
            }
            line = Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
        }
        else
        {
            line = $"{now.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} {ShortLevel(level)} {category}: {message}";
            if (exception is not null) line += "\n" + exception;
        }
        lock (_write) output.Write(line + "\n");
    }

    /// <summary>The daemon's level names (JsonLinesFormatter).</summary>
    private static string LevelName(LogLevel level) => level switch
    {
        LogLevel.Trace => "trace",
        LogLevel.Debug => "debug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "error",
        _ => "fatal",
    };

    private static string ShortLevel(LogLevel level) => level switch
    {
        LogLevel.Trace => "VRB",
        LogLevel.Debug => "DBG",
        LogLevel.Information => "INF",
        LogLevel.Warning => "WRN",
        LogLevel.Error => "ERR",
        _ => "FTL",
    };

    private static void WriteValue(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case bool b: w.WriteBooleanValue(b); break;
            case int or long or short or byte or uint or ulong or ushort or sbyte:
                w.WriteRawValue(Convert.ToString(value, CultureInfo.InvariantCulture)!); break;
            case double d when double.IsFinite(d): w.WriteNumberValue(d); break;
            default: w.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture)); break;
        }
    }

    private sealed class Logger(LineLoggerFactory factory, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None && logLevel >= factory.Minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) factory.Write(category, logLevel, state, exception, formatter);
        }
    }
}

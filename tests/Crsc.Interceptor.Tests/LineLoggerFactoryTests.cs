using System.Text.Json;
using Crsc.Testing;
using Microsoft.Extensions.Logging;

namespace Crsc.Interceptor.Tests;

public sealed partial class LineLoggerFactoryTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 9, 30, 15, 123, TimeSpan.Zero);

    [LoggerMessage(Level = LogLevel.Warning, Message = "GET {Target} answered {Status} after {Seconds}s: {Why}")]
    private static partial void Answered(ILogger log, string target, int status, double seconds, string why);

    [LoggerMessage(Level = LogLevel.Debug, Message = "chatter {N}")]
    private static partial void Chatter(ILogger log, int n);

    [LoggerMessage(Level = LogLevel.Error, Message = "a connection crashed")]
    private static partial void Crashed(ILogger log, Exception e);

    [Fact]
    public void Json_lines_carry_the_daemons_fields_and_the_named_properties()
    {
        var output = new StringWriter();
        using (var loggers = new LineLoggerFactory(output, json: true, new ManualTimeProvider(Now)))
        {
            var log = loggers.CreateLogger("Crsc.Interceptor");
            Answered(log, "/a\"b", 503, 1.5, "held too long");
            Chatter(log, 1); // below information: not written
            Crashed(log, new InvalidOperationException("boom"));
        }
        var lines = output.ToString().Split('\n');
        Assert.Equal(3, lines.Length); // two lines, each ended by a newline
        Assert.Equal("", lines[2]);
        using var first = JsonDocument.Parse(lines[0]);
        var e = first.RootElement;
        Assert.Equal(["time", "level", "msg", "logger", "Target", "Status", "Seconds", "Why"], e.EnumerateObject().Select(p => p.Name));
        Assert.Equal("2026-12-07T09:30:15.123000Z", e.GetProperty("time").GetString());
        Assert.Equal("warn", e.GetProperty("level").GetString());
        Assert.Equal("GET /a\"b answered 503 after 1.5s: held too long", e.GetProperty("msg").GetString());
        Assert.Equal("Crsc.Interceptor", e.GetProperty("logger").GetString());
        Assert.Equal(503, e.GetProperty("Status").GetInt32());
        Assert.Equal(1.5, e.GetProperty("Seconds").GetDouble());
        using var second = JsonDocument.Parse(lines[1]);
        Assert.Equal("error", second.RootElement.GetProperty("level").GetString());
        Assert.StartsWith("System.InvalidOperationException: boom", second.RootElement.GetProperty("error").GetString());
    }

    [Fact]
    public void On_a_terminal_a_line_is_the_daemons_console_line()
    {
        var output = new StringWriter();
        using (var loggers = new LineLoggerFactory(output, json: false, new ManualTimeProvider(Now), LogLevel.Debug))
        {
            var log = loggers.CreateLogger("Crsc.Interceptor");
            Answered(log, "/", 503, 2, "full");
            Chatter(log, 7);
        }
        Assert.Equal("09:30:15.123 WRN Crsc.Interceptor: GET / answered 503 after 2s: full\n09:30:15.123 DBG Crsc.Interceptor: chatter 7\n", output.ToString());
    }
}

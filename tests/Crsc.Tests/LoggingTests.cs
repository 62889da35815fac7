using System.Text.Json;
using Crsc.Logging;
using Serilog.Events;
using Serilog.Parsing;

namespace Crsc.Tests;

public sealed class LoggingTests
{
    private static LogEvent Event(string template, Exception? ex = null, params (string Name, object? Value)[] props) =>
        new(new DateTimeOffset(2026, 11, 22, 3, 4, 5, 678, TimeSpan.Zero), LogEventLevel.Warning, ex,
            new MessageTemplateParser().Parse(template),
            props.Select(p => new LogEventProperty(p.Name, new ScalarValue(p.Value))));

    [Fact]
    public void Json_lines_are_one_object_per_line_with_time_level_msg_and_properties()
    {
        var w = new StringWriter();
        new JsonLinesFormatter().Format(Event("node {NodeName} has {Count} pods", null, ("NodeName", "n1"), ("Count", 3), ("SourceContext", "Crsc.X")), w);
        var text = w.ToString();
        Assert.EndsWith("\n", text);
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        using var doc = JsonDocument.Parse(text);
        var r = doc.RootElement;
        Assert.Equal("2026-11-22T03:04:05.678000Z", r.GetProperty("time").GetString());
        Assert.Equal("warn", r.GetProperty("level").GetString());
        Assert.Equal("node n1 has 3 pods", r.GetProperty("msg").GetString()); // strings unquoted
        Assert.Equal("n1", r.GetProperty("NodeName").GetString());
        Assert.Equal(3, r.GetProperty("Count").GetInt32());
        Assert.Equal("Crsc.X", r.GetProperty("logger").GetString());
    }

    [Fact]
    public void Exceptions_and_multi_line_values_stay_inside_one_json_line()
    {
        var w = new StringWriter();
        Exception ex;
        try { throw new InvalidOperationException("boom\nsecond line"); } catch (Exception e) { ex = e; }
        new JsonLinesFormatter().Format(Event("failed {Path}", ex, ("Path", "a\"b\nc")), w);
        var lines = w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var line = Assert.Single(lines);
        using var doc = JsonDocument.Parse(line);
        Assert.Contains("boom\nsecond line", doc.RootElement.GetProperty("error").GetString());
        Assert.Equal("failed a\"b\nc", doc.RootElement.GetProperty("msg").GetString());
    }

    [Theory]
    [InlineData("auto", true, true, true, LogTarget.Journald)]
    [InlineData("auto", true, false, true, LogTarget.Console)]   // systemd but no journal socket: console
    [InlineData("auto", false, true, true, LogTarget.Console)]
    [InlineData("auto", false, true, false, LogTarget.Json)]     // static pod: stdout is a pipe
    [InlineData("json", true, true, true, LogTarget.Json)]
    [InlineData("console", false, false, false, LogTarget.Console)]
    [InlineData("journald", false, false, false, LogTarget.Journald)]
    public void The_log_target_follows_the_setting_and_the_environment(string configured, bool systemd, bool journal, bool terminal, LogTarget expected)
        => Assert.Equal(expected, LoggingSetup.Choose(configured, systemd, journal, terminal));
}

using System.Text.Json;
using Crsc.Logging;
using Microsoft.Extensions.Logging;
using Serilog.Core;
using Serilog.Events;
using Serilog.Extensions.Logging;
using Serilog.Parsing;

namespace Crsc.Tests;

public sealed partial class LoggingTests
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

    // as crsc's components write them: the parameter for {Namespace} is a C# keyword. With more than six parameters the
    // generator writes a state type of its own (up to six it uses LoggerMessage.Define, which names them by the template)
    [LoggerMessage(1, LogLevel.Information, "Ingested checkpoint {CheckpointId} of {Namespace}/{Workload}/{Container}: {UncompressedSize} bytes, stored {Size} bytes ({Compression}), {Digest}")]
    private static partial void Ingested(ILogger logger, string checkpointId, string @namespace, string workload, string container,
        long uncompressedSize, long size, string compression, string digest);

    private sealed class Collected : ILogEventSink
    {
        public List<LogEvent> Events { get; } = [];
        public void Emit(LogEvent logEvent) => Events.Add(logEvent);
    }

    [Fact]
    public void A_logger_message_whose_parameter_is_a_keyword_renders_that_hole_and_names_the_property_as_the_template_does()
    {
        var sink = new Collected();
        using var serilog = LoggingSetup.Pipeline("information").WriteTo.Sink(sink).CreateLogger();
        using var provider = new SerilogLoggerProvider(serilog);
        var logger = provider.CreateLogger("Crsc.Storage.DiskCheckpointStore");

        Ingested(logger, "20261207T090155Z-55b90ef0", "shop", "web", "app", 30208, 1840, "Zstd", "sha256:8bd0");
        // in a reconcile scope, which has a Namespace of its own: the message's value is the one it names
        using (logger.BeginScope(new Dictionary<string, object?> { ["Namespace"] = "scope-ns" }))
            Ingested(logger, "20261207T090155Z-a51eb656", "shop", "api", "api", 30208, 1858, "Zstd", "sha256:f715");

        Assert.Equal(2, sink.Events.Count);
        var w = new StringWriter();
        foreach (var e in sink.Events) new JsonLinesFormatter().Format(e, w);
        var lines = w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        using (var first = JsonDocument.Parse(lines[0]))
        {
            Assert.Equal("Ingested checkpoint 20261207T090155Z-55b90ef0 of shop/web/app: 30208 bytes, stored 1840 bytes (Zstd), sha256:8bd0",
                first.RootElement.GetProperty("msg").GetString());
            Assert.Equal("shop", first.RootElement.GetProperty("Namespace").GetString());
            Assert.False(first.RootElement.TryGetProperty("namespace", out _), lines[0]);
        }
        using (var second = JsonDocument.Parse(lines[1]))
            Assert.StartsWith("Ingested checkpoint 20261207T090155Z-a51eb656 of shop/api/api: ", second.RootElement.GetProperty("msg").GetString());
        // the journal's rendering (strings quoted) and the property, as the journald sink reads them
        Assert.StartsWith("Ingested checkpoint \"20261207T090155Z-55b90ef0\" of \"shop\"/\"web\"/\"app\": ", sink.Events[0].RenderMessage());
        Assert.Equal(["CheckpointId", "Compression", "Container", "Digest", "Namespace", "Size", "SourceContext", "UncompressedSize", "Workload"],
            sink.Events[0].Properties.Keys.Where(k => k != "EventId").Order(StringComparer.Ordinal));
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

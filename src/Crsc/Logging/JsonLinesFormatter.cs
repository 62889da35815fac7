using System.Text.Encodings.Web;
using System.Text.Json;
using Serilog.Events;
using Serilog.Formatting;

namespace Crsc.Logging;

/// <summary>
/// One JSON object per line for container log collectors (static-pod mode):
/// <c>{"time":…,"level":…,"msg":…,"logger":…,"error":…, &lt;properties&gt;}</c>. Written with
/// <see cref="Utf8JsonWriter"/>, no reflection.
/// </summary>
public sealed class JsonLinesFormatter : ITextFormatter
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public void Format(LogEvent logEvent, TextWriter output)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("time", logEvent.Timestamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("level", LevelName(logEvent.Level));
            w.WriteString("msg", RenderLiteral(logEvent));
            if (logEvent.Exception is { } ex) w.WriteString("error", ex.ToString());
            foreach (var (name, value) in logEvent.Properties)
            {
                var key = name == "SourceContext" ? "logger" : name;
                if (key is "time" or "level" or "msg" or "error") key = "_" + key;
                w.WritePropertyName(key);
                WriteValue(w, value);
            }
            w.WriteEndObject();
        }
        output.Write(System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        output.Write('\n');
    }

    /// <summary>The message with string values as they are (Serilog's default rendering quotes them).</summary>
    internal static string RenderLiteral(LogEvent logEvent)
    {
        var sb = new System.Text.StringBuilder();
        using var sw = new StringWriter(sb, System.Globalization.CultureInfo.InvariantCulture);
        foreach (var token in logEvent.MessageTemplate.Tokens)
        {
            if (token is Serilog.Parsing.PropertyToken p && logEvent.Properties.TryGetValue(p.PropertyName, out var value))
            {
                if (value is ScalarValue { Value: string text }) sw.Write(text);
                else value.Render(sw, p.Format, System.Globalization.CultureInfo.InvariantCulture);
            }
            else token.Render(logEvent.Properties, sw, System.Globalization.CultureInfo.InvariantCulture);
        }
        sw.Flush();
        return sb.ToString();
    }

    public static string LevelName(LogEventLevel level) => level switch
    {
        LogEventLevel.Verbose => "trace",
        LogEventLevel.Debug => "debug",
        LogEventLevel.Information => "info",
        LogEventLevel.Warning => "warn",
        LogEventLevel.Error => "error",
        _ => "fatal",
    };

    private static void WriteValue(Utf8JsonWriter w, LogEventPropertyValue value)
    {
        switch (value)
        {
            case ScalarValue { Value: null }: w.WriteNullValue(); break;
            case ScalarValue { Value: bool b }: w.WriteBooleanValue(b); break;
            case ScalarValue { Value: int or long or short or byte or uint or ulong or ushort or sbyte } s:
                w.WriteRawValue(Convert.ToString(s.Value, System.Globalization.CultureInfo.InvariantCulture)!); break;
            case ScalarValue { Value: double d } when double.IsFinite(d): w.WriteNumberValue(d); break;
            case ScalarValue { Value: decimal m }: w.WriteNumberValue(m); break;
            case ScalarValue { Value: DateTimeOffset t }: w.WriteStringValue(t.UtcDateTime.ToString("O", System.Globalization.CultureInfo.InvariantCulture)); break;
            case ScalarValue { Value: DateTime t }: w.WriteStringValue(t.ToString("O", System.Globalization.CultureInfo.InvariantCulture)); break;
            case ScalarValue s: w.WriteStringValue(Convert.ToString(s.Value, System.Globalization.CultureInfo.InvariantCulture)); break;
            case SequenceValue seq:
                w.WriteStartArray();
                foreach (var e in seq.Elements) WriteValue(w, e);
                w.WriteEndArray();
                break;
            case StructureValue st:
                w.WriteStartObject();
                foreach (var p in st.Properties) { w.WritePropertyName(p.Name); WriteValue(w, p.Value); }
                w.WriteEndObject();
                break;
            case DictionaryValue dict:
                w.WriteStartObject();
                foreach (var (k, v) in dict.Elements)
                {
                    w.WritePropertyName(Convert.ToString(k.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "");
                    WriteValue(w, v);
                }
                w.WriteEndObject();
                break;
            default: w.WriteStringValue(value.ToString()); break;
        }
    }
}

using System.Globalization;
using System.Text;
using Serilog.Events;

namespace Crsc.Systemd.Journal;

/// <summary>
/// Property values as journal field values: scalars as plain text (no quotes, invariant culture), structures,
/// sequences and dictionaries as compact JSON.
/// </summary>
internal static class JournalValueFormatter
{
    public static string Format(LogEventPropertyValue value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value is ScalarValue scalar) return FormatScalar(scalar.Value);
        var text = new StringBuilder();
        WriteJson(value, text);
        return text.ToString();
    }

    public static string FormatScalar(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        DateTimeOffset d => d.ToString("O", CultureInfo.InvariantCulture),
        DateTime d => d.ToString("O", CultureInfo.InvariantCulture),
        TimeSpan t => t.ToString("c", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static void WriteJson(LogEventPropertyValue value, StringBuilder text)
    {
        switch (value)
        {
            case ScalarValue scalar:
                WriteJsonScalar(scalar.Value, text);
                break;
            case SequenceValue sequence:
                text.Append('[');
                for (var i = 0; i < sequence.Elements.Count; i++)
                {
                    if (i > 0) text.Append(',');
                    WriteJson(sequence.Elements[i], text);
                }
                text.Append(']');
                break;
            case StructureValue structure:
                text.Append('{');
                var first = true;
                if (structure.TypeTag is { } tag)
                {
                    WriteJsonString("$type", text);
                    text.Append(':');
                    WriteJsonString(tag, text);
                    first = false;
                }
                foreach (var property in structure.Properties)
                {
                    if (!first) text.Append(',');
                    first = false;
                    WriteJsonString(property.Name, text);
                    text.Append(':');
                    WriteJson(property.Value, text);
                }
                text.Append('}');
                break;
            case DictionaryValue dictionary:
                text.Append('{');
                var firstEntry = true;
                foreach (var (key, element) in dictionary.Elements)
                {
                    if (!firstEntry) text.Append(',');
                    firstEntry = false;
                    WriteJsonString(FormatScalar(key.Value), text);
                    text.Append(':');
                    WriteJson(element, text);
                }
                text.Append('}');
                break;
            default:
                WriteJsonString(value.ToString(), text);
                break;
        }
    }

    private static void WriteJsonScalar(object? value, StringBuilder text)
    {
        switch (value)
        {
            case null:
                text.Append("null");
                break;
            case bool b:
                text.Append(b ? "true" : "false");
                break;
            case byte or sbyte or short or ushort or int or uint or long or ulong or decimal:
                text.Append(((IFormattable)value).ToString(null, CultureInfo.InvariantCulture));
                break;
            case double d when double.IsFinite(d):
                text.Append(d.ToString("R", CultureInfo.InvariantCulture));
                break;
            case float f when float.IsFinite(f):
                text.Append(f.ToString("R", CultureInfo.InvariantCulture));
                break;
            default:
                WriteJsonString(FormatScalar(value), text);
                break;
        }
    }

    private static void WriteJsonString(string value, StringBuilder text)
    {
        text.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"': text.Append("\\\""); break;
                case '\\': text.Append("\\\\"); break;
                case '\n': text.Append("\\n"); break;
                case '\r': text.Append("\\r"); break;
                case '\t': text.Append("\\t"); break;
                case < ' ':
                    text.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    break;
                default: text.Append(c); break;
            }
        }
        text.Append('"');
    }
}

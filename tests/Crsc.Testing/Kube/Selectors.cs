using System.Text.Json.Nodes;

namespace Crsc.Testing.Kube;

/// <summary>A label selector in the API's string form: <c>a=b, c!=d, e in (f,g), h notin (i), j, !k</c>.</summary>
public sealed class LabelSelectorExpression
{
    private enum Op { Equals, NotEquals, In, NotIn, Exists, DoesNotExist }
    private sealed record Requirement(string Key, Op Op, string[] Values);

    private readonly List<Requirement> _requirements;

    private LabelSelectorExpression(List<Requirement> requirements) => _requirements = requirements;

    /// <exception cref="FormatException">not a valid selector (the server answers 400)</exception>
    public static LabelSelectorExpression Parse(string? text)
    {
        var list = new List<Requirement>();
        if (string.IsNullOrWhiteSpace(text)) return new(list);
        var i = 0;
        while (i < text.Length)
        {
            SkipSpace(text, ref i);
            if (i >= text.Length) break;
            var negated = false;
            if (text[i] == '!') { negated = true; i++; SkipSpace(text, ref i); }
            var key = ReadWord(text, ref i);
            if (key.Length == 0) throw new FormatException($"label selector '{text}': a key is expected at {i}");
            SkipSpace(text, ref i);
            if (negated)
            {
                list.Add(new(key, Op.DoesNotExist, []));
            }
            else if (i >= text.Length || text[i] == ',')
            {
                list.Add(new(key, Op.Exists, []));
            }
            else if (text[i] == '=' || text[i] == '!')
            {
                Op op;
                if (text[i] == '!')
                {
                    if (i + 1 >= text.Length || text[i + 1] != '=') throw new FormatException($"label selector '{text}': '!=' expected at {i}");
                    op = Op.NotEquals; i += 2;
                }
                else
                {
                    op = Op.Equals; i += (i + 1 < text.Length && text[i + 1] == '=') ? 2 : 1;
                }
                SkipSpace(text, ref i);
                var value = ReadWord(text, ref i);
                list.Add(new(key, op, [value]));
            }
            else
            {
                var word = ReadWord(text, ref i);
                var op = word switch
                {
                    "in" => Op.In,
                    "notin" => Op.NotIn,
                    _ => throw new FormatException($"label selector '{text}': unknown operator '{word}'"),
                };
                SkipSpace(text, ref i);
                if (i >= text.Length || text[i] != '(') throw new FormatException($"label selector '{text}': '(' expected after {word}");
                var close = text.IndexOf(')', i);
                if (close < 0) throw new FormatException($"label selector '{text}': ')' missing");
                var values = text[(i + 1)..close].Split(',', StringSplitOptions.TrimEntries);
                if (values.Length == 0 || values.All(v => v.Length == 0)) throw new FormatException($"label selector '{text}': empty set");
                list.Add(new(key, op, values));
                i = close + 1;
            }
            SkipSpace(text, ref i);
            if (i < text.Length)
            {
                if (text[i] != ',') throw new FormatException($"label selector '{text}': ',' expected at {i}");
                i++;
            }
        }
        return new(list);
    }

    public bool Matches(JsonObject obj)
    {
        var labels = obj["metadata"]?["labels"] as JsonObject;
        foreach (var r in _requirements)
        {
            string? value = labels?[r.Key]?.GetValue<string>();
            var ok = r.Op switch
            {
                Op.Exists => value is not null,
                Op.DoesNotExist => value is null,
                Op.Equals => value == r.Values[0],
                Op.NotEquals => value != r.Values[0],
                Op.In => value is not null && r.Values.Contains(value),
                Op.NotIn => value is null || !r.Values.Contains(value),
                _ => false,
            };
            if (!ok) return false;
        }
        return true;
    }

    private static void SkipSpace(string text, ref int i) { while (i < text.Length && char.IsWhiteSpace(text[i])) i++; }

    private static string ReadWord(string text, ref int i)
    {
        var start = i;
        while (i < text.Length && (char.IsLetterOrDigit(text[i]) || text[i] is '-' or '_' or '.' or '/')) i++;
        return text[start..i];
    }
}

/// <summary>A field selector: <c>metadata.name=x,spec.nodeName!=y</c> (<c>=</c>, <c>==</c>, <c>!=</c>).</summary>
public sealed class FieldSelectorExpression
{
    private readonly List<(string Field, bool Equal, string Value)> _terms;

    private FieldSelectorExpression(List<(string, bool, string)> terms) => _terms = terms;

    /// <param name="supported">field paths this resource can be selected by (the server answers 400 for others)</param>
    public static FieldSelectorExpression Parse(string? text, IReadOnlySet<string> supported)
    {
        var terms = new List<(string, bool, string)>();
        if (string.IsNullOrWhiteSpace(text)) return new(terms);
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            string field, value;
            bool equal;
            var ne = raw.IndexOf("!=", StringComparison.Ordinal);
            if (ne > 0) { field = raw[..ne]; value = raw[(ne + 2)..]; equal = false; }
            else
            {
                var eq = raw.IndexOf('=');
                if (eq <= 0) throw new FormatException($"invalid field selector: '{raw}'");
                field = raw[..eq];
                value = raw[(eq + 1)..].TrimStart('=');
                equal = true;
            }
            field = field.Trim();
            if (!supported.Contains(field)) throw new FormatException($"field label not supported: {field}");
            terms.Add((field, equal, value.Trim()));
        }
        return new(terms);
    }

    public bool Matches(JsonObject obj)
    {
        foreach (var (field, equal, value) in _terms)
        {
            JsonNode? node = obj;
            foreach (var part in field.Split('.')) node = node is JsonObject o ? o[part] : null;
            var actual = node is JsonValue v ? v.ToString() : "";
            if ((actual == value) != equal) return false;
        }
        return true;
    }
}

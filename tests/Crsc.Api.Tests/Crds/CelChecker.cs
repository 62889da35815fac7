using System.Text.Json.Nodes;

namespace Crsc.Api.Tests.Crds;

/// <summary>
/// A syntax and reference check of CEL validation rules, short of a CEL compiler: the rule must
/// tokenize (strings closed, known operators), brackets must balance, every identifier must be
/// <c>self</c>/<c>oldSelf</c>, a macro's loop variable, a literal or a known function, and every field
/// path from <c>self</c>/<c>oldSelf</c> must exist in the schema the rule is attached to — with methods
/// only on values of a type that has them.
/// </summary>
public static class CelChecker
{
    private static readonly HashSet<string> GlobalFunctions =
    [
        "has", "size", "int", "uint", "double", "string", "bytes", "bool", "duration", "timestamp", "type", "dyn",
        "matches", "quantity", "isQuantity", "url", "isURL", "ip", "isIP", "cidr", "isCIDR", "format",
    ];

    private static readonly HashSet<string> Macros = ["all", "exists", "exists_one", "map", "filter"];

    private static readonly Dictionary<string, string?> Methods = new()
    {
        // method -> receiver type it needs (null: any)
        ["matches"] = "string", ["startsWith"] = "string", ["endsWith"] = "string", ["contains"] = "string",
        ["lowerAscii"] = "string", ["upperAscii"] = "string", ["trim"] = "string", ["split"] = "string",
        ["indexOf"] = "string", ["lastIndexOf"] = "string", ["replace"] = "string", ["substring"] = "string",
        ["charAt"] = "string", ["size"] = null, ["all"] = null, ["exists"] = null, ["exists_one"] = null,
        ["map"] = null, ["filter"] = null, ["isSorted"] = "array", ["sum"] = "array", ["min"] = "array",
        ["max"] = "array", ["getHours"] = null, ["getMinutes"] = null, ["getSeconds"] = null,
    };

    private enum Kind { Ident, Number, String, Op, Open, Close, Dot, Comma }

    private sealed record Token(Kind Kind, string Text, int Position);

    public static IReadOnlyList<string> Check(string rule, JsonObject schema)
    {
        var errors = new List<string>();
        List<Token> tokens;
        try { tokens = Tokenize(rule); }
        catch (FormatException e) { return [e.Message]; }
        if (tokens.Count == 0) return ["empty rule"];

        // Brackets balance and match.
        var stack = new Stack<Token>();
        foreach (var t in tokens)
        {
            if (t.Kind == Kind.Open) stack.Push(t);
            else if (t.Kind == Kind.Close)
            {
                if (stack.Count == 0) { errors.Add($"unbalanced '{t.Text}' at {t.Position}"); continue; }
                var open = stack.Pop();
                if ((open.Text, t.Text) is not (("(", ")") or ("[", "]") or ("{", "}")))
                    errors.Add($"'{open.Text}' at {open.Position} closed by '{t.Text}' at {t.Position}");
            }
        }
        foreach (var open in stack) errors.Add($"'{open.Text}' at {open.Position} is never closed");

        // Operands and operators alternate: no two operands or two binary operators in a row.
        for (var i = 1; i < tokens.Count; i++)
        {
            var (a, b) = (tokens[i - 1], tokens[i]);
            if (IsOperand(a) && IsOperand(b)) errors.Add($"'{a.Text}' followed by '{b.Text}' at {b.Position}");
            if (a.Kind == Kind.Op && b.Kind == Kind.Op && b.Text != "!" && b.Text != "-")
                errors.Add($"operator '{a.Text}' followed by '{b.Text}' at {b.Position}");
        }
        if (tokens[^1].Kind is Kind.Op or Kind.Dot or Kind.Comma) errors.Add($"rule ends with '{tokens[^1].Text}'");
        if (tokens[0].Kind is Kind.Op && tokens[0].Text is not ("!" or "-")) errors.Add($"rule starts with '{tokens[0].Text}'");

        // Loop variables of macros: x in `.all(x, ...)`.
        var loopVars = new HashSet<string>();
        for (var i = 0; i + 3 < tokens.Count; i++)
            if (tokens[i].Kind == Kind.Dot && Macros.Contains(tokens[i + 1].Text) && tokens[i + 2].Text == "("
                && tokens[i + 3].Kind == Kind.Ident)
                loopVars.Add(tokens[i + 3].Text);

        // Identifiers and field paths.
        for (var i = 0; i < tokens.Count; i++)
        {
            var t = tokens[i];
            if (t.Kind != Kind.Ident || (i > 0 && tokens[i - 1].Kind == Kind.Dot)) continue;
            var next = i + 1 < tokens.Count ? tokens[i + 1] : null;
            if (t.Text is "true" or "false" or "null" or "in") continue;
            if (loopVars.Contains(t.Text)) { SkipChain(tokens, ref i); continue; }
            if (next?.Text == "(")
            {
                if (!GlobalFunctions.Contains(t.Text)) errors.Add($"unknown function '{t.Text}'");
                continue;
            }
            if (t.Text is not ("self" or "oldSelf")) { errors.Add($"unknown identifier '{t.Text}' at {t.Position}"); continue; }

            // Walk self.a.b… through the schema; stop at a method call.
            JsonObject? node = schema;
            var path = t.Text;
            var j = i + 1;
            while (j + 1 < tokens.Count && tokens[j].Kind == Kind.Dot && tokens[j + 1].Kind == Kind.Ident)
            {
                var name = tokens[j + 1].Text;
                var isCall = j + 2 < tokens.Count && tokens[j + 2].Text == "(";
                if (isCall)
                {
                    if (!Methods.TryGetValue(name, out var receiver)) errors.Add($"unknown method '{name}' on {path}");
                    else if (receiver is not null && node is not null && StructuralSchemaChecker.Str(node, "type") is { } rt && rt != receiver)
                        errors.Add($"method '{name}' needs a {receiver}, {path} is {rt}");
                    break;
                }
                if (node is not null && !Open(node))
                {
                    if (StructuralSchemaChecker.Str(node, "type") != "object") { errors.Add($"{path} is not an object: no field '{name}'"); node = null; }
                    else
                    {
                        node = node["properties"]?[name] as JsonObject;
                        if (node is null) errors.Add($"{path} has no field '{name}'");
                    }
                }
                path += "." + name;
                j += 2;
            }
            i = j - 1;
        }
        return errors;
    }

    private static bool Open(JsonObject node) =>
        node["x-kubernetes-preserve-unknown-fields"] is JsonValue v && v.GetValue<bool>() || node["additionalProperties"] is not null;

    private static void SkipChain(List<Token> tokens, ref int i)
    {
        while (i + 2 < tokens.Count && tokens[i + 1].Kind == Kind.Dot && tokens[i + 2].Kind == Kind.Ident) i += 2;
    }

    private static bool IsOperand(Token t) =>
        t.Kind is Kind.Number or Kind.String || (t.Kind == Kind.Ident && t.Text != "in");

    private static List<Token> Tokenize(string text)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            var start = i;
            var raw = false;
            if ((c is 'r' or 'R' or 'b' or 'B') && i + 1 < text.Length && text[i + 1] is '\'' or '"')
            {
                raw = c is 'r' or 'R';
                i++;
                c = text[i];
            }
            if (c is '\'' or '"')
            {
                var triple = i + 2 < text.Length && text[i + 1] == c && text[i + 2] == c;
                var quote = triple ? new string(c, 3) : c.ToString();
                i += quote.Length;
                var closed = false;
                while (i < text.Length)
                {
                    if (!raw && text[i] == '\\') { i += 2; continue; }
                    if (!triple && text[i] == '\n') break;
                    if (string.CompareOrdinal(text, i, quote, 0, quote.Length) == 0) { i += quote.Length; closed = true; break; }
                    i++;
                }
                if (!closed) throw new FormatException($"string starting at {start} is not closed");
                tokens.Add(new Token(Kind.String, text[start..i], start));
                continue;
            }
            if (char.IsAsciiDigit(c))
            {
                while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] == '.' && i + 1 < text.Length && char.IsAsciiDigit(text[i + 1]))) i++;
                tokens.Add(new Token(Kind.Number, text[start..i], start));
                continue;
            }
            if (char.IsAsciiLetter(c) || c == '_')
            {
                while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] == '_')) i++;
                tokens.Add(new Token(Kind.Ident, text[start..i], start));
                continue;
            }
            var two = i + 1 < text.Length ? text.Substring(i, 2) : "";
            if (two is "==" or "!=" or "<=" or ">=" or "&&" or "||")
            {
                tokens.Add(new Token(Kind.Op, two, start));
                i += 2;
                continue;
            }
            var kind = c switch
            {
                '(' or '[' or '{' => Kind.Open,
                ')' or ']' or '}' => Kind.Close,
                '.' => Kind.Dot,
                ',' => Kind.Comma,
                '<' or '>' or '!' or '+' or '-' or '*' or '/' or '%' or '?' or ':' => Kind.Op,
                _ => throw new FormatException($"unexpected character '{c}' at {i}"),
            };
            tokens.Add(new Token(kind, c.ToString(), start));
            i++;
        }
        return tokens;
    }
}

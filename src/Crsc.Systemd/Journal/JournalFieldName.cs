using System.Collections.Concurrent;
using System.Text;

namespace Crsc.Systemd.Journal;

/// <summary>
/// journald field names: upper-case A–Z, digits and <c>_</c>, not starting with <c>_</c> (trusted fields) or a
/// digit, at most 64 characters. Property names become such names: <c>SourceContext</c> → <c>SOURCE_CONTEXT</c>,
/// <c>HTTPStatus</c> → <c>HTTP_STATUS</c>, <c>pod.name</c> → <c>POD_NAME</c>.
/// </summary>
public static class JournalFieldName
{
    public const int MaxLength = 64;

    private const int CacheLimit = 4096;
    private static readonly ConcurrentDictionary<string, string?> Cache = new(StringComparer.Ordinal);

    /// <summary>True when <paramref name="name"/> can be sent as it is.</summary>
    public static bool IsValid(ReadOnlySpan<char> name)
    {
        if (name.IsEmpty || name.Length > MaxLength) return false;
        if (name[0] is '_' or (>= '0' and <= '9')) return false;
        foreach (var c in name)
            if (!(c is >= 'A' and <= 'Z' or >= '0' and <= '9' or '_')) return false;
        return true;
    }

    /// <summary>
    /// The journald field name for a property name: camel case split into snake case, upper-cased, any other
    /// character as <c>_</c> (runs collapsed, none leading or trailing), <c>F_</c> before a leading digit, cut at
    /// 64 characters. Null when nothing usable is left (e.g. <c>"$$"</c>).
    /// </summary>
    public static string? Sanitize(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (IsValid(name)) return name;
        if (Cache.TryGetValue(name, out var cached)) return cached;
        var result = SanitizeCore(name);
        if (Cache.Count < CacheLimit) Cache.TryAdd(name, result);
        return result;
    }

    private static string? SanitizeCore(string name)
    {
        var text = new StringBuilder(name.Length + 8);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsAsciiLetterOrDigit(c))
            {
                if (i > 0 && char.IsAsciiLetterUpper(c) && text.Length > 0 && text[^1] != '_')
                {
                    var previous = name[i - 1];
                    var next = i + 1 < name.Length ? name[i + 1] : '\0';
                    // podName → POD_NAME, ipv4Address → IPV4_ADDRESS, HTTPRequest → HTTP_REQUEST
                    if (char.IsAsciiLetterLower(previous) || char.IsAsciiDigit(previous)
                        || (char.IsAsciiLetterUpper(previous) && char.IsAsciiLetterLower(next)))
                        text.Append('_');
                }
                text.Append(char.ToUpperInvariant(c));
            }
            else if (text.Length > 0 && text[^1] != '_')
            {
                text.Append('_');
            }
        }
        while (text.Length > 0 && text[^1] == '_') text.Length--;
        if (text.Length == 0) return null;
        if (char.IsAsciiDigit(text[0])) text.Insert(0, "F_");
        if (text.Length > MaxLength)
        {
            text.Length = MaxLength;
            while (text[^1] == '_') text.Length--;
        }
        return text.ToString();
    }
}

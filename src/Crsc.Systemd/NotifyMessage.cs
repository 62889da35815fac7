using System.Text;

namespace Crsc.Systemd;

/// <summary>
/// Formats an sd_notify datagram: newline-separated <c>KEY=VALUE</c> lines. Pure; no I/O.
/// </summary>
internal static class NotifyMessage
{
    /// <summary>systemd reads at most PIPE_BUF (4096) bytes of a notification; keep any one value well below.</summary>
    internal const int MaxValueBytes = 2048;

    private const string Ellipsis = "…";

    /// <summary>
    /// <c>KEY=VALUE\n…</c>. Keys must be upper-case letters, digits and <c>_</c> (a programming error otherwise).
    /// Values are made single-line (CR/LF become one space), NUL bytes dropped and long values cut at
    /// <see cref="MaxValueBytes"/> UTF-8 bytes.
    /// </summary>
    public static string Format(IEnumerable<KeyValuePair<string, string>> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var text = new StringBuilder();
        foreach (var (key, value) in fields)
        {
            if (!IsValidKey(key))
                throw new ArgumentException($"'{key}' is not a valid sd_notify key (A-Z, 0-9, _)", nameof(fields));
            if (text.Length > 0) text.Append('\n');
            text.Append(key).Append('=').Append(SanitizeValue(value));
        }
        if (text.Length == 0) throw new ArgumentException("a notification needs at least one field", nameof(fields));
        return text.ToString();
    }

    internal static bool IsValidKey(string? key)
    {
        if (string.IsNullOrEmpty(key)) return false;
        foreach (var c in key)
            if (!(c is >= 'A' and <= 'Z' or >= '0' and <= '9' or '_')) return false;
        return true;
    }

    /// <summary>One line, no NUL, at most <see cref="MaxValueBytes"/> UTF-8 bytes.</summary>
    internal static string SanitizeValue(string? value)
    {
        if (string.IsNullOrEmpty(value)) return "";
        if (value.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0)
        {
            var line = new StringBuilder(value.Length);
            var lastWasBreak = false;
            foreach (var c in value)
            {
                if (c is '\r' or '\n')
                {
                    if (!lastWasBreak) line.Append(' ');
                    lastWasBreak = true;
                    continue;
                }
                lastWasBreak = false;
                if (c != '\0') line.Append(c);
            }
            value = line.ToString();
        }
        if (Encoding.UTF8.GetByteCount(value) <= MaxValueBytes) return value;

        // cut at a character boundary so the result plus the ellipsis fits
        var budget = MaxValueBytes - Encoding.UTF8.GetByteCount(Ellipsis);
        var used = 0;
        var end = 0;
        while (end < value.Length)
        {
            var width = char.IsHighSurrogate(value[end]) && end + 1 < value.Length && char.IsLowSurrogate(value[end + 1]) ? 2 : 1;
            var bytes = Encoding.UTF8.GetByteCount(value.AsSpan(end, width));
            if (used + bytes > budget) break;
            used += bytes;
            end += width;
        }
        return string.Concat(value.AsSpan(0, end), Ellipsis);
    }
}

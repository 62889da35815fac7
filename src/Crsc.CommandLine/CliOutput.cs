using System.Globalization;
using System.Text;
using Crsc.Api;

namespace Crsc.Cli;

/// <summary>Formatting and parsing shared by the operator verbs: human sizes and ages, durations, plain aligned tables.</summary>
public static class CliOutput
{
    private static readonly string[] Units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

    /// <summary>1536 → "1.5 KiB"; bytes below 1 KiB as is.</summary>
    public static string Bytes(long bytes)
    {
        if (bytes < 1024) return bytes.ToString(CultureInfo.InvariantCulture) + " B";
        double v = bytes;
        var u = 0;
        while (v >= 1024 && u < Units.Length - 1) { v /= 1024; u++; }
        return v.ToString(v < 10 ? "0.0" : "0", CultureInfo.InvariantCulture) + " " + Units[u];
    }

    /// <summary>Kubernetes-style age: 45s, 12m, 3h, 5d.</summary>
    public static string Age(DateTimeOffset since, DateTimeOffset now)
    {
        var d = now - since;
        if (d < TimeSpan.Zero) d = TimeSpan.Zero;
        return d.TotalSeconds < 120 ? $"{(int)d.TotalSeconds}s"
            : d.TotalMinutes < 120 ? $"{(int)d.TotalMinutes}m"
            : d.TotalHours < 48 ? $"{(int)d.TotalHours}h"
            : $"{(int)d.TotalDays}d";
    }

    /// <summary>"sha256:0123456789abcdef…" → "0123456789ab".</summary>
    public static string ShortDigest(string digest)
    {
        var hex = digest.StartsWith("sha256:", StringComparison.Ordinal) ? digest[7..] : digest;
        return hex.Length > 12 ? hex[..12] : hex;
    }

    /// <summary>
    /// The value of a duration flag: a Go duration (<c>90s</c>, <c>5m</c>, <c>1h30m</c>) or whole days (<c>7d</c>); positive,
    /// and always with a unit. A bare number is refused, not read as seconds: <c>gc --max-age 7</c> meant 7 seconds and
    /// deleted nearly everything. (Annotations and CRD fields still take bare seconds; that is their documented grammar.)
    /// </summary>
    public static bool TryParseDuration(string text, out TimeSpan value)
    {
        value = default;
        if (IsBareNumber(text)) return false;
        if (text.Length > 1 && text[^1] == 'd' && int.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var days))
        {
            if (days <= 0 || days > 36500) return false;
            value = TimeSpan.FromDays(days);
            return true;
        }
        return GoDuration.TryParse(text, out value) && value > TimeSpan.Zero;
    }

    /// <summary>
    /// The usage message for a duration flag whose value <see cref="TryParseDuration"/> refused: a bare number is told it
    /// needs a unit (with the value in each unit <paramref name="units"/> offers); anything else is not <paramref name="expected"/>.
    /// </summary>
    public static string DurationProblem(string flag, string text, string expected, string units = "smh")
    {
        if (!IsBareNumber(text)) return $"{flag} '{text}' is not {expected}";
        var options = units.Select(u => text + u).ToList();
        return $"{flag} '{text}' has no unit: write {string.Join(", ", options[..^1])} or {options[^1]} (a bare number is not taken as seconds)";
    }

    private static bool IsBareNumber(string text) => text.Length > 0 && text.All(char.IsAsciiDigit);

    /// <summary>Bytes (<c>1048576</c>) or with a unit: <c>K/KiB</c>, <c>M/MiB</c>, <c>G/GiB</c>, <c>T/TiB</c> (powers of 1024), <c>KB/MB/GB/TB</c> (powers of 1000).</summary>
    public static bool TryParseSize(string text, out long bytes)
    {
        bytes = 0;
        var t = text.Trim();
        var i = 0;
        while (i < t.Length && (char.IsAsciiDigit(t[i]) || t[i] == '.')) i++;
        if (i == 0 || !double.TryParse(t.AsSpan(0, i), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number)) return false;
        double multiplier = t[i..].Trim().ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "K" or "KI" or "KIB" => 1L << 10,
            "M" or "MI" or "MIB" => 1L << 20,
            "G" or "GI" or "GIB" => 1L << 30,
            "T" or "TI" or "TIB" => 1L << 40,
            "KB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "TB" => 1e12,
            _ => -1,
        };
        if (multiplier < 0) return false;
        var value = number * multiplier;
        if (value < 0 || value > long.MaxValue / 2) return false;
        bytes = (long)value;
        return true;
    }

    /// <summary>Writes rows as columns separated by two spaces, padded to the widest cell; the last column is not padded.</summary>
    public static void Table(TextWriter output, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = new List<IReadOnlyList<string>> { header };
        all.AddRange(rows);
        var widths = new int[header.Count];
        foreach (var r in all)
            for (var c = 0; c < widths.Length; c++) widths[c] = Math.Max(widths[c], r[c].Length);
        var sb = new StringBuilder();
        foreach (var r in all)
        {
            sb.Clear();
            for (var c = 0; c < widths.Length; c++)
            {
                if (c == widths.Length - 1) sb.Append(r[c]);
                else sb.Append(r[c].PadRight(widths[c] + 2));
            }
            output.WriteLine(sb.ToString().TrimEnd());
        }
    }

    /// <summary>Writes <c>PROGRAM: MESSAGE</c> to stderr; exit 1.</summary>
    public static int Fail(ParsedCommand p, string message)
    {
        p.Error.WriteLine($"{p.Program}: {message}");
        return ExitCodes.Failure;
    }

    /// <summary>Writes <c>PROGRAM: MESSAGE</c> and where help is to stderr; exit 2.</summary>
    public static int Usage(ParsedCommand p, string message)
    {
        p.Error.WriteLine($"{p.Program}: {message}");
        p.Error.WriteLine($"Run '{p.Path} --help' for usage.");
        return ExitCodes.Usage;
    }
}

using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace Crsc.Api;

/// <summary>
/// Durations as Kubernetes users write them: Go's <c>time.ParseDuration</c> syntax without a sign
/// (<c>30s</c>, <c>5m</c>, <c>1h30m</c>, <c>1.5h</c>, <c>250ms</c>, units <c>ns us µs ms s m h</c>)
/// or a plain number of seconds (<c>"300"</c>). The same grammar as the CRD schemas' pattern
/// <see cref="Pattern"/>; the annotation parser and the reconcilers use it too.
/// </summary>
/// <remarks>
/// Resolution is the <see cref="TimeSpan"/> tick (100 ns): a value is rounded up to whole ticks, so
/// a duration with a non-zero digit is never zero (the schemas' "greater than zero" rule is exactly
/// "has a non-zero digit"). Negative durations are not accepted: nothing in crsc's API waits a negative time.
/// </remarks>
public static class GoDuration
{
    /// <summary>The schema pattern (RE2 and .NET compatible) every duration field carries.</summary>
    public const string Pattern = @"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$|^[0-9]+$";

    /// <summary>Longest text accepted; the schemas say the same with <c>maxLength</c>.</summary>
    public const int MaxLength = 64;

    /// <summary>Parses <paramref name="text"/>; throws <see cref="FormatException"/> naming the problem.</summary>
    public static TimeSpan Parse(string text)
    {
        if (!TryParse(text, out var value, out var error)) throw new FormatException(error);
        return value;
    }

    public static bool TryParse([NotNullWhen(true)] string? text, out TimeSpan value) =>
        TryParse(text, out value, out _);

    /// <summary>Parses <paramref name="text"/>; on failure <paramref name="error"/> says why.</summary>
    public static bool TryParse(
        [NotNullWhen(true)] string? text, out TimeSpan value, [NotNullWhen(false)] out string? error)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrEmpty(text))
        {
            error = "a duration must not be empty (examples: 30s, 5m, 1h30m, or plain seconds like 300)";
            return false;
        }
        if (text.Length > MaxLength)
        {
            error = $"duration is longer than {MaxLength} characters";
            return false;
        }

        // Plain seconds: digits only.
        if (IsAllDigits(text))
        {
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
                || seconds > (long)TimeSpan.MaxValue.TotalSeconds)
            {
                error = $"duration '{text}' is too large";
                return false;
            }
            value = TimeSpan.FromSeconds(seconds);
            error = null;
            return true;
        }

        // Go syntax: one or more <number><unit>, number = digits [. digits].
        decimal totalTicks = 0;
        var i = 0;
        while (i < text.Length)
        {
            var start = i;
            while (i < text.Length && char.IsAsciiDigit(text[i])) i++;
            if (i == start)
            {
                error = $"duration '{text}' is not valid: expected a number at position {start + 1} (examples: 30s, 5m, 1h30m)";
                return false;
            }
            if (i < text.Length && text[i] == '.')
            {
                i++;
                var fractionStart = i;
                while (i < text.Length && char.IsAsciiDigit(text[i])) i++;
                if (i == fractionStart)
                {
                    error = $"duration '{text}' is not valid: expected digits after '.' at position {fractionStart}";
                    return false;
                }
            }
            var number = text.AsSpan(start, i - start);

            var unitStart = i;
            while (i < text.Length && !char.IsAsciiDigit(text[i]) && text[i] != '.') i++;
            var unit = text.AsSpan(unitStart, i - unitStart);
            if (unit.Length == 0)
            {
                error = $"duration '{text}' is not valid: missing unit after '{number}' (use ns, us, µs, ms, s, m or h)";
                return false;
            }
            long ticksPerUnit;
            decimal divisor = 1;
            switch (unit)
            {
                case "ns": ticksPerUnit = 1; divisor = 100; break; // 1 tick = 100 ns
                case "us" or "µs": ticksPerUnit = 10; break;
                case "ms": ticksPerUnit = TimeSpan.TicksPerMillisecond; break;
                case "s": ticksPerUnit = TimeSpan.TicksPerSecond; break;
                case "m": ticksPerUnit = TimeSpan.TicksPerMinute; break;
                case "h": ticksPerUnit = TimeSpan.TicksPerHour; break;
                default:
                    error = $"duration '{text}' has unknown unit '{unit}' (use ns, us, µs, ms, s, m or h)";
                    return false;
            }
            if (number.Length > 28 || !decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount))
            {
                error = $"duration '{text}' is too large";
                return false;
            }
            // Compare before multiplying: decimal overflows (throws) near 7.9e28.
            if (amount > (decimal)TimeSpan.MaxValue.Ticks * divisor / ticksPerUnit
                || (totalTicks += amount * ticksPerUnit / divisor) > TimeSpan.MaxValue.Ticks)
            {
                error = $"duration '{text}' is too large";
                return false;
            }
        }

        value = TimeSpan.FromTicks((long)Math.Min(decimal.Ceiling(totalTicks), TimeSpan.MaxValue.Ticks));
        error = null;
        return true;
    }

    /// <summary>
    /// Formats <paramref name="value"/> the short way a person writes it and <see cref="Parse"/> reads back:
    /// <c>1h30m</c>, <c>5m</c>, <c>45s</c>, <c>1.5s</c>, <c>250ms</c>, <c>0s</c>. Unlike Go's
    /// <c>String()</c>, zero components are left out (<c>1h</c>, not <c>1h0m0s</c>).
    /// </summary>
    public static string Format(TimeSpan value)
    {
        if (value < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(value), value, "negative durations have no text form here");
        var ticks = value.Ticks;
        if (ticks == 0) return "0s";

        if (ticks < TimeSpan.TicksPerSecond)
        {
            // Below a second: the largest unit that keeps it short, with a fraction (Go does the same).
            if (ticks < 10) return (ticks * 100).ToString(CultureInfo.InvariantCulture) + "ns";
            if (ticks < TimeSpan.TicksPerMillisecond) return Fraction(ticks, 10) + "us";
            return Fraction(ticks, TimeSpan.TicksPerMillisecond) + "ms";
        }

        var sb = new StringBuilder();
        var hours = ticks / TimeSpan.TicksPerHour;
        ticks -= hours * TimeSpan.TicksPerHour;
        var minutes = ticks / TimeSpan.TicksPerMinute;
        ticks -= minutes * TimeSpan.TicksPerMinute;
        if (hours > 0) sb.Append(hours.ToString(CultureInfo.InvariantCulture)).Append('h');
        if (minutes > 0) sb.Append(minutes.ToString(CultureInfo.InvariantCulture)).Append('m');
        if (ticks > 0) sb.Append(Fraction(ticks, TimeSpan.TicksPerSecond)).Append('s');
        return sb.ToString();
    }

    /// <summary><paramref name="ticks"/> / <paramref name="unit"/> as a decimal without trailing zeros.</summary>
    private static string Fraction(long ticks, long unit)
    {
        var whole = ticks / unit;
        var rest = ticks % unit;
        var text = whole.ToString(CultureInfo.InvariantCulture);
        if (rest == 0) return text;
        var digits = unit.ToString(CultureInfo.InvariantCulture).Length - 1; // unit is a power of ten
        var fraction = rest.ToString(CultureInfo.InvariantCulture).PadLeft(digits, '0').TrimEnd('0');
        return text + "." + fraction;
    }

    private static bool IsAllDigits(string text)
    {
        foreach (var c in text)
            if (!char.IsAsciiDigit(c)) return false;
        return true;
    }
}

using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Crsc.Controllers.Schedules;

/// <summary>
/// A five-field cron schedule (minute, hour, day of month, month, day of week), evaluated in UTC with minute
/// resolution, as Kubernetes CronJobs read it: numbers, <c>*</c> and <c>?</c>, ranges <c>a-b</c>, steps <c>*/n</c>,
/// <c>a-b/n</c> and <c>a/n</c> (from a to the field's maximum), lists <c>a,b-c</c>, month names <c>JAN</c>–<c>DEC</c>,
/// day names <c>SUN</c>–<c>SAT</c> (any case), day of week <c>7</c> = Sunday, and the macros <c>@yearly</c>
/// (<c>@annually</c>), <c>@monthly</c>, <c>@weekly</c>, <c>@daily</c>, <c>@hourly</c>. When both day fields are
/// restricted (neither is <c>*</c> or <c>?</c>), a day matches if either matches (Vixie cron's rule).
/// </summary>
public sealed class CronExpression
{
    // how far Next/Previous look before giving up (a schedule such as "0 0 30 2 *" never matches)
    private static readonly TimeSpan SearchLimit = TimeSpan.FromDays(366 * 5);

    private static readonly string[] MonthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    private static readonly string[] DayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

    private readonly ulong _minutes; // bit n: minute n
    private readonly ulong _hours;
    private readonly ulong _daysOfMonth; // bits 1..31
    private readonly ulong _months; // bits 1..12
    private readonly ulong _daysOfWeek; // bits 0..6, Sunday = 0
    private readonly bool _domStar;
    private readonly bool _dowStar;

    private CronExpression(string text, ulong minutes, ulong hours, ulong dom, ulong months, ulong dow, bool domStar, bool dowStar)
    {
        Text = text;
        _minutes = minutes;
        _hours = hours;
        _daysOfMonth = dom;
        _months = months;
        _daysOfWeek = dow;
        _domStar = domStar;
        _dowStar = dowStar;
    }

    /// <summary>The text it was parsed from.</summary>
    public string Text { get; }

    public override string ToString() => Text;

    /// <summary>Parses <paramref name="text"/>; throws <see cref="FormatException"/> naming the bad field.</summary>
    public static CronExpression Parse(string text) =>
        TryParse(text, out var cron, out var error) ? cron : throw new FormatException(error);

    public static bool TryParse([NotNullWhen(true)] string? text, [NotNullWhen(true)] out CronExpression? cron,
        [NotNullWhen(false)] out string? error)
    {
        cron = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "a cron schedule must not be empty (five fields like '*/15 * * * *', or @hourly, @daily, …)";
            return false;
        }
        var expanded = text.Trim() switch
        {
            "@yearly" or "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            var other => other,
        };
        if (expanded.StartsWith('@'))
        {
            error = $"cron schedule '{text}' is not valid: unknown macro (use @yearly, @annually, @monthly, @weekly, @daily or @hourly)";
            return false;
        }
        var fields = expanded.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length != 5)
        {
            error = $"cron schedule '{text}' is not valid: expected 5 fields (minute hour day-of-month month day-of-week), found {fields.Length}";
            return false;
        }
        if (!TryField(text, "minute", fields[0], 0, 59, null, out var minutes, out _, out error)
            || !TryField(text, "hour", fields[1], 0, 23, null, out var hours, out _, out error)
            || !TryField(text, "day of month", fields[2], 1, 31, null, out var dom, out var domStar, out error)
            || !TryField(text, "month", fields[3], 1, 12, MonthNames, out var months, out _, out error)
            || !TryField(text, "day of week", fields[4], 0, 7, DayNames, out var dow, out var dowStar, out error))
            return false;
        if ((dow & (1UL << 7)) != 0) dow = (dow & ~(1UL << 7)) | 1UL; // 7 is Sunday too
        cron = new CronExpression(text, minutes, hours, dom, months, dow, domStar, dowStar);
        return true;
    }

    private static bool TryField(string text, string name, string field, int min, int max, string[]? names,
        out ulong bits, out bool star, [NotNullWhen(false)] out string? error)
    {
        bits = 0;
        star = field is "*" or "?";
        foreach (var part in field.Split(','))
        {
            var problem = Part(part, min, max, names, ref bits);
            if (problem is not null)
            {
                error = $"cron schedule '{text}' is not valid: {name} field '{field}': {problem}";
                return false;
            }
        }
        error = null;
        return true;
    }

    /// <summary>Adds one list element (<c>*</c>, <c>n</c>, <c>a-b</c>, with an optional <c>/step</c>) to <paramref name="bits"/>; returns the problem or null.</summary>
    private static string? Part(string part, int min, int max, string[]? names, ref ulong bits)
    {
        if (part.Length == 0) return "empty list element";
        var slash = part.IndexOf('/');
        var range = slash < 0 ? part : part[..slash];
        var step = 1;
        if (slash >= 0)
        {
            var stepText = part[(slash + 1)..];
            if (!int.TryParse(stepText, NumberStyles.None, CultureInfo.InvariantCulture, out step) || step < 1)
                return $"'{stepText}' is not a step (a whole number of at least 1)";
        }
        int low, high;
        if (range is "*" or "?")
        {
            (low, high) = (min, max);
        }
        else
        {
            var dash = range.IndexOf('-');
            if (dash < 0)
            {
                if (!TryValue(range, min, max, names, out low, out var e)) return e;
                // "a/n" runs from a to the maximum; a lone "a" is just a
                high = slash >= 0 ? max : low;
            }
            else
            {
                if (!TryValue(range[..dash], min, max, names, out low, out var e)) return e;
                if (!TryValue(range[(dash + 1)..], min, max, names, out high, out e)) return e;
                if (high < low) return $"range '{range}' runs backwards";
            }
        }
        for (var v = low; v <= high; v += step) bits |= 1UL << v;
        return null;
    }

    private static bool TryValue(string text, int min, int max, string[]? names, out int value, [NotNullWhen(false)] out string? error)
    {
        error = null;
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value))
        {
            if (value >= min && value <= max) return true;
            error = $"{value} is out of range {min}-{max}";
            return false;
        }
        if (names is not null)
        {
            var i = Array.FindIndex(names, n => string.Equals(n, text, StringComparison.OrdinalIgnoreCase));
            if (i >= 0)
            {
                value = i + min; // months start at 1, days of week at 0
                return true;
            }
        }
        error = $"'{text}' is not a number{(names is null ? "" : " or a name")}";
        return false;
    }

    /// <summary>Whether the minute of <paramref name="utc"/> is one the schedule names.</summary>
    public bool Matches(DateTimeOffset utc)
    {
        var t = utc.UtcDateTime;
        return Has(_months, t.Month) && DayMatches(t) && Has(_hours, t.Hour) && Has(_minutes, t.Minute);
    }

    /// <summary>The first scheduled minute strictly after <paramref name="after"/>; null when there is none within five years.</summary>
    public DateTimeOffset? Next(DateTimeOffset after)
    {
        var u = after.UtcDateTime;
        var t = new DateTime(u.Year, u.Month, u.Day, u.Hour, u.Minute, 0, DateTimeKind.Utc).AddMinutes(1);
        var limit = t + SearchLimit;
        while (t < limit)
        {
            if (!Has(_months, t.Month)) { t = new DateTime(t.Year, t.Month, 1, 0, 0, 0, DateTimeKind.Utc).AddMonths(1); continue; }
            if (!DayMatches(t)) { t = t.Date.AddDays(1); continue; }
            if (!Has(_hours, t.Hour)) { t = t.Date.AddHours(t.Hour + 1); continue; }
            if (!Has(_minutes, t.Minute)) { t = t.AddMinutes(1); continue; }
            return new DateTimeOffset(t);
        }
        return null;
    }

    /// <summary>The last scheduled minute at or before <paramref name="atOrBefore"/>; null when there is none within five years.</summary>
    public DateTimeOffset? Previous(DateTimeOffset atOrBefore)
    {
        var u = atOrBefore.UtcDateTime;
        var t = new DateTime(u.Year, u.Month, u.Day, u.Hour, u.Minute, 0, DateTimeKind.Utc);
        var limit = t - SearchLimit;
        while (t > limit)
        {
            if (!Has(_months, t.Month)) { t = new DateTime(t.Year, t.Month, 1, 0, 0, 0, DateTimeKind.Utc).AddMinutes(-1); continue; }
            if (!DayMatches(t)) { t = t.Date.AddMinutes(-1); continue; }
            if (!Has(_hours, t.Hour)) { t = t.Date.AddHours(t.Hour).AddMinutes(-1); continue; }
            if (!Has(_minutes, t.Minute)) { t = t.AddMinutes(-1); continue; }
            return new DateTimeOffset(t);
        }
        return null;
    }

    private bool DayMatches(DateTime t)
    {
        var dom = Has(_daysOfMonth, t.Day);
        var dow = Has(_daysOfWeek, (int)t.DayOfWeek);
        if (_domStar || _dowStar) return dom && dow;
        return dom || dow;
    }

    private static bool Has(ulong bits, int value) => (bits & (1UL << value)) != 0;
}

using Crsc.Controllers.Schedules;

namespace Crsc.Controllers.Tests.Schedules;

public sealed class CronExpressionTests
{
    private static DateTimeOffset T(string text) => DateTimeOffset.Parse(text, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The next <paramref name="count"/> times after <paramref name="from"/>, as text.</summary>
    private static string[] Runs(string cron, string from, int count)
    {
        var c = CronExpression.Parse(cron);
        var list = new List<string>();
        var t = T(from);
        for (var i = 0; i < count; i++)
        {
            t = c.Next(t) ?? throw new InvalidOperationException("no next time");
            list.Add(t.ToString("yyyy-MM-dd HH:mm ddd", System.Globalization.CultureInfo.InvariantCulture));
        }
        return [.. list];
    }

    [Fact]
    public void Steps_of_every_field()
    {
        Assert.Equal(["2026-01-01 00:15 Thu", "2026-01-01 00:30 Thu", "2026-01-01 00:45 Thu", "2026-01-01 01:00 Thu"],
            Runs("*/15 * * * *", "2026-01-01T00:03:00Z", 4));
        // a/n: from a to the end of the range
        Assert.Equal(["2026-01-01 00:05 Thu", "2026-01-01 00:25 Thu", "2026-01-01 00:45 Thu", "2026-01-01 01:05 Thu"],
            Runs("5/20 * * * *", "2026-01-01T00:00:00Z", 4));
        // a-b/n
        Assert.Equal(["2026-01-01 09:00 Thu", "2026-01-01 11:00 Thu", "2026-01-01 13:00 Thu", "2026-01-02 09:00 Fri"],
            Runs("0 9-13/2 * * *", "2026-01-01T08:00:00Z", 4));
    }

    [Fact]
    public void Lists_ranges_and_names()
    {
        Assert.Equal(["2026-01-05 08:30 Mon", "2026-01-05 17:30 Mon", "2026-01-06 08:30 Tue"],
            Runs("30 8,17 * * MON-FRI", "2026-01-03T00:00:00Z", 3)); // Jan 3 2026 is a Saturday
        Assert.Equal(["2026-03-01 00:00 Sun", "2026-06-01 00:00 Mon", "2027-03-01 00:00 Mon"],
            Runs("0 0 1 mar,Jun *", "2026-01-01T00:00:00Z", 3));
        // 7 is Sunday too
        Assert.Equal(["2026-01-04 12:00 Sun", "2026-01-11 12:00 Sun"], Runs("0 12 * * 7", "2026-01-01T00:00:00Z", 2));
    }

    [Theory]
    [InlineData("@hourly", "2026-01-01 01:00 Thu")]
    [InlineData("@daily", "2026-01-02 00:00 Fri")]
    [InlineData("@weekly", "2026-01-04 00:00 Sun")]
    [InlineData("@monthly", "2026-02-01 00:00 Sun")]
    [InlineData("@yearly", "2027-01-01 00:00 Fri")]
    [InlineData("@annually", "2027-01-01 00:00 Fri")]
    public void Macros(string cron, string next) => Assert.Equal([next], Runs(cron, "2026-01-01T00:00:00Z", 1));

    [Fact]
    public void Both_day_fields_restricted_means_either()
    {
        // the 13th, or any Friday
        Assert.Equal(["2026-02-06 00:00 Fri", "2026-02-13 00:00 Fri", "2026-02-20 00:00 Fri", "2026-02-27 00:00 Fri", "2026-03-06 00:00 Fri", "2026-03-13 00:00 Fri"],
            Runs("0 0 13 * 5", "2026-02-01T00:00:00Z", 6));
        Assert.Equal(["2026-02-10 00:00 Tue", "2026-02-13 00:00 Fri", "2026-02-17 00:00 Tue"],
            Runs("0 0 13 * 2", "2026-02-09T00:00:00Z", 3));
        // with * (or ?) in one of them, only the other counts
        Assert.Equal(["2026-02-13 00:00 Fri", "2026-03-13 00:00 Fri"], Runs("0 0 13 * ?", "2026-02-01T00:00:00Z", 2));
    }

    [Fact]
    public void Previous_is_the_last_time_at_or_before()
    {
        var c = CronExpression.Parse("*/15 9-17 * * MON-FRI");
        Assert.Equal(T("2026-01-02T17:45:00Z"), c.Previous(T("2026-01-05T08:59:59Z"))); // Monday morning -> Friday evening
        Assert.Equal(T("2026-01-05T09:00:00Z"), c.Previous(T("2026-01-05T09:00:00Z")));
        Assert.Equal(T("2026-01-05T09:00:00Z"), c.Previous(T("2026-01-05T09:14:59Z")));
        Assert.Equal(T("2026-12-01T00:00:00Z"), CronExpression.Parse("0 0 1 12 *").Previous(T("2027-03-10T10:00:00Z")));
        Assert.Equal(T("2024-02-29T00:00:00Z"), CronExpression.Parse("0 0 29 2 *").Previous(T("2026-01-01T00:00:00Z")));
        // and Next agrees with Previous on every minute of a day
        var start = T("2026-01-05T00:00:00Z");
        for (var t = start; t < start.AddDays(1); t = t.AddMinutes(7))
        {
            var next = c.Next(t)!.Value;
            Assert.Equal(next, c.Previous(next));
            Assert.True(c.Matches(next));
            if (c.Previous(t) is { } prev) Assert.True(prev <= t && c.Next(prev) is { } after && after > t);
        }
    }

    [Fact]
    public void A_date_that_never_comes_has_no_next_time()
    {
        var c = CronExpression.Parse("0 0 30 2 *");
        Assert.Null(c.Next(T("2026-01-01T00:00:00Z")));
        Assert.Null(c.Previous(T("2026-01-01T00:00:00Z")));
    }

    [Theory]
    [InlineData("61 * * * *", "minute field '61': 61 is out of range 0-59")]
    [InlineData("* 24 * * *", "hour field '24': 24 is out of range 0-23")]
    [InlineData("* * 0 * *", "day of month field '0': 0 is out of range 1-31")]
    [InlineData("* * * 13 *", "month field '13': 13 is out of range 1-12")]
    [InlineData("* * * * 8", "day of week field '8': 8 is out of range 0-7")]
    [InlineData("* * * FOO *", "month field 'FOO': 'FOO' is not a number or a name")]
    [InlineData("abc * * * *", "minute field 'abc': 'abc' is not a number")]
    [InlineData("*/0 * * * *", "minute field '*/0': '0' is not a step")]
    [InlineData("30-10 * * * *", "range '30-10' runs backwards")]
    [InlineData("1,,2 * * * *", "empty list element")]
    [InlineData("* * * *", "expected 5 fields")]
    [InlineData("@every", "unknown macro")]
    public void Bad_expressions_name_the_field_and_value(string cron, string expected)
    {
        Assert.False(CronExpression.TryParse(cron, out _, out var error));
        Assert.Contains(expected, error);
        Assert.Contains($"'{cron}'", error);
        Assert.Throws<FormatException>(() => CronExpression.Parse(cron));
    }
}

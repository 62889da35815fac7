using System.Text.RegularExpressions;

namespace Crsc.Api.Tests;

public sealed class GoDurationTests
{
    [Theory]
    [InlineData("30s", 30_000)]
    [InlineData("5m", 300_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("1h30m15s", 5_415_000)]
    [InlineData("1.5h", 5_400_000)]
    [InlineData("0.5s", 500)]
    [InlineData("250ms", 250)]
    [InlineData("1m1m", 120_000)] // Go adds repeated units
    [InlineData("2s500ms", 2_500)]
    [InlineData("300", 300_000)] // plain seconds
    [InlineData("0", 0)]
    [InlineData("0s", 0)]
    [InlineData("000042", 42_000)]
    [InlineData("24h", 86_400_000)]
    public void Parses_go_durations_and_plain_seconds(string text, long milliseconds)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), GoDuration.Parse(text));
        Assert.True(GoDuration.TryParse(text, out var value));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }

    [Theory]
    [InlineData("1us", 10)]
    [InlineData("1µs", 10)]
    [InlineData("1.5us", 15)]
    [InlineData("100ns", 1)]
    [InlineData("150ns", 2)] // rounded up to whole 100 ns ticks
    [InlineData("1ns", 1)]   // never zero when the text is not
    [InlineData("1ms", 10_000)]
    public void Sub_millisecond_units_are_rounded_up_to_ticks(string text, long ticks) =>
        Assert.Equal(TimeSpan.FromTicks(ticks), GoDuration.Parse(text));

    [Theory]
    [InlineData("", "empty")]
    [InlineData("abc", "expected a number")]
    [InlineData("5", null)] // valid: plain seconds
    [InlineData("5x", "unknown unit 'x'")]
    [InlineData("5 m", "unknown unit ' m'")]
    [InlineData(" 5m", "expected a number")]
    [InlineData("5m ", "unknown unit 'm '")]
    [InlineData("-5m", "expected a number")]
    [InlineData("+5m", "expected a number")]
    [InlineData("1.5", "missing unit")]
    [InlineData("1h30", "missing unit")]
    [InlineData(".5s", "expected a number")]
    [InlineData("5.s", "expected digits after '.'")]
    [InlineData("5d", "unknown unit 'd'")]
    [InlineData("5M", "unknown unit 'M'")]
    [InlineData("5μs", "unknown unit")] // Greek mu: Go takes it, the CRD pattern does not, so neither do we
    [InlineData("1e3s", "unknown unit 'e'")]
    [InlineData("5m\n", "unknown unit")]
    public void Rejects_bad_input_with_a_message(string text, string? expected)
    {
        var ok = GoDuration.TryParse(text, out _, out var error);
        if (expected is null) { Assert.True(ok); return; }
        Assert.False(ok);
        Assert.Contains(expected, error);
        var e = Assert.Throws<FormatException>(() => GoDuration.Parse(text));
        Assert.Equal(error, e.Message);
    }

    [Fact]
    public void Rejects_null_and_overlong_text()
    {
        Assert.False(GoDuration.TryParse(null, out _));
        Assert.False(GoDuration.TryParse(new string('1', 40) + "s" + new string('1', 40) + "s", out _, out var error));
        Assert.Contains("longer than", error);
    }

    [Theory]
    [InlineData("99999999999999999999999999h")] // would overflow decimal arithmetic
    [InlineData("256204779h")]                  // just past TimeSpan.MaxValue (~256204778.8 h)
    [InlineData("9999999999999999999")]         // plain seconds beyond long
    [InlineData("922337203686")]                // plain seconds beyond TimeSpan
    [InlineData("256204778h60m")]
    public void Rejects_values_beyond_TimeSpan_without_throwing(string text)
    {
        Assert.False(GoDuration.TryParse(text, out _, out var error));
        Assert.Contains("too large", error);
    }

    [Fact]
    public void Accepts_the_largest_values_TimeSpan_holds()
    {
        // TimeSpan's 100 ns ticks reach ~29,000 years, further than Go's int64 nanoseconds (~290 years);
        // nothing in crsc's API needs either.
        Assert.Equal(TimeSpan.FromHours(256204778), GoDuration.Parse("256204778h"));
        Assert.Equal(TimeSpan.FromSeconds(922337203685), GoDuration.Parse("922337203685"));
    }

    [Theory]
    [InlineData(0, "0s")]
    [InlineData(30_000, "30s")]
    [InlineData(300_000, "5m")]
    [InlineData(3_600_000, "1h")]
    [InlineData(5_400_000, "1h30m")]
    [InlineData(5_415_000, "1h30m15s")]
    [InlineData(3_601_000, "1h1s")]
    [InlineData(1_500, "1.5s")]
    [InlineData(61_250, "1m1.25s")]
    [InlineData(250, "250ms")]
    [InlineData(86_400_000 * 3L, "72h")]
    public void Formats_the_short_way(long milliseconds, string expected) =>
        Assert.Equal(expected, GoDuration.Format(TimeSpan.FromMilliseconds(milliseconds)));

    [Theory]
    [InlineData(1, "100ns")]
    [InlineData(15, "1.5us")]
    [InlineData(10, "1us")]
    [InlineData(12_345, "1.2345ms")]
    [InlineData(9_999_999, "999.9999ms")]
    public void Formats_sub_second_values_with_small_units(long ticks, string expected) =>
        Assert.Equal(expected, GoDuration.Format(TimeSpan.FromTicks(ticks)));

    [Fact]
    public void Format_refuses_negative_values() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => GoDuration.Format(TimeSpan.FromSeconds(-1)));

    [Fact]
    public void Format_then_parse_is_the_identity()
    {
        var random = new Random(42);
        var values = new List<TimeSpan> { TimeSpan.Zero, TimeSpan.MaxValue, TimeSpan.FromTicks(1), TimeSpan.FromDays(400) };
        for (var i = 0; i < 2000; i++)
            values.Add(TimeSpan.FromTicks(random.NextInt64(0, i % 2 == 0 ? TimeSpan.TicksPerHour * 48 : TimeSpan.MaxValue.Ticks)));
        foreach (var v in values)
        {
            var text = GoDuration.Format(v);
            Assert.True(GoDuration.TryParse(text, out var back, out var error), $"{v} -> '{text}': {error}");
            Assert.Equal(v, back);
            Assert.Matches(GoDuration.Pattern, text);
        }
    }

    [Fact]
    public void Parser_accepts_exactly_what_the_schema_pattern_accepts()
    {
        // The CRD schemas validate durations with GoDuration.Pattern; the daemon parses with
        // GoDuration. Any string one accepts and the other refuses is a bug (short of overflow).
        var pattern = new Regex(GoDuration.Pattern);
        var alphabet = "0123456789.hmsunµ μ-+x ";
        var random = new Random(7);
        var samples = new List<string> { "", "1", "1.", ".1", "1.1", "1h", "1.h", "1.1h", "h", "1hh", "1h1", "1ms1", "1mss", "01us", "1µs", "1μs" };
        for (var i = 0; i < 20000; i++)
        {
            var length = random.Next(1, 8);
            samples.Add(new string(Enumerable.Range(0, length).Select(_ => alphabet[random.Next(alphabet.Length)]).ToArray()));
        }
        foreach (var s in samples)
            Assert.True((pattern.IsMatch(s) && !s.EndsWith('\n')) == GoDuration.TryParse(s, out _),
                $"'{s}': pattern says {pattern.IsMatch(s)}, parser says {GoDuration.TryParse(s, out _)}");
    }
}

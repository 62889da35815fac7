using Crsc.Cri.Grpc;

namespace Crsc.Cri.Tests;

public sealed class GrpcWireTests
{
    [Fact]
    public void Frames_have_a_zero_flag_and_big_endian_length()
    {
        var f = GrpcWire.Frame(new byte[] { 9, 8, 7 });
        Assert.Equal(new byte[] { 0, 0, 0, 0, 3, 9, 8, 7 }, f);
        var big = GrpcWire.Frame(new byte[0x010203]);
        Assert.Equal(new byte[] { 0, 0, 1, 2, 3 }, big[..5]);
    }

    [Theory]
    [InlineData(1500, "1500000u")]
    [InlineData(30_000, "30000000u")]
    [InlineData(2 * 60 * 60 * 1000, "7200000m")]
    [InlineData(0.5, "500000n")]
    public void Timeouts_fit_eight_digits(double millis, string expected) =>
        Assert.Equal(expected, GrpcWire.EncodeTimeout(TimeSpan.FromMilliseconds(millis)));

    [Fact]
    public void Long_timeouts_change_unit_and_never_shrink()
    {
        var t = TimeSpan.FromDays(3) + TimeSpan.FromMilliseconds(1);
        string s = GrpcWire.EncodeTimeout(t);
        Assert.True(s.Length <= 9, s);
        Assert.True(GrpcWire.TryParseTimeout(s, out var back));
        Assert.True(back >= t, $"{s} = {back} < {t}");
        Assert.True(back - t < TimeSpan.FromSeconds(1));
    }

    [Theory]
    [InlineData("5S", 5000)]
    [InlineData("250m", 250)]
    [InlineData("2M", 120000)]
    [InlineData("1H", 3600000)]
    public void Parses_timeouts(string value, double millis)
    {
        Assert.True(GrpcWire.TryParseTimeout(value, out var t));
        Assert.Equal(TimeSpan.FromMilliseconds(millis), t);
    }

    [Theory]
    [InlineData("")]
    [InlineData("5")]
    [InlineData("5x")]
    [InlineData("123456789S")]
    [InlineData("-1S")]
    public void Rejects_bad_timeouts(string value) => Assert.False(GrpcWire.TryParseTimeout(value, out _));

    [Theory]
    [InlineData("plain message", "plain message")]
    [InlineData("100%25 done", "100% done")]
    [InlineData("caf%C3%A9 %E2%9C%93", "café ✓")]
    [InlineData("line1%0Aline2", "line1\nline2")]
    [InlineData("bad %zz escape", "bad %zz escape")]
    [InlineData("trailing %4", "trailing %4")]
    [InlineData("trailing %", "trailing %")]
    public void Decodes_percent_encoded_messages(string wire, string expected) =>
        Assert.Equal(expected, GrpcWire.DecodeMessage(wire));

    [Fact]
    public void Encoding_round_trips_and_stays_printable_ascii()
    {
        const string message = "criu: 100% failed\n\tat \"dump\" — ünïcödé 🙂";
        string wire = GrpcWire.EncodeMessage(message);
        Assert.All(wire, c => Assert.InRange(c, (char)0x20, (char)0x7E));
        Assert.Contains("100%25 failed", wire);
        Assert.Equal(message, GrpcWire.DecodeMessage(wire));
    }
}

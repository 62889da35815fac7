using System.Text;

namespace Crsc.Systemd.Tests;

public sealed class NotifyMessageTests
{
    private static KeyValuePair<string, string> F(string key, string value) => new(key, value);

    [Fact]
    public void Fields_are_newline_separated_key_value_lines()
    {
        Assert.Equal("READY=1\nSTATUS=running", NotifyMessage.Format([F("READY", "1"), F("STATUS", "running")]));
    }

    [Fact]
    public void A_single_field_has_no_trailing_newline()
    {
        Assert.Equal("WATCHDOG=1", NotifyMessage.Format([F("WATCHDOG", "1")]));
    }

    [Theory]
    [InlineData("degraded:\nkube: down", "degraded: kube: down")]
    [InlineData("a\r\nb", "a b")]
    [InlineData("a\n\n\nb", "a b")]
    [InlineData("trailing\n", "trailing ")]
    [InlineData("nul\0byte", "nulbyte")]
    public void Values_become_one_line_without_NUL(string value, string expected)
    {
        var text = NotifyMessage.Format([F("STATUS", value), F("READY", "1")]);
        Assert.Equal($"STATUS={expected}\nREADY=1", text);
    }

    [Fact]
    public void A_long_status_is_cut_at_a_character_boundary()
    {
        var value = string.Concat(Enumerable.Repeat("ok 😀 ", 2000)); // surrogate pairs and multi-byte UTF-8
        var text = NotifyMessage.Format([F("STATUS", value)]);
        var status = text["STATUS=".Length..];
        Assert.True(Encoding.UTF8.GetByteCount(status) <= NotifyMessage.MaxValueBytes);
        Assert.EndsWith("…", status, StringComparison.Ordinal);
        Assert.StartsWith(status[..^1], value, StringComparison.Ordinal);
        Assert.False(char.IsHighSurrogate(status[^2]), "cut inside a surrogate pair");
    }

    [Fact]
    public void A_value_at_the_limit_is_kept_whole()
    {
        var value = new string('x', NotifyMessage.MaxValueBytes);
        Assert.Equal("STATUS=" + value, NotifyMessage.Format([F("STATUS", value)]));
    }

    [Theory]
    [InlineData("")]
    [InlineData("ready")]
    [InlineData("A=B")]
    [InlineData("A\nB")]
    [InlineData("STATUS ")]
    public void Invalid_keys_are_refused(string key)
    {
        Assert.Throws<ArgumentException>(() => NotifyMessage.Format([F(key, "1")]));
    }

    [Fact]
    public void An_empty_message_is_refused()
    {
        Assert.Throws<ArgumentException>(() => NotifyMessage.Format([]));
    }
}

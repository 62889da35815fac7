using System.Text;
using Crsc.Systemd.Journal;
using Crsc.Systemd.Tests.Support;
using Serilog.Events;

namespace Crsc.Systemd.Tests;

public sealed class JournalFieldNameTests
{
    [Theory]
    [InlineData("SourceContext", "SOURCE_CONTEXT")]
    [InlineData("podName", "POD_NAME")]
    [InlineData("Namespace", "NAMESPACE")]
    [InlineData("ReconcileId", "RECONCILE_ID")]
    [InlineData("HTTPRequest", "HTTP_REQUEST")]
    [InlineData("podUID", "POD_UID")]
    [InlineData("ipv4Address", "IPV4_ADDRESS")]
    [InlineData("reconcile-id", "RECONCILE_ID")]
    [InlineData("pod.name", "POD_NAME")]
    [InlineData("a__b", "A_B")]
    [InlineData("_private", "PRIVATE")]
    [InlineData("__Trusted", "TRUSTED")]
    [InlineData("2fa", "F_2FA")]
    [InlineData("größe", "GR_E")]
    [InlineData("MESSAGE", "MESSAGE")]
    [InlineData("ALREADY_VALID_1", "ALREADY_VALID_1")]
    public void Property_names_become_journald_field_names(string property, string field)
    {
        Assert.Equal(field, JournalFieldName.Sanitize(property));
        Assert.True(JournalFieldName.IsValid(field));
    }

    [Theory]
    [InlineData("$$")]
    [InlineData("__")]
    [InlineData("ÄÖÜ")]
    public void Nothing_usable_gives_null(string property)
    {
        Assert.Null(JournalFieldName.Sanitize(property));
    }

    [Fact]
    public void Long_names_are_cut_to_64_characters()
    {
        var field = JournalFieldName.Sanitize(string.Concat(Enumerable.Repeat("VeryLong", 20)));
        Assert.NotNull(field);
        Assert.True(field.Length <= JournalFieldName.MaxLength);
        Assert.True(JournalFieldName.IsValid(field));
        Assert.StartsWith("VERY_LONG_VERY_LONG", field, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("MESSAGE", true)]
    [InlineData("CODE_LINE", true)]
    [InlineData("_PID", false)]
    [InlineData("1ABC", false)]
    [InlineData("lower", false)]
    [InlineData("A-B", false)]
    [InlineData("", false)]
    public void Validity_follows_journald_rules(string name, bool valid)
    {
        Assert.Equal(valid, JournalFieldName.IsValid(name));
    }
}

public sealed class JournalPriorityTests
{
    [Theory]
    [InlineData(LogEventLevel.Verbose, 7)]
    [InlineData(LogEventLevel.Debug, 7)]
    [InlineData(LogEventLevel.Information, 6)]
    [InlineData(LogEventLevel.Warning, 4)]
    [InlineData(LogEventLevel.Error, 3)]
    [InlineData(LogEventLevel.Fatal, 2)]
    public void Serilog_levels_map_to_syslog_priorities(LogEventLevel level, int priority)
    {
        Assert.Equal(priority, JournalPriority.FromLevel(level));
    }
}

public sealed class JournalEntryWriterTests
{
    private static KeyValuePair<string, string> F(string name, string value) => new(name, value);

    [Fact]
    public void Single_line_values_use_the_text_form()
    {
        var bytes = JournalEntryWriter.Encode([F("MESSAGE", "hello"), F("PRIORITY", "6")]);
        Assert.Equal("MESSAGE=hello\nPRIORITY=6\n", Encoding.UTF8.GetString(bytes));
    }

    [Fact]
    public void Values_with_a_newline_use_the_binary_framing()
    {
        var bytes = JournalEntryWriter.Encode([F("MESSAGE", "a\nb")]);
        byte[] expected = [.. "MESSAGE\n"u8, 3, 0, 0, 0, 0, 0, 0, 0, .. "a\nb\n"u8];
        Assert.Equal(expected, bytes);
    }

    [Fact]
    public void The_binary_length_counts_UTF8_bytes()
    {
        var bytes = JournalEntryWriter.Encode([F("X", "ü\n")]);
        byte[] expected = [(byte)'X', (byte)'\n', 3, 0, 0, 0, 0, 0, 0, 0, 0xC3, 0xBC, (byte)'\n', (byte)'\n'];
        Assert.Equal(expected, bytes);
    }

    [Fact]
    public void A_NUL_byte_also_needs_the_binary_framing()
    {
        var entry = JournalEntry.Parse(JournalEntryWriter.Encode([F("DATA", "a\0b")]));
        Assert.True(entry.Single().Binary);
        Assert.Equal("a\0b", entry.Single().Value);
    }

    [Fact]
    public void Empty_values_are_allowed()
    {
        Assert.Equal("EMPTY=\n", Encoding.UTF8.GetString(JournalEntryWriter.Encode([F("EMPTY", "")])));
    }

    [Fact]
    public void Mixed_fields_round_trip_through_the_test_parser()
    {
        var big = new string('x', 70_000) + "\nend";
        var fields = JournalEntry.Parse(JournalEntryWriter.Encode([F("A", "1"), F("B", "two\nlines"), F("C", "="), F("D", big)]));
        Assert.Equal(["A", "B", "C", "D"], fields.Select(f => f.Name));
        Assert.Equal(["1", "two\nlines", "=", big], fields.Select(f => f.Value));
        Assert.Equal([false, true, false, true], fields.Select(f => f.Binary));
    }

    [Theory]
    [InlineData("message")]
    [InlineData("_PID")]
    [InlineData("A=B")]
    public void Invalid_field_names_are_refused(string name)
    {
        Assert.Throws<ArgumentException>(() => JournalEntryWriter.Encode([F(name, "x")]));
    }
}

public sealed class JournalValueFormatterTests
{
    [Fact]
    public void Scalars_are_plain_text()
    {
        Assert.Equal("web-0", JournalValueFormatter.Format(new ScalarValue("web-0")));
        Assert.Equal("1.5", JournalValueFormatter.Format(new ScalarValue(1.5)));
        Assert.Equal("true", JournalValueFormatter.Format(new ScalarValue(true)));
        Assert.Equal("", JournalValueFormatter.Format(new ScalarValue(null)));
        Assert.Equal("2026-01-01T00:00:00.0000000+00:00",
            JournalValueFormatter.Format(new ScalarValue(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero))));
    }

    [Fact]
    public void Structures_sequences_and_dictionaries_are_compact_json()
    {
        var structure = new StructureValue(
        [
            new LogEventProperty("Name", new ScalarValue("web \"0\"")),
            new LogEventProperty("Ports", new SequenceValue([new ScalarValue(80), new ScalarValue(443)])),
            new LogEventProperty("Ready", new ScalarValue(false)),
            new LogEventProperty("Owner", new ScalarValue(null)),
        ], "Pod");
        Assert.Equal("{\"$type\":\"Pod\",\"Name\":\"web \\\"0\\\"\",\"Ports\":[80,443],\"Ready\":false,\"Owner\":null}",
            JournalValueFormatter.Format(structure));

        var dictionary = new DictionaryValue([new(new ScalarValue("a"), new ScalarValue(1)), new(new ScalarValue(2), new ScalarValue("b\nc"))]);
        Assert.Equal("{\"a\":1,\"2\":\"b\\nc\"}", JournalValueFormatter.Format(dictionary));
    }
}

using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Crsc.Systemd.Journal;

/// <summary>
/// Encodes one journal entry in journald's native protocol: <c>NAME=value\n</c> for single-line values, and
/// the binary framing <c>NAME\n</c> + 64-bit little-endian length + raw bytes + <c>\n</c> for values that
/// contain a newline (or a NUL). Not thread-safe; reuse one per sender after <see cref="Clear"/>.
/// </summary>
internal sealed class JournalEntryWriter
{
    private const int ShrinkAbove = 1 << 20;

    private ArrayBufferWriter<byte> _buffer = new(4096);

    public ReadOnlySpan<byte> WrittenSpan => _buffer.WrittenSpan;
    public int Length => _buffer.WrittenCount;

    public void Clear()
    {
        // do not keep a huge buffer alive after one huge entry
        if (_buffer.Capacity > ShrinkAbove) _buffer = new ArrayBufferWriter<byte>(4096);
        else _buffer.Clear();
    }

    /// <summary>Appends one field; <paramref name="name"/> must already be a valid journald field name.</summary>
    public void Add(string name, ReadOnlySpan<char> value)
    {
        if (!JournalFieldName.IsValid(name)) throw new ArgumentException($"'{name}' is not a journald field name", nameof(name));
        WriteAscii(name);
        if (NeedsBinaryFraming(value))
        {
            var length = Encoding.UTF8.GetByteCount(value);
            var head = _buffer.GetSpan(1 + sizeof(ulong));
            head[0] = (byte)'\n';
            BinaryPrimitives.WriteUInt64LittleEndian(head[1..], (ulong)length);
            _buffer.Advance(1 + sizeof(ulong));
            WriteUtf8(value, length);
        }
        else
        {
            WriteByte((byte)'=');
            WriteUtf8(value, Encoding.UTF8.GetByteCount(value));
        }
        WriteByte((byte)'\n');
    }

    public void Add(string name, long value)
    {
        Span<char> digits = stackalloc char[24];
        value.TryFormat(digits, out var written, provider: System.Globalization.CultureInfo.InvariantCulture);
        Add(name, digits[..written]);
    }

    /// <summary>True when the text form cannot carry <paramref name="value"/>.</summary>
    public static bool NeedsBinaryFraming(ReadOnlySpan<char> value) => value.IndexOfAny('\n', '\0') >= 0;

    /// <summary>Encodes a whole entry (for tests and one-off use).</summary>
    public static byte[] Encode(IEnumerable<KeyValuePair<string, string>> fields)
    {
        var writer = new JournalEntryWriter();
        foreach (var (name, value) in fields) writer.Add(name, value);
        return writer.WrittenSpan.ToArray();
    }

    private void WriteAscii(string text)
    {
        var span = _buffer.GetSpan(text.Length);
        for (var i = 0; i < text.Length; i++) span[i] = (byte)text[i];
        _buffer.Advance(text.Length);
    }

    private void WriteUtf8(ReadOnlySpan<char> value, int byteCount)
    {
        if (byteCount == 0) return;
        var span = _buffer.GetSpan(byteCount);
        var written = Encoding.UTF8.GetBytes(value, span);
        _buffer.Advance(written);
    }

    private void WriteByte(byte b)
    {
        _buffer.GetSpan(1)[0] = b;
        _buffer.Advance(1);
    }
}

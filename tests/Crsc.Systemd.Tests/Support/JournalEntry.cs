using System.Buffers.Binary;
using System.Text;

namespace Crsc.Systemd.Tests.Support;

/// <summary>One field of a native-protocol entry and whether it came in the binary framing.</summary>
internal sealed record JournalField(string Name, string Value, bool Binary);

/// <summary>How an entry reached the test's journal socket.</summary>
internal enum JournalTransport { Datagram, Memfd, File }

/// <summary>A parsed journal entry as journald would see it.</summary>
internal sealed class JournalEntry(IReadOnlyList<JournalField> fields, JournalTransport transport, int seals, string? fdTarget)
{
    public IReadOnlyList<JournalField> Fields { get; } = fields;
    public JournalTransport Transport { get; } = transport;
    /// <summary>F_GET_SEALS of the passed descriptor (-1 when none or not sealable).</summary>
    public int Seals { get; } = seals;
    /// <summary>readlink of /proc/self/fd/N for a passed descriptor.</summary>
    public string? FdTarget { get; } = fdTarget;

    public IEnumerable<string> All(string name) => Fields.Where(f => f.Name == name).Select(f => f.Value);

    public string this[string name]
    {
        get
        {
            var values = All(name).ToList();
            return values.Count switch
            {
                1 => values[0],
                0 => throw new KeyNotFoundException($"no field {name}; fields: {string.Join(", ", Fields.Select(f => f.Name))}"),
                _ => throw new InvalidOperationException($"field {name} appears {values.Count} times"),
            };
        }
    }

    public bool Has(string name) => Fields.Any(f => f.Name == name);

    public bool IsBinary(string name) => Fields.Single(f => f.Name == name).Binary;

    /// <summary>
    /// journald's native protocol, parsed independently of the writer: <c>NAME=value\n</c>, or <c>NAME\n</c>
    /// + little-endian 64-bit length + bytes + <c>\n</c>. Throws on anything malformed.
    /// </summary>
    public static List<JournalField> Parse(ReadOnlySpan<byte> data)
    {
        var fields = new List<JournalField>();
        var position = 0;
        while (position < data.Length)
        {
            var rest = data[position..];
            var end = rest.IndexOfAny((byte)'=', (byte)'\n');
            if (end <= 0) throw new FormatException($"no field name at byte {position}");
            var name = Encoding.ASCII.GetString(rest[..end]);
            if (rest[end] == (byte)'=')
            {
                var lineEnd = rest[(end + 1)..].IndexOf((byte)'\n');
                if (lineEnd < 0) throw new FormatException($"field {name} does not end with a newline");
                fields.Add(new JournalField(name, Encoding.UTF8.GetString(rest.Slice(end + 1, lineEnd)), false));
                position += end + 1 + lineEnd + 1;
            }
            else
            {
                if (rest.Length < end + 1 + 8) throw new FormatException($"binary field {name} has no length");
                var length = BinaryPrimitives.ReadUInt64LittleEndian(rest[(end + 1)..]);
                var start = end + 1 + 8;
                if ((ulong)(rest.Length - start) < length + 1) throw new FormatException($"binary field {name} is cut short");
                var value = rest.Slice(start, (int)length);
                if (rest[start + (int)length] != (byte)'\n') throw new FormatException($"binary field {name} does not end with a newline");
                fields.Add(new JournalField(name, Encoding.UTF8.GetString(value), true));
                position += start + (int)length + 1;
            }
        }
        return fields;
    }

    /// <summary>Parses a datagram, reading the passed descriptor when the entry came as a file.</summary>
    public static JournalEntry From(Datagram datagram)
    {
        if (datagram.Fds.Length == 0) return new JournalEntry(Parse(datagram.Data), JournalTransport.Datagram, -1, null);
        Assert.Single(datagram.Fds);
        Assert.Empty(datagram.Data); // journald wants the payload in the file only
        var fd = datagram.Fds[0];
        var target = new FileInfo($"/proc/self/fd/{fd}").LinkTarget;
        var seals = ReceiverNative.Fcntl(fd, ReceiverNative.F_GET_SEALS, 0);
        var contents = File.ReadAllBytes($"/proc/self/fd/{fd}");
        var transport = target is not null && target.StartsWith("/memfd:", StringComparison.Ordinal) ? JournalTransport.Memfd : JournalTransport.File;
        return new JournalEntry(Parse(contents), transport, seals, target);
    }
}

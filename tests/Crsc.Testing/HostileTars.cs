using System.Formats.Tar;
using System.Text;

namespace Crsc.Testing;

/// <summary>
/// Generates hostile tar archives from a seeded <see cref="Random"/> for the fuzz tests of every archive reader:
/// random names (control characters, <c>..</c>, absolute, long, deep), symlink and hard-link graphs, devices,
/// duplicates, PAX records, raw headers declaring huge sizes, flipped bytes and truncations.
/// </summary>
public static class HostileTars
{
    private static readonly string[] Parts =
        ["checkpoint", "a", "b", "d", "up", "..", ".", "", "config.dump", "spec.dump", "pages-1.img", "x\ny", "\u001b[2J", "\u009b31m",
         "\u202e", "\0", "/", "ü", "etc", "passwd"];

    public static byte[] Generate(Random r)
    {
        var ms = new MemoryStream();
        var format = r.Next(3) switch { 0 => TarEntryFormat.Pax, 1 => TarEntryFormat.Gnu, _ => TarEntryFormat.Ustar };
        var names = new List<string>();
        using (var t = new TarWriter(ms, format, leaveOpen: true))
        {
            if (r.Next(2) == 0) Write(t, format, TarEntryType.Directory, "checkpoint/", null, 0);
            if (r.Next(2) == 0) Write(t, format, TarEntryType.RegularFile, "config.dump", null, 0, "{\"id\":\"x\",\"name\":\"c\u001b\"}"u8.ToArray());
            if (r.Next(2) == 0) Write(t, format, TarEntryType.RegularFile, "spec.dump", null, 0, "{\"annotations\":{}}"u8.ToArray());
            var count = r.Next(1, 24);
            for (var i = 0; i < count; i++)
            {
                var name = Name(r);
                var type = r.Next(10) switch
                {
                    < 4 => TarEntryType.RegularFile,
                    4 => TarEntryType.Directory,
                    5 or 6 => TarEntryType.SymbolicLink,
                    7 => TarEntryType.HardLink,
                    8 => TarEntryType.CharacterDevice,
                    _ => TarEntryType.Fifo,
                };
                var link = type switch
                {
                    TarEntryType.SymbolicLink => r.Next(3) == 0 && names.Count > 0 ? names[r.Next(names.Count)] + "/" + Name(r) : Name(r),
                    TarEntryType.HardLink => names.Count > 0 && r.Next(2) == 0 ? names[r.Next(names.Count)] : Name(r),
                    _ => null,
                };
                if (Write(t, format, type, name, link, r.Next(4) == 0 ? r.Next(2000) : r.Next(10))) names.Add(name);
            }
        }
        var bytes = ms.ToArray();
        return Mutate(r, bytes);
    }

    private static string Name(Random r)
    {
        switch (r.Next(12))
        {
            case 0: return new string((char)('a' + r.Next(26)), r.Next(90, 6000)); // long
            case 1: return string.Concat(Enumerable.Repeat("a/", r.Next(10, 300))) + "f"; // deep
            default:
                var n = r.Next(1, 5);
                var sb = new StringBuilder();
                for (var i = 0; i < n; i++)
                {
                    if (i > 0) sb.Append('/');
                    sb.Append(Parts[r.Next(Parts.Length)]);
                }
                return sb.ToString();
        }
    }

    private static bool Write(TarWriter t, TarEntryFormat format, TarEntryType type, string name, string? link, int size, byte[]? data = null)
    {
        try
        {
            TarEntry e = format switch
            {
                TarEntryFormat.Pax => new PaxTarEntry(type, name),
                TarEntryFormat.Gnu => new GnuTarEntry(type, name),
                _ => new UstarTarEntry(type, name),
            };
            if (link is not null) e.LinkName = link;
            if (type is TarEntryType.CharacterDevice && e is PosixTarEntry p) { p.DeviceMajor = 1; p.DeviceMinor = 3; }
            if (type is TarEntryType.RegularFile) e.DataStream = new MemoryStream(data ?? new byte[size]);
            t.WriteEntry(e);
            return true;
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException)
        {
            return false; // a name this format cannot hold: the writer refuses it (nothing written)
        }
    }

    private static byte[] Mutate(Random r, byte[] bytes)
    {
        var list = new List<byte>(bytes);
        switch (r.Next(8))
        {
            case 0: // truncate
                return bytes[..r.Next(bytes.Length + 1)];
            case 1: // flip bytes, in headers mostly
                for (var i = r.Next(1, 8); i > 0; i--)
                {
                    var at = r.Next(2) == 0 ? r.Next(bytes.Length / 512 + 1) * 512 + r.Next(512) : r.Next(bytes.Length);
                    if (at < bytes.Length) bytes[at] = (byte)r.Next(256);
                }
                return bytes;
            case 2: // a raw header declaring a huge size, before the end marker
            {
                var type = "xgLK0125"[r.Next(8)];
                var size = r.Next(3) switch { 0 => (long)int.MaxValue - 1, 1 => 8_589_934_591L, _ => r.Next(1 << 20) };
                var at = Math.Max(0, bytes.Length - 1024);
                list.InsertRange(at, Header(type == 'x' ? "PaxHeaders/p" : "h", type, size));
                if (r.Next(2) == 0) list.InsertRange(at + 512, new byte[r.Next(1, 3) * 512]);
                return [.. list];
            }
            case 3: // a PAX header with hostile records
            {
                var records = new StringBuilder();
                foreach (var (k, v) in new[] { ("path", "../../" + Name(r)), ("size", r.Next(2) == 0 ? "99999999999999" : "-5"), ("linkpath", Name(r)), ("mtime", "x") })
                    if (r.Next(2) == 0) records.Append(Record(k, v));
                var data = Encoding.UTF8.GetBytes(records.ToString());
                var at = Math.Max(0, bytes.Length - 1024);
                var block = new byte[(data.Length + 511) / 512 * 512];
                data.CopyTo(block, 0);
                list.InsertRange(at, [.. Header("PaxHeaders/p", 'x', data.Length), .. block, .. Header("f", '0', r.Next(3) == 0 ? 1 << 30 : 0)]);
                return [.. list];
            }
            case 4: // trailing garbage or long zero padding
                return [.. bytes, .. r.Next(2) == 0 ? new byte[r.Next(1, 64 * 1024)] : Encoding.ASCII.GetBytes("trailing")];
            default:
                return bytes;
        }
    }

    private static string Record(string key, string value)
    {
        var body = $" {key}={value}\n";
        var len = Encoding.UTF8.GetByteCount(body);
        var total = len + len.ToString().Length;
        if (total.ToString().Length != len.ToString().Length) total++;
        return total + body;
    }

    /// <summary>A raw ustar header block (valid checksum) declaring <paramref name="size"/> bytes.</summary>
    public static byte[] Header(string name, char type, long size)
    {
        var h = new byte[512];
        Encoding.ASCII.GetBytes(name).CopyTo(h, 0);
        Encoding.ASCII.GetBytes("0000644\0").CopyTo(h, 100);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(h, 108);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(h, 116);
        Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(11, '0')[^11..] + "\0").CopyTo(h, 124);
        Encoding.ASCII.GetBytes("00000000000\0").CopyTo(h, 136);
        h[156] = (byte)type;
        Encoding.ASCII.GetBytes("ustar\0" + "00").CopyTo(h, 257);
        "        "u8.CopyTo(h.AsSpan(148));
        var sum = h.Sum(b => (int)b);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(h, 148);
        return h;
    }
}

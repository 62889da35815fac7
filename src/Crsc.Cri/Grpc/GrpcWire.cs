using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Crsc.Cri.Grpc;

/// <summary>
/// The pieces of the gRPC-over-HTTP/2 wire format shared by the client and the test server:
/// length-prefixed message framing, <c>grpc-timeout</c> values and <c>grpc-message</c> percent-encoding.
/// </summary>
public static class GrpcWire
{
    /// <summary>Bytes before each message: a compressed flag and a big-endian 32-bit length.</summary>
    public const int FrameHeaderSize = 5;
    public const string ContentType = "application/grpc";

    /// <summary>An uncompressed message with its 5-byte prefix.</summary>
    public static byte[] Frame(ReadOnlySpan<byte> message)
    {
        var framed = new byte[FrameHeaderSize + message.Length];
        WriteFrameHeader(framed, compressed: false, message.Length);
        message.CopyTo(framed.AsSpan(FrameHeaderSize));
        return framed;
    }

    public static void WriteFrameHeader(Span<byte> destination, bool compressed, int length)
    {
        destination[0] = compressed ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], checked((uint)length));
    }

    /// <summary>Encodes a deadline as <c>grpc-timeout</c> (at most 8 digits and a unit), never shorter than <paramref name="timeout"/>.</summary>
    public static string EncodeTimeout(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero) return "0n";
        const long max = 99_999_999;
        long micros = (long)Math.Ceiling(timeout.Ticks / 10.0);
        if (micros <= max / 1000) return (timeout.Ticks * 100).ToString(CultureInfo.InvariantCulture) + "n";
        if (micros <= max) return micros.ToString(CultureInfo.InvariantCulture) + "u";
        long millis = (long)Math.Ceiling(timeout.TotalMilliseconds);
        if (millis <= max) return millis.ToString(CultureInfo.InvariantCulture) + "m";
        long seconds = (long)Math.Ceiling(timeout.TotalSeconds);
        if (seconds <= max) return seconds.ToString(CultureInfo.InvariantCulture) + "S";
        long minutes = (long)Math.Ceiling(timeout.TotalMinutes);
        if (minutes <= max) return minutes.ToString(CultureInfo.InvariantCulture) + "M";
        return Math.Min((long)Math.Ceiling(timeout.TotalHours), max).ToString(CultureInfo.InvariantCulture) + "H";
    }

    /// <summary>Parses a <c>grpc-timeout</c> value; false when it is malformed.</summary>
    public static bool TryParseTimeout(string? value, out TimeSpan timeout)
    {
        timeout = default;
        if (string.IsNullOrEmpty(value) || value.Length < 2 || value.Length > 9) return false;
        if (!long.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out long n)) return false;
        timeout = value[^1] switch
        {
            'H' => TimeSpan.FromHours(n),
            'M' => TimeSpan.FromMinutes(n),
            'S' => TimeSpan.FromSeconds(n),
            'm' => TimeSpan.FromMilliseconds(n),
            'u' => TimeSpan.FromTicks(n * 10),
            'n' => TimeSpan.FromTicks(n / 100),
            _ => TimeSpan.MinValue,
        };
        return timeout != TimeSpan.MinValue;
    }

    /// <summary>
    /// Percent-encodes a status message for <c>grpc-message</c>: UTF-8 bytes outside printable
    /// ASCII, and <c>%</c> itself, become <c>%XX</c>.
    /// </summary>
    public static string EncodeMessage(string message)
    {
        var sb = new StringBuilder(message.Length);
        foreach (byte b in Encoding.UTF8.GetBytes(message))
        {
            if (b is >= 0x20 and <= 0x7E && b != (byte)'%') sb.Append((char)b);
            else sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    /// <summary>
    /// Decodes a <c>grpc-message</c> value: <c>%XX</c> sequences are UTF-8 bytes; anything that is
    /// not a valid escape is kept as it was.
    /// </summary>
    public static string DecodeMessage(string? value)
    {
        if (string.IsNullOrEmpty(value)) return "";
        if (!value.Contains('%', StringComparison.Ordinal)) return value;
        var bytes = new List<byte>(value.Length);
        for (int i = 0; i < value.Length; i++)
        {
            char c = value[i];
            if (c == '%' && i + 2 < value.Length && IsHex(value[i + 1]) && IsHex(value[i + 2]))
            {
                bytes.Add((byte)((HexValue(value[i + 1]) << 4) | HexValue(value[i + 2])));
                i += 2;
            }
            else if (c < 0x80)
            {
                bytes.Add((byte)c);
            }
            else
            {
                // a non-ASCII character sent raw: keep it (a surrogate pair as one)
                int n = char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]) ? 2 : 1;
                bytes.AddRange(Encoding.UTF8.GetBytes(value.AsSpan(i, n).ToArray()));
                i += n - 1;
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsHex(char c) => char.IsAsciiHexDigit(c);
    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

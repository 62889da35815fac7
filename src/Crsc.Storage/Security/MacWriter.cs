using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Crsc.Storage.Security;

/// <summary>
/// An HMAC-SHA256 over a sequence of fields in an encoding that cannot be read two ways: each field is a presence byte
/// (0 absent, 1 present) followed, when present, by its UTF-8 length as 4 bytes big-endian and its bytes. No field can
/// end early or run into the next, so moving text from one field to another always changes the MAC.
/// </summary>
internal sealed class MacWriter : IDisposable
{
    private readonly IncrementalHash _hmac;

    /// <param name="domain">names what is being MACed (written first), so one kind of document never passes for another</param>
    public MacWriter(byte[] key, string domain)
    {
        _hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
        Add(domain);
    }

    public MacWriter Add(string? value) => value is null ? Absent() : Add(Encoding.UTF8.GetBytes(value));

    public MacWriter Add(long? value) =>
        value is { } v ? Add(v.ToString(System.Globalization.CultureInfo.InvariantCulture)) : Absent();

    /// <summary>A time as UTC ticks: the instant, whatever offset the JSON spelled it with.</summary>
    public MacWriter Add(DateTimeOffset? value) => Add(value?.UtcTicks);

    public MacWriter Add(ReadOnlySpan<byte> bytes)
    {
        Span<byte> head = stackalloc byte[5];
        head[0] = 1;
        BinaryPrimitives.WriteInt32BigEndian(head[1..], bytes.Length);
        _hmac.AppendData(head);
        _hmac.AppendData(bytes);
        return this;
    }

    private MacWriter Absent()
    {
        _hmac.AppendData([0]);
        return this;
    }

    /// <summary>The MAC as 64 lower-case hex digits.</summary>
    public string ToHex() => Convert.ToHexStringLower(_hmac.GetHashAndReset());

    public void Dispose() => _hmac.Dispose();

    /// <summary>Whether <paramref name="actual"/> (hex, as stored) equals <paramref name="expected"/>, in constant time.</summary>
    public static bool Same(string expected, string? actual)
    {
        if (actual is not { Length: 64 } || actual.AsSpan().ContainsAnyExcept("0123456789abcdef")) return false;
        return CryptographicOperations.FixedTimeEquals(Convert.FromHexString(expected), Convert.FromHexString(actual));
    }
}

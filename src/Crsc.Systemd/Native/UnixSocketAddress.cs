using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Crsc.Systemd.Native;

/// <summary>
/// A Unix socket address as systemd writes it: an absolute path (<c>/run/systemd/notify</c>) or an
/// abstract name (<c>@/org/freedesktop/systemd1/notify/123</c>, the leading <c>@</c> standing for the NUL byte).
/// Holds both the .NET endpoint and the raw <c>sockaddr_un</c> that <c>sendmsg</c> needs.
/// </summary>
internal sealed class UnixSocketAddress
{
    /// <summary>sizeof(sun_path).</summary>
    private const int MaxPathBytes = 108;
    private const ushort AfUnix = 1;

    private UnixSocketAddress(string text, bool isAbstract, byte[] sockaddr, EndPoint endPoint)
    {
        Text = text;
        IsAbstract = isAbstract;
        SockAddr = sockaddr;
        EndPoint = endPoint;
    }

    /// <summary>The address as written (<c>/path</c> or <c>@name</c>).</summary>
    public string Text { get; }
    public bool IsAbstract { get; }
    /// <summary><c>struct sockaddr_un</c>, exactly as long as the address (the socklen_t to pass).</summary>
    public byte[] SockAddr { get; }
    public EndPoint EndPoint { get; }

    public override string ToString() => Text;

    /// <summary>Parses <paramref name="text"/>; false with a reason for anything that is not a path or abstract socket.</summary>
    public static bool TryParse(string? text, out UnixSocketAddress? address, out string? error)
    {
        address = null;
        if (string.IsNullOrEmpty(text))
        {
            error = "empty";
            return false;
        }
        var isAbstract = text[0] == '@';
        if (!isAbstract && text[0] != '/')
        {
            error = "neither an absolute path nor an abstract (@) socket name";
            return false;
        }
        if (text.Contains('\0'))
        {
            error = "contains a NUL character";
            return false;
        }
        var name = Encoding.UTF8.GetBytes(isAbstract ? text[1..] : text);
        // a path needs its terminating NUL inside sun_path; an abstract name starts with a NUL and has none at its end
        var used = name.Length + 1;
        if (used > MaxPathBytes || (isAbstract && name.Length == 0))
        {
            error = isAbstract && name.Length == 0 ? "abstract name is empty" : $"longer than {MaxPathBytes - 1} bytes";
            return false;
        }

        var sockaddr = new byte[sizeof(ushort) + used];
        BinaryPrimitives.WriteUInt16LittleEndian(sockaddr, AfUnix);
        if (isAbstract) name.CopyTo(sockaddr, 3); // sockaddr[2] stays 0
        else name.CopyTo(sockaddr, 2); // the last byte stays 0

        EndPoint endPoint = new UnixDomainSocketEndPoint(isAbstract ? "\0" + text[1..] : text);
        address = new UnixSocketAddress(text, isAbstract, sockaddr, endPoint);
        error = null;
        return true;
    }

    public static UnixSocketAddress Parse(string text)
        => TryParse(text, out var address, out var error) ? address! : throw new ArgumentException($"not a Unix socket address '{text}': {error}", nameof(text));
}

using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Crsc.Testing;

namespace Crsc.Systemd.Tests.Support;

/// <summary>One received datagram: its bytes and the file descriptors that came with it (SCM_RIGHTS).</summary>
internal sealed class Datagram(byte[] data, int[] fds) : IDisposable
{
    public byte[] Data { get; } = data;
    public int[] Fds { get; } = fds;
    public string Text => Encoding.UTF8.GetString(Data);

    public void Dispose()
    {
        foreach (var fd in Fds) ReceiverNative.Close(fd);
    }
}

/// <summary>
/// A Unix datagram socket bound by the test (a path in a temp dir or an abstract name), standing in for
/// systemd's notify socket or journald's socket. Receives with recvmsg so passed descriptors are seen.
/// </summary>
internal sealed class DatagramReceiver : IDisposable
{
    private const int BufferSize = 1 << 20;
    private readonly byte[] _buffer = new byte[BufferSize];

    private DatagramReceiver(Socket socket, string address)
    {
        Socket = socket;
        Address = address;
    }

    public Socket Socket { get; }

    /// <summary>As systemd writes it: <c>/path</c> or <c>@name</c>.</summary>
    public string Address { get; }

    /// <summary>
    /// Binds <paramref name="path"/>. .NET unlinks the socket file it bound when the socket is closed (a
    /// missing socket: ENOENT); with <paramref name="leaveFileOnClose"/> the file stays behind as a socket
    /// nobody listens on (ECONNREFUSED), as after a crash of the receiver.
    /// </summary>
    public static DatagramReceiver BindPath(string path, bool leaveFileOnClose = false)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        if (!leaveFileOnClose)
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            return new DatagramReceiver(socket, path);
        }
        var bound = path + ".bound";
        socket.Bind(new UnixDomainSocketEndPoint(bound));
        File.Move(bound, path); // the socket lives on its inode; .NET will unlink only the old name
        return new DatagramReceiver(socket, path);
    }

    public static DatagramReceiver BindAbstract(string? name = null)
    {
        name ??= $"crsc-test/{Environment.ProcessId}/{Guid.NewGuid():N}";
        var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint("\0" + name));
        return new DatagramReceiver(socket, "@" + name);
    }

    /// <summary>True when a datagram waits (an empty one carrying only a descriptor counts too).</summary>
    public bool HasPending => Socket.Poll(0, SelectMode.SelectRead);

    public async Task<Datagram> ReceiveAsync(string what)
    {
        await Eventually.TrueAsync(() => HasPending, what);
        return ReceiveNow() ?? throw new InvalidOperationException("poll said readable, recvmsg found nothing");
    }

    public void AssertNothingPending(string because)
    {
        if (!HasPending) return;
        using var extra = ReceiveNow();
        Assert.Fail($"expected no datagram ({because}), got {extra?.Data.Length} bytes: {Truncate(extra?.Text)}");
    }

    /// <summary>One datagram if one is queued, else null. Fails on truncation.</summary>
    public unsafe Datagram? ReceiveNow()
    {
        const int maxFds = 8;
        var controlLength = 16 + (maxFds * sizeof(int) + 7) / 8 * 8;
        var control = stackalloc byte[controlLength];
        new Span<byte>(control, controlLength).Clear();
        fixed (byte* data = _buffer)
        {
            var iov = new ReceiverNative.IoVec { Base = data, Length = (nuint)_buffer.Length };
            var message = new ReceiverNative.MsgHdr
            {
                Iov = &iov,
                IovLength = 1,
                Control = control,
                ControlLength = (nuint)controlLength,
            };
            var fd = (int)Socket.Handle;
            var n = ReceiverNative.RecvMsg(fd, &message, ReceiverNative.MSG_DONTWAIT | ReceiverNative.MSG_CMSG_CLOEXEC);
            if (n < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == 11) return null; // EAGAIN
                throw new IOException($"recvmsg: errno {errno}");
            }
            Assert.True((message.Flags & ReceiverNative.MSG_TRUNC) == 0, "datagram truncated");
            Assert.True((message.Flags & ReceiverNative.MSG_CTRUNC) == 0, "control data truncated");

            var fds = new List<int>();
            var offset = 0;
            while (offset + 16 <= (int)message.ControlLength)
            {
                var length = (int)*(nuint*)(control + offset);
                var level = *(int*)(control + offset + 8);
                var type = *(int*)(control + offset + 12);
                if (length < 16) break;
                if (level == ReceiverNative.SOL_SOCKET && type == ReceiverNative.SCM_RIGHTS)
                    for (var p = 16; p + sizeof(int) <= length; p += sizeof(int)) fds.Add(*(int*)(control + offset + p));
                offset += (length + 7) / 8 * 8;
            }
            return new Datagram(_buffer.AsSpan(0, (int)n).ToArray(), [.. fds]);
        }
    }

    public void Dispose() => Socket.Dispose();

    private static string? Truncate(string? text) => text is null || text.Length < 200 ? text : text[..200] + "…";
}

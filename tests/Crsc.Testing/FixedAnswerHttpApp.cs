using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Crsc.Testing;

/// <summary>
/// The app behind an interceptor when only its cost matters: on loopback, answers every request head on a kept-alive
/// connection with a fixed 2-byte 200, on raw sockets (the same cost through the proxy as direct). The interceptor
/// benchmark and the crsc-interceptor binary's tests load it.
/// </summary>
public sealed class FixedAnswerHttpApp : IDisposable
{
    public static readonly byte[] Response = Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    public FixedAnswerHttpApp()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        _ = AcceptAsync();
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    private async Task AcceptAsync()
    {
        while (true)
        {
            Socket s;
            try { s = await _listener.AcceptAsync(); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
            s.NoDelay = true;
            _ = Task.Run(() => Serve(s));
        }
    }

    private static async Task Serve(Socket s)
    {
        using var _ = s;
        var buffer = new byte[8192];
        var have = 0;
        try
        {
            while (true)
            {
                var n = await s.ReceiveAsync(buffer.AsMemory(have));
                if (n == 0) return;
                have += n;
                int end;
                while ((end = buffer.AsSpan(0, have).IndexOf("\r\n\r\n"u8)) >= 0)
                {
                    await s.SendAsync(Response);
                    Buffer.BlockCopy(buffer, end + 4, buffer, 0, have - end - 4);
                    have -= end + 4;
                }
            }
        }
        catch (SocketException) { }
    }

    public void Dispose() => _listener.Dispose();
}

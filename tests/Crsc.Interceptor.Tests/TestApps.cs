using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Crsc.Interceptor.Tests;

/// <summary>
/// The app behind the interceptor: Kestrel on loopback (a real HTTP/1.1 server, not the proxy's own parser). Records each
/// request (method, path, body, connection id) in arrival order. <c>/slow</c> answers when <see cref="ReleaseSlow"/> is called.
/// </summary>
internal sealed class EchoApp : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TaskCompletionSource _slow = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public ConcurrentQueue<(string Method, string Path, string Body, string Connection)> Requests { get; } = new();
    public int Port { get; }

    private EchoApp(WebApplication app, int port) { _app = app; Port = port; }

    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);

    public static async Task<EchoApp> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        EchoApp? self = null;
        app.Run(async ctx =>
        {
            using var reader = new StreamReader(ctx.Request.Body, Encoding.UTF8);
            var body = await reader.ReadToEndAsync();
            self!.Requests.Enqueue((ctx.Request.Method, ctx.Request.Path.Value ?? "", body, ctx.Connection.Id));
            if (ctx.Request.Path == "/slow") await self._slow.Task;
            ctx.Response.Headers["X-Body-Length"] = body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (ctx.Request.Path == "/chunked")
            {
                // no Content-Length: Kestrel answers chunked
                await ctx.Response.WriteAsync("part1-");
                await ctx.Response.Body.FlushAsync();
                await ctx.Response.WriteAsync("part2");
                return;
            }
            var answer = Encoding.UTF8.GetBytes($"{ctx.Request.Method} {ctx.Request.Path}: {body}");
            ctx.Response.ContentLength = answer.Length;
            await ctx.Response.Body.WriteAsync(answer);
        });
        await app.StartAsync();
        var address = app.Urls.First();
        self = new EchoApp(app, new Uri(address).Port);
        return self;
    }

    public void ReleaseSlow() => _slow.TrySetResult();

    public async ValueTask DisposeAsync()
    {
        ReleaseSlow();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>A raw TCP echo server that counts the connections it accepted.</summary>
internal sealed class TcpEcho : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private int _accepted;

    public TcpEcho()
    {
        _listener.Start();
        _ = AcceptAsync();
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;
    public int Accepted => Volatile.Read(ref _accepted);
    public ConcurrentQueue<string> Received { get; } = new();

    private async Task AcceptAsync()
    {
        while (true)
        {
            Socket s;
            try { s = await _listener.AcceptSocketAsync(); }
            catch (Exception) { return; }
            Interlocked.Increment(ref _accepted);
            _ = Task.Run(async () =>
            {
                using var _ = s;
                var buffer = new byte[4096];
                try
                {
                    int n;
                    while ((n = await s.ReceiveAsync(buffer)) > 0)
                    {
                        Received.Enqueue(Encoding.ASCII.GetString(buffer, 0, n));
                        await s.SendAsync(buffer.AsMemory(0, n));
                    }
                    s.Shutdown(SocketShutdown.Send);
                }
                catch (SocketException) { }
            });
        }
    }

    public void Dispose() => _listener.Stop();
}

/// <summary>A raw HTTP/1.1 client on one socket: what a test needs to see exactly what came back, resets included.</summary>
internal sealed class RawClient : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly MemoryStream _pending = new();

    public static async Task<RawClient> ConnectAsync(EndPoint endPoint)
    {
        var c = new RawClient();
        await c._socket.ConnectAsync(endPoint);
        return c;
    }

    public async Task SendAsync(string text) => await _socket.SendAsync(Encoding.ASCII.GetBytes(text));

    /// <summary>Reads one response with a Content-Length body: (status, headers, body).</summary>
    public async Task<(int Status, string Head, string Body)> ReadResponseAsync()
    {
        while (true)
        {
            var text = Encoding.ASCII.GetString(_pending.ToArray());
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0)
            {
                var head = text[..end];
                var lengthLine = head.Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
                var length = lengthLine is null ? 0 : int.Parse(lengthLine["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
                if (text.Length >= end + 4 + length)
                {
                    var body = text.Substring(end + 4, length);
                    var rest = _pending.ToArray()[(end + 4 + length)..];
                    _pending.SetLength(0);
                    _pending.Write(rest);
                    return (int.Parse(head.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), head, body);
                }
            }
            var buffer = new byte[4096];
            var n = await _socket.ReceiveAsync(buffer);
            if (n == 0) throw new IOException("connection closed before a whole response");
            _pending.Write(buffer, 0, n);
        }
    }

    /// <summary>Reads until the server closes; throws (ConnectionReset) if it reset the connection instead.</summary>
    public async Task<string> ReadToEndAsync()
    {
        var buffer = new byte[4096];
        int n;
        while ((n = await _socket.ReceiveAsync(buffer)) > 0) _pending.Write(buffer, 0, n);
        return Encoding.ASCII.GetString(_pending.ToArray());
    }

    public Socket Socket => _socket;

    public void Dispose() => _socket.Dispose();
}

/// <summary>An app on raw sockets that runs a script per connection: for answers Kestrel would not give (101, a silent close).</summary>
internal sealed class ScriptedApp : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private int _accepted;

    public ScriptedApp(Func<Socket, int, Task> script)
    {
        _listener.Start();
        _ = AcceptAsync(script);
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;
    public int Accepted => Volatile.Read(ref _accepted);
    public ConcurrentQueue<int> Closed { get; } = new();

    private async Task AcceptAsync(Func<Socket, int, Task> script)
    {
        while (true)
        {
            Socket s;
            try { s = await _listener.AcceptSocketAsync(); }
            catch (Exception) { return; }
            var n = Interlocked.Increment(ref _accepted);
            _ = Task.Run(async () =>
            {
                try { await script(s, n); }
                catch (SocketException) { }
                finally { s.Dispose(); Closed.Enqueue(n); }
            });
        }
    }

    /// <summary>Reads one request head (no body) from <paramref name="s"/>.</summary>
    public static async Task<string> ReadHeadAsync(Socket s)
    {
        var text = new StringBuilder();
        var one = new byte[1];
        while (!text.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await s.ReceiveAsync(one) == 0) throw new IOException("closed");
            text.Append((char)one[0]);
        }
        return text.ToString();
    }

    public void Dispose() => _listener.Stop();
}

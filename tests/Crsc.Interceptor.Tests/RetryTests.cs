using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Crsc.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Interceptor.Tests;

/// <summary>
/// The app down or dying under the proxy: a refused connect waits for the app (bounded by --max-wait and the queue), a
/// request the app closed on without answering is sent again when that is safe. The app is a raw listener on a fixed
/// port the test opens and closes; the proxy's clock is manual, so every wait moves only when the test says.
/// </summary>
public sealed class RetryTests : IDisposable
{
    private readonly ManualTimeProvider _time = new();
    private readonly TempDir _dir = new();
    private readonly int _port = LoopbackPorts.Free();

    public void Dispose() => _dir.Dispose();

    private IPEndPoint AppEndPoint => new(IPAddress.Loopback, _port);

    private InterceptorProxy Start(HoldOptions? hold = null, ReplayLog? replay = null, InterceptorMode mode = InterceptorMode.Http)
    {
        var options = new InterceptorOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            Upstream = AppEndPoint,
            Mode = mode,
            Hold = hold ?? new HoldOptions(),
        };
        var proxy = new InterceptorProxy(options, new HoldGate(options.Hold, _time), _time, NullLogger.Instance, replay);
        proxy.Start();
        return proxy;
    }

    /// <summary>Moves the proxy's clock in small steps until <paramref name="task"/> is done (each step fires the backoff's timer).</summary>
    private async Task<T> AdvanceUntilAsync<T>(Task<T> task, TimeSpan? step = null)
    {
        await Eventually.TrueAsync(() =>
        {
            if (!task.IsCompleted) _time.Advance(step ?? TimeSpan.FromMilliseconds(50));
            return task.IsCompleted;
        }, "the proxy answered");
        return await task;
    }

    [Fact]
    public async Task A_request_to_an_app_not_yet_listening_waits_for_it_instead_of_a_502()
    {
        await using var proxy = Start();
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
        await Eventually.TrueAsync(() => proxy.Gate.Status().UpstreamWaiting == 1, "request waits for the app");
        var status = proxy.Gate.Status();
        Assert.True(status.UpstreamDown);
        Assert.Equal(0, status.InFlight); // nothing reached the app: a hold's quiesce does not wait for it
        var response = c.ReadResponseAsync();
        _time.Advance(TimeSpan.FromMilliseconds(300)); // 300 ms later the app listens
        Assert.False(response.IsCompleted);

        using var app = new SwitchableApp(_port, SwitchableApp.Answer);
        var (code, _, body) = await AdvanceUntilAsync(response);
        Assert.Equal(200, code);
        Assert.Equal("POST /early abc", body);
        status = proxy.Gate.Status();
        Assert.False(status.UpstreamDown);
        Assert.Equal(1, status.UpstreamWaits);
        Assert.Equal(0, status.UpstreamWaiting);
        Assert.Equal(0, status.UpstreamGaveUp);
        Assert.Equal(["POST /early abc"], app.Requests);

        // the control socket's status says so
        await using var control = new ControlServer(_dir.Combine("control.sock"), proxy.Gate, NullLogger.Instance);
        var answer = await control.AnswerAsync("status", CancellationToken.None);
        var json = System.Text.Json.JsonDocument.Parse(answer[3..]).RootElement;
        Assert.False(json.GetProperty("upstreamDown").GetBoolean());
        Assert.Equal(1, json.GetProperty("upstreamWaits").GetInt64());
        Assert.Equal(0, json.GetProperty("upstreamGaveUp").GetInt64());
    }

    [Fact]
    public async Task An_app_that_does_not_come_back_within_max_wait_is_a_503_with_retry_after_not_a_reset()
    {
        var maxWait = TimeSpan.FromSeconds(2);
        await using var proxy = Start(new HoldOptions { MaxWait = maxWait, RetryAfter = TimeSpan.FromSeconds(4) });
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        var before = _time.GetUtcNow();
        await c.SendAsync("GET /never HTTP/1.1\r\nHost: x\r\n\r\n");
        var (code, head, _) = await AdvanceUntilAsync(c.ReadResponseAsync());
        Assert.Equal(503, code);
        Assert.Contains("Retry-After: 4", head);
        Assert.True(_time.GetUtcNow() - before >= maxWait, "answered only once --max-wait was used up");
        var status = proxy.Gate.Status();
        Assert.Equal(1, status.UpstreamGaveUp);
        Assert.Equal(1, status.UpstreamWaits);
        Assert.True(status.UpstreamDown);

        // a body-less request keeps its connection: once the app is up, the next request goes through
        using var app = new SwitchableApp(_port, SwitchableApp.Answer);
        await c.SendAsync("GET /later HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(200, (await AdvanceUntilAsync(c.ReadResponseAsync())).Status);
    }

    [Fact]
    public async Task Waiting_for_the_app_counts_toward_the_queue_bound()
    {
        await using var proxy = Start(new HoldOptions { MaxQueued = 1 });
        using var first = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await first.SendAsync("GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
        await Eventually.TrueAsync(() => proxy.Gate.Status().UpstreamWaiting == 1, "first request waits for the app");

        // the queue's one place is taken by the request waiting for the app: a second one is refused at once
        using var second = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await second.SendAsync("GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
        var (code, head, body) = await second.ReadResponseAsync().WaitAsync(Eventually.DefaultTimeout);
        Assert.Equal(503, code);
        Assert.Contains("Retry-After:", head);
        Assert.Contains("queue", body);
        Assert.Equal(1, proxy.Gate.Status().UpstreamGaveUp);

        using var app = new SwitchableApp(_port, SwitchableApp.Answer);
        Assert.Equal(200, (await AdvanceUntilAsync(first.ReadResponseAsync())).Status);
    }

    [Fact]
    public async Task A_request_waiting_for_the_app_waits_behind_a_hold_that_begins_meanwhile()
    {
        await using var proxy = Start();
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("GET /during HTTP/1.1\r\nHost: x\r\n\r\n");
        await Eventually.TrueAsync(() => proxy.Gate.Status().UpstreamWaiting == 1, "request waits for the app");
        proxy.Gate.Hold("restore");
        Assert.True(await proxy.Gate.QuiesceAsync(CancellationToken.None)); // it is not in flight
        using var app = new SwitchableApp(_port, SwitchableApp.Answer);
        await Eventually.TrueAsync(() =>
        {
            _time.Advance(TimeSpan.FromMilliseconds(50));
            return proxy.Gate.Status().Queued == 1;
        }, "request queued behind the hold");
        Assert.Empty(app.Requests); // the app listens, but the hold is on
        var response = c.ReadResponseAsync();
        proxy.Gate.Release();
        Assert.Equal(200, (await response.WaitAsync(Eventually.DefaultTimeout)).Status);
        Assert.Equal(["GET /during "], app.Requests);
    }

    [Fact]
    public async Task Stopping_ends_a_wait_for_the_app_at_once()
    {
        var proxy = Start();
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("GET /stop HTTP/1.1\r\nHost: x\r\n\r\n");
        await Eventually.TrueAsync(() => proxy.Gate.Status().UpstreamWaiting == 1, "request waits for the app");
        // the clock does not move: only the cancellation can end the wait
        await proxy.DisposeAsync().AsTask().WaitAsync(Eventually.DefaultTimeout);
    }

    [Fact]
    public async Task A_tcp_connection_waits_for_the_app_too()
    {
        await using var proxy = Start(mode: InterceptorMode.Tcp);
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("ping");
        await Eventually.TrueAsync(() => proxy.Gate.Status().UpstreamWaiting == 1, "connection waits for the app");
        using var app = new SwitchableApp(_port, SwitchableApp.Echo);
        var buffer = new byte[4];
        var read = c.Socket.ReceiveAsync(buffer);
        Assert.Equal(4, await AdvanceUntilAsync(read));
        Assert.Equal("ping", Encoding.ASCII.GetString(buffer));
    }

    /// <summary>The app reads the first request, stops listening and closes without answering: it died with the request.</summary>
    private static Func<Socket, int, SwitchableApp, Task> DiesOnFirst => async (s, n, app) =>
    {
        if (n == 1)
        {
            await SwitchableApp.ReadRequestAsync(s, app);
            app.Close();
            return;
        }
        await SwitchableApp.Answer(s, n, app);
    };

    [Fact]
    public async Task A_get_the_app_died_on_is_sent_again_once_the_app_is_back()
    {
        await using var proxy = Start();
        using var app = new SwitchableApp(_port, DiesOnFirst);
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("GET /again HTTP/1.1\r\nHost: x\r\n\r\n");
        await Eventually.TrueAsync(() => proxy.Gate.Status().UpstreamWaiting == 1, "retry waits for the app");
        app.Open();
        var (code, _, body) = await AdvanceUntilAsync(c.ReadResponseAsync());
        Assert.Equal(200, code);
        Assert.Equal("GET /again ", body);
        Assert.Equal(["GET /again ", "GET /again "], app.Requests);
        var status = proxy.Gate.Status();
        Assert.Equal(1, status.UpstreamRetries);
        Assert.Equal(0, status.UpstreamBadGateway);
    }

    [Fact]
    public async Task A_post_the_app_died_on_without_replay_is_a_502()
    {
        await using var proxy = Start();
        using var app = new SwitchableApp(_port, DiesOnFirst);
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("POST /once HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n1");
        var all = await c.ReadToEndAsync().WaitAsync(Eventually.DefaultTimeout);
        Assert.StartsWith("HTTP/1.1 502 Bad Gateway", all);
        Assert.Equal(["POST /once 1"], app.Requests);
        var status = proxy.Gate.Status();
        Assert.Equal(0, status.UpstreamRetries);
        Assert.Equal(1, status.UpstreamBadGateway);
    }

    [Fact]
    public async Task A_logged_post_the_app_died_on_is_sent_again_and_logged_once()
    {
        using var log = ReplayLog.Open(new ReplayOptions { Methods = ReplayMethods.Parse("POST", out _)!, LogPath = _dir.Combine("replay.log") }, NullLogger.Instance);
        await using var proxy = Start(replay: log);
        using var app = new SwitchableApp(_port, DiesOnFirst);
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n+1\r\n0\r\n\r\n");
        await Eventually.TrueAsync(() => proxy.Gate.Status().UpstreamWaiting == 1, "retry waits for the app");
        app.Open();
        var (code, _, body) = await AdvanceUntilAsync(c.ReadResponseAsync());
        Assert.Equal(200, code);
        Assert.Equal("POST /count +1", body);
        Assert.Equal(["POST /count +1", "POST /count +1"], app.Requests);
        var entries = await log.EntriesAsync(CancellationToken.None);
        var entry = Assert.Single(entries);
        Assert.Equal("/count", entry.Target);
        Assert.Equal("+1", Encoding.ASCII.GetString(entry.Body.Span));
        Assert.Equal(1, proxy.Gate.Status().UpstreamRetries);
    }

    [Fact]
    public async Task A_post_an_app_still_alive_closed_on_is_a_502_even_when_logged()
    {
        using var log = ReplayLog.Open(new ReplayOptions { Methods = ReplayMethods.Parse("all", out _)!, LogPath = _dir.Combine("replay.log") }, NullLogger.Instance);
        await using var proxy = Start(replay: log);
        using var app = new SwitchableApp(_port, async (s, _, a) => await SwitchableApp.ReadRequestAsync(s, a));
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("POST /maybe HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n1");
        var all = await c.ReadToEndAsync().WaitAsync(Eventually.DefaultTimeout);
        Assert.StartsWith("HTTP/1.1 502 Bad Gateway", all);
        Assert.Equal(["POST /maybe 1"], app.Requests); // it may have been applied: not sent again
        Assert.Empty(await log.EntriesAsync(CancellationToken.None));
        Assert.Equal(0, proxy.Gate.Status().UpstreamRetries);
        Assert.Equal(1, proxy.Gate.Status().UpstreamBadGateway);
    }

    [Fact]
    public async Task A_get_an_app_still_alive_closed_on_is_sent_again_once_only()
    {
        await using var proxy = Start();
        using var app = new SwitchableApp(_port, async (s, _, a) => await SwitchableApp.ReadRequestAsync(s, a));
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("GET /flaky HTTP/1.1\r\nHost: x\r\n\r\n");
        var all = await c.ReadToEndAsync().WaitAsync(Eventually.DefaultTimeout);
        Assert.StartsWith("HTTP/1.1 502 Bad Gateway", all);
        Assert.Equal(["GET /flaky ", "GET /flaky "], app.Requests);
        Assert.Equal(1, proxy.Gate.Status().UpstreamRetries);
    }

    [Fact]
    public async Task A_request_is_sent_again_at_most_three_times()
    {
        await using var proxy = Start();
        // every connection: read the request and die (stop listening) — the test brings it back each time
        using var app = new SwitchableApp(_port, async (s, _, a) =>
        {
            await SwitchableApp.ReadRequestAsync(s, a);
            a.Close();
        });
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("DELETE /thing HTTP/1.1\r\nHost: x\r\n\r\n");
        var response = c.ReadToEndAsync();
        for (var i = 1; i <= InterceptorProxy.MaxRetries; i++)
        {
            var retries = i;
            await Eventually.TrueAsync(() => proxy.Gate.Status() is { UpstreamWaiting: 1 } s && s.UpstreamRetries == retries, $"retry {retries} waits");
            app.Open();
            await Eventually.TrueAsync(() =>
            {
                _time.Advance(TimeSpan.FromMilliseconds(50));
                return app.Requests.Count == retries + 1;
            }, $"retry {retries} reached the app");
        }
        var all = await response.WaitAsync(Eventually.DefaultTimeout);
        Assert.StartsWith("HTTP/1.1 502 Bad Gateway", all);
        Assert.Equal(InterceptorProxy.MaxRetries + 1, app.Requests.Count);
        Assert.Equal(InterceptorProxy.MaxRetries, proxy.Gate.Status().UpstreamRetries);
    }

    [Fact]
    public async Task A_request_with_a_body_over_the_retry_bound_is_not_sent_again()
    {
        await using var proxy = Start();
        using var app = new SwitchableApp(_port, DiesOnFirst);
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        var body = new string('p', InterceptorProxy.MaxRetryBodyBytes + 1);
        await c.SendAsync($"PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: {body.Length}\r\n\r\n{body}");
        var all = await c.ReadToEndAsync().WaitAsync(Eventually.DefaultTimeout);
        Assert.StartsWith("HTTP/1.1 502 Bad Gateway", all);
        Assert.Single(app.Requests);
        Assert.Equal(0, proxy.Gate.Status().UpstreamRetries);
    }
}

/// <summary>
/// An app on a fixed loopback port that the test opens and closes (closed: connects are refused), running a script per
/// connection (numbered from 1 over the app's life). Records each request it read whole as "METHOD PATH BODY".
/// </summary>
internal sealed class SwitchableApp : IDisposable
{
    private readonly int _port;
    private readonly Func<Socket, int, SwitchableApp, Task> _script;
    private readonly Lock _lock = new();
    private Socket? _listener;
    private int _accepted;
    private readonly ConcurrentQueue<string> _requests = new();

    public SwitchableApp(int port, Func<Socket, int, SwitchableApp, Task> script)
    {
        _port = port;
        _script = script;
        Open();
    }

    public List<string> Requests => [.. _requests];

    public void Open()
    {
        lock (_lock)
        {
            if (_listener is not null) return;
            var l = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            l.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            l.Bind(new IPEndPoint(IPAddress.Loopback, _port));
            l.Listen(16);
            _listener = l;
            _ = AcceptAsync(l);
        }
    }

    /// <summary>Stops listening: from now on a connect is refused.</summary>
    public void Close()
    {
        lock (_lock)
        {
            _listener?.Dispose();
            _listener = null;
        }
    }

    private async Task AcceptAsync(Socket listener)
    {
        while (true)
        {
            Socket s;
            try { s = await listener.AcceptAsync(); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
            var n = Interlocked.Increment(ref _accepted);
            _ = Task.Run(async () =>
            {
                try { await _script(s, n, this); }
                catch (Exception e) when (e is SocketException or IOException) { }
                finally { s.Dispose(); }
            });
        }
    }

    /// <summary>Reads one request (Content-Length or chunked body) and records it; returns (method, path, body).</summary>
    public static async Task<(string Method, string Path, string Body)> ReadRequestAsync(Socket s, SwitchableApp app)
    {
        var head = await ScriptedApp.ReadHeadAsync(s);
        var lines = head.Split("\r\n");
        var start = lines[0].Split(' ');
        var body = new StringBuilder();
        var length = lines.FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
        if (length is not null) body.Append(await ReadExactAsync(s, int.Parse(length[15..].Trim(), CultureInfo.InvariantCulture)));
        else if (lines.Any(l => l.StartsWith("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase)))
        {
            while (true)
            {
                var size = Convert.ToInt32((await ReadLineAsync(s)).Split(';')[0], 16);
                if (size == 0)
                {
                    while ((await ReadLineAsync(s)).Length > 0) { }
                    break;
                }
                body.Append(await ReadExactAsync(s, size));
                await ReadLineAsync(s);
            }
        }
        app._requests.Enqueue($"{start[0]} {start[1]} {body}");
        return (start[0], start[1], body.ToString());
    }

    /// <summary>Answers every request on the connection with "METHOD PATH BODY".</summary>
    public static async Task Answer(Socket s, int n, SwitchableApp app)
    {
        while (true)
        {
            var (method, path, body) = await ReadRequestAsync(s, app);
            var answer = Encoding.ASCII.GetBytes($"{method} {path} {body}");
            await s.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {answer.Length}\r\n\r\n"));
            await s.SendAsync(answer);
        }
    }

    /// <summary>Echoes bytes back (TCP mode).</summary>
    public static async Task Echo(Socket s, int n, SwitchableApp app)
    {
        var buffer = new byte[4096];
        int read;
        while ((read = await s.ReceiveAsync(buffer)) > 0) await s.SendAsync(buffer.AsMemory(0, read));
    }

    private static async Task<string> ReadExactAsync(Socket s, int count)
    {
        var buffer = new byte[count];
        var at = 0;
        while (at < count)
        {
            var n = await s.ReceiveAsync(buffer.AsMemory(at));
            if (n == 0) throw new IOException("closed");
            at += n;
        }
        return Encoding.ASCII.GetString(buffer);
    }

    private static async Task<string> ReadLineAsync(Socket s)
    {
        var line = new StringBuilder();
        var one = new byte[1];
        while (!line.ToString().EndsWith("\r\n", StringComparison.Ordinal))
        {
            if (await s.ReceiveAsync(one) == 0) throw new IOException("closed");
            line.Append((char)one[0]);
        }
        return line.ToString()[..^2];
    }

    public void Dispose() => Close();
}

using System.Net;
using System.Net.Sockets;
using System.Text;
using Crsc.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Crsc.Interceptor.Tests;

public sealed class InterceptorTests : IAsyncLifetime
{
    private readonly ManualTimeProvider _time = new();
    private EchoApp _app = null!;

    public async Task InitializeAsync() => _app = await EchoApp.StartAsync();
    public async Task DisposeAsync() => await _app.DisposeAsync();

    private InterceptorProxy Start(EndPoint upstream, InterceptorMode mode = InterceptorMode.Http, HoldOptions? hold = null)
    {
        var options = new InterceptorOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            Upstream = upstream,
            Mode = mode,
            Hold = hold ?? new HoldOptions(),
        };
        var proxy = new InterceptorProxy(options, new HoldGate(options.Hold, _time), _time, NullLogger.Instance);
        proxy.Start();
        return proxy;
    }

    private static HttpClient Client(InterceptorProxy proxy) =>
        new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { BaseAddress = new Uri($"http://{proxy.LocalEndPoint}/") };

    [Fact]
    public async Task Forwards_get_and_post_with_content_length_and_chunked_bodies_on_one_kept_alive_connection()
    {
        await using var proxy = Start(_app.EndPoint);
        using var http = Client(proxy);

        var get = await http.GetAsync("hello");
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal("GET /hello: ", await get.Content.ReadAsStringAsync());

        var body = new string('x', 100_000);
        var post = await http.PostAsync("sized", new StringContent(body));
        Assert.Equal("POST /sized: " + body, await post.Content.ReadAsStringAsync());

        // no length known: HttpClient sends it chunked
        var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes("chunk-body")));
        var request = new HttpRequestMessage(HttpMethod.Post, "streamed") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        var streamed = await http.SendAsync(request);
        Assert.Equal("POST /streamed: chunk-body", await streamed.Content.ReadAsStringAsync());

        // a chunked response comes back whole
        var chunkedResponse = await http.GetAsync("chunked");
        Assert.True(chunkedResponse.Headers.TransferEncodingChunked);
        Assert.Equal("part1-part2", await chunkedResponse.Content.ReadAsStringAsync());

        var seen = _app.Requests.ToList();
        Assert.Equal(["GET /hello", "POST /sized", "POST /streamed", "GET /chunked"], seen.Select(r => $"{r.Method} {r.Path}"));
        Assert.Equal(body, seen[1].Body);
        // keep-alive end to end: one client connection, one app connection
        Assert.Single(seen.Select(r => r.Connection).Distinct());
        Assert.Equal(4, proxy.Forwarded);
    }

    [Fact]
    public async Task Held_requests_reach_the_app_only_after_release_in_arrival_order()
    {
        await using var proxy = Start(_app.EndPoint);
        var (status, _, _) = await GetOnNewConnection(proxy, "/before");
        Assert.Equal(200, status);

        proxy.Gate.Hold("checkpoint");
        var clients = new List<RawClient>();
        for (var i = 0; i < 3; i++)
        {
            var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
            clients.Add(c);
            await c.SendAsync($"POST /n{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n{i}");
            var expected = i + 1;
            await Eventually.TrueAsync(() => proxy.Gate.Status().Queued == expected, $"request {i} queued");
        }
        Assert.Single(_app.Requests); // only /before reached the app

        proxy.Gate.Release();
        for (var i = 0; i < 3; i++)
        {
            var (s, _, b) = await clients[i].ReadResponseAsync();
            Assert.Equal(200, s);
            Assert.Equal($"POST /n{i}: {i}", b);
        }
        Assert.Equal(["/before", "/n0", "/n1", "/n2"], _app.Requests.Select(r => r.Path));
        Assert.Equal(3, proxy.Gate.Status().ReleasedRequests);
        foreach (var c in clients) c.Dispose();
    }

    [Fact]
    public async Task A_new_request_on_an_open_connection_waits_while_held()
    {
        await using var proxy = Start(_app.EndPoint);
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("GET /one HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(200, (await c.ReadResponseAsync()).Status);
        proxy.Gate.Hold("checkpoint");
        await c.SendAsync("GET /two HTTP/1.1\r\nHost: x\r\n\r\n");
        await Eventually.TrueAsync(() => proxy.Gate.Status().Queued == 1, "second request queued");
        Assert.Single(_app.Requests);
        proxy.Gate.Release();
        var (status, _, body) = await c.ReadResponseAsync();
        Assert.Equal(200, status);
        Assert.Equal("GET /two: ", body);
    }

    [Fact]
    public async Task Over_the_queue_bound_the_client_gets_503_with_retry_after_and_no_reset()
    {
        await using var proxy = Start(_app.EndPoint, hold: new HoldOptions { MaxQueued = 1, RetryAfter = TimeSpan.FromSeconds(3) });
        proxy.Gate.Hold("restore");
        using var first = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await first.SendAsync("GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
        await Eventually.TrueAsync(() => proxy.Gate.Status().Queued == 1, "first request queued");

        // a body-less request is refused and its connection stays usable
        using var second = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await second.SendAsync("GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
        var (status, head, _) = await second.ReadResponseAsync();
        Assert.Equal(503, status);
        Assert.Contains("Retry-After: 3", head);

        // one with a body is refused with Connection: close and closed with a FIN: reading to the end does not throw a reset
        using var third = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await third.SendAsync("POST /third HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
        var all = await third.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 503 Service Unavailable", all);
        Assert.Contains("Retry-After: 3", all);
        Assert.Contains("Connection: close", all);

        Assert.Equal(2, proxy.Gate.Status().RejectedQueueFull);
        Assert.Empty(_app.Requests);
        proxy.Gate.Release();
        Assert.Equal(200, (await first.ReadResponseAsync()).Status);
    }

    [Fact]
    public async Task Over_the_byte_bound_the_client_gets_503()
    {
        await using var proxy = Start(_app.EndPoint, hold: new HoldOptions { MaxQueuedBytes = 1000 });
        proxy.Gate.Hold("checkpoint");
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + new string('b', 2000));
        var all = await c.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 503", all);
        Assert.Contains("Retry-After:", all);
        Assert.Equal(1, proxy.Gate.Status().RejectedBytes);
    }

    [Fact]
    public async Task A_request_held_past_max_wait_gets_503_when_the_clock_says_so()
    {
        await using var proxy = Start(_app.EndPoint, hold: new HoldOptions { MaxWait = TimeSpan.FromSeconds(10) });
        proxy.Gate.Hold("restore");
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("GET /late HTTP/1.1\r\nHost: x\r\n\r\n");
        await Eventually.TrueAsync(() => proxy.Gate.Status().Queued == 1, "request queued");
        var response = c.ReadResponseAsync();
        _time.Advance(TimeSpan.FromSeconds(9));
        await Task.Delay(50);
        Assert.False(response.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(1));
        var (status, head, _) = await response.WaitAsync(Eventually.DefaultTimeout);
        Assert.Equal(503, status);
        Assert.Contains("Retry-After:", head);
        Assert.Equal(1, proxy.Gate.Status().RejectedTimeout);
        // still held, the connection is still usable: release and the next request goes through
        proxy.Gate.Release();
        await c.SendAsync("GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal(200, (await c.ReadResponseAsync()).Status);
        Assert.Equal(["/after"], _app.Requests.Select(r => r.Path));
    }

    [Fact]
    public async Task A_request_forwarded_before_the_hold_completes_normally()
    {
        await using var proxy = Start(_app.EndPoint);
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
        await Eventually.TrueAsync(() => !_app.Requests.IsEmpty, "slow request at the app");
        proxy.Gate.Hold("checkpoint");
        _app.ReleaseSlow();
        var (status, _, body) = await c.ReadResponseAsync();
        Assert.Equal(200, status);
        Assert.Equal("GET /slow: ", body);
        Assert.True(proxy.Gate.Status().Held);
        Assert.Equal(0, proxy.Gate.Status().HeldRequests);
    }

    [Fact]
    public async Task The_app_being_down_with_no_room_to_wait_for_it_is_a_503_not_a_reset()
    {
        var closedPort = LoopbackPorts.Free();
        // no room in the queue: the request cannot wait for the app (RetryTests: it waits when there is room)
        await using var proxy = Start(new IPEndPoint(IPAddress.Loopback, closedPort), hold: new HoldOptions { MaxQueued = 0 });
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        var all = await c.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 503 Service Unavailable", all);
        Assert.Contains("Retry-After:", all);
        Assert.Equal(1, proxy.UpstreamFailures);
    }

    [Fact]
    public async Task A_head_over_the_limit_gets_431()
    {
        await using var proxy = Start(_app.EndPoint);
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + new string('a', 70_000) + "\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 431", await c.ReadToEndAsync());
        Assert.Empty(_app.Requests);
    }

    [Fact]
    public async Task Tcp_mode_holds_new_connections_until_release()
    {
        using var echo = new TcpEcho();
        await using var proxy = Start(echo.EndPoint, InterceptorMode.Tcp);
        using (var before = await RawClient.ConnectAsync(proxy.LocalEndPoint))
        {
            await before.SendAsync("a");
            before.Socket.Shutdown(SocketShutdown.Send);
            Assert.Equal("a", await before.ReadToEndAsync());
        }
        proxy.Gate.Hold("checkpoint");
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("ping");
        await Eventually.TrueAsync(() => proxy.Gate.Status().Queued == 1, "connection queued");
        Assert.Equal(1, echo.Accepted);
        proxy.Gate.Release();
        c.Socket.Shutdown(SocketShutdown.Send);
        Assert.Equal("ping", await c.ReadToEndAsync());
        Assert.Equal(2, echo.Accepted);
    }

    [Fact]
    public async Task Tcp_mode_closes_politely_over_the_count_bound_and_after_max_wait()
    {
        using var echo = new TcpEcho();
        await using var proxy = Start(echo.EndPoint, InterceptorMode.Tcp, new HoldOptions { MaxQueued = 1, MaxWait = TimeSpan.FromSeconds(5) });
        proxy.Gate.Hold("restore");
        using var waiting = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await waiting.SendAsync("first");
        await Eventually.TrueAsync(() => proxy.Gate.Status().Queued == 1, "connection queued");

        using var over = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await over.SendAsync("second");
        Assert.Equal("", await over.ReadToEndAsync()); // a FIN, no reset, nothing forwarded
        Assert.Equal(1, proxy.Gate.Status().RejectedQueueFull);

        var end = waiting.ReadToEndAsync();
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal("", await end.WaitAsync(Eventually.DefaultTimeout));
        Assert.Equal(1, proxy.Gate.Status().RejectedTimeout);
        Assert.Equal(0, echo.Accepted);
    }

    [Fact]
    public async Task The_proxied_port_answers_no_control_requests_itself()
    {
        using var echo = new TcpEcho();
        await using var proxy = Start(echo.EndPoint, InterceptorMode.Tcp);
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("hold\n");
        c.Socket.Shutdown(SocketShutdown.Send);
        Assert.Equal("hold\n", await c.ReadToEndAsync()); // the app got it, the interceptor did not act on it
        Assert.False(proxy.Gate.Status().Held);
        Assert.Equal(["hold\n"], echo.Received);
    }

    private static async Task<(int, string, string)> GetOnNewConnection(InterceptorProxy proxy, string path)
    {
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync($"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        return await c.ReadResponseAsync();
    }
}

public sealed class InterceptorUpstreamTests
{
    private static InterceptorProxy Start(EndPoint upstream)
    {
        var options = new InterceptorOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0), Upstream = upstream };
        var proxy = new InterceptorProxy(options, new HoldGate(options.Hold, TimeProvider.System), TimeProvider.System, NullLogger.Instance);
        proxy.Start();
        return proxy;
    }

    [Fact]
    public async Task An_app_connection_closed_while_idle_is_replaced_for_the_next_request()
    {
        // like an app restored from a checkpoint: the kept-alive connection of the old process is gone
        using var app = new ScriptedApp(async (s, n) =>
        {
            await ScriptedApp.ReadHeadAsync(s);
            await s.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n{n}"));
        });
        await using var proxy = Start(app.EndPoint);
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.Equal("1", (await c.ReadResponseAsync()).Body);
        await Eventually.TrueAsync(() => app.Closed.Contains(1), "the app closed its first connection");
        await Task.Delay(20); // its FIN crosses loopback
        await c.SendAsync("GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
        var (status, _, body) = await c.ReadResponseAsync();
        Assert.Equal(200, status);
        Assert.Equal("2", body);
    }

    [Fact]
    public async Task Interim_100_continue_and_an_upgrade_to_a_tunnel_are_forwarded()
    {
        using var app = new ScriptedApp(async (s, _) =>
        {
            await ScriptedApp.ReadHeadAsync(s);
            await s.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.1 100 Continue\r\n\r\n"));
            var body = new byte[2];
            var got = 0;
            while (got < 2) got += await s.ReceiveAsync(body.AsMemory(got));
            await s.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n"));
            var buffer = new byte[100];
            int n;
            while ((n = await s.ReceiveAsync(buffer)) > 0) await s.SendAsync(buffer.AsMemory(0, n).ToArray().Reverse().ToArray());
            s.Shutdown(SocketShutdown.Send);
        });
        await using var proxy = Start(app.EndPoint);
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n");
        await Eventually.TrueAsync(() => app.Accepted == 1, "forwarded");
        await c.SendAsync("hi");
        await Task.Delay(20);
        await c.SendAsync("abc");
        c.Socket.Shutdown(SocketShutdown.Send);
        var all = await c.ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n", all);
        Assert.EndsWith("\r\n\r\ncba", all);
    }

    [Fact]
    public async Task A_request_that_is_not_http_gets_400_and_nothing_reaches_the_app()
    {
        using var app = new ScriptedApp((_, _) => Task.CompletedTask);
        await using var proxy = Start(app.EndPoint);
        using var c = await RawClient.ConnectAsync(proxy.LocalEndPoint);
        await c.SendAsync("HELLO THERE\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 400 Bad Request", await c.ReadToEndAsync());
        Assert.Equal(0, app.Accepted);
    }
}

/// <summary>Issue 17, h2c: HTTP/2 in cleartext with prior knowledge passes through http mode, held per connection.</summary>
public sealed class InterceptorH2cTests
{
    private readonly ManualTimeProvider _time = new();

    /// <summary>Kestrel speaking HTTP/2 only on a cleartext port (what a gRPC app behind the sidecar does).</summary>
    private static async Task<Microsoft.AspNetCore.Builder.WebApplication> StartH2cAppAsync()
    {
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0,
            (Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions l) => l.Protocols = Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2));
        var app = builder.Build();
        app.Run(async ctx => await ctx.Response.WriteAsync($"{ctx.Request.Protocol} {ctx.Request.Method} {ctx.Request.Path}"));
        await app.StartAsync();
        return app;
    }

    private static HttpRequestMessage H2c(InterceptorProxy proxy, string path) =>
        new(HttpMethod.Get, $"http://{proxy.LocalEndPoint}{path}") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };

    [Fact]
    public async Task An_h2c_connection_with_prior_knowledge_is_passed_through_and_held_as_a_whole()
    {
        await using var app = await StartH2cAppAsync();
        var options = new InterceptorOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0), Upstream = new IPEndPoint(IPAddress.Loopback, new Uri(app.Urls.First()).Port) };
        await using var proxy = new InterceptorProxy(options, new HoldGate(options.Hold, _time), _time, NullLogger.Instance);
        proxy.Start();

        using (var http = new HttpClient())
        {
            var answer = await http.SendAsync(H2c(proxy, "/one"));
            Assert.Equal(HttpVersion.Version20, answer.Version);
            Assert.Equal("HTTP/2 GET /one", await answer.Content.ReadAsStringAsync());
            // more streams on the same connection
            Assert.Equal("HTTP/2 GET /two", await (await http.SendAsync(H2c(proxy, "/two"))).Content.ReadAsStringAsync());
        }
        Assert.Equal(1, proxy.Forwarded); // one connection

        // held: a new h2c connection waits (no 400, no reset) and is let through on release
        proxy.Gate.Hold("checkpoint");
        using var held = new HttpClient();
        var pending = held.SendAsync(H2c(proxy, "/held"));
        await Task.Delay(300);
        Assert.False(pending.IsCompleted);
        Assert.Equal(1, proxy.Forwarded);
        proxy.Gate.Release();
        var late = await pending.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("HTTP/2 GET /held", await late.Content.ReadAsStringAsync());
        Assert.Equal(2, proxy.Forwarded);
    }
}

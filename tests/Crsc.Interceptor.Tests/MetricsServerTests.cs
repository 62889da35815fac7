using System.Net;
using System.Net.Sockets;
using System.Text;
using Crsc.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Interceptor.Tests;

public sealed class MetricsServerTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ManualTimeProvider _time = new();

    public void Dispose() => _dir.Dispose();

    private MetricsServer Server(Func<string>? metrics = null, int maxRequestBytes = 8 * 1024) =>
        new(new MetricsServerOptions { Listen = new IPEndPoint(IPAddress.Loopback, 0), MaxRequestBytes = maxRequestBytes, ReadTimeout = TimeSpan.FromSeconds(5) },
            metrics ?? (() => "crsc_interceptor_held 0\n"), _time, NullLogger.Instance);

    /// <summary>Sends <paramref name="request"/> and reads until the server closes the connection.</summary>
    private static async Task<string> ExchangeAsync(EndPoint at, string request)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await s.ConnectAsync(at);
        await s.SendAsync(Encoding.ASCII.GetBytes(request));
        return await ReadToEndAsync(s);
    }

    private static async Task<string> ReadToEndAsync(Socket s)
    {
        using var give = new CancellationTokenSource(Eventually.DefaultTimeout);
        var text = new StringBuilder();
        var buffer = new byte[8192];
        while (true)
        {
            var n = await s.ReceiveAsync(buffer, SocketFlags.None, give.Token);
            if (n == 0) return text.ToString();
            text.Append(Encoding.UTF8.GetString(buffer, 0, n));
        }
    }

    [Fact]
    public async Task Metrics_and_healthz_are_answered_and_nothing_else()
    {
        var scrapes = 0;
        await using var server = Server(() => $"crsc_interceptor_holds_total {++scrapes}\n");
        server.Start();

        var metrics = await ExchangeAsync(server.LocalEndPoint, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", metrics);
        Assert.Contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n", metrics);
        Assert.EndsWith("\r\n\r\ncrsc_interceptor_holds_total 1\n", metrics);
        Assert.Contains("Content-Length: 31\r\n", metrics);

        var health = await ExchangeAsync(server.LocalEndPoint, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", health);
        Assert.EndsWith("\r\n\r\nok\n", health);

        Assert.StartsWith("HTTP/1.1 404 ", await ExchangeAsync(server.LocalEndPoint, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 404 ", await ExchangeAsync(server.LocalEndPoint, "GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 405 ", await ExchangeAsync(server.LocalEndPoint, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
        Assert.StartsWith("HTTP/1.1 400 ", await ExchangeAsync(server.LocalEndPoint, "nonsense\r\n\r\n"));
        Assert.Equal(1, scrapes); // only /metrics renders
    }

    [Fact]
    public async Task A_request_head_over_the_bound_gets_431_and_is_not_read_further()
    {
        await using var server = Server(maxRequestBytes: 1024);
        server.Start();

        var answer = await ExchangeAsync(server.LocalEndPoint, "GET /metrics HTTP/1.1\r\nX-Pad: " + new string('a', 4000) + "\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 431 ", answer);
    }

    [Fact]
    public async Task A_client_that_sends_nothing_is_closed_after_the_read_timeout()
    {
        await using var server = Server();
        server.Start();
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await s.ConnectAsync(server.LocalEndPoint);
        await s.SendAsync("GET /metr"u8.ToArray());

        // the server has taken the connection and armed its timeout: time moves past it
        await Eventually.TrueAsync(() => _time.ActiveTimers == 1, "the read timeout is armed");
        _time.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(1, _time.ActiveTimers);
        _time.Advance(TimeSpan.FromSeconds(2));

        // closed without an answer: a FIN, or a reset when the server had not read the bytes yet (the clock moved
        // before its read, on a loaded machine): closing a socket with unread data makes the kernel send a reset
        string answer;
        try { answer = await ReadToEndAsync(s); }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset) { answer = ""; }
        Assert.Equal("", answer);
        await Eventually.TrueAsync(() => _time.ActiveTimers == 0, "the timeout is gone with the connection");
    }

    [Fact]
    public async Task The_exposition_names_every_counter_with_its_labels()
    {
        using var gate = new HoldGate(new HoldOptions { MaxQueued = 0 }, _time);
        gate.Hold("restore");
        Assert.False((await gate.EnterAsync(10, CancellationToken.None)).Admitted); // queue full
        _time.Advance(TimeSpan.FromSeconds(3));
        gate.Release();
        using var replay = ReplayLog.Open(new ReplayOptions { Methods = ReplayMethods.Parse("all", out _)!, LogPath = _dir.Combine("replay.log") }, NullLogger.Instance);
        replay.NoteReplay(new ReplayResult { Succeeded = true, Entries = 2, Replayed = 2, Statuses = new() { ["200"] = 2 } });
        replay.NoteReplay(new ReplayResult { Entries = 3, Replayed = 1, Statuses = new() { ["200"] = 1, ["503"] = 1 }, Error = "the app answered 503" });

        var text = InterceptorMetrics.Render(gate.Status(), replay.Status(), forwarded: 7);

        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("crsc_interceptor_requests_forwarded_total 7", lines);
        Assert.Contains("# TYPE crsc_interceptor_requests_forwarded_total counter", lines);
        Assert.Contains("crsc_interceptor_holds_total 1", lines);
        Assert.Contains("crsc_interceptor_hold_seconds_total 3", lines);
        Assert.Contains("crsc_interceptor_longest_hold_seconds 3", lines);
        Assert.Contains("# TYPE crsc_interceptor_longest_hold_seconds gauge", lines);
        Assert.Contains("crsc_interceptor_rejected_requests_total{reason=\"queue_full\"} 1", lines);
        Assert.Contains("crsc_interceptor_rejected_requests_total{reason=\"timeout\"} 0", lines);
        Assert.Contains("crsc_interceptor_held 0", lines);
        Assert.Contains("crsc_interceptor_queued_requests 0", lines);
        Assert.Contains("crsc_interceptor_in_flight_requests 0", lines);
        Assert.Contains("crsc_interceptor_replay_log_entries 0", lines);
        Assert.Contains("crsc_interceptor_replays_total{result=\"succeeded\"} 1", lines);
        Assert.Contains("crsc_interceptor_replays_total{result=\"failed\"} 1", lines);
        Assert.Contains("crsc_interceptor_replayed_requests_total{code=\"200\"} 3", lines);
        Assert.Contains("crsc_interceptor_replayed_requests_total{code=\"503\"} 1", lines);
        Assert.Contains("crsc_interceptor_upstream_bad_gateway_total 0", lines);
        // every sample's family is declared once, before it
        var families = lines.Where(l => l.StartsWith("# TYPE ", StringComparison.Ordinal)).Select(l => l.Split(' ')[2]).ToList();
        Assert.Equal(families.Count, families.Distinct().Count());
        Assert.All(lines.Where(l => !l.StartsWith('#')), l => Assert.Contains(l.Split(['{', ' '])[0], families));
        // without a replay log: no replay families
        Assert.DoesNotContain("replay", InterceptorMetrics.Render(gate.Status(), null, 0));
    }
}

using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Crsc.Interceptor;

public sealed record MetricsServerOptions
{
    public required EndPoint Listen { get; init; }
    /// <summary>The longest request head read; a longer one gets 431 and the connection is closed.</summary>
    public int MaxRequestBytes { get; init; } = 8 * 1024;
    /// <summary>A connection that has not sent a whole request head within this is closed.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Connections served at once; more are closed at once.</summary>
    public int MaxConnections { get; init; } = 16;
}

/// <summary>
/// The sidecar's metrics port (<c>--metrics-listen</c>): a tiny HTTP/1.1 server on raw sockets (no Kestrel: the sidecar
/// must stay small) that answers <c>GET /metrics</c> (Prometheus text format 0.0.4, <see cref="InterceptorMetrics"/>)
/// and <c>GET /healthz</c>, 404 to any other path and 405 to any other method. One request per connection (the answer
/// closes it); the head is bounded (<see cref="MetricsServerOptions.MaxRequestBytes"/>) and must arrive within
/// <see cref="MetricsServerOptions.ReadTimeout"/>, so a slow client cannot hold it. Unauthenticated by design: it tells
/// counts and health, nothing else, and changes nothing.
/// </summary>
public sealed class MetricsServer : IAsyncDisposable
{
    private readonly MetricsServerOptions _options;
    private readonly Func<string> _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _listener;
    private Task? _acceptLoop;
    private int _connections;

    /// <param name="metrics">The exposition text of one scrape.</param>
    public MetricsServer(MetricsServerOptions options, Func<string> metrics, TimeProvider time, ILogger log)
    {
        _options = options;
        _metrics = metrics;
        _time = time;
        _log = log;
    }

    public EndPoint LocalEndPoint => _listener?.LocalEndPoint ?? throw new InvalidOperationException("not started");

    /// <summary>Binds and starts accepting. Throws <see cref="SocketException"/> when the address cannot be bound.</summary>
    public void Start()
    {
        var listener = new Socket(_options.Listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(_options.Listen);
            listener.Listen(64);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        _listener = listener;
        Log.MetricsListening(_log, listener.LocalEndPoint!.ToString()!);
        _acceptLoop = AcceptLoopAsync(listener, _stopping.Token);
    }

    private async Task AcceptLoopAsync(Socket listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket s;
            try { s = await listener.AcceptAsync(ct); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            if (Interlocked.Increment(ref _connections) > _options.MaxConnections)
            {
                Interlocked.Decrement(ref _connections);
                s.Dispose();
                continue;
            }
            _ = Task.Run(() => ServeAsync(s, ct), CancellationToken.None);
        }
    }

    private async Task ServeAsync(Socket s, CancellationToken ct)
    {
        try
        {
            using var socket = s;
            using var reader = new BufferedReader(s, Math.Min(1024, _options.MaxRequestBytes), _options.MaxRequestBytes);
            using var timeout = new CancellationTokenSource(_options.ReadTimeout, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
            int length;
            try { length = await Http1.ReadHeadAsync(reader, linked.Token); }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested) { return; }
            if (length == -1 || length == 0) return;
            var answer = length == -2
                ? Http1.SimpleResponse(431, "Request Header Fields Too Large", "request head too large", close: true)
                : Answer(HttpHead.Parse(reader.Buffered, length, response: false, out _));
            await s.SendAllAsync(answer, ct);
            // a polite close: what the client still sends is read and dropped (a bounded amount, within the same
            // timeout), so the kernel does not answer it with a reset that could destroy the answer in flight
            s.Shutdown(SocketShutdown.Send);
            var drained = 0;
            var sink = new byte[4096];
            try
            {
                int n;
                while (drained < 64 * 1024 && (n = await s.ReceiveAsync(sink, SocketFlags.None, linked.Token)) > 0) drained += n;
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested) { }
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException) { }
        finally { Interlocked.Decrement(ref _connections); }
    }

    private byte[] Answer(HttpHead? head)
    {
        if (head is null) return Http1.SimpleResponse(400, "Bad Request", "bad request", close: true);
        var path = head.Target;
        var query = path.IndexOf('?');
        if (query >= 0) path = path[..query];
        if (path is not ("/metrics" or "/healthz")) return Http1.SimpleResponse(404, "Not Found", "not found (GET /metrics or /healthz)", close: true);
        if (head.Method is not ("GET" or "HEAD")) return Http1.SimpleResponse(405, "Method Not Allowed", "GET only", close: true);
        var (body, type) = path == "/metrics"
            ? (_metrics(), "text/plain; version=0.0.4; charset=utf-8")
            : ("ok\n", "text/plain; charset=utf-8");
        var bytes = Encoding.UTF8.GetBytes(body);
        var headText = string.Create(CultureInfo.InvariantCulture,
            $"HTTP/1.1 200 OK\r\nContent-Type: {type}\r\nContent-Length: {bytes.Length}\r\nConnection: close\r\n\r\n");
        var headBytes = Encoding.ASCII.GetBytes(headText);
        if (head.Method == "HEAD") return headBytes;
        var all = new byte[headBytes.Length + bytes.Length];
        headBytes.CopyTo(all, 0);
        bytes.CopyTo(all, headBytes.Length);
        return all;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener?.Dispose();
        if (_acceptLoop is not null) await _acceptLoop;
        _stopping.Dispose();
    }
}

/// <summary>The interceptor's counters in the Prometheus text format 0.0.4, every name prefixed <c>crsc_interceptor_</c>.</summary>
public static class InterceptorMetrics
{
    public const string Prefix = "crsc_interceptor_";

    /// <param name="forwarded">Requests (TCP: connections) forwarded to the app, over every port.</param>
    public static string Render(HoldStatus hold, ReplayLogStatus? replay, long forwarded)
    {
        var w = new Writer();
        w.One("requests_forwarded_total", "counter", "Requests (tcp mode: connections) forwarded to the app.", forwarded);
        w.One("held_requests_total", "counter", "Requests (connections) that waited in the hold queue.", hold.HeldRequests);
        w.One("released_requests_total", "counter", "Requests (connections) that waited and were then forwarded.", hold.ReleasedRequests);
        w.Family("rejected_requests_total", "counter", "Requests refused while held (503 with Retry-After), by reason.");
        w.Sample("rejected_requests_total", "reason", "queue_full", hold.RejectedQueueFull);
        w.Sample("rejected_requests_total", "reason", "queued_bytes", hold.RejectedBytes);
        w.Sample("rejected_requests_total", "reason", "timeout", hold.RejectedTimeout);
        w.One("holds_total", "counter", "Holds started.", hold.Holds);
        w.One("expired_holds_total", "counter", "Holds that nobody released, ended after --max-hold.", hold.ExpiredHolds);
        w.One("hold_seconds_total", "counter", "Seconds held, over every finished hold.", hold.TotalHoldSeconds);
        w.One("longest_hold_seconds", "gauge", "The longest finished hold, in seconds.", hold.LongestHoldSeconds);
        w.One("held", "gauge", "1 while the traffic is held.", hold.Held ? 1 : 0);
        w.One("queued_requests", "gauge", "Requests (connections) waiting now.", hold.Queued);
        w.One("queued_bytes", "gauge", "Bytes the waiting requests hold.", hold.QueuedBytes);
        w.One("in_flight_requests", "gauge", "Requests forwarded and not answered yet.", hold.InFlight);
        w.One("upstream_waits_total", "counter", "Requests (connections) that waited for the app to accept.", hold.UpstreamWaits);
        w.One("upstream_retries_total", "counter", "Requests sent to the app again after it closed without answering.", hold.UpstreamRetries);
        w.One("upstream_gave_up_total", "counter", "Requests answered 503 because the app did not accept in time.", hold.UpstreamGaveUp);
        w.One("upstream_bad_gateway_total", "counter", "Requests answered 502: the app closed without answering, not safe to resend.", hold.UpstreamBadGateway);
        w.One("upstream_down", "gauge", "1 while the app refuses connections.", hold.UpstreamDown ? 1 : 0);
        if (replay is not null)
        {
            w.One("replay_log_entries", "gauge", "Requests in the replay log.", replay.Entries);
            w.One("replay_log_bytes", "gauge", "Size of the replay log file.", replay.Bytes);
            w.One("replay_log_overflowed", "gauge", "1 while the replay log overflowed (a replay refuses until the next checkpoint).", replay.Overflowed ? 1 : 0);
            w.Family("replays_total", "counter", "Replays of the log to a restored app, by result.");
            w.Sample("replays_total", "result", "succeeded", replay.ReplaysSucceeded);
            w.Sample("replays_total", "result", "failed", replay.ReplaysFailed);
            w.Family("replayed_requests_total", "counter", "Replayed requests, by the app's answer (status code).");
            foreach (var (code, count) in replay.ReplayedRequests.OrderBy(x => x.Key, StringComparer.Ordinal))
                w.Sample("replayed_requests_total", "code", code, count);
        }
        return w.ToString();
    }

    private sealed class Writer
    {
        private readonly StringBuilder _sb = new();

        public void Family(string name, string type, string help) =>
            _sb.Append("# HELP ").Append(Prefix).Append(name).Append(' ').Append(help).Append('\n')
               .Append("# TYPE ").Append(Prefix).Append(name).Append(' ').Append(type).Append('\n');

        public void One(string name, string type, string help, double value)
        {
            Family(name, type, help);
            _sb.Append(Prefix).Append(name).Append(' ').Append(Number(value)).Append('\n');
        }

        public void Sample(string name, string label, string labelValue, double value) =>
            _sb.Append(Prefix).Append(name).Append('{').Append(label).Append("=\"").Append(Escape(labelValue)).Append("\"} ")
               .Append(Number(value)).Append('\n');

        private static string Number(double v) => v.ToString("R", CultureInfo.InvariantCulture);

        private static string Escape(string v) => v.Replace("\\", "\\\\", StringComparison.Ordinal)
            .Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

        public override string ToString() => _sb.ToString();
    }
}

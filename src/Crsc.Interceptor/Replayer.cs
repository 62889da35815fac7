using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Crsc.Interceptor;

/// <summary>
/// Sends the replay log's requests to the restored app, in log order, one at a time (the next when the previous one's
/// response has been read whole), each to the app's address it first went to, on kept-alive connections. The responses
/// are read and dropped, their statuses counted. It stops at the first failure — the app cannot be reached after
/// <see cref="ReplayOptions.ConnectAttempts"/> tries, the connection breaks, or a 5xx — and says which entry; the log is
/// kept either way (only a completed checkpoint truncates it). An overflowed log is not replayed at all.
/// </summary>
internal static class Replayer
{
    /// <summary>Hop-by-hop and framing headers: the replayed request gets its own (Content-Length, keep-alive).</summary>
    private static readonly HashSet<string> Dropped = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Content-Length", "Expect", "TE", "Trailer", "Upgrade",
    };

    public static async Task<ReplayResult> ReplayAsync(ReplayLog log, TimeProvider time, ILogger logger, CancellationToken ct)
    {
        var result = await RunAsync(log, time, ct);
        log.NoteReplay(result);
        if (result.Succeeded) Log.Replayed(logger, result.Replayed);
        else Log.ReplayFailed(logger, result.Replayed, result.Entries, result.Error ?? "");
        return result;
    }

    private static async Task<ReplayResult> RunAsync(ReplayLog log, TimeProvider time, CancellationToken ct)
    {
        if (log.Status() is { Overflowed: true } s)
            return new ReplayResult { Error = $"the log overflowed ({s.OverflowReason}): it does not hold every request since the checkpoint, so nothing is replayed" };
        IReadOnlyList<ReplayEntry> entries;
        try { entries = await log.EntriesAsync(ct); }
        catch (IOException e) { return new ReplayResult { Error = $"reading the log failed: {e.Message}" }; }
        var options = log.Options;
        var statuses = new Dictionary<string, int>(StringComparer.Ordinal);
        var connections = new Dictionary<string, (Socket Socket, BufferedReader Reader)>(StringComparer.Ordinal);
        var replayed = 0;
        try
        {
            foreach (var entry in entries)
            {
                string? error;
                int status;
                using (var timeout = new CancellationTokenSource(options.RequestTimeout, time))
                using (var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token))
                {
                    try { (status, error) = await SendAsync(entry, connections, options, time, linked.Token); }
                    catch (OperationCanceledException) when (timeout.IsCancellationRequested && !ct.IsCancellationRequested)
                    {
                        (status, error) = (0, $"no answer within {options.RequestTimeout}");
                    }
                }
                if (status > 0)
                {
                    var key = status.ToString(CultureInfo.InvariantCulture);
                    statuses[key] = statuses.GetValueOrDefault(key) + 1;
                }
                if (error is null && status >= 500) error = $"the app answered {status}";
                if (error is not null)
                {
                    return new ReplayResult
                    {
                        Entries = entries.Count, Replayed = replayed, Statuses = statuses,
                        Error = $"entry {replayed + 1} of {entries.Count} ({entry.Method} {entry.Target} to {entry.Upstream}): {error}",
                    };
                }
                replayed++;
            }
            return new ReplayResult { Succeeded = true, Entries = entries.Count, Replayed = replayed, Statuses = statuses };
        }
        finally
        {
            foreach (var (socket, reader) in connections.Values)
            {
                reader.Dispose();
                socket.Dispose();
            }
        }
    }

    /// <summary>One entry: (status, null) when answered, (0 or status, error) when not.</summary>
    private static async Task<(int Status, string? Error)> SendAsync(ReplayEntry entry, Dictionary<string, (Socket Socket, BufferedReader Reader)> connections,
        ReplayOptions options, TimeProvider time, CancellationToken ct)
    {
        if (!IPEndPoint.TryParse(entry.Upstream, out var upstream)) return (0, $"'{entry.Upstream}' is not an address");
        var request = Request(entry);
        // a kept-alive connection the app closed meanwhile is opened again once
        for (var fresh = 0; fresh < 2; fresh++)
        {
            if (!connections.TryGetValue(entry.Upstream, out var c))
            {
                var socket = await ConnectAsync(upstream, options, time, ct);
                if (socket is null) return (0, $"cannot connect to the app after {options.ConnectAttempts} attempts");
                c = (socket, new BufferedReader(socket, 16 * 1024, 64 * 1024));
                connections[entry.Upstream] = c;
                fresh = 1;
            }
            try
            {
                await c.Socket.SendAllAsync(request, ct);
                while (true)
                {
                    var length = await Http1.ReadHeadAsync(c.Reader, ct);
                    if (length <= 0) throw new IOException("the app closed the connection without a response");
                    var head = HttpHead.Parse(c.Reader.Buffered, length, response: true, out var problem)
                        ?? throw new IOException($"the app's response does not parse: {problem}");
                    c.Reader.Consume(length);
                    if (head.Status is >= 100 and < 200) continue;
                    if (!await Http1.CopyBodyAsync(c.Reader, null, head.ResponseBody(entry.Method), head.ContentLength, ct))
                        throw new IOException("the app's response body ended early");
                    if (head.Close || head.Body == BodyKind.UntilClose) Drop(connections, entry.Upstream);
                    return (head.Status, null);
                }
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                Drop(connections, entry.Upstream);
                // a fresh connection that broke: the app took the request or not, we cannot know — stop here
                if (fresh == 1) return (0, e.Message);
            }
        }
        return (0, "unreachable");
    }

    private static void Drop(Dictionary<string, (Socket Socket, BufferedReader Reader)> connections, string upstream)
    {
        if (!connections.Remove(upstream, out var c)) return;
        c.Reader.Dispose();
        c.Socket.Dispose();
    }

    private static async Task<Socket?> ConnectAsync(IPEndPoint upstream, ReplayOptions options, TimeProvider time, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            var s = new Socket(upstream.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await s.ConnectAsync(upstream, ct);
                return s;
            }
            catch (SocketException)
            {
                s.Dispose();
                if (attempt >= options.ConnectAttempts) return null;
            }
            await Task.Delay(options.ConnectRetryDelay, time, ct);
        }
    }

    internal static byte[] Request(ReplayEntry entry)
    {
        var sb = new StringBuilder();
        sb.Append(entry.Method).Append(' ').Append(entry.Target).Append(" HTTP/1.1\r\n");
        foreach (var (name, value) in entry.Headers)
            if (!Dropped.Contains(name)) sb.Append(name).Append(": ").Append(value).Append("\r\n");
        sb.Append("Content-Length: ").Append(entry.Body.Length).Append("\r\n\r\n");
        var head = Encoding.Latin1.GetBytes(sb.ToString());
        var bytes = new byte[head.Length + entry.Body.Length];
        head.CopyTo(bytes, 0);
        entry.Body.Span.CopyTo(bytes.AsSpan(head.Length));
        return bytes;
    }
}

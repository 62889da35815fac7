using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Crsc.Interceptor;

/// <summary>What the interceptor speaks on its port.</summary>
public enum InterceptorMode
{
    /// <summary>
    /// HTTP/1.1 (keep-alive, Content-Length and chunked bodies, upgrades tunnelled — <c>Upgrade: h2c</c> too): held per
    /// request. A connection that opens with HTTP/2's preface (h2c with prior knowledge) is passed through whole, held
    /// per connection as in <see cref="Tcp"/> mode: its requests are neither held one by one nor logged for replay.
    /// </summary>
    Http,
    /// <summary>Any TCP protocol: held per connection.</summary>
    Tcp,
}

public sealed record InterceptorOptions
{
    public required EndPoint Listen { get; init; }
    /// <summary>The app's port, normally on loopback.</summary>
    public required EndPoint Upstream { get; init; }
    public InterceptorMode Mode { get; init; } = InterceptorMode.Http;
    public HoldOptions Hold { get; init; } = new();
    /// <summary>The longest request or response head (start line and headers); a longer request gets 431.</summary>
    public int MaxHeadBytes { get; init; } = 64 * 1024;
    /// <summary>A polite close (shutdown, then reading what the peer still sends so the kernel sends no reset) lasts at most this.</summary>
    public TimeSpan CloseLinger { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>
/// The interceptor sidecar's proxy: listens on <see cref="InterceptorOptions.Listen"/> and forwards to the app's port,
/// one upstream connection per client connection, opened when its first request (HTTP) or the connection (TCP) is let
/// through <see cref="Gate"/> — so while the gate holds, connections are accepted but nothing reaches the app, which
/// may be frozen or not listening at all. A refused HTTP request gets <c>503</c> with <c>Retry-After</c>; a refused TCP
/// connection is closed politely (FIN, never a reset). An app that refuses connections (restarting, or restored) is
/// waited for; a request it closed on without answering is sent again when that is safe (<see cref="ConnectWaitingAsync"/>,
/// <see cref="RetryAfterCloseAsync"/>). Raw sockets and pooled buffers, no Kestrel: the sidecar must stay small.
/// </summary>
public sealed class InterceptorProxy : IAsyncDisposable
{
    private const int BufferSize = 16 * 1024;
    /// <summary>A request is sent again at most this many times after the app closed without answering it.</summary>
    internal const int MaxRetries = 3;
    /// <summary>A request whose body is over this is not kept, so not sent again (it gets 502 as before).</summary>
    internal const int MaxRetryBodyBytes = 1 << 20;
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(20), MaxBackoff = TimeSpan.FromMilliseconds(250);
    private readonly InterceptorOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Socket, Task> _connections = new();
    private Socket? _listener;
    private Task? _acceptLoop;
    private long _requests, _upstreamFailures;

    private readonly ReplayLog? _replay;

    /// <param name="replay">The replay log (HTTP mode only): requests whose method it logs are appended, and durable,
    /// before the app's response to them is passed back.</param>
    public InterceptorProxy(InterceptorOptions options, HoldGate gate, TimeProvider time, ILogger log, ReplayLog? replay = null)
    {
        if (replay is not null && options.Mode != InterceptorMode.Http) throw new ArgumentException("replay needs HTTP mode", nameof(replay));
        _options = options;
        Gate = gate;
        _time = time;
        _log = log;
        _replay = replay;
    }

    public HoldGate Gate { get; }
    public EndPoint LocalEndPoint => _listener?.LocalEndPoint ?? throw new InvalidOperationException("not started");
    /// <summary>Requests (HTTP) or connections (TCP) forwarded to the app.</summary>
    public long Forwarded => Interlocked.Read(ref _requests);
    /// <summary>Connects to the app that failed (refused or unreachable; the request waited and tried again).</summary>
    public long UpstreamFailures => Interlocked.Read(ref _upstreamFailures);

    /// <summary>Binds and starts accepting. Throws <see cref="SocketException"/> when the address cannot be bound.</summary>
    public void Start()
    {
        var listener = new Socket(_options.Listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(_options.Listen);
            listener.Listen(512);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        _listener = listener;
        Log.Started(_log, listener.LocalEndPoint!.ToString()!, _options.Upstream.ToString()!, _options.Mode);
        _acceptLoop = AcceptLoopAsync(listener, _stopping.Token);
    }

    private async Task AcceptLoopAsync(Socket listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try { client = await listener.AcceptAsync(ct); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException e) { Log.AcceptFailed(_log, e.SocketErrorCode); continue; }
            client.NoDelay = true;
            var task = Task.Run(() => ServeAsync(client, ct), CancellationToken.None);
            _connections[client] = task;
            _ = task.ContinueWith(_ => _connections.TryRemove(client, out Task? _), TaskScheduler.Default);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken ct)
    {
        try
        {
            if (_options.Mode == InterceptorMode.Http) await ServeHttpAsync(client, ct);
            else await ServeTcpAsync(client, ReadOnlyMemory<byte>.Empty, ct);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { }
        catch (Exception e) when (e is SocketException or IOException) { Log.ConnectionFailed(_log, e.Message); }
        catch (Exception e) { Log.ConnectionCrashed(_log, e); }
        finally { client.Dispose(); }
    }

    /// <summary>One connect to the app; null when it refused (or was unreachable): nothing reached it.</summary>
    private async Task<Socket?> TryConnectAsync(CancellationToken ct)
    {
        var up = new Socket(_options.Upstream.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await up.ConnectAsync(_options.Upstream, ct);
            if (Gate.UpstreamAccepted()) Log.UpstreamBack(_log, _options.Upstream.ToString()!);
            return up;
        }
        catch (SocketException e)
        {
            up.Dispose();
            Interlocked.Increment(ref _upstreamFailures);
            if (Gate.UpstreamRefused()) Log.UpstreamDown(_log, _options.Upstream.ToString()!);
            Log.UpstreamFailed(_log, _options.Upstream.ToString()!, e.SocketErrorCode);
            return null;
        }
        catch
        {
            up.Dispose();
            throw;
        }
    }

    /// <summary>Why a request stopped waiting for the app.</summary>
    private enum GaveUp { No, Waited, QueueFull, BytesFull, Stopping }

    /// <summary>
    /// Connects to the app; while it refuses (down, or restarting: nothing reached it, so this is safe for any request)
    /// waits and tries again, 20 ms doubling to 250 ms, until the request has waited <see cref="HoldOptions.MaxWait"/> in
    /// all (held time included). While it waits it is not in flight (a hold's quiesce does not wait for it) and it takes a
    /// place in the queue's bounds; each attempt passes the gate again, so a hold that began meanwhile is waited behind.
    /// Returns the admission to use from then on (the one passed in may have been replaced).
    /// </summary>
    private async Task<(Socket? Up, Admission Admission, GaveUp GaveUp)> ConnectWaitingAsync(Admission admission, long bytes, CancellationToken ct)
    {
        var start = _time.GetTimestamp();
        var budget = Gate.Options.MaxWait - admission.Waited;
        var delay = FirstBackoff;
        var first = true;
        try
        {
            while (true)
            {
                var up = await TryConnectAsync(ct);
                if (up is not null) return (up, admission, GaveUp.No);
                admission.Dispose();
                var left = budget - _time.GetElapsedTime(start);
                if (left <= TimeSpan.Zero) return (null, admission, GaveUp.Waited);
                using (var wait = Gate.WaitForUpstream(bytes, first, out var refused))
                {
                    if (wait is null) return (null, admission, refused == AdmissionOutcome.BytesFull ? GaveUp.BytesFull : GaveUp.QueueFull);
                    await Task.Delay(delay < left ? delay : left, _time, ct);
                }
                first = false;
                delay = delay * 2 < MaxBackoff ? delay * 2 : MaxBackoff;
                admission = await Gate.EnterAsync(bytes, ct);
                if (!admission.Admitted)
                    return (null, admission, admission.Outcome switch
                    {
                        AdmissionOutcome.QueueFull => GaveUp.QueueFull,
                        AdmissionOutcome.BytesFull => GaveUp.BytesFull,
                        _ => GaveUp.Waited,
                    });
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return (null, admission, GaveUp.Stopping);
        }
    }

    private static string Why(GaveUp gaveUp) => gaveUp switch
    {
        GaveUp.QueueFull => "the app is not accepting connections and the queue of waiting requests is full",
        GaveUp.BytesFull => "the app is not accepting connections and the queue's byte budget is spent",
        GaveUp.Stopping => "the interceptor is stopping and the app is not accepting connections",
        _ => "the app did not accept a connection within the time a request may wait",
    };

    /// <summary>The answer to a request that gave up waiting for the app: 503 with Retry-After, never a reset.</summary>
    private async Task GiveUpAsync(Socket client, GaveUp gaveUp, string method, string target, bool close, CancellationToken ct)
    {
        Gate.NoteUpstreamGaveUp();
        Log.GaveUp(_log, method, target, Why(gaveUp));
        var response = Http1.SimpleResponse(503, "Service Unavailable", Why(gaveUp), close || gaveUp == GaveUp.Stopping, Gate.Options.RetryAfter);
        if (gaveUp != GaveUp.Stopping)
        {
            await client.SendAllAsync(response, ct);
            if (close) await CloseGentlyAsync(client, ct);
            return;
        }
        // stopping: the answer goes out at once, best effort (the connection is about to be closed)
        try
        {
            await client.SendAllAsync(response, CancellationToken.None).AsTask().WaitAsync(_options.CloseLinger, TimeProvider.System);
            client.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or TimeoutException) { }
    }

    private static bool Idempotent(string method) => method is "GET" or "HEAD" or "OPTIONS" or "PUT" or "DELETE" or "TRACE";

    private async Task ServeHttpAsync(Socket client, CancellationToken ct)
    {
        using var fromClient = new BufferedReader(client, BufferSize, _options.MaxHeadBytes);
        Socket? up = null;
        BufferedReader? fromApp = null;
        Task<bool>? requestBody = null;
        var opening = true;
        try
        {
            for (; ; opening = false)
            {
                var length = await Http1.ReadHeadAsync(fromClient, ct);
                if (length is 0 or -1) return; // the client closed (inside a head: nothing to answer)
                if (length == -2)
                {
                    await RefuseAsync(client, 431, "Request Header Fields Too Large", $"the request head is over {_options.MaxHeadBytes} bytes", close: true, ct);
                    return;
                }
                if (opening && fromClient.Buffered.StartsWith(Http2Preface))
                {
                    // h2c with prior knowledge: the connection is the unit, as in tcp mode (the preface goes first)
                    await ServeTcpAsync(client, fromClient.BufferedMemory.ToArray(), ct);
                    return;
                }
                var head = HttpHead.Parse(fromClient.Buffered, length, response: false, out var problem);
                if (head is null)
                {
                    await RefuseAsync(client, 400, "Bad Request", problem!, close: true, ct);
                    return;
                }

                var bytes = length + Math.Max(0, head.ContentLength);
                var admission = await Gate.EnterAsync(bytes, ct);
                try
                {
                    if (!admission.Admitted)
                    {
                        fromClient.Consume(length);
                        // a refused request with a body ends the connection: its body may never come (Expect: 100-continue)
                        var close = head.Close || head.Body != BodyKind.None;
                        await RefuseAsync(client, 503, "Service Unavailable", Why(admission.Outcome), close, ct, Gate.Options.RetryAfter);
                        if (close) return;
                        continue;
                    }

                    if (up is not null && !StillOpen(up))
                    {
                        fromApp!.Dispose();
                        up.Dispose();
                        up = null;
                    }

                    // a request the replay log keeps: its target and headers now, its body as it is copied
                    var logged = _replay is not null && !head.Upgrade && _replay.Logs(head.Method)
                        ? (Parts: Http1.RequestParts(fromClient.Buffered[..length]), Body: new BodyCapture(_replay.Options.MaxBytes))
                        : default;
                    // a request that may be sent again if the app closes without answering keeps its bytes (bounded)
                    var retryable = !head.Upgrade && (Idempotent(head.Method) || logged.Body is not null);
                    var kept = retryable ? (Head: fromClient.Buffered[..length].ToArray(), Body: new BodyCapture(MaxRetryBodyBytes)) : default;
                    var retries = 0;
                    var retriedAlive = false;
                    HttpHead? response;
                    var rlength = 0;
                    while (true) // attempts: the first, then retries after the app closed without answering
                    {
                        if (up is null)
                        {
                            (up, admission, var gaveUp) = await ConnectWaitingAsync(admission, bytes, ct);
                            if (up is null)
                            {
                                // the first attempt's request is still unread (its body too): a body ends the connection
                                if (retries == 0) fromClient.Consume(length);
                                var close = head.Close || (retries == 0 && head.Body != BodyKind.None);
                                await GiveUpAsync(client, gaveUp, head.Method, head.Target, close, ct);
                                if (close || gaveUp == GaveUp.Stopping) return;
                                response = null;
                                break;
                            }
                            fromApp = new BufferedReader(up, BufferSize, _options.MaxHeadBytes);
                        }
                        if (retries == 0)
                        {
                            await up.SendAllAsync(fromClient.BufferedMemory[..length], ct);
                            fromClient.Consume(length);
                            Interlocked.Increment(ref _requests);
                            requestBody = Http1.CopyBodyAsync(fromClient, up, head.Body, head.ContentLength, ct, logged.Body, kept.Body).AsTask();
                        }
                        else
                        {
                            // the same bytes again; the replay log's copy of the body was taken on the first attempt only,
                            // and the request is appended (once) when it is answered
                            await up.SendAllAsync(kept.Head, ct);
                            await up.SendAllAsync(kept.Body!.Written, ct);
                        }

                        var answered = false;
                        var continued = false;
                        while (true)
                        {
                            rlength = await Http1.ReadHeadAsync(fromApp!, ct);
                            response = rlength > 0 ? HttpHead.Parse(fromApp!.Buffered, rlength, response: true, out _) : null;
                            if (response is null) break;
                            if (logged.Body is not null && response.Status >= 200)
                            {
                                // acknowledged ⇒ logged: the final answer goes back only once the request is durable in the log
                                // (a request whose body did not reach the app whole is not logged). A client that waits for
                                // 100 Continue and got a final answer instead never sends its body: nothing to wait for.
                                var refusedBeforeBody = !requestBody!.IsCompleted && !continued && ExpectsContinue(logged.Parts.Headers);
                                if (!refusedBeforeBody && await requestBody) await AppendAsync(head.Method, logged.Parts, logged.Body);
                            }
                            if (response.Status == 100) continued = true;
                            admission.Forwarded(); // answered: the next held request may go
                            answered = true;
                            await client.SendAllAsync(fromApp!.BufferedMemory[..rlength], ct);
                            fromApp.Consume(rlength);
                            if (response.Status == 101)
                            {
                                admission.Dispose(); // a tunnel is not a request in flight: a hold does not wait for it
                                await TunnelAsync(fromClient, client, fromApp, up, ct);
                                return;
                            }
                            if (response.Status >= 200) break; // 1xx interim responses (100 Continue) come before the final one
                        }
                        if (response is not null) break;

                        // the app closed (or reset) without a response, or answered garbage
                        if (answered) return; // the client has had part of an answer: just close
                        fromApp!.Dispose();
                        fromApp = null;
                        up.Dispose();
                        up = null;
                        var retry = rlength == 0 && retryable && retries < MaxRetries && await WholeRequestKeptAsync(requestBody!, kept.Head!, kept.Body!)
                            ? await RetryAfterCloseAsync(head.Method, retriedAlive, ct)
                            : null;
                        if (retry is null)
                        {
                            Gate.NoteUpstreamBadGateway();
                            Log.BadGateway(_log, head.Method, head.Target);
                            await RefuseAsync(client, 502, "Bad Gateway", "the app closed the connection without a response", close: true, ct);
                            return;
                        }
                        retries++;
                        Gate.NoteUpstreamRetry();
                        if (retry.Value.Probe is { } probe)
                        {
                            retriedAlive = true;
                            up = probe;
                            fromApp = new BufferedReader(up, BufferSize, _options.MaxHeadBytes);
                        }
                        Log.Retrying(_log, head.Method, head.Target, retries, retry.Value.Why);
                    }
                    if (response is null) continue; // it gave up waiting for the app and was answered 503; the connection goes on
                    if (!await Http1.CopyBodyAsync(fromApp!, client, response.ResponseBody(head.Method), response.ContentLength, ct)) return;
                    if (!await requestBody! || head.Close || response.Close) return;
                }
                finally { admission.Dispose(); } // done: no longer in flight
            }
        }
        finally
        {
            up?.Dispose();
            if (requestBody is { IsCompleted: false })
            {
                // the request body's copy still reads the client's buffer: end it before the buffer goes back to the pool
                client.Dispose();
                try { await requestBody; } catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException or IOException) { }
            }
            fromApp?.Dispose();
        }
    }

    /// <summary>
    /// Whether the whole request (head and body) is kept to be sent again: its body was read from the client whole and
    /// within <see cref="MaxRetryBodyBytes"/>. A client waiting for 100 Continue that never had it has not sent its body.
    /// </summary>
    private static async Task<bool> WholeRequestKeptAsync(Task<bool> requestBody, byte[] head, BodyCapture body)
    {
        if (!requestBody.IsCompleted && ExpectsContinue(Http1.RequestParts(head).Headers)) return false;
        try { return await requestBody && !body.TooLarge; }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException) { return false; } // the copy to the dead app broke
    }

    /// <summary>
    /// The app closed without answering: may the request be sent again? A fresh connect probes it. Refused: the process
    /// is gone, and what it did with the request died with it (or, with replay, is rebuilt from the checkpoint and the
    /// log): an idempotent or logged request is sent again once the app accepts. Accepted: the app is alive and just
    /// closed, and may have applied the request: only an idempotent one is sent again, once, on that connection.
    /// Null: not sent again (502).
    /// </summary>
    private async Task<(Socket? Probe, string Why)?> RetryAfterCloseAsync(string method, bool retriedAlive, CancellationToken ct)
    {
        var probe = await TryConnectAsync(ct);
        if (probe is null) return (null, "the app is gone (a fresh connect is refused)"); // the caller sends only idempotent or logged ones
        if (Idempotent(method) && !retriedAlive) return (probe, "the app closed without answering (it is alive; the method is idempotent)");
        probe.Dispose();
        return null;
    }

    private async Task AppendAsync(string method, (string Target, List<KeyValuePair<string, string>> Headers) parts, BodyCapture body)
    {
        if (body.TooLarge)
        {
            _replay!.TooLarge(method, parts.Target);
            return;
        }
        await _replay!.AppendAsync(_options.Upstream.ToString()!, method, parts.Target, parts.Headers, body.Written);
    }

    private static bool ExpectsContinue(List<KeyValuePair<string, string>> headers) =>
        headers.Any(h => h.Key.Equals("Expect", StringComparison.OrdinalIgnoreCase) && h.Value.Equals("100-continue", StringComparison.OrdinalIgnoreCase));

    private static string Why(AdmissionOutcome outcome) => outcome switch
    {
        AdmissionOutcome.QueueFull => "the app is paused (checkpoint or restore) and the queue of waiting requests is full",
        AdmissionOutcome.BytesFull => "the app is paused (checkpoint or restore) and the queue's byte budget is spent",
        _ => "the app is paused (checkpoint or restore) and the request waited as long as it may",
    };

    /// <summary>A kept-alive upstream connection the app has not closed (a restore ends the old process's sockets).</summary>
    private static bool StillOpen(Socket up)
    {
        try { return !(up.Poll(0, SelectMode.SelectRead) && up.Available == 0); }
        catch (SocketException) { return false; }
    }

    private async Task RefuseAsync(Socket client, int status, string reason, string message, bool close, CancellationToken ct, TimeSpan? retryAfter = null)
    {
        await client.SendAllAsync(Http1.SimpleResponse(status, reason, message, close, retryAfter), ct);
        if (close) await CloseGentlyAsync(client, ct);
    }

    /// <summary>FIN, then read and drop what the peer still sends until it closes (or the linger ends): closing with unread data would send a reset.</summary>
    private async Task CloseGentlyAsync(Socket socket, CancellationToken ct)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Send);
            using var timeout = new CancellationTokenSource(_options.CloseLinger, _time);
            using var linger = CancellationTokenSource.CreateLinkedTokenSource(ct, timeout.Token);
            var sink = new byte[4096];
            while (await socket.ReceiveAsync(sink, SocketFlags.None, linger.Token) > 0) { }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { }
    }

    /// <summary>The start of HTTP/2's connection preface (RFC 9113 §3.4), up to the blank line a head reader stops at.</summary>
    private static ReadOnlySpan<byte> Http2Preface => "PRI * HTTP/2.0\r\n\r\n"u8;

    /// <param name="first">what was read from the client already (sent to the app first)</param>
    private async Task ServeTcpAsync(Socket client, ReadOnlyMemory<byte> first, CancellationToken ct)
    {
        using var admission = await Gate.EnterAsync(0, ct);
        if (!admission.Admitted)
        {
            Log.TcpRefused(_log, admission.Outcome);
            await CloseGentlyAsync(client, ct);
            return;
        }
        var (up, waited, gaveUp) = await ConnectWaitingAsync(admission, 0, ct);
        using var _ = up;
        waited.Dispose();
        if (up is null)
        {
            Gate.NoteUpstreamGaveUp();
            Log.TcpGaveUp(_log, Why(gaveUp));
            if (gaveUp != GaveUp.Stopping) await CloseGentlyAsync(client, ct);
            return;
        }
        Interlocked.Increment(ref _requests); // a connection is not a request in flight: a hold does not wait for it to end
        await Task.WhenAll(PumpAsync(client, up, first, ct), PumpAsync(up, client, ReadOnlyMemory<byte>.Empty, ct));
    }

    private static async Task TunnelAsync(BufferedReader fromClient, Socket client, BufferedReader fromApp, Socket up, CancellationToken ct)
    {
        var clientRest = fromClient.BufferedMemory.ToArray();
        var appRest = fromApp.BufferedMemory.ToArray();
        await Task.WhenAll(PumpAsync(client, up, clientRest, ct), PumpAsync(up, client, appRest, ct));
    }

    /// <summary>Copies one direction until end of stream, then half-closes the other side.</summary>
    private static async Task PumpAsync(Socket from, Socket to, ReadOnlyMemory<byte> first, CancellationToken ct)
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            if (!first.IsEmpty) await to.SendAllAsync(first, ct);
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, SocketFlags.None, ct);
                if (n == 0) break;
                await to.SendAllAsync(buffer.AsMemory(0, n), ct);
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        finally { System.Buffers.ArrayPool<byte>.Shared.Return(buffer); }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener?.Dispose();
        if (_acceptLoop is not null) await _acceptLoop;
        foreach (var s in _connections.Keys) s.Dispose();
        await Task.WhenAll(_connections.Values);
        _stopping.Dispose();
    }
}

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Interceptor listening on {Listen}, forwarding to {Upstream} ({Mode})")]
    public static partial void Started(ILogger logger, string listen, string upstream, InterceptorMode mode);

    [LoggerMessage(2, LogLevel.Warning, "Accepting a connection failed: {Error}")]
    public static partial void AcceptFailed(ILogger logger, SocketError error);

    [LoggerMessage(3, LogLevel.Debug, "Connection ended with an error: {Error}")]
    public static partial void ConnectionFailed(ILogger logger, string error);

    [LoggerMessage(4, LogLevel.Error, "Connection handler failed")]
    public static partial void ConnectionCrashed(ILogger logger, Exception exception);

    [LoggerMessage(5, LogLevel.Debug, "Cannot connect to the app at {Upstream}: {Error}")]
    public static partial void UpstreamFailed(ILogger logger, string upstream, SocketError error);

    [LoggerMessage(6, LogLevel.Information, "TCP connection refused while held: {Outcome}")]
    public static partial void TcpRefused(ILogger logger, AdmissionOutcome outcome);

    [LoggerMessage(7, LogLevel.Information, "Control: {Command} ({Reason})")]
    public static partial void Control(ILogger logger, string command, string reason);

    [LoggerMessage(8, LogLevel.Information, "Control socket at {Path}")]
    public static partial void ControlListening(ILogger logger, string path);

    [LoggerMessage(9, LogLevel.Warning, "Replay log {Path}: cut a torn tail of {Bytes} bytes at offset {Offset} (a crash mid-append); those records are not replayed")]
    public static partial void TornTail(ILogger logger, string path, long bytes, long offset);

    [LoggerMessage(10, LogLevel.Error, "Replay log {Path} OVERFLOWED: {Reason}. Requests are no longer logged and a replay refuses until a checkpoint completes")]
    public static partial void Overflowed(ILogger logger, string path, string reason);

    [LoggerMessage(11, LogLevel.Information, "Replay log {Path}: a checkpoint at position {Position} covers every dropped request; logging again")]
    public static partial void OverflowEnded(ILogger logger, string path, long position);

    [LoggerMessage(12, LogLevel.Information, "Replayed {Count} request(s) to the restored app")]
    public static partial void Replayed(ILogger logger, int count);

    [LoggerMessage(13, LogLevel.Error, "Replay failed after {Replayed} of {Entries} request(s): {Error}; the log is kept")]
    public static partial void ReplayFailed(ILogger logger, int replayed, int entries, string error);

    [LoggerMessage(14, LogLevel.Information, "Replay log {Path}: truncated at position {Position} ({Entries} request(s) left)")]
    public static partial void Truncated(ILogger logger, string path, long position, int entries);

    [LoggerMessage(16, LogLevel.Warning, "The app at {Upstream} is not accepting connections: requests wait for it (at most --max-wait) instead of failing")]
    public static partial void UpstreamDown(ILogger logger, string upstream);

    [LoggerMessage(17, LogLevel.Information, "The app at {Upstream} accepts connections again")]
    public static partial void UpstreamBack(ILogger logger, string upstream);

    [LoggerMessage(18, LogLevel.Warning, "{Method} {Target} answered 503: {Why}")]
    public static partial void GaveUp(ILogger logger, string method, string target, string why);

    [LoggerMessage(19, LogLevel.Information, "TCP connection closed: {Why}")]
    public static partial void TcpGaveUp(ILogger logger, string why);

    [LoggerMessage(20, LogLevel.Information, "{Method} {Target} sent again (retry {Retry}): {Why}")]
    public static partial void Retrying(ILogger logger, string method, string target, int retry, string why);

    [LoggerMessage(21, LogLevel.Warning, "{Method} {Target} answered 502: the app closed without a response and the request is not safe to send again (it may have been applied, or is not kept)")]
    public static partial void BadGateway(ILogger logger, string method, string target);

    [LoggerMessage(15, LogLevel.Warning, "Hold: requests admitted before it were still in flight after {Timeout}; the log position it reports may miss them")]
    public static partial void NotQuiesced(ILogger logger, TimeSpan timeout);

    [LoggerMessage(22, LogLevel.Information, "Interceptor metrics on http://{Listen}/metrics (and /healthz)")]
    public static partial void MetricsListening(ILogger logger, string listen);
}

using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Crsc.Daemon;

namespace Crsc.Cli;

/// <summary>The node API could not be reached; the message says why and names the socket.</summary>
internal sealed class NodeApiUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The daemon answered with something this client cannot read, or a non-stream error status.</summary>
internal sealed class NodeApiException(string message, int? status = null) : Exception(message)
{
    public int? Status { get; } = status;
}

/// <summary>
/// A small HTTP/1.1 client of the daemon's node API over its Unix socket (<c>socket</c>, default
/// <c>/run/crsc/crsc.sock</c>). Connection problems become <see cref="NodeApiUnavailableException"/> with a message
/// that says what to check.
/// </summary>
internal sealed class NodeApiClient : IDisposable
{
    private readonly HttpClient _http;

    public NodeApiClient(string socketPath)
    {
        SocketPath = socketPath;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = ConnectAsync,
            UseProxy = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(1),
        };
        _http = new HttpClient(handler)
        {
            BaseAddress = new Uri("http://crsc.sock"),
            // a checkpoint takes as long as it takes; the caller's token bounds it
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    public string SocketPath { get; }

    private string NotRunning(string why) => $"cannot reach the crsc daemon: {why}; is the daemon running? (socket {SocketPath})";

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        if (!File.Exists(SocketPath) && !Directory.Exists(Path.GetDirectoryName(SocketPath)))
            throw new NodeApiUnavailableException(NotRunning("the socket's directory does not exist"));
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw e.SocketErrorCode switch
            {
                SocketError.AddressNotAvailable or SocketError.HostNotFound when !File.Exists(SocketPath) =>
                    new NodeApiUnavailableException(NotRunning("the socket does not exist"), e),
                SocketError.ConnectionRefused => new NodeApiUnavailableException(NotRunning("nobody listens on the socket (connection refused)"), e),
                SocketError.AccessDenied => new NodeApiUnavailableException(
                    $"cannot reach the crsc daemon: permission denied on socket {SocketPath}; the node API is root only (try sudo)", e),
                _ when !File.Exists(SocketPath) => new NodeApiUnavailableException(NotRunning("the socket does not exist"), e),
                _ => new NodeApiUnavailableException(NotRunning(e.Message), e),
            };
        }
        catch (UnauthorizedAccessException e)
        {
            socket.Dispose();
            throw new NodeApiUnavailableException(
                $"cannot reach the crsc daemon: permission denied on socket {SocketPath}; the node API is root only (try sudo)", e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Starts a checkpoint and calls <paramref name="onLine"/> for every line of the stream (progress, then the result or
    /// the error). Returns the last line. A 400 comes back as a line with <c>error</c> too.
    /// </summary>
    /// <exception cref="NodeApiUnavailableException">the daemon could not be reached</exception>
    /// <exception cref="NodeApiException">the daemon's answer was not a checkpoint stream</exception>
    public async Task<CheckpointStreamLine> CheckpointAsync(CheckpointApiRequest request, Action<CheckpointStreamLine, string> onLine, CancellationToken ct)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(request, NodeApiJson.Default.CheckpointApiRequest);
        using var message = new HttpRequestMessage(HttpMethod.Post, NodeApiCheckpoints.Path)
        {
            Content = new ByteArrayContent(body) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
        };
        using var response = await SendAsync(message, ct);
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        CheckpointStreamLine? last = null;
        while (await reader.ReadLineAsync(ct) is { } text)
        {
            if (text.Length == 0) continue;
            CheckpointStreamLine? line;
            try { line = JsonSerializer.Deserialize(text, NodeApiJson.Default.CheckpointStreamLine); }
            catch (JsonException e) { throw new NodeApiException($"the daemon sent a line that is not JSON ({e.Message}): {Trim(text)}", (int)response.StatusCode); }
            if (line is null) continue;
            last = line;
            onLine(line, text);
            if (line.Result is not null || line.Error is not null) break;
        }
        if (last?.Error is null && !response.IsSuccessStatusCode)
            throw new NodeApiException($"the daemon answered {(int)response.StatusCode} {response.ReasonPhrase}", (int)response.StatusCode);
        if (last is null || (last.Result is null && last.Error is null))
            throw new NodeApiException("the daemon closed the stream before the checkpoint finished (no result); see the daemon's log");
        return last;
    }

    /// <summary>The daemon's <c>GET /v1/status</c>, and its raw JSON.</summary>
    /// <exception cref="NodeApiUnavailableException">the daemon could not be reached</exception>
    /// <exception cref="NodeApiException">the daemon's answer was not a status</exception>
    public async Task<(NodeStatusResponse Status, string Json)> StatusAsync(CancellationToken ct)
    {
        using var message = new HttpRequestMessage(HttpMethod.Get, NodeApiStatus.Path);
        using var response = await SendAsync(message, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode)
            throw new NodeApiException($"the daemon answered {(int)response.StatusCode} {response.ReasonPhrase}: {Trim(text)}", (int)response.StatusCode);
        try
        {
            return (JsonSerializer.Deserialize(text, NodeStatusJson.Default.NodeStatusResponse)
                    ?? throw new NodeApiException("the daemon answered an empty status"), text);
        }
        catch (JsonException e)
        {
            throw new NodeApiException($"the daemon's status is not JSON ({e.Message}): {Trim(text)}", (int)response.StatusCode);
        }
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage message, CancellationToken ct)
    {
        try
        {
            return await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException e) when (Unwrap(e) is NodeApiUnavailableException u)
        {
            throw u;
        }
        catch (HttpRequestException e)
        {
            throw new NodeApiUnavailableException(NotRunning(e.Message), e);
        }
    }

    private static NodeApiUnavailableException? Unwrap(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
            if (x is NodeApiUnavailableException u) return u;
        return null;
    }

    private static string Trim(string s) => s.Length > 200 ? s[..200] + "…" : s;

    public void Dispose() => _http.Dispose();
}

using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Google.Protobuf;

namespace Crsc.Cri.Grpc;

public sealed record GrpcChannelOptions
{
    /// <summary>Largest response message accepted (default 16 MiB, as the kubelet uses for CRI).</summary>
    public int MaxReceiveMessageSize { get; init; } = 16 * 1024 * 1024;
    /// <summary>Largest request message sent (default 16 MiB).</summary>
    public int MaxSendMessageSize { get; init; } = 16 * 1024 * 1024;
    /// <summary>Clock for deadlines.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
    public string UserAgent { get; init; } = "crsc-grpc/1.0";
}

/// <summary>
/// Unary gRPC calls over HTTP/2 cleartext (prior knowledge) on a Unix socket. One HTTP/2
/// connection is kept and reused; calls are safe to make concurrently.
/// </summary>
public sealed class UnixGrpcChannel : IDisposable
{
    private static readonly Uri BaseAddress = new("http://localhost");
    private readonly HttpMessageInvoker _http;
    private readonly GrpcChannelOptions _options;

    public string SocketPath { get; }

    public UnixGrpcChannel(string socketPath, GrpcChannelOptions? options = null)
    {
        SocketPath = socketPath;
        _options = options ?? new GrpcChannelOptions();
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = ConnectAsync,
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            KeepAlivePingDelay = TimeSpan.FromMinutes(1),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(20),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        _http = new HttpMessageInvoker(handler, disposeHandler: true);
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        // No runtime socket (the runtime is not running, or not installed yet): fail the way connect(2) would
        // (ENOENT), without the attempt. A failed Socket.ConnectAsync records its async stack trace as a string,
        // which under Native AOT builds the method-name map of the whole binary (~1 MB of heap, kept for the
        // process's life) just to be discarded: the daemon retries every RuntimeMonitor interval.
        if (!File.Exists(SocketPath)) throw new SocketException((int)SocketError.AddressNotAvailable);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), ct).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sends one request message and reads one response message.
    /// </summary>
    /// <param name="method">the full method path, e.g. <c>/runtime.v1.RuntimeService/Version</c></param>
    /// <param name="timeout">the call's deadline: sent as <c>grpc-timeout</c> and enforced here too</param>
    /// <exception cref="GrpcCallException">the call ended with a non-OK status (DeadlineExceeded when the deadline passed)</exception>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled</exception>
    public async Task<TResponse> UnaryAsync<TResponse>(
        string method, IMessage request, MessageParser<TResponse> parser, TimeSpan timeout, CancellationToken ct)
        where TResponse : IMessage<TResponse>
    {
        ct.ThrowIfCancellationRequested();
        if (timeout <= TimeSpan.Zero)
            throw new GrpcCallException(GrpcStatusCode.DeadlineExceeded, "the deadline had passed before the call started", method);

        int size = request.CalculateSize();
        if (size > _options.MaxSendMessageSize)
            throw new GrpcCallException(GrpcStatusCode.ResourceExhausted,
                $"request message of {size} bytes is larger than the limit of {_options.MaxSendMessageSize} bytes", method);
        var body = new byte[GrpcWire.FrameHeaderSize + size];
        GrpcWire.WriteFrameHeader(body, compressed: false, size);
        request.WriteTo(body.AsSpan(GrpcWire.FrameHeaderSize));

        using var deadline = new CancellationTokenSource(timeout, _options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
        try
        {
            return await SendAsync(method, body, parser, timeout, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            throw new GrpcCallException(GrpcStatusCode.DeadlineExceeded,
                $"no response within the deadline of {timeout.TotalSeconds:0.###}s", method);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw new OperationCanceledException($"{method} was cancelled", null, ct);
        }
    }

    private async Task<TResponse> SendAsync<TResponse>(
        string method, byte[] body, MessageParser<TResponse> parser, TimeSpan timeout, CancellationToken ct)
        where TResponse : IMessage<TResponse>
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(BaseAddress, method))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(GrpcWire.ContentType);
        request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        request.Headers.TryAddWithoutValidation("grpc-timeout", GrpcWire.EncodeTimeout(timeout));
        request.Headers.TryAddWithoutValidation("user-agent", _options.UserAgent);

        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw TransportError(method, e);
        }

        using (response)
        {
            // A trailers-only response carries the status in its headers and has no body.
            var headerStatus = ReadStatus(response.Headers, method);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                if (headerStatus is { } s && s.Status != GrpcStatusCode.OK) throw s;
                throw new GrpcCallException(FromHttpStatus(response.StatusCode),
                    $"the runtime answered HTTP {(int)response.StatusCode} instead of a gRPC response", method);
            }
            if (headerStatus is { } hs)
            {
                if (hs.Status != GrpcStatusCode.OK) throw hs;
                throw new GrpcCallException(GrpcStatusCode.Internal, "the server ended a unary call without a response message", method);
            }
            string? contentType = response.Content.Headers.ContentType?.MediaType;
            if (contentType is null || !contentType.StartsWith(GrpcWire.ContentType, StringComparison.OrdinalIgnoreCase))
                throw new GrpcCallException(GrpcStatusCode.Internal, $"unexpected content-type '{contentType}' in the response", method);

            byte[]? payload;
            try
            {
                payload = await ReadSingleMessageAsync(response, method, ct).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                throw TransportError(method, e);
            }
            catch (IOException e) when (!ct.IsCancellationRequested)
            {
                throw StreamError(method, e);
            }

            var trailerStatus = ReadStatus(response.TrailingHeaders, method)
                ?? throw new GrpcCallException(GrpcStatusCode.Internal, "the server closed the stream without a grpc-status", method);
            if (trailerStatus.Status != GrpcStatusCode.OK) throw trailerStatus;
            if (payload is null)
                throw new GrpcCallException(GrpcStatusCode.Internal, "the server ended a unary call without a response message", method);
            try
            {
                return parser.ParseFrom(payload);
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new GrpcCallException(GrpcStatusCode.Internal, $"cannot parse the response message: {e.Message}", method, e);
            }
        }
    }

    private async Task<byte[]?> ReadSingleMessageAsync(HttpResponseMessage response, string method, CancellationToken ct)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        var header = new byte[GrpcWire.FrameHeaderSize];
        int got = await ReadAtLeastAsync(stream, header, ct).ConfigureAwait(false);
        if (got == 0) return null;
        if (got < header.Length)
            throw new GrpcCallException(GrpcStatusCode.Internal, "the response ended inside a message header", method);
        if (header[0] == 1)
            throw new GrpcCallException(GrpcStatusCode.Internal, "the server sent a compressed message, but no compression was negotiated", method);
        if (header[0] != 0)
            throw new GrpcCallException(GrpcStatusCode.Internal, $"invalid message flag {header[0]} in the response", method);
        uint length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(1));
        if (length > (uint)_options.MaxReceiveMessageSize)
            throw new GrpcCallException(GrpcStatusCode.ResourceExhausted,
                $"response message of {length} bytes is larger than the limit of {_options.MaxReceiveMessageSize} bytes", method);
        var payload = new byte[length];
        got = await ReadAtLeastAsync(stream, payload, ct).ConfigureAwait(false);
        if (got < payload.Length)
            throw new GrpcCallException(GrpcStatusCode.Internal,
                $"the response ended inside a message ({got} of {length} bytes)", method);
        // a unary response has exactly one message; the stream must end here
        var extra = new byte[1];
        if (await stream.ReadAsync(extra, ct).ConfigureAwait(false) != 0)
            throw new GrpcCallException(GrpcStatusCode.Internal, "the server sent more than one message in a unary response", method);
        return payload;
    }

    private static async Task<int> ReadAtLeastAsync(Stream stream, byte[] buffer, CancellationToken ct) =>
        await stream.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);

    private static GrpcCallException? ReadStatus(HttpHeaders headers, string method)
    {
        if (!headers.NonValidated.TryGetValues("grpc-status", out var values)) return null;
        string raw = values.ToString().Trim();
        string message = headers.NonValidated.TryGetValues("grpc-message", out var msg) ? GrpcWire.DecodeMessage(msg.ToString()) : "";
        if (!int.TryParse(raw, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int code))
            return new GrpcCallException(GrpcStatusCode.Unknown, $"invalid grpc-status '{raw}': {message}", method);
        var status = Enum.IsDefined(typeof(GrpcStatusCode), code) ? (GrpcStatusCode)code : GrpcStatusCode.Unknown;
        return new GrpcCallException(status, message, method);
    }

    /// <summary>The gRPC status for an HTTP status that is not 200 (the gRPC HTTP-to-status table).</summary>
    private static GrpcStatusCode FromHttpStatus(HttpStatusCode code) => (int)code switch
    {
        400 => GrpcStatusCode.Internal,
        401 => GrpcStatusCode.Unauthenticated,
        403 => GrpcStatusCode.PermissionDenied,
        404 => GrpcStatusCode.Unimplemented,
        429 or 502 or 503 or 504 => GrpcStatusCode.Unavailable,
        _ => GrpcStatusCode.Unknown,
    };

    private GrpcCallException TransportError(string method, HttpRequestException e)
    {
        if (e.HttpRequestError == HttpRequestError.ConnectionError || e.InnerException is SocketException)
        {
            string why = !Path.Exists(SocketPath)
                ? "the socket does not exist (is the container runtime running?)"
                : e.InnerException is SocketException se ? $"{se.SocketErrorCode}: {se.Message}" : e.Message;
            return new GrpcCallException(GrpcStatusCode.Unavailable,
                $"cannot connect to the container runtime at unix://{SocketPath}: {why}", method, e);
        }
        if (FindProtocolError(e) is { } pe)
            return ProtocolError(method, pe);
        return new GrpcCallException(GrpcStatusCode.Unavailable,
            $"HTTP/2 request to the container runtime at unix://{SocketPath} failed: {e.Message}", method, e);
    }

    private GrpcCallException StreamError(string method, IOException e)
    {
        if (FindProtocolError(e) is { } pe) return ProtocolError(method, pe);
        return new GrpcCallException(GrpcStatusCode.Unavailable,
            $"the connection to the container runtime at unix://{SocketPath} broke: {e.Message}", method, e);
    }

    private static GrpcCallException ProtocolError(string method, HttpProtocolException pe) => pe.ErrorCode switch
    {
        // HTTP/2 REFUSED_STREAM: the request was not processed, so it is safe to retry
        0x7 => new GrpcCallException(GrpcStatusCode.Unavailable, $"the server refused the stream: {pe.Message}", method, pe),
        0x8 => new GrpcCallException(GrpcStatusCode.Cancelled, $"the server cancelled the stream: {pe.Message}", method, pe),
        _ => new GrpcCallException(GrpcStatusCode.Internal, $"HTTP/2 error {pe.ErrorCode}: {pe.Message}", method, pe),
    };

    private static HttpProtocolException? FindProtocolError(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
            if (e is HttpProtocolException pe) return pe;
        return null;
    }

    public void Dispose() => _http.Dispose();
}

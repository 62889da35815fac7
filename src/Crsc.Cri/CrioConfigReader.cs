using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using Crsc.Controllers.Runtime;

namespace Crsc.Cri;

/// <summary>
/// Reads CRI-O's effective configuration from its own HTTP endpoint on the CRI socket: <c>GET /config</c> answers
/// the configuration as TOML (cri-o server/inspect.go, <c>InspectConfigEndpoint</c>; what <c>crio status config</c>
/// prints). HTTP/1.1 over the Unix socket, bounded in time and size, redirects not followed. Any failure is an
/// exception; the capability probe then reports the CRI-O verdicts as unknown.
/// </summary>
public sealed class CrioConfigReader : ICrioConfigReader
{
    /// <summary>CRI-O's rendered configuration is ~100 KB with every comment; more than this is not CRI-O's answer.</summary>
    public const int DefaultMaxBytes = 1024 * 1024;

    private readonly string _socketPath;
    private readonly TimeSpan _timeout;
    private readonly int _maxBytes;

    /// <param name="endpoint">the CRI endpoint (<c>unix:///var/run/crio/crio.sock</c>) or a socket path</param>
    public CrioConfigReader(string endpoint, TimeSpan? timeout = null, int maxBytes = DefaultMaxBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(endpoint);
        _socketPath = CriEndpoint.Parse(endpoint).SocketPath;
        _timeout = timeout ?? TimeSpan.FromSeconds(5);
        _maxBytes = maxBytes > 0 ? maxBytes : throw new ArgumentOutOfRangeException(nameof(maxBytes));
    }

    public async Task<string> ReadConfigAsync(CancellationToken ct)
    {
        using var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
            MaxResponseHeadersLength = 64, // KiB
            ConnectCallback = async (_, token) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(_socketPath), token).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        using var http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_timeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "http://localhost/config") { Version = new Version(1, 1) };
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/toml"));
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token).ConfigureAwait(false);
            if ((int)response.StatusCode != 200)
                throw new InvalidOperationException($"GET /config on {_socketPath} answered HTTP {(int)response.StatusCode}");
            if (response.Content.Headers.ContentLength is long length && length > _maxBytes)
                throw new InvalidOperationException($"GET /config on {_socketPath}: {length} bytes is more than {_maxBytes}");
            await using var body = await response.Content.ReadAsStreamAsync(cts.Token).ConfigureAwait(false);
            var buffer = new MemoryStream();
            var chunk = new byte[16 * 1024];
            int n;
            while ((n = await body.ReadAsync(chunk, cts.Token).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + n > _maxBytes)
                    throw new InvalidOperationException($"GET /config on {_socketPath}: the answer is more than {_maxBytes} bytes");
                buffer.Write(chunk, 0, n);
            }
            return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"GET /config on {_socketPath} did not answer within {_timeout.TotalSeconds:0.#}s");
        }
    }
}

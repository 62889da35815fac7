using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Crsc.Controllers.Runtime;

namespace Crsc.Kube.Kubelet;

public sealed record KubeletClientOptions
{
    /// <summary><c>kubelet.url</c>: the kubelet's HTTPS endpoint.</summary>
    public Uri Url { get; init; } = new("https://127.0.0.1:10250");
    /// <summary>PEM client certificate (with <see cref="ClientKeyFile"/>), e.g. the API server's kubelet client cert.</summary>
    public string? ClientCertificateFile { get; init; }
    /// <summary>PEM private key of <see cref="ClientCertificateFile"/>; null when the key is in the certificate file.</summary>
    public string? ClientKeyFile { get; init; }
    /// <summary>A bearer token (one allowed the <c>nodes/checkpoint</c> subresource).</summary>
    public string? BearerToken { get; init; }
    /// <summary>A file holding the bearer token, read at every call (service account tokens rotate).</summary>
    public string? BearerTokenFile { get; init; }
    /// <summary>
    /// <c>kubelet.caFile</c>: PEM bundle the kubelet's serving certificate must chain to (for a self-signed kubelet
    /// certificate, the kubelet's own <c>/var/lib/kubelet/pki/kubelet.crt</c>). Takes precedence over
    /// <see cref="CertificateAuthorities"/>.
    /// </summary>
    public string? CaFile { get; init; }
    /// <summary>CAs to trust when <see cref="CaFile"/> is null (e.g. the cluster's CA); both null: the system's trust store.</summary>
    public X509Certificate2Collection? CertificateAuthorities { get; init; }
    /// <summary>What <see cref="CertificateAuthorities"/> are, for messages (<c>the cluster CA of kubeconfig /root/.kube/config</c>).</summary>
    public string? CertificateAuthoritiesSource { get; init; }
    /// <summary>
    /// The name the serving certificate must carry (DNS name or IP address); null: the URL's host. Kubelet certificates
    /// name the node, not 127.0.0.1.
    /// </summary>
    public string? ServerName { get; init; }
    /// <summary>
    /// <c>kubelet.allowHttp</c>: accept an <c>http://</c> URL, where nothing proves the answer comes from the kubelet.
    /// For tests only.
    /// </summary>
    public bool AllowHttp { get; init; }
    /// <summary>Added to the checkpoint timeout for the HTTP call itself.</summary>
    public TimeSpan TimeoutSlack { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// Checkpoints through the kubelet's API (<c>POST /checkpoint/{namespace}/{pod}/{container}</c>,
/// the <c>ContainerCheckpoint</c> feature): <c>runtime.checkpointVia: kubelet</c>. The kubelet asks the
/// runtime and leaves the archive under <c>/var/lib/kubelet/checkpoints</c>; the path it answers is
/// returned as it came (the checkpoint runner decides whether to use it). The kubelet's serving certificate is
/// always verified: against <see cref="KubeletClientOptions.CaFile"/>, else the given CAs, else the system's trust
/// store, and for <see cref="KubeletClientOptions.ServerName"/>.
/// </summary>
public sealed class KubeletCheckpointClient : IContainerCheckpointer, IDisposable
{
    private readonly HttpMessageInvoker _http;
    private readonly KubeletClientOptions _options;
    private readonly X509Certificate2Collection _ownedCerts = [];
    private readonly string _trust;
    private readonly string _serverName;

    public KubeletCheckpointClient(KubeletClientOptions options)
    {
        _options = options;
        if (options.Url.Scheme == Uri.UriSchemeHttp && !options.AllowHttp)
            throw new ArgumentException(
                $"kubelet.url '{options.Url}' is http://: nothing would prove the answer comes from the kubelet; use https:// (kubelet.allowHttp is for tests)",
                nameof(options));
        if (options.Url.Scheme != Uri.UriSchemeHttps && options.Url.Scheme != Uri.UriSchemeHttp)
            throw new ArgumentException($"kubelet.url '{options.Url}' must be an https:// URL", nameof(options));
        _serverName = string.IsNullOrEmpty(options.ServerName) ? options.Url.IdnHost : options.ServerName;
        var ssl = new SslClientAuthenticationOptions();
        if (options.ClientCertificateFile is not null)
        {
            var cert = X509Certificate2.CreateFromPemFile(options.ClientCertificateFile, options.ClientKeyFile);
            _ownedCerts.Add(cert);
            ssl.ClientCertificates = new X509CertificateCollection { cert };
        }
        X509Certificate2Collection? roots = null;
        if (options.CaFile is not null)
        {
            roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(options.CaFile);
            if (roots.Count == 0) throw new ArgumentException($"kubelet CA file {options.CaFile} holds no certificate", nameof(options));
            _ownedCerts.AddRange(roots);
            _trust = $"a CA of {options.CaFile}";
        }
        else if (options.CertificateAuthorities is { Count: > 0 } given)
        {
            roots = given; // the caller's: not disposed here
            _trust = options.CertificateAuthoritiesSource ?? "the given CAs";
        }
        else
        {
            _trust = "a CA the system trusts";
        }
        var serverName = _serverName;
        ssl.RemoteCertificateValidationCallback = (_, certificate, _, errors) => Validate(certificate, errors, roots, serverName);
        _http = new HttpMessageInvoker(new SocketsHttpHandler
        {
            SslOptions = ssl,
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
        }, disposeHandler: true);
    }

    /// <summary>What the serving certificate must be, for messages.</summary>
    public string TrustDescription => $"signed by {_trust}, for {_serverName}";

    /// <summary>
    /// The certificate must name <paramref name="serverName"/> and chain to <paramref name="roots"/> (only those), or
    /// with no roots given, pass the platform's own checks against the system's trust store.
    /// </summary>
    private static bool Validate(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection? roots, string serverName)
    {
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0) return false;
        using var leaf = new X509Certificate2(certificate);
        if (!leaf.MatchesHostname(serverName, allowWildcards: true, allowCommonName: false)) return false;
        if (roots is null) return (errors & SslPolicyErrors.RemoteCertificateChainErrors) == 0;
        return ChainsTo(leaf, roots);
    }

    private static bool ChainsTo(X509Certificate2 leaf, X509Certificate2Collection roots)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(leaf);
    }

    /// <summary>
    /// Asks the kubelet to checkpoint the container; <paramref name="archivePath"/> is not used (the kubelet
    /// picks the path) and the returned archive names the kubelet's file.
    /// </summary>
    public async Task<CheckpointArchive> CheckpointAsync(CheckpointTarget target, string archivePath, TimeSpan timeout, CancellationToken ct)
    {
        if (timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "must be positive");
        long seconds = (long)Math.Ceiling(timeout.TotalSeconds);
        var uri = new Uri(_options.Url, string.Create(CultureInfo.InvariantCulture,
            $"checkpoint/{Uri.EscapeDataString(target.Namespace)}/{Uri.EscapeDataString(target.Pod)}/{Uri.EscapeDataString(target.Container)}?timeout={seconds}"));
        string what = $"kubelet checkpoint of {target.Namespace}/{target.Pod}/{target.Container}";

        using var request = new HttpRequestMessage(HttpMethod.Post, uri);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        string? token = _options.BearerTokenFile is { } tf
            ? (await File.ReadAllTextAsync(tf, ct).ConfigureAwait(false)).Trim()
            : _options.BearerToken;
        if (!string.IsNullOrEmpty(token)) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout + _options.TimeoutSlack);
        HttpResponseMessage response;
        string body;
        try
        {
            response = await _http.SendAsync(request, deadline.Token).ConfigureAwait(false);
            body = await response.Content.ReadAsStringAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new ContainerRuntimeException(ContainerRuntimeErrorKind.DeadlineExceeded,
                $"{what}: no answer from {_options.Url} within {(timeout + _options.TimeoutSlack).TotalSeconds:0}s");
        }
        catch (HttpRequestException e) when (FindAuthenticationError(e) is { } tls)
        {
            throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed,
                $"{what}: TLS with the kubelet at {_options.Url} failed: {tls.Message} (its serving certificate must be {TrustDescription}; see kubelet.caFile and kubelet.serverName)",
                "TLS", tls.Message, e);
        }
        catch (HttpRequestException e)
        {
            throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Unavailable,
                $"{what}: cannot reach the kubelet at {_options.Url}: {e.Message}", null, e.Message, e);
        }

        using (response)
        {
            string message = body.Trim();
            string code = ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture);
            switch (response.StatusCode)
            {
                case HttpStatusCode.OK:
                    return new CheckpointArchive(ParseArchivePath(body, what));
                case HttpStatusCode.Unauthorized:
                    throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Unauthorized,
                        $"{what}: the kubelet refused the credentials (401 Unauthorized): {message}", code, message);
                case HttpStatusCode.Forbidden:
                    throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Unauthorized,
                        $"{what}: not allowed (403 Forbidden; the identity needs the nodes/checkpoint permission): {message}", code, message);
                case HttpStatusCode.NotFound when IsMissingRoute(message):
                    throw new CheckpointNotSupportedException(
                        $"{what}: the kubelet at {_options.Url} has no checkpoint API (is the ContainerCheckpoint feature gate on?): {message}", code, message);
                case HttpStatusCode.NotFound:
                    throw new ContainerNotFoundException($"{what}: not found: {message}", code, message);
                case HttpStatusCode.InternalServerError when message.Contains("unimplemented", StringComparison.OrdinalIgnoreCase)
                                                          || message.Contains("not implemented", StringComparison.OrdinalIgnoreCase):
                    throw new CheckpointNotSupportedException($"{what}: the container runtime cannot checkpoint: {message}", code, message);
                case HttpStatusCode.InternalServerError:
                    throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed, $"{what} failed: {message}", code, message);
                case HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout or HttpStatusCode.TooManyRequests:
                    throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Unavailable, $"{what}: kubelet unavailable ({code}): {message}", code, message);
                default:
                    throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed, $"{what}: unexpected HTTP {code}: {message}", code, message);
            }
        }
    }

    /// <summary>
    /// The kubelet's 404s for a missing pod or container carry the handler's message ("pod does not exist",
    /// "container x does not exist"); with the feature gate off the route is missing and Go's mux answers
    /// "404 page not found".
    /// </summary>
    private static bool IsMissingRoute(string body) =>
        body.Length == 0 || body.Contains("page not found", StringComparison.OrdinalIgnoreCase);

    private static string ParseArchivePath(string body, string what)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("items", out var items)
                && items.ValueKind == JsonValueKind.Array
                && items.GetArrayLength() > 0
                && items[0].ValueKind == JsonValueKind.String
                && items[0].GetString() is { Length: > 0 } path)
                return path;
        }
        catch (JsonException)
        {
        }
        throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed,
            $"{what}: the kubelet's answer names no archive: {Truncate(body, 200)}", "200", body);
    }

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max] + "…";

    private static AuthenticationException? FindAuthenticationError(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
            if (e is AuthenticationException ae) return ae;
        return null;
    }

    public void Dispose()
    {
        _http.Dispose();
        foreach (var c in _ownedCerts) c.Dispose();
    }
}

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
    /// <summary>PEM CA bundle that signed the kubelet's serving certificate; null = the system's trust store.</summary>
    public string? CaFile { get; init; }
    /// <summary>Do not verify the kubelet's certificate (self-signed kubelet certs).</summary>
    public bool InsecureSkipTlsVerify { get; init; }
    /// <summary>Added to the checkpoint timeout for the HTTP call itself.</summary>
    public TimeSpan TimeoutSlack { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// Checkpoints through the kubelet's API (<c>POST /checkpoint/{namespace}/{pod}/{container}</c>,
/// the <c>ContainerCheckpoint</c> feature): <c>runtime.checkpointVia: kubelet</c>. The kubelet asks the
/// runtime and leaves the archive under <c>/var/lib/kubelet/checkpoints</c>; the path it answers is
/// returned.
/// </summary>
public sealed class KubeletCheckpointClient : IContainerCheckpointer, IDisposable
{
    private readonly HttpMessageInvoker _http;
    private readonly KubeletClientOptions _options;
    private readonly X509Certificate2Collection _ownedCerts = [];

    public KubeletCheckpointClient(KubeletClientOptions options)
    {
        _options = options;
        if (options.Url.Scheme != Uri.UriSchemeHttps && options.Url.Scheme != Uri.UriSchemeHttp)
            throw new ArgumentException($"kubelet.url '{options.Url}' must be an https:// URL", nameof(options));
        var ssl = new SslClientAuthenticationOptions();
        if (options.ClientCertificateFile is not null)
        {
            var cert = X509Certificate2.CreateFromPemFile(options.ClientCertificateFile, options.ClientKeyFile);
            _ownedCerts.Add(cert);
            ssl.ClientCertificates = new X509CertificateCollection { cert };
        }
        if (options.InsecureSkipTlsVerify)
        {
            ssl.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
        }
        else if (options.CaFile is not null)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(options.CaFile);
            if (roots.Count == 0) throw new ArgumentException($"kubelet CA file {options.CaFile} holds no certificate", nameof(options));
            _ownedCerts.AddRange(roots);
            ssl.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                ValidateWithRoots(certificate, errors, roots);
        }
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

    private static bool ValidateWithRoots(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection roots)
    {
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0) return false;
        // name mismatches are errors; chain errors are re-checked against our roots only
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
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
                $"{what}: TLS with the kubelet at {_options.Url} failed: {tls.Message}", "TLS", tls.Message, e);
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

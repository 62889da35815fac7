using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Microsoft.Extensions.Logging;

namespace Crsc.Kube;

/// <summary>
/// The transport: one <see cref="HttpClient"/> over a <see cref="SocketsHttpHandler"/> with the configured trust,
/// client certificate and bearer token; HTTP/2 when the server offers it over TLS. Maps failures to the
/// <see cref="KubeApiException"/> family and <see cref="KubeUnavailableException"/>.
/// </summary>
internal sealed class KubeHttp : IDisposable
{
    private readonly HttpClient _http;
    private readonly KubeClientConfig _config;
    private readonly ILogger _logger;

    public KubeHttp(KubeClientConfig config, ILogger logger)
    {
        _config = config;
        _logger = logger;
        _http = new HttpClient(CreateHandler(config), disposeHandler: true)
        {
            BaseAddress = config.Server,
            // per request instead: watches must not time out
            Timeout = Timeout.InfiniteTimeSpan,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
        };
    }

    public string Server => _config.Server.GetLeftPart(UriPartial.Authority);

    internal static SocketsHttpHandler CreateHandler(KubeClientConfig config)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = config.ConnectTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(90),
            // detects a dead peer on long-lived HTTP/2 watch connections
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(15),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            EnableMultipleHttp2Connections = true,
            AutomaticDecompression = DecompressionMethods.None,
            UseProxy = false,
        };
        if (config.ClientCertificate is { } cert)
            handler.SslOptions.ClientCertificates = new X509CertificateCollection { cert };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            ValidateServerCertificate(config, certificate, chain, errors);
        return handler;
    }

    /// <summary>
    /// Insecure: anything. With configured CAs: the chain must end at one of them (and only them), and the name
    /// must match. Without: the system's verdict.
    /// </summary>
    internal static bool ValidateServerCertificate(KubeClientConfig config, X509Certificate? certificate, X509Chain? presented,
        SslPolicyErrors errors)
    {
        if (config.InsecureSkipTlsVerify) return true;
        if (certificate is null) return false;
        if ((errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0)
            return false;
        if (config.CertificateAuthorities is not { Count: > 0 } cas) return errors == SslPolicyErrors.None;

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(cas);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
            foreach (var element in presented.ChainElements) chain.ChainPolicy.ExtraStore.Add(element.Certificate);
        var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(leaf);
    }

    /// <summary>Sends a request and returns the successful response (headers read), or throws the mapped error.</summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string pathAndQuery, string? body, string? contentType,
        bool streaming, CancellationToken ct)
    {
        using var timeout = streaming ? null : CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout?.CancelAfter(_config.RequestTimeout);
        var token = timeout?.Token ?? ct;
        var bearer = _config.Token?.GetToken();
        for (var attempt = 0; ; attempt++)
        {
            using var request = new HttpRequestMessage(method, pathAndQuery)
            {
                // HTTP/2 when TLS negotiates it (ALPN), HTTP/1.1 otherwise; HttpClient's defaults do not apply here
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionOrLower,
            };
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            request.Headers.UserAgent.ParseAdd("crsc/0.1");
            if (!string.IsNullOrEmpty(bearer)) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            if (body is not null)
            {
                request.Content = new StringContent(body, System.Text.Encoding.UTF8);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue(contentType ?? "application/json");
            }

            HttpResponseMessage response;
            try
            {
                response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
            {
                throw new KubeUnavailableException(
                    $"the API server {Server} did not answer {method} {PathOnly(pathAndQuery)} within {_config.RequestTimeout.TotalSeconds:0.#} s", e);
            }
            catch (HttpRequestException e)
            {
                throw new KubeUnavailableException($"the API server {Server} could not be reached: {e.Message}", e);
            }

            if (response.IsSuccessStatusCode) return response;
            using (response)
            {
                if (response.StatusCode == HttpStatusCode.Unauthorized && attempt == 0 && bearer is not null
                    && _config.Token?.Refresh(bearer) is { } fresh)
                {
                    Log.TokenRefreshed(_logger, Server);
                    bearer = fresh;
                    continue;
                }
                throw await ReadErrorAsync(response, token).ConfigureAwait(false);
            }
        }
    }

    private static string PathOnly(string pathAndQuery) => pathAndQuery.Split('?', 2)[0];

    /// <summary>A non-2xx answer as a typed exception: the body's Status when there is one.</summary>
    internal static async Task<KubeApiException> ReadErrorAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var code = (int)response.StatusCode;
        string text = "";
        try { text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false); }
        catch (Exception e) when (e is HttpRequestException or IOException) { /* the code alone still says enough */ }
        Status? status = null;
        try { if (text.Length > 0 && text.TrimStart().StartsWith('{')) status = JsonSerializer.Deserialize(text, KubeJsonContext.Default.Status); }
        catch (JsonException) { }
        if (status is { Kind: "Status" })
            return KubeApiException.From(status.Code is > 0 ? status.Code.Value : code, status.Reason, status.Message);
        var snippet = text.Length > 200 ? text[..200] + "…" : text;
        var message = $"the API server answered {code} {response.ReasonPhrase}" + (snippet.Length > 0 ? $": {snippet.Trim()}" : "");
        return KubeApiException.From(code, response.ReasonPhrase ?? "", message);
    }

    public void Dispose() => _http.Dispose();
}

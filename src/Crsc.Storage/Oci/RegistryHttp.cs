using System.Net;
using System.Net.Http.Headers;
using System.Runtime.ExceptionServices;
using Crsc.Controllers.Queue;

namespace Crsc.Storage.Oci;

/// <summary>How many times, and how patiently, a registry request is tried.</summary>
internal sealed record RegistryRetry(int MaxAttempts, TimeSpan InitialDelay, TimeSpan MaxDelay)
{
    /// <summary>Doubling from <see cref="InitialDelay"/> up to <see cref="MaxDelay"/>, each wait up to 20 % longer.</summary>
    public Backoff NewBackoff() => new(InitialDelay, MaxDelay, jitter: 0.2);
}

/// <summary>An answer of the registry that is an error: the request it answered, its status and the OCI error its body carries.</summary>
internal sealed record RegistryAnswer(string Method, string Path, HttpStatusCode Status, string? Reason, string? ErrorCode, string? ServerMessage);

/// <summary>The words for what <see cref="RegistryHttp.SendAsync"/> finds wrong; each caller keeps its own.</summary>
internal interface IRegistryFailures
{
    /// <summary>No answer (refused or cut connection, TLS, connect timeout): becomes a <see cref="TransientRegistryException"/>.</summary>
    RegistryException Unreachable(string method, string path, Exception error);

    /// <summary>A 5xx answer: becomes a <see cref="TransientRegistryException"/>.</summary>
    RegistryException ServerFailed(RegistryAnswer answer);

    /// <summary>A 401 to the request sent again with what the challenge asked for: thrown as it is, never retried.</summary>
    Exception AuthorizationRefused(RegistryAnswer answer);
}

/// <summary>
/// Talking to an OCI distribution registry, as both the push (<see cref="RegistryClient"/>) and the fetch
/// (<see cref="CheckpointImageFetcher"/>) do: a request goes with the authorization the registry wants
/// (<see cref="RegistryAuthenticator"/>), a 401 challenge is answered once and the request built and sent again, a second
/// 401 is final; a 5xx answer or a connection error is a <see cref="TransientRegistryException"/>, which
/// <see cref="RetryAsync{T}"/> tries again after a capped, jittered backoff. 429 and <c>Retry-After</c> are not treated
/// specially (a 429 is the caller's to judge, like any other 4xx).
/// </summary>
internal sealed class RegistryHttp(HttpClient http, RegistryAuthenticator auth, RegistryRetry retry, TimeProvider time)
{
    public RegistryAuthenticator Auth => auth;
    public RegistryRetry Retry => retry;

    /// <summary>
    /// The client both use: no decompression, connections renewed every 5 minutes, no overall timeout (a 1 GiB blob on a
    /// slow link takes long; the caller's token bounds the work), crsc's User-Agent.
    /// </summary>
    /// <param name="handler">null: a <see cref="SocketsHttpHandler"/> with the system's trust store</param>
    /// <param name="followRedirects">whether that handler follows redirects itself</param>
    public static HttpClient NewClient(HttpMessageHandler? handler, TimeSpan connectTimeout, bool followRedirects)
    {
        var client = new HttpClient(handler ?? new SocketsHttpHandler
        {
            ConnectTimeout = connectTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            AutomaticDecompression = DecompressionMethods.None,
            AllowAutoRedirect = followRedirects,
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("crsc", typeof(RegistryHttp).Assembly.GetName().Version?.ToString(3) ?? "0"));
        return client;
    }

    /// <summary>
    /// Sends a request (built anew by <paramref name="newRequest"/> and <paramref name="newContent"/> for each try) and
    /// returns the answer for the caller to judge, unless it is a 5xx (<see cref="TransientRegistryException"/>) or a 401
    /// that cannot or need not be answered again.
    /// </summary>
    /// <param name="scope">the token scope wanted; null: a request to another host than the registry's, sent without
    /// credentials and its 401 returned like any other answer</param>
    public async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> newRequest, Func<CancellationToken, Task<HttpContent?>>? newContent,
        string repository, string? scope, IRegistryFailures failures, CancellationToken ct)
    {
        for (var challenged = false; ; challenged = true)
        {
            using var request = newRequest();
            if (scope is not null) request.Headers.Authorization = await auth.HeaderAsync(repository, scope, ct).ConfigureAwait(false);
            if (newContent is not null) request.Content = await newContent(ct).ConfigureAwait(false);
            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            }
            catch (HttpRequestException e) when (request.Content is not null && e.InnerException is { } inner && !IsTransport(inner))
            {
                // the request's own content failed (e.g. a stored archive that no longer matches its digest): not the
                // network's fault, and another try would read the same bytes
                ExceptionDispatchInfo.Throw(inner);
                throw;
            }
            catch (Exception e) when (e is HttpRequestException or IOException
                                          || (e is TaskCanceledException && !ct.IsCancellationRequested))
            {
                throw new TransientRegistryException(failures.Unreachable(request.Method.Method, PathOf(request.RequestUri), e));
            }
            if (response.StatusCode == HttpStatusCode.Unauthorized && scope is not null)
            {
                if (challenged) throw failures.AuthorizationRefused(await ReadAnswerAsync(response, ct).ConfigureAwait(false));
                using (response) await auth.ChallengedAsync(response, repository, scope, ct).ConfigureAwait(false);
                continue;
            }
            if ((int)response.StatusCode >= 500)
                throw new TransientRegistryException(failures.ServerFailed(await ReadAnswerAsync(response, ct).ConfigureAwait(false)));
            return response;
        }
    }

    /// <summary>
    /// Runs <paramref name="attempt"/> until it succeeds, throws anything but a <see cref="TransientRegistryException"/>,
    /// or has failed <see cref="RegistryRetry.MaxAttempts"/> times; between tries <paramref name="retrying"/> is told
    /// (attempt, wait, error) and the backoff is waited out.
    /// </summary>
    /// <param name="gaveUp">the exception to throw after the last try failed (attempts made, last error)</param>
    public async Task<T> RetryAsync<T>(Func<Task<T>> attempt, Action<int, TimeSpan, RegistryException> retrying,
        Func<int, RegistryException, Exception> gaveUp, CancellationToken ct)
    {
        var backoff = retry.NewBackoff();
        for (var n = 1; ; n++)
        {
            try
            {
                return await attempt().ConfigureAwait(false);
            }
            catch (TransientRegistryException e) when (n < retry.MaxAttempts)
            {
                var wait = backoff.Next();
                retrying(n, wait, e.Error);
                await DelayAsync(wait, ct).ConfigureAwait(false);
            }
            catch (TransientRegistryException e)
            {
                throw gaveUp(n, e.Error);
            }
        }
    }

    public Task DelayAsync(TimeSpan wait, CancellationToken ct) => Task.Delay(wait, time, ct);

    /// <summary>What an error answer says (its body is read and the response disposed of).</summary>
    public static async Task<RegistryAnswer> ReadAnswerAsync(HttpResponseMessage response, CancellationToken ct)
    {
        using (response)
        {
            string body;
            try { body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false); }
            catch (Exception e) when (e is HttpRequestException or IOException) { body = ""; }
            var (code, message) = RegistryErrors.Parse(body);
            return new RegistryAnswer(response.RequestMessage?.Method.Method ?? "", PathOf(response.RequestMessage?.RequestUri),
                response.StatusCode, response.ReasonPhrase, code, message);
        }
    }

    /// <summary>A URL for messages: no query (upload state tokens are long and say nothing to a reader).</summary>
    public static string PathOf(Uri? uri) => uri is null ? "" : uri.GetLeftPart(UriPartial.Path);

    private static bool IsTransport(Exception e) =>
        e is IOException or System.Net.Sockets.SocketException or HttpRequestException
            or System.Security.Authentication.AuthenticationException or OperationCanceledException;
}

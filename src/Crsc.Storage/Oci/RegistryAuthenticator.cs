using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Crsc.Storage.Oci;

/// <summary>
/// The authorization a request to a registry carries (<see cref="RegistryHttp"/>, for the push and the fetch): nothing
/// until the registry challenges; then basic credentials (a <c>Basic</c> challenge), or a bearer token from the token
/// service the <c>Bearer</c> challenge names
/// (distribution token spec: GET the realm with <c>service</c> and <c>scope</c>, with basic credentials or
/// anonymously; an identity token is exchanged by an OAuth2 POST instead). Tokens are cached per scope until shortly
/// before they expire, and a new one is fetched before a request rather than after a 401.
/// </summary>
internal sealed class RegistryAuthenticator(
    HttpClient http, RegistryClientOptions options, TimeProvider time, ILogger logger)
{
    private sealed record CachedToken(string Value, DateTimeOffset RefreshAt);
    private sealed record BearerChallenge(Uri Realm, string? Service);

    private readonly Lock _gate = new();
    private readonly Dictionary<string, CachedToken> _tokens = new(StringComparer.Ordinal);
    private bool _basic;
    private BearerChallenge? _bearer;

    /// <summary>Tokens fetched so far (for diagnostics and tests).</summary>
    public int TokensFetched { get; private set; }

    /// <summary>The header for a request needing <paramref name="scope"/>, fetching a fresh token when the cached one expired.</summary>
    public async Task<AuthenticationHeaderValue?> HeaderAsync(string repository, string scope, CancellationToken ct)
    {
        BearerChallenge? bearer;
        lock (_gate)
        {
            if (_basic) return BasicHeader();
            bearer = _bearer;
            if (bearer is null) return null;
            if (_tokens.TryGetValue(scope, out var cached) && time.GetUtcNow() < cached.RefreshAt)
                return new AuthenticationHeaderValue("Bearer", cached.Value);
        }
        return new AuthenticationHeaderValue("Bearer", await FetchTokenAsync(bearer, repository, [scope], ct));
    }

    /// <summary>
    /// Handles a 401: remembers how the registry wants to be authenticated and gets what it asks for, so that the
    /// request can be sent again once. Throws when there is nothing to answer the challenge with.
    /// </summary>
    public async Task ChallengedAsync(HttpResponseMessage response, string repository, string scope, CancellationToken ct)
    {
        var challenges = response.Headers.WwwAuthenticate;
        var bearer = challenges.FirstOrDefault(c => c.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase));
        var basic = challenges.FirstOrDefault(c => c.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase));
        if (bearer is not null)
        {
            var parameters = ParseParameters(bearer.Parameter);
            if (!parameters.TryGetValue("realm", out var realmText) || !Uri.TryCreate(realmText, UriKind.Absolute, out var realm)
                || realm.Scheme is not ("http" or "https"))
                throw new RegistryAuthenticationException(options.Registry, repository,
                    $"the registry's Bearer challenge has no usable realm ('{bearer.Parameter}')", response.StatusCode);
            var challenge = new BearerChallenge(realm, parameters.GetValueOrDefault("service"));
            lock (_gate)
            {
                _bearer = challenge;
                _basic = false;
                _tokens.Remove(scope);
            }
            var scopes = new List<string> { scope };
            if (parameters.GetValueOrDefault("scope") is { Length: > 0 } asked)
                scopes.AddRange(asked.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(s => s != scope));
            await FetchTokenAsync(challenge, repository, scopes, ct);
            return;
        }
        if (basic is not null)
        {
            if (options.Credentials is not { HasPassword: true })
                throw new RegistryAuthenticationException(options.Registry, repository,
                    "the registry wants basic authentication and no user name and password are configured for it (images.registryAuthFile)",
                    response.StatusCode);
            lock (_gate)
            {
                if (_basic)
                    throw new RegistryAuthenticationException(options.Registry, repository,
                        $"the registry refused the credentials of {options.Credentials}", response.StatusCode);
                _basic = true;
            }
            return;
        }
        throw new RegistryAuthenticationException(options.Registry, repository,
            challenges.Count == 0 ? "the registry answered 401 without a WWW-Authenticate challenge"
                : $"the registry asks for an authentication scheme crsc does not speak ({challenges.First().Scheme})",
            response.StatusCode);
    }

    private AuthenticationHeaderValue BasicHeader()
    {
        var credentials = options.Credentials!;
        return new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credentials.Username}:{credentials.Password}")));
    }

    private async Task<string> FetchTokenAsync(BearerChallenge challenge, string repository, IReadOnlyList<string> scopes, CancellationToken ct)
    {
        var credentials = options.Credentials;
        using var request = BuildTokenRequest(challenge, scopes, credentials);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct);
        }
        catch (Exception e) when (e is HttpRequestException or IOException
                                      || (e is TaskCanceledException && !ct.IsCancellationRequested))
        {
            throw new TransientRegistryException(new RegistryException(options.Registry, repository, null,
                $"could not reach the token service {challenge.Realm.GetLeftPart(UriPartial.Path)}: {e.Message}", inner: e));
        }
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode)
            {
                var (code, message) = RegistryErrors.Parse(body);
                var realm = challenge.Realm.GetLeftPart(UriPartial.Path);
                if ((int)response.StatusCode >= 500)
                    throw new TransientRegistryException(new RegistryException(options.Registry, repository, null,
                        $"the token service {realm} failed", response.StatusCode, code, message));
                var who = credentials is null ? "anonymous access" : $"the credentials of {credentials}";
                throw new RegistryAuthenticationException(options.Registry, repository,
                    $"the token service {realm} refused {who} for {string.Join(' ', scopes)}", response.StatusCode, code, message);
            }
            string? token = null;
            var lifetime = TimeSpan.FromSeconds(60);
            try
            {
                using var doc = JsonDocument.Parse(body);
                var root = doc.RootElement;
                if (root.ValueKind == JsonValueKind.Object)
                {
                    if (root.TryGetProperty("token", out var t) && t.ValueKind == JsonValueKind.String) token = t.GetString();
                    if (string.IsNullOrEmpty(token) && root.TryGetProperty("access_token", out var a) && a.ValueKind == JsonValueKind.String)
                        token = a.GetString();
                    if (root.TryGetProperty("expires_in", out var e) && e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out var seconds) && seconds > 0)
                        lifetime = TimeSpan.FromSeconds(Math.Min(seconds, 366L * 24 * 3600));
                }
            }
            catch (JsonException) { }
            if (string.IsNullOrEmpty(token))
                throw new RegistryAuthenticationException(options.Registry, repository,
                    $"the token service {challenge.Realm.GetLeftPart(UriPartial.Path)} answered without a token", response.StatusCode);
            // refresh a little before the service's expiry, so that a token never expires in flight
            var margin = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(10).Ticks, lifetime.Ticks / 10));
            var refreshAt = time.GetUtcNow() + lifetime - margin;
            lock (_gate)
            {
                _tokens[scopes[0]] = new CachedToken(token, refreshAt);
                TokensFetched++;
            }
            Log.TokenFetched(logger, options.Registry, challenge.Realm.GetLeftPart(UriPartial.Path), scopes[0], lifetime);
            return token;
        }
    }

    private static HttpRequestMessage BuildTokenRequest(BearerChallenge challenge, IReadOnlyList<string> scopes, RegistryCredentials? credentials)
    {
        if (credentials?.IdentityToken is { Length: > 0 } refresh)
        {
            // OAuth2 refresh-token grant (what docker does with an identity token)
            var form = new List<KeyValuePair<string, string>>
            {
                new("grant_type", "refresh_token"),
                new("refresh_token", refresh),
                new("client_id", "crsc"),
                new("scope", string.Join(' ', scopes)),
            };
            if (challenge.Service is not null) form.Add(new("service", challenge.Service));
            return new HttpRequestMessage(HttpMethod.Post, challenge.Realm) { Content = new FormUrlEncodedContent(form) };
        }
        var query = new StringBuilder(challenge.Realm.Query.TrimStart('?'));
        void Add(string key, string value)
        {
            if (query.Length > 0) query.Append('&');
            query.Append(key).Append('=').Append(Uri.EscapeDataString(value));
        }
        if (challenge.Service is not null) Add("service", challenge.Service);
        foreach (var scope in scopes) Add("scope", scope);
        var uri = new UriBuilder(challenge.Realm) { Query = query.ToString() }.Uri;
        var request = new HttpRequestMessage(HttpMethod.Get, uri);
        if (credentials is { HasPassword: true })
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credentials.Username}:{credentials.Password}")));
        return request;
    }

    /// <summary><c>realm="…",service="…",scope="a b"</c> → a dictionary (quoted values may contain commas).</summary>
    internal static Dictionary<string, string> ParseParameters(string? text)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (string.IsNullOrEmpty(text)) return result;
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && (text[i] == ',' || char.IsWhiteSpace(text[i]))) i++;
            var eq = text.IndexOf('=', i);
            if (eq < 0) break;
            var key = text[i..eq].Trim();
            i = eq + 1;
            string value;
            if (i < text.Length && text[i] == '"')
            {
                var sb = new StringBuilder();
                i++;
                while (i < text.Length && text[i] != '"')
                {
                    if (text[i] == '\\' && i + 1 < text.Length) i++;
                    sb.Append(text[i++]);
                }
                i++;
                value = sb.ToString();
            }
            else
            {
                var end = text.IndexOf(',', i);
                if (end < 0) end = text.Length;
                value = text[i..end].Trim();
                i = end;
            }
            if (key.Length > 0) result[key] = value;
        }
        return result;
    }
}

/// <summary>The OCI distribution error body: <c>{"errors":[{"code":…,"message":…,"detail":…}]}</c>.</summary>
internal static class RegistryErrors
{
    public static (string? Code, string? Message) Parse(string body)
    {
        if (string.IsNullOrWhiteSpace(body)) return (null, null);
        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("errors", out var errors)
                && errors.ValueKind == JsonValueKind.Array)
            {
                var codes = new List<string>();
                var messages = new List<string>();
                foreach (var error in errors.EnumerateArray())
                {
                    if (error.ValueKind != JsonValueKind.Object) continue;
                    if (error.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String) codes.Add(c.GetString()!);
                    if (error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String) messages.Add(m.GetString()!);
                }
                if (codes.Count > 0 || messages.Count > 0)
                    return (codes.Count > 0 ? string.Join(", ", codes) : null, messages.Count > 0 ? string.Join("; ", messages) : null);
            }
            // some token services answer {"error":"…","error_description":"…"} (OAuth2) or {"details":"…"}
            if (root.ValueKind == JsonValueKind.Object)
            {
                var code = root.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
                var message = root.TryGetProperty("error_description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString()
                    : root.TryGetProperty("details", out var dt) && dt.ValueKind == JsonValueKind.String ? dt.GetString() : null;
                if (code is not null || message is not null) return (code, message);
            }
        }
        catch (JsonException) { }
        var text = body.Trim();
        return (null, text.Length > 300 ? text[..300] + "…" : text);
    }
}

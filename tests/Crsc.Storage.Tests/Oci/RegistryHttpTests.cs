using System.Net;
using Crsc.Storage.Oci;
using Crsc.Testing;
using Crsc.Testing.Registry;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Storage.Tests.Oci;

/// <summary>
/// The one way crsc talks to a registry (the push and the checkpoint fetch both go through it), against the fake
/// registry: what it sends, which answers it answers itself, and which it hands to its caller in the caller's words.
/// </summary>
public sealed class RegistryHttpTests : IAsyncLifetime
{
    private const string Repo = "crsc/default/web";
    private readonly ManualTimeProvider _time = new();
    private readonly HttpClient _http = RegistryHttp.NewClient(null, TimeSpan.FromSeconds(5), followRedirects: false);
    private FakeRegistry _registry = null!;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _registry.DisposeAsync();
    }

    private async Task<RegistryHttp> StartAsync(FakeRegistryOptions options, RegistryCredentials? credentials = null)
    {
        _registry = await FakeRegistry.StartAsync(options with { Time = _time });
        var client = new RegistryClientOptions { Registry = _registry.Host, Insecure = true, Credentials = credentials };
        return new RegistryHttp(_http, new RegistryAuthenticator(_http, client, _time, NullLogger.Instance),
            new RegistryRetry(3, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(4)), _time);
    }

    private Uri Manifest => new($"http://{_registry.Host}/v2/{Repo}/manifests/v1?x=1");

    private Func<HttpRequestMessage> Get(Uri uri) => () => new HttpRequestMessage(HttpMethod.Get, uri);

    /// <summary>Records what it was asked to word, and words it so that the test can tell which it was.</summary>
    private sealed class RecordingFailures : IRegistryFailures
    {
        public List<string> Calls { get; } = [];
        public List<RegistryAnswer> Answers { get; } = [];

        public RegistryException Unreachable(string method, string path, Exception error)
        {
            Calls.Add($"unreachable {method} {path}");
            return new RegistryException("r", Repo, null, "unreachable", inner: error);
        }

        public RegistryException ServerFailed(RegistryAnswer answer)
        {
            Calls.Add("server");
            Answers.Add(answer);
            return new RegistryException("r", Repo, null, "server", answer.Status);
        }

        public Exception AuthorizationRefused(RegistryAnswer answer)
        {
            Calls.Add("refused");
            Answers.Add(answer);
            return new InvalidOperationException("refused");
        }
    }

    /// <summary>Runs <paramref name="action"/>, moving the test clock whenever it waits (retry backoff).</summary>
    private Task<T> WithClockAsync<T>(Func<Task<T>> action) => _time.RunAsync(action, TimeSpan.FromMilliseconds(100));

    [Fact]
    public async Task A_challenge_is_answered_once_and_a_second_401_is_final_and_not_retried()
    {
        // anonymous: the token service hands out a token, and the registry refuses it
        var http = await StartAsync(new FakeRegistryOptions { Auth = FakeRegistryAuth.Bearer });
        var failures = new RecordingFailures();
        var retries = 0;

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => http.RetryAsync(
            () => http.SendAsync(Get(Manifest), null, Repo, $"repository:{Repo}:pull", failures, CancellationToken.None),
            (_, _, _) => retries++, (_, error) => error, CancellationToken.None));

        Assert.Equal("refused", e.Message);
        Assert.Equal(["refused"], failures.Calls);
        var answer = Assert.Single(failures.Answers);
        Assert.Equal(new RegistryAnswer("GET", $"http://{_registry.Host}/v2/{Repo}/manifests/v1", HttpStatusCode.Unauthorized,
            "Unauthorized", "UNAUTHORIZED", "authentication required"), answer);
        Assert.Equal(0, retries);
        Assert.Equal(1, _registry.TokensIssued);
        var gets = _registry.Requests.Where(r => r.Path.EndsWith("/manifests/v1", StringComparison.Ordinal)).ToList();
        Assert.Equal([null, "Bearer"], gets.Select(r => r.AuthScheme));
    }

    [Fact]
    public async Task A_request_without_a_scope_goes_without_credentials_and_its_401_is_returned_to_the_caller()
    {
        var http = await StartAsync(new FakeRegistryOptions
        {
            Auth = FakeRegistryAuth.Basic, Users = new Dictionary<string, string> { ["bob"] = "pw" },
        }, new RegistryCredentials("bob", "pw"));
        var failures = new RecordingFailures();
        var scope = $"repository:{Repo}:pull";

        using (var own = await http.SendAsync(Get(Manifest), null, Repo, scope, failures, CancellationToken.None))
            Assert.Equal(HttpStatusCode.NotFound, own.StatusCode); // challenged, answered, sent again with basic credentials
        using var other = await http.SendAsync(Get(Manifest), null, Repo, null, failures, CancellationToken.None);

        Assert.Equal(HttpStatusCode.Unauthorized, other.StatusCode);
        Assert.Empty(failures.Calls);
        Assert.Equal([null, "Basic", null], _registry.Requests.Select(r => r.AuthScheme));
    }

    [Fact]
    public async Task Dropped_connections_and_server_errors_are_retried_with_backoff_until_the_attempts_run_out()
    {
        var http = await StartAsync(new FakeRegistryOptions());
        _registry.FailNext(1, 0);
        _registry.FailNext(5, 503);
        var failures = new RecordingFailures();
        var retries = new List<(int Attempt, TimeSpan Wait, string Error)>();

        var e = await Assert.ThrowsAsync<TimeoutException>(() => WithClockAsync(() => http.RetryAsync(
            () => http.SendAsync(Get(Manifest), null, Repo, null, failures, CancellationToken.None),
            (n, wait, error) => retries.Add((n, wait, error.Message)),
            (n, error) => new TimeoutException($"gave up after {n}", error), CancellationToken.None)));

        Assert.Equal("gave up after 3", e.Message);
        Assert.Contains("server", e.InnerException!.Message);
        Assert.Equal([$"unreachable GET http://{_registry.Host}/v2/{Repo}/manifests/v1", "server", "server"], failures.Calls);
        Assert.All(failures.Answers, a => Assert.Equal((HttpStatusCode.ServiceUnavailable, "UNKNOWN", "injected failure (503)"),
            (a.Status, a.ErrorCode, a.ServerMessage)));
        Assert.Equal([1, 2], retries.Select(r => r.Attempt));
        Assert.Contains("unreachable", retries[0].Error);
        // 1 s then 2 s, each up to 20 % longer
        Assert.InRange(retries[0].Wait, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1.2));
        Assert.InRange(retries[1].Wait, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2.4));
        Assert.Equal(3, _registry.Requests.Count);
    }

    [Fact]
    public async Task An_answer_the_caller_judges_is_not_retried()
    {
        var http = await StartAsync(new FakeRegistryOptions());
        _registry.FailNext(1, 403);
        var failures = new RecordingFailures();
        var attempts = 0;

        var status = await http.RetryAsync(async () =>
        {
            attempts++;
            using var response = await http.SendAsync(Get(Manifest), null, Repo, null, failures, CancellationToken.None);
            return response.StatusCode;
        }, (_, _, _) => throw new Xunit.Sdk.XunitException("retried"), (_, error) => error, CancellationToken.None);

        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Equal(1, attempts);
        Assert.Empty(failures.Calls);
        Assert.Equal(0, _time.ActiveTimers);
    }
}

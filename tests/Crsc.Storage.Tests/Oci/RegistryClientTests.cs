using System.Net;
using Crsc.Storage.Oci;
using Crsc.Testing;
using Crsc.Testing.Registry;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Storage.Tests.Oci;

public sealed class RegistryClientTests : IAsyncLifetime
{
    private const string Repo = "crsc/default/web";
    private readonly ManualTimeProvider _time = new();
    private readonly List<IAsyncDisposable> _registries = [];
    private readonly List<RegistryClient> _clients = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var c in _clients) c.Dispose();
        foreach (var r in _registries) await r.DisposeAsync();
    }

    private async Task<FakeRegistry> StartAsync(FakeRegistryOptions? options = null)
    {
        var registry = await FakeRegistry.StartAsync((options ?? new FakeRegistryOptions()) with { Time = _time });
        _registries.Add(registry);
        return registry;
    }

    private RegistryClient Client(FakeRegistry registry, Func<RegistryClientOptions, RegistryClientOptions>? configure = null)
    {
        var options = new RegistryClientOptions
        {
            Registry = registry.Host,
            Insecure = true,
            RetryInitialDelay = TimeSpan.FromSeconds(1),
            RetryMaxDelay = TimeSpan.FromSeconds(8),
            MaxAttempts = 3,
        };
        var client = new RegistryClient(configure?.Invoke(options) ?? options, _time, NullLogger<RegistryClient>.Instance);
        _clients.Add(client);
        return client;
    }

    /// <summary>The image as the client takes it; each blob read through a forward-only stream, opens counted.</summary>
    private static RegistryImage Describe(TestImage image, string tag = "v1", Dictionary<string, int>? opens = null,
        Func<TestBlob, byte[]>? content = null)
        => new(Repo, tag,
            image.Blobs.Select(b => new RegistryBlob(b.Digest, b.Content.Length, b.MediaType, _ =>
            {
                if (opens is not null) lock (opens) opens[b.Digest] = opens.GetValueOrDefault(b.Digest) + 1;
                return Task.FromResult<Stream>(new ForwardOnlyStream(content?.Invoke(b) ?? b.Content));
            })).ToList(),
            image.Manifest, TestImage.ManifestMediaType);

    /// <summary>Runs the push, moving the test clock whenever the client waits (retry backoff).</summary>
    private Task<T> WithClockAsync<T>(Func<Task<T>> action) => _time.RunAsync(action, TimeSpan.FromMilliseconds(100));

    private static void AssertStored(FakeRegistry registry, TestImage image, string tag = "v1")
    {
        foreach (var blob in image.Blobs)
        {
            Assert.True(registry.HasBlob(Repo, blob.Digest), $"registry lacks {blob.Digest}");
            Assert.Equal(blob.Content, registry.Blob(blob.Digest));
        }
        var manifest = registry.Manifest(Repo, tag);
        Assert.NotNull(manifest);
        Assert.Equal(image.Manifest, manifest.Value.Body);
        Assert.Equal(TestImage.ManifestMediaType, manifest.Value.MediaType);
        Assert.Equal(image.ManifestDigest, manifest.Value.Digest);
    }

    [Fact]
    public async Task Monolithic_push_stores_every_blob_and_the_manifest_and_returns_a_digest_reference()
    {
        var registry = await StartAsync();
        var image = TestImage.WithRandomFile(20_000);
        var client = Client(registry);

        var result = await client.PushAsync(Describe(image), CancellationToken.None);

        AssertStored(registry, image);
        Assert.Equal($"{registry.Host}/{Repo}@{image.ManifestDigest}", result.Reference);
        Assert.Equal(image.ManifestDigest, result.ManifestDigest);
        Assert.Equal(2, result.BlobsUploaded);
        Assert.Equal(0, result.BlobsSkipped);
        var requests = registry.Requests;
        Assert.DoesNotContain(requests, r => r.Method == "PATCH");
        Assert.Equal(2, requests.Count(r => r.Method == "POST"));
        var puts = requests.Where(r => r.Method == "PUT" && r.Path.Contains("/blobs/uploads/")).ToList();
        Assert.Equal(2, puts.Count);
        Assert.All(puts, p => Assert.Contains("digest=sha256%3A", p.Query));
        Assert.All(puts, p => Assert.Contains("_state=", p.Query));
        Assert.Contains(puts, p => p.ContentLength == image.Layers[0].Content.Length);
        Assert.Equal(0, registry.OpenUploads);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Chunked_push_sends_consecutive_ranges_with_a_chunk_size_that_does_not_divide_the_blob(bool absoluteLocations)
    {
        var registry = await StartAsync(new FakeRegistryOptions { AbsoluteLocations = absoluteLocations });
        var image = TestImage.WithRandomFile(9_000);
        var layer = image.Layers[0];
        var client = Client(registry, o => o with { ChunkedUploadThreshold = 4096, ChunkSize = 1000 });

        await client.PushAsync(Describe(image), CancellationToken.None);

        AssertStored(registry, image);
        var patches = registry.Requests.Where(r => r.Method == "PATCH").ToList();
        var expected = new List<string>();
        for (long start = 0; start < layer.Content.Length; start += 1000)
            expected.Add($"{start}-{Math.Min(start + 1000, layer.Content.Length) - 1}");
        Assert.NotEqual(0, layer.Content.Length % 1000);
        Assert.Equal(expected, patches.Select(p => p.ContentRange ?? "").ToList());
        // the config is small: one PUT with its bytes; the layer: a final PUT with no body
        var completions = registry.Requests.Where(r => r.Method == "PUT" && r.Path.Contains("/blobs/uploads/")).ToList();
        Assert.Equal(2, completions.Count);
        Assert.Contains(completions, c => c.ContentLength == 0 && c.Query.Contains(Uri.EscapeDataString(layer.Digest)));
    }

    [Fact]
    public async Task Blobs_the_repository_has_are_skipped_and_a_second_push_uploads_nothing()
    {
        var registry = await StartAsync();
        var image = TestImage.WithRandomFile(5000);
        registry.AddBlob(Repo, image.Layers[0].Content);
        var opens = new Dictionary<string, int>();
        var client = Client(registry);

        var first = await client.PushAsync(Describe(image, opens: opens), CancellationToken.None);
        Assert.Equal(1, first.BlobsUploaded);
        Assert.Equal(1, first.BlobsSkipped);
        Assert.False(opens.ContainsKey(image.Layers[0].Digest), "the existing layer was read");

        registry.ClearRequests();
        var second = await client.PushAsync(Describe(image, tag: "v2", opens: opens), CancellationToken.None);
        Assert.Equal(0, second.BlobsUploaded);
        Assert.Equal(2, second.BlobsSkipped);
        Assert.DoesNotContain(registry.Requests, r => r.Method is "POST" or "PATCH");
        Assert.Equal(2, registry.Requests.Count(r => r.Method == "HEAD"));
        AssertStored(registry, image, "v2");
    }

    [Fact]
    public async Task A_blob_pushed_to_another_repository_is_uploaded_again()
    {
        var registry = await StartAsync();
        var image = TestImage.WithRandomFile(3000);
        registry.AddBlob("other/repo", image.Layers[0].Content);

        var result = await Client(registry).PushAsync(Describe(image), CancellationToken.None);

        Assert.Equal(2, result.BlobsUploaded);
        AssertStored(registry, image);
    }

    [Fact]
    public async Task Bearer_token_is_fetched_with_basic_credentials_once_reused_and_renewed_after_it_expires()
    {
        var registry = await StartAsync(new FakeRegistryOptions
        {
            Auth = FakeRegistryAuth.Bearer,
            Users = new Dictionary<string, string> { ["alice"] = "s3cret" },
            TokenLifetime = TimeSpan.FromMinutes(5),
        });
        var client = Client(registry, o => o with { Credentials = new RegistryCredentials("alice", "s3cret") });
        var image = TestImage.WithRandomFile(4000);

        await client.PushAsync(Describe(image), CancellationToken.None);
        AssertStored(registry, image);
        Assert.Equal(1, registry.TokensIssued);
        var tokenRequest = Assert.Single(registry.Requests, r => r.Path == "/token");
        Assert.Equal("Basic", tokenRequest.AuthScheme);
        Assert.Contains("scope=repository%3Acrsc%2Fdefault%2Fweb%3Apull%2Cpush", tokenRequest.Query);
        Assert.Contains("service=fake-registry", tokenRequest.Query);
        // only the very first request went without a token
        Assert.Single(registry.Requests, r => r.Path.StartsWith("/v2/", StringComparison.Ordinal) && r.AuthScheme is null);

        registry.ClearRequests();
        await client.PushAsync(Describe(TestImage.WithRandomFile(4000, seed: 2), tag: "v2"), CancellationToken.None);
        Assert.Equal(1, registry.TokensIssued);
        Assert.All(registry.Requests, r => Assert.Equal("Bearer", r.AuthScheme));

        _time.Advance(TimeSpan.FromMinutes(5));
        registry.ClearRequests();
        await client.PushAsync(Describe(TestImage.WithRandomFile(4000, seed: 3), tag: "v3"), CancellationToken.None);
        Assert.Equal(2, registry.TokensIssued);
        // renewed before use: no request was refused with the expired token
        Assert.Equal("/token", registry.Requests[0].Path);
        Assert.All(registry.Requests.Skip(1), r => Assert.Equal("Bearer", r.AuthScheme));
        Assert.Equal(2, client.TokensFetched);
    }

    [Fact]
    public async Task Anonymous_bearer_token_in_access_token_field_is_used()
    {
        var registry = await StartAsync(new FakeRegistryOptions
        {
            Auth = FakeRegistryAuth.Bearer, AnonymousPush = true, TokenAsAccessToken = true,
        });
        var image = TestImage.WithRandomFile(1000);

        await Client(registry).PushAsync(Describe(image), CancellationToken.None);

        AssertStored(registry, image);
        var tokenRequest = Assert.Single(registry.Requests, r => r.Path == "/token");
        Assert.Null(tokenRequest.AuthScheme);
    }

    [Fact]
    public async Task Identity_token_is_exchanged_by_an_oauth2_refresh_grant()
    {
        var registry = await StartAsync(new FakeRegistryOptions
        {
            Auth = FakeRegistryAuth.Bearer, IdentityTokens = ["refresh-me"],
        });
        var image = TestImage.WithRandomFile(1000);
        var client = Client(registry, o => o with { Credentials = new RegistryCredentials(null, null, "refresh-me") });

        await client.PushAsync(Describe(image), CancellationToken.None);

        AssertStored(registry, image);
        Assert.Single(registry.Requests, r => r.Path == "/token" && r.Method == "POST");
    }

    [Fact]
    public async Task Basic_auth_is_answered_after_the_first_challenge_and_sent_from_then_on()
    {
        var registry = await StartAsync(new FakeRegistryOptions
        {
            Auth = FakeRegistryAuth.Basic, Users = new Dictionary<string, string> { ["bob"] = "pw" },
        });
        var image = TestImage.WithRandomFile(1000);
        var client = Client(registry, o => o with { Credentials = new RegistryCredentials("bob", "pw") });

        await client.PushAsync(Describe(image), CancellationToken.None);

        AssertStored(registry, image);
        var requests = registry.Requests;
        Assert.Null(requests[0].AuthScheme);
        Assert.All(requests.Skip(1), r => Assert.Equal("Basic", r.AuthScheme));
    }

    [Theory]
    [InlineData(FakeRegistryAuth.Basic)]
    [InlineData(FakeRegistryAuth.Bearer)]
    public async Task Wrong_credentials_fail_with_an_error_naming_registry_repository_and_user(FakeRegistryAuth auth)
    {
        var registry = await StartAsync(new FakeRegistryOptions
        {
            Auth = auth, Users = new Dictionary<string, string> { ["alice"] = "right" },
        });
        var client = Client(registry, o => o with { Credentials = new RegistryCredentials("alice", "wrong") });

        var e = await Assert.ThrowsAsync<RegistryAuthenticationException>(
            () => client.PushAsync(Describe(TestImage.WithRandomFile(100)), CancellationToken.None));

        Assert.Contains(registry.Host, e.Message);
        Assert.Contains(Repo, e.Message);
        Assert.Contains("alice", e.Message);
        Assert.DoesNotContain("wrong", e.Message);
        Assert.Equal(HttpStatusCode.Unauthorized, e.StatusCode);
        if (auth == FakeRegistryAuth.Bearer) Assert.Equal("UNAUTHORIZED", e.ErrorCode); // the token service's body; a HEAD has none
        Assert.DoesNotContain(registry.Requests, r => r.Method is "POST" or "PUT");
    }

    [Fact]
    public async Task Basic_challenge_without_credentials_says_what_to_configure()
    {
        var registry = await StartAsync(new FakeRegistryOptions
        {
            Auth = FakeRegistryAuth.Basic, Users = new Dictionary<string, string> { ["bob"] = "pw" },
        });

        var e = await Assert.ThrowsAsync<RegistryAuthenticationException>(
            () => Client(registry).PushAsync(Describe(TestImage.WithRandomFile(100)), CancellationToken.None));

        Assert.Contains("images.registryAuthFile", e.Message);
        Assert.Contains(registry.Host, e.Message);
    }

    [Fact]
    public async Task Bearer_token_without_push_rights_is_refused_with_the_servers_message()
    {
        var registry = await StartAsync(new FakeRegistryOptions { Auth = FakeRegistryAuth.Bearer });

        var e = await Assert.ThrowsAsync<RegistryAuthenticationException>(
            () => Client(registry).PushAsync(Describe(TestImage.WithRandomFile(100)), CancellationToken.None));

        Assert.Contains("anonymous", e.Message);
        Assert.Contains("refused the authorization", e.Message);
        Assert.Equal(1, registry.TokensIssued);
    }

    [Fact]
    public async Task Monolithic_blob_whose_bytes_differ_from_its_digest_is_refused_with_DIGEST_INVALID_and_not_retried()
    {
        var registry = await StartAsync();
        var image = TestImage.WithRandomFile(2000);
        var layer = image.Layers[0];
        var tampered = Describe(image, content: b => b == layer ? [.. b.Content[..^1], (byte)(b.Content[^1] ^ 0xff)] : b.Content);

        var e = await Assert.ThrowsAsync<RegistryException>(() => Client(registry).PushAsync(tampered, CancellationToken.None));

        Assert.Equal("DIGEST_INVALID", e.ErrorCode);
        Assert.Equal(HttpStatusCode.BadRequest, e.StatusCode);
        Assert.Equal(layer.Digest, e.Digest);
        Assert.Contains(layer.Digest, e.Message);
        Assert.Contains(registry.Host, e.Message);
        Assert.Contains(Repo, e.Message);
        Assert.Contains("did not match uploaded content", e.Message);
        Assert.Single(registry.Requests, r => r.Method == "PUT" && r.Query.Contains(Uri.EscapeDataString(layer.Digest)));
        Assert.Null(registry.Manifest(Repo, "v1"));
        Assert.False(registry.HasBlob(Repo, layer.Digest));
    }

    [Fact]
    public async Task Chunked_blob_whose_bytes_differ_from_its_digest_is_cancelled_before_it_is_committed()
    {
        var registry = await StartAsync();
        var image = TestImage.WithRandomFile(6000);
        var layer = image.Layers[0];
        var tampered = Describe(image, content: b => b == layer ? [.. b.Content[..^1], (byte)(b.Content[^1] ^ 0xff)] : b.Content);
        var client = Client(registry, o => o with { ChunkedUploadThreshold = 4096, ChunkSize = 4096 });

        var e = await Assert.ThrowsAsync<RegistryException>(() => client.PushAsync(tampered, CancellationToken.None));

        Assert.Contains("does not match", e.Message);
        Assert.Contains(layer.Digest, e.Message);
        Assert.Equal(0, registry.OpenUploads);
        Assert.Contains(registry.Requests, r => r.Method == "DELETE");
        Assert.DoesNotContain(registry.Requests, r => r.Method == "PUT" && r.Query.Contains(Uri.EscapeDataString(layer.Digest)));
    }

    [Fact]
    public async Task Server_errors_and_dropped_connections_are_retried_with_backoff_then_succeed()
    {
        var registry = await StartAsync();
        var image = TestImage.WithRandomFile(6000);
        var client = Client(registry, o => o with { ChunkedUploadThreshold = 4096, ChunkSize = 2500, MaxAttempts = 4 });
        registry.FailNext(1, 503, r => r.Method == "HEAD");
        registry.FailNext(1, 0, r => r.Method == "PATCH");
        registry.FailNext(2, 500, r => r.Method == "PUT" && r.Path.Contains("/manifests/"));
        var start = _time.GetUtcNow();

        var result = await WithClockAsync(() => client.PushAsync(Describe(image), CancellationToken.None));

        AssertStored(registry, image);
        Assert.Equal(image.ManifestDigest, result.ManifestDigest);
        Assert.Equal(3, registry.Requests.Count(r => r.Method == "PUT" && r.Path.Contains("/manifests/")));
        // the failed chunk was sent again with the same range
        var ranges = registry.Requests.Where(r => r.Method == "PATCH").Select(r => r.ContentRange ?? "").ToList();
        var length = image.Layers[0].Content.Length;
        var expected = new List<string> { "0-2499" };
        for (var from = 0; from < length; from += 2500) expected.Add($"{from}-{Math.Min(from + 2500, length) - 1}");
        Assert.Equal(expected, ranges);
        // waited: 1 s (HEAD), 1 s (PATCH), then 1 s and 2 s (manifest), jitter up to 20 % (the clock moves in steps of 0.1 s)
        Assert.InRange(_time.GetUtcNow() - start, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(6.5));
    }

    [Fact]
    public async Task Monolithic_upload_retried_after_a_server_error_starts_a_new_session_and_reads_the_blob_again()
    {
        var registry = await StartAsync();
        var image = TestImage.WithRandomFile(3000);
        var opens = new Dictionary<string, int>();
        registry.FailNext(1, 502, r => r.Method == "PUT" && r.Path.Contains("/blobs/uploads/"));

        await WithClockAsync(() => Client(registry).PushAsync(Describe(image, opens: opens), CancellationToken.None));

        AssertStored(registry, image);
        Assert.Equal(3, registry.Requests.Count(r => r.Method == "POST"));
        Assert.Equal(3, opens.Values.Sum());
    }

    [Fact]
    public async Task Persistent_server_errors_give_up_after_the_attempts_with_the_servers_message()
    {
        var registry = await StartAsync();
        registry.FailNext(10, 503, r => r.Method == "POST");

        var e = await Assert.ThrowsAsync<RegistryException>(() =>
            WithClockAsync(() => Client(registry).PushAsync(Describe(TestImage.WithRandomFile(100)), CancellationToken.None)));

        Assert.Contains("gave up after 3 attempts", e.Message);
        Assert.Contains("injected failure (503)", e.Message);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, e.StatusCode);
        Assert.Equal(3, registry.Requests.Count(r => r.Method == "POST"));
    }

    [Fact]
    public async Task Client_errors_are_not_retried()
    {
        var registry = await StartAsync();
        registry.FailNext(1, 403, r => r.Method == "POST");

        var e = await Assert.ThrowsAsync<RegistryException>(
            () => Client(registry).PushAsync(Describe(TestImage.WithRandomFile(100)), CancellationToken.None));

        Assert.Equal(HttpStatusCode.Forbidden, e.StatusCode);
        Assert.Equal("DENIED", e.ErrorCode);
        Assert.Contains("starting upload", e.Message);
        Assert.Single(registry.Requests, r => r.Method == "POST");
        Assert.Equal(0, _time.ActiveTimers);
    }

    [Fact]
    public async Task Invalid_names_are_refused_before_any_request()
    {
        var registry = await StartAsync();
        var client = Client(registry);
        var image = Describe(TestImage.WithRandomFile(100));

        var e1 = await Assert.ThrowsAsync<ArgumentException>(() => client.PushAsync(image with { Repository = "Bad/Repo" }, CancellationToken.None));
        Assert.Contains("'Bad/Repo'", e1.Message);
        var e2 = await Assert.ThrowsAsync<ArgumentException>(() => client.PushAsync(image with { Tag = "-x" }, CancellationToken.None));
        Assert.Contains("'-x'", e2.Message);
        Assert.Empty(registry.Requests);
    }

    [Theory]
    [InlineData("registry.example", "registry.example", "")]
    [InlineData("registry.example:5000/crsc", "registry.example:5000", "crsc")]
    [InlineData("127.0.0.1:5000/team/checkpoints/", "127.0.0.1:5000", "team/checkpoints")]
    [InlineData("[::1]:5000/x", "[::1]:5000", "x")]
    public void Registry_location_splits_host_and_prefix(string value, string host, string prefix)
    {
        var location = RegistryLocation.Parse(value);
        Assert.Equal(host, location.Host);
        Assert.Equal(prefix, location.Prefix);
        Assert.Equal(prefix.Length == 0 ? "ns/w" : $"{prefix}/ns/w", location.Repository("ns/w"));
    }

    [Theory]
    [InlineData("https://registry.example")]
    [InlineData("registry.example:99999")]
    [InlineData("registry.example/Upper")]
    [InlineData("bad host/x")]
    [InlineData("")]
    public void Registry_location_refuses_bad_values_naming_them(string value)
    {
        var e = Assert.Throws<FormatException>(() => RegistryLocation.Parse(value));
        Assert.Contains($"'{value}'", e.Message);
    }

    /// <summary>A stream that cannot seek and does not know its length, like a decompressing or network stream.</summary>
    private sealed class ForwardOnlyStream(byte[] content) : Stream
    {
        private int _position;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = Math.Min(count, content.Length - _position);
            Array.Copy(content, _position, buffer, offset, n);
            _position += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

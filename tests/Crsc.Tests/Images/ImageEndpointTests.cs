using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using Crsc.Controllers.Health;
using Crsc.Controllers.Storage;
using Crsc.Daemon;
using Crsc.Storage;
using Crsc.Storage.Oci;
using Crsc.Storage.Security;
using Crsc.Tests.Cli;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Tests.Images;

/// <summary>
/// The daemon's read-only OCI distribution endpoint, over real HTTP on loopback: what a runtime's pull asks (the
/// version check, a manifest by tag and by digest, its config and layer blobs, ranges), what it must never get
/// (writes, other repositories' content, corrupt bytes), and the spec's error answers for hostile names and digests.
/// </summary>
public sealed class ImageEndpointTests : IAsyncLifetime
{
    private readonly CliStore _dir = new();
    private readonly HealthRegistry _health = new(TimeProvider.System);
    private DiskCheckpointStore _store = null!;
    private StoreImageRegistry _registry = null!;
    private ImageEndpoint _endpoint = null!;
    private HttpClient _http = null!;
    private readonly PullTokens _tokens = new(NodeKey.Generate());
    private CheckpointInfo _zstd = null!;
    private CheckpointInfo _plain = null!;
    private const string Repo = "crsc/shop/cart/cart";

    public async Task InitializeAsync()
    {
        _store = _dir.Open();
        _zstd = await CliStore.AddAsync(_store, "shop", "cart", "cart", CheckpointCompression.Zstd);
        _dir.Time.Advance(TimeSpan.FromSeconds(2));
        _plain = await CliStore.AddAsync(_store, "shop", "cart", "cart", CheckpointCompression.None);
        await CliStore.AddAsync(_store, "shop", "other", "cart");
        _registry = new StoreImageRegistry(_store, new CheckpointImagePlatform("linux", "amd64"));
        _endpoint = new ImageEndpoint("127.0.0.1:0", _registry, _tokens, null, _health, NullLogger<ImageEndpoint>.Instance);
        await _endpoint.StartAsync(CancellationToken.None);
        Assert.True(_endpoint.Serving);
        _http = Client(_tokens.Mint(Repo));
    }

    /// <summary>A client of the endpoint that sends <paramref name="token"/> as a bearer token (null: no credentials).</summary>
    private HttpClient Client(string? token)
    {
        var http = new HttpClient { BaseAddress = new Uri(_endpoint.Addresses.Single()) };
        if (token is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _endpoint.StopAsync(CancellationToken.None);
        await _endpoint.DisposeAsync();
        _store.Dispose();
        _dir.Dispose();
    }

    private static string Sha(byte[] b) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(b));

    private static async Task<(string Code, string Message)> ErrorOf(HttpResponseMessage r)
    {
        Assert.Equal("application/json", r.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        var e = Assert.Single(doc.RootElement.GetProperty("errors").EnumerateArray().ToList());
        return (e.GetProperty("code").GetString()!, e.GetProperty("message").GetString()!);
    }

    private Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? range = null)
    {
        var request = new HttpRequestMessage(method, path);
        if (range is not null) request.Headers.TryAddWithoutValidation("Range", range);
        return _http.SendAsync(request);
    }

    [Fact]
    public async Task The_version_check_answers_registry_2()
    {
        foreach (var path in new[] { "/v2/", "/v2" })
        {
            using var r = await _http.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal("registry/2.0", r.Headers.GetValues("Docker-Distribution-API-Version").Single());
        }
        using var head = await SendAsync(HttpMethod.Head, "/v2/");
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(HealthStatus.Healthy, _health.Snapshot().Single(e => e.Component == ImageEndpoint.HealthComponent).Status);
    }

    [Fact]
    public async Task A_pull_gets_the_manifest_by_tag_and_digest_then_config_and_layer_whose_bytes_match_their_digests()
    {
        var image = _registry.ImageOf(_zstd);

        using var byTag = await _http.GetAsync($"/v2/{Repo}/manifests/{_zstd.Id}");
        Assert.Equal(HttpStatusCode.OK, byTag.StatusCode);
        Assert.Equal(OciMediaTypes.ImageManifest, byTag.Content.Headers.ContentType!.MediaType);
        var manifestBytes = await byTag.Content.ReadAsByteArrayAsync();
        Assert.Equal(image.ManifestBytes, manifestBytes);
        Assert.Equal(Sha(manifestBytes), byTag.Headers.GetValues("Docker-Content-Digest").Single());
        Assert.Equal(manifestBytes.Length, byTag.Content.Headers.ContentLength);

        using var head = await SendAsync(HttpMethod.Head, $"/v2/{Repo}/manifests/{image.Manifest.Digest}");
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(image.Manifest.Digest, head.Headers.GetValues("Docker-Content-Digest").Single());
        Assert.Equal(manifestBytes.Length, head.Content.Headers.ContentLength);
        Assert.Empty(await head.Content.ReadAsByteArrayAsync());

        using var manifest = JsonDocument.Parse(manifestBytes);
        var configDigest = manifest.RootElement.GetProperty("config").GetProperty("digest").GetString()!;
        var layer = manifest.RootElement.GetProperty("layers")[0];
        var layerDigest = layer.GetProperty("digest").GetString()!;
        Assert.Equal(OciMediaTypes.LayerTarZstd, layer.GetProperty("mediaType").GetString());

        var config = await _http.GetByteArrayAsync($"/v2/{Repo}/blobs/{configDigest}");
        Assert.Equal(configDigest, Sha(config));
        using var layerResponse = await _http.GetAsync($"/v2/{Repo}/blobs/{layerDigest}");
        Assert.Equal(HttpStatusCode.OK, layerResponse.StatusCode);
        Assert.Equal("application/octet-stream", layerResponse.Content.Headers.ContentType!.MediaType);
        Assert.Equal(layerDigest, layerResponse.Headers.GetValues("Docker-Content-Digest").Single());
        var layerBytes = await layerResponse.Content.ReadAsByteArrayAsync();
        Assert.Equal(layerDigest, Sha(layerBytes));
        Assert.Equal(await File.ReadAllBytesAsync(_zstd.ArchivePath), layerBytes);
        Assert.Equal(layer.GetProperty("size").GetInt64(), layerResponse.Content.Headers.ContentLength);

        using var blobHead = await SendAsync(HttpMethod.Head, $"/v2/{Repo}/blobs/{layerDigest}");
        Assert.Equal(HttpStatusCode.OK, blobHead.StatusCode);
        Assert.Equal(_zstd.Size, blobHead.Content.Headers.ContentLength);
        Assert.Equal("bytes", blobHead.Headers.AcceptRanges.Single());

        // the uncompressed archive is a plain tar layer, its blob the stored file
        var plain = _registry.ImageOf(_plain);
        Assert.Equal(OciMediaTypes.LayerTar, plain.Layer.MediaType);
        Assert.Equal(await File.ReadAllBytesAsync(_plain.ArchivePath), await _http.GetByteArrayAsync($"/v2/{Repo}/blobs/{plain.Layer.Digest}"));

        using var tags = JsonDocument.Parse(await _http.GetStringAsync($"/v2/{Repo}/tags/list"));
        Assert.Equal(Repo, tags.RootElement.GetProperty("name").GetString());
        Assert.Equal(new[] { _zstd.Id, _plain.Id }.Order(StringComparer.Ordinal), tags.RootElement.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
    }

    [Theory]
    [InlineData("bytes=0-99", 206, 0, 100)]
    [InlineData("bytes=100-", 206, 100, -1)]
    [InlineData("bytes=-50", 206, -50, 50)]
    [InlineData("bytes=0-99,200-299", 200, 0, -1)]
    [InlineData("bytes=x-y", 200, 0, -1)]
    public async Task Range_requests_get_the_part_they_ask_for(string range, int status, long start, long length)
    {
        var stored = await File.ReadAllBytesAsync(_plain.ArchivePath);
        if (start < 0) start += stored.Length;
        if (length < 0) length = stored.Length - start;
        using var r = await SendAsync(HttpMethod.Get, $"/v2/{Repo}/blobs/{_plain.Digest}", range);
        Assert.Equal(status, (int)r.StatusCode);
        var body = await r.Content.ReadAsByteArrayAsync();
        Assert.Equal(stored.AsSpan((int)start, (int)length).ToArray(), body);
        Assert.Equal(length, r.Content.Headers.ContentLength);
        if (status == 206)
            Assert.Equal(new ContentRangeHeaderValue(start, start + length - 1, stored.Length), r.Content.Headers.ContentRange);
        else Assert.Null(r.Content.Headers.ContentRange);
    }

    [Fact]
    public async Task A_range_past_the_end_is_416_with_the_length()
    {
        using var r = await SendAsync(HttpMethod.Get, $"/v2/{Repo}/blobs/{_zstd.Digest}", $"bytes={_zstd.Size}-");
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, r.StatusCode);
        Assert.Equal($"bytes */{_zstd.Size}", r.Content.Headers.GetValues("Content-Range").Single());
    }

    [Theory]
    [InlineData("/v2/crsc/shop/cart/cart/manifests/20990101T000000Z-00000000", 404, "MANIFEST_UNKNOWN")]
    [InlineData("/v2/crsc/shop/cart/cart/manifests/latest", 404, "MANIFEST_UNKNOWN")]
    [InlineData("/v2/crsc/shop/cart/cart/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000", 404, "BLOB_UNKNOWN")]
    [InlineData("/v2/crsc/shop/nobody/cart/manifests/20990101T000000Z-00000000", 404, "NAME_UNKNOWN")]
    [InlineData("/v2/library/busybox/manifests/latest", 404, "NAME_UNKNOWN")]
    [InlineData("/v2/crsc/shop/cart/cart/blobs/sha256:abc", 400, "DIGEST_INVALID")]
    [InlineData("/v2/crsc/shop/cart/cart/blobs/md5:d41d8cd98f00b204e9800998ecf8427e", 400, "DIGEST_INVALID")]
    [InlineData("/v2/crsc/shop/cart/cart/manifests/sha256:ZZZ", 400, "DIGEST_INVALID")]
    [InlineData("/v2/crsc/shop/cart/cart/blobs/..%2f..%2f..%2fetc%2fpasswd", 400, "DIGEST_INVALID")]
    [InlineData("/v2/crsc/shop/cart%2f..%2f..%2fother/cart/manifests/latest", 400, "NAME_INVALID")]
    [InlineData("/v2/crsc/SHOP/cart/cart/manifests/latest", 400, "NAME_INVALID")]
    [InlineData("/v2/crsc/shop/cart/cart/blobs/uploads/", 404, "NOT_FOUND")]
    [InlineData("/v2/crsc/shop/cart/cart/referrers/x", 404, "NOT_FOUND")]
    [InlineData("/healthz", 404, "NOT_FOUND")]
    [InlineData("/metrics", 404, "NOT_FOUND")]
    public async Task Unknown_bad_and_hostile_requests_get_the_specs_errors(string path, int status, string code)
    {
        // with a token for the repository the path names, so what is tested is the answer past authentication
        var named = System.Text.RegularExpressions.Regex.Match(path, "^/v2/(.+)/(manifests|blobs|tags|referrers)/");
        using var own = named.Success ? Client(_tokens.Mint(named.Groups[1].Value)) : null;
        using var r = await (own ?? _http).GetAsync(path);
        Assert.Equal(status, (int)r.StatusCode);
        Assert.Equal(code, (await ErrorOf(r)).Code);
    }

    [Fact]
    public async Task Path_traversal_never_reaches_another_repository_or_the_file_system()
    {
        // dot segments are resolved by the server before routing; what is left is another name (which the token does not
        // cover: 403, or unknown: 404), never a file
        foreach (var path in new[]
        {
            $"/v2/crsc/shop/cart/cart/../../other/cart/blobs/{_zstd.Digest}",
            $"/v2/crsc/shop/../../../../etc/manifests/{_zstd.Id}",
            $"/v2/crsc/shop/cart/cart/blobs/../../../../../../etc/passwd",
        })
        {
            using var r = await _http.GetAsync(path);
            Assert.True((int)r.StatusCode is 400 or 403 or 404, $"{path}: {(int)r.StatusCode}");
        }
        // another repository's layer digest is not a blob of this one
        var other = _store.List(new CheckpointFilter("shop", "other")).Single();
        using var foreign = await _http.GetAsync($"/v2/{Repo}/blobs/{other.Digest}");
        Assert.Equal(HttpStatusCode.NotFound, foreign.StatusCode);
        Assert.Equal("BLOB_UNKNOWN", (await ErrorOf(foreign)).Code);
    }

    [Theory]
    [InlineData("PUT", "/v2/crsc/shop/cart/cart/manifests/x")]
    [InlineData("POST", "/v2/crsc/shop/cart/cart/blobs/uploads/")]
    [InlineData("PATCH", "/v2/crsc/shop/cart/cart/blobs/uploads/1")]
    [InlineData("DELETE", "/v2/crsc/shop/cart/cart/manifests/x")]
    [InlineData("DELETE", "/v2/crsc/shop/cart/cart/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000")]
    public async Task Nothing_can_be_written(string method, string path)
    {
        var tagsBefore = await _http.GetStringAsync($"/v2/{Repo}/tags/list");
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new ByteArrayContent([1, 2, 3]) };
        using var r = await _http.SendAsync(request);
        Assert.True(r.StatusCode == HttpStatusCode.MethodNotAllowed, $"{(int)r.StatusCode} {await r.Content.ReadAsStringAsync()} {string.Join(",", r.Headers.Select(h => h.Key))}");
        Assert.Equal("UNSUPPORTED", (await ErrorOf(r)).Code);
        Assert.Contains("GET", r.Content.Headers.Allow);
        Assert.Equal(tagsBefore, await _http.GetStringAsync($"/v2/{Repo}/tags/list"));
        Assert.Equal(3, _store.List().Count);
    }

    [Fact]
    public async Task A_checkpoint_whose_manifest_was_changed_is_not_listed_and_its_image_is_denied_naming_the_check()
    {
        var image = _registry.ImageOf(_plain);
        using (var before = await _http.GetAsync($"/v2/{Repo}/manifests/{_plain.Id}")) Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        // a changed size: the MAC no longer verifies
        var manifest = Path.Combine(Path.GetDirectoryName(_plain.ArchivePath)!, _plain.Id + ".json");
        var json = await File.ReadAllTextAsync(manifest);
        await File.WriteAllTextAsync(manifest, json.Replace($"\"size\": {_plain.Size},", $"\"size\": {_plain.Size + 1},", StringComparison.Ordinal));
        Assert.NotEqual(json, await File.ReadAllTextAsync(manifest));

        Assert.DoesNotContain(_plain.Id, await _http.GetStringAsync($"/v2/{Repo}/tags/list"));
        Assert.Contains(_zstd.Id, await _http.GetStringAsync($"/v2/{Repo}/tags/list"));
        foreach (var path in new[] { $"/v2/{Repo}/manifests/{_plain.Id}", $"/v2/{Repo}/blobs/{image.Layer.Digest}" })
        {
            using var r = await _http.GetAsync(path);
            Assert.True(r.StatusCode == HttpStatusCode.Forbidden, $"{path}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
            var (code, message) = await ErrorOf(r);
            Assert.Equal("DENIED", code);
            Assert.Contains("invalid MAC", message);
        }
        using var byDigest = await _http.GetAsync($"/v2/{Repo}/manifests/{image.Manifest.Digest}");
        Assert.NotEqual(HttpStatusCode.OK, byDigest.StatusCode);
    }

    [Fact]
    public async Task A_corrupt_layer_is_never_delivered_as_a_complete_response()
    {
        await using (var fs = new FileStream(_plain.ArchivePath, FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Position = fs.Length - 1500;
            var b = fs.ReadByte();
            fs.Position--;
            fs.WriteByte((byte)(b ^ 0xff));
        }
        // whole: the digest mismatch is found at the end of the stream; the connection is aborted, the client fails
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            using var r = await _http.GetAsync($"/v2/{Repo}/blobs/{_plain.Digest}", HttpCompletionOption.ResponseHeadersRead);
            await r.Content.ReadAsByteArrayAsync();
        });
        // a part: refused before a byte goes out
        using var part = await SendAsync(HttpMethod.Get, $"/v2/{Repo}/blobs/{_plain.Digest}", "bytes=0-9");
        Assert.Equal(HttpStatusCode.InternalServerError, part.StatusCode);
        Assert.Contains("corrupt", (await ErrorOf(part)).Message);
    }

    [Fact]
    public async Task A_port_already_taken_leaves_the_endpoint_off_degraded_and_publishing_nothing()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var health = new HealthRegistry(TimeProvider.System);
        await using var second = new ImageEndpoint($"127.0.0.1:{port}", _registry, _tokens, null, health, NullLogger<ImageEndpoint>.Instance);
        await second.StartAsync(CancellationToken.None);

        Assert.False(second.Serving);
        var entry = health.Snapshot().Single(e => e.Component == ImageEndpoint.HealthComponent);
        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Contains($"127.0.0.1:{port}", entry.Message);
        var publisher = new ServingImagePublisher(second, new EmbeddedImagePublisher(_registry, $"127.0.0.1:{port}"));
        Assert.Null(await publisher.PublishAsync(_zstd, CancellationToken.None));
        // the serving one publishes
        var serving = new ServingImagePublisher(_endpoint, new EmbeddedImagePublisher(_registry, "127.0.0.1:5055"));
        Assert.Equal($"127.0.0.1:5055/{Repo}@{_registry.ImageOf(_zstd).Manifest.Digest}", await serving.PublishAsync(_zstd, CancellationToken.None));
    }

    public static TheoryData<string, string> EveryKindOfRequest => new()
    {
        { "GET", "/v2/" },
        { "HEAD", "/v2/" },
        { "GET", $"/v2/{Repo}/tags/list" },
        { "GET", $"/v2/{Repo}/manifests/20990101T000000Z-00000000" },
        { "HEAD", $"/v2/{Repo}/manifests/20990101T000000Z-00000000" },
        { "GET", "/v2/crsc/shop/other/cart/tags/list" },
        { "GET", "/v2/crsc/shop/nobody/cart/tags/list" },
        { "GET", "/v2/_catalog" },
        { "PUT", $"/v2/{Repo}/manifests/x" },
        { "POST", $"/v2/{Repo}/blobs/uploads/" },
        { "GET", "/metrics" },
    };

    [Theory]
    [MemberData(nameof(EveryKindOfRequest))]
    public async Task Without_a_token_every_request_is_401_with_a_Basic_challenge_and_names_nothing(string method, string path)
    {
        using var anonymous = Client(null);
        using var r = await anonymous.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
        Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        var challenge = Assert.Single(r.Headers.WwwAuthenticate);
        Assert.Equal("Basic", challenge.Scheme);
        Assert.Contains(ImageEndpoint.Realm, challenge.Parameter);
        if (method == "HEAD") return;
        var (code, message) = await ErrorOf(r);
        Assert.Equal("UNAUTHORIZED", code);
        Assert.DoesNotContain("cart", message); // the same answer whether the repository exists or not
    }

    [Fact]
    public async Task The_layer_of_a_checkpoint_is_never_served_without_a_token_for_its_repository()
    {
        var layer = _registry.ImageOf(_zstd).Layer.Digest;
        using var anonymous = Client(null);
        using var none = await anonymous.GetAsync($"/v2/{Repo}/blobs/{layer}");
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.True(none.Content.Headers.ContentLength < 1024);

        // a genuine token of another repository: 403, and it cannot list this one either
        using var other = Client(_tokens.Mint("crsc/shop/other/cart"));
        foreach (var path in new[] { $"/v2/{Repo}/blobs/{layer}", $"/v2/{Repo}/manifests/{_zstd.Id}", $"/v2/{Repo}/tags/list" })
        {
            using var r = await other.GetAsync(path);
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
            var (code, message) = await ErrorOf(r);
            Assert.Equal("DENIED", code);
            Assert.Contains("crsc/shop/other/cart", message);
        }
        using var own = await other.GetAsync("/v2/crsc/shop/other/cart/tags/list");
        Assert.Equal(HttpStatusCode.OK, own.StatusCode);

        // a token made with another key, garbage
        foreach (var (token, why) in new[]
        {
            (new PullTokens(NodeKey.Generate()).Mint(Repo), "not made with this cluster's crsc key"),
            ("crsc1.AAAA.BBBB", "not a crsc pull token"),
        })
        {
            using var c = Client(token);
            using var r = await c.GetAsync($"/v2/{Repo}/blobs/{layer}");
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
            Assert.Contains(why, (await ErrorOf(r)).Message);
        }
    }

    [Fact]
    public async Task An_expired_token_is_401()
    {
        var time = new Crsc.Testing.ManualTimeProvider(DateTimeOffset.UtcNow);
        var key = NodeKey.Generate();
        await using var endpoint = new ImageEndpoint("127.0.0.1:0", _registry, new PullTokens(key, time), null,
            new HealthRegistry(TimeProvider.System), NullLogger<ImageEndpoint>.Instance);
        await endpoint.StartAsync(CancellationToken.None);
        using var http = new HttpClient { BaseAddress = new Uri(endpoint.Addresses.Single()) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", new PullTokens(key, time).Mint(Repo, TimeSpan.FromMinutes(5)));
        using (var ok = await http.GetAsync($"/v2/{Repo}/tags/list")) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        time.Advance(TimeSpan.FromMinutes(5));
        using var expired = await http.GetAsync($"/v2/{Repo}/tags/list");
        Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
        Assert.Contains("expired", (await ErrorOf(expired)).Message);
        await endpoint.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_runtime_answering_the_challenge_with_Basic_credentials_pulls_with_the_token_as_password()
    {
        using var basic = Client(null);
        var credentials = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{PullTokens.UserName}:{_tokens.Mint(Repo)}"));
        basic.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", credentials);
        var image = _registry.ImageOf(_zstd);
        using var manifest = await basic.GetAsync($"/v2/{Repo}/manifests/{_zstd.Id}");
        Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
        Assert.Equal(await File.ReadAllBytesAsync(_zstd.ArchivePath), await basic.GetByteArrayAsync($"/v2/{Repo}/blobs/{image.Layer.Digest}"));
    }

    [Fact]
    public async Task Restore_pulls_get_a_token_for_the_checkpoint_image_of_their_own_namespace_only()
    {
        var credentials = new CheckpointPullCredentials(_tokens, registryHost: "registry.example:5000");
        var reference = $"{new Uri(_endpoint.Addresses.Single()).Authority}/{Repo}:{_zstd.Id}";
        var auth = credentials.For(reference, "shop");
        Assert.NotNull(auth);
        Assert.Equal(PullTokens.UserName, auth.Username);
        Assert.Null(auth.ServerAddress); // containerd refuses a server address that is not a URL (seen with 2.1)
        Assert.Equal(PullTokenVerdict.Valid, _tokens.Check(auth.Password, Repo));
        Assert.Equal(PullTokenVerdict.OtherRepository, _tokens.Check(auth.Password, "crsc/shop/other/cart"));

        Assert.Null(credentials.For(reference, "bank"));                                   // another namespace's Restore
        Assert.Null(credentials.For("registry.example:5000/crsc/shop/cart/cart:x", "shop")); // the registry has its own
        Assert.Null(credentials.For("docker.io/library/busybox:1.36", "shop"));              // a base image
        Assert.Null(credentials.For("not a reference", "shop"));
    }

    [Fact]
    public async Task With_a_certificate_the_endpoint_speaks_TLS_only()
    {
        using var dir = new Crsc.Testing.TempDir();
        var tls = Crsc.Testing.TestCertificates.WriteSelfSigned(dir.Path);
        await using var endpoint = new ImageEndpoint("127.0.0.1:0", _registry, _tokens, new ImageEndpointTls(tls.CertFile, tls.KeyFile),
            new HealthRegistry(TimeProvider.System), NullLogger<ImageEndpoint>.Instance);
        await endpoint.StartAsync(CancellationToken.None);
        var address = new Uri(endpoint.Addresses.Single());
        Assert.Equal("https", address.Scheme);
        using var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert?.Thumbprint == tls.Certificate.Thumbprint,
        };
        using var https = new HttpClient(handler) { BaseAddress = address };
        https.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _tokens.Mint(Repo));
        using (var r = await https.GetAsync($"/v2/{Repo}/tags/list")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);

        // plain HTTP to the same port gets no answer a client could take for the registry
        using var plain = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{address.Port}") };
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => plain.GetAsync($"/v2/{Repo}/tags/list"));
        await endpoint.StopAsync(CancellationToken.None);
    }
}

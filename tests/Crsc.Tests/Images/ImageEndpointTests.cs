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
        _endpoint = new ImageEndpoint("127.0.0.1:0", _registry, _health, NullLogger<ImageEndpoint>.Instance);
        await _endpoint.StartAsync(CancellationToken.None);
        Assert.True(_endpoint.Serving);
        _http = new HttpClient { BaseAddress = new Uri(_endpoint.Addresses.Single()) };
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
        using var r = await _http.GetAsync(path);
        Assert.Equal(status, (int)r.StatusCode);
        Assert.Equal(code, (await ErrorOf(r)).Code);
    }

    [Fact]
    public async Task Path_traversal_never_reaches_another_repository_or_the_file_system()
    {
        // dot segments are resolved by the server before routing; what is left is another (unknown) name, never a file
        foreach (var path in new[]
        {
            $"/v2/crsc/shop/cart/cart/../../other/cart/blobs/{_zstd.Digest}",
            $"/v2/crsc/shop/../../../../etc/manifests/{_zstd.Id}",
            $"/v2/crsc/shop/cart/cart/blobs/../../../../../../etc/passwd",
        })
        {
            using var r = await _http.GetAsync(path);
            Assert.True((int)r.StatusCode is 400 or 404, $"{path}: {(int)r.StatusCode}");
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
        await using var second = new ImageEndpoint($"127.0.0.1:{port}", _registry, health, NullLogger<ImageEndpoint>.Instance);
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
}

using System.Text;
using Crsc.Controllers.Storage;
using Crsc.Storage.Oci;

namespace Crsc.Storage.Tests.Oci;

public sealed class StoreImageRegistryTests : IDisposable
{
    private static readonly CheckpointImagePlatform Amd64 = new("linux", "amd64");
    private readonly StoreFixture _f = new();
    private readonly DiskCheckpointStore _store;
    private readonly StoreImageRegistry _registry;

    public StoreImageRegistryTests()
    {
        _store = _f.Open();
        _registry = new StoreImageRegistry(_store, Amd64);
    }

    public void Dispose()
    {
        _store.Dispose();
        _f.Dispose();
    }

    private async Task<CheckpointInfo> IngestAsync(TestArchive? archive = null, string workload = "cart",
        CheckpointCompression compression = CheckpointCompression.Zstd)
    {
        archive ??= new TestArchive();
        _f.Time.Advance(TimeSpan.FromSeconds(1));
        return await _store.IngestAsync(_f.Stage(archive), archive.Source(workload), new IngestOptions { Compression = compression }, null,
            CancellationToken.None);
    }

    private static async Task<byte[]> ReadAllAsync(Stream s)
    {
        await using (s)
        {
            var m = new MemoryStream();
            await s.CopyToAsync(m);
            return m.ToArray();
        }
    }

    [Fact]
    public async Task A_manifest_is_found_by_tag_and_by_digest_in_its_repository_only()
    {
        var info = await IngestAsync();
        var other = await IngestAsync(workload: "other");
        var image = _registry.ImageOf(info);

        var byTag = _registry.FindManifest("crsc/shop/cart/cart", info.Id);
        Assert.Null(byTag.Error);
        Assert.Equal(image.ManifestBytes, byTag.Value!.ManifestBytes);
        var byDigest = _registry.FindManifest("crsc/shop/cart/cart", image.Manifest.Digest);
        Assert.Equal(image.Manifest.Digest, byDigest.Value!.Manifest.Digest);

        // the other workload's checkpoint is not an image of this repository, by tag nor by digest
        Assert.Equal("MANIFEST_UNKNOWN", _registry.FindManifest("crsc/shop/cart/cart", other.Id).Error!.Code);
        Assert.Equal("MANIFEST_UNKNOWN", _registry.FindManifest("crsc/shop/cart/cart", _registry.ImageOf(other).Manifest.Digest).Error!.Code);
        Assert.Equal(404, _registry.FindManifest("crsc/shop/cart/cart", "latest").Error!.StatusCode);
        Assert.Equal(404, _registry.FindManifest("crsc/shop/cart/cart", "sha256:" + new string('0', 64)).Error!.StatusCode);
    }

    [Theory]
    [InlineData("crsc/shop/cart/nope", "NAME_UNKNOWN", 404)]
    [InlineData("library/busybox", "NAME_UNKNOWN", 404)]
    [InlineData("crsc/shop/cart/cart/extra", "NAME_UNKNOWN", 404)]
    [InlineData("crsc/shop/../../etc", "NAME_INVALID", 400)]
    [InlineData("crsc/Shop/cart/cart", "NAME_INVALID", 400)]
    [InlineData("crsc//cart/cart", "NAME_INVALID", 400)]
    [InlineData("", "NAME_INVALID", 400)]
    [InlineData("crsc/shop/cart/cart%2f..", "NAME_INVALID", 400)]
    public async Task Unknown_and_hostile_names_are_refused(string name, string code, int status)
    {
        var info = await IngestAsync();
        var error = _registry.FindManifest(name, info.Id).Error;
        Assert.NotNull(error);
        Assert.Equal(code, error.Code);
        Assert.Equal(status, error.StatusCode);
        Assert.Equal(code, _registry.FindBlob(name, info.Digest).Error!.Code);
    }

    [Theory]
    [InlineData("sha256:xyz")]
    [InlineData("sha256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789")]
    [InlineData("sha512:00")]
    [InlineData("sha256:../../../etc/passwd")]
    [InlineData("latest")]
    public async Task Bad_digests_are_DIGEST_INVALID(string digest)
    {
        await IngestAsync();
        var error = _registry.FindBlob("crsc/shop/cart/cart", digest).Error!;
        Assert.Equal("DIGEST_INVALID", error.Code);
        Assert.Equal(400, error.StatusCode);
        if (digest.Contains(':'))
            Assert.Equal("DIGEST_INVALID", _registry.FindManifest("crsc/shop/cart/cart", digest).Error!.Code);
    }

    [Fact]
    public async Task Blobs_are_the_config_and_the_stored_archive_streamed_with_its_digest_checked()
    {
        var info = await IngestAsync();
        var image = _registry.ImageOf(info);

        var config = _registry.FindBlob("crsc/shop/cart/cart", image.Config.Digest).Value!;
        Assert.Equal(image.ConfigBytes, await ReadAllAsync(await _registry.OpenBlobAsync(config, null, default)));

        var layer = _registry.FindBlob("crsc/shop/cart/cart", info.Digest).Value!;
        Assert.Equal(OciMediaTypes.LayerTarZstd, layer.Descriptor.MediaType);
        var stored = await File.ReadAllBytesAsync(info.ArchivePath);
        Assert.Equal(stored, await ReadAllAsync(await _registry.OpenBlobAsync(layer, null, default)));

        var part = await ReadAllAsync(await _registry.OpenBlobAsync(layer, new ByteRange(100, 1000), default));
        Assert.Equal(stored.AsSpan(100, 1000).ToArray(), part);
        var configPart = await ReadAllAsync(await _registry.OpenBlobAsync(config, new ByteRange(2, 5), default));
        Assert.Equal(image.ConfigBytes.AsSpan(2, 5).ToArray(), configPart);

        Assert.Equal("BLOB_UNKNOWN", _registry.FindBlob("crsc/shop/cart/cart", "sha256:" + new string('1', 64)).Error!.Code);
    }

    [Fact]
    public async Task A_corrupt_stored_archive_is_never_served_whole_nor_in_parts()
    {
        var info = await IngestAsync(compression: CheckpointCompression.None);
        var layer = _registry.FindBlob("crsc/shop/cart/cart", info.Digest).Value!;
        await using (var fs = new FileStream(info.ArchivePath, FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Position = fs.Length / 2;
            var b = fs.ReadByte();
            fs.Position--;
            fs.WriteByte((byte)(b ^ 0xff));
        }
        await Assert.ThrowsAsync<CheckpointCorruptException>(async () => await ReadAllAsync(await _registry.OpenBlobAsync(layer, null, default)));
        await Assert.ThrowsAsync<CheckpointCorruptException>(() => _registry.OpenBlobAsync(layer, new ByteRange(0, 10), default));
    }

    [Fact]
    public async Task A_range_of_a_verified_blob_is_served_again_without_a_full_read_until_the_file_changes()
    {
        var info = await IngestAsync(compression: CheckpointCompression.None);
        var layer = _registry.FindBlob("crsc/shop/cart/cart", info.Digest).Value!;
        var before = await ReadAllAsync(await _registry.OpenBlobAsync(layer, new ByteRange(0, 512), default));
        // the file changes (same length, new mtime): the next range verifies again and refuses it
        await using (var fs = new FileStream(info.ArchivePath, FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Position = fs.Length - 2000;
            fs.WriteByte(0x42);
        }
        File.SetLastWriteTimeUtc(info.ArchivePath, DateTime.UtcNow.AddMinutes(1));
        await Assert.ThrowsAsync<CheckpointCorruptException>(() => _registry.OpenBlobAsync(layer, new ByteRange(0, 512), default));
        Assert.Equal(512, before.Length);
    }

    [Fact]
    public async Task Tags_are_the_checkpoint_ids_of_the_repository_that_can_be_images()
    {
        var a = await IngestAsync();
        var b = await IngestAsync();
        var c = await IngestAsync();
        // a checkpoint whose archive named no base image (its manifest records none; signed as crsc would have)
        Assert.Contains("\"imageName\"", await File.ReadAllTextAsync(StoreFixture.ManifestPath(c)));
        StoreFixture.EditManifest(c, json => System.Text.RegularExpressions.Regex.Replace(json, "\"imageName\": \"[^\"]*\",", ""), _f.Key);
        Assert.Null(_store.Get(c.Id)!.Archive.ImageName);
        Assert.Equal(CheckpointAuthenticity.Verified, _store.Get(c.Id)!.Authenticity);

        Assert.Equal([a.Id, b.Id], _registry.Tags("crsc/shop/cart/cart").Value!);
        var error = _registry.FindManifest("crsc/shop/cart/cart", c.Id).Error!;
        Assert.Equal("MANIFEST_UNKNOWN", error.Code);
        Assert.Contains("rootfsImageName", error.Message);
        Assert.Equal("NAME_UNKNOWN", _registry.Tags("crsc/shop/none/cart").Error!.Code);
    }

    [Fact]
    public void Error_bodies_are_the_distribution_specs_shape()
    {
        var json = Encoding.UTF8.GetString(OciError.BlobUnknown("crsc/a/b/c", "sha256:" + new string('1', 64)).ToJson());
        Assert.Equal("{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"blob 'sha256:" + new string('1', 64)
            + "' is not in repository 'crsc/a/b/c'\"}]}", json);
        // a hostile value is clipped, not echoed in full
        Assert.True(OciError.NameInvalid(new string('x', 10_000)).Message.Length < 400);
    }

    [Fact]
    public async Task The_embedded_publisher_names_the_image_by_digest_on_the_advertised_address()
    {
        var info = await IngestAsync();
        var image = _registry.ImageOf(info);
        var publisher = new EmbeddedImagePublisher(_registry, "127.0.0.1:5055");
        Assert.Equal($"127.0.0.1:5055/crsc/shop/cart/cart@{image.Manifest.Digest}", await publisher.PublishAsync(info, default));
        Assert.Equal($"node-a.example:443/crsc/shop/cart/cart@{image.Manifest.Digest}",
            await new EmbeddedImagePublisher(_registry, "node-a.example:443").PublishAsync(info, default));

        // images off: no reference
        Assert.Null(await new EmbeddedImagePublisher(_registry, "").PublishAsync(info, default));
        Assert.Null(await new EmbeddedImagePublisher(_registry, null).PublishAsync(info, default));

        Assert.Throws<ArgumentException>(() => new EmbeddedImagePublisher(_registry, "http://127.0.0.1:5055"));
        Assert.Throws<ArgumentException>(() => new EmbeddedImagePublisher(_registry, "127.0.0.1"));
        Assert.Throws<ArgumentException>(() => new EmbeddedImagePublisher(_registry, "127.0.0.1:0"));

        var longName = new string('w', 200);
        var longOne = await IngestAsync(workload: longName);
        var tooLong = await Assert.ThrowsAsync<CheckpointImageException>(() =>
            new EmbeddedImagePublisher(_registry, "a-rather-long-node-name.cluster.example:5055").PublishAsync(longOne, default));
        Assert.Contains("over the 255", tooLong.Message);
        await Assert.ThrowsAsync<CheckpointImageException>(() =>
            publisher.PublishAsync(info with { Archive = new ArchiveFacts() }, default));
    }
}

public sealed class OciRouteAndRangeTests
{
    [Theory]
    [InlineData("/v2", OciRouteKind.Base, "", "")]
    [InlineData("/v2/", OciRouteKind.Base, "", "")]
    [InlineData("/v2/crsc/a/b/c/manifests/20260301T120000Z-0123abcd", OciRouteKind.Manifest, "crsc/a/b/c", "20260301T120000Z-0123abcd")]
    [InlineData("/v2/crsc/a/b/c/blobs/sha256:00", OciRouteKind.Blob, "crsc/a/b/c", "sha256:00")]
    [InlineData("/v2/crsc/a/manifests/c/manifests/x", OciRouteKind.Manifest, "crsc/a/manifests/c", "x")]
    [InlineData("/v2/crsc/a/b/c/tags/list", OciRouteKind.Tags, "crsc/a/b/c", "")]
    [InlineData("/v2/crsc/a/b/c/blobs/uploads/", OciRouteKind.Unknown, "crsc/a/b/c/blobs/uploads", "")]
    [InlineData("/v2x/a/manifests/b", OciRouteKind.Unknown, "", "")]
    [InlineData("/healthz", OciRouteKind.Unknown, "", "")]
    [InlineData("/v2/manifests/x", OciRouteKind.Unknown, "", "")]
    public void Routes_are_taken_apart_as_the_distribution_spec_names_them(string path, OciRouteKind kind, string name, string reference)
    {
        var r = OciRoute.Parse(path);
        Assert.Equal(kind, r.Kind);
        if (kind != OciRouteKind.Unknown)
        {
            Assert.Equal(name, r.Name);
            Assert.Equal(reference, r.Reference);
        }
    }

    [Theory]
    [InlineData(null, RangeRequest.Full, 0, 1000)]
    [InlineData("bytes=0-99", RangeRequest.Partial, 0, 100)]
    [InlineData("bytes=900-", RangeRequest.Partial, 900, 100)]
    [InlineData("bytes=950-5000", RangeRequest.Partial, 950, 50)]
    [InlineData("bytes=-10", RangeRequest.Partial, 990, 10)]
    [InlineData("bytes=-5000", RangeRequest.Partial, 0, 1000)]
    [InlineData("bytes=999-999", RangeRequest.Partial, 999, 1)]
    [InlineData("bytes=1000-", RangeRequest.Unsatisfiable, 0, 0)]
    [InlineData("bytes=-0", RangeRequest.Unsatisfiable, 0, 0)]
    [InlineData("bytes=5-1", RangeRequest.Full, 0, 1000)]
    [InlineData("bytes=0-1,5-6", RangeRequest.Full, 0, 1000)]
    [InlineData("items=0-1", RangeRequest.Full, 0, 1000)]
    [InlineData("bytes=abc", RangeRequest.Full, 0, 1000)]
    [InlineData("bytes=-", RangeRequest.Full, 0, 1000)]
    [InlineData("bytes=+1-2", RangeRequest.Full, 0, 1000)]
    public void Range_headers_are_read_as_RFC_9110_says(string? header, RangeRequest expected, long start, long length)
    {
        var result = ByteRange.Parse(header, 1000, out var range);
        Assert.Equal(expected, result);
        if (expected != RangeRequest.Unsatisfiable)
        {
            Assert.Equal(start, range.Start);
            Assert.Equal(length, range.Length);
        }
    }
}

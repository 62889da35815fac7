using Crsc.Controllers.Storage;
using Crsc.Storage.Oci;
using Crsc.Testing.Registry;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Storage.Tests.Oci;

public sealed class RegistryPushPublisherTests : IAsyncLifetime
{
    private static readonly CheckpointImagePlatform Amd64 = new("linux", "amd64");
    private readonly StoreFixture _f = new();
    private DiskCheckpointStore _store = null!;
    private FakeRegistry _registry = null!;
    private RegistryClient _client = null!;

    public async Task InitializeAsync()
    {
        _store = _f.Open();
        _registry = await FakeRegistry.StartAsync(new FakeRegistryOptions { Time = _f.Time });
        _client = new RegistryClient(new RegistryClientOptions { Registry = _registry.Host, Insecure = true, MaxAttempts = 3 },
            _f.Time, NullLogger<RegistryClient>.Instance);
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _registry.DisposeAsync();
        _store.Dispose();
        _f.Dispose();
    }

    private async Task<CheckpointInfo> IngestAsync(CheckpointCompression compression)
    {
        var archive = new TestArchive();
        _f.Time.Advance(TimeSpan.FromSeconds(1));
        return await _store.IngestAsync(_f.Stage(archive), archive.Source(), new IngestOptions { Compression = compression }, null,
            CancellationToken.None);
    }

    private RegistryPushPublisher Publisher(string prefix = "") =>
        new(_store, _client, RegistryLocation.Parse(prefix.Length == 0 ? _registry.Host : $"{_registry.Host}/{prefix}"), Amd64);

    [Theory]
    [InlineData(CheckpointCompression.None, OciMediaTypes.LayerTar)]
    [InlineData(CheckpointCompression.Zstd, OciMediaTypes.LayerTarZstd)]
    public async Task Publishing_pushes_the_writers_image_with_the_stored_archive_as_its_layer(CheckpointCompression compression, string layerType)
    {
        var info = await IngestAsync(compression);
        var image = CheckpointImageWriter.Write(info, Amd64);

        var reference = await Publisher().PublishAsync(info, CancellationToken.None);

        Assert.Equal($"{_registry.Host}/crsc/shop/cart/cart@{image.Manifest.Digest}", reference);
        var manifest = _registry.Manifest("crsc/shop/cart/cart", info.Id);
        Assert.NotNull(manifest);
        Assert.Equal(image.ManifestBytes, manifest.Value.Body);
        Assert.Equal(OciMediaTypes.ImageManifest, manifest.Value.MediaType);
        Assert.Equal(image.ConfigBytes, _registry.Blob(image.Config.Digest));
        Assert.Equal(layerType, image.Layer.MediaType);
        Assert.Equal(info.Digest, image.Layer.Digest);
        Assert.Equal(await File.ReadAllBytesAsync(info.ArchivePath), _registry.Blob(info.Digest));
    }

    [Fact]
    public async Task A_prefix_replaces_crsc_in_the_repository_and_a_second_publish_sends_no_blob()
    {
        var info = await IngestAsync(CheckpointCompression.Zstd);
        var publisher = Publisher("team/checkpoints");

        var reference = await publisher.PublishAsync(info, CancellationToken.None);
        Assert.StartsWith($"{_registry.Host}/team/checkpoints/shop/cart/cart@sha256:", reference);
        Assert.NotNull(_registry.Manifest("team/checkpoints/shop/cart/cart", info.Id));

        _registry.ClearRequests();
        Assert.Equal(reference, await publisher.PublishAsync(info, CancellationToken.None));
        Assert.DoesNotContain(_registry.Requests, r => r.Method is "POST" or "PATCH");
    }

    [Fact]
    public async Task A_stored_archive_that_no_longer_matches_its_digest_fails_the_publish_without_retries()
    {
        var info = await IngestAsync(CheckpointCompression.None);
        var bytes = await File.ReadAllBytesAsync(info.ArchivePath);
        bytes[^1] ^= 0x5a;
        await File.WriteAllBytesAsync(info.ArchivePath, bytes);

        await Assert.ThrowsAsync<CheckpointCorruptException>(() => Publisher().PublishAsync(info, CancellationToken.None));

        // one upload session for the layer and at most one PUT of it (the body fails while it is sent; whether the
        // server saw the request start depends on timing): no retry of either
        var layerHead = _registry.Requests.ToList().FindIndex(r => r.Method == "HEAD" && r.Path.EndsWith(info.Digest, StringComparison.Ordinal));
        Assert.True(layerHead >= 0, "the layer was looked up");
        Assert.Single(_registry.Requests.Skip(layerHead), r => r.Method == "POST");
        Assert.InRange(_registry.Requests.Count(r => r.Method == "PUT" && r.Query.Contains(Uri.EscapeDataString(info.Digest))), 0, 1);
        Assert.False(_registry.HasBlob("crsc/shop/cart/cart", info.Digest));
        Assert.Null(_registry.Manifest("crsc/shop/cart/cart", info.Id));
    }

    [Fact]
    public void A_client_for_another_registry_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => new RegistryPushPublisher(_store, _client, RegistryLocation.Parse("elsewhere.example/x")));
        Assert.Contains("elsewhere.example", e.Message);
    }
}

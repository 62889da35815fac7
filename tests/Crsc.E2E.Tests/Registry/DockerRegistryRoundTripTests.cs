using System.Security.Cryptography;
using System.Text.Json;
using Crsc.Controllers.Storage;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Storage;
using Crsc.Storage.Oci;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Crsc.Testing.Registry;
using Microsoft.Extensions.Logging.Abstractions;
using Runtime.V1;

namespace Crsc.E2E.Tests.Registry;

/// <summary>
/// Checkpoint images pushed by crsc's registry client into Debian's docker-registry (distribution 2.8) on the host,
/// pulled back with skopeo into an OCI layout: the manifest, config and layer that arrive are byte for byte (digest
/// for digest) what crsc pushed. Not the sandbox's registry: this one runs on the host, on its own port.
/// </summary>
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed class DockerRegistryRoundTripTests : IDisposable
{
    private readonly TempDir _dir = new("crsc-push-e2e-");

    public void Dispose() => _dir.Dispose();

    private static void RequirePrograms()
    {
        if (DockerRegistry.Missing() is { } missing) Assert.Fail(missing);
    }

    private static RegistryClient Client(DockerRegistry registry, RegistryCredentials? credentials = null) =>
        new(new RegistryClientOptions
        {
            Registry = registry.Host,
            Insecure = true,
            Credentials = credentials,
            // small chunks so that the real registry sees several PATCHes, of which the last is shorter
            ChunkedUploadThreshold = 1024,
            ChunkSize = 700,
        }, TimeProvider.System, NullLogger<RegistryClient>.Instance);

    /// <summary>A committed checkpoint of an archive laid out as CRI-O writes it, in a store in a temp directory.</summary>
    private async Task<(DiskCheckpointStore Store, CheckpointInfo Info)> CheckpointAsync(CheckpointCompression compression)
    {
        var store = new DiskCheckpointStore(new DiskCheckpointStoreOptions
        {
            CheckpointDirectory = _dir.Combine($"checkpoints-{compression}"),
            StagingDirectory = _dir.Combine($"staging-{compression}"),
            NodeName = "node-a",
        });
        var source = new CheckpointedContainer("shop", "cart", "cart") { PodName = "cart-0", PodUid = "0d1e2f3a-1111-2222-3333-444455556666" };
        var sandbox = new PodSandbox
        {
            Id = "5b0c9e1f2a3b4c5d6e7f8091a2b3c4d5",
            Metadata = new PodSandboxMetadata { Name = "cart-0", Namespace = "shop", Uid = source.PodUid },
        };
        var container = new Container
        {
            Id = "c0ffee0123456789abcdef0123456789",
            PodSandboxId = sandbox.Id,
            Metadata = new ContainerMetadata { Name = "cart" },
            Image = new ImageSpec { Image = "docker.io/library/busybox:1.36" },
            ImageRef = "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741",
            CreatedAt = DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeMilliseconds() * 1_000_000,
        };
        var staged = store.NewStagingPath(source);
        CheckpointArchiveWriter.Write(staged, container, sandbox, "cri-o");
        var info = await store.IngestAsync(staged, source, new IngestOptions { Compression = compression }, null, CancellationToken.None);
        return (store, info);
    }

    /// <summary>The OCI layout skopeo wrote holds exactly the pushed manifest, and the config and layers it names, intact.</summary>
    private static void AssertLayoutHolds(string layout, string tag, byte[] manifest, string manifestDigest,
        (string Digest, string MediaType) config, IReadOnlyList<(string Digest, string MediaType)> layers)
    {
        using var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(layout, "index.json")));
        var entry = Assert.Single(index.RootElement.GetProperty("manifests").EnumerateArray());
        Assert.Equal(manifestDigest, entry.GetProperty("digest").GetString());
        Assert.Equal(tag, entry.GetProperty("annotations").GetProperty("org.opencontainers.image.ref.name").GetString());
        Assert.Equal(manifest, Blob(layout, manifestDigest));

        using var pulled = JsonDocument.Parse(Blob(layout, manifestDigest));
        var pulledConfig = pulled.RootElement.GetProperty("config");
        Assert.Equal(config, (pulledConfig.GetProperty("digest").GetString()!, pulledConfig.GetProperty("mediaType").GetString()!));
        Blob(layout, config.Digest);
        var pulledLayers = pulled.RootElement.GetProperty("layers").EnumerateArray()
            .Select(l => (l.GetProperty("digest").GetString()!, l.GetProperty("mediaType").GetString()!)).ToList();
        Assert.Equal(layers, pulledLayers);
        foreach (var (digest, _) in layers) Blob(layout, digest);
    }

    /// <summary>A blob of the layout, checked against its name.</summary>
    private static byte[] Blob(string layout, string digest)
    {
        var path = Path.Combine(layout, "blobs", "sha256", digest["sha256:".Length..]);
        Assert.True(File.Exists(path), $"skopeo's layout has no blob {digest}");
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)));
        return bytes;
    }

    [RealComponentsFact]
    public async Task A_checkpoint_image_pushed_to_docker_registry_is_pulled_by_skopeo_with_the_same_digests()
    {
        RequirePrograms();
        await using var registry = await DockerRegistry.StartAsync();
        var (store, info) = await CheckpointAsync(CheckpointCompression.Zstd);
        using var _ = store;
        using var client = Client(registry);
        var publisher = new RegistryPushPublisher(store, client, RegistryLocation.Parse($"{registry.Host}/e2e"));
        var image = CheckpointImageWriter.Write(info);
        Assert.True(info.Size > 1024 && info.Size % 700 != 0, $"the archive ({info.Size} bytes) should be large enough for a chunked upload");

        var reference = await publisher.PublishAsync(info, CancellationToken.None);

        Assert.Equal($"{registry.Host}/e2e/shop/cart/cart@{image.Manifest.Digest}", reference);
        var layout = await registry.PullWithSkopeoAsync("e2e/shop/cart/cart", info.Id);
        AssertLayoutHolds(layout, info.Id, image.ManifestBytes, image.Manifest.Digest,
            (image.Config.Digest, image.Config.MediaType), [(info.Digest, OciMediaTypes.LayerTarZstd)]);
        Assert.Equal(await File.ReadAllBytesAsync(info.ArchivePath), Blob(layout, info.Digest));

        // pushed again (another publish of the same checkpoint): the registry has every blob, nothing is uploaded
        var again = await client.PushAsync(new RegistryImage("e2e/shop/cart/cart", "again",
            [
                new RegistryBlob(image.Config.Digest, image.Config.Size, image.Config.MediaType, _ => Task.FromResult<Stream>(new MemoryStream(image.ConfigBytes))),
                new RegistryBlob(image.Layer.Digest, image.Layer.Size, image.Layer.MediaType, ct => store.OpenStoredAsync(info.Id, ct)),
            ], image.ManifestBytes, image.Manifest.MediaType), CancellationToken.None);
        Assert.Equal((0, 2, image.Manifest.Digest), (again.BlobsUploaded, again.BlobsSkipped, again.ManifestDigest));
    }

    [RealComponentsFact]
    public async Task With_htpasswd_basic_auth_the_right_password_pushes_and_a_wrong_one_is_refused_clearly()
    {
        RequirePrograms();
        await using var registry = await DockerRegistry.StartAsync("crsc", "push-e2e-pw");
        var (store, info) = await CheckpointAsync(CheckpointCompression.None);
        using var _ = store;

        using (var wrong = Client(registry, new RegistryCredentials("crsc", "not-the-password")))
        {
            var publisher = new RegistryPushPublisher(store, wrong, RegistryLocation.Parse(registry.Host));
            var e = await Assert.ThrowsAsync<RegistryAuthenticationException>(() => publisher.PublishAsync(info, CancellationToken.None));
            Assert.Contains(registry.Host, e.Message);
            Assert.Contains("crsc/shop/cart/cart", e.Message);
            Assert.Contains("user 'crsc'", e.Message);
            Assert.DoesNotContain("not-the-password", e.Message);
        }

        using var client = Client(registry, new RegistryCredentials("crsc", "push-e2e-pw"));
        var reference = await new RegistryPushPublisher(store, client, RegistryLocation.Parse(registry.Host)).PublishAsync(info, CancellationToken.None);
        var image = CheckpointImageWriter.Write(info);
        Assert.Equal($"{registry.Host}/crsc/shop/cart/cart@{image.Manifest.Digest}", reference);

        // a hand-made image with a 3 MiB layer, in 1 MiB chunks of which the last is shorter
        var big = TestImage.WithRandomFile(3 << 20, seed: 7);
        using var chunky = new RegistryClient(new RegistryClientOptions
        {
            Registry = registry.Host, Insecure = true, Credentials = new RegistryCredentials("crsc", "push-e2e-pw"),
            ChunkedUploadThreshold = 1 << 20, ChunkSize = 1 << 20,
        }, TimeProvider.System, NullLogger<RegistryClient>.Instance);
        await chunky.PushAsync(new RegistryImage("crsc/big", "v1",
            big.Blobs.Select(b => new RegistryBlob(b.Digest, b.Content.Length, b.MediaType, _ => Task.FromResult<Stream>(new MemoryStream(b.Content)))).ToList(),
            big.Manifest, TestImage.ManifestMediaType), CancellationToken.None);

        var layout = await registry.PullWithSkopeoAsync("crsc/shop/cart/cart", info.Id, "crsc", "push-e2e-pw");
        AssertLayoutHolds(layout, info.Id, image.ManifestBytes, image.Manifest.Digest,
            (image.Config.Digest, image.Config.MediaType), [(info.Digest, OciMediaTypes.LayerTar)]);
        var bigLayout = await registry.PullWithSkopeoAsync("crsc/big", "v1", "crsc", "push-e2e-pw");
        AssertLayoutHolds(bigLayout, "v1", big.Manifest, big.ManifestDigest, (big.Config.Digest, TestImage.ConfigMediaType),
            big.Layers.Select(l => (l.Digest, l.MediaType)).ToList());
    }
}

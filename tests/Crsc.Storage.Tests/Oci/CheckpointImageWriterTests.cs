using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Crsc.Controllers.Storage;
using Crsc.Storage.Oci;

namespace Crsc.Storage.Tests.Oci;

public sealed class CheckpointImageWriterTests : IDisposable
{
    private static readonly CheckpointImagePlatform Amd64 = new("linux", "amd64");
    private readonly StoreFixture _f = new();
    public void Dispose() => _f.Dispose();

    private static string Sha(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    private async Task<(DiskCheckpointStore Store, CheckpointInfo Info, byte[] Original)> IngestAsync(
        CheckpointCompression compression, bool containerd = false)
    {
        var store = _f.Open();
        var archive = new TestArchive { Containerd = containerd };
        var original = archive.Build();
        var info = await store.IngestAsync(_f.Stage(original), archive.Source(), new IngestOptions { Compression = compression }, null,
            CancellationToken.None);
        return (store, info, original);
    }

    [Theory]
    [InlineData(CheckpointCompression.None, false)]
    [InlineData(CheckpointCompression.Zstd, false)]
    [InlineData(CheckpointCompression.Zstd, true)]
    public async Task The_image_is_a_valid_OCI_image_whose_one_layer_is_the_stored_archive(CheckpointCompression compression, bool containerd)
    {
        var (store, info, original) = await IngestAsync(compression, containerd);
        using var _ = store;
        var stored = await File.ReadAllBytesAsync(info.ArchivePath);

        var image = CheckpointImageWriter.Write(info, Amd64);

        // manifest: exactly the members of an OCI image manifest, the descriptors matching the bytes they name
        Assert.Equal(OciMediaTypes.ImageManifest, image.Manifest.MediaType);
        Assert.Equal(Sha(image.ManifestBytes), image.Manifest.Digest);
        Assert.Equal(image.ManifestBytes.Length, image.Manifest.Size);
        using var manifest = JsonDocument.Parse(image.ManifestBytes);
        var m = manifest.RootElement;
        Assert.Equal(["schemaVersion", "mediaType", "config", "layers", "annotations"], m.EnumerateObject().Select(p => p.Name));
        Assert.Equal(2, m.GetProperty("schemaVersion").GetInt32());
        Assert.Equal("application/vnd.oci.image.manifest.v1+json", m.GetProperty("mediaType").GetString());
        var config = m.GetProperty("config");
        Assert.Equal("application/vnd.oci.image.config.v1+json", config.GetProperty("mediaType").GetString());
        Assert.Equal(Sha(image.ConfigBytes), config.GetProperty("digest").GetString());
        Assert.Equal(image.ConfigBytes.Length, config.GetProperty("size").GetInt64());
        var layer = Assert.Single(m.GetProperty("layers").EnumerateArray().ToList());
        Assert.Equal(compression == CheckpointCompression.Zstd
            ? "application/vnd.oci.image.layer.v1.tar+zstd"
            : "application/vnd.oci.image.layer.v1.tar", layer.GetProperty("mediaType").GetString());
        // the layer IS the stored file: its digest and size are those of the bytes on disk
        Assert.Equal(Sha(stored), layer.GetProperty("digest").GetString());
        Assert.Equal(stored.Length, layer.GetProperty("size").GetInt64());
        Assert.Equal(info.Digest, image.Layer.Digest);

        // config: platform, rootfs with the uncompressed tar's digest as diff_id, created = checkpoint time
        using var configDoc = JsonDocument.Parse(image.ConfigBytes);
        var c = configDoc.RootElement;
        Assert.Equal("linux", c.GetProperty("os").GetString());
        Assert.Equal("amd64", c.GetProperty("architecture").GetString());
        Assert.Equal("2026-01-01T01:02:03.5Z", c.GetProperty("created").GetString());
        Assert.Equal("layers", c.GetProperty("rootfs").GetProperty("type").GetString());
        Assert.Equal([Sha(original)], c.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray().Select(d => d.GetString()));
        Assert.Single(c.GetProperty("history").EnumerateArray());
        if (compression == CheckpointCompression.Zstd)
        {
            // the zstd layer decompresses to the very tar the diff_id names
            using var raw = new ZstdDecompressStream(new MemoryStream(stored));
            var decompressed = new MemoryStream();
            raw.CopyTo(decompressed);
            Assert.Equal(Sha(original), Sha(decompressed.ToArray()));
        }
        else Assert.Equal(original, stored);
    }

    [Fact]
    public void The_bytes_of_a_checkpoint_image_do_not_change_between_versions_of_crsc()
    {
        // digests taken before the JSON writing moved to OciJson (shared with crsc's own image): an image a node already
        // served must keep its digest, or runtimes that pulled it by digest would no longer find it
        var info = new CheckpointInfo
        {
            FormatVersion = 1, Id = "20261122T041809Z-1a2b3c4d", Namespace = "shop", Workload = "cart", Container = "app",
            PodName = "cart-7d9f-abcde", NodeName = "node-a",
            Archive = new ArchiveFacts
            {
                ContainerName = "app", ImageName = "registry.example/shop/cart:1", ImageId = "sha256:" + new string('c', 64), Runtime = "runc",
                CheckpointedAt = DateTimeOffset.Parse("2026-11-22T04:18:09.25Z", System.Globalization.CultureInfo.InvariantCulture),
            },
            Compression = CheckpointCompression.Zstd, Digest = "sha256:" + new string('a', 64), Size = 4_404_019,
            UncompressedDigest = "sha256:" + new string('b', 64), UncompressedSize = 12_582_912,
            CreatedAt = DateTimeOffset.Parse("2026-11-22T04:18:10Z", System.Globalization.CultureInfo.InvariantCulture),
            CrscVersion = "test", ArchivePath = "/x.tar.zst",
        };
        var image = CheckpointImageWriter.Write(info, Amd64);
        Assert.Equal("sha256:8fcbff27bb38b4083ac5bf2f2c958b33fc8c7ca75f0c2417d50578ede67eb0e3", image.Manifest.Digest);
        Assert.Equal("sha256:2c08794f3b48543df7ab38876b49ee7487af51b39d7cb1eb87a75ff7b242cfd5", image.Config.Digest);
    }

    [Fact]
    public async Task Manifest_and_config_carry_the_checkpoint_annotations_both_runtimes_look_for_and_the_criu_facts()
    {
        var (store, info, _) = await IngestAsync(CheckpointCompression.Zstd);
        using var _ = store;
        var image = CheckpointImageWriter.Write(info, Amd64);
        using var manifest = JsonDocument.Parse(image.ManifestBytes);
        var annotations = manifest.RootElement.GetProperty("annotations").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());

        Assert.Equal("cart", annotations["io.kubernetes.cri-o.annotations.checkpoint.name"]);
        Assert.Equal("cart", annotations["org.criu.checkpoint.container.name"]);
        Assert.Equal("cart-6d4b9c7f5-x2kqz", annotations["org.criu.checkpoint.pod.name"]);
        Assert.Equal("shop", annotations["org.criu.checkpoint.pod.namespace"]);
        Assert.Equal("registry.example/shop/cart:1.4.2", annotations["org.criu.checkpoint.rootfsImageName"]);
        Assert.Equal("sha256:9a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", annotations["org.criu.checkpoint.rootfsImageID"]);
        Assert.Equal("runc", annotations["org.criu.checkpoint.runtime.name"]);
        Assert.Equal("amd64", annotations["org.criu.checkpoint.host.arch"]);
        Assert.Equal("2026-01-01T01:02:03.5Z", annotations["org.opencontainers.image.created"]);
        Assert.Equal(info.Id, annotations["io.crsc.checkpoint.id"]);
        Assert.Equal("node-a", annotations["io.crsc.checkpoint.node"]);
        // fixed (ordinal) order: the bytes do not depend on how a dictionary happens to enumerate
        Assert.Equal(annotations.Keys.Order(StringComparer.Ordinal), annotations.Keys);

        // the config carries the same facts as labels
        using var config = JsonDocument.Parse(image.ConfigBytes);
        var labels = config.RootElement.GetProperty("config").GetProperty("Labels").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
        Assert.Equal(annotations, labels);
        Assert.Equal("crsc/shop/cart/cart", image.Repository);
        Assert.Equal(info.Id, image.Tag);
    }

    [Fact]
    public async Task The_same_checkpoint_always_gives_the_same_bytes_and_manifest_digest()
    {
        var (store, info, _) = await IngestAsync(CheckpointCompression.Zstd);
        using var _ = store;
        var first = CheckpointImageWriter.Write(info, Amd64);
        _f.Time.Advance(TimeSpan.FromHours(5)); // no clock in the image
        var again = CheckpointImageWriter.Write(store.Get(info.Id)!, Amd64);
        Assert.Equal(first.ManifestBytes, again.ManifestBytes);
        Assert.Equal(first.ConfigBytes, again.ConfigBytes);
        Assert.Equal(first.Manifest.Digest, again.Manifest.Digest);
        // and the digest follows the content: another checkpoint of the same archive is another image
        var other = CheckpointImageWriter.Write(info with { Id = "20260301T120001Z-0badc0de" }, Amd64);
        Assert.NotEqual(first.Manifest.Digest, other.Manifest.Digest);
        Assert.NotEqual(first.Config.Digest, other.Config.Digest);
    }

    [Fact]
    public async Task The_image_carries_the_store_manifest_as_its_node_signed_it_and_pinning_does_not_change_the_image()
    {
        var (store, info, _) = await IngestAsync(CheckpointCompression.Zstd);
        using var _ = store;
        var image = CheckpointImageWriter.Write(info, Amd64);

        var encoded = image.Annotations.Single(a => a.Key == CheckpointImageWriter.ManifestAnnotation).Value;
        var doc = TravellingManifest.Decode(encoded);
        Assert.Equal(info.Id, doc.Id);
        Assert.Equal(info.Digest, doc.Archive.Digest);
        Assert.Equal(image.Layer.Digest, doc.Archive.Digest);
        Assert.Equal(info.Mac, doc.Mac);
        // the MAC verifies with the node's key (another node sharing it checks exactly this), and with no other key
        Assert.Equal(CheckpointAuthenticity.Verified, Crsc.Storage.Manifests.Authenticity(doc, _f.Key));
        Assert.Equal(CheckpointAuthenticity.OtherKey, Crsc.Storage.Manifests.Authenticity(doc, Crsc.Storage.Security.NodeKey.Generate()));

        // pinning is the node's own business: same image, same digest
        var pinned = await store.SetPinnedAsync(info.Id, true, CancellationToken.None);
        Assert.Equal(image.Manifest.Digest, CheckpointImageWriter.Write(store.Get(pinned.Id)!, Amd64).Manifest.Digest);

        // a manifest without a MAC travels without one: there is nothing another node could check
        var unsigned = CheckpointImageWriter.Write(info with { Mac = null, MacKeyId = null }, Amd64);
        Assert.DoesNotContain(unsigned.Annotations, a => a.Key == CheckpointImageWriter.ManifestAnnotation);
    }

    [Fact]
    public async Task Optional_facts_that_are_missing_are_left_out()
    {
        var (store, info, _) = await IngestAsync(CheckpointCompression.None);
        using var _ = store;
        var bare = info with
        {
            PodName = null,
            NodeName = null,
            Archive = new ArchiveFacts { ImageName = "registry.example/shop/cart:1.4.2" },
            CreatedAt = new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero),
        };
        var image = CheckpointImageWriter.Write(bare, Amd64);
        var keys = image.Annotations.Select(a => a.Key).ToList();
        Assert.DoesNotContain("org.criu.checkpoint.pod.name", keys);
        Assert.DoesNotContain("org.criu.checkpoint.runtime.name", keys);
        Assert.DoesNotContain("org.criu.checkpoint.rootfsImageID", keys);
        Assert.DoesNotContain("io.crsc.checkpoint.node", keys);
        Assert.Contains("org.criu.checkpoint.container.name", keys);
        // no checkpoint time in the archive: the store's time
        Assert.Contains("\"created\":\"2026-03-01T12:00:00Z\"", Encoding.UTF8.GetString(image.ConfigBytes));
    }

    [Fact]
    public async Task A_checkpoint_without_the_facts_a_runtime_needs_is_refused_with_the_missing_fact_named()
    {
        var (store, info, _) = await IngestAsync(CheckpointCompression.Zstd);
        using var _ = store;

        var noBase = Assert.Throws<CheckpointImageException>(() => CheckpointImageWriter.Write(info with { Archive = new ArchiveFacts() }, Amd64));
        Assert.Contains("rootfsImageName", noBase.Message);
        Assert.Equal(info.Id, noBase.CheckpointId);

        var badDigest = Assert.Throws<CheckpointImageException>(() => CheckpointImageWriter.Write(info with { Digest = "md5:abc" }, Amd64));
        Assert.Contains("'md5:abc'", badDigest.Message);
        var badDiffId = Assert.Throws<CheckpointImageException>(() =>
            CheckpointImageWriter.Write(info with { UncompressedDigest = "sha256:" + new string('A', 64) }, Amd64));
        Assert.Contains("uncompressed digest", badDiffId.Message);
        var empty = Assert.Throws<CheckpointImageException>(() => CheckpointImageWriter.Write(info with { Size = 0 }, Amd64));
        Assert.Contains("size 0", empty.Message);
        // an uncompressed archive has one digest: two different ones mean a broken manifest
        var twoDigests = Assert.Throws<CheckpointImageException>(() =>
            CheckpointImageWriter.Write(info with { Compression = CheckpointCompression.None }, Amd64));
        Assert.Contains("uncompressed but records two digests", twoDigests.Message);
        var badName = Assert.Throws<CheckpointImageException>(() => CheckpointImageWriter.Write(info with { Container = "../etc" }, Amd64));
        Assert.Contains("'../etc'", badName.Message);
        var badId = Assert.Throws<CheckpointImageException>(() => CheckpointImageWriter.Write(info with { Id = "latest" }, Amd64));
        Assert.Contains("'latest'", badId.Message);
        Assert.Throws<ArgumentException>(() => CheckpointImageWriter.Write(info, new CheckpointImagePlatform("linux", "")));
    }

    [Fact]
    public void Platform_names_are_Gos()
    {
        Assert.Equal("amd64", CheckpointImagePlatform.GoArchitecture(System.Runtime.InteropServices.Architecture.X64));
        Assert.Equal("arm64", CheckpointImagePlatform.GoArchitecture(System.Runtime.InteropServices.Architecture.Arm64));
        Assert.Equal("linux", CheckpointImagePlatform.Current.Os);
    }
}

using System.Security.Cryptography;
using System.Text;

namespace Crsc.Testing.Registry;

/// <summary>One blob of a hand-made image: bytes, digest, media type.</summary>
public sealed record TestBlob(byte[] Content, string MediaType)
{
    public string Digest { get; } = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Content));
}

/// <summary>A small valid OCI image (config, layers, manifest) made by hand, for registry tests.</summary>
public sealed record TestImage(TestBlob Config, IReadOnlyList<TestBlob> Layers, byte[] Manifest)
{
    public const string ManifestMediaType = "application/vnd.oci.image.manifest.v1+json";
    public const string ConfigMediaType = "application/vnd.oci.image.config.v1+json";
    public const string LayerMediaType = "application/vnd.oci.image.layer.v1.tar";

    public string ManifestDigest => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Manifest));

    public IEnumerable<TestBlob> Blobs => [Config, .. Layers];

    /// <summary>An image whose layers are the given bytes (uncompressed, so diff_id = digest).</summary>
    public static TestImage Create(params byte[][] layers)
    {
        var layerBlobs = layers.Select(l => new TestBlob(l, LayerMediaType)).ToList();
        var diffIds = string.Join(",", layerBlobs.Select(l => $"\"{l.Digest}\""));
        var config = new TestBlob(Encoding.UTF8.GetBytes(
            $$$"""{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[{{{diffIds}}}]}}"""), ConfigMediaType);
        var layerJson = string.Join(",", layerBlobs.Select(l =>
            $$"""{"mediaType":"{{l.MediaType}}","digest":"{{l.Digest}}","size":{{l.Content.Length}}}"""));
        var manifest = Encoding.UTF8.GetBytes(
            $$$"""{"schemaVersion":2,"mediaType":"{{{ManifestMediaType}}}","config":{"mediaType":"{{{ConfigMediaType}}}","digest":"{{{config.Digest}}}","size":{{{config.Content.Length}}}},"layers":[{{{layerJson}}}]}""");
        return new TestImage(config, layerBlobs, manifest);
    }

    /// <summary>A single-layer image whose layer is a valid tar holding one file of <paramref name="size"/> random bytes.</summary>
    public static TestImage WithRandomFile(int size, int seed = 1)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        using var tar = new MemoryStream();
        using (var writer = new System.Formats.Tar.TarWriter(tar, System.Formats.Tar.TarEntryFormat.Pax, leaveOpen: true))
        {
            var entry = new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "data.bin")
            {
                DataStream = new MemoryStream(data),
                ModificationTime = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero),
            };
            writer.WriteEntry(entry);
        }
        return Create(tar.ToArray());
    }
}

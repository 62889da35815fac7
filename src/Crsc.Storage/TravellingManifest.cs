using System.Text;
using Crsc.Controllers.Storage;

namespace Crsc.Storage;

/// <summary>
/// A checkpoint's store manifest as it travels with its image (the annotation
/// <see cref="Oci.CheckpointImageWriter.ManifestAnnotation"/>): the manifest as the source node wrote it, MAC included,
/// base64 of its JSON, with <see cref="ManifestDocument.Pinned"/> cleared (pinning is the source node's business and
/// not MAC-covered; leaving it in would change the image's digest with every pin). A node that shares the key checks
/// the MAC as its own store would (<see cref="Manifests.Authenticity"/>), and the MAC covers the archive's digest.
/// </summary>
internal static class TravellingManifest
{
    /// <summary>The longest encoded manifest accepted: manifests are a few hundred bytes of JSON.</summary>
    public const int MaxEncodedLength = 64 << 10;

    /// <summary>The encoded manifest of <paramref name="c"/>; null when it carries no MAC (nothing another node could check).</summary>
    public static string? Encode(CheckpointInfo c)
    {
        if (c.Mac is null || c.MacKeyId is null) return null;
        var doc = new ManifestDocument
        {
            FormatVersion = c.FormatVersion,
            Id = c.Id,
            Namespace = c.Namespace,
            Workload = c.Workload,
            Container = c.Container,
            PodName = c.PodName,
            PodUid = c.PodUid,
            NodeName = c.NodeName,
            Archive = new ManifestArchive
            {
                Compression = Manifests.CompressionName(c.Compression),
                CompressionLevel = c.CompressionLevel,
                Digest = c.Digest,
                Size = c.Size,
                UncompressedDigest = c.UncompressedDigest,
                UncompressedSize = c.UncompressedSize,
            },
            Source = Manifests.FromFacts(c.Archive),
            Owner = Manifests.FromOwner(c.Owner),
            Reason = c.Reason,
            CreatedAt = c.CreatedAt,
            CrscVersion = c.CrscVersion,
            Pinned = false,
            MacKeyId = c.MacKeyId,
            Mac = c.Mac,
        };
        return Convert.ToBase64String(Manifests.Serialize(doc));
    }

    /// <summary>The manifest <paramref name="encoded"/> holds, checked as the store checks its own manifests.</summary>
    /// <exception cref="InvalidDataException">not base64 of a manifest, or a manifest the store would not read (names why)</exception>
    /// <exception cref="NotSupportedException">a manifest format this crsc does not know</exception>
    public static ManifestDocument Decode(string encoded)
    {
        if (encoded.Length > MaxEncodedLength)
            throw new InvalidDataException($"the checkpoint manifest is {encoded.Length} characters, more than the {MaxEncodedLength} one can be");
        byte[] json;
        try { json = Convert.FromBase64String(encoded); }
        catch (FormatException) { throw new InvalidDataException("the checkpoint manifest is not base64"); }
        var doc = Manifests.Parse(json, null, null, null, null);
        if (!StoreNames.IsLabel(doc.Namespace) || !StoreNames.IsSubdomain(doc.Workload) || !StoreNames.IsLabel(doc.Container) || !StoreNames.IsId(doc.Id))
            throw new InvalidDataException(
                $"the checkpoint manifest names {doc.Namespace}/{doc.Workload}/{doc.Container}/{doc.Id}, which is not a valid place in a store");
        if (doc.Pinned) throw new InvalidDataException("the checkpoint manifest says it is pinned; a travelling manifest never is");
        return doc;
    }

    /// <summary>Text for messages: where the manifest says the checkpoint is from.</summary>
    public static string Describe(ManifestDocument doc) =>
        new StringBuilder().Append($"checkpoint {doc.Namespace}/{doc.Workload}/{doc.Container}/{doc.Id}")
            .Append(doc.NodeName is { } node ? $" of node {node}" : "").ToString();
}

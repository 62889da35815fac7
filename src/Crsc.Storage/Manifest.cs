using System.Text.Json;
using System.Text.Json.Serialization;
using Crsc.Api.Archives;
using Crsc.Controllers.Storage;
using Crsc.Storage.Security;

namespace Crsc.Storage;

/// <summary>
/// The on-disk manifest <c>&lt;id&gt;.json</c> beside each archive. Its presence is the commit record: an archive without
/// one is not a checkpoint. Versioned; a reader refuses versions it does not know. Format 2 adds <see cref="Owner"/>;
/// format 1 (no owner) is still read, and its MAC checked over format 1's fields.
/// </summary>
internal sealed class ManifestDocument
{
    public const int CurrentFormatVersion = 3;
    /// <summary>The first format with <see cref="Owner"/>.</summary>
    public const int OwnerFormatVersion = 2;
    /// <summary>The first format that records why the checkpoint was taken (<see cref="Reason"/>).</summary>
    public const int ReasonFormatVersion = 3;
    public const int OldestFormatVersion = 1;

    public int FormatVersion { get; set; }
    public string Kind { get; set; } = StoreManifest.Kind;
    public string Id { get; set; } = "";
    public string Namespace { get; set; } = "";
    public string Workload { get; set; } = "";
    public string Container { get; set; } = "";
    public string? PodName { get; set; }
    public string? PodUid { get; set; }
    public string? NodeName { get; set; }
    public ManifestArchive Archive { get; set; } = new();
    public ManifestSource Source { get; set; } = new();
    /// <summary>The ContainerCheckpoint the archive was taken for (format 2); absent when there was none.</summary>
    public ManifestOwner? Owner { get; set; }
    /// <summary>Why the checkpoint was taken (format 3 on); null when not said.</summary>
    public string? Reason { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public string CrscVersion { get; set; } = "";
    public bool Pinned { get; set; }
    /// <summary>Which key made <see cref="Mac"/> (<see cref="NodeKey.Id"/>); absent in manifests of older crsc.</summary>
    public string? MacKeyId { get; set; }
    /// <summary>HMAC-SHA256 (hex) of every field but <see cref="Pinned"/> and the MAC itself: see <see cref="Manifests.ComputeMac"/>.</summary>
    public string? Mac { get; set; }
}

internal sealed class ManifestArchive
{
    /// <summary><c>none</c> or <c>zstd</c>.</summary>
    public string Compression { get; set; } = "none";
    public int? CompressionLevel { get; set; }
    public string Digest { get; set; } = "";
    public long Size { get; set; }
    public string UncompressedDigest { get; set; } = "";
    public long UncompressedSize { get; set; }
}

internal sealed class ManifestOwner
{
    public string Kind { get; set; } = "";
    public string Namespace { get; set; } = "";
    public string Name { get; set; } = "";
    /// <summary>Null for an offline run: the object is created later, by the outbox.</summary>
    public string? Uid { get; set; }
    /// <summary><c>online</c> or <c>offline</c>.</summary>
    public string Origin { get; set; } = "";
}

internal sealed class ManifestSource
{
    public string? RuntimeContainerId { get; set; }
    public string? ContainerName { get; set; }
    public string? PodName { get; set; }
    public string? PodNamespace { get; set; }
    public string? PodUid { get; set; }
    public string? ImageName { get; set; }
    public string? ImageRef { get; set; }
    public string? ImageId { get; set; }
    public string? Runtime { get; set; }
    public DateTimeOffset? ContainerCreatedAt { get; set; }
    public DateTimeOffset? CheckpointedAt { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true)]
[JsonSerializable(typeof(ManifestDocument))]
internal sealed partial class StorageJsonContext : JsonSerializerContext;

internal static class Manifests
{
    public static string CompressionName(CheckpointCompression c) => c switch
    {
        CheckpointCompression.None => "none",
        CheckpointCompression.Zstd => "zstd",
        _ => throw new ArgumentOutOfRangeException(nameof(c), c, null),
    };

    public static string ArchiveExtension(CheckpointCompression c) => c == CheckpointCompression.Zstd ? ".tar.zst" : ".tar";

    public static byte[] Serialize(ManifestDocument doc) => JsonSerializer.SerializeToUtf8Bytes(doc, StorageJsonContext.Default.ManifestDocument);

    /// <summary>
    /// Parses and checks a manifest against where it was found (null place: a manifest that travelled with an image and
    /// has no place yet); throws <see cref="InvalidDataException"/> naming the problem.
    /// </summary>
    public static ManifestDocument Parse(ReadOnlySpan<byte> json, string? ns, string? workload, string? container, string? id)
    {
        ManifestDocument? doc;
        try { doc = JsonSerializer.Deserialize(json, StorageJsonContext.Default.ManifestDocument); }
        catch (JsonException e) { throw new InvalidDataException($"not a valid manifest: {e.Message}", e); }
        if (doc is null) throw new InvalidDataException("the manifest is empty");
        if (doc.Kind != StoreManifest.Kind) throw new InvalidDataException($"unknown manifest kind '{doc.Kind}'");
        if (doc.FormatVersion is < ManifestDocument.OldestFormatVersion or > ManifestDocument.CurrentFormatVersion)
            throw new NotSupportedException($"manifest format version {doc.FormatVersion} is not supported (this crsc reads versions {ManifestDocument.OldestFormatVersion} to {ManifestDocument.CurrentFormatVersion})");
        if (id is not null && (doc.Id != id || doc.Namespace != ns || doc.Workload != workload || doc.Container != container))
            throw new InvalidDataException($"the manifest describes {doc.Namespace}/{doc.Workload}/{doc.Container}/{doc.Id}, not the place it is in");
        if (doc.Archive.Compression is not ("none" or "zstd")) throw new InvalidDataException($"unknown compression '{doc.Archive.Compression}'");
        if (!IsDigest(doc.Archive.Digest) || !IsDigest(doc.Archive.UncompressedDigest)) throw new InvalidDataException("the manifest's digests are not sha256 digests");
        if (doc.Archive.Size < 0 || doc.Archive.UncompressedSize < 0) throw new InvalidDataException("the manifest's sizes are negative");
        // an owner in a format 1 manifest was added by someone else (format 1 has none): never read, and the MAC says Invalid
        if (doc.Owner is { } owner && doc.FormatVersion >= ManifestDocument.OwnerFormatVersion)
        {
            if (owner.Kind != CheckpointOwner.ContainerCheckpointKind)
                throw new InvalidDataException($"unknown owner kind '{owner.Kind}' (an archive is owned by a {CheckpointOwner.ContainerCheckpointKind})");
            if (owner.Namespace != doc.Namespace)
                throw new InvalidDataException($"the owner {owner.Namespace}/{owner.Name} is not in the checkpoint's namespace {doc.Namespace}");
            if (!StoreNames.IsSubdomain(owner.Name)) throw new InvalidDataException($"the owner's name '{owner.Name}' is not a DNS-1123 subdomain");
            if (owner.Uid is not null && !StoreNames.IsUid(owner.Uid)) throw new InvalidDataException($"the owner's uid '{owner.Uid}' is not a UID");
            if (ParseOrigin(owner.Origin) is null) throw new InvalidDataException($"unknown owner origin '{owner.Origin}'");
        }
        if (doc.Reason is { } reason && doc.FormatVersion >= ManifestDocument.ReasonFormatVersion && !CheckpointReasons.IsValid(reason))
            throw new InvalidDataException($"the checkpoint reason '{reason}' is not an UpperCamelCase word");
        return doc;
    }

    public static string OriginName(CheckpointOrigin origin) => origin switch
    {
        CheckpointOrigin.Online => "online",
        CheckpointOrigin.Offline => "offline",
        _ => throw new ArgumentOutOfRangeException(nameof(origin), origin, null),
    };

    private static CheckpointOrigin? ParseOrigin(string? origin) => origin switch
    {
        "online" => CheckpointOrigin.Online,
        "offline" => CheckpointOrigin.Offline,
        _ => null,
    };

    public static ManifestOwner? FromOwner(CheckpointOwner? owner) => owner is null ? null : new ManifestOwner
    {
        Kind = owner.Kind,
        Namespace = owner.Namespace,
        Name = owner.Name,
        Uid = owner.Uid,
        Origin = OriginName(owner.Origin),
    };

    private static CheckpointOwner? ToOwner(ManifestOwner? owner) =>
        owner is null ? null : new CheckpointOwner(owner.Namespace, owner.Name, owner.Uid, ParseOrigin(owner.Origin) ?? CheckpointOrigin.Online);

    public static CheckpointCompression Compression(ManifestDocument doc) =>
        doc.Archive.Compression == "zstd" ? CheckpointCompression.Zstd : CheckpointCompression.None;

    private static bool IsDigest(string? d) =>
        d is { Length: 71 } && d.StartsWith("sha256:", StringComparison.Ordinal) && d.AsSpan(7).ContainsAnyExcept("0123456789abcdef") == false;

    /// <summary>The purpose the manifest MAC key is derived for (<see cref="NodeKey.Derive"/>).</summary>
    public const string MacPurpose = "crsc archive mac v1";

    /// <summary>
    /// The MAC of <paramref name="doc"/>: every field a reader acts on, in a fixed order and an unambiguous encoding
    /// (<see cref="MacWriter"/>). <see cref="ManifestDocument.Pinned"/> is left out on purpose: it only keeps retention
    /// from deleting the checkpoint, says nothing about what the archive is, and pinning or unpinning must work for a
    /// manifest whatever its MAC (re-signing on a pin change would turn an unsigned or foreign manifest into a trusted one).
    /// Format 1 covers exactly the fields it had; format 2 adds the owner after them. The format version is the first
    /// field covered, so a format 2 manifest passed off as format 1 (its owner removed) does not verify.
    /// </summary>
    public static string ComputeMac(ManifestDocument doc, byte[] macKey)
    {
        using var w = new MacWriter(macKey, "crsc checkpoint manifest");
        w.Add(doc.FormatVersion).Add(doc.Kind).Add(doc.Id).Add(doc.Namespace).Add(doc.Workload).Add(doc.Container)
            .Add(doc.PodName).Add(doc.PodUid).Add(doc.NodeName);
        var a = doc.Archive;
        w.Add(a.Compression).Add(a.CompressionLevel).Add(a.Digest).Add(a.Size).Add(a.UncompressedDigest).Add(a.UncompressedSize);
        var s = doc.Source;
        w.Add(s.RuntimeContainerId).Add(s.ContainerName).Add(s.PodName).Add(s.PodNamespace).Add(s.PodUid)
            .Add(s.ImageName).Add(s.ImageRef).Add(s.ImageId).Add(s.Runtime).Add(s.ContainerCreatedAt).Add(s.CheckpointedAt);
        w.Add(doc.CreatedAt).Add(doc.CrscVersion).Add(doc.MacKeyId);
        if (doc.FormatVersion >= ManifestDocument.OwnerFormatVersion)
        {
            // a presence mark first: "no owner" and an owner are never the same bytes
            if (doc.Owner is not { } o) w.Add((string?)null);
            else w.Add("owner").Add(o.Kind).Add(o.Namespace).Add(o.Name).Add(o.Uid).Add(o.Origin);
        }
        // format 3 adds the reason after the owner
        if (doc.FormatVersion >= ManifestDocument.ReasonFormatVersion) w.Add("reason").Add(doc.Reason);
        return w.ToHex();
    }

    /// <summary>Signs <paramref name="doc"/> with <paramref name="key"/>; without a key the manifest stays unsigned.</summary>
    public static void Sign(ManifestDocument doc, NodeKey? key)
    {
        if (key is null)
        {
            doc.MacKeyId = null;
            doc.Mac = null;
            return;
        }
        doc.MacKeyId = key.Id;
        doc.Mac = ComputeMac(doc, key.Derive(MacPurpose));
    }

    /// <summary>How far <paramref name="key"/> vouches for <paramref name="doc"/>.</summary>
    public static CheckpointAuthenticity Authenticity(ManifestDocument doc, NodeKey? key)
    {
        if (doc.Mac is null && doc.MacKeyId is null) return CheckpointAuthenticity.Unsigned;
        if (key is null) return CheckpointAuthenticity.Unchecked;
        if (doc.MacKeyId != key.Id) return NodeKey.IsId(doc.MacKeyId) ? CheckpointAuthenticity.OtherKey : CheckpointAuthenticity.Invalid;
        if (doc.FormatVersion < ManifestDocument.OwnerFormatVersion && doc.Owner is not null) return CheckpointAuthenticity.Invalid;
        return MacWriter.Same(ComputeMac(doc, key.Derive(MacPurpose)), doc.Mac) ? CheckpointAuthenticity.Verified : CheckpointAuthenticity.Invalid;
    }

    public static CheckpointInfo ToInfo(ManifestDocument doc, string archivePath, NodeKey? key) => ToInfo(doc, archivePath) with
    {
        Authenticity = Authenticity(doc, key),
        MacKeyId = doc.MacKeyId,
        Mac = doc.Mac,
    };

    private static CheckpointInfo ToInfo(ManifestDocument doc, string archivePath) => new()
    {
        FormatVersion = doc.FormatVersion,
        Id = doc.Id,
        Namespace = doc.Namespace,
        Workload = doc.Workload,
        Container = doc.Container,
        PodName = doc.PodName,
        PodUid = doc.PodUid,
        NodeName = doc.NodeName,
        Archive = new ArchiveFacts
        {
            RuntimeContainerId = doc.Source.RuntimeContainerId,
            ContainerName = doc.Source.ContainerName,
            PodName = doc.Source.PodName,
            PodNamespace = doc.Source.PodNamespace,
            PodUid = doc.Source.PodUid,
            ImageName = doc.Source.ImageName,
            ImageRef = doc.Source.ImageRef,
            ImageId = doc.Source.ImageId,
            Runtime = doc.Source.Runtime,
            ContainerCreatedAt = doc.Source.ContainerCreatedAt,
            CheckpointedAt = doc.Source.CheckpointedAt,
        },
        Compression = Compression(doc),
        CompressionLevel = doc.Archive.CompressionLevel,
        Digest = doc.Archive.Digest,
        Size = doc.Archive.Size,
        UncompressedDigest = doc.Archive.UncompressedDigest,
        UncompressedSize = doc.Archive.UncompressedSize,
        CreatedAt = doc.CreatedAt,
        CrscVersion = doc.CrscVersion,
        Pinned = doc.Pinned,
        Owner = doc.FormatVersion >= ManifestDocument.OwnerFormatVersion ? ToOwner(doc.Owner) : null,
        Reason = doc.FormatVersion >= ManifestDocument.ReasonFormatVersion ? doc.Reason : null,
        ArchivePath = archivePath,
    };

    public static ManifestSource FromFacts(ArchiveFacts f) => new()
    {
        RuntimeContainerId = f.RuntimeContainerId,
        ContainerName = f.ContainerName,
        PodName = f.PodName,
        PodNamespace = f.PodNamespace,
        PodUid = f.PodUid,
        ImageName = f.ImageName,
        ImageRef = f.ImageRef,
        ImageId = f.ImageId,
        Runtime = f.Runtime,
        ContainerCreatedAt = f.ContainerCreatedAt,
        CheckpointedAt = f.CheckpointedAt,
    };
}

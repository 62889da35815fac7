using System.Runtime.InteropServices;
using Crsc.Api.Archives;
using Crsc.Controllers.Storage;

namespace Crsc.Storage.Oci;

/// <summary>An OCI content descriptor: what a manifest says about a blob.</summary>
public sealed record OciDescriptor(string MediaType, string Digest, long Size);

/// <summary>
/// The checkpoint image of one committed checkpoint: a manifest, a small config, and ONE layer that is the stored
/// archive itself (no copy). <see cref="ManifestBytes"/> and <see cref="ConfigBytes"/> are exactly the bytes their
/// descriptors' digests and sizes describe.
/// </summary>
public sealed record CheckpointImage
{
    public required string CheckpointId { get; init; }
    /// <summary><c>crsc/&lt;ns&gt;/&lt;workload&gt;/&lt;container&gt;</c>.</summary>
    public required string Repository { get; init; }
    /// <summary>The checkpoint id.</summary>
    public required string Tag { get; init; }
    public required OciDescriptor Manifest { get; init; }
    public required byte[] ManifestBytes { get; init; }
    public required OciDescriptor Config { get; init; }
    public required byte[] ConfigBytes { get; init; }
    /// <summary>The stored archive: digest and size of the bytes on disk (compressed when the archive is).</summary>
    public required OciDescriptor Layer { get; init; }
    /// <summary>The annotations of the manifest (also the config's labels), ordinal order.</summary>
    public required IReadOnlyList<KeyValuePair<string, string>> Annotations { get; init; }
}

/// <summary>The platform written into image configs: that of the node that checkpointed (images are not portable across architectures).</summary>
public sealed record CheckpointImagePlatform(string Os, string Architecture)
{
    /// <summary>This machine, in Go's names (what runtimes match image configs against).</summary>
    public static CheckpointImagePlatform Current { get; } = new("linux", GoArchitecture(RuntimeInformation.OSArchitecture));

    public static string GoArchitecture(System.Runtime.InteropServices.Architecture a) => a switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "amd64",
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        System.Runtime.InteropServices.Architecture.Arm => "arm",
        System.Runtime.InteropServices.Architecture.X86 => "386",
        System.Runtime.InteropServices.Architecture.S390x => "s390x",
        System.Runtime.InteropServices.Architecture.Ppc64le => "ppc64le",
        System.Runtime.InteropServices.Architecture.RiscV64 => "riscv64",
        System.Runtime.InteropServices.Architecture.LoongArch64 => "loong64",
        _ => a.ToString().ToLowerInvariant(),
    };
}

/// <summary>
/// Writes the OCI checkpoint image of a committed checkpoint (DESIGN.md §3). The runtime's archive is already a layer
/// tar with its files at <c>/</c> (<c>checkpoint/</c>, <c>config.dump</c>, <c>spec.dump</c>, …), which is exactly what
/// CRI-O and containerd mount and read when they restore from an image; so the layer is the stored blob as it is:
/// <see cref="OciMediaTypes.LayerTar"/> or <see cref="OciMediaTypes.LayerTarZstd"/>, digest = the stored digest,
/// diff_id = the uncompressed digest, both computed once at ingestion. Only the config and the manifest are written
/// (a few hundred bytes). Deterministic: the same checkpoint gives the same bytes, hence the same manifest digest
/// (fixed member order, annotations in ordinal order, times from the checkpoint, never the clock).
/// </summary>
public static class CheckpointImageWriter
{
    /// <summary>
    /// crsc's own: the checkpoint's store manifest as its node wrote it, MAC included (base64 of its JSON; absent when
    /// the manifest has no MAC). A node that shares the key checks it when it fetches the image
    /// (<see cref="CheckpointImageFetcher"/>); the MAC covers the archive's digest, which is the layer's.
    /// </summary>
    public const string ManifestAnnotation = "io.crsc.checkpoint.manifest";

    /// <exception cref="CheckpointImageException">the checkpoint lacks a fact a runtime needs, or its manifest is inconsistent</exception>
    public static CheckpointImage Write(CheckpointInfo checkpoint, CheckpointImagePlatform? platform = null)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        platform ??= CheckpointImagePlatform.Current;
        var id = checkpoint.Id;
        if (!StoreNames.IsId(id)) throw new CheckpointImageException(id ?? "", $"checkpoint id '{id}' is not a store id");
        string repository;
        try { repository = CheckpointImageNames.Repository(checkpoint); }
        catch (InvalidCheckpointNameException e) { throw new CheckpointImageException(id, $"checkpoint {id}: {e.Message}", e); }
        var layer = Layer(checkpoint);
        if (!OciDigest.IsSha256(checkpoint.UncompressedDigest))
            throw new CheckpointImageException(id, $"checkpoint {id}: uncompressed digest '{checkpoint.UncompressedDigest}' is not a sha256 digest");
        if (checkpoint.UncompressedSize <= 0)
            throw new CheckpointImageException(id, $"checkpoint {id}: uncompressed size {checkpoint.UncompressedSize} is not positive");
        if (checkpoint.Compression == CheckpointCompression.None
            && (checkpoint.Digest != checkpoint.UncompressedDigest || checkpoint.Size != checkpoint.UncompressedSize))
            throw new CheckpointImageException(id,
                $"checkpoint {id} is uncompressed but records two digests or sizes ({checkpoint.Digest} {checkpoint.Size}, {checkpoint.UncompressedDigest} {checkpoint.UncompressedSize})");
        // both runtimes restore into the checkpoint's base image (config.dump rootfsImageName/rootfsImageRef): without
        // it no runtime can restore the image, so none is made
        if (string.IsNullOrWhiteSpace(checkpoint.Archive.ImageName))
            throw new CheckpointImageException(id,
                $"checkpoint {id} records no base image ({ConfigDumpFields.RootfsImageName} of {CheckpointArchiveLayout.ConfigDump}): a runtime could not restore it, so crsc makes no image of it");
        if (string.IsNullOrEmpty(platform.Os) || string.IsNullOrEmpty(platform.Architecture))
            throw new ArgumentException($"platform '{platform.Os}/{platform.Architecture}' is incomplete", nameof(platform));

        var created = OciJson.Rfc3339(checkpoint.Archive.CheckpointedAt ?? checkpoint.CreatedAt);
        var annotations = AnnotationsOf(checkpoint, platform, created);
        var config = ConfigJson(checkpoint, platform, created, annotations);
        var configDescriptor = new OciDescriptor(OciMediaTypes.ImageConfig, OciDigest.Of(config), config.Length);
        // the top-level manifest's annotations: where containerd (org.criu.checkpoint.container.name) and CRI-O
        // (io.kubernetes.cri-o.annotations.checkpoint.name) look to tell a checkpoint image from any other
        var manifest = OciJson.Manifest(configDescriptor, [layer], annotations);
        return new CheckpointImage
        {
            CheckpointId = id,
            Repository = repository,
            Tag = id,
            Manifest = new OciDescriptor(OciMediaTypes.ImageManifest, OciDigest.Of(manifest), manifest.Length),
            ManifestBytes = manifest,
            Config = configDescriptor,
            ConfigBytes = config,
            Layer = layer,
            Annotations = annotations,
        };
    }

    private static OciDescriptor Layer(CheckpointInfo c)
    {
        if (!OciDigest.IsSha256(c.Digest))
            throw new CheckpointImageException(c.Id, $"checkpoint {c.Id}: digest '{c.Digest}' is not a sha256 digest");
        if (c.Size <= 0) throw new CheckpointImageException(c.Id, $"checkpoint {c.Id}: size {c.Size} is not positive");
        var mediaType = c.Compression switch
        {
            CheckpointCompression.None => OciMediaTypes.LayerTar,
            CheckpointCompression.Zstd => OciMediaTypes.LayerTarZstd,
            _ => throw new CheckpointImageException(c.Id, $"checkpoint {c.Id}: compression '{c.Compression}' has no OCI layer media type"),
        };
        return new OciDescriptor(mediaType, c.Digest, c.Size);
    }

    private static List<KeyValuePair<string, string>> AnnotationsOf(CheckpointInfo c, CheckpointImagePlatform platform, string created)
    {
        var a = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            [CheckpointImageAnnotations.CriOCheckpointName] = c.Container,
            [CheckpointImageAnnotations.CheckpointName] = c.Container,
            [CheckpointImageAnnotations.PodNamespace] = c.Namespace,
            [CheckpointImageAnnotations.RootfsImageName] = c.Archive.ImageName!,
            [CheckpointImageAnnotations.HostArch] = platform.Architecture,
            [CheckpointImageAnnotations.Created] = created,
            [CheckpointImageAnnotations.CrscCheckpointId] = c.Id,
            [CheckpointImageAnnotations.CrscWorkload] = c.Workload,
        };
        Optional(CheckpointImageAnnotations.PodName, c.PodName ?? c.Archive.PodName);
        Optional(CheckpointImageAnnotations.RootfsImageId, c.Archive.ImageId);
        Optional(CheckpointImageAnnotations.RuntimeName, c.Archive.Runtime);
        Optional(CheckpointImageAnnotations.CrscNode, c.NodeName);
        Optional(ManifestAnnotation, TravellingManifest.Encode(c));
        return [.. a];

        void Optional(string key, string? value)
        {
            if (!string.IsNullOrEmpty(value)) a[key] = value;
        }
    }

    private static byte[] ConfigJson(CheckpointInfo c, CheckpointImagePlatform platform, string created,
        List<KeyValuePair<string, string>> labels) =>
        OciJson.Config(new OciImageConfig
        {
            Created = created,
            Platform = platform,
            Labels = labels,
            // containerd checks the unpacked layer against it and derives the snapshot it mounts for the restore from it
            DiffIds = [c.UncompressedDigest],
            History = [new OciHistory(created, $"crsc checkpoint {c.Namespace}/{c.Workload}/{c.Container} {c.Id}",
                "the CRI checkpoint archive as the runtime wrote it")],
        });
}

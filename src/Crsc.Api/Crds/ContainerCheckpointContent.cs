using Crsc.Api.Kubernetes;

namespace Crsc.Api.Crds;

/// <summary>
/// The archive of a checkpoint (<c>ckptc</c>, cluster-scoped), as <c>VolumeSnapshotContent</c> is to a
/// <c>VolumeSnapshot</c>: where it is, what it holds, how it is stored, and when it goes.
/// </summary>
public sealed class ContainerCheckpointContent : IKubernetesObject
{
    public const string KindName = "ContainerCheckpointContent";

    public string? ApiVersion { get; set; } = CrscApi.GroupVersion;
    public string? Kind { get; set; } = KindName;
    public ObjectMeta Metadata { get; set; } = new();
    public ContainerCheckpointContentSpec Spec { get; set; } = new();
    public ContainerCheckpointContentStatus? Status { get; set; }
}

public sealed class ContainerCheckpointContentSpec
{
    public const int MaxPathLength = 4096;
    public const int MaxImageLength = 1024;

    /// <summary>The node whose store holds the archive.</summary>
    public string Node { get; set; } = "";
    /// <summary>Absolute path of the archive in that node's store.</summary>
    public string Path { get; set; } = "";
    /// <summary><c>sha256:&lt;64 hex&gt;</c> of the archive as stored.</summary>
    public string Digest { get; set; } = "";
    public long SizeBytes { get; set; }
    public ArchiveCompression Compression { get; set; } = ArchiveCompression.None;
    public ArchiveEncryption? Encryption { get; set; }
    /// <summary>The checkpoint OCI image, once published (<c>registry/repo@sha256:…</c> or <c>…:tag</c>).</summary>
    public string? ImageReference { get; set; }
    public CheckpointSource Source { get; set; } = new();
    public DeletionPolicy DeletionPolicy { get; set; } = DeletionPolicy.Delete;
    /// <summary>The <see cref="ContainerCheckpoint"/> this content belongs to.</summary>
    public NamespacedObjectReference CheckpointRef { get; set; } = new();

    public IReadOnlyList<FieldError> Validate()
    {
        var errors = new List<FieldError>();
        Check.Name(errors, "spec.node", Node);
        Check.Required(errors, "spec.path", Path);
        if (Path.Length > 0 && (Path[0] != '/' || Path.Length > MaxPathLength))
            errors.Add(new FieldError("spec.path", $"must be an absolute path of at most {MaxPathLength} characters"));
        Check.DigestValue(errors, "spec.digest", Digest);
        Check.Range(errors, "spec.sizeBytes", SizeBytes, 0, long.MaxValue);
        Check.Defined(errors, "spec.compression", Compression);
        if (Encryption is not null)
        {
            Check.Defined(errors, "spec.encryption.algorithm", Encryption.Algorithm);
            Check.MaxLength(errors, "spec.encryption.keyId", Encryption.KeyId, ArchiveEncryption.MaxKeyIdLength);
            if (Encryption.Algorithm != EncryptionAlgorithm.None && string.IsNullOrEmpty(Encryption.KeyId))
                errors.Add(new FieldError("spec.encryption", "keyId is required when the archive is encrypted"));
        }
        Check.MaxLength(errors, "spec.imageReference", ImageReference, MaxImageLength);
        Check.Label(errors, "spec.source.namespace", Source.Namespace);
        Check.Name(errors, "spec.source.pod", Source.Pod);
        Check.MaxLength(errors, "spec.source.podUid", Source.PodUid, 128);
        Check.Label(errors, "spec.source.container", Source.Container);
        Check.MaxLength(errors, "spec.source.image", Source.Image, MaxImageLength);
        Check.MaxLength(errors, "spec.source.imageId", Source.ImageId, MaxImageLength);
        Check.Defined(errors, "spec.deletionPolicy", DeletionPolicy);
        Check.Label(errors, "spec.checkpointRef.namespace", CheckpointRef.Namespace);
        Check.Name(errors, "spec.checkpointRef.name", CheckpointRef.Name);
        Check.MaxLength(errors, "spec.checkpointRef.uid", CheckpointRef.Uid, 128);
        return errors;
    }
}

/// <summary>How the archive is encrypted. The key itself is never in the API, only which one.</summary>
public sealed class ArchiveEncryption
{
    public const int MaxKeyIdLength = 256;

    public EncryptionAlgorithm Algorithm { get; set; } = EncryptionAlgorithm.None;
    /// <summary>Names the key (in the node's configuration) that decrypts the archive.</summary>
    public string? KeyId { get; set; }
}

/// <summary>What was checkpointed, as the runtime recorded it in the archive.</summary>
public sealed class CheckpointSource
{
    public string Namespace { get; set; } = "";
    public string Pod { get; set; } = "";
    public string? PodUid { get; set; }
    public string Container { get; set; } = "";
    /// <summary>The container's image as the pod names it (the base image a restore needs).</summary>
    public string? Image { get; set; }
    /// <summary>The runtime's image ID (digest) of that image.</summary>
    public string? ImageId { get; set; }
}

public sealed class ContainerCheckpointContentStatus : IHasConditions
{
    public const int MaxCopies = 16;

    /// <summary>
    /// Where the archive is besides <see cref="ContainerCheckpointContentSpec.Node"/>'s store: the nodes that fetched it
    /// (to restore it there) and the registry it was replicated to. Each copy was verified (digest and MAC) when made.
    /// </summary>
    public List<CheckpointCopy>? Copies { get; set; }
    public List<Condition>? Conditions { get; set; }
}

public enum CheckpointCopyKind
{
    /// <summary>In another node's store, served by that node's image endpoint.</summary>
    Node,
    /// <summary>In the registry crsc is configured with (<c>replicate: registry</c>).</summary>
    Registry,
}

/// <summary>One more place a checkpoint's archive is, as a checkpoint image.</summary>
public sealed class CheckpointCopy
{
    public CheckpointCopyKind Kind { get; set; }
    /// <summary>The node whose store holds the copy (<see cref="CheckpointCopyKind.Node"/>), or the node that pushed it.</summary>
    public string? Node { get; set; }
    /// <summary>The copy as a checkpoint image (<c>host/repo@sha256:…</c>).</summary>
    public string ImageReference { get; set; } = "";
    public DateTimeOffset? CopiedAt { get; set; }
}

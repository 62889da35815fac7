namespace Crsc.Controllers.Storage;

/// <summary>
/// The node's checkpoint archive store (DESIGN.md §4). Archives are written by the container runtime into
/// <see cref="StagingDirectory"/>, then ingested: validated, hashed, optionally compressed and committed
/// atomically with a manifest. A reader never sees a half-written archive. Implemented on disk by
/// Crsc.Storage's <c>DiskCheckpointStore</c>.
/// </summary>
public interface ICheckpointStore
{
    /// <summary>Where the runtime writes in-flight archives; never listed as checkpoints.</summary>
    string StagingDirectory { get; }

    /// <summary>A fresh, unused path inside <see cref="StagingDirectory"/> for the runtime to write an archive to.</summary>
    /// <exception cref="InvalidCheckpointNameException">a name of <paramref name="source"/> is not valid</exception>
    string NewStagingPath(CheckpointedContainer source);

    /// <summary>
    /// Validates the archive at <paramref name="stagedArchivePath"/> (a CRI checkpoint tar), streams it once through
    /// SHA-256 and the chosen compression into the store and commits it with its manifest.
    /// </summary>
    /// <param name="progress">uncompressed bytes read so far</param>
    /// <exception cref="ArchiveRejectedException">the archive is not an acceptable checkpoint (names the entry)</exception>
    /// <exception cref="InvalidCheckpointNameException">a name of <paramref name="source"/> is not valid</exception>
    Task<CheckpointInfo> IngestAsync(string stagedArchivePath, CheckpointedContainer source, IngestOptions options,
        IProgress<long>? progress, CancellationToken ct);

    /// <summary>Committed checkpoints matching <paramref name="filter"/>, newest first.</summary>
    IReadOnlyList<CheckpointInfo> List(CheckpointFilter? filter = null);

    /// <summary>The committed checkpoint with that id, or null.</summary>
    CheckpointInfo? Get(string id);

    /// <summary>
    /// The committed checkpoints whose manifest records the ContainerCheckpoint <paramref name="namespace"/>/<paramref name="name"/>
    /// with UID <paramref name="uid"/> as their owner (<see cref="CheckpointInfo.Owner"/>), newest first. The UID is part
    /// of the match: null finds only archives recorded without one (offline runs, whose object did not exist yet), a UID
    /// only archives recorded with that UID — an object deleted and created again under the same name owns none of the
    /// old one's archives. Archives without an owner (manifest format 1, <c>crsc checkpoint</c>) are never returned.
    /// </summary>
    /// <exception cref="InvalidCheckpointNameException"><paramref name="namespace"/> is not a valid namespace</exception>
    IReadOnlyList<CheckpointInfo> FindByOwner(string @namespace, string name, string? uid);

    /// <summary>
    /// The archive as the runtime wrote it (uncompressed tar). Both digests are checked while streaming: reading to the
    /// end throws <see cref="CheckpointCorruptException"/> when the bytes differ from the manifest.
    /// </summary>
    /// <exception cref="CheckpointNotFoundException">no committed checkpoint has that id</exception>
    Task<Stream> OpenReadAsync(string id, CancellationToken ct);

    /// <summary>The stored bytes (compressed when the archive is), checked against the stored digest at the end.</summary>
    /// <exception cref="CheckpointNotFoundException">no committed checkpoint has that id</exception>
    Task<Stream> OpenStoredAsync(string id, CancellationToken ct);

    /// <summary>Reads the whole archive and checks sizes and digests.</summary>
    /// <exception cref="CheckpointNotFoundException">no committed checkpoint has that id</exception>
    Task<VerificationResult> VerifyAsync(string id, CancellationToken ct);

    /// <summary>Pins (retention never deletes it) or unpins a checkpoint; the manifest is rewritten atomically.</summary>
    /// <exception cref="CheckpointNotFoundException">no committed checkpoint has that id</exception>
    Task<CheckpointInfo> SetPinnedAsync(string id, bool pinned, CancellationToken ct);

    /// <summary>Deletes a checkpoint (manifest first, then the archive). False when there was none.</summary>
    bool Delete(string id);

    /// <summary>Applies retention rules and the global quota, or only reports what would go (<see cref="RetentionRequest.DryRun"/>).</summary>
    RetentionResult ApplyRetention(RetentionRequest request);

    /// <summary>
    /// Removes what a crash left behind: staging leftovers, temp files, archives without a committed manifest and
    /// manifests without an archive. Run at start, before the store is used.
    /// </summary>
    RecoveryReport Recover();
}

/// <summary>Finds the checkpoint of this node's store an image reference names (the node side of a restore checks it).</summary>
public interface ICheckpointImageLookup
{
    /// <summary>
    /// The checkpoint whose image <paramref name="imageReference"/> is (repository <c>crsc/&lt;ns&gt;/&lt;workload&gt;/&lt;container&gt;</c>
    /// on any host, by the checkpoint id as tag or by the image's manifest digest), whatever its authenticity; null when
    /// the reference names no checkpoint of this node's store.
    /// </summary>
    CheckpointInfo? FindByImage(string imageReference);
}

public enum CheckpointCompression
{
    None,
    Zstd,
}

/// <summary>
/// The container an archive is of, as the cluster names it: what the store files the archive under and checks the archive
/// against (not the CRD's <see cref="Crsc.Api.Crds.CheckpointSource"/>, a Content's record of pod and image). Every name
/// is validated before it touches a path.
/// </summary>
/// <param name="Namespace">a DNS-1123 label</param>
/// <param name="Workload">the owning workload (Deployment, StatefulSet, or the pod itself); a DNS-1123 subdomain</param>
/// <param name="Container">a DNS-1123 label</param>
public sealed record CheckpointedContainer(string Namespace, string Workload, string Container)
{
    public string? PodName { get; init; }
    public string? PodUid { get; init; }
    /// <summary>The ContainerCheckpoint the archive is taken for; recorded in (and MAC-covered by) its manifest. Null: none (<c>crsc checkpoint</c>).</summary>
    public CheckpointOwner? Owner { get; init; }
    /// <summary>Why the checkpoint is taken (<see cref="CheckpointReasons"/>); recorded in (and MAC-covered by) its manifest. Null: not said.</summary>
    public string? Reason { get; init; }
}

/// <summary>
/// Why a checkpoint was taken, as its manifest records it (<see cref="CheckpointInfo.Reason"/>): the node going away is
/// worth telling apart from a schedule's run when choosing what to restore after it.
/// </summary>
public static class CheckpointReasons
{
    /// <summary>The node was cordoned for a drain, or carries a disruption/termination taint.</summary>
    public const string NodeDrain = "NodeDrain";
    /// <summary>logind announced a shutdown or reboot (<c>PrepareForShutdown(true)</c>).</summary>
    public const string NodeShutdown = "NodeShutdown";

    /// <summary>A reason as the manifest may carry it: an UpperCamelCase word of letters and digits, at most 64 characters.</summary>
    public static bool IsValid(string? reason) =>
        reason is { Length: > 0 and <= 64 } && char.IsAsciiLetterUpper(reason[0]) && !reason.AsSpan().ContainsAnyExcept(Alphanumerics);

    private static readonly System.Buffers.SearchValues<char> Alphanumerics =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
}

/// <summary>How the run that stored an archive was started.</summary>
public enum CheckpointOrigin
{
    /// <summary>A ContainerCheckpoint executed by the node agent while the API server was reachable: its UID is known.</summary>
    Online,
    /// <summary>A schedule's run while the API server was unreachable: the object is created later by the outbox, so no UID.</summary>
    Offline,
}

/// <summary>
/// The ContainerCheckpoint an archive belongs to, as the run that stored it knew it: its namespace (the checkpointed
/// pod's), name, UID (null for an <see cref="CheckpointOrigin.Offline"/> run) and how the run started.
/// </summary>
public sealed record CheckpointOwner(string Namespace, string Name, string? Uid, CheckpointOrigin Origin)
{
    /// <summary>The kind of object that owns archives (the only one so far).</summary>
    public const string ContainerCheckpointKind = "ContainerCheckpoint";

    public string Kind => ContainerCheckpointKind;

    /// <summary>Whether this owner is the object <paramref name="ns"/>/<paramref name="name"/> with exactly <paramref name="uid"/> (see <see cref="ICheckpointStore.FindByOwner"/>).</summary>
    public bool Is(string ns, string name, string? uid) =>
        string.Equals(Namespace, ns, StringComparison.Ordinal) && string.Equals(Name, name, StringComparison.Ordinal)
        && string.Equals(Uid, uid, StringComparison.Ordinal);
}

public sealed record IngestOptions
{
    /// <summary>Null: the store's default.</summary>
    public CheckpointCompression? Compression { get; init; }
    /// <summary>zstd level; null: the store's default.</summary>
    public int? CompressionLevel { get; init; }
    public bool Pinned { get; init; }
    /// <summary>Delete the staged archive once the checkpoint is committed (it is kept when ingestion fails).</summary>
    public bool RemoveStaged { get; init; } = true;

    /// <summary>
    /// The file the caller checked at that path (an archive outside the staging area, e.g. the kubelet's): the store
    /// refuses to ingest unless the file it opens is this one, so the bytes stored are those of the checked file.
    /// </summary>
    public FileIdentity? ExpectedFile { get; init; }

    public static IngestOptions Default { get; } = new();
}

/// <summary>Which file a path named when it was looked at: its device and inode numbers.</summary>
public readonly record struct FileIdentity(ulong Device, ulong Inode)
{
    public override string ToString() => $"device {Device >> 32}:{Device & 0xFFFFFFFF}, inode {Inode}";
}

/// <summary>Facts read from the archive's <c>config.dump</c> and <c>spec.dump</c> (CRI-O / containerd layout).</summary>
public sealed record ArchiveFacts
{
    /// <summary>The runtime's container id (<c>config.dump</c> <c>id</c>).</summary>
    public string? RuntimeContainerId { get; init; }
    /// <summary>The container name (annotation <c>io.kubernetes.container.name</c>, else <c>config.dump</c> <c>name</c>).</summary>
    public string? ContainerName { get; init; }
    public string? PodName { get; init; }
    public string? PodNamespace { get; init; }
    public string? PodUid { get; init; }
    /// <summary>The image name the container was created from (<c>rootfsImageName</c>).</summary>
    public string? ImageName { get; init; }
    /// <summary>The resolved image reference (<c>rootfsImageRef</c>).</summary>
    public string? ImageRef { get; init; }
    /// <summary>The image ID (<c>rootfsImage</c>).</summary>
    public string? ImageId { get; init; }
    /// <summary>The OCI runtime (<c>runtime</c>), e.g. runc or crun.</summary>
    public string? Runtime { get; init; }
    public DateTimeOffset? ContainerCreatedAt { get; init; }
    public DateTimeOffset? CheckpointedAt { get; init; }
}

/// <summary>One committed checkpoint, as its manifest records it.</summary>
public sealed record CheckpointInfo
{
    public required int FormatVersion { get; init; }
    public required string Id { get; init; }
    public required string Namespace { get; init; }
    public required string Workload { get; init; }
    public required string Container { get; init; }
    public string? PodName { get; init; }
    public string? PodUid { get; init; }
    public string? NodeName { get; init; }
    public required ArchiveFacts Archive { get; init; }
    public required CheckpointCompression Compression { get; init; }
    public int? CompressionLevel { get; init; }
    /// <summary><c>sha256:…</c> of the stored bytes (the OCI blob digest).</summary>
    public required string Digest { get; init; }
    public required long Size { get; init; }
    /// <summary><c>sha256:…</c> of the uncompressed tar (the OCI diff_id); equals <see cref="Digest"/> when uncompressed.</summary>
    public required string UncompressedDigest { get; init; }
    public required long UncompressedSize { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required string CrscVersion { get; init; }
    public bool Pinned { get; init; }
    /// <summary>The ContainerCheckpoint the archive was taken for; null for manifests of format 1 and checkpoints taken without one.</summary>
    public CheckpointOwner? Owner { get; init; }
    /// <summary>Why it was taken (<see cref="CheckpointReasons"/>); null for manifests before format 3 and checkpoints taken without one.</summary>
    public string? Reason { get; init; }
    /// <summary>Where the archive is (for tools such as checkpointctl); never taken from the manifest itself.</summary>
    public required string ArchivePath { get; init; }
    /// <summary>Whether this node's key vouches for the manifest (its MAC), decided when the manifest was read.</summary>
    public CheckpointAuthenticity Authenticity { get; init; }
    /// <summary>The id of the key whose MAC the manifest carries; null when it carries none.</summary>
    public string? MacKeyId { get; init; }
    /// <summary>
    /// The MAC the manifest carries (hex), as written: what lets another node that shares the key check the manifest
    /// when the checkpoint travels as an image. Null when it carries none.
    /// </summary>
    public string? Mac { get; init; }

    /// <summary>Why the checkpoint is not to be trusted, in words naming the failed check; null when it is <see cref="CheckpointAuthenticity.Verified"/>.</summary>
    public string? AuthenticityProblem => Authenticity switch
    {
        CheckpointAuthenticity.Verified => null,
        CheckpointAuthenticity.Unsigned => $"the manifest of checkpoint {Id} carries no MAC (written by a crsc without manifest MACs, or the MAC was removed)",
        CheckpointAuthenticity.Invalid => $"the MAC of checkpoint {Id}'s manifest does not verify (invalid MAC): the manifest was changed after crsc wrote it",
        CheckpointAuthenticity.OtherKey => $"the manifest of checkpoint {Id} is signed by key id {MacKeyId}, not by this node's key",
        _ => $"the MAC of checkpoint {Id}'s manifest was not checked (no node key at hand)",
    };
}

/// <summary>
/// How far a checkpoint's manifest can be believed: crsc writes an HMAC-SHA256 of every field that matters (with a key
/// derived from the node key) into each manifest, and checks it whenever a manifest is read.
/// </summary>
public enum CheckpointAuthenticity
{
    /// <summary>Not checked: the reader has no key (e.g. a CLI that cannot read the node key).</summary>
    Unchecked,
    /// <summary>The MAC verifies with this node's key.</summary>
    Verified,
    /// <summary>No MAC: written by an older crsc, or the MAC was stripped.</summary>
    Unsigned,
    /// <summary>A MAC of this node's key that does not verify: the manifest was tampered with.</summary>
    Invalid,
    /// <summary>A MAC of another key (<see cref="CheckpointInfo.MacKeyId"/>): written by a node this one shares no key with.</summary>
    OtherKey,
}

public sealed record CheckpointFilter(string? Namespace = null, string? Workload = null, string? Container = null);

public sealed record VerificationResult(string Id, bool Valid, string? Problem);

/// <summary>
/// The store's retention rules for a workload's archives (<c>crsc gc</c>); null fields do not limit. Not the CRD's
/// <see cref="Crsc.Api.Crds.RetentionPolicy"/>, which a schedule applies to its ContainerCheckpoints.
/// </summary>
public sealed record StoreRetention(int? KeepLast = null, TimeSpan? MaxAge = null, long? MaxBytes = null);

public readonly record struct WorkloadRef(string Namespace, string Workload);

public sealed record RetentionRequest
{
    /// <summary>Rules for workloads that have none of their own.</summary>
    public StoreRetention Default { get; init; } = new();
    public IReadOnlyDictionary<WorkloadRef, StoreRetention> PerWorkload { get; init; } = new Dictionary<WorkloadRef, StoreRetention>();
    /// <summary>Store-wide byte quota; the oldest eligible checkpoints go first.</summary>
    public long? GlobalMaxBytes { get; init; }
    public bool DryRun { get; init; }
}

public enum RetentionReason
{
    KeepLast,
    MaxAge,
    MaxBytes,
    GlobalQuota,
}

public sealed record RetentionDeletion(CheckpointInfo Checkpoint, RetentionReason Reason);

/// <param name="QuotaSatisfied">false when pinned or only-good checkpoints alone exceed the global quota</param>
public sealed record RetentionResult(bool DryRun, IReadOnlyList<RetentionDeletion> Deleted, long BytesFreed,
    long BytesRemaining, bool QuotaSatisfied);

public enum RecoveryReason
{
    StagingLeftover,
    TempFile,
    ArchiveWithoutManifest,
    ManifestWithoutArchive,
    CorruptManifest,
}

public sealed record RecoveredItem(string Path, RecoveryReason Reason);

public sealed record RecoveryReport(IReadOnlyList<RecoveredItem> Removed, IReadOnlyList<string> Warnings)
{
    public bool Clean => Removed.Count == 0 && Warnings.Count == 0;
}

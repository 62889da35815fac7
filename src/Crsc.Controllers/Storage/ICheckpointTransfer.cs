namespace Crsc.Controllers.Storage;

/// <summary>
/// Brings a checkpoint that another node took into this node's store (Step 14: <c>crsc.io/restore-from</c>, restores
/// on another node, a lost node's workloads restored from their replicas). The daemon implements it with the
/// checkpoint image fetcher: the image is read from a peer node's image endpoint or from the registry, its archive
/// streamed into the store and checked (digest, size, and the store manifest's MAC) before it becomes visible; a
/// transfer that fails leaves nothing behind.
/// </summary>
public interface ICheckpointTransfer
{
    /// <summary>
    /// Copies the checkpoint image <see cref="CheckpointTransferRequest.ImageReference"/> into this node's store and
    /// returns the image reference this node's own endpoint serves it under. When the store already holds the
    /// checkpoint (by its id) nothing is fetched and <see cref="CheckpointTransferResult.AlreadyPresent"/> is true.
    /// </summary>
    /// <param name="progress">told the bytes of the archive received so far</param>
    /// <exception cref="CheckpointTransferException">the image could not be fetched or was refused (names why)</exception>
    Task<CheckpointTransferResult> FetchAsync(CheckpointTransferRequest request, IProgress<long>? progress, CancellationToken ct);
}

/// <param name="ImageReference">The checkpoint image to copy: <c>host[:port]/repository@sha256:…</c> or <c>…:tag</c>.</param>
/// <param name="FromPeer">True when the image is served by another crsc node's endpoint (crsc's pull tokens
/// authenticate the call); false for a registry (its configured credentials).</param>
/// <param name="CheckpointId">The store id the checkpoint is expected to have (the Content's <c>crsc.io/archive-id</c>), when known:
/// a manifest naming another id is refused.</param>
public sealed record CheckpointTransferRequest(string ImageReference, bool FromPeer, string? CheckpointId = null);

/// <param name="LocalImageReference">The checkpoint image as this node's endpoint serves it (what its runtime pulls).</param>
/// <param name="CheckpointId">The checkpoint's id in this node's store.</param>
/// <param name="SizeBytes">The archive's size.</param>
/// <param name="AlreadyPresent">The store held it already: nothing was transferred.</param>
public sealed record CheckpointTransferResult(string LocalImageReference, string CheckpointId, long SizeBytes, bool AlreadyPresent);

/// <summary>A transfer that did not happen: <see cref="Refused"/> when what arrived was wrong (digest, MAC, size, a
/// redirect to a host not allowed), false when the source could not be reached or answered with an error.</summary>
public sealed class CheckpointTransferException(string imageReference, string message, bool refused, Exception? inner = null)
    : Exception(message, inner)
{
    public string ImageReference { get; } = imageReference;
    public bool Refused { get; } = refused;
}

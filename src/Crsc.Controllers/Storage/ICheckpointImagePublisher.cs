namespace Crsc.Controllers.Storage;

/// <summary>
/// Makes a committed checkpoint pullable as an OCI checkpoint image (DESIGN.md §3 "Checkpoint images"): from the node's
/// embedded read-only endpoint, or from a registry after a push. The node's ContainerCheckpoint reconciler calls it
/// after a successful ingestion and records the result in <c>ContainerCheckpointContent.spec.imageReference</c>.
/// </summary>
public interface ICheckpointImagePublisher
{
    /// <summary>
    /// The image reference a container runtime can pull (<c>host:port/repository@sha256:…</c>), or null when checkpoint
    /// images are off on this node.
    /// </summary>
    /// <exception cref="CheckpointImageException">the checkpoint cannot be made into an image (names the missing fact)</exception>
    Task<string?> PublishAsync(CheckpointInfo checkpoint, CancellationToken ct);
}

/// <summary>A checkpoint cannot become an OCI image: a fact a runtime needs to restore it is missing or malformed.</summary>
public sealed class CheckpointImageException(string checkpointId, string message, Exception? inner = null)
    : CheckpointStoreException(message, inner)
{
    public string CheckpointId { get; } = checkpointId;
}

namespace Crsc.Controllers.Storage;

/// <summary>
/// Where a schedule with <c>replicate: Registry</c> copies its checkpoints besides the node's store: the registry crsc
/// is configured with (<c>images.registry</c> with <c>images.registryMode: replicate</c>). The daemon implements it with
/// the registry client; the node agent's <see cref="Replication.CheckpointReplicator"/> pushes, and the checkpoint
/// finalizer deletes what was pushed when retention lets a checkpoint go.
/// </summary>
public interface ICheckpointReplicaTarget
{
    /// <summary>The registry as configured (<c>host[:port][/prefix]</c>), for messages.</summary>
    string Registry { get; }

    /// <summary>Pushes the checkpoint's image and returns its reference, <c>host[:port]/repository@sha256:…</c>.</summary>
    /// <exception cref="CheckpointImageException">the checkpoint cannot be made into an image</exception>
    /// <exception cref="Exception">the push failed (the message names registry, repository and the registry's error)</exception>
    Task<string> PushAsync(CheckpointInfo checkpoint, CancellationToken ct);

    /// <summary>Whether <paramref name="imageReference"/> is an image by digest in this registry (one this target can delete).</summary>
    bool Holds(string imageReference);

    /// <summary>Deletes the manifest <paramref name="imageReference"/> names (by its digest).</summary>
    /// <exception cref="ArgumentException">the reference is not one this target <see cref="Holds"/></exception>
    /// <exception cref="Exception">the registry could not be reached or answered an error other than those of
    /// <see cref="ReplicaDeletion"/></exception>
    Task<ReplicaDeletion> DeleteAsync(string imageReference, CancellationToken ct);
}

/// <summary>What became of a replica's manifest asked to be deleted.</summary>
public enum ReplicaDeletion
{
    /// <summary>The registry deleted it.</summary>
    Deleted,
    /// <summary>It was not there (deleted before, or by someone else).</summary>
    AlreadyGone,
    /// <summary>The registry does not delete manifests (405: deletes disabled), or not for crsc's credentials.</summary>
    NotAllowed,
}

using Crsc.Controllers.Storage;

namespace Crsc.Controllers.NodeAgent;

/// <summary>One container to checkpoint on this node. <see cref="Container"/> null = the pod's only (app) container.</summary>
public sealed record CheckpointRequest(string Namespace, string Pod, string? Container)
{
    /// <summary>
    /// The ContainerCheckpoint this execution belongs to, when there is one: recorded in the archive's manifest, so the
    /// store can say which archive belongs to the object (<see cref="ICheckpointStore.FindByOwner"/>).
    /// </summary>
    public CheckpointOwner? Owner { get; init; }
    /// <summary>The name of <see cref="Owner"/>.</summary>
    public string? CheckpointObjectName => Owner?.Name;
    /// <summary>Why the checkpoint is taken (<see cref="CheckpointReasons"/>), recorded in its manifest; null: not said.</summary>
    public string? Reason { get; init; }
    /// <summary>Overrides the node's default per-checkpoint timeout.</summary>
    public TimeSpan? Timeout { get; init; }
}

/// <summary>A step of a running checkpoint, for progress output (<c>crsc checkpoint</c>) and logs.</summary>
public sealed record CheckpointProgress(string Stage, string Message, long? Bytes = null);

/// <summary>The result of one executed checkpoint: the committed archive and what each part cost.</summary>
public sealed record CheckpointOutcome(
    CheckpointInfo Checkpoint,
    string Node,
    string ContainerId,
    TimeSpan RuntimeTime,
    TimeSpan TotalTime);

/// <summary>
/// The node's checkpoint execution path, shared by the ContainerCheckpoint reconciler, schedules and the node
/// API (<c>crsc checkpoint</c>): find the container through the runtime, checkpoint it into staging, ingest the
/// archive into the store. Works without an API server. Concurrency-limited per node.
/// </summary>
public interface ICheckpointRunner
{
    /// <exception cref="Crsc.Controllers.Runtime.ContainerRuntimeException">the runtime failed (message and CRIU log excerpt kept)</exception>
    /// <exception cref="CheckpointStoreException">the archive was refused or could not be stored</exception>
    Task<CheckpointOutcome> CheckpointAsync(CheckpointRequest request, IProgress<CheckpointProgress>? progress, CancellationToken ct);
}

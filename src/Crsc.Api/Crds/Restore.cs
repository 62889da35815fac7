using Crsc.Api.Kubernetes;

namespace Crsc.Api.Crds;

/// <summary>
/// Restores a workload's container from a checkpoint, in place (<c>rst</c>). Created by the pod
/// reconciler on a failure or by a user (<c>crsc restore</c>); the spec cannot change once created. With
/// <see cref="RestoreMode.Migration"/> (<c>crsc migrate</c>) it moves a running pod with its memory instead.
/// </summary>
public sealed class Restore : IKubernetesObject
{
    public const string KindName = "Restore";

    public string? ApiVersion { get; set; } = CrscApi.GroupVersion;
    public string? Kind { get; set; } = KindName;
    public ObjectMeta Metadata { get; set; } = new();
    public RestoreSpec Spec { get; set; } = new();
    public RestoreStatus? Status { get; set; }
}

public enum RestoreTargetKind { Deployment, Pod }

public sealed class RestoreTarget
{
    public RestoreTargetKind Kind { get; set; }
    public string Name { get; set; } = "";
}

/// <summary>What a Restore does with its pod.</summary>
public enum RestoreMode
{
    /// <summary>Restores the pod's container in place from an existing checkpoint (same pod, same node).</summary>
    InPlace,
    /// <summary>
    /// Moves a running pod with its memory: checkpoints it now, replaces it (the ReplicaSet's replacement of a Deployment
    /// pod, or the bare pod made again under its name) on <see cref="RestoreSpec.TargetNode"/> or where the scheduler puts
    /// it, and follows the in-place Restore the target node makes there (<c>crsc.io/restore-from</c>). Target kind Pod only.
    /// </summary>
    Migration,
}

/// <summary>What to do when the restore keeps failing.</summary>
public enum RestoreFallback
{
    /// <summary>Put the original image back: the application starts fresh, without its state.</summary>
    ColdStart,
    /// <summary>Stop and leave the pod as it is, for a person to look at.</summary>
    Fail,
}

public sealed class RestoreSpec
{
    public const int DefaultMaxAttempts = 3;
    public const int MaxMaxAttempts = 10;

    public RestoreTarget Target { get; set; } = new();
    /// <summary>The container to restore; empty means the workload's only container besides crsc's sidecar.</summary>
    public string? Container { get; set; }
    /// <summary>The <see cref="ContainerCheckpoint"/> to restore from; empty means the latest completed one.</summary>
    public string? CheckpointName { get; set; }
    public RestoreFallback Fallback { get; set; } = RestoreFallback.ColdStart;
    public int MaxAttempts { get; set; } = DefaultMaxAttempts;
    /// <summary>InPlace (absent: the default) or Migration.</summary>
    public RestoreMode? Mode { get; set; }
    /// <summary>Migration only: the node the pod moves to; empty means where the scheduler puts the replacement.</summary>
    public string? TargetNode { get; set; }

    /// <summary>Whether this Restore is a <see cref="RestoreMode.Migration"/> (the migration reconciler's, not the restore reconciler's).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsMigration => Mode == RestoreMode.Migration;

    public IReadOnlyList<FieldError> Validate()
    {
        var errors = new List<FieldError>();
        Check.Defined(errors, "spec.target.kind", Target.Kind);
        Check.Name(errors, "spec.target.name", Target.Name);
        Check.Label(errors, "spec.container", Container, required: false);
        Check.Name(errors, "spec.checkpointName", CheckpointName, required: false);
        Check.Defined(errors, "spec.fallback", Fallback);
        Check.Range(errors, "spec.maxAttempts", MaxAttempts, 1, MaxMaxAttempts);
        if (Mode is { } mode) Check.Defined(errors, "spec.mode", mode);
        Check.Name(errors, "spec.targetNode", TargetNode, required: false);
        if (TargetNode is not null && !IsMigration)
            errors.Add(new FieldError("spec.targetNode", "is only allowed with spec.mode Migration"));
        if (IsMigration && Target.Kind != RestoreTargetKind.Pod)
            errors.Add(new FieldError("spec.target.kind", $"must be Pod with spec.mode Migration (a migration moves one pod), is {Target.Kind}"));
        return errors;
    }
}

public enum RestorePhase { Pending, Restoring, Restored, Failed, FellBack }

/// <summary>Condition types of a <see cref="Restore"/> besides the common ones.</summary>
public static class RestoreConditions
{
    /// <summary>
    /// Set by the crsc node agent of the pod's node: True once the base image and the checkpoint image are in its
    /// runtime, False when they cannot be pulled (message: the runtime's), Unknown while pulling.
    /// </summary>
    public const string ImagesReady = "ImagesReady";

    /// <summary>
    /// Set by the leader: True when the pod's node said (in its CheckpointNode) that its runtime cannot restore; the
    /// message names the node, the runtime and version, and the setting that turns restore on. The fallback applied.
    /// </summary>
    public const string RuntimeCannotRestore = "RuntimeCannotRestore";

    /// <summary>
    /// Set by the leader for a Restore that waits for its pod's replacement: True (reason <c>Restricted</c>) when the
    /// replacement was kept off the nodes that cannot restore, False when it could not be (<c>NoNodeCanRestore</c>: every
    /// node it could run on cannot restore, so the replacement was let go to any node).
    /// </summary>
    public const string ReplacementPlacement = "ReplacementPlacement";
}

public sealed class RestoreStatus : IHasConditions
{
    /// <summary>The longest <see cref="SourcePod"/> kept (the schema's maxLength): a bigger bare pod is not migrated.</summary>
    public const int MaxSourcePodLength = 262144;

    public long? ObservedGeneration { get; set; }
    public RestorePhase? Phase { get; set; }
    /// <summary>Restore attempts made so far (at most <see cref="RestoreSpec.MaxAttempts"/>).</summary>
    public int? Attempts { get; set; }
    /// <summary>The checkpoint chosen (the spec's, or the latest completed one).</summary>
    public string? CheckpointName { get; set; }
    /// <summary>The pod being restored in place.</summary>
    public string? PodName { get; set; }
    /// <summary>The UID of <see cref="PodName"/>: a pod made again under the same name is another pod.</summary>
    public string? PodUid { get; set; }
    /// <summary>The node <see cref="PodName"/> runs on (whose crsc prepares the images).</summary>
    public string? Node { get; set; }
    /// <summary>The checkpoint image the container is restored from (the checkpoint's published image).</summary>
    public string? Image { get; set; }
    /// <summary>The container's own image, the base the checkpoint was taken from; <c>ColdStart</c> puts it back.</summary>
    public string? OriginalImage { get; set; }
    /// <summary>
    /// The restored container instance when the Restore turned Restored (its containerID and the restart count the
    /// kubelet reported for it): a later restart of that container is a new failure, not crsc's own doing.
    /// </summary>
    public string? RestoredContainerId { get; set; }
    /// <summary>The container's restart count when it was Restored (see <see cref="RestoredContainerId"/>).</summary>
    public int? RestoredRestartCount { get; set; }
    /// <summary>When the pod was patched to <see cref="Image"/> in the current attempt; empty until then.</summary>
    public DateTimeOffset? PatchedAt { get; set; }
    /// <summary>When the current wait began (for a running pod, the checkpoint's image, the node's images).</summary>
    public DateTimeOffset? WaitingSince { get; set; }
    public string? Message { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }
    /// <summary>When each step of the restore happened, from the failure to the restored container running.</summary>
    public RestoreTimeline? Timeline { get; set; }
    public List<Condition>? Conditions { get; set; }

    // ---- Migration ----

    /// <summary>
    /// Migration: how long the pod's application was away, as a Go duration (<c>4s</c>, <c>1m12s</c>): from the source
    /// container's stop (<see cref="RestoreTimeline.SourceStoppedAt"/>) to the restored container running
    /// (<see cref="RestoreTimeline.RunningAt"/>). Both are the API's second-precision times; the source's "last request
    /// served" is approximated by its container's stop.
    /// </summary>
    public string? Downtime { get; set; }
    /// <summary>Migration: the UID of the pod moved (the one named by the target when the migration started).</summary>
    public string? SourcePodUid { get; set; }
    /// <summary>Migration: the node the pod ran on.</summary>
    public string? SourceNode { get; set; }
    /// <summary>Migration of a Deployment's pod: the ReplicaSet whose replacement pod is restored.</summary>
    public string? ReplicaSet { get; set; }
    /// <summary>
    /// Migration of a bare pod: its labels, annotations and spec as JSON (a <c>PodTemplateSpec</c>), kept before it is
    /// deleted so that it can be made again under its name.
    /// </summary>
    public string? SourcePod { get; set; }
    /// <summary>Migration: the pod that replaces the source and is restored from the checkpoint.</summary>
    public string? ReplacementPod { get; set; }
    /// <summary>Migration: the UID of <see cref="ReplacementPod"/>.</summary>
    public string? ReplacementPodUid { get; set; }
    /// <summary>Migration: the in-place Restore the replacement's node made for it (<c>crsc.io/restore-from</c>).</summary>
    public string? InPlaceRestore { get; set; }
}

/// <summary>
/// The phases of a restore as timestamps (the current attempt's for the patch and later), so that where the time goes
/// from a container's death to its restored process running can be read off one object.
/// </summary>
public sealed class RestoreTimeline
{
    /// <summary>The failure showed in the pod's status (from the failure detector; absent for Restores made by hand).</summary>
    public DateTimeOffset? FailedAt { get; set; }
    /// <summary>Migration: the checkpoint of the running pod completed.</summary>
    public DateTimeOffset? CheckpointedAt { get; set; }
    /// <summary>Migration: the source pod was deleted (after its checkpoint).</summary>
    public DateTimeOffset? SourceDeletedAt { get; set; }
    /// <summary>
    /// Migration: the source container stopped — its <c>state.terminated.finishedAt</c> when the pod status showed it,
    /// else when crsc saw the pod gone.
    /// </summary>
    public DateTimeOffset? SourceStoppedAt { get; set; }
    /// <summary>The checkpoint was chosen (its image named).</summary>
    public DateTimeOffset? CheckpointChosenAt { get; set; }
    /// <summary>The node reported both images present (ImagesReady True seen).</summary>
    public DateTimeOffset? ImagesReadyAt { get; set; }
    /// <summary>The pod was patched to the checkpoint image.</summary>
    public DateTimeOffset? PatchedAt { get; set; }
    /// <summary>The restored container started (its <c>state.running.startedAt</c>, the node's clock).</summary>
    public DateTimeOffset? RunningAt { get; set; }
    /// <summary>The Restore turned Restored.</summary>
    public DateTimeOffset? RestoredAt { get; set; }
}

using Crsc.Api.Kubernetes;

namespace Crsc.Api.Crds;

/// <summary>
/// Restores a workload's container from a checkpoint, in place (<c>rst</c>). Created by the pod
/// reconciler on a failure or by a user (<c>crsc restore</c>); the spec cannot change once created.
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

    public IReadOnlyList<FieldError> Validate()
    {
        var errors = new List<FieldError>();
        Check.Defined(errors, "spec.target.kind", Target.Kind);
        Check.Name(errors, "spec.target.name", Target.Name);
        Check.Label(errors, "spec.container", Container, required: false);
        Check.Name(errors, "spec.checkpointName", CheckpointName, required: false);
        Check.Defined(errors, "spec.fallback", Fallback);
        Check.Range(errors, "spec.maxAttempts", MaxAttempts, 1, MaxMaxAttempts);
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
}

/// <summary>
/// The phases of a restore as timestamps (the current attempt's for the patch and later), so that where the time goes
/// from a container's death to its restored process running can be read off one object.
/// </summary>
public sealed class RestoreTimeline
{
    /// <summary>The failure showed in the pod's status (from the failure detector; absent for Restores made by hand).</summary>
    public DateTimeOffset? FailedAt { get; set; }
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

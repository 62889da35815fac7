namespace Crsc.Api.Crds;

/// <summary>
/// The annotations and labels crsc's reconcilers agree on (workloads, schedules, checkpoints, restores). Stable:
/// users, tooling and the other reconcilers select by them. One constant a line; add yours in its group.
/// </summary>
public static class CrscAnnotations
{
    // --- on Deployments (users set them) ---

    /// <summary><c>"true"</c> on a Deployment: crsc manages it (a schedule, automatic restore on failure).</summary>
    public const string CheckpointRestore = Annotations.CheckpointRestore;
    /// <summary>Time between checkpoints of a managed Deployment (Go duration or plain seconds).</summary>
    public const string CheckpointInterval = Annotations.CheckpointInterval;
    /// <summary>What <see cref="CheckpointInterval"/> means when it is absent.</summary>
    public const string DefaultCheckpointInterval = "10m";

    // --- labels on the objects crsc creates ---

    /// <summary>On ContainerCheckpoints a schedule created: the schedule's name.</summary>
    public const string ScheduleLabel = "crsc.io/schedule";
    /// <summary>On ContainerCheckpoints and Restores: the workload (Deployment, StatefulSet or pod) they are of.</summary>
    public const string WorkloadLabel = "crsc.io/workload";
    /// <summary>On ContainerCheckpoints: the container checkpointed.</summary>
    public const string ContainerLabel = "crsc.io/container";

    // --- on Restores made by the pod reconciler ---

    /// <summary>The pod whose failure the Restore answers.</summary>
    public const string FailedPod = "crsc.io/failed-pod";

    // --- on Restores a user creates ---

    /// <summary>
    /// <c>"true"</c>: the node may restore from an archive its key cannot vouch for (no MAC, or another key's); one whose
    /// MAC does not verify, or that is of another workload, is refused all the same (<c>crsc restore --allow-unauthenticated</c>).
    /// </summary>
    public const string AllowUnauthenticated = "crsc.io/allow-unauthenticated";

    // --- on pods the Restore reconciler restores in place ---

    /// <summary>The Restore that is restoring (or restored) this pod.</summary>
    public const string Restore = "crsc.io/restore";
    /// <summary>The ContainerCheckpoint the pod was restored from.</summary>
    public const string RestoredFrom = "crsc.io/restored-from";
    /// <summary><c>&lt;container&gt;=&lt;image&gt;</c>: the image before the restore patched it.</summary>
    public const string OriginalImage = "crsc.io/original-image";
    /// <summary>
    /// The container the restore's patch replaced, as the API server held its status when it took the patch (JSON:
    /// container, containerID, restartCount, state). Only a later container, or the checkpoint image, is the restored one.
    /// </summary>
    public const string ReplacedContainer = "crsc.io/replaced-container";
}

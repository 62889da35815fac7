using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Restores;
using Crsc.Controllers.Schedules;

namespace Crsc.Controllers.Workloads;

/// <summary>
/// What the two reconcilers that restore a replacement pod from a checkpoint of a pod that went with its node
/// (<see cref="NodeAwayRestoreReconciler"/>: drain, shutdown; <see cref="NodeLostRestoreReconciler"/>: a lost node) read
/// alike: a workload's checkpoints, whether a checkpoint is in use, and whether a pod may still be restored.
/// </summary>
internal static class ReplacementRestores
{
    private const string CheckpointsByWorkload = "crsc.io/checkpoints-by-workload";
    private const string RestoresByCheckpoint = "crsc.io/restores-by-checkpoint";

    /// <summary>Keeps the indexes the methods here read (once per informer).</summary>
    public static void Index(Informer<Pod> pods, Informer<ContainerCheckpoint> checkpoints, Informer<Restore> restores)
    {
        pods.TryAddIndexer(RestoreReconciler.PodsByDeploymentIndex, RestorePods.DeploymentKeys);
        RestoreFromRequest.Index(pods);
        checkpoints.TryAddIndexer(CheckpointsByWorkload, c => c.Metadata.Labels?.GetValueOrDefault(Labels.Workload) is { Length: > 0 } w
            ? [$"{c.Metadata.Namespace}/{w}"] : []);
        restores.TryAddIndexer(RestoresByCheckpoint, r => r.Spec.CheckpointName is { Length: > 0 } c ? [$"{r.Metadata.Namespace}/{c}"] : []);
    }

    /// <summary>The Deployment's Completed checkpoints, not being deleted, that tell when they were taken.</summary>
    public static IEnumerable<ContainerCheckpoint> Completed(Informer<ContainerCheckpoint> checkpoints, string ns, string deployment) =>
        checkpoints.ByIndex(CheckpointsByWorkload, $"{ns}/{ScheduleNames.LabelValue(deployment)}")
            .Where(c => c.Status?.Phase == ContainerCheckpointPhase.Completed && c.Metadata.DeletionTimestamp is null && TakenAt(c) is not null);

    /// <summary>The pods of the Deployment (ReplicaSet-owned).</summary>
    public static IReadOnlyList<Pod> PodsOf(Informer<Pod> pods, string ns, string deployment) =>
        pods.ByIndex(RestoreReconciler.PodsByDeploymentIndex, $"{ns}/{deployment}");

    /// <summary>When a checkpoint was taken: its start, else its completion, else its object's creation.</summary>
    public static DateTimeOffset? TakenAt(ContainerCheckpoint c) =>
        c.Status?.StartedAt ?? c.Status?.CompletedAt ?? c.Metadata.CreationTimestamp;

    /// <summary>Newest first (by when taken, then by name).</summary>
    public static IOrderedEnumerable<ContainerCheckpoint> NewestFirst(IEnumerable<ContainerCheckpoint> checkpoints) =>
        checkpoints.OrderByDescending(TakenAt).ThenByDescending(c => c.Metadata.Name, StringComparer.Ordinal);

    /// <summary>In use (by crsc or a person): a Restore names the checkpoint, or a live pod's <c>crsc.io/restore-from</c>.</summary>
    public static bool Used(Informer<Restore> restores, Informer<Pod> pods, string ns, string checkpoint) =>
        restores.ByIndex(RestoresByCheckpoint, $"{ns}/{checkpoint}").Count > 0 || RestoreFromRequest.Claimed(pods, ns, checkpoint);

    /// <summary>
    /// The pod runs a checkpoint image already, a Restore is at work on it, or it is to be restored from a checkpoint
    /// already (its <c>crsc.io/restore-from</c>).
    /// </summary>
    public static bool RestoredOrAsked(Pod p)
    {
        var annotations = p.Metadata.Annotations;
        return annotations?.GetValueOrDefault(Annotations.RestoredFrom) is { Length: > 0 }
               || annotations?.GetValueOrDefault(Annotations.Restore) is { Length: > 0 }
               || RestoreFromRequest.Of(p) is not null;
    }
}

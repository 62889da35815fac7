using System.Globalization;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Schedules;

namespace Crsc.Controllers.Restores;

internal enum CheckpointChoiceKind
{
    /// <summary>A checkpoint with a pullable image.</summary>
    Found,
    /// <summary>Not yet: the checkpoint is unfinished, or its image is not published yet.</summary>
    Wait,
    /// <summary>Nothing of this version of the app to restore from: the fallback applies.</summary>
    NoneUsable,
    /// <summary>The spec names a checkpoint that cannot be used at all: the restore fails.</summary>
    Invalid,
}

internal sealed record CheckpointChoice(CheckpointChoiceKind Kind, string Message, ContainerCheckpoint? Checkpoint = null,
    string? Image = null);

/// <summary>
/// Picks the checkpoint of a restore: the one the spec names, or the latest <c>Completed</c> one of the workload's
/// container whose base image (its Content's <c>spec.source.image</c>) is the pod's own image. A checkpoint of another
/// image is of another version of the app (a user's rollout) and is never restored into this one. When none is usable
/// the message says why, from the workload's checkpoints in the API: none was ever taken, the last ones failed (with the
/// runtime's message), some are not finished, or the completed ones are of another image.
/// </summary>
/// <param name="nodeGone">whether a node is gone (cannot serve its checkpoints); null when that cannot be told</param>
internal sealed class CheckpointChooser(Informer<Pod> pods, Informer<ContainerCheckpoint> checkpoints,
    Informer<ContainerCheckpointContent> contents, Func<string, bool>? nodeGone = null)
{
    public CheckpointChoice Choose(Restore restore, Pod pod, string container, string baseImage)
    {
        var ns = restore.Metadata.Namespace!;
        if (restore.Spec.CheckpointName is { } named) return Named(ns, named, container, baseImage, pod);

        var workload = restore.Spec.Target.Kind == RestoreTargetKind.Deployment
            ? $"Deployment {restore.Spec.Target.Name}"
            : $"pod {restore.Spec.Target.Name}";
        var candidates = checkpoints.List()
            .Where(c => c.Metadata.Namespace == ns && c.Status?.Phase == ContainerCheckpointPhase.Completed
                && c.Spec.Container == container && BelongsTo(c, restore, pod, container))
            .OrderByDescending(c => c.Status!.CompletedAt ?? c.Metadata.CreationTimestamp ?? DateTimeOffset.MinValue)
            .ThenByDescending(c => c.Metadata.Name, StringComparer.Ordinal)
            .ToList();
        if (candidates.Count == 0)
            return new(CheckpointChoiceKind.NoneUsable,
                $"there is no Completed checkpoint of container {container} of {workload}: {WhyNoneCompleted(ns, restore, pod, container)}");

        var otherImages = new List<string>();
        foreach (var c in candidates)
        {
            var content = ContentOf(c);
            if (content is null)
                return new(CheckpointChoiceKind.Wait, $"waiting for the ContainerCheckpointContent {c.Status!.ContentName} of checkpoint {c.Metadata.Name}");
            var source = content.Spec.Source.Image;
            if (!ImageNames.Same(source, baseImage))
            {
                otherImages.Add($"{c.Metadata.Name} ({source ?? "no recorded image"})");
                continue;
            }
            return WithImage(c, content, pod);
        }
        return new(CheckpointChoiceKind.NoneUsable,
            $"none of the {candidates.Count} Completed checkpoints of container {container} of {workload} was taken from the pod's image {baseImage} " +
            $"(a new image is a new version of the app, and an older version's checkpoint is not restored into it): {string.Join(", ", otherImages.Take(5))}" +
            SinceThen(ns, restore, pod, container));
    }

    /// <summary>The checkpoints of the restore's workload and container, any phase.</summary>
    private List<ContainerCheckpoint> OfWorkload(string ns, Restore restore, Pod pod, string container) =>
        [.. checkpoints.List().Where(c => c.Metadata.Namespace == ns && c.Spec.Container == container && BelongsTo(c, restore, pod, container))];

    /// <summary>Why the workload's container has no Completed checkpoint (there is none).</summary>
    private string WhyNoneCompleted(string ns, Restore restore, Pod pod, string container)
    {
        var mine = OfWorkload(ns, restore, pod, container);
        if (mine.Count == 0)
        {
            var others = checkpoints.List()
                .Where(c => c.Metadata.Namespace == ns && c.Spec.Container != container && BelongsTo(c, restore, pod, c.Spec.Container))
                .Select(c => c.Spec.Container).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            return others.Count > 0
                ? $"no checkpoint of it was ever taken (there are checkpoints of its other containers: {string.Join(", ", others)})"
                : "no checkpoint of it was ever taken (no ContainerCheckpoint of it exists: a CheckpointSchedule or a ContainerCheckpoint makes one)";
        }
        var parts = new List<string>();
        if (CheckpointFailures.Streaks(mine).FirstOrDefault() is { FailedInARow: > 0 } failed) parts.Add(failed.Describe());
        var unfinished = mine
            .Where(c => c.Status?.Phase is not (ContainerCheckpointPhase.Completed or ContainerCheckpointPhase.Failed))
            .OrderBy(c => c.Metadata.Name, StringComparer.Ordinal)
            .ToList();
        if (unfinished.Count > 0)
            parts.Add(unfinished.Count == 1
                ? $"checkpoint {unfinished[0].Metadata.Name} is not finished (phase {unfinished[0].Status?.Phase?.ToString() ?? "Pending"})"
                : $"{unfinished.Count} checkpoints are not finished ({string.Join(", ", unfinished.Take(5).Select(c => c.Metadata.Name))})");
        if (parts.Count == 0) // only failed ones, being deleted
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"its {mine.Count} checkpoint(s) are being deleted"));
        return string.Join("; ", parts);
    }

    /// <summary>"; since then, the last 2 checkpoints of container app failed (…)" when the newest finished ones failed.</summary>
    private string SinceThen(string ns, Restore restore, Pod pod, string container) =>
        CheckpointFailures.Streaks(OfWorkload(ns, restore, pod, container)).FirstOrDefault() is { FailedInARow: > 0 } failed
            ? $"; since then, {failed.Describe()}"
            : "";

    private CheckpointChoice Named(string ns, string name, string container, string baseImage, Pod pod)
    {
        var c = checkpoints.Get(new ObjectKey(ns, name));
        if (c is null) return new(CheckpointChoiceKind.Invalid, $"spec.checkpointName: ContainerCheckpoint {ns}/{name} does not exist");
        if (c.Spec.Container != container)
            return new(CheckpointChoiceKind.Invalid, $"spec.checkpointName: checkpoint {name} is of container {c.Spec.Container}, not {container}");
        switch (c.Status?.Phase)
        {
            case ContainerCheckpointPhase.Failed:
                return new(CheckpointChoiceKind.Invalid, $"spec.checkpointName: checkpoint {name} failed: {c.Status.Message}");
            case ContainerCheckpointPhase.Completed:
                break;
            default:
                return new(CheckpointChoiceKind.Wait, $"waiting for checkpoint {name} to complete (phase {c.Status?.Phase?.ToString() ?? "Pending"})");
        }
        var content = ContentOf(c);
        if (content is null)
            return new(CheckpointChoiceKind.Wait, $"waiting for the ContainerCheckpointContent {c.Status.ContentName} of checkpoint {name}");
        if (!ImageNames.Same(content.Spec.Source.Image, baseImage))
            return new(CheckpointChoiceKind.NoneUsable,
                $"checkpoint {name} was taken from image {content.Spec.Source.Image ?? "(not recorded)"}, but the pod runs {baseImage} " +
                "(a new image is a new version of the app, and an older version's checkpoint is not restored into it)");
        return WithImage(c, content, pod);
    }

    /// <summary>
    /// The checkpoint with the image the pod's node restores it from (<see cref="RestoreFromSources.ImageFor"/>): the copy
    /// in that node's store, else the image of the node that took it, else — that node gone — a registry copy.
    /// </summary>
    private CheckpointChoice WithImage(ContainerCheckpoint c, ContainerCheckpointContent content, Pod pod)
    {
        if (RestoreFromSources.ImageFor(content, pod.Spec.NodeName, nodeGone) is var (image, from) && image != content.Spec.ImageReference)
            return new(CheckpointChoiceKind.Found, $"checkpoint {c.Metadata.Name}, image {image} ({from})", c, image);
        if (string.IsNullOrWhiteSpace(content.Spec.ImageReference))
            return new(CheckpointChoiceKind.Wait,
                $"checkpoint {c.Metadata.Name} has no image yet (ContainerCheckpointContent {content.Metadata.Name} has no spec.imageReference; " +
                "crsc publishes it when the node's image endpoint (images.listen) or a registry (images.registry) is configured)",
                c);
        return new(CheckpointChoiceKind.Found, $"checkpoint {c.Metadata.Name}, image {content.Spec.ImageReference}", c,
            content.Spec.ImageReference);
    }

    private ContainerCheckpointContent? ContentOf(ContainerCheckpoint c) =>
        string.IsNullOrEmpty(c.Status?.ContentName) ? null : contents.Get(new ObjectKey(null, c.Status.ContentName));

    /// <summary>Whether a checkpoint is of the restore's workload: by its labels, or by the pod it was taken of.</summary>
    private bool BelongsTo(ContainerCheckpoint c, Restore restore, Pod pod, string container)
    {
        var labels = c.Metadata.Labels;
        if (labels?.GetValueOrDefault(Labels.Container) is { } labelled && labelled != container) return false;
        var workloadLabel = labels?.GetValueOrDefault(Labels.Workload);
        var target = restore.Spec.Target;
        if (target.Kind == RestoreTargetKind.Pod)
        {
            if (c.Spec.PodName == target.Name) return true;
            var podWorkload = RestorePods.DeploymentOf(pod) ?? RestorePods.Controller(pod)?.Name;
            return workloadLabel is not null && workloadLabel == podWorkload;
        }
        if (workloadLabel is not null) return workloadLabel == target.Name;
        var source = pods.Get(new ObjectKey(c.Metadata.Namespace, c.Spec.PodName));
        return source is not null
            ? RestorePods.DeploymentOf(source) == target.Name
            : RestorePods.NameLooksLikePodOf(c.Spec.PodName, target.Name);
    }
}

using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.Restores;

/// <summary>
/// Where a Restore stands, as <see cref="RestoreStages.Classify"/> reads it from the Restore, the pod of its current
/// attempt and the clock. The <see cref="RestoreReconciler"/> acts once per stage.
/// </summary>
internal enum RestoreStage
{
    /// <summary><c>status.phase</c> is Restored, Failed or FellBack: nothing more is done.</summary>
    Finished,
    /// <summary>The spec does not validate: Failed (<c>InvalidSpec</c>).</summary>
    InvalidSpec,
    /// <summary>No <c>status.phase</c> yet: the Restore is marked Pending.</summary>
    New,
    /// <summary><c>status.podName</c> is set and that pod is missing, terminating, finished or another UID: it is forgotten (or the last attempt ends).</summary>
    PodGone,
    /// <summary>No <c>status.podName</c>: a running pod of the target is chosen (or waited for, up to the pod timeout).</summary>
    ChoosingPod,
    /// <summary>The pod has no container <c>spec.container</c>, or several and none named: Failed (<c>ContainerNotFound</c>).</summary>
    ContainerNotFound,
    /// <summary>No <c>status.image</c> yet: a checkpoint (and its image) is chosen or waited for.</summary>
    ChoosingCheckpoint,
    /// <summary>The checkpoint image is chosen and the node's <c>ImagesReady</c> is absent or Unknown, within the image preparation timeout.</summary>
    WaitingForImages,
    /// <summary>The node reported <c>ImagesReady</c> False: the fallback applies (<c>ImagePullFailed</c>).</summary>
    ImagesFailed,
    /// <summary>The node reported <c>ImagesReady</c> True: the attempt is counted and the pod patched.</summary>
    ReadyToPatch,
    /// <summary><c>ImagesReady</c> absent or Unknown past the image preparation timeout: patched anyway, with a warning.</summary>
    ImagesOverdue,
    /// <summary>
    /// <c>status.patchedAt</c> is set and the pod does not carry this Restore's patch: the cache is behind, or a leader
    /// stopped between the count and the patch. Decided from the server's Restore and pod.
    /// </summary>
    CountedNotPatched,
    /// <summary>
    /// <c>status.patchedAt</c> is set, the pod is this Restore's, its image is not the checkpoint's and it has no
    /// <c>restored-from</c>: the fallback put the original image back and its status write did not happen. FellBack.
    /// </summary>
    PatchedBack,
    /// <summary>The pod carries this Restore's patch and the restored container has not run nor failed yet: followed until <see cref="RestoreReconcilerOptions.RestoreTimeout"/>.</summary>
    Restoring,
    /// <summary>The restored container runs (and is ready, when it has a readiness probe): Restored.</summary>
    AttemptSucceeded,
    /// <summary>The restored container failed, or did not run within <see cref="RestoreReconcilerOptions.RestoreTimeout"/> of the patch. Decided from the server's Restore.</summary>
    AttemptFailed,
    /// <summary>
    /// The pod carries this Restore's patch and <c>status.patchedAt</c> is empty: a failed attempt left it to be
    /// replaced, so it is deleted. Decided from the server's Restore (a lagging cache looks the same).
    /// </summary>
    PodToReplace,
}

/// <summary>
/// A <see cref="RestoreStage"/> and what the stage's action needs from the classification.
/// </summary>
/// <param name="Container">the container restored (resolved from the spec and the pod), from <see cref="RestoreStage.ChoosingCheckpoint"/> on</param>
/// <param name="Detail">
/// <see cref="RestoreStage.InvalidSpec"/>, <see cref="RestoreStage.ContainerNotFound"/>: the error;
/// <see cref="RestoreStage.Restoring"/>, <see cref="RestoreStage.AttemptFailed"/>: what the container status tells
/// </param>
/// <param name="TimedOut"><see cref="RestoreStage.AttemptFailed"/>: by <see cref="RestoreReconcilerOptions.RestoreTimeout"/>, not by a failure seen</param>
/// <param name="LookAgain"><see cref="RestoreStage.Restoring"/>: the status still describes the replaced container</param>
/// <param name="ImagesReady">the node's <c>ImagesReady</c> condition, in the image stages</param>
internal sealed record RestoreSituation(
    RestoreStage Stage,
    string? Container = null,
    string? Detail = null,
    bool TimedOut = false,
    bool LookAgain = false,
    Condition? ImagesReady = null)
{
    /// <summary>
    /// Whether the stage's action is taken only on the Restore as the API server returned it: the cache may lag behind
    /// this reconciler's own writes, and these stages delete, patch or patch back a pod.
    /// </summary>
    public bool NeedsServerCopy => Stage is RestoreStage.PodToReplace or RestoreStage.CountedNotPatched or RestoreStage.AttemptFailed;
}

/// <summary>The restore state machine's stages, read without I/O from the Restore, its pod and the time.</summary>
internal static class RestoreStages
{
    public static bool IsTerminal(Restore r) => r.Status?.Phase is RestorePhase.Restored or RestorePhase.Failed or RestorePhase.FellBack;

    /// <summary>Where <paramref name="restore"/> stands.</summary>
    /// <param name="pod">the pod named by <c>status.podName</c> as the cache has it (null when there is none or no name)</param>
    /// <param name="now">the reconciler's clock</param>
    public static RestoreSituation Classify(Restore restore, Pod? pod, DateTimeOffset now, RestoreReconcilerOptions options)
    {
        ArgumentNullException.ThrowIfNull(restore);
        ArgumentNullException.ThrowIfNull(options);
        if (IsTerminal(restore)) return new(RestoreStage.Finished);

        var errors = restore.Spec.Validate();
        if (errors.Count > 0) return new(RestoreStage.InvalidSpec, Detail: "invalid spec: " + string.Join("; ", errors.Select(e => e.ToString())));

        if (restore.Status?.Phase is null) return new(RestoreStage.New);
        var s = restore.Status;

        if (s.PodName is not null)
        {
            if (!RestorePods.IsLive(pod) || (s.PodUid is not null && pod!.Metadata.Uid != s.PodUid)) return new(RestoreStage.PodGone);
        }
        else
        {
            return new(RestoreStage.ChoosingPod);
        }

        var container = ResolveContainer(restore, pod!, out var containerError);
        if (container is null) return new(RestoreStage.ContainerNotFound, Detail: containerError);

        if (PatchedBy(restore, pod!, container))
        {
            if (s.PatchedAt is null) return new(RestoreStage.PodToReplace, container);
            return Follow(s, pod!, container, now, options);
        }

        if (s.PatchedAt is not null)
        {
            var mine = pod!.Metadata.Annotations?.GetValueOrDefault(Annotations.Restore) == restore.Metadata.Name;
            return mine && pod.Metadata.Annotations?.ContainsKey(Annotations.RestoredFrom) != true
                ? new(RestoreStage.PatchedBack, container)
                : new(RestoreStage.CountedNotPatched, container);
        }

        if (s.Image is null) return new(RestoreStage.ChoosingCheckpoint, container);

        var ready = s.FindCondition(RestoreConditions.ImagesReady);
        if (ready?.Status == ConditionStatus.True) return new(RestoreStage.ReadyToPatch, container, ImagesReady: ready);
        if (ready?.Status == ConditionStatus.False) return new(RestoreStage.ImagesFailed, container, ImagesReady: ready);
        var since = s.WaitingSince ?? now;
        return now - since < options.ImagePreparationTimeout
            ? new(RestoreStage.WaitingForImages, container, ImagesReady: ready)
            : new(RestoreStage.ImagesOverdue, container, ImagesReady: ready);
    }

    /// <summary>
    /// Whether <paramref name="pod"/>'s <paramref name="container"/> carries <paramref name="r"/>'s patch: the pod is
    /// annotated with the Restore and the container's image is <c>status.image</c>.
    /// </summary>
    public static bool PatchedBy(Restore r, Pod pod, string container) =>
        r.Status?.Image is { } image
        && pod.Metadata.Annotations?.GetValueOrDefault(Annotations.Restore) == r.Metadata.Name
        && RestorePods.ContainerOf(pod, container)?.Image == image;

    /// <summary>The container to restore: <c>spec.container</c>, else the pod's only one; null with the error otherwise.</summary>
    public static string? ResolveContainer(Restore r, Pod pod, out string? error)
    {
        error = null;
        var names = pod.Spec.Containers.Select(c => c.Name).ToList();
        if (r.Spec.Container is { } wanted)
        {
            if (names.Contains(wanted)) return wanted;
            error = $"spec.container: pod {pod.Metadata.Name} has no container '{wanted}'; it has: {string.Join(", ", names)}";
            return null;
        }
        if (names.Count == 1) return names[0];
        error = $"spec.container: pod {pod.Metadata.Name} has {names.Count} containers ({string.Join(", ", names)}); name the one to restore";
        return null;
    }

    private static RestoreSituation Follow(RestoreStatus s, Pod pod, string container, DateTimeOffset now, RestoreReconcilerOptions options)
    {
        var observed = Observe(pod, container, s);
        if (observed.State == Observed.Running) return new(RestoreStage.AttemptSucceeded, container, observed.Detail);
        if (observed.State == Observed.Failed) return new(RestoreStage.AttemptFailed, container, observed.Detail);
        if (now >= s.PatchedAt!.Value + options.RestoreTimeout) return new(RestoreStage.AttemptFailed, container, observed.Detail, TimedOut: true);
        return new(RestoreStage.Restoring, container, observed.Detail, LookAgain: observed.LookAgain);
    }

    private enum Observed { Pending, Running, Failed }

    /// <param name="LookAgain">the status still describes the replaced container: looked at again after the status grace</param>
    private readonly record struct Observation(Observed State, string Detail, bool LookAgain = false);

    /// <summary>
    /// What the kubelet reports about the restored container. A state is the restored container's when the status names
    /// the checkpoint image (image, or the digest in imageID). Runtimes may report a restored container by its base
    /// image, so a running container other than the one the patch replaced (<see cref="ReplacedContainer"/>: another
    /// containerID) counts as restored too; and a start error where the replaced container's status said something else
    /// is the kubelet failing to run the new image. Everything else — the replaced container running, stopping (it is
    /// stopped for the new image), crash-looping, its last termination and restart count — is the past and decides
    /// nothing, whatever its timestamps say (the node's clock is not crsc's) and however long it lasts.
    /// </summary>
    private static Observation Observe(Pod pod, string container, RestoreStatus s)
    {
        var cs = RestorePods.StatusOf(pod, container);
        if (cs?.State is not { } state) return new(Observed.Pending, "no container status yet");
        var replaced = ReplacedContainer.Read(pod, container);
        var checkpointImage = ImageNames.Same(cs.Image, s.Image)
            || (s.Image!.IndexOf('@', StringComparison.Ordinal) is var at and > 0 && cs.ImageID?.EndsWith(s.Image[(at + 1)..], StringComparison.Ordinal) == true);

        if (state.Running is not null)
        {
            var later = replaced is not null && !string.IsNullOrEmpty(cs.ContainerID) && cs.ContainerID != replaced.ContainerId;
            if (!checkpointImage && !later) return new(Observed.Pending, "the container the patch replaced still runs", LookAgain: true);
            var spec = RestorePods.ContainerOf(pod, container)!;
            if (RestorePods.HasReadinessProbe(spec) && !cs.Ready) return new(Observed.Pending, "running, not ready yet");
            return new(Observed.Running, "running");
        }
        if (state.Terminated is { } t)
        {
            var detail = $"terminated ({t.Reason ?? "exit"}, exit code {t.ExitCode})";
            if (!checkpointImage) return new(Observed.Pending, $"the container the patch replaced has {detail}", LookAgain: true);
            detail = $"the restored container {detail}";
            return new(Observed.Failed, string.IsNullOrEmpty(t.Message) ? detail : $"{detail}: {t.Message}");
        }
        if (state.Waiting is { } w)
        {
            if (string.IsNullOrEmpty(w.Reason) || w.Reason is "ContainerCreating" or "PodInitializing")
                return new(Observed.Pending, $"waiting ({w.Reason ?? "no reason"})");
            var detail = string.IsNullOrEmpty(w.Message) ? w.Reason : $"{w.Reason}: {w.Message}";
            // CrashLoopBackOff is about a container that ran, and the status names its image: the replaced one's here
            var startError = w.Reason != "CrashLoopBackOff" && replaced is not null && replaced.State != ReplacedContainer.StateOf(state);
            if (checkpointImage || startError) return new(Observed.Failed, detail);
            return new(Observed.Pending, $"waiting ({detail}): the container the patch replaced, as far as the status tells", LookAgain: true);
        }
        return new(Observed.Pending, "no container state yet");
    }
}

using System.Text.Json.Nodes;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;

namespace Crsc.Controllers.Restores;

/// <summary>
/// The step of a Restore that hands the chosen checkpoint to the node, once its images are there, and takes it back
/// for the <c>ColdStart</c> fallback. The <see cref="RestoreReconciler"/> decides when (attempts, timeouts, fallback);
/// a backend decides how. Today's one backend, <see cref="ImageSwapRestoreBackend"/>, swaps the container's image for
/// the checkpoint image and the runtime restores inside <c>CreateContainer</c>. A pod-level backend (KEP-5823: a
/// <c>PodCheckpoint</c> and <c>pod.spec.restoreFrom</c>, carried out by the kubelet through the runtime's
/// <c>RestorePod</c>) is meant to be another implementation, chosen from the node's CheckpointNode
/// (<c>status.podCheckpointApi</c>) once runtimes ship it — never a call to the runtime behind the kubelet's back.
/// </summary>
public interface IRestoreBackend
{
    /// <summary>A short name for messages (<c>image swap</c>).</summary>
    string Name { get; }

    /// <summary>
    /// Whether the node's agent found that its runtime cannot do what this backend needs (a fact: DisabledByConfig or
    /// NotSupported, never Unknown), so the Restore must not be tried there.
    /// </summary>
    bool CannotRestoreOn(CheckpointNode node);

    /// <summary>Starts the restore of <paramref name="container"/> in <paramref name="pod"/> from the checkpoint the status names.</summary>
    Task StartAsync(Restore r, Pod pod, string container, CancellationToken ct);

    /// <summary>Whether <paramref name="pod"/> shows this Restore's <see cref="StartAsync"/> (and not its undoing).</summary>
    bool Started(Restore r, Pod pod, string container);

    /// <summary>Takes the checkpoint out again: the container starts from its own image, without its state.</summary>
    Task UndoAsync(Restore r, Pod pod, string container, CancellationToken ct);
}

/// <summary>
/// Restore in place by image swap: a strategic merge patch of the one container's image to the checkpoint image (the
/// kubelet restarts the container in the same pod and the runtime restores it), with annotations that record the
/// original image and the container the patch replaced. The pod's UID is a precondition in every patch, so a pod made
/// again under the same name is never patched by mistake; the start is also conditional on the pod's resourceVersion,
/// so the replaced container recorded is exactly the one the server held when it took the patch.
/// </summary>
public sealed class ImageSwapRestoreBackend(IKubeApi kube) : IRestoreBackend
{
    private readonly IKubeResourceClient<Pod> _pods = kube.Resource(Resources.Pods);

    public string Name => "image swap";

    public bool CannotRestoreOn(CheckpointNode node) =>
        node.Status?.Restore.State is CapabilityState.DisabledByConfig or CapabilityState.NotSupported;

    public Task StartAsync(Restore r, Pod pod, string container, CancellationToken ct)
    {
        var s = r.Status!;
        var annotations = new JsonObject
        {
            [Annotations.Restore] = r.Metadata.Name,
            [Annotations.RestoredFrom] = s.CheckpointName,
            // the container's own image, also when an earlier restore had patched it
            [Annotations.OriginalImage] = $"{container}={s.OriginalImage}",
            [Annotations.ReplacedContainer] = ReplacedContainer.Of(pod, container).ToAnnotation(),
        };
        return PatchAsync(pod, container, s.Image!, annotations, ct, pod.Metadata.ResourceVersion);
    }

    public bool Started(Restore r, Pod pod, string container) => RestoreStages.PatchedBy(r, pod, container);

    public Task UndoAsync(Restore r, Pod pod, string container, CancellationToken ct)
    {
        // restore stays as a record; restored-from, original-image and replaced-container go (they describe a
        // checkpoint image that is no longer there)
        var annotations = new JsonObject
        {
            [Annotations.Restore] = r.Metadata.Name,
            [Annotations.RestoredFrom] = null,
            [Annotations.OriginalImage] = null,
            [Annotations.ReplacedContainer] = null,
        };
        return PatchAsync(pod, container, r.Status!.OriginalImage!, annotations, ct);
    }

    private async Task PatchAsync(Pod pod, string container, string image, JsonObject annotations, CancellationToken ct,
        string? resourceVersion = null)
    {
        var metadata = new JsonObject { ["uid"] = pod.Metadata.Uid, ["annotations"] = annotations };
        if (!string.IsNullOrEmpty(resourceVersion)) metadata["resourceVersion"] = resourceVersion;
        var patch = new JsonObject
        {
            ["metadata"] = metadata,
            ["spec"] = new JsonObject
            {
                ["containers"] = new JsonArray(new JsonObject { ["name"] = container, ["image"] = image }),
            },
        };
        await _pods.PatchAsync(pod.Metadata.Namespace, pod.Metadata.Name!, PatchType.StrategicMerge, patch.ToJsonString(), ct)
            .ConfigureAwait(false);
    }
}

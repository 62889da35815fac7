using System.Text.Json.Nodes;
using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;

namespace Crsc.Controllers.Restores;

/// <summary>
/// How the leader hands a restore to the node a pod runs on when the checkpoint was taken on another node: it annotates
/// the pod <c>crsc.io/restore-from: &lt;checkpoint&gt;</c>, and that node's agent (<see cref="RestoreFromReconciler"/>)
/// fetches the archive into its own store (a registry copy first, then the node that took it, then nodes holding a
/// copy) and makes the Restore. Used for the pods that replace those of a drained, shut-down or lost node.
/// </summary>
internal static class RestoreFromRequest
{
    /// <summary>The leader's index of pods by <c>&lt;namespace&gt;/&lt;checkpoint&gt;</c> their annotation names (internal, not API).</summary>
    public const string PodsByCheckpointIndex = "crsc.io/pods-by-restore-from";

    /// <summary>Keeps <see cref="PodsByCheckpointIndex"/> on <paramref name="pods"/> (once per informer).</summary>
    public static void Index(Informer<Pod> pods) =>
        pods.TryAddIndexer(PodsByCheckpointIndex, p => Of(p) is { } value ? [$"{p.Metadata.Namespace}/{value}"] : []);

    /// <summary>The checkpoint a pod's annotation names, or null.</summary>
    public static string? Of(Pod pod) => pod.Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFrom) is { Length: > 0 } v ? v : null;

    /// <summary>Whether a live pod of <paramref name="ns"/> names <paramref name="checkpoint"/> (its restore is asked for already).</summary>
    public static bool Claimed(Informer<Pod> pods, string ns, string checkpoint) =>
        pods.ByIndex(PodsByCheckpointIndex, $"{ns}/{checkpoint}").Any(RestorePods.IsLive);

    /// <summary>
    /// Annotates <paramref name="pod"/>: a merge patch of its annotations, on its UID and resourceVersion (a pod made
    /// again under the name, or one changed meanwhile — another writer may have named a checkpoint — is not written: a
    /// 404, 409 or 422 is false and the caller looks again).
    /// </summary>
    public static async Task<bool> AskAsync(IKubeResourceClient<Pod> podsApi, Pod pod, string checkpoint, CancellationToken ct)
    {
        var patch = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["uid"] = pod.Metadata.Uid,
                ["resourceVersion"] = pod.Metadata.ResourceVersion,
                ["annotations"] = new JsonObject { [Annotations.RestoreFrom] = checkpoint },
            },
        };
        try
        {
            await podsApi.PatchAsync(pod.Metadata.Namespace, pod.Metadata.Name!, PatchType.Merge, patch.ToJsonString(), ct).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is NotFoundException or ConflictException or InvalidException)
        {
            return false; // gone, changed, or another pod of that name now (its UID differs: 422)
        }
    }
}

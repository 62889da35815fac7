using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.NodeAgent;

namespace Crsc.Controllers.Restores;

/// <summary>What the restore reconciler and the node's preparer read from pods, Restores and checkpoints.</summary>
internal static class RestorePods
{
    /// <summary>The Deployment a pod belongs to (owner ReplicaSet named <c>&lt;deployment&gt;-&lt;pod-template-hash&gt;</c>), or null.</summary>
    public static string? DeploymentOf(Pod pod)
    {
        var owner = Controller(pod);
        if (owner is null || owner.Kind != "ReplicaSet") return null;
        var hash = pod.Metadata.Labels?.GetValueOrDefault(PodOwnerWorkloadResolver.PodTemplateHashLabel);
        if (string.IsNullOrEmpty(hash) || !owner.Name.EndsWith("-" + hash, StringComparison.Ordinal)) return null;
        return owner.Name[..^(hash.Length + 1)];
    }

    /// <summary>
    /// The index of pods by <c>&lt;namespace&gt;/&lt;deployment&gt;</c> (ReplicaSet-owned pods only) that the restore
    /// reconciler, the failure detector and the replacement placement keep on the shared pod informer.
    /// </summary>
    public static IEnumerable<string> DeploymentKeys(Pod p) => DeploymentOf(p) is { } d ? [$"{p.Metadata.Namespace}/{d}"] : [];

    /// <summary>The owner reference marked controller (what recreates the pod when it is deleted), or null.</summary>
    public static OwnerReference? Controller(Pod pod) =>
        pod.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true && !string.IsNullOrEmpty(o.Name));

    /// <summary>
    /// Whether a pod named <paramref name="podName"/> that no longer exists was one of <paramref name="deployment"/>'s:
    /// its name is <c>&lt;deployment&gt;-&lt;hash&gt;-&lt;suffix&gt;</c>.
    /// </summary>
    public static bool NameLooksLikePodOf(string podName, string deployment)
    {
        if (!podName.StartsWith(deployment + "-", StringComparison.Ordinal)) return false;
        var rest = podName[(deployment.Length + 1)..].Split('-');
        return rest.Length == 2 && rest.All(p => p.Length > 0);
    }

    /// <summary>Not being deleted, not finished (a Failed or Succeeded pod never runs again).</summary>
    public static bool IsLive(Pod? pod) =>
        pod is not null && pod.Metadata.DeletionTimestamp is null && pod.Status?.Phase is not ("Failed" or "Succeeded");

    public static bool IsRunning(Pod pod) => IsLive(pod) && pod.Status?.Phase == "Running";

    public static Container? ContainerOf(Pod pod, string name) => pod.Spec.Containers.FirstOrDefault(c => c.Name == name);

    public static ContainerStatus? StatusOf(Pod pod, string name) =>
        pod.Status?.ContainerStatuses?.FirstOrDefault(c => c.Name == name);

    public static bool HasReadinessProbe(Container container) =>
        container.Extra?.TryGetValue("readinessProbe", out var probe) == true && probe.ValueKind == JsonValueKind.Object;

    /// <summary>The container's own image: the one crsc recorded before patching it, else the pod spec's.</summary>
    public static string? OriginalImageOf(Pod pod, string container)
    {
        if (pod.Metadata.Annotations?.GetValueOrDefault(Annotations.OriginalImage) is { } recorded)
        {
            var eq = recorded.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && recorded[..eq] == container && eq < recorded.Length - 1) return recorded[(eq + 1)..];
        }
        return ContainerOf(pod, container)?.Image;
    }
}

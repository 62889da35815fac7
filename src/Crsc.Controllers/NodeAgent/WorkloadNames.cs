using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.NodeAgent;

/// <summary>
/// Names the workload a pod belongs to, for the store's layout (<c>&lt;ns&gt;/&lt;workload&gt;/&lt;container&gt;</c>) and
/// retention. Null: not known (the runner then uses the pod's name).
/// </summary>
public interface IWorkloadNameResolver
{
    string? WorkloadOf(string @namespace, string pod);
}

/// <summary>
/// Resolves the workload from a pod's owner references: a StatefulSet by its name, a ReplicaSet created by a
/// Deployment by the Deployment's name (the ReplicaSet name minus the <c>pod-template-hash</c> suffix), any other
/// controller by its own name. The pod comes from a lookup (the node agent's pod informer).
/// </summary>
public sealed class PodOwnerWorkloadResolver(Func<string, string, Pod?> findPod) : IWorkloadNameResolver
{
    public const string PodTemplateHashLabel = "pod-template-hash";

    /// <summary>Over the node agent's pod informer.</summary>
    public PodOwnerWorkloadResolver(Informers.Informer<Pod> pods) : this((ns, name) => pods.Get(new Crsc.Api.ObjectKey(ns, name)))
    {
    }

    public string? WorkloadOf(string @namespace, string pod) => findPod(@namespace, pod) is { } p ? WorkloadOf(p) : null;

    /// <summary>The workload name for <paramref name="pod"/>; its own name when it has no controller.</summary>
    public static string WorkloadOf(Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var name = pod.Metadata.Name ?? "";
        var owner = pod.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true)
            ?? pod.Metadata.OwnerReferences?.FirstOrDefault();
        if (owner is null || string.IsNullOrEmpty(owner.Name)) return name;
        if (owner.Kind == "ReplicaSet")
        {
            var hash = pod.Metadata.Labels?.GetValueOrDefault(PodTemplateHashLabel);
            if (!string.IsNullOrEmpty(hash) && owner.Name.EndsWith("-" + hash, StringComparison.Ordinal))
                return owner.Name[..^(hash.Length + 1)];
            return owner.Name;
        }
        return owner.Name;
    }
}

/// <summary>The first resolver that knows the pod.</summary>
public sealed class ChainedWorkloadResolver(params IWorkloadNameResolver?[] resolvers) : IWorkloadNameResolver
{
    public string? WorkloadOf(string @namespace, string pod) =>
        resolvers.Select(r => r?.WorkloadOf(@namespace, pod)).FirstOrDefault(w => !string.IsNullOrEmpty(w));
}

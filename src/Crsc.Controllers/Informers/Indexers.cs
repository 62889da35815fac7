using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.Informers;

/// <summary>Index functions for <see cref="Informer{T}.AddIndexer"/>, and the names crsc registers them under.</summary>
public static class Indexers
{
    public const string Namespace = "namespace";
    public const string NodeName = "nodeName";
    public const string OwnerUid = "ownerUid";

    /// <summary>By <c>metadata.namespace</c> (cluster-scoped objects are not indexed).</summary>
    public static IEnumerable<string> ByNamespace(IKubernetesObject obj)
        => string.IsNullOrEmpty(obj.Metadata.Namespace) ? [] : [obj.Metadata.Namespace];

    /// <summary>By the UID of every owner reference.</summary>
    public static IEnumerable<string> ByOwnerUid(IKubernetesObject obj)
        => obj.Metadata.OwnerReferences is { } refs
            ? refs.Where(r => !string.IsNullOrEmpty(r.Uid)).Select(r => r.Uid).Distinct(StringComparer.Ordinal)
            : [];

    /// <summary>By the node an object is bound to, read by <paramref name="nodeName"/> (pods: <c>spec.nodeName</c>).</summary>
    public static Func<T, IEnumerable<string>> ByNodeName<T>(Func<T, string?> nodeName)
        => obj => nodeName(obj) is { Length: > 0 } node ? [node] : [];
}

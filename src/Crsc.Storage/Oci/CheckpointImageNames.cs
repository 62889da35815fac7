using Crsc.Controllers.Storage;

namespace Crsc.Storage.Oci;

/// <summary>
/// How checkpoints are named as images: repository <c>crsc/&lt;namespace&gt;/&lt;workload&gt;/&lt;container&gt;</c>, tag
/// the store's checkpoint id. Every component is a Kubernetes name, so a repository satisfies the distribution spec's
/// name grammar (lower-case alphanumerics separated by '.', '-' or '/'), and a name from a request maps back to the
/// store only when each component passes the store's own name rules.
/// </summary>
public static class CheckpointImageNames
{
    public const string RepositoryPrefix = "crsc";
    /// <summary>The longest image name (domain and path) the reference grammar of the runtimes accepts.</summary>
    public const int MaxNameLength = 255;

    public static string Repository(string ns, string workload, string container) =>
        $"{RepositoryPrefix}/{StoreNames.Namespace(ns)}/{StoreNames.Workload(workload)}/{StoreNames.Container(container)}";

    public static string Repository(CheckpointInfo checkpoint) => Repository(checkpoint.Namespace, checkpoint.Workload, checkpoint.Container);

    /// <summary>The store coordinates of a repository name from a request; false for any other name.</summary>
    public static bool TryParseRepository(string? name, out CheckpointFilter filter)
    {
        filter = new CheckpointFilter();
        if (name is null || name.Length > MaxNameLength) return false;
        var parts = name.Split('/');
        if (parts is not [RepositoryPrefix, var ns, var workload, var container]) return false;
        if (!StoreNames.IsLabel(ns) || !StoreNames.IsSubdomain(workload) || !StoreNames.IsLabel(container)) return false;
        filter = new CheckpointFilter(ns, workload, container);
        return true;
    }

    /// <summary>True when <paramref name="tag"/> is a checkpoint id (the only tags the endpoint has).</summary>
    public static bool IsTag(string? tag) => StoreNames.IsId(tag);
}

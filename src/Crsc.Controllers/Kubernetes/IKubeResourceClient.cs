using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.Kubernetes;

/// <summary>
/// Typed access to one resource type. Implemented over HTTP by Crsc.Kube; reconcilers, informers and
/// leader election depend only on this. Errors are the typed <see cref="KubeApiException"/> family.
/// </summary>
public interface IKubeResourceClient<T> where T : class, IKubernetesObject
{
    ResourceType<T> Type { get; }

    /// <exception cref="NotFoundException">no such object</exception>
    Task<T> GetAsync(string? ns, string name, CancellationToken ct);

    /// <summary>One page; follow <c>Metadata.Continue</c> for the next (see <see cref="ListOptions.Continue"/>).</summary>
    Task<KubeList<T>> ListAsync(string? ns, ListOptions options, CancellationToken ct);

    /// <summary>
    /// Streams events until the server closes the stream (the sequence then ends) or <paramref name="ct"/> fires.
    /// </summary>
    /// <exception cref="ResourceExpiredException">410 Gone: the resourceVersion is too old; relist.</exception>
    IAsyncEnumerable<WatchEvent<T>> WatchAsync(string? ns, WatchOptions options, CancellationToken ct);

    /// <exception cref="AlreadyExistsException">an object of that name exists</exception>
    Task<T> CreateAsync(T obj, CancellationToken ct);

    /// <summary>PUT with the object's resourceVersion.</summary>
    /// <exception cref="ConflictException">the resourceVersion is stale</exception>
    Task<T> UpdateAsync(T obj, CancellationToken ct);

    /// <summary>PUT to the status subresource.</summary>
    Task<T> UpdateStatusAsync(T obj, CancellationToken ct);

    /// <param name="body">the patch document, as JSON (apply patches too)</param>
    /// <param name="fieldManager">required for <see cref="PatchType.Apply"/></param>
    Task<T> PatchAsync(string? ns, string name, PatchType type, string body, CancellationToken ct,
        bool status = false, string? fieldManager = null, bool force = false);

    /// <exception cref="NotFoundException">no such object</exception>
    /// <exception cref="ConflictException">a precondition did not hold</exception>
    Task DeleteAsync(string? ns, string name, DeleteOptions? options, CancellationToken ct);
}

public sealed record ListOptions(
    string? LabelSelector = null,
    string? FieldSelector = null,
    int? Limit = null,
    string? Continue = null,
    string? ResourceVersion = null);

public sealed record WatchOptions(
    string? ResourceVersion,
    string? LabelSelector = null,
    string? FieldSelector = null,
    bool AllowBookmarks = true,
    int? TimeoutSeconds = null);

public enum PatchType
{
    /// <summary>application/merge-patch+json</summary>
    Merge,
    /// <summary>application/json-patch+json</summary>
    Json,
    /// <summary>application/strategic-merge-patch+json (built-in kinds only)</summary>
    StrategicMerge,
    /// <summary>application/apply-patch+yaml (server-side apply; JSON is valid YAML)</summary>
    Apply,
}

public enum PropagationPolicy { Orphan, Background, Foreground }

public sealed record DeleteOptions(
    string? PreconditionUid = null,
    string? PreconditionResourceVersion = null,
    PropagationPolicy? PropagationPolicy = null,
    long? GracePeriodSeconds = null);

/// <summary>Hands out typed clients. One per API server connection.</summary>
public interface IKubeApi
{
    IKubeResourceClient<T> Resource<T>(ResourceType<T> type) where T : class, IKubernetesObject;
}

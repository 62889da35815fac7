using System.Text.Json.Serialization;

namespace Crsc.Api.Kubernetes;

/// <summary>Every Kubernetes object crsc handles: apiVersion, kind and metadata.</summary>
public interface IKubernetesObject
{
    string? ApiVersion { get; set; }
    string? Kind { get; set; }
    ObjectMeta Metadata { get; set; }
}

/// <summary>The subset of <c>metav1.ObjectMeta</c> crsc reads and writes.</summary>
public sealed class ObjectMeta
{
    public string? Name { get; set; }
    public string? GenerateName { get; set; }
    public string? Namespace { get; set; }
    public string? Uid { get; set; }
    public string? ResourceVersion { get; set; }
    public long? Generation { get; set; }
    public DateTimeOffset? CreationTimestamp { get; set; }
    public DateTimeOffset? DeletionTimestamp { get; set; }
    public Dictionary<string, string>? Labels { get; set; }
    public Dictionary<string, string>? Annotations { get; set; }
    public List<OwnerReference>? OwnerReferences { get; set; }
    public List<string>? Finalizers { get; set; }
    public long? DeletionGracePeriodSeconds { get; set; }
    /// <summary>Fields crsc does not model (managedFields, selfLink, …), kept so an update never drops them.</summary>
    [JsonExtensionData] public Dictionary<string, System.Text.Json.JsonElement>? Extra { get; set; }

    [JsonIgnore]
    public ObjectKey Key => new(Namespace, Name ?? "");
}

public sealed class OwnerReference
{
    public string ApiVersion { get; set; } = "";
    public string Kind { get; set; } = "";
    public string Name { get; set; } = "";
    public string Uid { get; set; } = "";
    public bool? Controller { get; set; }
    public bool? BlockOwnerDeletion { get; set; }
}

/// <summary><c>metav1.ListMeta</c>.</summary>
public sealed class ListMeta
{
    public string? ResourceVersion { get; set; }
    public string? Continue { get; set; }
    public long? RemainingItemCount { get; set; }
}

/// <summary>A typed list (<c>PodList</c>, <c>LeaseList</c>, …).</summary>
public sealed class KubeList<T> where T : class, IKubernetesObject
{
    public string? ApiVersion { get; set; }
    public string? Kind { get; set; }
    public ListMeta Metadata { get; set; } = new();
    public List<T> Items { get; set; } = [];
}

public enum WatchEventType { Added, Modified, Deleted, Bookmark, Error }

/// <summary>One event of a watch stream, already decoded.</summary>
public sealed record WatchEvent<T>(WatchEventType Type, T Object) where T : class, IKubernetesObject;

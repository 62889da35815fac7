using System.Text.Json;
using System.Text.Json.Serialization;

namespace Crsc.Api.Kubernetes;

/// <summary>core/v1 Node (cluster-scoped).</summary>
public sealed class Node : IKubernetesObject
{
    public string? ApiVersion { get; set; } = "v1";
    public string? Kind { get; set; } = "Node";
    public ObjectMeta Metadata { get; set; } = new();
    public NodeSpec? Spec { get; set; }
    public NodeStatus? Status { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class NodeSpec
{
    public bool? Unschedulable { get; set; }
    public List<Taint>? Taints { get; set; }
    public string? PodCIDR { get; set; }
    public string? ProviderID { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class Taint
{
    public string Key { get; set; } = "";
    public string? Value { get; set; }
    /// <summary>NoSchedule, PreferNoSchedule, NoExecute.</summary>
    public string Effect { get; set; } = "";
    public DateTimeOffset? TimeAdded { get; set; }
}

public sealed class NodeStatus
{
    public List<NodeCondition>? Conditions { get; set; }
    public List<NodeAddress>? Addresses { get; set; }
    public NodeSystemInfo? NodeInfo { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class NodeCondition
{
    public string Type { get; set; } = "";
    public string Status { get; set; } = "";
    public string? Reason { get; set; }
    public string? Message { get; set; }
    public DateTimeOffset? LastHeartbeatTime { get; set; }
    public DateTimeOffset? LastTransitionTime { get; set; }
}

public sealed class NodeAddress
{
    /// <summary>InternalIP, ExternalIP, Hostname.</summary>
    public string Type { get; set; } = "";
    public string Address { get; set; } = "";
}

public sealed class NodeSystemInfo
{
    public string? KernelVersion { get; set; }
    public string? OsImage { get; set; }
    public string? ContainerRuntimeVersion { get; set; }
    public string? KubeletVersion { get; set; }
    public string? Architecture { get; set; }
    public string? OperatingSystem { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>core/v1 Secret. <see cref="Data"/> values are base64 on the wire and bytes here.</summary>
public sealed class Secret : IKubernetesObject
{
    public string? ApiVersion { get; set; } = "v1";
    public string? Kind { get; set; } = "Secret";
    public ObjectMeta Metadata { get; set; } = new();
    public string? Type { get; set; }
    public Dictionary<string, byte[]>? Data { get; set; }
    /// <summary>Write-only convenience of the API: merged into data by the server.</summary>
    public Dictionary<string, string>? StringData { get; set; }
    public bool? Immutable { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>core/v1 ConfigMap.</summary>
public sealed class ConfigMap : IKubernetesObject
{
    public string? ApiVersion { get; set; } = "v1";
    public string? Kind { get; set; } = "ConfigMap";
    public ObjectMeta Metadata { get; set; } = new();
    public Dictionary<string, string>? Data { get; set; }
    /// <summary>base64 on the wire.</summary>
    public Dictionary<string, byte[]>? BinaryData { get; set; }
    public bool? Immutable { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>core/v1 Namespace (cluster-scoped).</summary>
public sealed class Namespace : IKubernetesObject
{
    public string? ApiVersion { get; set; } = "v1";
    public string? Kind { get; set; } = "Namespace";
    public ObjectMeta Metadata { get; set; } = new();
    public NamespaceStatus? Status { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class NamespaceStatus
{
    /// <summary>Active or Terminating.</summary>
    public string? Phase { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>core/v1 <c>ObjectReference</c>: the object an Event (core/v1 or <c>events.k8s.io/v1</c>) is about.</summary>
public sealed class ObjectReference
{
    public string? ApiVersion { get; set; }
    public string? Kind { get; set; }
    public string? Namespace { get; set; }
    public string? Name { get; set; }
    public string? Uid { get; set; }
    public string? ResourceVersion { get; set; }
    public string? FieldPath { get; set; }
}

/// <summary><c>events.k8s.io/v1</c> Event.</summary>
public sealed class EventsV1Event : IKubernetesObject
{
    public string? ApiVersion { get; set; } = "events.k8s.io/v1";
    public string? Kind { get; set; } = "Event";
    public ObjectMeta Metadata { get; set; } = new();
    /// <summary>Required by the API: when the event was first observed (MicroTime).</summary>
    [JsonConverter(typeof(MicroTimeConverter))]
    public DateTimeOffset? EventTime { get; set; }
    public ObjectReference? Regarding { get; set; }
    public ObjectReference? Related { get; set; }
    public string? Reason { get; set; }
    public string? Note { get; set; }
    /// <summary>Normal or Warning.</summary>
    public string? Type { get; set; }
    public string? Action { get; set; }
    public string? ReportingController { get; set; }
    public string? ReportingInstance { get; set; }
    public EventSeries? Series { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class EventSeries
{
    public int Count { get; set; }
    [JsonConverter(typeof(MicroTimeConverter))]
    public DateTimeOffset LastObservedTime { get; set; }
}

using System.Text.Json;
using System.Text.Json.Serialization;

namespace Crsc.Api.Kubernetes;

/// <summary><c>metav1.LabelSelector</c>.</summary>
public sealed class LabelSelector
{
    public Dictionary<string, string>? MatchLabels { get; set; }
    public List<LabelSelectorRequirement>? MatchExpressions { get; set; }
}

public sealed class LabelSelectorRequirement
{
    public string Key { get; set; } = "";
    /// <summary>In, NotIn, Exists, DoesNotExist.</summary>
    public string Operator { get; set; } = "";
    public List<string>? Values { get; set; }
}

/// <summary>core/v1 PodTemplateSpec (metadata + spec).</summary>
public sealed class PodTemplateSpec
{
    public ObjectMeta? Metadata { get; set; }
    public PodSpec Spec { get; set; } = new();
}

/// <summary>apps/v1 Deployment.</summary>
public sealed class Deployment : IKubernetesObject
{
    public string? ApiVersion { get; set; } = "apps/v1";
    public string? Kind { get; set; } = "Deployment";
    public ObjectMeta Metadata { get; set; } = new();
    public DeploymentSpec Spec { get; set; } = new();
    public DeploymentStatus? Status { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class DeploymentSpec
{
    public int? Replicas { get; set; }
    public LabelSelector? Selector { get; set; }
    public PodTemplateSpec Template { get; set; } = new();
    public bool? Paused { get; set; }
    /// <summary>Kept as raw JSON.</summary>
    public JsonElement? Strategy { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class DeploymentStatus
{
    public long? ObservedGeneration { get; set; }
    public int? Replicas { get; set; }
    public int? UpdatedReplicas { get; set; }
    public int? ReadyReplicas { get; set; }
    public int? AvailableReplicas { get; set; }
    public int? UnavailableReplicas { get; set; }
    public List<WorkloadCondition>? Conditions { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>Deployment / ReplicaSet / StatefulSet condition.</summary>
public sealed class WorkloadCondition
{
    public string Type { get; set; } = "";
    public string Status { get; set; } = "";
    public string? Reason { get; set; }
    public string? Message { get; set; }
    public DateTimeOffset? LastUpdateTime { get; set; }
    public DateTimeOffset? LastTransitionTime { get; set; }
}

/// <summary>apps/v1 ReplicaSet.</summary>
public sealed class ReplicaSet : IKubernetesObject
{
    public string? ApiVersion { get; set; } = "apps/v1";
    public string? Kind { get; set; } = "ReplicaSet";
    public ObjectMeta Metadata { get; set; } = new();
    public ReplicaSetSpec Spec { get; set; } = new();
    public ReplicaSetStatus? Status { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class ReplicaSetSpec
{
    public int? Replicas { get; set; }
    public LabelSelector? Selector { get; set; }
    public PodTemplateSpec? Template { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class ReplicaSetStatus
{
    public long? ObservedGeneration { get; set; }
    public int Replicas { get; set; }
    public int? ReadyReplicas { get; set; }
    public int? AvailableReplicas { get; set; }
    public List<WorkloadCondition>? Conditions { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>apps/v1 StatefulSet.</summary>
public sealed class StatefulSet : IKubernetesObject
{
    public string? ApiVersion { get; set; } = "apps/v1";
    public string? Kind { get; set; } = "StatefulSet";
    public ObjectMeta Metadata { get; set; } = new();
    public StatefulSetSpec Spec { get; set; } = new();
    public StatefulSetStatus? Status { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class StatefulSetSpec
{
    public int? Replicas { get; set; }
    public LabelSelector? Selector { get; set; }
    public PodTemplateSpec Template { get; set; } = new();
    public string? ServiceName { get; set; }
    /// <summary>Kept as raw JSON.</summary>
    public JsonElement? VolumeClaimTemplates { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class StatefulSetStatus
{
    public long? ObservedGeneration { get; set; }
    public int Replicas { get; set; }
    public int? ReadyReplicas { get; set; }
    public int? CurrentReplicas { get; set; }
    public int? UpdatedReplicas { get; set; }
    public string? CurrentRevision { get; set; }
    public string? UpdateRevision { get; set; }
    public List<WorkloadCondition>? Conditions { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

using System.Text.Json;
using System.Text.Json.Serialization;

namespace Crsc.Api.Kubernetes;

// The subset of core/v1 Pod crsc reads and writes. Every partially modelled object keeps the fields it does not
// know in [JsonExtensionData] so that a read–modify–write (PUT) never drops them.

/// <summary>core/v1 Pod.</summary>
public sealed class Pod : IKubernetesObject
{
    public string? ApiVersion { get; set; } = "v1";
    public string? Kind { get; set; } = "Pod";
    public ObjectMeta Metadata { get; set; } = new();
    public PodSpec Spec { get; set; } = new();
    public PodStatus? Status { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class PodSpec
{
    public string? NodeName { get; set; }
    public List<Container> Containers { get; set; } = [];
    public List<Container>? InitContainers { get; set; }
    public List<Volume>? Volumes { get; set; }
    public string? ServiceAccountName { get; set; }
    public string? RestartPolicy { get; set; }
    public Dictionary<string, string>? NodeSelector { get; set; }
    /// <summary>Kept as raw JSON: crsc copies it, never interprets it.</summary>
    public JsonElement? Affinity { get; set; }
    public List<Toleration>? Tolerations { get; set; }
    public bool? HostNetwork { get; set; }
    public string? PriorityClassName { get; set; }
    public long? TerminationGracePeriodSeconds { get; set; }
    /// <summary>Secrets of the pod's namespace holding registry credentials for its images, tried in this order.</summary>
    public List<LocalObjectReference>? ImagePullSecrets { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>core/v1 LocalObjectReference: an object of the same namespace, by name.</summary>
public sealed class LocalObjectReference
{
    public string? Name { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class Container
{
    public string Name { get; set; } = "";
    public string? Image { get; set; }
    public string? ImagePullPolicy { get; set; }
    public List<string>? Command { get; set; }
    public List<string>? Args { get; set; }
    public string? WorkingDir { get; set; }
    public List<EnvVar>? Env { get; set; }
    public List<VolumeMount>? VolumeMounts { get; set; }
    public List<ContainerPort>? Ports { get; set; }
    /// <summary>Requests and limits, kept as raw JSON (quantities are strings crsc does not compute with).</summary>
    public JsonElement? Resources { get; set; }
    /// <summary>Kept as raw JSON: the failure detector only asks whether there is one.</summary>
    public JsonElement? LivenessProbe { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class EnvVar
{
    public string Name { get; set; } = "";
    public string? Value { get; set; }
    /// <summary>fieldRef / secretKeyRef / configMapKeyRef / resourceFieldRef, as raw JSON.</summary>
    public JsonElement? ValueFrom { get; set; }
}

public sealed class VolumeMount
{
    public string Name { get; set; } = "";
    public string MountPath { get; set; } = "";
    public bool? ReadOnly { get; set; }
    public string? SubPath { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class ContainerPort
{
    public string? Name { get; set; }
    [JsonPropertyName("containerPort")]
    public int Port { get; set; }
    public string? Protocol { get; set; }
    public int? HostPort { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class Volume
{
    public string Name { get; set; } = "";
    public HostPathVolumeSource? HostPath { get; set; }
    public SecretVolumeSource? Secret { get; set; }
    public ConfigMapVolumeSource? ConfigMap { get; set; }
    public JsonElement? EmptyDir { get; set; }
    public JsonElement? PersistentVolumeClaim { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class HostPathVolumeSource
{
    public string Path { get; set; } = "";
    public string? Type { get; set; }
}

public sealed class SecretVolumeSource
{
    public string? SecretName { get; set; }
    public bool? Optional { get; set; }
    public int? DefaultMode { get; set; }
    public List<KeyToPath>? Items { get; set; }
}

public sealed class ConfigMapVolumeSource
{
    public string? Name { get; set; }
    public bool? Optional { get; set; }
    public int? DefaultMode { get; set; }
    public List<KeyToPath>? Items { get; set; }
}

public sealed class KeyToPath
{
    public string Key { get; set; } = "";
    public string Path { get; set; } = "";
    public int? Mode { get; set; }
}

public sealed class Toleration
{
    public string? Key { get; set; }
    public string? Operator { get; set; }
    public string? Value { get; set; }
    public string? Effect { get; set; }
    public long? TolerationSeconds { get; set; }
}

public sealed class PodStatus
{
    /// <summary>Pending, Running, Succeeded, Failed, Unknown.</summary>
    public string? Phase { get; set; }
    public string? Message { get; set; }
    public string? Reason { get; set; }
    public string? HostIP { get; set; }
    public string? PodIP { get; set; }
    public DateTimeOffset? StartTime { get; set; }
    public List<PodCondition>? Conditions { get; set; }
    public List<ContainerStatus>? ContainerStatuses { get; set; }
    public List<ContainerStatus>? InitContainerStatuses { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed class PodCondition
{
    public string Type { get; set; } = "";
    public string Status { get; set; } = "";
    public string? Reason { get; set; }
    public string? Message { get; set; }
    public DateTimeOffset? LastProbeTime { get; set; }
    public DateTimeOffset? LastTransitionTime { get; set; }
}

public sealed class ContainerStatus
{
    public string Name { get; set; } = "";
    public bool Ready { get; set; }
    public int RestartCount { get; set; }
    public string? Image { get; set; }
    public string? ImageID { get; set; }
    public string? ContainerID { get; set; }
    public bool? Started { get; set; }
    public ContainerState? State { get; set; }
    public ContainerState? LastState { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>At most one of the three is set.</summary>
public sealed class ContainerState
{
    public ContainerStateRunning? Running { get; set; }
    public ContainerStateWaiting? Waiting { get; set; }
    public ContainerStateTerminated? Terminated { get; set; }
}

public sealed class ContainerStateRunning
{
    public DateTimeOffset? StartedAt { get; set; }
}

public sealed class ContainerStateWaiting
{
    /// <summary>ContainerCreating, CrashLoopBackOff, ImagePullBackOff, …</summary>
    public string? Reason { get; set; }
    public string? Message { get; set; }
}

public sealed class ContainerStateTerminated
{
    public int ExitCode { get; set; }
    public int? Signal { get; set; }
    public string? Reason { get; set; }
    public string? Message { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? FinishedAt { get; set; }
    public string? ContainerID { get; set; }
}

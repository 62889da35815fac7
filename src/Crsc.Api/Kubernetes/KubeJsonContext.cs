using System.Text.Json.Serialization;

namespace Crsc.Api.Kubernetes;

/// <summary>
/// Source-generated (AOT-clean) JSON for every Kubernetes type crsc uses. camelCase, nulls omitted.
/// Every <see cref="DateTimeOffset"/> is a <c>metav1.Time</c> (RFC 3339, seconds, <c>Z</c>) unless its property
/// carries <see cref="MicroTimeConverter"/>.
/// All [JsonSerializable] attributes must stay on this one declaration: the source generator fails when they are
/// spread over several partial declarations (see KubeJsonContext.Events.cs).
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true,
    Converters = [typeof(KubeTimeConverter)])]
[JsonSerializable(typeof(Lease))]
[JsonSerializable(typeof(KubeList<Lease>))]
[JsonSerializable(typeof(Pod))]
[JsonSerializable(typeof(KubeList<Pod>))]
[JsonSerializable(typeof(Deployment))]
[JsonSerializable(typeof(KubeList<Deployment>))]
[JsonSerializable(typeof(ReplicaSet))]
[JsonSerializable(typeof(KubeList<ReplicaSet>))]
[JsonSerializable(typeof(StatefulSet))]
[JsonSerializable(typeof(KubeList<StatefulSet>))]
[JsonSerializable(typeof(Node))]
[JsonSerializable(typeof(KubeList<Node>))]
[JsonSerializable(typeof(Secret))]
[JsonSerializable(typeof(KubeList<Secret>))]
[JsonSerializable(typeof(ConfigMap))]
[JsonSerializable(typeof(KubeList<ConfigMap>))]
[JsonSerializable(typeof(Namespace))]
[JsonSerializable(typeof(KubeList<Namespace>))]
[JsonSerializable(typeof(CoreEvent))]
[JsonSerializable(typeof(KubeList<CoreEvent>))]
[JsonSerializable(typeof(EventsV1Event))]
[JsonSerializable(typeof(KubeList<EventsV1Event>))]
[JsonSerializable(typeof(Status))]
[JsonSerializable(typeof(ObjectMeta))]
public sealed partial class KubeJsonContext : JsonSerializerContext;

/// <summary>The resource types crsc talks to.</summary>
public static class Resources
{
    public static readonly ResourceType<Lease> Leases = new(
        "coordination.k8s.io", "v1", "leases", "Lease", Namespaced: true,
        KubeJsonContext.Default.Lease, KubeJsonContext.Default.KubeListLease);

    public static readonly ResourceType<Pod> Pods = new(
        "", "v1", "pods", "Pod", Namespaced: true,
        KubeJsonContext.Default.Pod, KubeJsonContext.Default.KubeListPod);

    public static readonly ResourceType<Deployment> Deployments = new(
        "apps", "v1", "deployments", "Deployment", Namespaced: true,
        KubeJsonContext.Default.Deployment, KubeJsonContext.Default.KubeListDeployment);

    public static readonly ResourceType<ReplicaSet> ReplicaSets = new(
        "apps", "v1", "replicasets", "ReplicaSet", Namespaced: true,
        KubeJsonContext.Default.ReplicaSet, KubeJsonContext.Default.KubeListReplicaSet);

    public static readonly ResourceType<StatefulSet> StatefulSets = new(
        "apps", "v1", "statefulsets", "StatefulSet", Namespaced: true,
        KubeJsonContext.Default.StatefulSet, KubeJsonContext.Default.KubeListStatefulSet);

    public static readonly ResourceType<Node> Nodes = new(
        "", "v1", "nodes", "Node", Namespaced: false,
        KubeJsonContext.Default.Node, KubeJsonContext.Default.KubeListNode);

    public static readonly ResourceType<Secret> Secrets = new(
        "", "v1", "secrets", "Secret", Namespaced: true,
        KubeJsonContext.Default.Secret, KubeJsonContext.Default.KubeListSecret);

    public static readonly ResourceType<ConfigMap> ConfigMaps = new(
        "", "v1", "configmaps", "ConfigMap", Namespaced: true,
        KubeJsonContext.Default.ConfigMap, KubeJsonContext.Default.KubeListConfigMap);

    public static readonly ResourceType<Namespace> Namespaces = new(
        "", "v1", "namespaces", "Namespace", Namespaced: false,
        KubeJsonContext.Default.Namespace, KubeJsonContext.Default.KubeListNamespace);

    /// <summary>core/v1 Events.</summary>
    public static readonly ResourceType<CoreEvent> CoreEvents = EventResources.CoreEvents;

    /// <summary><c>events.k8s.io/v1</c> Events.</summary>
    public static readonly ResourceType<EventsV1Event> Events = new(
        "events.k8s.io", "v1", "events", "Event", Namespaced: true,
        KubeJsonContext.Default.EventsV1Event, KubeJsonContext.Default.KubeListEventsV1Event);
}

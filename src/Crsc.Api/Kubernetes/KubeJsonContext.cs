using System.Text.Json.Serialization;

namespace Crsc.Api.Kubernetes;

/// <summary>Source-generated (AOT-clean) JSON for every Kubernetes type crsc uses. camelCase, nulls omitted.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(Lease))]
[JsonSerializable(typeof(KubeList<Lease>))]
public sealed partial class KubeJsonContext : JsonSerializerContext;

/// <summary>The resource types crsc talks to.</summary>
public static class Resources
{
    public static readonly ResourceType<Lease> Leases = new(
        "coordination.k8s.io", "v1", "leases", "Lease", Namespaced: true,
        KubeJsonContext.Default.Lease, KubeJsonContext.Default.KubeListLease);
}

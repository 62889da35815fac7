using System.Text.Json.Serialization;

namespace Crsc.Api.Kubernetes;

/// <summary><c>coordination.k8s.io/v1</c> Lease.</summary>
public sealed class Lease : IKubernetesObject
{
    public string? ApiVersion { get; set; } = "coordination.k8s.io/v1";
    public string? Kind { get; set; } = "Lease";
    public ObjectMeta Metadata { get; set; } = new();
    public LeaseSpec Spec { get; set; } = new();
}

public sealed class LeaseSpec
{
    public string? HolderIdentity { get; set; }
    public int? LeaseDurationSeconds { get; set; }
    /// <summary>MicroTime on the wire (RFC 3339 with exactly six fractional digits).</summary>
    [JsonConverter(typeof(MicroTimeConverter))]
    public DateTimeOffset? AcquireTime { get; set; }
    [JsonConverter(typeof(MicroTimeConverter))]
    public DateTimeOffset? RenewTime { get; set; }
    public int? LeaseTransitions { get; set; }
}

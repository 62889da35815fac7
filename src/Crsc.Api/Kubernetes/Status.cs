using System.Text.Json.Serialization;

namespace Crsc.Api.Kubernetes;

/// <summary><c>metav1.Status</c>: the body of every API error (and of some successful deletes).</summary>
public sealed class Status
{
    public string? ApiVersion { get; set; } = "v1";
    public string? Kind { get; set; } = "Status";
    public ListMeta? Metadata { get; set; }
    /// <summary><c>status</c> on the wire: <c>Success</c> or <c>Failure</c>.</summary>
    [JsonPropertyName("status")]
    public string? Outcome { get; set; }
    public string? Message { get; set; }
    public string? Reason { get; set; }
    public StatusDetails? Details { get; set; }
    public int? Code { get; set; }
}

public sealed class StatusDetails
{
    public string? Name { get; set; }
    public string? Group { get; set; }
    public string? Kind { get; set; }
    public string? Uid { get; set; }
    public List<StatusCause>? Causes { get; set; }
    public int? RetryAfterSeconds { get; set; }
}

public sealed class StatusCause
{
    public string? Reason { get; set; }
    public string? Message { get; set; }
    public string? Field { get; set; }
}

namespace Crsc.Api.Kubernetes;

/// <summary>
/// A core/v1 Event as crsc's event recorder writes it: what <c>kubectl describe</c> and <c>kubectl get events</c>
/// show under the object. Repeats of the same event raise <see cref="Count"/> and <see cref="LastTimestamp"/>.
/// </summary>
public sealed class CoreEvent : IKubernetesObject
{
    public const string Normal = "Normal";
    public const string Warning = "Warning";

    public string? ApiVersion { get; set; } = "v1";
    public string? Kind { get; set; } = "Event";
    public ObjectMeta Metadata { get; set; } = new();
    public ObjectReference InvolvedObject { get; set; } = new();
    /// <summary>A short UpperCamelCase machine-readable reason (<c>CheckpointFailed</c>).</summary>
    public string? Reason { get; set; }
    public string? Message { get; set; }
    /// <summary><see cref="Normal"/> or <see cref="Warning"/>.</summary>
    public string? Type { get; set; }
    public CoreEventSource? Source { get; set; }
    public DateTimeOffset? FirstTimestamp { get; set; }
    public DateTimeOffset? LastTimestamp { get; set; }
    public int? Count { get; set; }
    /// <summary>The controller that emitted it (the Go field is <c>ReportingController</c>).</summary>
    public string? ReportingComponent { get; set; }
    /// <summary>Which instance of that controller (here: the daemon's identity on its node).</summary>
    public string? ReportingInstance { get; set; }
}

/// <summary>core/v1 <c>EventSource</c>.</summary>
public sealed class CoreEventSource
{
    public string? Component { get; set; }
    public string? Host { get; set; }
}

/// <summary>Where core/v1 Events live in the API.</summary>
public static class EventResources
{
    public static readonly ResourceType<CoreEvent> CoreEvents = new(
        "", "v1", "events", "Event", Namespaced: true,
        KubeJsonContext.Default.CoreEvent, KubeJsonContext.Default.KubeListCoreEvent);
}

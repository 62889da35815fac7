using Crsc.Api.Kubernetes;

namespace Crsc.Testing.Kube;

/// <summary>A resource the fake API server serves. Any kind, CRDs included: objects are stored as JSON.</summary>
public sealed record FakeResource(
    string Group,
    string Version,
    string Plural,
    string Kind,
    bool Namespaced,
    bool HasStatusSubresource,
    IReadOnlySet<string>? ExtraFieldSelectors = null)
{
    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    /// <summary><c>pods</c>, <c>deployments.apps</c>: how the API server names it in messages.</summary>
    public string QualifiedName => Group.Length == 0 ? Plural : $"{Plural}.{Group}";

    /// <summary>Field selectors this resource accepts: metadata.name and metadata.namespace, plus its own.</summary>
    public IReadOnlySet<string> FieldSelectors { get; } =
        new HashSet<string>(["metadata.name", "metadata.namespace", .. ExtraFieldSelectors ?? new HashSet<string>()]);

    public static FakeResource From<T>(ResourceType<T> type, bool hasStatusSubresource, params string[] fieldSelectors)
        where T : class, IKubernetesObject
        => new(type.Group, type.Version, type.Plural, type.Kind, type.Namespaced, hasStatusSubresource,
            new HashSet<string>(fieldSelectors));

    /// <summary>The built-in kinds crsc uses, with their status subresources and field selectors.</summary>
    public static IReadOnlyList<FakeResource> BuiltIn { get; } =
    [
        From(Resources.Pods, true, "spec.nodeName", "status.phase", "spec.restartPolicy", "spec.schedulerName",
            "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName", "spec.hostNetwork"),
        From(Resources.Deployments, true),
        From(Resources.ReplicaSets, true, "status.replicas"),
        From(Resources.StatefulSets, true, "status.successful"),
        From(Resources.Nodes, true, "spec.unschedulable"),
        From(Resources.Namespaces, true, "status.phase"),
        From(Resources.Secrets, false, "type"),
        From(Resources.ConfigMaps, false),
        From(Resources.Leases, false),
        From(Resources.CoreEvents, false, "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
            "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
            "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
        From(Resources.Events, false, "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
            "reason", "reportingController", "type"),
    ];
}

/// <summary>One request as the fake saw it, for assertions such as "no writes happened".</summary>
public sealed record FakeRequest(string Method, string Path, string Query, string? ContentType, string? User, string Protocol = "")
{
    public bool IsWrite => Method is "POST" or "PUT" or "PATCH" or "DELETE";
    public bool IsWatch => Query.Contains("watch=1", StringComparison.Ordinal) || Query.Contains("watch=true", StringComparison.Ordinal);
    public override string ToString() => $"{Method} {Path}{Query} ({ContentType ?? "-"})";
}

public sealed class FakeApiServerOptions
{
    /// <summary>Serve HTTPS with a certificate of <see cref="FakeApiServer.Pki"/> and accept its client certificates.</summary>
    public bool Tls { get; init; }

    /// <summary>Bearer tokens accepted at start (more with <see cref="FakeApiServer.AcceptToken"/>).</summary>
    public IEnumerable<string> Tokens { get; init; } = [];

    /// <summary>
    /// Refuse anonymous requests with 401. Default: on when TLS or tokens are configured, off otherwise.
    /// </summary>
    public bool? RequireAuthentication { get; init; }

    /// <summary>Between periodic BOOKMARK events of watches that allow them.</summary>
    public TimeSpan BookmarkInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Stamps creationTimestamp/deletionTimestamp and drives the bookmark timer.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Kinds served besides <see cref="FakeResource.BuiltIn"/> (CRDs).</summary>
    public IEnumerable<FakeResource> Resources { get; init; } = [];
}

/// <summary>An error the fake answers with a real <c>metav1.Status</c> body.</summary>
internal sealed class FakeStatusException(int code, string reason, string message, FakeResource? resource = null, string? name = null)
    : Exception(message)
{
    public int Code { get; } = code;
    public string Reason { get; } = reason;
    public FakeResource? Resource { get; } = resource;
    public string? Name { get; } = name;
}

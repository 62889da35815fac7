using System.Text.Json;
using System.Text.Json.Nodes;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.Restores;

/// <summary>
/// The container a restore's patch replaced: what the pod's status said about it when the API server took the patch.
/// The patch carries the resourceVersion of the pod it was made from, so this is exactly the status the server held
/// then — and the kubelet cannot have acted on an image the server had not stored yet, so neither this container nor
/// any state the status reports for it is the restored container's, however late it is reported or however it is
/// stamped. Written by the patch itself into <see cref="Annotations.ReplacedContainer"/>.
/// </summary>
internal sealed record ReplacedContainer(string Container, string? ContainerId, int RestartCount, string State)
{
    public static ReplacedContainer Of(Pod pod, string container)
    {
        var cs = RestorePods.StatusOf(pod, container);
        return new ReplacedContainer(container, string.IsNullOrEmpty(cs?.ContainerID) ? null : cs.ContainerID, cs?.RestartCount ?? 0,
            StateOf(cs?.State));
    }

    /// <summary><c>running</c>, <c>terminated</c>, <c>waiting:&lt;reason&gt;</c>, or empty.</summary>
    public static string StateOf(ContainerState? state) => state switch
    {
        { Running: not null } => "running",
        { Terminated: not null } => "terminated",
        { Waiting: { } w } => "waiting:" + w.Reason,
        _ => "",
    };

    public string ToAnnotation() => new JsonObject
    {
        ["container"] = Container,
        ["containerID"] = ContainerId,
        ["restartCount"] = RestartCount,
        ["state"] = State,
    }.ToJsonString();

    /// <summary>The record on <paramref name="pod"/> for <paramref name="container"/>, or null (none, another container's, unreadable).</summary>
    public static ReplacedContainer? Read(Pod pod, string container)
    {
        if (pod.Metadata.Annotations?.GetValueOrDefault(Annotations.ReplacedContainer) is not { Length: > 0 } text) return null;
        try
        {
            if (JsonNode.Parse(text) is not JsonObject o || (string?)o["container"] != container) return null;
            return new ReplacedContainer(container, (string?)o["containerID"], (int?)o["restartCount"] ?? 0, (string?)o["state"] ?? "");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }
}

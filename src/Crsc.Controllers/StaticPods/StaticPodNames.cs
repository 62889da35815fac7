using System.Text.RegularExpressions;
using Crsc.Api;
using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.StaticPods;

/// <summary>A name from the cluster that cannot become a path (or a checkpoint) safely.</summary>
public sealed class InvalidStaticPodNameException(string kind, string value, string reason)
    : Exception($"{kind} \"{value}\" is refused: {reason}")
{
    public string Kind { get; } = kind;
    public string Value { get; } = value;
}

/// <summary>
/// Which pods are static-pod checkpoint parents, which are checkpoints, and the name rules every cluster name
/// passes before it touches a path. A name that passes contains no '/', no NUL and is neither '.' nor '..'.
/// </summary>
public static partial class StaticPodNames
{
    /// <summary>bootkube's marker of a checkpoint, accepted like <see cref="Annotations.CheckpointOf"/>.</summary>
    public const string CoreOsCheckpointOf = "checkpointer.alpha.coreos.com/checkpoint-of";
    /// <summary>The kubelet's annotation on the mirror pod of a static pod.</summary>
    public const string ConfigMirror = "kubernetes.io/config.mirror";
    /// <summary>Where the kubelet got a pod from: <c>api</c>, <c>file</c>, <c>http</c>.</summary>
    public const string ConfigSource = "kubernetes.io/config.source";

    /// <summary>Annotated for a static-pod checkpoint (either annotation, value <c>"true"</c>).</summary>
    public static bool WantsCheckpoint(Pod pod) =>
        pod.Metadata.Annotations is { } a
        && (a.GetValueOrDefault(Annotations.StaticCheckpoint) == "true" || a.GetValueOrDefault(Annotations.CoreOsCheckpoint) == "true");

    /// <summary>A static pod (its mirror in the API, or a pod the kubelet read from a file or URL).</summary>
    public static bool IsStatic(Pod pod) =>
        pod.Metadata.Annotations is { } a
        && (a.ContainsKey(ConfigMirror) || a.TryGetValue(ConfigSource, out var source) && source != "api");

    /// <summary>A checkpoint itself (crsc's or bootkube's marker).</summary>
    public static bool IsCheckpoint(Pod pod) =>
        pod.Metadata.Annotations is { } a && (a.ContainsKey(Annotations.CheckpointOf) || a.ContainsKey(CoreOsCheckpointOf));

    /// <summary>
    /// A parent: annotated, scheduled to <paramref name="nodeName"/>, neither static nor a checkpoint, not being
    /// deleted, and not finished (a Succeeded/Failed pod is not kept alive).
    /// </summary>
    public static bool IsParent(Pod pod, string nodeName) =>
        WantsCheckpoint(pod) && !IsStatic(pod) && !IsCheckpoint(pod)
        && pod.Spec.NodeName == nodeName
        && pod.Metadata.DeletionTimestamp is null
        && pod.Status?.Phase is not ("Succeeded" or "Failed");

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?\\z", RegexOptions.CultureInvariant)]
    private static partial Regex Dns1123Label();

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\\z", RegexOptions.CultureInvariant)]
    private static partial Regex Dns1123Subdomain();

    [GeneratedRegex("^[-._a-zA-Z0-9]+\\z", RegexOptions.CultureInvariant)]
    private static partial Regex DataKey();

    /// <summary>A namespace: a DNS-1123 label.</summary>
    public static string Namespace(string? value)
    {
        if (string.IsNullOrEmpty(value)) throw new InvalidStaticPodNameException("namespace", value ?? "", "must not be empty");
        if (value.Length > 63 || !Dns1123Label().IsMatch(value))
            throw new InvalidStaticPodNameException("namespace", value, "not a DNS-1123 label (lower-case letters, digits and '-', at most 63)");
        return value;
    }

    /// <summary>A pod, Secret or ConfigMap name: a DNS-1123 subdomain.</summary>
    public static string Object(string kind, string? value)
    {
        if (string.IsNullOrEmpty(value)) throw new InvalidStaticPodNameException(kind, value ?? "", "must not be empty");
        if (value.Length > 253 || !Dns1123Subdomain().IsMatch(value))
            throw new InvalidStaticPodNameException(kind, value, "not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253)");
        return value;
    }

    /// <summary>A key of a Secret's or ConfigMap's data (the API's rule: <c>[-._a-zA-Z0-9]+</c>, not '.', not starting with '..').</summary>
    public static string DataKeyName(string? value)
    {
        if (string.IsNullOrEmpty(value)) throw new InvalidStaticPodNameException("data key", value ?? "", "must not be empty");
        if (value.Length > 253 || !DataKey().IsMatch(value) || value == "." || value.StartsWith("..", StringComparison.Ordinal))
            throw new InvalidStaticPodNameException("data key", value, "not a valid key ([-._a-zA-Z0-9]+, not '.', not starting with '..')");
        return value;
    }

    /// <summary>The parent's key after both names passed.</summary>
    public static ObjectKey Parent(Pod pod) =>
        new(Namespace(pod.Metadata.Namespace), Object("pod name", pod.Metadata.Name));

    /// <summary>The checkpoint's file name (without extension): <c>&lt;namespace&gt;-&lt;name&gt;</c>, as bootkube names it.</summary>
    public static string FileStem(ObjectKey parent) => $"{parent.Namespace}-{parent.Name}";
}

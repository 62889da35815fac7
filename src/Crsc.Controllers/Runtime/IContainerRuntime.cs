using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.Runtime;

/// <summary>
/// The container runtime of this node, as crsc needs it (a CRI runtime: CRI-O, containerd).
/// Implemented over the CRI socket by <c>Crsc.Cri.CriContainerRuntime</c>. Values are plain records;
/// errors are the <see cref="ContainerRuntimeException"/> family.
/// </summary>
public interface IContainerRuntime : IContainerCheckpointer
{
    /// <summary>The runtime's name and versions (CRI <c>Version</c>).</summary>
    Task<RuntimeVersion> VersionAsync(CancellationToken ct);

    /// <summary>
    /// CRI <c>RuntimeService/Status</c>: the runtime's conditions and, with <paramref name="verbose"/>, its extra
    /// information (containerd puts its CRI configuration as JSON under <c>info["config"]</c>).
    /// </summary>
    Task<RuntimeStatusInfo> StatusAsync(bool verbose, CancellationToken ct);

    Task<IReadOnlyList<PodSandboxInfo>> ListPodSandboxesAsync(PodSandboxFilter? filter, CancellationToken ct);

    Task<IReadOnlyList<ContainerInfo>> ListContainersAsync(ContainerFilter? filter, CancellationToken ct);

    /// <param name="verbose">ask for the runtime's extra information (<see cref="ContainerStatusInfo.Info"/>)</param>
    /// <exception cref="ContainerNotFoundException">no such container</exception>
    Task<ContainerStatusInfo> ContainerStatusAsync(string containerId, bool verbose, CancellationToken ct);

    /// <summary>
    /// Checkpoints a running container into <paramref name="archivePath"/> (a tar written by the runtime).
    /// The container keeps running. The call is bounded by <paramref name="timeout"/> on crsc's side.
    /// </summary>
    /// <exception cref="ContainerNotFoundException">no such container</exception>
    /// <exception cref="CheckpointNotSupportedException">the runtime cannot checkpoint</exception>
    Task CheckpointContainerAsync(string containerId, string archivePath, TimeSpan timeout, CancellationToken ct);

    /// <summary>
    /// CRI <c>StopContainer</c>: the runtime signals the container's process and kills it after
    /// <paramref name="gracePeriod"/> (zero: killed at once). Idempotent, as the CRI asks: stopping a container that has
    /// stopped already, or is not there at all, succeeds (containerd 2.1 answers both with success).
    /// </summary>
    Task StopContainerAsync(string containerId, TimeSpan gracePeriod, CancellationToken ct);

    /// <summary>Pulls an image; returns the runtime's reference to it (an image ID or digest).</summary>
    Task<string> PullImageAsync(string image, RegistryAuth? auth, PodIdentity? sandbox, CancellationToken ct);

    /// <summary>The image, or null when the runtime does not have it.</summary>
    Task<ImageInfo?> ImageStatusAsync(string image, CancellationToken ct);

    /// <summary>CRI <c>RemoveImage</c>: the runtime forgets the image (removing one it does not have succeeds).</summary>
    Task RemoveImageAsync(string image, CancellationToken ct);
}

/// <summary>CRI <c>VersionResponse</c>.</summary>
public sealed record RuntimeVersion(string ApiVersion, string RuntimeName, string RuntimeVersionString, string RuntimeApiVersion);

/// <summary>CRI <c>StatusResponse</c>: the runtime's conditions and its verbose information (JSON values by key).</summary>
public sealed record RuntimeStatusInfo(IReadOnlyList<RuntimeCondition> Conditions, IReadOnlyDictionary<string, string> Info);

/// <summary>CRI <c>RuntimeCondition</c> (<c>RuntimeReady</c>, <c>NetworkReady</c>, runtime-specific ones).</summary>
public sealed record RuntimeCondition(string Type, bool Status, string Reason, string Message);

public enum PodSandboxState { Ready, NotReady }

public enum ContainerState { Created, Running, Exited, Unknown }

/// <summary>The pod a sandbox belongs to (CRI <c>PodSandboxMetadata</c>).</summary>
public sealed record PodIdentity(string Namespace, string Name, string Uid, uint Attempt = 0);

/// <summary>All set fields must match (AND); labels are matched exactly.</summary>
public sealed record PodSandboxFilter(
    string? Id = null,
    PodSandboxState? State = null,
    IReadOnlyDictionary<string, string>? Labels = null);

/// <summary>All set fields must match (AND); labels are matched exactly.</summary>
public sealed record ContainerFilter(
    string? Id = null,
    ContainerState? State = null,
    string? PodSandboxId = null,
    IReadOnlyDictionary<string, string>? Labels = null);

public sealed record PodSandboxInfo(
    string Id,
    PodIdentity Pod,
    PodSandboxState State,
    DateTimeOffset CreatedAt,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyDictionary<string, string> Annotations,
    string RuntimeHandler);

public sealed record ContainerInfo(
    string Id,
    string PodSandboxId,
    string Name,
    uint Attempt,
    string Image,
    string ImageRef,
    ContainerState State,
    DateTimeOffset CreatedAt,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyDictionary<string, string> Annotations)
{
    /// <summary>The pod's namespace, from the kubelet's <c>io.kubernetes.pod.namespace</c> label.</summary>
    public string? PodNamespace => Labels.GetValueOrDefault(KubeletLabels.PodNamespace);
    /// <summary>The pod's name, from the kubelet's <c>io.kubernetes.pod.name</c> label.</summary>
    public string? PodName => Labels.GetValueOrDefault(KubeletLabels.PodName);
    /// <summary>The pod's UID, from the kubelet's <c>io.kubernetes.pod.uid</c> label.</summary>
    public string? PodUid => Labels.GetValueOrDefault(KubeletLabels.PodUid);
    /// <summary>The container's name in the pod spec, from <c>io.kubernetes.container.name</c>.</summary>
    public string? ContainerName => Labels.GetValueOrDefault(KubeletLabels.ContainerName);
}

public sealed record ContainerStatusInfo(
    string Id,
    string Name,
    uint Attempt,
    ContainerState State,
    DateTimeOffset CreatedAt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? FinishedAt,
    int ExitCode,
    string Image,
    string ImageRef,
    string Reason,
    string Message,
    string LogPath,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyDictionary<string, string> Annotations,
    IReadOnlyDictionary<string, string> Info);

public sealed record ImageInfo(
    string Id,
    IReadOnlyList<string> RepoTags,
    IReadOnlyList<string> RepoDigests,
    ulong Size,
    bool Pinned);

/// <summary>Registry credentials for a pull (CRI <c>AuthConfig</c>). <see cref="ToString"/> hides the secrets.</summary>
public sealed record RegistryAuth(
    string? Username = null,
    string? Password = null,
    string? Auth = null,
    string? ServerAddress = null,
    string? IdentityToken = null,
    string? RegistryToken = null)
{
    public override string ToString() =>
        IdentityToken is { Length: > 0 } ? "identity token" : RegistryToken is { Length: > 0 } ? "registry token"
        : Username is { Length: > 0 } ? $"user '{Username}'" : Auth is { Length: > 0 } ? "auth" : "no credentials";
}

/// <summary>
/// Credentials a node agent hands the runtime for one image pull of a restore: a short-lived token that lets the runtime
/// pull that checkpoint image (and nothing else) from crsc's image endpoint. Null: the image needs none from crsc (a
/// base image, or a checkpoint image in a registry with its own credentials).
/// </summary>
public interface IPullCredentials
{
    /// <param name="image">the image reference to pull</param>
    /// <param name="restoreNamespace">the namespace of the Restore the pull is for: a token is only minted for that
    /// namespace's checkpoint images</param>
    RegistryAuth? For(string image, string restoreNamespace);
}

/// <summary>Asks this node's runtime monitor to probe the runtime again now, not at its next interval.</summary>
public interface IRuntimeProbeTrigger
{
    /// <param name="why">what made the probe worth doing now (logged)</param>
    void ProbeNow(string why);
}

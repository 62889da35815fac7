namespace Crsc.Controllers.Runtime;

/// <summary>
/// The one call the checkpoint path needs, whichever way it goes: through the CRI socket
/// (<c>runtime.checkpointVia: cri</c>, the default) or through the kubelet's checkpoint API
/// (<c>kubelet</c>).
/// </summary>
public interface IContainerCheckpointer
{
    /// <summary>
    /// Checkpoints one container and returns where the archive is. A CRI runtime writes it to
    /// <paramref name="archivePath"/>; the kubelet chooses its own path under
    /// <c>/var/lib/kubelet/checkpoints</c> and the returned path says which.
    /// </summary>
    /// <exception cref="ContainerNotFoundException">no such pod or container</exception>
    /// <exception cref="CheckpointNotSupportedException">the runtime or kubelet cannot checkpoint</exception>
    /// <exception cref="ContainerRuntimeException">any other failure; <see cref="ContainerRuntimeException.Transient"/> says whether to retry</exception>
    Task<CheckpointArchive> CheckpointAsync(CheckpointTarget target, string archivePath, TimeSpan timeout, CancellationToken ct);
}

/// <summary>
/// The container to checkpoint. The kubelet needs the pod and container names; CRI needs the
/// container ID and finds it from the names (kubelet labels) when <see cref="ContainerId"/> is null.
/// </summary>
public sealed record CheckpointTarget(string Namespace, string Pod, string Container, string? ContainerId = null);

/// <summary>Where the runtime left the archive.</summary>
public sealed record CheckpointArchive(string Path);

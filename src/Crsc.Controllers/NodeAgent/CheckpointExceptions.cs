using Crsc.Controllers.Runtime;

namespace Crsc.Controllers.NodeAgent;

/// <summary>
/// The request does not name exactly one running container on this node: no such pod or container, several
/// candidates for a request without a container name, or a container that is not running. Terminal (kind
/// <see cref="ContainerRuntimeErrorKind.NotFound"/>): the same request fails the same way until the pod changes.
/// </summary>
public sealed class ContainerResolutionException(string message, IReadOnlyList<string> candidates, ContainerState? state = null)
    : ContainerRuntimeException(ContainerRuntimeErrorKind.NotFound, message)
{
    /// <summary>The containers of the pod the runtime knows (names), to help the user pick one.</summary>
    public IReadOnlyList<string> Candidates { get; } = candidates;

    /// <summary>The state of the named container when it exists but is not running.</summary>
    public ContainerState? State { get; } = state;
}

/// <summary>
/// The runtime failed to checkpoint a container. Wraps the runtime's error once, naming the container, and keeps
/// its kind, code and message; <see cref="CriuLog"/> holds the end of CRIU's log when the runtime left one.
/// </summary>
public sealed class CheckpointFailedException(
    ContainerRuntimeException inner, string message, string containerId, string? criuLog, string? criuLogPath)
    : ContainerRuntimeException(inner.Kind, message, inner.Code, inner.RuntimeMessage ?? inner.Message, inner)
{
    public string ContainerId { get; } = containerId;

    /// <summary>The last ~4 KiB of CRIU's log (see <c>ContainerCheckpointStatus.CriuLogExcerpt</c>), or null.</summary>
    public string? CriuLog { get; } = criuLog;

    /// <summary>Where the log was found (a file, or <c>archive!dump.log</c>), or null.</summary>
    public string? CriuLogPath { get; } = criuLogPath;
}

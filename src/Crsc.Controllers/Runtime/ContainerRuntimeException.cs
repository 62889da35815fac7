namespace Crsc.Controllers.Runtime;

public enum ContainerRuntimeErrorKind
{
    /// <summary>Any other error reported by the runtime; see the code and message.</summary>
    Failed,
    /// <summary>The pod, sandbox, container or image does not exist. Terminal.</summary>
    NotFound,
    /// <summary>The runtime could not be reached or is overloaded. Transient.</summary>
    Unavailable,
    /// <summary>The call ran past its deadline. Transient.</summary>
    DeadlineExceeded,
    /// <summary>The runtime (or kubelet) does not support the operation, e.g. checkpointing. Terminal.</summary>
    NotSupported,
    /// <summary>Credentials were missing or refused (kubelet 401/403). Terminal until reconfigured.</summary>
    Unauthorized,
}

/// <summary>
/// An error from the container runtime (or the kubelet's checkpoint API), with the runtime's own
/// code (a gRPC status name such as <c>Internal</c>, or an HTTP status) and message kept.
/// </summary>
public class ContainerRuntimeException(
    ContainerRuntimeErrorKind kind, string message, string? code = null, string? runtimeMessage = null, Exception? inner = null)
    : Exception(message, inner)
{
    public ContainerRuntimeErrorKind Kind { get; } = kind;

    /// <summary>The runtime's code: a gRPC status name (<c>Internal</c>, <c>Unknown</c>…) or an HTTP status (<c>500</c>).</summary>
    public string? Code { get; } = code;

    /// <summary>The runtime's own message, unchanged (e.g. CRIU's failure text).</summary>
    public string? RuntimeMessage { get; } = runtimeMessage;

    /// <summary>True when the same call may succeed later (unreachable runtime, deadline).</summary>
    public bool Transient => Kind is ContainerRuntimeErrorKind.Unavailable or ContainerRuntimeErrorKind.DeadlineExceeded;
}

/// <summary>The container, pod, sandbox or image named in the call does not exist.</summary>
public sealed class ContainerNotFoundException(string message, string? code = null, string? runtimeMessage = null, Exception? inner = null)
    : ContainerRuntimeException(ContainerRuntimeErrorKind.NotFound, message, code, runtimeMessage, inner);

/// <summary>The runtime (or the kubelet) cannot checkpoint containers.</summary>
public sealed class CheckpointNotSupportedException(string message, string? code = null, string? runtimeMessage = null, Exception? inner = null)
    : ContainerRuntimeException(ContainerRuntimeErrorKind.NotSupported, message, code, runtimeMessage, inner);

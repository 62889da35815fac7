namespace Crsc.Controllers.Kubernetes;

/// <summary>
/// An error answered by the API server (a <c>metav1.Status</c>), keeping its HTTP code, reason and message.
/// </summary>
public class KubeApiException(int code, string reason, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public int Code { get; } = code;
    /// <summary><c>Status.reason</c>: NotFound, Conflict, AlreadyExists, Expired, Gone, Forbidden, Invalid, …</summary>
    public string Reason { get; } = reason;

    /// <summary>Maps a Status to the most specific exception type.</summary>
    public static KubeApiException From(int code, string? reason, string? message)
    {
        reason ??= "";
        message ??= $"the API server answered {code} {reason}".TrimEnd();
        return code switch
        {
            404 => new NotFoundException(reason, message),
            409 when reason == "AlreadyExists" => new AlreadyExistsException(reason, message),
            409 => new ConflictException(reason, message),
            410 => new ResourceExpiredException(reason, message),
            401 => new UnauthorizedException(reason, message),
            403 => new ForbiddenException(reason, message),
            422 => new InvalidException(reason, message),
            _ => new KubeApiException(code, reason, message),
        };
    }
}

public sealed class NotFoundException(string reason, string message) : KubeApiException(404, reason, message);
/// <summary>409 for a stale resourceVersion or a failed precondition.</summary>
public sealed class ConflictException(string reason, string message) : KubeApiException(409, reason, message);
public sealed class AlreadyExistsException(string reason, string message) : KubeApiException(409, reason, message);
/// <summary>410 Gone: a watch or list resourceVersion was compacted away; relist.</summary>
public sealed class ResourceExpiredException(string reason, string message) : KubeApiException(410, reason, message);
public sealed class UnauthorizedException(string reason, string message) : KubeApiException(401, reason, message);
public sealed class ForbiddenException(string reason, string message) : KubeApiException(403, reason, message);
public sealed class InvalidException(string reason, string message) : KubeApiException(422, reason, message);

/// <summary>The API server could not be reached at all (connection refused, DNS, TLS, timeout).</summary>
public sealed class KubeUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

namespace Crsc.Cri.Grpc;

/// <summary>The gRPC status codes (the numbers are the wire values of <c>grpc-status</c>).</summary>
public enum GrpcStatusCode
{
    OK = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

/// <summary>A unary call ended with a status other than OK (from the server, or decided by the client).</summary>
public sealed class GrpcCallException(GrpcStatusCode status, string statusMessage, string method, Exception? inner = null)
    : Exception($"{method}: {status}: {statusMessage}", inner)
{
    public GrpcStatusCode Status { get; } = status;
    /// <summary>The decoded <c>grpc-message</c>, or the client's own explanation.</summary>
    public string StatusMessage { get; } = statusMessage;
    /// <summary>The full method path, e.g. <c>/runtime.v1.RuntimeService/Version</c>.</summary>
    public string Method { get; } = method;
}

using Crsc.Cri.Grpc;

namespace Crsc.Testing.Cri;

/// <summary>How <see cref="FakeCriServer"/> breaks the wire format on purpose.</summary>
public enum CriMalformation
{
    None,
    /// <summary>The response message's compressed flag is 1 (no compression was negotiated).</summary>
    CompressedFlag,
    /// <summary>The frame header announces more bytes than follow, then the stream ends with OK.</summary>
    TruncatedFrame,
    /// <summary>Two messages in a unary response.</summary>
    TwoMessages,
    /// <summary>OK status but no message.</summary>
    NoMessage,
    /// <summary>A frame whose payload is not a valid protobuf message.</summary>
    GarbageMessage,
    /// <summary>The message, but no <c>grpc-status</c> trailer.</summary>
    NoStatus,
    /// <summary>An HTTP 503 without any gRPC status.</summary>
    Http503,
    /// <summary>A response with <c>content-type: text/plain</c>.</summary>
    WrongContentType,
}

/// <summary>
/// A fault injected for one method of <see cref="FakeCriServer"/>: an error status (in trailers or
/// trailers-only), a delay before answering, or a malformed response. <see cref="Times"/> bounds how
/// many calls it affects.
/// </summary>
public sealed record CriFault
{
    public GrpcStatusCode Status { get; init; } = GrpcStatusCode.OK;
    /// <summary>Sent as <c>grpc-message</c>, percent-encoded.</summary>
    public string Message { get; init; } = "";
    /// <summary>Send the status in the response headers with no body (a trailers-only response).</summary>
    public bool TrailersOnly { get; init; }
    /// <summary>Wait this long before answering (the request's abort ends the wait).</summary>
    public TimeSpan Delay { get; init; }
    public CriMalformation Malformation { get; init; }
    /// <summary>How many calls this fault affects; then the method behaves normally again.</summary>
    public int Times { get; init; } = int.MaxValue;

    public static CriFault Error(GrpcStatusCode status, string message, bool trailersOnly = false) =>
        new() { Status = status, Message = message, TrailersOnly = trailersOnly };

    public static CriFault Delayed(TimeSpan delay) => new() { Delay = delay };

    public static CriFault Malformed(CriMalformation malformation) => new() { Malformation = malformation };
}

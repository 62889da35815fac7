namespace Crsc.Cri;

public sealed record CriClientOptions
{
    /// <summary><c>runtime.endpoint</c>: the CRI socket (default CRI-O's).</summary>
    public string Endpoint { get; init; } = CriEndpoint.Default;
    /// <summary>Deadline of every call that has none of its own (the kubelet uses 2 minutes).</summary>
    public TimeSpan DefaultTimeout { get; init; } = TimeSpan.FromMinutes(2);
    /// <summary>Deadline of <c>PullImage</c> (large images take a while).</summary>
    public TimeSpan PullImageTimeout { get; init; } = TimeSpan.FromMinutes(15);
    public int MaxReceiveMessageSize { get; init; } = 16 * 1024 * 1024;
    public int MaxSendMessageSize { get; init; } = 16 * 1024 * 1024;
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

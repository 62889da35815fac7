namespace Crsc.Controllers.NodeAgent;

/// <summary>
/// Holds a pod's incoming traffic in its interceptor sidecar (<c>crsc interceptor</c>) while crsc works on its app:
/// requests wait (bounded) instead of meeting a frozen process or a closed port.
/// </summary>
public interface IPodTrafficHold
{
    /// <summary>
    /// Holds the traffic of the pod <paramref name="podUid"/>; disposing the result releases it. Null when the pod has no
    /// interceptor (nothing to hold). Never throws for a sidecar that does not answer: it says so in the log and returns
    /// null, since a checkpoint or restore must not fail because traffic could not be held.
    /// </summary>
    Task<IHeldTraffic?> HoldAsync(string ns, string pod, string podUid, string reason, CancellationToken ct);
}

/// <summary>
/// A hold of a pod's traffic (dispose: release). Its interceptor may keep a replay log (<c>crsc.io/interceptor-replay</c>);
/// the hold remembers where the log was when it began, for the two steps that concern it. Neither throws for a sidecar
/// that does not answer (they say so in the log): the checkpoint or restore has happened either way.
/// </summary>
public interface IHeldTraffic : IAsyncDisposable
{
    /// <summary>
    /// The checkpoint this hold was for is committed: the requests logged before the hold are in its state, so the
    /// interceptor drops them from its log. Called after the release (the ingest comes after the runtime's call).
    /// </summary>
    Task CheckpointCommittedAsync(CancellationToken ct);

    /// <summary>
    /// The restore this hold was for brought the app back: the interceptor replays its log to it (in order) while the
    /// traffic is still held. Called just before the release. Null when the pod's interceptor keeps no replay log.
    /// </summary>
    Task<ReplayOutcome?> ReplayAsync(CancellationToken ct);
}

/// <summary>What a replay did: the requests the restored app answered, or why it stopped (the log is kept then).</summary>
public sealed record ReplayOutcome(bool Succeeded, int Replayed, string? Error = null);

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
    Task<IAsyncDisposable?> HoldAsync(string ns, string pod, string podUid, string reason, CancellationToken ct);
}

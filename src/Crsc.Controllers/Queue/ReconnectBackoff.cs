using Crsc.Controllers.Kubernetes;

namespace Crsc.Controllers.Queue;

/// <summary>
/// The wait before a loop that talks to the API server tries again. An error the server answered (a 5xx, a 429, a
/// watch it ended or broke) backs off exponentially up to the long cap, so that a live server in trouble is not
/// pressed. While the server cannot be reached at all (<see cref="KubeUnavailableException"/>: refused, reset, timed
/// out) the wait grows only up to a short cap, stretched by at most <see cref="MaxUnreachableJitter"/>, so that the
/// loop is back within seconds of the server's return: a refused connection costs a server that is away nothing,
/// and the short cap still keeps each loop to one attempt every few seconds. Not thread-safe: one per loop.
/// </summary>
public sealed class ReconnectBackoff
{
    /// <summary>The short cap's default: 3 s, stretched by up to 25 %, so at most 3.75 s between attempts.</summary>
    public static readonly TimeSpan DefaultUnreachableMax = TimeSpan.FromSeconds(3);

    /// <summary>While unreachable, the jitter is the loop's own, but at most this share of the wait.</summary>
    public const double MaxUnreachableJitter = 0.25;

    private readonly Backoff _failing;
    private readonly Backoff _unreachable;

    /// <param name="initial">the first wait, either way</param>
    /// <param name="max">the cap for errors the server answered</param>
    /// <param name="unreachableMax">the cap while it cannot be reached (never above <paramref name="max"/>)</param>
    public ReconnectBackoff(TimeSpan initial, TimeSpan max, TimeSpan unreachableMax, double jitter = 1.0, Random? random = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(unreachableMax, TimeSpan.Zero);
        _failing = new Backoff(initial, max, jitter, random);
        var shortMax = unreachableMax < max ? unreachableMax : max;
        _unreachable = new Backoff(initial < shortMax ? initial : shortMax, shortMax, Math.Min(jitter, MaxUnreachableJitter), random);
    }

    /// <summary>The wait after <paramref name="error"/> (null: the server ended a stream without an error).</summary>
    public TimeSpan Next(Exception? error) => error is KubeUnavailableException ? _unreachable.Next() : _failing.Next();

    /// <summary>Back to the initial waits (after success).</summary>
    public void Reset()
    {
        _failing.Reset();
        _unreachable.Reset();
    }
}

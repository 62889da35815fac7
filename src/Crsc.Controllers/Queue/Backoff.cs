namespace Crsc.Controllers.Queue;

/// <summary>
/// Exponential backoff with jitter for reconnect loops: <c>initial</c>, doubling up to <c>max</c>, each wait
/// stretched by a random fraction up to <c>jitter</c> of itself (client-go's <c>wait.Backoff</c> with jitter).
/// Not thread-safe: one per loop.
/// </summary>
public sealed class Backoff
{
    private readonly TimeSpan _initial;
    private readonly TimeSpan _max;
    private readonly double _jitter;
    private readonly Random _random;
    private TimeSpan _next;

    public Backoff(TimeSpan initial, TimeSpan max, double jitter = 1.0, Random? random = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(initial, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(max, initial);
        ArgumentOutOfRangeException.ThrowIfNegative(jitter);
        _initial = initial;
        _max = max;
        _jitter = jitter;
        _random = random ?? Random.Shared;
        _next = initial;
    }

    /// <summary>The next wait; the one after is twice as long (up to the maximum).</summary>
    public TimeSpan Next()
    {
        var wait = _next;
        _next = TimeSpan.FromTicks(Math.Min(_max.Ticks, Math.Max(1, _next.Ticks) * 2));
        return Jittered(wait, _jitter, _random);
    }

    /// <summary>Back to the initial wait (after success).</summary>
    public void Reset() => _next = _initial;

    /// <summary><paramref name="wait"/> plus a random share of up to <paramref name="jitter"/> of it.</summary>
    public static TimeSpan Jittered(TimeSpan wait, double jitter, Random random)
        => jitter <= 0 ? wait : wait + TimeSpan.FromTicks((long)(wait.Ticks * jitter * random.NextDouble()));
}

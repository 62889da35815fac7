namespace Crsc.Controllers.Queue;

/// <summary>How long a key waits before it is retried (client-go's <c>workqueue.TypedRateLimiter</c>).</summary>
public interface IRateLimiter<in TKey> where TKey : notnull
{
    /// <summary>The delay before <paramref name="key"/> is retried; counts as one more requeue.</summary>
    TimeSpan When(TKey key);

    /// <summary>The key succeeded: forget its failures.</summary>
    void Forget(TKey key);

    /// <summary>How many times the key was requeued since it was last forgotten.</summary>
    int NumRequeues(TKey key);
}

public static class RateLimiters
{
    public static readonly TimeSpan DefaultBaseDelay = TimeSpan.FromMilliseconds(5);
    public static readonly TimeSpan DefaultMaxDelay = TimeSpan.FromSeconds(1000);
    public const double DefaultQps = 10;
    public const int DefaultBurst = 100;

    /// <summary>
    /// client-go's default controller rate limiter: the larger of a per-key exponential backoff (5 ms doubling up
    /// to 1000 s) and an overall token bucket (10 per second, bursts of 100).
    /// </summary>
    public static IRateLimiter<TKey> DefaultControllerRateLimiter<TKey>(TimeProvider time) where TKey : notnull
        => new MaxOfRateLimiter<TKey>(
            new ExponentialFailureRateLimiter<TKey>(DefaultBaseDelay, DefaultMaxDelay),
            new BucketRateLimiter<TKey>(DefaultQps, DefaultBurst, time));
}

/// <summary>Per key: <c>baseDelay * 2^failures</c>, capped at <c>maxDelay</c>.</summary>
public sealed class ExponentialFailureRateLimiter<TKey> : IRateLimiter<TKey> where TKey : notnull
{
    private readonly Lock _gate = new();
    private readonly Dictionary<TKey, int> _failures = [];
    private readonly TimeSpan _baseDelay;
    private readonly TimeSpan _maxDelay;

    public ExponentialFailureRateLimiter(TimeSpan baseDelay, TimeSpan maxDelay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(baseDelay, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDelay, baseDelay);
        _baseDelay = baseDelay;
        _maxDelay = maxDelay;
    }

    public TimeSpan When(TKey key)
    {
        int exponent;
        lock (_gate)
        {
            _failures.TryGetValue(key, out exponent);
            _failures[key] = exponent == int.MaxValue ? exponent : exponent + 1;
        }
        // computed in double so that large exponents saturate instead of overflowing
        var ticks = _baseDelay.Ticks * Math.Pow(2, exponent);
        return ticks >= _maxDelay.Ticks ? _maxDelay : TimeSpan.FromTicks((long)ticks);
    }

    public void Forget(TKey key)
    {
        lock (_gate) _failures.Remove(key);
    }

    public int NumRequeues(TKey key)
    {
        lock (_gate) return _failures.GetValueOrDefault(key);
    }
}

/// <summary>
/// One token bucket for all keys (<paramref name="qps"/> tokens per second, at most <paramref name="burst"/>
/// saved up). Each <see cref="When"/> reserves a token and answers how long until it is available.
/// </summary>
public sealed class BucketRateLimiter<TKey>(double qps, int burst, TimeProvider time) : IRateLimiter<TKey>
    where TKey : notnull
{
    private readonly Lock _gate = new();
    private double _tokens = burst;
    private long _last = time.GetTimestamp();

    public TimeSpan When(TKey key)
    {
        lock (_gate)
        {
            var now = time.GetTimestamp();
            var elapsed = time.GetElapsedTime(_last, now).TotalSeconds;
            _last = now;
            _tokens = Math.Min(burst, _tokens + elapsed * qps);
            _tokens -= 1;
            return _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / qps);
        }
    }

    public void Forget(TKey key) { }

    public int NumRequeues(TKey key) => 0;
}

/// <summary>The longest delay any of the limiters asks for; every limiter sees every call.</summary>
public sealed class MaxOfRateLimiter<TKey>(params IRateLimiter<TKey>[] limiters) : IRateLimiter<TKey>
    where TKey : notnull
{
    public TimeSpan When(TKey key)
    {
        var max = TimeSpan.Zero;
        foreach (var l in limiters)
        {
            var d = l.When(key);
            if (d > max) max = d;
        }
        return max;
    }

    public void Forget(TKey key)
    {
        foreach (var l in limiters) l.Forget(key);
    }

    public int NumRequeues(TKey key) => limiters.Length == 0 ? 0 : limiters.Max(l => l.NumRequeues(key));
}

using Crsc.Testing;
using Crsc.Testing.Kube;

namespace Crsc.Tests.Cluster;

/// <summary>
/// Makes a <see cref="FakeApiServer"/> unreachable while <see cref="Away"/> is set: the connection of every request is
/// aborted, a transport failure that the client reports as it reports a refused connection (the server itself keeps
/// listening, so that each attempt is seen). Records, on the test's clock, the instants at which the requests that
/// <c>counts</c> selects arrived: one per instant, since the HTTP client may resend at once a request that failed on
/// a reused connection.
/// </summary>
internal sealed class ApiServerOutage
{
    private readonly List<DateTimeOffset> _attempts = [];
    private volatile bool _away;

    public ApiServerOutage(FakeApiServer server, TimeProvider time, Func<FakeRequest, bool> counts)
    {
        server.FailNext(100_000, 0, "Unreachable", match: _ => _away);
        server.BeforeRequest = (request, _) =>
        {
            if (counts(request))
            {
                var now = time.GetUtcNow();
                lock (_attempts)
                    if (_attempts.Count == 0 || _attempts[^1] != now) _attempts.Add(now);
            }
            return Task.CompletedTask;
        };
    }

    public bool Away { get => _away; set => _away = value; }

    /// <summary>The instants of the counted requests in [<paramref name="from"/>, <paramref name="to"/>).</summary>
    public IReadOnlyList<DateTimeOffset> Attempts(DateTimeOffset from, DateTimeOffset to)
    {
        lock (_attempts) return [.. _attempts.Where(t => t >= from && t < to)];
    }

    /// <summary>The waits between consecutive <paramref name="attempts"/>.</summary>
    public static IReadOnlyList<TimeSpan> Gaps(IReadOnlyList<DateTimeOffset> attempts)
        => [.. attempts.Zip(attempts.Skip(1), (a, b) => b - a)];

    /// <summary>
    /// Advances <paramref name="time"/> by <paramref name="step"/> until <paramref name="done"/> holds or
    /// <paramref name="max"/> has passed, waiting before each step until the code under test waits on the clock again
    /// (a timer armed); returns how much time passed.
    /// </summary>
    public static async Task<TimeSpan> AdvanceUntilAsync(ManualTimeProvider time, Func<bool> done, TimeSpan step, TimeSpan max,
        string what)
    {
        var advanced = TimeSpan.Zero;
        while (true)
        {
            await Eventually.TrueAsync(() => done() || time.ActiveTimers > 0, $"{what}, or a timer armed");
            if (done() || advanced >= max) return advanced;
            time.Advance(step);
            advanced += step;
        }
    }
}

using Crsc.Testing;

namespace Crsc.Controllers.Tests.Support;

/// <summary>Moves a <see cref="ManualTimeProvider"/> in steps, letting the threads woken by each step settle.</summary>
public static class Clock
{
    /// <summary>
    /// Advances by <paramref name="step"/> until <paramref name="done"/> holds, waiting before each step until the
    /// component waits on the clock again (some timer armed). Fails after <paramref name="max"/> of simulated time.
    /// </summary>
    public static async Task<TimeSpan> AdvanceUntilAsync(ManualTimeProvider time, Func<bool> done, TimeSpan step,
        TimeSpan max, string what)
    {
        var advanced = TimeSpan.Zero;
        while (true)
        {
            await Eventually.TrueAsync(() => done() || time.ActiveTimers > 0, $"{what}, or a timer armed");
            if (done()) return advanced;
            if (advanced >= max) throw new TimeoutException($"not true within {max} of simulated time: {what}");
            time.Advance(step);
            advanced += step;
        }
    }
}

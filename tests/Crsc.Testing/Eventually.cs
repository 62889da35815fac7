using System.Diagnostics;

namespace Crsc.Testing;

/// <summary>
/// Waits for a condition that other threads or processes make true (real sockets, real processes).
/// Not for time-based logic: that is tested with <see cref="ManualTimeProvider"/>.
/// </summary>
public static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    public static async Task TrueAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
        => await TrueAsync(() => Task.FromResult(condition()), what, timeout);

    public static async Task TrueAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? DefaultTimeout;
        var sw = Stopwatch.StartNew();
        Exception? last = null;
        while (sw.Elapsed < limit)
        {
            try
            {
                if (await condition()) return;
                last = null;
            }
            catch (Exception e) { last = e; }
            await Task.Delay(20);
        }
        throw new TimeoutException($"not true within {limit.TotalSeconds:0.#} s: {what}" + (last is null ? "" : $" (last error: {last.Message})"), last);
    }
}

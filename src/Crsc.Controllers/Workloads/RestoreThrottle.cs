using System.Globalization;

namespace Crsc.Controllers.Workloads;

/// <summary>When the next automatic Restore of a workload may be created, and why not sooner.</summary>
public readonly record struct ThrottleDecision(DateTimeOffset NextAllowed, string? Reason)
{
    public bool Allows(DateTimeOffset now) => NextAllowed <= now;
}

/// <summary>
/// No restore storms: a backoff between the automatic Restores of one workload (<see cref="PodFailureOptions.InitialBackoff"/>,
/// doubling with each one that followed the previous within <see cref="PodFailureOptions.QuietPeriod"/>, at most
/// <see cref="PodFailureOptions.MaxBackoff"/>), and at most <see cref="PodFailureOptions.MaxRestoresPerHour"/> in any hour.
/// Computed from the creation times of the Restores in the API alone, so a new leader decides as the old one would.
/// </summary>
public static class RestoreThrottle
{
    public static readonly TimeSpan CapWindow = TimeSpan.FromHours(1);

    /// <param name="created">creation times of the workload's automatic Restores, any order</param>
    public static ThrottleDecision Decide(IEnumerable<DateTimeOffset> created, DateTimeOffset now, PodFailureOptions options)
    {
        var times = created.OrderByDescending(t => t).ToList();
        if (times.Count == 0) return new ThrottleDecision(DateTimeOffset.MinValue, null);

        var next = DateTimeOffset.MinValue;
        string? reason = null;

        var last = times[0];
        if (now - last < options.QuietPeriod)
        {
            // the run of restores each within the quiet period of the one before
            var streak = 1;
            while (streak < times.Count && times[streak - 1] - times[streak] < options.QuietPeriod) streak++;
            var backoff = Backoff(streak, options);
            if (last + backoff > next)
            {
                next = last + backoff;
                reason = string.Create(CultureInfo.InvariantCulture,
                    $"backoff: {streak} automatic restore(s) of this workload in a row, the last at {Text(last)}; the next waits {Duration(backoff)}");
            }
        }

        var inWindow = times.Where(t => now - t < CapWindow).OrderBy(t => t).ToList();
        if (inWindow.Count >= options.MaxRestoresPerHour)
        {
            // the oldest restore that must leave the window before one more fits
            var capEnd = inWindow[inWindow.Count - options.MaxRestoresPerHour] + CapWindow;
            if (capEnd > next)
            {
                next = capEnd;
                reason = string.Create(CultureInfo.InvariantCulture,
                    $"limit: {inWindow.Count} automatic restores of this workload in the last hour (at most {options.MaxRestoresPerHour})");
            }
        }
        return new ThrottleDecision(next, reason);
    }

    /// <summary>The wait after the <paramref name="streak"/>-th restore in a row: initial, doubling, capped.</summary>
    public static TimeSpan Backoff(int streak, PodFailureOptions options)
    {
        var wait = options.InitialBackoff;
        for (var i = 1; i < streak && wait < options.MaxBackoff; i++) wait += wait;
        return wait > options.MaxBackoff ? options.MaxBackoff : wait;
    }

    internal static string Text(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    internal static string Duration(TimeSpan d) =>
        d.TotalHours >= 1 && d.Minutes == 0 && d.Seconds == 0 ? string.Create(CultureInfo.InvariantCulture, $"{(int)d.TotalHours}h")
        : d.TotalMinutes >= 1 && d.Seconds == 0 ? string.Create(CultureInfo.InvariantCulture, $"{(int)d.TotalMinutes}m")
        : string.Create(CultureInfo.InvariantCulture, $"{(long)Math.Ceiling(d.TotalSeconds)}s");
}

using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.Schedules;

/// <summary>
/// The times a schedule is due at ("slots"), without jitter: an interval's slots are
/// <c>anchor + k·interval</c> (k ≥ 1), a cron schedule's are its minutes after the anchor. The anchor is when the
/// schedule was created, so every node computes the same slots, before and after a restart.
/// </summary>
public abstract class ScheduleGrid
{
    /// <summary>The latest slot at or before <paramref name="time"/>; null when none has come yet.</summary>
    public abstract DateTimeOffset? LatestAtOrBefore(DateTimeOffset time);

    /// <summary>The first slot strictly after <paramref name="time"/>; null when there is none (a cron date that never comes).</summary>
    public abstract DateTimeOffset? NextAfter(DateTimeOffset time);

    /// <summary>The typical time between two slots, which bounds the jitter.</summary>
    public abstract TimeSpan Period { get; }
}

/// <summary>Slots every <see cref="Interval"/> from <see cref="Anchor"/> (the anchor itself is not one).</summary>
public sealed class IntervalGrid : ScheduleGrid
{
    public IntervalGrid(DateTimeOffset anchor, TimeSpan interval)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        Anchor = anchor;
        Interval = interval;
    }

    public DateTimeOffset Anchor { get; }
    public TimeSpan Interval { get; }
    public override TimeSpan Period => Interval;

    public override DateTimeOffset? LatestAtOrBefore(DateTimeOffset time)
    {
        if (time < Anchor + Interval) return null;
        var k = (time - Anchor).Ticks / Interval.Ticks;
        return Anchor + TimeSpan.FromTicks(k * Interval.Ticks);
    }

    public override DateTimeOffset? NextAfter(DateTimeOffset time)
    {
        if (time < Anchor) return Anchor + Interval;
        var k = (time - Anchor).Ticks / Interval.Ticks + 1;
        return Anchor + TimeSpan.FromTicks(k * Interval.Ticks);
    }
}

/// <summary>The minutes of a <see cref="CronExpression"/> after <see cref="Anchor"/>.</summary>
public sealed class CronGrid : ScheduleGrid
{
    public CronGrid(CronExpression cron, DateTimeOffset anchor)
    {
        Cron = cron;
        Anchor = anchor;
        // the shortest gap among the first few runs: "0 9,17 * * *" has 8 h, not 16 h
        var gap = TimeSpan.MaxValue;
        var t = cron.Next(anchor);
        for (var i = 0; i < 8 && t is { } current; i++)
        {
            var next = cron.Next(current);
            if (next is null) break;
            if (next.Value - current < gap) gap = next.Value - current;
            t = next;
        }
        Period = gap == TimeSpan.MaxValue ? TimeSpan.FromDays(365) : gap;
    }

    public CronExpression Cron { get; }
    public DateTimeOffset Anchor { get; }
    public override TimeSpan Period { get; }

    public override DateTimeOffset? LatestAtOrBefore(DateTimeOffset time) =>
        Cron.Previous(time) is { } slot && slot > Anchor ? slot : null;

    public override DateTimeOffset? NextAfter(DateTimeOffset time) => Cron.Next(time < Anchor ? Anchor : time);
}

/// <summary>What a schedule should do now: run for a slot (at most one), and when to look again.</summary>
/// <param name="RunAt">the fire time of the slot to run now (its name and <c>lastCheckpointTime</c>), or null</param>
/// <param name="NextAt">the fire time of the next slot after now, or null when there is none</param>
public readonly record struct ScheduleDecision(DateTimeOffset? RunAt, DateTimeOffset? NextAt);

/// <summary>
/// Due-time rules of CheckpointSchedules. Each slot fires <see cref="Jitter"/> after it, a fixed offset per schedule
/// (from its UID) so that many schedules with the same interval do not fire in the same second. A schedule runs
/// for the latest slot whose fire time has passed, unless its <c>lastCheckpointTime</c> shows that run happened:
/// after any downtime that is exactly one catch-up run, never one per missed slot.
/// </summary>
public static class ScheduleTiming
{
    /// <summary>The shortest interval crsc runs: shorter ones would checkpoint faster than a checkpoint takes.</summary>
    public static readonly TimeSpan MinimumInterval = TimeSpan.FromSeconds(10);

    /// <summary>The largest jitter, whatever the period.</summary>
    public static readonly TimeSpan MaxJitter = TimeSpan.FromSeconds(30);

    /// <summary>Jitter is at most this share of the period.</summary>
    public const double MaxJitterFraction = 0.1;

    /// <summary>
    /// The schedule's fixed offset: whole seconds in [0, min(10 % of <paramref name="period"/>, 30 s)], from a hash of
    /// <paramref name="uid"/> (the same on every node and after restarts).
    /// </summary>
    public static TimeSpan Jitter(string? uid, TimeSpan period)
    {
        var bound = TimeSpan.FromTicks(Math.Min((long)(period.Ticks * MaxJitterFraction), MaxJitter.Ticks));
        var maxSeconds = (long)bound.TotalSeconds;
        if (maxSeconds <= 0 || string.IsNullOrEmpty(uid)) return TimeSpan.Zero;
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(uid));
        var n = BinaryPrimitives.ReadUInt64BigEndian(hash);
        return TimeSpan.FromSeconds((long)(n % (ulong)(maxSeconds + 1)));
    }

    /// <param name="lastRun">the schedule's <c>status.lastCheckpointTime</c></param>
    public static ScheduleDecision Decide(ScheduleGrid grid, TimeSpan jitter, DateTimeOffset? lastRun, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(grid);
        DateTimeOffset? runAt = null;
        if (grid.LatestAtOrBefore(now - jitter) is { } slot)
        {
            var fire = KubeTime.Truncate(slot + jitter);
            if (lastRun is null || KubeTime.Truncate(lastRun.Value) < fire) runAt = fire;
        }
        DateTimeOffset? nextAt = grid.NextAfter(now - jitter) is { } next ? next + jitter : null;
        return new ScheduleDecision(runAt, nextAt);
    }
}

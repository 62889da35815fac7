using System.Globalization;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.Schedules;

/// <summary>
/// The recent history of one container's checkpoints, newest finished first: how many in a row ended
/// <c>Failed</c> (until the newest <c>Completed</c> one), the newest failure and the newest success.
/// </summary>
public sealed record FailureStreak(string Container, int FailedInARow, ContainerCheckpoint? LastFailed, ContainerCheckpoint? LastCompleted)
{
    /// <summary>
    /// "the last 3 checkpoints of container app failed (latest web-app-20260101001000 at 2026-01-01T00:10:00Z:
    /// checkpoint/restore support not available); last success: never".
    /// </summary>
    public string Describe()
    {
        var what = FailedInARow == 1
            ? $"the last checkpoint of container {Container} failed"
            : string.Create(CultureInfo.InvariantCulture, $"the last {FailedInARow} checkpoints of container {Container} failed");
        var latest = LastFailed is { } f
            ? $" (latest {f.Metadata.Name} at {When(f)}: {CheckpointFailures.Clip(f.Status?.Message)})"
            : "";
        var success = LastCompleted is { } c ? $"{When(c)} ({c.Metadata.Name})" : "never";
        return $"{what}{latest}; last success: {success}";
    }

    private static string When(ContainerCheckpoint c) =>
        CheckpointFailures.Finished(c) is { } t && t != DateTimeOffset.MinValue ? KubeTime.ToText(t) : "(no time recorded)";
}

/// <summary>
/// Whether a schedule's checkpoints are failing, computed from the ContainerCheckpoints it owns (the API alone).
/// Per container (replicas' checkpoints of the same container count together), ordered by when they finished
/// (<c>status.completedAt</c>, which a failure stamps too, else creation): a container is failing when its newest
/// <see cref="DefaultFailingAfter"/> (the option) finished checkpoints all failed, or when it has no completed
/// checkpoint at all and its newest finished one failed — then there is nothing to restore from, and one failure is
/// enough to say so. Pending and running checkpoints, and ones being deleted, do not count. A completed one ends the
/// streak: the schedule is healthy again.
/// </summary>
public static class CheckpointFailures
{
    /// <summary>Failed checkpoints in a row (after a success) that make a schedule not Ready.</summary>
    public const int DefaultFailingAfter = 3;

    /// <summary>Longest runtime message quoted in a condition.</summary>
    public const int MaxMessageLength = 256;

    /// <summary>The streak of each container of <paramref name="checkpoints"/> (those with at least one finished checkpoint).</summary>
    public static IReadOnlyList<FailureStreak> Streaks(IEnumerable<ContainerCheckpoint> checkpoints)
    {
        ArgumentNullException.ThrowIfNull(checkpoints);
        var streaks = new List<FailureStreak>();
        foreach (var group in checkpoints
            .Where(c => c.Metadata.DeletionTimestamp is null
                && c.Status?.Phase is ContainerCheckpointPhase.Completed or ContainerCheckpointPhase.Failed)
            .GroupBy(c => c.Spec.Container, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var ordered = group.OrderByDescending(Finished).ThenByDescending(c => c.Metadata.Name, StringComparer.Ordinal).ToList();
            var failed = ordered.TakeWhile(c => c.Status!.Phase == ContainerCheckpointPhase.Failed).Count();
            var lastCompleted = ordered.FirstOrDefault(c => c.Status!.Phase == ContainerCheckpointPhase.Completed);
            streaks.Add(new FailureStreak(group.Key, failed, failed > 0 ? ordered[0] : null, lastCompleted));
        }
        return streaks;
    }

    /// <summary>
    /// The failing container of <paramref name="checkpoints"/> (the longest streak, then by name), or null when none is
    /// failing by the rule above.
    /// </summary>
    public static FailureStreak? Failing(IEnumerable<ContainerCheckpoint> checkpoints, int failingAfter = DefaultFailingAfter)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(failingAfter, 1);
        return Streaks(checkpoints)
            .Where(s => s.FailedInARow >= failingAfter || (s.FailedInARow > 0 && s.LastCompleted is null))
            .OrderByDescending(s => s.FailedInARow)
            .FirstOrDefault();
    }

    /// <summary>When a checkpoint finished (completed or failed), else when it was created.</summary>
    public static DateTimeOffset Finished(ContainerCheckpoint c)
    {
        ArgumentNullException.ThrowIfNull(c);
        return c.Status?.CompletedAt ?? c.Metadata.CreationTimestamp ?? DateTimeOffset.MinValue;
    }

    /// <summary>A runtime's message on one line, at most <see cref="MaxMessageLength"/> characters.</summary>
    public static string Clip(string? message)
    {
        if (string.IsNullOrWhiteSpace(message)) return "no message";
        var line = string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        return line.Length <= MaxMessageLength ? line : line[..(MaxMessageLength - 1)] + "…";
    }
}

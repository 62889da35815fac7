using Crsc.Api;
using Crsc.Api.Crds;

namespace Crsc.Controllers.Schedules;

/// <summary>
/// Which of one container's scheduled ContainerCheckpoints a <see cref="RetentionPolicy"/> lets go. Only once one
/// has completed: the newest completed one always stays; older completed ones go beyond <c>keepLast</c>, beyond
/// <c>maxAge</c> (by completion time) or once the newer ones add up to more than <c>maxBytes</c>
/// (<c>status.sizeBytes</c>); failed ones older than the newest completed one go too. Pending and running ones
/// (and any without a phase yet) are never chosen.
/// <para>
/// A node-away checkpoint (drain, shutdown, eviction: it carries <c>crsc.io/checkpoint-reason</c>) is held for
/// <c>keepNodeAway</c> after it finished — neither counted nor chosen — because it is what the workload's next pod is
/// restored from (<c>shutdown.restoreWindow</c>), while the schedule's new checkpoints of other pods keep coming.
/// </para>
/// </summary>
public static class CheckpointRetention
{
    public static IReadOnlyList<ContainerCheckpoint> Select(IEnumerable<ContainerCheckpoint> checkpoints,
        RetentionPolicy? policy, DateTimeOffset now, TimeSpan? keepNodeAway = null)
    {
        ArgumentNullException.ThrowIfNull(checkpoints);
        policy ??= new RetentionPolicy { KeepLast = RetentionPolicy.DefaultKeepLast };
        var all = checkpoints.Where(c => c.Metadata.DeletionTimestamp is null && !HeldNodeAway(c, now, keepNodeAway)).ToList();
        var completed = all.Where(c => c.Status?.Phase == ContainerCheckpointPhase.Completed)
            .OrderByDescending(Finished).ThenByDescending(c => c.Metadata.Name, StringComparer.Ordinal)
            .ToList();
        if (completed.Count == 0) return [];

        var doomed = new List<ContainerCheckpoint>();
        var newest = Finished(completed[0]);
        var maxAge = policy.MaxAgeValue;
        long bytes = 0;
        for (var i = 0; i < completed.Count; i++)
        {
            var c = completed[i];
            bytes += c.Status?.SizeBytes ?? 0;
            if (i == 0) continue; // the newest completed checkpoint is what a restore needs
            var tooMany = policy.KeepLast is { } keep && i >= keep;
            var tooOld = maxAge is { } age && Finished(c) < now - age;
            var tooBig = policy.MaxBytes is { } max && bytes > max;
            if (tooMany || tooOld || tooBig) doomed.Add(c);
        }
        doomed.AddRange(all.Where(c => c.Status?.Phase == ContainerCheckpointPhase.Failed && Finished(c) < newest));
        return doomed;
    }

    /// <summary>A node-away checkpoint that finished less than <paramref name="keep"/> ago.</summary>
    private static bool HeldNodeAway(ContainerCheckpoint c, DateTimeOffset now, TimeSpan? keep) =>
        keep is { } k && c.Metadata.Annotations?.ContainsKey(Annotations.CheckpointReason) == true && Finished(c) > now - k;

    /// <summary>When it finished (completed or failed), else when it was created.</summary>
    private static DateTimeOffset Finished(ContainerCheckpoint c) =>
        c.Status?.CompletedAt ?? c.Metadata.CreationTimestamp ?? DateTimeOffset.MinValue;
}

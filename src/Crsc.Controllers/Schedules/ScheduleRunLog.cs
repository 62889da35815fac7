namespace Crsc.Controllers.Schedules;

/// <summary>One run of a schedule for one container: its due time (the name's time) and the checkpoint's name.</summary>
public sealed record ScheduleRun(string ScheduleUid, string Pod, string Container, DateTimeOffset RunAt, string CheckpointName);

/// <summary>
/// The last run of schedules on this node, shared by the online <see cref="ScheduleReconciler"/> and the offline
/// scheduler (which keeps it in the node state), so a slot one of them took is not taken again by the other.
/// </summary>
public interface IScheduleRunLog
{
    /// <summary>The latest run of the schedule with <paramref name="scheduleUid"/> (any pod and container).</summary>
    ScheduleRun? LastRun(string scheduleUid);

    ScheduleRun? LastRun(string scheduleUid, string pod, string container);

    void Record(ScheduleRun run);
}

using Crsc.Api.Crds;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Workloads;

// Event ids: the Deployment reconciler 1–19; other workload reconcilers take the next free block of 20.
internal static partial class Log
{
    [LoggerMessage(21301, LogLevel.Information, "Deployment {Namespace}/{Name}: created CheckpointSchedule, interval {Interval}, replicate {Replicate}")]
    public static partial void ScheduleCreated(ILogger logger, string @namespace, string name, string interval, CheckpointReplication replicate);

    [LoggerMessage(21302, LogLevel.Information, "Deployment {Namespace}/{Name}: CheckpointSchedule interval {Old} -> {New}, replicate {OldReplicate} -> {NewReplicate}")]
    public static partial void ScheduleUpdated(ILogger logger, string @namespace, string name, string? old, string @new,
        CheckpointReplication oldReplicate, CheckpointReplication newReplicate);

    [LoggerMessage(21303, LogLevel.Information, "Deployment {Namespace}/{Name}: no longer managed; deleted its CheckpointSchedule")]
    public static partial void ScheduleDeleted(ILogger logger, string @namespace, string name);

    [LoggerMessage(21304, LogLevel.Warning, "Deployment {Namespace}/{Name}: {Message}")]
    public static partial void InvalidAnnotation(ILogger logger, string @namespace, string name, string message);

    [LoggerMessage(21305, LogLevel.Warning, "Deployment {Namespace}/{Name}: CheckpointSchedule of that name is not owned by the Deployment; leaving it alone")]
    public static partial void ForeignSchedule(ILogger logger, string @namespace, string name);

    [LoggerMessage(21306, LogLevel.Information, "Deployment {Namespace}/{Name}: CheckpointSchedule was left by an earlier Deployment of that name (owner uid {OldUid}); replacing it")]
    public static partial void StaleSchedule(ILogger logger, string @namespace, string name, string oldUid);

    [LoggerMessage(21307, LogLevel.Information, "Deployment {Namespace}/{Name}: {Reason}: {Description}")]
    public static partial void InterceptorChanged(ILogger logger, string @namespace, string name, string reason, string description);

    // the failure detector (PodFailureReconciler): 20–39

    [LoggerMessage(21320, LogLevel.Information, "Created Restore {Namespace}/{Restore} for pod {Pod} container {Container} ({Signal}): {Description}")]
    public static partial void RestoreCreated(ILogger logger, string @namespace, string restore, string pod, string container, string signal, string description);

    [LoggerMessage(21321, LogLevel.Warning, "Deployment {Namespace}/{Name}: {Message}")]
    public static partial void RestoreSuppressed(ILogger logger, string @namespace, string name, string message);

    [LoggerMessage(21322, LogLevel.Debug, "Restore {Namespace}/{Restore} exists already: the incident is handled")]
    public static partial void RestoreExists(ILogger logger, string @namespace, string restore);

    [LoggerMessage(21323, LogLevel.Debug, "Pod {Namespace}/{Pod} container {Container} is being restored by {Restore}: restart count {RestartCount} is the new baseline")]
    public static partial void OwnRestart(ILogger logger, string @namespace, string pod, string container, string restore, int restartCount);

    [LoggerMessage(21324, LogLevel.Debug, "Deployment {Namespace}/{Name} is not monitored for failures: {Why}")]
    public static partial void NotMonitored(ILogger logger, string @namespace, string name, string why);

    [LoggerMessage(21325, LogLevel.Information, "Pod {Namespace}/{Pod} has no interceptor sidecar, which Deployment {Deployment} asks for: its failures are not restored")]
    public static partial void NotIntercepted(ILogger logger, string @namespace, string pod, string deployment);
}

using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Schedules;

internal static partial class Log
{
    [LoggerMessage(21101, LogLevel.Information, "CheckpointSchedule {Namespace}/{Name}: created ContainerCheckpoint {Checkpoint} of pod {Pod} container {Container} for {Due}")]
    public static partial void CheckpointCreated(ILogger logger, string @namespace, string name, string checkpoint, string pod, string container, DateTimeOffset due);

    [LoggerMessage(21102, LogLevel.Information, "CheckpointSchedule {Namespace}/{Name}: ContainerCheckpoint {Checkpoint} for {Due} exists already (an earlier attempt made it)")]
    public static partial void CheckpointExisted(ILogger logger, string @namespace, string name, string checkpoint, DateTimeOffset due);

    [LoggerMessage(21103, LogLevel.Information, "CheckpointSchedule {Namespace}/{Name}: status changed by another writer (409); looking again")]
    public static partial void StatusConflict(ILogger logger, string @namespace, string name);

    [LoggerMessage(21104, LogLevel.Information, "CheckpointSchedule {Namespace}/{Name}: retention deleted ContainerCheckpoint {Checkpoint} (container {Container}, phase {Phase})")]
    public static partial void Pruned(ILogger logger, string @namespace, string name, string checkpoint, string container, string phase);

    [LoggerMessage(21105, LogLevel.Warning, "CheckpointSchedule {Namespace}/{Name}: not runnable: {Reason}: {Message}")]
    public static partial void NotRunnable(ILogger logger, string @namespace, string name, string reason, string message);

    [LoggerMessage(21106, LogLevel.Warning, "CheckpointSchedule {Namespace}/{Name}: its checkpoints are failing: {Failure}")]
    public static partial void CheckpointsFailing(ILogger logger, string @namespace, string name, string failure);

    [LoggerMessage(21107, LogLevel.Warning, "CheckpointSchedule {Namespace}/{Name}: asks replicate: Registry but node {Node} has no registry configured (images.registry); its checkpoints are kept in its store only")]
    public static partial void NoRegistry(ILogger logger, string @namespace, string name, string node);

    [LoggerMessage(21108, LogLevel.Information, "CheckpointSchedule {Namespace}/{Name}: retention keeps ContainerCheckpoint {Checkpoint}: pod {Pod} names it in crsc.io/restore-from and is not restored from it yet")]
    public static partial void HeldForRestoreFrom(ILogger logger, string @namespace, string name, string checkpoint, string pod);
}

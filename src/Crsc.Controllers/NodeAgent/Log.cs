using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.NodeAgent;

internal static partial class Log
{
    [LoggerMessage(20701, LogLevel.Information, "checkpoint of {Target} queued: {MaxConcurrent} already running on this node")]
    public static partial void Queued(ILogger logger, string target, int maxConcurrent);

    [LoggerMessage(20702, LogLevel.Information, "checkpointing {Target} (container {ContainerId}) into {StagingPath}, timeout {Timeout}")]
    public static partial void Checkpointing(ILogger logger, string target, string containerId, string stagingPath, TimeSpan timeout);

    [LoggerMessage(20703, LogLevel.Information, "checkpoint of {Target} committed as {CheckpointId}: {SizeBytes} bytes, {Digest}; runtime {RuntimeTime}, total {TotalTime}")]
    public static partial void Committed(ILogger logger, string target, string checkpointId, long sizeBytes, string digest, TimeSpan runtimeTime, TimeSpan totalTime);

    [LoggerMessage(20704, LogLevel.Warning, "checkpoint of {Target} (container {ContainerId}) failed in the runtime; CRIU log: {CriuLogPath}")]
    public static partial void RuntimeFailed(ILogger logger, Exception e, string target, string containerId, string criuLogPath);

    [LoggerMessage(20705, LogLevel.Warning, "could not read the CRIU log left in {StagingPath}")]
    public static partial void CriuLogUnreadable(ILogger logger, Exception e, string stagingPath);

    [LoggerMessage(20706, LogLevel.Warning, "could not remove staged archive {Path} of {Target}; the store's recovery removes it at the next start")]
    public static partial void CleanupFailed(ILogger logger, Exception e, string path, string target);

    [LoggerMessage(20707, LogLevel.Warning, "could not measure the checkpoint store's size")]
    public static partial void StoreBytesFailed(ILogger logger, Exception e);

    [LoggerMessage(20708, LogLevel.Warning, "checkpoint of {Target}: archive path {ArchivePath} refused, neither read nor removed: {Problem}")]
    public static partial void ForeignArchiveRefused(ILogger logger, string target, string archivePath, string problem);

    [LoggerMessage(20709, LogLevel.Debug, "checkpoint of {Target}: removed the kubelet's archive {ArchivePath}")]
    public static partial void ForeignArchiveRemoved(ILogger logger, string archivePath, string target);

    [LoggerMessage(20710, LogLevel.Warning, "checkpoint of {Target}: left the kubelet's archive {ArchivePath} in place: {Reason}")]
    public static partial void ForeignArchiveKept(ILogger logger, string archivePath, string target, string reason);

    [LoggerMessage(20711, LogLevel.Information, "log file {LogPath} named in the runtime's error is not where the runtime keeps the CRIU log of container {ContainerId}; not read")]
    public static partial void CriuLogNotRead(ILogger logger, string logPath, string containerId);

    [LoggerMessage(20720, LogLevel.Information, "ContainerCheckpoint {Namespace}/{Name}: running on node {Node}")]
    public static partial void Claimed(ILogger logger, string @namespace, string name, string node);

    [LoggerMessage(20721, LogLevel.Information, "ContainerCheckpoint {Namespace}/{Name}: another writer changed it first (409); looking again")]
    public static partial void ClaimConflict(ILogger logger, string @namespace, string name);

    [LoggerMessage(20722, LogLevel.Information, "ContainerCheckpoint {Namespace}/{Name}: completed as {ContentName} ({SizeBytes} bytes, {Digest})")]
    public static partial void Completed(ILogger logger, string @namespace, string name, string contentName, long sizeBytes, string digest);

    [LoggerMessage(20723, LogLevel.Warning, "ContainerCheckpoint {Namespace}/{Name}: failed: {Message}")]
    public static partial void FailedCheckpoint(ILogger logger, string @namespace, string name, string message);

    [LoggerMessage(20724, LogLevel.Information, "ContainerCheckpoint {Namespace}/{Name} was left running (an earlier daemon stopped, or its status write failed); finishing it from archive {CheckpointId}, whose manifest names it as owner")]
    public static partial void Recovered(ILogger logger, string @namespace, string name, string checkpointId);

    [LoggerMessage(20725, LogLevel.Warning, "ContainerCheckpoint {Namespace}/{Name} was left running by an earlier daemon and no archive of it exists; marking it failed")]
    public static partial void Interrupted(ILogger logger, string @namespace, string name);

    [LoggerMessage(20726, LogLevel.Information, "ContainerCheckpoint {Namespace}/{Name} deleted: removed archive {CheckpointId} and content {ContentName}")]
    public static partial void ArchiveDeleted(ILogger logger, string @namespace, string name, string checkpointId, string contentName);

    [LoggerMessage(20727, LogLevel.Warning, "ContainerCheckpoint {Namespace}/{Name}: could not record the result in its status; retrying from the stored archive")]
    public static partial void StatusWriteFailed(ILogger logger, Exception e, string @namespace, string name);

    [LoggerMessage(20728, LogLevel.Warning, "ContainerCheckpoint {Namespace}/{Name}: archive {CheckpointId} stored, but its image could not be published")]
    public static partial void ImagePublishFailed(ILogger logger, Exception e, string @namespace, string name, string checkpointId);

    [LoggerMessage(20729, LogLevel.Information, "ContainerCheckpoint {Namespace}/{Name} was taken while the API server was away (archive {CheckpointId}); finishing it from the archive")]
    public static partial void CompletedFromArchive(ILogger logger, string @namespace, string name, string checkpointId);

    [LoggerMessage(20730, LogLevel.Debug, "ContainerCheckpoint {Namespace}/{Name} was taken while the API server was away (archive {CheckpointId}, not in this node's store); its node's outbox finishes it")]
    public static partial void OfflineArchiveElsewhere(ILogger logger, string @namespace, string name, string checkpointId);
}

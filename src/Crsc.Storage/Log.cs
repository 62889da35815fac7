using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;

namespace Crsc.Storage;

internal static partial class Log
{
    [LoggerMessage(EventId = 50201, Level = LogLevel.Information,
        Message = "Checkpoint store opened at {CheckpointDirectory} (staging {StagingDirectory})")]
    public static partial void StoreOpened(ILogger logger, string checkpointDirectory, string stagingDirectory);

    [LoggerMessage(EventId = 50202, Level = LogLevel.Information,
        Message = "Ingested checkpoint {CheckpointId} of {Namespace}/{Workload}/{Container}: {UncompressedSize} bytes, stored {Size} bytes ({Compression}), {Digest}")]
    public static partial void Ingested(ILogger logger, string checkpointId, string @namespace, string workload, string container,
        long uncompressedSize, long size, CheckpointCompression compression, string digest);

    [LoggerMessage(EventId = 50203, Level = LogLevel.Warning, Message = "Refused archive {Path}: {Reason}")]
    public static partial void Rejected(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 50204, Level = LogLevel.Information, Message = "Deleted checkpoint {CheckpointId} ({Path})")]
    public static partial void Deleted(ILogger logger, string checkpointId, string path);

    [LoggerMessage(EventId = 50205, Level = LogLevel.Information,
        Message = "Retention {Action} checkpoint {CheckpointId} of {Namespace}/{Workload}/{Container} ({Reason}, {Size} bytes)")]
    public static partial void Retention(ILogger logger, string action, string checkpointId, string @namespace, string workload,
        string container, RetentionReason reason, long size);

    [LoggerMessage(EventId = 50206, Level = LogLevel.Warning, Message = "Recovery removed {Path} ({Reason})")]
    public static partial void RecoveryRemoved(ILogger logger, string path, RecoveryReason reason);

    [LoggerMessage(EventId = 50207, Level = LogLevel.Warning, Message = "Recovery: {Warning}")]
    public static partial void RecoveryWarning(ILogger logger, string warning);

    [LoggerMessage(EventId = 50208, Level = LogLevel.Warning, Message = "Cleanup of {Path} failed: {Error}")]
    public static partial void CleanupFailed(ILogger logger, string path, string error);

    [LoggerMessage(EventId = 50209, Level = LogLevel.Warning, Message = "Skipping manifest {Path}: {Reason}")]
    public static partial void ManifestSkipped(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 50210, Level = LogLevel.Error, Message = "Checkpoint {CheckpointId} failed verification: {Problem}")]
    public static partial void VerificationFailed(ILogger logger, string checkpointId, string problem);

    [LoggerMessage(EventId = 50211, Level = LogLevel.Warning, Message = "Skipping {Path}: {Reason}")]
    public static partial void PathSkipped(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 50212, Level = LogLevel.Information, Message = "Checkpoint {CheckpointId} pinned: {Pinned}")]
    public static partial void PinChanged(ILogger logger, string checkpointId, bool pinned);

    [LoggerMessage(EventId = 50213, Level = LogLevel.Warning, Message = "A listener to the store's changes failed; the store's change stands")]
    public static partial void ChangeListenerFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 50214, Level = LogLevel.Information,
        Message = "Imported checkpoint {CheckpointId} of {Namespace}/{Workload}/{Container} from node {SourceNode}: {Size} bytes, {Digest}, MAC {Authenticity}")]
    public static partial void Imported(ILogger logger, string checkpointId, string @namespace, string workload, string container,
        string sourceNode, long size, string digest, CheckpointAuthenticity authenticity);
}

using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Restores;

internal static partial class Log
{
    [LoggerMessage(21001, LogLevel.Information, "Restore {Namespace}/{Name}: started for {Target}")]
    public static partial void Started(ILogger logger, string @namespace, string name, string target);

    [LoggerMessage(21002, LogLevel.Information, "Restore {Namespace}/{Name}: restoring pod {Pod} on node {Node}")]
    public static partial void PodSelected(ILogger logger, string @namespace, string name, string pod, string node);

    [LoggerMessage(21003, LogLevel.Warning, "Restore {Namespace}/{Name}: pod {Pod} is gone; waiting for its replacement")]
    public static partial void PodLost(ILogger logger, string @namespace, string name, string pod);

    [LoggerMessage(21004, LogLevel.Information, "Restore {Namespace}/{Name}: checkpoint {Checkpoint}, image {Image}")]
    public static partial void CheckpointSelected(ILogger logger, string @namespace, string name, string checkpoint, string image);

    [LoggerMessage(21005, LogLevel.Warning, "Restore {Namespace}/{Name}: {Note}")]
    public static partial void ImagesNotPrepared(ILogger logger, string @namespace, string name, string note);

    [LoggerMessage(21006, LogLevel.Information, "Restore {Namespace}/{Name}: patched container {Container} of pod {Pod} to {Image} (attempt {Attempt})")]
    public static partial void Patched(ILogger logger, string @namespace, string name, string pod, string container, string image, int attempt);

    [LoggerMessage(21007, LogLevel.Warning, "Restore {Namespace}/{Name}: attempt {Attempt} of {MaxAttempts} failed: {Detail}")]
    public static partial void AttemptFailed(ILogger logger, string @namespace, string name, int attempt, int maxAttempts, string detail);

    [LoggerMessage(21008, LogLevel.Information, "Restore {Namespace}/{Name}: deleted pod {Pod} so that its replacement is restored")]
    public static partial void PodDeleted(ILogger logger, string @namespace, string name, string pod);

    [LoggerMessage(21009, LogLevel.Warning, "Restore {Namespace}/{Name}: cold start of pod {Pod}, original image {Image} put back")]
    public static partial void ColdStart(ILogger logger, string @namespace, string name, string pod, string image);

    [LoggerMessage(21010, LogLevel.Information, "Restore {Namespace}/{Name}: {Phase}: {Message}")]
    public static partial void Finished(ILogger logger, string @namespace, string name, string phase, string message);

    [LoggerMessage(21011, LogLevel.Information, "Restore {Namespace}/{Name}: another writer changed it first (409); deciding again")]
    public static partial void Conflict(ILogger logger, string @namespace, string name);

    [LoggerMessage(21020, LogLevel.Information, "Restore {Namespace}/{Name}: pulling {Image} on node {Node}")]
    public static partial void Pulling(ILogger logger, string @namespace, string name, string image, string node);

    [LoggerMessage(21021, LogLevel.Warning, "Restore {Namespace}/{Name}: pulling {Image} on node {Node} failed ({Failures} of {MaxAttempts})")]
    public static partial void PullFailed(ILogger logger, Exception e, string @namespace, string name, string image, string node, int failures, int maxAttempts);

    [LoggerMessage(21022, LogLevel.Information, "Restore {Namespace}/{Name}: images ready on node {Node}")]
    public static partial void Ready(ILogger logger, string @namespace, string name, string node);

    [LoggerMessage(21023, LogLevel.Warning, "Restore {Namespace}/{Name}: checkpoint image {Image} refused ({Reason}): {Message}")]
    public static partial void ArchiveRefused(ILogger logger, string @namespace, string name, string image, string reason, string message);

    [LoggerMessage(21024, LogLevel.Warning, "Restore {Namespace}/{Name}: restoring from an unauthenticated archive as its annotation allows: {Message}")]
    public static partial void ArchiveAllowed(ILogger logger, string @namespace, string name, string message);

    [LoggerMessage(21026, LogLevel.Information, "Restore {Namespace}/{Name}: stopped container {ContainerId} of pod {Pod}, the one the patch replaced, without a grace period")]
    public static partial void ColdInstanceStopped(ILogger logger, string @namespace, string name, string containerId, string pod);

    [LoggerMessage(21027, LogLevel.Warning, "Restore {Namespace}/{Name}: container {ContainerId} is not stopped early ({Why}); the kubelet stops it with the grace period")]
    public static partial void ColdInstanceNotStopped(ILogger logger, string @namespace, string name, string containerId, string why);

    [LoggerMessage(21025, LogLevel.Warning, "Restore {Namespace}/{Name}: node {Node} cannot restore, the fallback applies: {Message}")]
    public static partial void RuntimeCannotRestore(ILogger logger, string @namespace, string name, string node, string message);

    [LoggerMessage(21040, LogLevel.Information, "Pod {Namespace}/{Pod}: fetching checkpoint {Checkpoint} from {Source} to node {Node}")]
    public static partial void Fetching(ILogger logger, string @namespace, string pod, string checkpoint, string source, string node);

    [LoggerMessage(21041, LogLevel.Information, "Pod {Namespace}/{Pod}: checkpoint {Checkpoint} from {Source} is {LocalImage} here ({Bytes} bytes, already present: {AlreadyPresent})")]
    public static partial void Fetched(ILogger logger, string @namespace, string pod, string checkpoint, string source, string localImage, long bytes, bool alreadyPresent);

    [LoggerMessage(21042, LogLevel.Warning, "Pod {Namespace}/{Pod}: fetching checkpoint {Checkpoint} from {Source} failed (refused: {Refused})")]
    public static partial void FetchFailed(ILogger logger, Exception e, string @namespace, string pod, string checkpoint, string source, bool refused);

    [LoggerMessage(21043, LogLevel.Warning, "Pod {Namespace}/{Pod}: checkpoint {Checkpoint} not fetched ({Reason}): {Message}")]
    public static partial void Unreachable(ILogger logger, string @namespace, string pod, string checkpoint, string reason, string message);

    [LoggerMessage(21044, LogLevel.Information, "Pod {Namespace}/{Pod}: made Restore {Restore} from checkpoint {Checkpoint}")]
    public static partial void RestoreMade(ILogger logger, string @namespace, string pod, string restore, string checkpoint);

    [LoggerMessage(21045, LogLevel.Warning, "Pod {Namespace}/{Pod}: not restored from its checkpoint ({Reason}): {Message}")]
    public static partial void NotRestored(ILogger logger, string @namespace, string pod, string reason, string message);

    [LoggerMessage(21046, LogLevel.Warning, "Pod {Namespace}/{Pod}: the fetch progress could not be written to its condition")]
    public static partial void ConditionNotWritten(ILogger logger, Exception e, string @namespace, string pod);
}

using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Replication;

internal static partial class Log
{
    [LoggerMessage(21901, LogLevel.Information, "Content {Content}: checkpoint {Checkpoint} copied to the registry as {Reference}")]
    public static partial void Replicated(ILogger logger, string content, string checkpoint, string reference);

    [LoggerMessage(21902, LogLevel.Warning, "Content {Content}: pushing checkpoint {Checkpoint} to registry {Registry} failed ({Failures} in a row; tried again with backoff): {Message}")]
    public static partial void PushFailed(ILogger logger, string content, string checkpoint, string registry, int failures, string message);

    [LoggerMessage(21903, LogLevel.Warning, "Content {Content}: its archive {Path} is not in this node's store (or no longer matches its digest); not replicated")]
    public static partial void ArchiveMissing(ILogger logger, string content, string path);

    [LoggerMessage(21904, LogLevel.Warning, "Content {Content} lists {Max} copies already; the registry copy {Reference} is not recorded")]
    public static partial void CopiesFull(ILogger logger, string content, int max, string reference);

    [LoggerMessage(21905, LogLevel.Information, "Content {Content} was deleted while its image was pushed; deleting {Reference} again")]
    public static partial void ContentGoneAfterPush(ILogger logger, string content, string reference);

    [LoggerMessage(21906, LogLevel.Warning, "Deleting {Reference}, pushed for a Content that is gone, failed (left in the registry): {Message}")]
    public static partial void OrphanNotDeleted(ILogger logger, string reference, string message);

    [LoggerMessage(21907, LogLevel.Information, "ContainerCheckpoint {Namespace}/{Name}: its registry copy {Reference} deleted")]
    public static partial void ReplicaDeleted(ILogger logger, string @namespace, string name, string reference);

    [LoggerMessage(21908, LogLevel.Information, "ContainerCheckpoint {Namespace}/{Name}: its registry copy {Reference} was gone already")]
    public static partial void ReplicaGone(ILogger logger, string @namespace, string name, string reference);

    [LoggerMessage(21909, LogLevel.Warning, "The registry {Registry} does not delete manifests ({Reference} of ContainerCheckpoint {Namespace}/{Name} stays there, as will the copies of later deleted checkpoints; said once): enable deletes in the registry (distribution: storage.delete.enabled) or prune it by other means")]
    public static partial void DeletesNotAllowed(ILogger logger, string registry, string reference, string @namespace, string name);

    [LoggerMessage(21910, LogLevel.Warning, "ContainerCheckpoint {Namespace}/{Name}: deleting its registry copy {Reference} failed (left in the registry; the archive is deleted all the same): {Message}")]
    public static partial void ReplicaDeleteFailed(ILogger logger, string @namespace, string name, string reference, string message);

    [LoggerMessage(21911, LogLevel.Warning, "ContainerCheckpoint {Namespace}/{Name}: its copy {Reference} is not in the configured registry {Registry}; left there")]
    public static partial void ReplicaElsewhere(ILogger logger, string @namespace, string name, string reference, string registry);
}

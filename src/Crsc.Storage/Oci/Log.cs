using Microsoft.Extensions.Logging;

namespace Crsc.Storage.Oci;

internal static partial class Log
{
    [LoggerMessage(EventId = 50401, Level = LogLevel.Debug, Message = "Checkpoint {CheckpointId} is not served as an image: {Reason}")]
    public static partial void NoImage(ILogger logger, string checkpointId, string reason);

    [LoggerMessage(EventId = 50402, Level = LogLevel.Information, Message = "Checkpoint {CheckpointId} published as {ImageReference}")]
    public static partial void Published(ILogger logger, string checkpointId, string imageReference);

    [LoggerMessage(EventId = 50403, Level = LogLevel.Warning, Message = "Checkpoint {CheckpointId} is not served as an image: {Reason}")]
    public static partial void NotAuthentic(ILogger logger, string checkpointId, string reason);
}

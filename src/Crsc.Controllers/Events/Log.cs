using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Events;

internal static partial class Log
{
    [LoggerMessage(20401, LogLevel.Warning, "event {Reason} on {Object} dropped: too many events waiting to be written")]
    public static partial void Dropped(ILogger logger, string reason, string @object);

    [LoggerMessage(20402, LogLevel.Warning, "event {Reason} on {Object} could not be written; dropped")]
    public static partial void WriteFailed(ILogger logger, Exception e, string reason, string @object);

    [LoggerMessage(20403, LogLevel.Warning, "event {Reason} could not be recorded")]
    public static partial void RecordFailed(ILogger logger, Exception e, string reason);
}

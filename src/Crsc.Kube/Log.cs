using Microsoft.Extensions.Logging;

namespace Crsc.Kube;

internal static partial class Log
{
    [LoggerMessage(40001, LogLevel.Warning, "Skipped a malformed watch line from {Server} for {Resource}: {Error}")]
    public static partial void MalformedWatchLine(ILogger logger, string server, string resource, string error);

    [LoggerMessage(40002, LogLevel.Information, "The bearer token was rejected by {Server}; retrying with the token re-read from its source")]
    public static partial void TokenRefreshed(ILogger logger, string server);

    [LoggerMessage(40003, LogLevel.Debug, "Watch of {Resource} from resourceVersion {ResourceVersion} started")]
    public static partial void WatchStarted(ILogger logger, string resource, string resourceVersion);

    [LoggerMessage(40004, LogLevel.Debug, "Watch of {Resource} closed by the server at resourceVersion {ResourceVersion}; resuming")]
    public static partial void WatchClosed(ILogger logger, string resource, string resourceVersion);

    [LoggerMessage(40005, LogLevel.Information, "Watch of {Resource} expired at resourceVersion {ResourceVersion} (410 Gone); listing again")]
    public static partial void WatchExpired(ILogger logger, string resource, string resourceVersion);

    [LoggerMessage(40006, LogLevel.Warning, "List/watch of {Resource} failed; retrying in {DelayMs} ms")]
    public static partial void ListWatchFailed(ILogger logger, Exception error, string resource, long delayMs);

    [LoggerMessage(40007, LogLevel.Debug, "Listed {Count} {Resource} at resourceVersion {ResourceVersion}")]
    public static partial void Listed(ILogger logger, int count, string resource, string resourceVersion);
}

using Microsoft.Extensions.Logging;

namespace Crsc.Kube;

internal static partial class Log
{
    [LoggerMessage(40001, LogLevel.Warning, "Skipped a malformed watch line from {Server} for {Resource}: {Error}")]
    public static partial void MalformedWatchLine(ILogger logger, string server, string resource, string error);

    [LoggerMessage(40002, LogLevel.Information, "The bearer token was rejected by {Server}; retrying with the token re-read from its source")]
    public static partial void TokenRefreshed(ILogger logger, string server);
}

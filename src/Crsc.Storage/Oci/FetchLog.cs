using Microsoft.Extensions.Logging;

namespace Crsc.Storage.Oci;

// the checkpoint image fetch's messages (event ids 50520-50529)
internal static partial class Log
{
    [LoggerMessage(EventId = 50520, Level = LogLevel.Information, Message = "Fetching checkpoint image {Image}: blob {Digest}, {Size} bytes")]
    public static partial void FetchStarted(ILogger logger, string image, string digest, long size);

    [LoggerMessage(EventId = 50521, Level = LogLevel.Information,
        Message = "Fetched checkpoint image {Image} as checkpoint {CheckpointId} ({Digest}; {Resumes} resumed, {Restarts} restarted transfers)")]
    public static partial void Fetched(ILogger logger, string image, string checkpointId, string digest, int resumes, int restarts);

    [LoggerMessage(EventId = 50522, Level = LogLevel.Warning, Message = "Fetching checkpoint image {Image} failed, nothing stored: {Problem}")]
    public static partial void FetchFailed(ILogger logger, string image, string problem);

    [LoggerMessage(EventId = 50523, Level = LogLevel.Warning,
        Message = "Fetching checkpoint image {Image}: {What}: attempt {Attempt} of {MaxAttempts} failed, retrying in {Wait}: {Error}")]
    public static partial void FetchRetrying(ILogger logger, string image, string what, int attempt, int maxAttempts, TimeSpan wait, string error);
}

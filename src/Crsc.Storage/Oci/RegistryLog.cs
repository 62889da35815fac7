using Microsoft.Extensions.Logging;

namespace Crsc.Storage.Oci;

// the registry push's messages (event ids 200-219; the image writer and endpoint use others)
internal static partial class Log
{
    [LoggerMessage(EventId = 50500, Level = LogLevel.Debug, Message = "Registry {Registry} already has {Repository}@{Digest}")]
    public static partial void BlobSkipped(ILogger logger, string registry, string repository, string digest);

    [LoggerMessage(EventId = 50501, Level = LogLevel.Debug,
        Message = "Uploaded {Repository}@{Digest} to {Registry}: {Size} bytes ({Mode})")]
    public static partial void BlobUploaded(ILogger logger, string registry, string repository, string digest, long size, string mode);

    [LoggerMessage(EventId = 50502, Level = LogLevel.Information,
        Message = "Pushed {Registry}/{Repository}:{Tag} ({Digest}): {Uploaded} blobs uploaded, {Skipped} already there")]
    public static partial void ManifestPushed(ILogger logger, string registry, string repository, string tag, string digest, int uploaded, int skipped);

    [LoggerMessage(EventId = 50503, Level = LogLevel.Warning,
        Message = "Registry {Registry}: attempt {Attempt} of {MaxAttempts} failed, retrying in {Wait}: {Error}")]
    public static partial void Retrying(ILogger logger, string registry, int attempt, int maxAttempts, TimeSpan wait, string error);

    [LoggerMessage(EventId = 50504, Level = LogLevel.Debug,
        Message = "Registry {Registry}: token from {Realm} for {Scope}, valid {Lifetime}")]
    public static partial void TokenFetched(ILogger logger, string registry, string realm, string scope, TimeSpan lifetime);

    [LoggerMessage(EventId = 50505, Level = LogLevel.Warning,
        Message = "Registry {Registry}: cancelling the upload of {Repository}@{Digest} failed: {Error}")]
    public static partial void CancelFailed(ILogger logger, string registry, string repository, string digest, string error);

    [LoggerMessage(EventId = 50506, Level = LogLevel.Information,
        Message = "Checkpoint {CheckpointId} pushed as {ImageReference} ({Uploaded} blobs, {Bytes} bytes sent)")]
    public static partial void PushedCheckpoint(ILogger logger, string checkpointId, string imageReference, int uploaded, long bytes);
}

using Microsoft.Extensions.Logging;

namespace Crsc.Storage.Oci;

// the registry push's messages (event ids 100-119; the image writer and endpoint use others)
internal static partial class Log
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Debug, Message = "Registry {Registry} already has {Repository}@{Digest}")]
    public static partial void BlobSkipped(ILogger logger, string registry, string repository, string digest);

    [LoggerMessage(EventId = 101, Level = LogLevel.Debug,
        Message = "Uploaded {Repository}@{Digest} to {Registry}: {Size} bytes ({Mode})")]
    public static partial void BlobUploaded(ILogger logger, string registry, string repository, string digest, long size, string mode);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information,
        Message = "Pushed {Registry}/{Repository}:{Tag} ({Digest}): {Uploaded} blobs uploaded, {Skipped} already there")]
    public static partial void ManifestPushed(ILogger logger, string registry, string repository, string tag, string digest, int uploaded, int skipped);

    [LoggerMessage(EventId = 103, Level = LogLevel.Warning,
        Message = "Registry {Registry}: attempt {Attempt} of {MaxAttempts} failed, retrying in {Wait}: {Error}")]
    public static partial void Retrying(ILogger logger, string registry, int attempt, int maxAttempts, TimeSpan wait, string error);

    [LoggerMessage(EventId = 104, Level = LogLevel.Debug,
        Message = "Registry {Registry}: token from {Realm} for {Scope}, valid {Lifetime}")]
    public static partial void TokenFetched(ILogger logger, string registry, string realm, string scope, TimeSpan lifetime);

    [LoggerMessage(EventId = 105, Level = LogLevel.Warning,
        Message = "Registry {Registry}: cancelling the upload of {Repository}@{Digest} failed: {Error}")]
    public static partial void CancelFailed(ILogger logger, string registry, string repository, string digest, string error);
}

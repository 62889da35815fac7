using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Informers;

internal static partial class Log
{
    [LoggerMessage(20501, LogLevel.Information,
        "{Informer}: listed {Count} objects in {Pages} pages at resourceVersion {ResourceVersion} ({Added} added, {Updated} updated, {Deleted} deleted)")]
    public static partial void Listed(ILogger logger, string informer, int count, int pages, string? resourceVersion,
        int added, int updated, int deleted);

    [LoggerMessage(20502, LogLevel.Debug,
        "{Informer}: the server closed the watch after {Events} events; resuming from resourceVersion {ResourceVersion} in {Wait}")]
    public static partial void WatchClosed(ILogger logger, string informer, int events, string? resourceVersion, TimeSpan wait);

    [LoggerMessage(20503, LogLevel.Information,
        "{Informer}: resourceVersion {ResourceVersion} is too old ({Reason}); relisting")]
    public static partial void Expired(ILogger logger, string informer, string? resourceVersion, string reason);

    [LoggerMessage(20504, LogLevel.Warning, "{Informer}: API server unreachable ({Reason}); retrying in {Wait}")]
    public static partial void Unavailable(ILogger logger, string informer, string reason, TimeSpan wait);

    [LoggerMessage(20505, LogLevel.Warning, "{Informer}: list/watch failed; retrying in {Wait}")]
    public static partial void Failed(ILogger logger, Exception e, string informer, TimeSpan wait);

    [LoggerMessage(20506, LogLevel.Error, "{Informer}: an event handler failed")]
    public static partial void HandlerFailed(ILogger logger, Exception e, string informer);

    [LoggerMessage(20507, LogLevel.Error, "{Informer}: an index function failed on {Key}")]
    public static partial void IndexFailed(ILogger logger, Exception e, string informer, string key);
}

using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Reconciling;

internal static partial class Log
{
    [LoggerMessage(20901, LogLevel.Information, "controller {Controller}: started with {Workers} workers")]
    public static partial void Started(ILogger logger, string controller, int workers);

    [LoggerMessage(20902, LogLevel.Information, "controller {Controller}: stopped")]
    public static partial void Stopped(ILogger logger, string controller);

    [LoggerMessage(20903, LogLevel.Debug, "controller {Controller}: reconciled {Key}: {Result} in {Duration}")]
    public static partial void Reconciled(ILogger logger, string controller, string key, string result, TimeSpan duration);

    [LoggerMessage(20904, LogLevel.Error, "controller {Controller}: reconcile of {Key} failed terminally; not retrying")]
    public static partial void Terminal(ILogger logger, Exception e, string controller, string key);

    [LoggerMessage(20905, LogLevel.Warning, "controller {Controller}: reconcile of {Key} failed (attempt {Attempt}); retrying with backoff")]
    public static partial void Failed(ILogger logger, Exception e, string controller, string key, int attempt);
}

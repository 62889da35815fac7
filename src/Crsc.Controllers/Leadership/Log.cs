using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Leadership;

internal static partial class Log
{
    [LoggerMessage(20601, LogLevel.Information, "{Identity}: campaigning for lease {Namespace}/{Lease}")]
    public static partial void Campaigning(ILogger logger, string identity, string @namespace, string lease);

    [LoggerMessage(20602, LogLevel.Information, "{Identity}: became leader (lease {Namespace}/{Lease})")]
    public static partial void StartedLeading(ILogger logger, string identity, string @namespace, string lease);

    [LoggerMessage(20603, LogLevel.Warning, "{Identity}: lost leadership: could not renew the lease within {RenewDeadline}; leader work stopped, campaigning again")]
    public static partial void Lost(ILogger logger, string identity, TimeSpan renewDeadline);

    [LoggerMessage(20604, LogLevel.Information, "{Identity}: stopped leading")]
    public static partial void StoppedLeading(ILogger logger, string identity);

    [LoggerMessage(20605, LogLevel.Error, "{Identity}: the leader work ended on its own; stepping down")]
    public static partial void WorkEnded(ILogger logger, string identity);

    [LoggerMessage(20606, LogLevel.Error, "{Identity}: the leader work failed")]
    public static partial void WorkFailed(ILogger logger, Exception e, string identity);

    [LoggerMessage(20607, LogLevel.Warning, "{Identity}: could not acquire or renew lease {Namespace}/{Lease}")]
    public static partial void AttemptFailed(ILogger logger, Exception e, string identity, string @namespace, string lease);

    [LoggerMessage(20608, LogLevel.Information, "the leader is now {Leader}")]
    public static partial void LeaderObserved(ILogger logger, string leader);

    [LoggerMessage(20609, LogLevel.Information, "{Identity}: released lease {Namespace}/{Lease}")]
    public static partial void Released(ILogger logger, string identity, string @namespace, string lease);

    [LoggerMessage(20610, LogLevel.Warning, "{Identity}: could not release the lease; it expires on its own")]
    public static partial void ReleaseFailed(ILogger logger, Exception e, string identity);

    [LoggerMessage(20611, LogLevel.Error, "a leader-election callback failed")]
    public static partial void CallbackFailed(ILogger logger, Exception e);
}

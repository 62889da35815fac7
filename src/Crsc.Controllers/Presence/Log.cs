using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Presence;

// Event ids: the node agent's presence Lease 1–19, the abandoned-checkpoint reconciler 20–39.
internal static partial class Log
{
    [LoggerMessage(20801, LogLevel.Warning, "Could not renew this node's presence Lease {Namespace}/{Lease}; trying again every {Interval}")]
    public static partial void LeaseRenewFailed(ILogger logger, Exception exception, string @namespace, string lease, TimeSpan interval);

    [LoggerMessage(20802, LogLevel.Information, "Renewed this node's presence Lease {Namespace}/{Lease} again")]
    public static partial void LeaseRenewed(ILogger logger, string @namespace, string lease);

    [LoggerMessage(20820, LogLevel.Warning, "ContainerCheckpoint {Namespace}/{Name}: {Reason}; removed its archive finalizer, archive {ArchivePath} is left on node {Node}")]
    public static partial void Abandoned(ILogger logger, string @namespace, string name, string node, string reason, string archivePath);
}

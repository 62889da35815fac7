using Crsc.Api.Crds;
using Crsc.Controllers.Events;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Replication;

/// <summary>
/// Retention in the registry: when a ContainerCheckpoint's archive is deleted (its finalizer, after retention or a user
/// deleted it), the Registry copies its Content lists in the configured registry are deleted as well (by digest). A
/// manifest that is gone already is fine; a registry that does not delete (405, or crsc's credentials may not) is said
/// once per process as a warning; any other failure is a warning and a Warning Event. None of them holds up the
/// deletion of the archive: the registry copy is the lesser one.
/// </summary>
public sealed class ReplicaRemover(ICheckpointReplicaTarget target, IEventRecorder events, ILogger? logger = null,
    ReplicationMetrics? metrics = null)
{
    /// <summary>The Warning Event on the ContainerCheckpoint when its copy could not be deleted.</summary>
    public const string ReasonReplicaNotDeleted = "ReplicaNotDeleted";

    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private int _notAllowedSaid;

    /// <summary>Deletes the registry copies of <paramref name="content"/>, which belongs to <paramref name="checkpoint"/>.</summary>
    public async Task RemoveAsync(ContainerCheckpoint checkpoint, ContainerCheckpointContent content, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(content);
        var ns = checkpoint.Metadata.Namespace ?? "";
        var name = checkpoint.Metadata.Name ?? "";
        foreach (var copy in content.Status?.Copies ?? [])
        {
            if (copy.Kind != CheckpointCopyKind.Registry) continue;
            if (!target.Holds(copy.ImageReference))
            {
                Log.ReplicaElsewhere(_logger, ns, name, copy.ImageReference, target.Registry);
                continue;
            }
            try
            {
                switch (await target.DeleteAsync(copy.ImageReference, ct).ConfigureAwait(false))
                {
                    case ReplicaDeletion.Deleted:
                        metrics?.Deletions.Inc(1, ReplicationMetrics.ResultDeleted);
                        Log.ReplicaDeleted(_logger, ns, name, copy.ImageReference);
                        break;
                    case ReplicaDeletion.AlreadyGone:
                        metrics?.Deletions.Inc(1, ReplicationMetrics.ResultGone);
                        Log.ReplicaGone(_logger, ns, name, copy.ImageReference);
                        break;
                    default:
                        metrics?.Deletions.Inc(1, ReplicationMetrics.ResultRefused);
                        if (Interlocked.Exchange(ref _notAllowedSaid, 1) == 0)
                            Log.DeletesNotAllowed(_logger, target.Registry, copy.ImageReference, ns, name);
                        break;
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                metrics?.Deletions.Inc(1, ReplicationMetrics.ResultFailed);
                Log.ReplicaDeleteFailed(_logger, ns, name, copy.ImageReference, e.Message);
                events.Warning(checkpoint, ReasonReplicaNotDeleted,
                    $"its copy {copy.ImageReference} in registry {target.Registry} could not be deleted and stays there: {e.Message}");
            }
        }
    }
}

using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Nodes;
using Crsc.Controllers.Schedules;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Autonomy;

/// <summary>
/// The outbox records that publish a checkpoint taken on this node without the API server: the ContainerCheckpoint
/// (its archive id, the node it was taken on, the archive finalizer), then its Content and Completed status. Shared by
/// the <see cref="OfflineScheduler"/> and the node-away checkpoints (<see cref="NodeAwayPublication"/>).
/// </summary>
public static class OfflineCheckpointRecords
{
    public static List<OutboxRecord> Build(ContainerCheckpoint ckpt, string takenOn, string archiveId, string node, string? podUid,
        DateTimeOffset startedAt, DateTimeOffset completedAt)
    {
        ArgumentNullException.ThrowIfNull(ckpt);
        ckpt.Metadata.Annotations ??= [];
        ckpt.Metadata.Annotations[Annotations.ArchiveId] = archiveId;
        ckpt.Metadata.Annotations[Annotations.TakenOfflineOn] = takenOn;
        // so that deleting the object deletes the archive, as for checkpoints taken online
        ckpt.Metadata.Finalizers = [Finalizers.Archive];
        var archive = new OfflineArchive
        {
            Namespace = ckpt.Metadata.Namespace!,
            CheckpointName = ckpt.Metadata.Name!,
            ArchiveId = archiveId,
            Node = node,
            PodUid = podUid,
            StartedAt = startedAt,
            CompletedAt = completedAt,
        };
        var archiveJson = JsonSerializer.Serialize(archive, AutonomyJsonContext.Default.OfflineArchive);
        return
        [
            new(OutboxRecordKind.CheckpointCreate, JsonSerializer.Serialize(ckpt, CrscResources.ContainerCheckpoints.Json)),
            new(OutboxRecordKind.ContentCreate, archiveJson),
            new(OutboxRecordKind.CheckpointStatus, archiveJson),
        ];
    }
}

/// <summary>The ContainerCheckpoint a node-away checkpoint is published as: the schedule that selects its container, and its name.</summary>
public sealed record NodeAwayTarget(CheckpointSchedule Schedule, string Name);

/// <summary>
/// Publishes the node-away checkpoints (<see cref="NodeAwayCheckpointer"/>) as ContainerCheckpoints through the outbox,
/// whether the API server is reachable or not (the <see cref="OutboxPublisher"/> publishes while it is): each is named
/// <c>&lt;workload&gt;-&lt;container&gt;-away-&lt;UTC time&gt;-&lt;pod hash&gt;</c>, owned and labelled as the checkpoints of the
/// schedule that selects its container (retention and listing treat them alike), and carries its reason in
/// <c>crsc.io/checkpoint-reason</c> (NodeDrain or NodeShutdown). A container no schedule of the node state selects is
/// not published (its archive stays in the node's store).
/// </summary>
public sealed partial class NodeAwayPublication(NodeStateStore state, IOutbox outbox, OutboxStatus? status, string nodeName,
    TimeProvider time, ILogger? logger = null)
{
    /// <summary>The word in a node-away checkpoint's name that tells it from a schedule's.</summary>
    public const string NameMarker = "away";

    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly Lock _lock = new();

    /// <summary>The name <paramref name="container"/>'s checkpoint started at <paramref name="at"/> is published as; null when no schedule selects it.</summary>
    public NodeAwayTarget? Plan(ManagedContainer container, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(container);
        var current = state.Current;
        var pod = current.Pods.FirstOrDefault(p => p.Namespace == container.Namespace && p.Name == container.Pod);
        if (pod is null) return null;
        var schedule = current.Schedules
            .Select(s => s.Pods.Contains(container.Pod) ? s.Schedule : null)
            .OfType<CheckpointSchedule>()
            .Where(s => (s.Metadata.Namespace ?? "default") == container.Namespace && !string.IsNullOrEmpty(s.Metadata.Uid)
                && ScheduleReconciler.SelectContainers(s, pod.Containers).Contains(container.Container))
            .OrderBy(s => s.Metadata.Name, StringComparer.Ordinal)
            .FirstOrDefault();
        if (schedule is null) return null;
        var name = ScheduleNames.CheckpointName(schedule.Spec.Target.Name, $"{container.Container}-{NameMarker}", at,
            ScheduleNames.ShortHash(container.Pod)[..6]);
        return new NodeAwayTarget(schedule, name);
    }

    /// <summary>Appends the records of a stored node-away checkpoint; false (logged) when the outbox did not take them.</summary>
    public bool Record(string reason, ManagedContainer container, NodeAwayTarget target, CheckpointOutcome outcome, DateTimeOffset startedAt)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(outcome);
        var ckpt = ScheduleReconciler.NewCheckpoint(target.Schedule, target.Name, container.Pod, container.Container, startedAt);
        // not a run of the schedule: its next run is not moved by this one
        ckpt.Metadata.Annotations!.Remove(Annotations.ScheduledFor);
        ckpt.Metadata.Annotations[Annotations.CheckpointReason] = reason;
        var info = outcome.Checkpoint;
        var records = OfflineCheckpointRecords.Build(ckpt, nodeName, info.Id, outcome.Node, info.PodUid,
            Crsc.Api.Kubernetes.KubeTime.Truncate(startedAt), Crsc.Api.Kubernetes.KubeTime.Truncate(time.GetUtcNow()));
        try
        {
            lock (_lock) outbox.Append(records);
        }
        catch (Exception e) when (e is OutboxFullException or IOException or UnauthorizedAccessException)
        {
            Log.NotRecorded(_logger, e, reason, container.ToString(), target.Name, info.Id);
            return false;
        }
        status?.Refresh();
        Log.Recorded(_logger, reason, container.ToString(), target.Name, info.Id);
        return true;
    }

    private static partial class Log
    {
        [LoggerMessage(22901, LogLevel.Information, "Node going away ({Reason}): checkpoint {Id} of {Container} is published as ContainerCheckpoint {Name} through the outbox")]
        public static partial void Recorded(ILogger logger, string reason, string container, string name, string id);

        [LoggerMessage(22902, LogLevel.Error, "Node going away ({Reason}): the outbox did not take ContainerCheckpoint {Name} of {Container}; archive {Id} stays in the store unpublished")]
        public static partial void NotRecorded(ILogger logger, Exception exception, string reason, string container, string name, string id);
    }
}

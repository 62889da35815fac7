using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Nodes;
using Crsc.Controllers.Schedules;
using Crsc.Controllers.Storage;
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

    /// <summary>
    /// The start mark of <paramref name="container"/>'s checkpoint, appended before the runtime is called: a crash after
    /// the store's commit and before <see cref="Record"/> leaves it unended, and the next start adopts the archive
    /// (<see cref="OfflineScheduler.ResolveInterruptedRuns"/>). Null (logged) when the outbox did not take it: the
    /// checkpoint is taken all the same, its memory matters more than its publication.
    /// </summary>
    public OfflineRun? MarkStarted(string reason, ManagedContainer container, NodeAwayTarget target, DateTimeOffset startedAt)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(target);
        var run = new OfflineRun
        {
            Namespace = container.Namespace,
            CheckpointName = target.Name,
            Schedule = target.Schedule.Metadata.Name!,
            ScheduleUid = target.Schedule.Metadata.Uid!,
            Pod = container.Pod,
            Container = container.Container,
            RunAt = startedAt,
            StartedAt = Crsc.Api.Kubernetes.KubeTime.Truncate(startedAt),
            Reason = reason,
        };
        return Append(reason, container, target.Name, null, [OutboxRuns.Mark(OutboxRecordKind.RunStarted, run)]) ? run : null;
    }

    /// <summary>The end mark of a run whose checkpoint failed (nothing to publish).</summary>
    public void MarkEnded(OfflineRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        Append(run.Reason ?? "", new ManagedContainer(run.Namespace, run.Pod, run.Container), run.CheckpointName, null,
            [OutboxRuns.Mark(OutboxRecordKind.RunEnded, run)]);
    }

    /// <summary>
    /// The records that publish a node-away checkpoint: the schedule's ContainerCheckpoint with the reason, not a run of
    /// the schedule (no <c>crsc.io/scheduled-for</c>, no schedule status), then its Content and status.
    /// </summary>
    public static List<OutboxRecord> Records(CheckpointSchedule schedule, string name, string pod, string container, string reason,
        string takenOn, CheckpointInfo archive, string archiveNode, DateTimeOffset startedAt, DateTimeOffset completedAt)
    {
        ArgumentNullException.ThrowIfNull(archive);
        var ckpt = ScheduleReconciler.NewCheckpoint(schedule, name, pod, container, startedAt);
        // not a run of the schedule: its next run is not moved by this one
        ckpt.Metadata.Annotations!.Remove(Annotations.ScheduledFor);
        ckpt.Metadata.Annotations[Annotations.CheckpointReason] = reason;
        return OfflineCheckpointRecords.Build(ckpt, takenOn, archive.Id, archiveNode, archive.PodUid,
            Crsc.Api.Kubernetes.KubeTime.Truncate(startedAt), Crsc.Api.Kubernetes.KubeTime.Truncate(completedAt));
    }

    /// <summary>Appends the records of a stored node-away checkpoint; false (logged) when the outbox did not take them.</summary>
    public bool Record(string reason, ManagedContainer container, NodeAwayTarget target, CheckpointOutcome outcome, DateTimeOffset startedAt)
    {
        ArgumentNullException.ThrowIfNull(container);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(outcome);
        var info = outcome.Checkpoint;
        var records = Records(target.Schedule, target.Name, container.Pod, container.Container, reason, nodeName, info, outcome.Node,
            startedAt, time.GetUtcNow());
        if (!Append(reason, container, target.Name, info.Id, records)) return false;
        Log.Recorded(_logger, reason, container.ToString(), target.Name, info.Id);
        return true;
    }

    private bool Append(string reason, ManagedContainer container, string name, string? archiveId, List<OutboxRecord> records)
    {
        try
        {
            lock (_lock) outbox.Append(records);
        }
        catch (Exception e) when (e is OutboxFullException or IOException or UnauthorizedAccessException)
        {
            if (archiveId is null) Log.MarkNotRecorded(_logger, e, reason, container.ToString(), name);
            else Log.NotRecorded(_logger, e, reason, container.ToString(), name, archiveId);
            return false;
        }
        status?.Refresh();
        return true;
    }

    private static partial class Log
    {
        [LoggerMessage(22901, LogLevel.Information, "Node going away ({Reason}): checkpoint {Id} of {Container} is published as ContainerCheckpoint {Name} through the outbox")]
        public static partial void Recorded(ILogger logger, string reason, string container, string name, string id);

        [LoggerMessage(22902, LogLevel.Error, "Node going away ({Reason}): the outbox did not take ContainerCheckpoint {Name} of {Container}; archive {Id} stays in the store unpublished")]
        public static partial void NotRecorded(ILogger logger, Exception exception, string reason, string container, string name, string id);

        [LoggerMessage(22903, LogLevel.Warning, "Node going away ({Reason}): the outbox did not take the start mark of ContainerCheckpoint {Name} of {Container}; the checkpoint is taken all the same")]
        public static partial void MarkNotRecorded(ILogger logger, Exception exception, string reason, string container, string name);
    }
}

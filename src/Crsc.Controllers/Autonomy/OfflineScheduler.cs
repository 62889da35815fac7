using System.Globalization;
using System.Text.Json;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Health;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Schedules;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using KubeTime = Crsc.Api.Crds.KubeTime;

namespace Crsc.Controllers.Autonomy;

public sealed record OfflineSchedulerOptions
{
    public required string NodeName { get; init; }

    /// <summary>As the online scheduler's: shorter intervals do not run.</summary>
    public TimeSpan MinimumInterval { get; init; } = ScheduleTiming.MinimumInterval;

    /// <summary>The longest wait between two looks at the schedules (a paused outbox is looked at again by then).</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary><c>source.component</c> of the Events it records.</summary>
    public string EventComponent { get; init; } = "crsc";
}

/// <summary>
/// Runs this node's schedules while the API server is unreachable (<see cref="ApiServerState"/>), from the saved
/// <see cref="NodeState"/>: the same due times (<see cref="ScheduleTiming"/>, one catch-up) and the same names as
/// the online <see cref="ScheduleReconciler"/>; the container is found and checkpointed through the runtime by the
/// <see cref="ICheckpointRunner"/> and its archive committed to the store. Each run appends to the outbox what the
/// cluster must learn (the ContainerCheckpoint, its Content and Completed status, the schedule's last run, an Event)
/// and then records the run in the shared <see cref="IScheduleRunLog"/>. While the outbox is full it pauses (nothing
/// is dropped). Retention of these checkpoints waits for the API server (the online path prunes them).
/// </summary>
public sealed partial class OfflineScheduler
{
    private readonly NodeStateStore _state;
    private readonly ApiServerState _apiServer;
    private readonly ICheckpointRunner _runner;
    private readonly IOutbox _outbox;
    private readonly OutboxStatus _status;
    private readonly OfflineSchedulerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public OfflineScheduler(NodeStateStore state, ApiServerState apiServer, ICheckpointRunner runner, IOutbox outbox, OutboxStatus status,
        OfflineSchedulerOptions options, TimeProvider time, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(options.NodeName);
        _state = state;
        _apiServer = apiServer;
        _runner = runner;
        _outbox = outbox;
        _status = status;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Offline checkpoints skipped because the outbox was full (since start).</summary>
    public int Paused => Volatile.Read(ref _paused);
    private int _paused;

    public async Task RunAsync(CancellationToken ct)
    {
        RecoverRuns();
        while (!ct.IsCancellationRequested)
        {
            // take the flip's task before looking, so a flip in between is not missed
            var flipped = _apiServer.WaitForChangeAsync(ct);
            try
            {
                if (_apiServer.IsReachable)
                {
                    await flipped.ConfigureAwait(false);
                    continue;
                }
                var next = await RunDueAsync(ct).ConfigureAwait(false);
                var now = _time.GetUtcNow();
                var wait = next is { } at && at - now < _options.MaxWait ? at - now : _options.MaxWait;
                if (wait < TimeSpan.Zero) wait = TimeSpan.Zero;
                await Task.WhenAny(Task.Delay(wait, _time, ct), flipped).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Runs every schedule slot that is due now (unless the API server is reachable); returns when the next one is
    /// due (null: none).
    /// </summary>
    public async Task<DateTimeOffset?> RunDueAsync(CancellationToken ct)
    {
        DateTimeOffset? next = null;
        var state = _state.Current;
        foreach (var saved in state.Schedules)
        {
            var schedule = saved.Schedule;
            if (schedule.Metadata.Uid is not { Length: > 0 } uid || schedule.Metadata.CreationTimestamp is not { } anchor
                || schedule.Spec.Suspend || schedule.Spec.Validate().Count > 0) continue;
            var grid = ScheduleReconciler.Grid(schedule, anchor, _options.MinimumInterval, out _, out _);
            if (grid is null) continue;
            var jitter = ScheduleTiming.Jitter(uid, grid.Period);
            var podIndex = 0;
            foreach (var podName in saved.Pods.Order(StringComparer.Ordinal))
            {
                var pod = state.Pods.FirstOrDefault(p => p.Namespace == schedule.Metadata.Namespace && p.Name == podName);
                if (pod is null) continue;
                var suffix = podIndex++ == 0 ? null : ScheduleNames.ShortHash(podName)[..6];
                foreach (var container in ScheduleReconciler.SelectContainers(schedule, pod.Containers))
                {
                    if (_apiServer.IsReachable) return next;
                    var last = Later(schedule.Status?.LastCheckpointTime, _state.LastRun(uid, podName, container)?.RunAt);
                    var now = _time.GetUtcNow();
                    var decision = ScheduleTiming.Decide(grid, jitter, last, now);
                    if (decision.NextAt is { } at && (next is null || at < next)) next = at;
                    if (decision.RunAt is not { } runAt) continue;
                    if (_status.IsFull)
                    {
                        Interlocked.Increment(ref _paused);
                        _status.Refresh();
                        Log.PausedFull(_logger, schedule.Metadata.Namespace!, schedule.Metadata.Name!, podName, container, runAt);
                        continue;
                    }
                    var name = ScheduleNames.CheckpointName(schedule.Spec.Target.Name, container, runAt, suffix);
                    await RunOneAsync(schedule, pod, container, runAt, name, ct).ConfigureAwait(false);
                }
            }
        }
        return next;
    }

    private async Task RunOneAsync(CheckpointSchedule schedule, SavedPod pod, string container, DateTimeOffset runAt, string name,
        CancellationToken ct)
    {
        var ns = schedule.Metadata.Namespace!;
        var started = KubeTime.Truncate(_time.GetUtcNow());
        Log.Running(_logger, ns, schedule.Metadata.Name!, name, pod.Name, container);
        List<OutboxRecord> records;
        try
        {
            var outcome = await _runner.CheckpointAsync(new CheckpointRequest(ns, pod.Name, container) { CheckpointObjectName = name },
                progress: null, ct).ConfigureAwait(false);
            var info = outcome.Checkpoint;
            var ckpt = ScheduleReconciler.NewCheckpoint(schedule, name, pod.Name, container, runAt);
            ckpt.Metadata.Annotations![ContainerCheckpointReconciler.ArchiveIdAnnotation] = info.Id;
            ckpt.Metadata.Annotations[ContainerCheckpointReconciler.TakenOfflineAnnotation] = _options.NodeName;
            // so that deleting the object deletes the archive, as for checkpoints taken online
            ckpt.Metadata.Finalizers = [ContainerCheckpointReconciler.ArchiveFinalizer];
            var archive = new OfflineArchive
            {
                Namespace = ns,
                CheckpointName = name,
                ArchiveId = info.Id,
                Node = outcome.Node,
                PodUid = info.PodUid ?? pod.Uid,
                StartedAt = started,
                CompletedAt = KubeTime.Truncate(_time.GetUtcNow()),
            };
            var archiveJson = JsonSerializer.Serialize(archive, AutonomyJsonContext.Default.OfflineArchive);
            records =
            [
                new(OutboxRecordKind.CheckpointCreate, JsonSerializer.Serialize(ckpt, CrscResources.ContainerCheckpoints.Json)),
                new(OutboxRecordKind.ContentCreate, archiveJson),
                new(OutboxRecordKind.CheckpointStatus, archiveJson),
                new(OutboxRecordKind.ScheduleStatus, JsonSerializer.Serialize(
                    new OfflineScheduleRun(ns, schedule.Metadata.Name!, schedule.Metadata.Uid!, runAt, name),
                    AutonomyJsonContext.Default.OfflineScheduleRun)),
                EventRecord(schedule, CoreEvent.Normal, "CheckpointCreated", string.Create(CultureInfo.InvariantCulture,
                    $"created ContainerCheckpoint {name} of pod {pod.Name} container {container} on node {_options.NodeName} while the API server was unreachable ({info.Size} bytes)")),
            ];
            Log.Taken(_logger, ns, name, info.Id, info.Size);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            Log.Failed(_logger, e, ns, schedule.Metadata.Name!, name, pod.Name, container);
            records = [EventRecord(schedule, CoreEvent.Warning, "CheckpointFailed",
                $"checkpoint {name} of pod {pod.Name} container {container} taken while the API server was unreachable failed on node {_options.NodeName}: {e.Message}")];
        }
        try
        {
            _outbox.Append(records);
        }
        catch (OutboxFullException e)
        {
            // the archive is in the store; the slot is not recorded, so it is not lost: it runs again once there is room
            _status.ReportRefused($"the records of checkpoint {name}", e);
            return;
        }
        _status.Refresh();
        _state.Record(new ScheduleRun(schedule.Metadata.Uid!, pod.Name, container, runAt, name));
    }

    /// <summary>
    /// Records in the run log the offline runs whose records still wait in the outbox. A run is appended to the
    /// outbox before it is recorded in the node state; a crash between the two would otherwise run the slot again
    /// after the restart and leave a second archive whose object the outbox cannot create. Returns how many it found.
    /// </summary>
    public int RecoverRuns()
    {
        var found = 0;
        foreach (var entry in _outbox.Pending(int.MaxValue))
        {
            if (entry.Record.Kind != OutboxRecordKind.CheckpointCreate) continue;
            ContainerCheckpoint? ckpt;
            try
            {
                ckpt = JsonSerializer.Deserialize(entry.Record.Body, CrscResources.ContainerCheckpoints.Json);
            }
            catch (JsonException)
            {
                continue; // the publisher reports and drops a corrupt record
            }
            if (ckpt?.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true)?.Uid is not { Length: > 0 } uid
                || ckpt.Metadata.Annotations?.GetValueOrDefault(ScheduleReconciler.ScheduledForAnnotation) is not { } text
                || !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var runAt))
                continue;
            _state.Record(new ScheduleRun(uid, ckpt.Spec.PodName, ckpt.Spec.Container ?? "", runAt, ckpt.Metadata.Name!));
            found++;
        }
        if (found > 0) Log.RunsRecovered(_logger, found);
        return found;
    }

    private OutboxRecord EventRecord(CheckpointSchedule regarding, string type, string reason, string message)
    {
        var now = _time.GetUtcNow();
        var ev = new CoreEvent
        {
            InvolvedObject = new CoreEventReference
            {
                ApiVersion = regarding.ApiVersion,
                Kind = regarding.Kind,
                Namespace = regarding.Metadata.Namespace,
                Name = regarding.Metadata.Name,
                Uid = regarding.Metadata.Uid,
            },
            Type = type,
            Reason = reason,
            Message = message,
            Source = new CoreEventSource { Component = _options.EventComponent, Host = _options.NodeName },
            ReportingComponent = _options.EventComponent,
            ReportingInstance = _options.NodeName,
            FirstTimestamp = now,
            LastTimestamp = now,
            Count = 1,
        };
        ev.Metadata.Namespace = regarding.Metadata.Namespace ?? "default";
        // unique and the same on a republish: the schedule, the time and a hash of the message
        ev.Metadata.Name = $"{regarding.Metadata.Name}.{(now - DateTimeOffset.UnixEpoch).Ticks:x}{ScheduleNames.ShortHash(message)[..4]}";
        return new OutboxRecord(OutboxRecordKind.Event, JsonSerializer.Serialize(ev, Resources.CoreEvents.Json));
    }

    private static DateTimeOffset? Later(DateTimeOffset? a, DateTimeOffset? b) => a is null ? b : b is null ? a : a > b ? a : b;

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "API server unreachable: schedule {Namespace}/{Schedule} checkpoints pod {Pod} container {Container} as {Name} through the runtime")]
        public static partial void Running(ILogger logger, string @namespace, string schedule, string name, string pod, string container);

        [LoggerMessage(2, LogLevel.Information, "Offline checkpoint {Namespace}/{Name} stored as {CheckpointId} ({Size} bytes); its records wait in the outbox")]
        public static partial void Taken(ILogger logger, string @namespace, string name, string checkpointId, long size);

        [LoggerMessage(3, LogLevel.Warning, "Offline checkpoint {Name} of schedule {Namespace}/{Schedule} (pod {Pod}, container {Container}) failed")]
        public static partial void Failed(ILogger logger, Exception exception, string @namespace, string schedule, string name, string pod, string container);

        [LoggerMessage(5, LogLevel.Information, "{Runs} offline run(s) whose records wait in the outbox are known as taken")]
        public static partial void RunsRecovered(ILogger logger, int runs);

        [LoggerMessage(4, LogLevel.Warning, "Outbox full: the offline checkpoint of schedule {Namespace}/{Schedule} (pod {Pod}, container {Container}) due at {RunAt} waits")]
        public static partial void PausedFull(ILogger logger, string @namespace, string schedule, string pod, string container, DateTimeOffset runAt);
    }
}

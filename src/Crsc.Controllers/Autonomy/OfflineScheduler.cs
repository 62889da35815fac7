using System.Globalization;
using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Health;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Schedules;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using KubeTime = Crsc.Api.Kubernetes.KubeTime;

namespace Crsc.Controllers.Autonomy;

public sealed record OfflineSchedulerOptions
{
    public required string NodeName { get; init; }

    /// <summary>As the online scheduler's: shorter intervals do not run.</summary>
    public TimeSpan MinimumInterval { get; init; } = ScheduleTiming.MinimumInterval;

    /// <summary>The longest wait between two looks at the schedules (a paused outbox is looked at again by then).</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>First wait after a round that failed (e.g. the outbox could not be written); doubles up to <see cref="MaxRetry"/>.</summary>
    public TimeSpan InitialRetry { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxRetry { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary><c>source.component</c> of the Events it records.</summary>
    public string EventComponent { get; init; } = "crsc";
}

/// <summary>What <see cref="OfflineScheduler.ResolveInterruptedRuns"/> found: runs a crash cut short.</summary>
/// <param name="Adopted">archives stored by such a run, whose records are now in the outbox</param>
/// <param name="Removed">archives stored by such a run that could not be adopted (their schedule is unknown), deleted</param>
/// <param name="Ended">runs that stored no archive, marked ended</param>
public readonly record struct InterruptedRuns(int Adopted, int Removed, int Ended);

/// <summary>
/// Runs this node's schedules while the API server is unreachable (<see cref="ApiServerState"/>; not before the
/// daemon's first attempt to reach it), from the saved <see cref="NodeState"/>: the same due times
/// (<see cref="ScheduleTiming"/>, one catch-up) and the same names as the online <see cref="ScheduleReconciler"/>; the
/// container is found and checkpointed through the runtime by the <see cref="ICheckpointRunner"/> and its archive
/// committed to the store. Each run first marks its start in the outbox (<see cref="OutboxRecordKind.RunStarted"/>),
/// then appends what the cluster must learn (the ContainerCheckpoint, its Content and Completed status, the schedule's
/// last run, an Event) and records the run in the shared <see cref="IScheduleRunLog"/>. Records that cannot be
/// appended are held and written before anything else; a crash between the store's commit and the append is found at
/// the next start by the start mark (<see cref="ResolveInterruptedRuns"/>), so no archive is left unrecorded. While the
/// outbox is full it pauses (nothing is dropped). A round that throws is retried with backoff and reported in the
/// <c>offline-scheduler</c> health entry. Retention of these checkpoints waits for the API server (the online path
/// prunes them).
/// </summary>
public sealed partial class OfflineScheduler
{
    public const string HealthComponent = "offline-scheduler";

    private readonly NodeStateStore _state;
    private readonly ApiServerState _apiServer;
    private readonly ICheckpointRunner _runner;
    private readonly ICheckpointStore _store;
    private readonly IOutbox _outbox;
    private readonly OutboxStatus _status;
    private readonly LoopHealth _loop;
    private readonly OfflineSchedulerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private HeldRecords? _held;

    /// <summary>The records of a finished run that the outbox did not take yet, and the run to record after them.</summary>
    private sealed record HeldRecords(string Name, IReadOnlyList<OutboxRecord> Records, ScheduleRun Run);

    public OfflineScheduler(NodeStateStore state, ApiServerState apiServer, ICheckpointRunner runner, ICheckpointStore store,
        IOutbox outbox, OutboxStatus status, HealthRegistry health, OfflineSchedulerOptions options, TimeProvider time,
        ILogger? logger = null, Random? random = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(options.NodeName);
        _state = state;
        _apiServer = apiServer;
        _runner = runner;
        _store = store;
        _outbox = outbox;
        _status = status;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        _loop = new LoopHealth(HealthComponent, health, time, options.InitialRetry, options.MaxRetry, random);
    }

    /// <summary>Offline checkpoints skipped because the outbox was full (since start).</summary>
    public int Paused => Volatile.Read(ref _paused);
    private int _paused;

    /// <summary>Whether records of a finished run wait to be appended to the outbox.</summary>
    public bool HoldsRecords => _held is not null;

    public async Task RunAsync(CancellationToken ct)
    {
        try
        {
            // a daemon that has not tried the API server yet is not offline: a restart takes no checkpoint before it has
            await _apiServer.WaitForFirstAttemptAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return;
        }
        var recovered = false;
        // one failed round (the outbox's disk is full, the store cannot be read) must not end offline checkpoints
        await _loop.RunAsync(async token =>
        {
            // take the flip's task before looking, so a flip in between is not missed
            var flipped = _apiServer.WaitForChangeAsync(token);
            if (!recovered)
            {
                ResolveInterruptedRuns();
                RecoverRuns();
                recovered = true;
            }
            WriteHeldRecords();
            if (!_apiServer.IsOffline)
            {
                _loop.Succeeded();
                return flipped;
            }
            var next = await RunDueAsync(token).ConfigureAwait(false);
            _loop.Succeeded();
            var now = _time.GetUtcNow();
            var wait = next is { } at && at - now < _options.MaxWait ? at - now : _options.MaxWait;
            if (wait < TimeSpan.Zero) wait = TimeSpan.Zero;
            return Task.WhenAny(Task.Delay(wait, _time, token), flipped);
        }, (e, wait) => Log.RoundFailed(_logger, e, wait), ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs every schedule slot that is due now (only while the API server is offline: tried and unreachable); returns
    /// when the next one is due (null: none). Records held from an earlier run are appended first.
    /// </summary>
    /// <exception cref="IOException">the outbox could not be written (the run's records are held for the next round)</exception>
    /// <exception cref="OutboxFullException">held records still do not fit</exception>
    public async Task<DateTimeOffset?> RunDueAsync(CancellationToken ct)
    {
        WriteHeldRecords();
        DateTimeOffset? next = null;
        if (!_apiServer.IsOffline) return next;
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
                    if (!_apiServer.IsOffline) return next;
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
        var run = new OfflineRun
        {
            Namespace = ns,
            CheckpointName = name,
            Schedule = schedule.Metadata.Name!,
            ScheduleUid = schedule.Metadata.Uid!,
            Pod = pod.Name,
            Container = container,
            RunAt = runAt,
            StartedAt = KubeTime.Truncate(_time.GetUtcNow()),
        };
        // the start mark goes first: without it no checkpoint is taken (a crash after the store's commit is found by it)
        try
        {
            _outbox.Append([OutboxRuns.Mark(OutboxRecordKind.RunStarted, run)]);
        }
        catch (OutboxFullException e)
        {
            _status.ReportRefused($"the start of checkpoint {name}", e);
            return;
        }
        _status.Refresh();
        Log.Running(_logger, ns, schedule.Metadata.Name!, name, pod.Name, container);
        List<OutboxRecord> records;
        try
        {
            var outcome = await _runner.CheckpointAsync(new CheckpointRequest(ns, pod.Name, container)
            {
                // the object is created later, by the outbox: its UID is not known yet (the archive id annotation ties them)
                Owner = new CheckpointOwner(ns, name, null, CheckpointOrigin.Offline),
            },
                progress: null, ct).ConfigureAwait(false);
            var info = outcome.Checkpoint;
            records = CheckpointRecords(schedule, run, info, outcome.Node, info.PodUid ?? pod.Uid, KubeTime.Truncate(_time.GetUtcNow()));
            Log.Taken(_logger, ns, name, info.Id, info.Size);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the start mark stays: the next start looks for an archive this run may have stored
            throw;
        }
        catch (Exception e)
        {
            Log.Failed(_logger, e, ns, schedule.Metadata.Name!, name, pod.Name, container);
            records = [OutboxRuns.Mark(OutboxRecordKind.RunEnded, run), EventRecord(schedule, CoreEvent.Warning, "CheckpointFailed",
                $"checkpoint {name} of pod {pod.Name} container {container} taken while the API server was unreachable failed on node {_options.NodeName}: {e.Message}")];
        }
        // the archive is in the store now: its records are held until the outbox takes them, never dropped
        _held = new HeldRecords(name, records, new ScheduleRun(schedule.Metadata.Uid!, pod.Name, container, runAt, name));
        WriteHeldRecords();
    }

    /// <summary>Appends the held records, then records their run; throws (keeping them) when the outbox does not take them.</summary>
    private void WriteHeldRecords()
    {
        if (_held is not { } held) return;
        try
        {
            _outbox.Append(held.Records);
        }
        catch (OutboxFullException e)
        {
            _status.ReportRefused($"the records of checkpoint {held.Name}", e);
            throw;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.RecordsHeld(_logger, e, held.Name);
            throw;
        }
        _held = null;
        _status.Refresh();
        _state.Record(held.Run);
    }

    /// <summary>The outbox records of a run that stored <paramref name="info"/>: the ContainerCheckpoint first.</summary>
    private List<OutboxRecord> CheckpointRecords(CheckpointSchedule schedule, OfflineRun run, CheckpointInfo info, string node, string? podUid,
        DateTimeOffset completedAt)
    {
        var ckpt = ScheduleReconciler.NewCheckpoint(schedule, run.CheckpointName, run.Pod, run.Container, run.RunAt);
        return
        [
            .. OfflineCheckpointRecords.Build(ckpt, _options.NodeName, info.Id, node, podUid, run.StartedAt, completedAt),
            new(OutboxRecordKind.ScheduleStatus, JsonSerializer.Serialize(
                new OfflineScheduleRun(run.Namespace, run.Schedule, run.ScheduleUid, run.RunAt, run.CheckpointName),
                AutonomyJsonContext.Default.OfflineScheduleRun)),
            EventRecord(schedule, CoreEvent.Normal, "CheckpointCreated", string.Create(CultureInfo.InvariantCulture,
                $"created ContainerCheckpoint {run.CheckpointName} of pod {run.Pod} container {run.Container} on node {_options.NodeName} while the API server was unreachable ({info.Size} bytes)")),
        ];
    }

    /// <summary>
    /// Finds the offline runs that marked their start in the outbox and never ended (a crash between the store's
    /// commit and the append of their records, or during the checkpoint). An archive such a run stored is one of that
    /// pod's container, in the store, not older than the run's start and named by no record in the outbox: the oldest
    /// such archive is adopted (its records are appended as the run would have, and the run recorded), or deleted
    /// when the run's schedule is no longer known to the node (nothing could own it). A run that stored nothing is
    /// marked ended (its slot runs again). Run at start, before new runs; the publisher waits at an unended start mark.
    /// </summary>
    public InterruptedRuns ResolveInterruptedRuns()
    {
        var pending = _outbox.Pending(int.MaxValue);
        var starts = new List<(long Position, OfflineRun Run)>();
        var referenced = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in pending)
        {
            switch (entry.Record.Kind)
            {
                case OutboxRecordKind.RunStarted when TryRead(entry.Record.Body, AutonomyJsonContext.Default.OfflineRun) is { } started:
                    starts.Add((entry.Position, started));
                    break;
                case OutboxRecordKind.CheckpointCreate when TryRead(entry.Record.Body, CrscResources.ContainerCheckpoints.Json) is { } ckpt:
                    if (ckpt.Metadata.Annotations?.GetValueOrDefault(Annotations.ArchiveId) is { } id) referenced.Add(id);
                    break;
                case OutboxRecordKind.ContentCreate or OutboxRecordKind.CheckpointStatus
                    when TryRead(entry.Record.Body, AutonomyJsonContext.Default.OfflineArchive) is { } archive:
                    referenced.Add(archive.ArchiveId);
                    break;
            }
        }
        int adopted = 0, removed = 0, endedRuns = 0;
        foreach (var (position, run) in starts)
        {
            if (pending.Any(e => e.Position > position && OutboxRuns.Ends(e.Record, run.Namespace, run.CheckpointName))) continue;
            var archive = _store.List(new CheckpointFilter(run.Namespace))
                .Where(c => c.PodName == run.Pod && c.Container == run.Container && c.CreatedAt >= run.StartedAt && !referenced.Contains(c.Id))
                // a node-away run's archive names its object and reason (a scheduled checkpoint may have run beside it)
                .Where(c => run.Reason is null || (c.Owner?.Name == run.CheckpointName && c.Reason == run.Reason))
                .OrderBy(c => c.CreatedAt)
                .FirstOrDefault();
            var schedule = _state.Current.Schedules.Select(s => s.Schedule).FirstOrDefault(s => s.Metadata.Uid == run.ScheduleUid);
            if (archive is not null && run.Reason is { } reason && schedule is not null)
            {
                // a node-away checkpoint: published as the node-away path would have, not a run of the schedule
                _outbox.Append(NodeAwayPublication.Records(schedule, run.CheckpointName, run.Pod, run.Container, reason, _options.NodeName,
                    archive, archive.NodeName ?? _options.NodeName, run.StartedAt, archive.CreatedAt));
                Log.InterruptedAdopted(_logger, run.Namespace, run.CheckpointName, archive.Id);
                adopted++;
            }
            else if (archive is not null && run.Reason is not null)
            {
                // its schedule is gone from the node state: kept in the store unpublished, as the node-away path keeps
                // the checkpoint of a container no schedule selects (it holds the memory of a node that went away)
                _outbox.Append([OutboxRuns.Mark(OutboxRecordKind.RunEnded, run)]);
                Log.InterruptedKeptUnpublished(_logger, run.Namespace, run.CheckpointName, archive.Id, run.Schedule);
                endedRuns++;
            }
            else if (archive is null)
            {
                _outbox.Append([OutboxRuns.Mark(OutboxRecordKind.RunEnded, run)]);
                Log.InterruptedNothingStored(_logger, run.Namespace, run.CheckpointName);
                endedRuns++;
            }
            else if (schedule is null)
            {
                _store.Delete(archive.Id);
                _outbox.Append([OutboxRuns.Mark(OutboxRecordKind.RunEnded, run)]);
                Log.InterruptedRemoved(_logger, run.Namespace, run.CheckpointName, archive.Id, run.Schedule);
                removed++;
            }
            else
            {
                _outbox.Append(CheckpointRecords(schedule, run, archive, archive.NodeName ?? _options.NodeName, archive.PodUid,
                    KubeTime.Truncate(archive.CreatedAt)));
                _state.Record(new ScheduleRun(run.ScheduleUid, run.Pod, run.Container, run.RunAt, run.CheckpointName));
                Log.InterruptedAdopted(_logger, run.Namespace, run.CheckpointName, archive.Id);
                adopted++;
            }
            if (archive is not null) referenced.Add(archive.Id);
            _status.Refresh();
        }
        return new InterruptedRuns(adopted, removed, endedRuns);
    }

    private static T? TryRead<T>(string body, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize(body, info);
        }
        catch (JsonException)
        {
            return null; // the publisher reports and drops a corrupt record
        }
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
                || ckpt.Metadata.Annotations?.GetValueOrDefault(Annotations.ScheduledFor) is not { } text
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
            InvolvedObject = new ObjectReference
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
        [LoggerMessage(20101, LogLevel.Information, "API server unreachable: schedule {Namespace}/{Schedule} checkpoints pod {Pod} container {Container} as {Name} through the runtime")]
        public static partial void Running(ILogger logger, string @namespace, string schedule, string name, string pod, string container);

        [LoggerMessage(20102, LogLevel.Information, "Offline checkpoint {Namespace}/{Name} stored as {CheckpointId} ({Size} bytes); its records wait in the outbox")]
        public static partial void Taken(ILogger logger, string @namespace, string name, string checkpointId, long size);

        [LoggerMessage(20103, LogLevel.Warning, "Offline checkpoint {Name} of schedule {Namespace}/{Schedule} (pod {Pod}, container {Container}) failed")]
        public static partial void Failed(ILogger logger, Exception exception, string @namespace, string schedule, string name, string pod, string container);

        [LoggerMessage(20105, LogLevel.Information, "{Runs} offline run(s) whose records wait in the outbox are known as taken")]
        public static partial void RunsRecovered(ILogger logger, int runs);

        [LoggerMessage(20106, LogLevel.Error, "Offline scheduler round failed; retrying in {Wait}")]
        public static partial void RoundFailed(ILogger logger, Exception exception, TimeSpan wait);

        [LoggerMessage(20107, LogLevel.Error, "The outbox did not take the records of offline checkpoint {Name}; they are held and written before any other run")]
        public static partial void RecordsHeld(ILogger logger, Exception exception, string name);

        [LoggerMessage(20108, LogLevel.Warning, "Offline checkpoint {Namespace}/{Name} was cut short by a restart after archive {CheckpointId} was stored; the archive is adopted and its records appended to the outbox")]
        public static partial void InterruptedAdopted(ILogger logger, string @namespace, string name, string checkpointId);

        [LoggerMessage(20109, LogLevel.Warning, "Offline checkpoint {Namespace}/{Name} was cut short by a restart after archive {CheckpointId} was stored, and its schedule {Schedule} is no longer known on this node; the archive is deleted")]
        public static partial void InterruptedRemoved(ILogger logger, string @namespace, string name, string checkpointId, string schedule);

        [LoggerMessage(20111, LogLevel.Warning, "Node-away checkpoint {Namespace}/{Name} was cut short by a restart after archive {CheckpointId} was stored, and its schedule {Schedule} is no longer known on this node; the archive stays in the store unpublished")]
        public static partial void InterruptedKeptUnpublished(ILogger logger, string @namespace, string name, string checkpointId, string schedule);

        [LoggerMessage(20110, LogLevel.Information, "Offline checkpoint {Namespace}/{Name} was cut short by a restart before an archive was stored; its slot runs again")]
        public static partial void InterruptedNothingStored(ILogger logger, string @namespace, string name);

        [LoggerMessage(20104, LogLevel.Warning, "Outbox full: the offline checkpoint of schedule {Namespace}/{Schedule} (pod {Pod}, container {Container}) due at {RunAt} waits")]
        public static partial void PausedFull(ILogger logger, string @namespace, string schedule, string pod, string container, DateTimeOffset runAt);
    }
}

using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Health;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using KubeTime = Crsc.Api.Kubernetes.KubeTime;

namespace Crsc.Controllers.Autonomy;

public sealed record OutboxPublisherOptions
{
    /// <summary>First wait before a failed record is tried again; doubles up to <see cref="MaxRetry"/>, with full jitter.</summary>
    public TimeSpan InitialRetry { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxRetry { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// When the API server comes back, each node waits a random time up to this before it publishes, so that the
    /// nodes of a cluster do not all write at the same instant.
    /// </summary>
    public TimeSpan Spread { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often an idle publisher looks for new records.</summary>
    public TimeSpan Poll { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>First wait after a round that threw (e.g. the outbox could not be written); doubles up to <see cref="MaxRoundRetry"/>.</summary>
    public TimeSpan InitialRoundRetry { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxRoundRetry { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary><c>source.component</c> of the Events it records itself (an offline checkpoint it discards).</summary>
    public string EventComponent { get; init; } = "crsc";
}

/// <summary>
/// Publishes the outbox to the API server, oldest record first, while it is reachable; acknowledges each record after
/// it is published, so a crash in between publishes it again — every write is idempotent: creates meet AlreadyExists
/// and compare (the same object is success), status writes re-read on 409 and apply only what is not superseded by
/// a newer object. A record that fails is retried (exponential backoff, full jitter) before any later one. An offline
/// checkpoint whose ContainerCheckpoint cannot be created — another object holds its name, its namespace is gone or
/// going, the API server refuses it as invalid — has its archive deleted (logged, and an Event on its schedule where
/// the namespace still takes one): nothing could ever reference that archive. Records stop at the start mark of an
/// offline run that has not ended yet (<see cref="OutboxRecordKind.RunStarted"/>). A round that throws is retried with
/// backoff and reported in the <c>outbox-publisher</c> health entry.
/// </summary>
public sealed partial class OutboxPublisher
{
    public const string HealthComponent = "outbox-publisher";

    /// <summary>The result of a start or end mark: acknowledged, not counted as published.</summary>
    public const string MarkerResult = "marker";

    private readonly IOutbox _outbox;
    private readonly IKubeResourceClient<ContainerCheckpoint> _checkpoints;
    private readonly IKubeResourceClient<ContainerCheckpointContent> _contents;
    private readonly CheckpointRecorder _recorder;
    private readonly IKubeResourceClient<CheckpointSchedule> _schedules;
    private readonly IKubeResourceClient<CoreEvent> _events;
    private readonly ICheckpointStore _store;
    private readonly ApiServerState _apiServer;
    private readonly OutboxStatus _status;
    private readonly OutboxPublisherOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ICheckpointImagePublisher? _images;
    private readonly Random _random;
    private readonly LoopHealth _loop;
    private int _failures;

    public OutboxPublisher(IOutbox outbox, IKubeApi kube, ICheckpointStore store, ApiServerState apiServer, OutboxStatus status,
        HealthRegistry health, OutboxPublisherOptions options, TimeProvider time, ILogger? logger = null,
        ICheckpointImagePublisher? images = null, Random? random = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        _outbox = outbox;
        _checkpoints = kube.Resource(CrscResources.ContainerCheckpoints);
        _contents = kube.Resource(CrscResources.ContainerCheckpointContents);
        _recorder = new CheckpointRecorder(kube);
        _schedules = kube.Resource(CrscResources.CheckpointSchedules);
        _events = kube.Resource(Resources.CoreEvents);
        _store = store;
        _apiServer = apiServer;
        _status = status;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        _images = images;
        _random = random ?? Random.Shared;
        _loop = new LoopHealth(HealthComponent, health, time, options.InitialRoundRetry, options.MaxRoundRetry, _random);
    }

    public async Task RunAsync(CancellationToken ct)
    {
        var wasReachable = false;
        // the outbox could not be read or acknowledged (a full disk): the round is tried again, the loop goes on
        await _loop.RunAsync(async token =>
        {
            _status.Refresh();
            var flipped = _apiServer.WaitForChangeAsync(token);
            if (!_apiServer.IsReachable)
            {
                wasReachable = false;
                return flipped;
            }
            if (!wasReachable && _outbox.Usage.Records > 0)
            {
                // back after an outage: not every node at once
                var spread = TimeSpan.FromTicks((long)(_options.Spread.Ticks * _random.NextDouble()));
                Log.Back(_logger, _outbox.Usage.Records, spread);
                await Task.Delay(spread, _time, token).ConfigureAwait(false);
            }
            wasReachable = true;
            var wait = await PublishPendingAsync(token).ConfigureAwait(false) ?? _options.Poll;
            _loop.Succeeded();
            return Task.WhenAny(Task.Delay(wait, _time, token), flipped);
        }, (e, wait) => Log.RoundFailed(_logger, e, wait), ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Publishes pending records in order until none is left or one fails; returns the wait before trying again
    /// after a failure (backoff with jitter), null when everything was published.
    /// </summary>
    public async Task<TimeSpan?> PublishPendingAsync(CancellationToken ct)
    {
        while (true)
        {
            var batch = _outbox.Pending(32);
            if (batch.Count == 0) return null;
            foreach (var entry in batch)
            {
                if (entry.Record.Kind == OutboxRecordKind.RunStarted && !RunHasEnded(entry))
                {
                    // an offline run is checkpointing, or its records wait to be appended: what follows waits for it
                    Log.WaitingForRun(_logger, entry.Position);
                    return _options.Poll;
                }
                string result;
                try
                {
                    result = await PublishAsync(entry.Record, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    throw;
                }
                catch (Exception e) when (IsPermanent(e))
                {
                    // it can never be written as it is (malformed, refused as invalid): kept out of the way, loudly
                    Log.Dropped(_logger, e, entry.Record.Kind.ToString(), entry.Position);
                    result = "dropped";
                }
                catch (Exception e)
                {
                    var failures = Interlocked.Increment(ref _failures);
                    var cap = Math.Min(_options.MaxRetry.Ticks, _options.InitialRetry.Ticks * (1L << Math.Min(failures - 1, 20)));
                    var wait = TimeSpan.FromTicks((long)(cap * (0.5 + 0.5 * _random.NextDouble())));
                    Log.Retry(_logger, entry.Record.Kind.ToString(), entry.Position, wait, e.Message);
                    _status.ReportPublishFailed(Describe(e));
                    return wait;
                }
                Interlocked.Exchange(ref _failures, 0);
                _outbox.Acknowledge(entry);
                if (result != MarkerResult)
                {
                    _status.ReportPublished();
                    _status.Published.Inc(1, result);
                }
                _status.Refresh();
            }
        }
    }

    /// <summary>Whether a later record ends the run that <paramref name="start"/> marks (a corrupt mark ends nothing and is passed).</summary>
    private bool RunHasEnded(OutboxEntry start)
    {
        OfflineRun? run;
        try
        {
            run = JsonSerializer.Deserialize(start.Record.Body, AutonomyJsonContext.Default.OfflineRun);
        }
        catch (JsonException)
        {
            return true;
        }
        if (run is null) return true;
        foreach (var later in _outbox.Pending(int.MaxValue))
            if (later.Position > start.Position && OutboxRuns.Ends(later.Record, run.Namespace, run.CheckpointName)) return true;
        return false;
    }

    /// <summary>A failure as the health entry names it; a refusal says where to look, since it will not pass by itself.</summary>
    private static string Describe(Exception e) => e switch
    {
        UnauthorizedException or ForbiddenException =>
            $"refused by the API server ({((KubeApiException)e).Code} {((KubeApiException)e).Reason}: {e.Message}); check crsc's credentials and RBAC",
        _ => e.Message,
    };

    private static bool IsPermanent(Exception e) => e switch
    {
        JsonException or NotSupportedException => true,
        InvalidException => true,
        KubeApiException k => k.Code == 400,
        _ => false,
    };

    /// <summary>Writes one record; returns how: <c>published</c>, <c>existed</c>, <c>superseded</c> or <c>dropped</c>.</summary>
    public Task<string> PublishAsync(OutboxRecord record, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(record);
        return record.Kind switch
        {
            OutboxRecordKind.CheckpointCreate => CreateCheckpointAsync(Deserialize(record.Body, CrscResources.ContainerCheckpoints.Json), ct),
            OutboxRecordKind.ContentCreate => CreateContentAsync(Deserialize(record.Body, AutonomyJsonContext.Default.OfflineArchive), ct),
            OutboxRecordKind.CheckpointStatus => CompleteAsync(Deserialize(record.Body, AutonomyJsonContext.Default.OfflineArchive), ct),
            OutboxRecordKind.ScheduleStatus => ScheduleStatusAsync(Deserialize(record.Body, AutonomyJsonContext.Default.OfflineScheduleRun), ct),
            OutboxRecordKind.Event => CreateEventAsync(Deserialize(record.Body, Resources.CoreEvents.Json), ct),
            OutboxRecordKind.EventRepeat => RepeatEventAsync(Deserialize(record.Body, Resources.CoreEvents.Json), ct),
            OutboxRecordKind.RunStarted or OutboxRecordKind.RunEnded => Task.FromResult(MarkerResult),
            _ => throw new NotSupportedException($"outbox record kind {(int)record.Kind} is unknown to this version of crsc"),
        };
    }

    private static T Deserialize<T>(string body, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info) =>
        JsonSerializer.Deserialize(body, info) ?? throw new JsonException($"empty {typeof(T).Name} record");

    private async Task<string> CreateCheckpointAsync(ContainerCheckpoint ckpt, CancellationToken ct)
    {
        var ns = ckpt.Metadata.Namespace ?? throw new JsonException("ContainerCheckpoint record without a namespace");
        var name = ckpt.Metadata.Name ?? throw new JsonException("ContainerCheckpoint record without a name");
        var archiveId = ArchiveOf(ckpt);
        try
        {
            await _checkpoints.CreateAsync(ckpt, ct).ConfigureAwait(false);
            return "published";
        }
        catch (AlreadyExistsException)
        {
            ContainerCheckpoint existing;
            try
            {
                existing = await _checkpoints.GetAsync(ns, name, ct).ConfigureAwait(false);
            }
            catch (NotFoundException e)
            {
                // deleted between the two calls: the create is tried again
                throw new InvalidOperationException($"ContainerCheckpoint {ns}/{name} existed and was gone when read: {e.Message}", e);
            }
            // the object of that name refers to this archive (this run, published before a crash): the archive is owned
            if (SameRun(existing, ckpt) || (archiveId is not null && ArchiveOf(existing) == archiveId)) return "existed";
            // another checkpoint holds the name (the online path took the same slot): this archive could never be
            // referenced, and a second object for the slot under another name would be a duplicate run
            DiscardArchive(ns, name, archiveId, $"another ContainerCheckpoint of that name exists (uid {existing.Metadata.Uid})");
            await RecordDiscardedAsync(ckpt, archiveId, $"another ContainerCheckpoint named {name} exists", ct).ConfigureAwait(false);
            return "dropped";
        }
        catch (KubeApiException e) when (NamespaceGone(e, ns))
        {
            DiscardArchive(ns, name, archiveId, e is NotFoundException ? $"namespace {ns} no longer exists" : $"namespace {ns} is being deleted");
            return "dropped";
        }
        catch (KubeApiException e) when (e is InvalidException || e.Code == 400)
        {
            DiscardArchive(ns, name, archiveId, $"the API server refuses the ContainerCheckpoint: {e.Message}");
            await RecordDiscardedAsync(ckpt, archiveId, $"the API server refuses ContainerCheckpoint {name}: {e.Message}", ct).ConfigureAwait(false);
            return "dropped";
        }
    }

    private static string? ArchiveOf(ContainerCheckpoint ckpt) =>
        ckpt.Metadata.Annotations?.GetValueOrDefault(Annotations.ArchiveId);

    /// <summary>
    /// Whether a refused write says that namespace <paramref name="ns"/> is gone (404 <c>namespaces "ns" not found</c>)
    /// or going (403 <c>… because it is being terminated</c>), as kube-apiserver's namespace lifecycle admission answers;
    /// any other 404 (say, the CRD is not installed) is not.
    /// </summary>
    internal static bool NamespaceGone(KubeApiException e, string ns) => e switch
    {
        NotFoundException => e.Message == $"namespaces \"{ns}\" not found",
        ForbiddenException => e.Message.Contains($"unable to create new content in namespace {ns} because it is being terminated", StringComparison.Ordinal),
        _ => false,
    };

    /// <summary>Deletes the archive of an offline checkpoint that can never be published (crsc's own file); says so.</summary>
    private void DiscardArchive(string ns, string name, string? archiveId, string why)
    {
        var deleted = archiveId is not null && _store.Delete(archiveId);
        if (deleted) Log.Discarded(_logger, ns, name, archiveId!, why);
        else Log.DiscardedNoArchive(_logger, ns, name, archiveId ?? "(none)", why);
    }

    /// <summary>A Warning Event on the checkpoint's schedule that its offline archive was deleted (idempotent by name).</summary>
    private async Task RecordDiscardedAsync(ContainerCheckpoint ckpt, string? archiveId, string why, CancellationToken ct)
    {
        if (ckpt.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true) is not { } owner) return;
        var node = ckpt.Metadata.Annotations?.GetValueOrDefault(Annotations.TakenOfflineOn);
        var now = _time.GetUtcNow();
        var ev = new CoreEvent
        {
            InvolvedObject = new ObjectReference
            {
                ApiVersion = owner.ApiVersion,
                Kind = owner.Kind,
                Namespace = ckpt.Metadata.Namespace,
                Name = owner.Name,
                Uid = owner.Uid,
            },
            Type = CoreEvent.Warning,
            Reason = "CheckpointDiscarded",
            Message = $"the offline checkpoint {ckpt.Metadata.Name} (archive {archiveId ?? "none"}) was deleted{(node is null ? "" : " from node " + node)}: {why}",
            Source = new CoreEventSource { Component = _options.EventComponent, Host = node },
            ReportingComponent = _options.EventComponent,
            ReportingInstance = node,
            FirstTimestamp = now,
            LastTimestamp = now,
            Count = 1,
        };
        ev.Metadata.Namespace = ckpt.Metadata.Namespace;
        // the same name on a retry: one Event per discarded archive
        ev.Metadata.Name = $"{owner.Name}.{Schedules.ScheduleNames.ShortHash($"{ckpt.Metadata.Name}/{archiveId}")}";
        await CreateEventAsync(ev, ct).ConfigureAwait(false);
    }

    /// <summary>The object of that name is this run: same pod, container, archive and owning schedule.</summary>
    private static bool SameRun(ContainerCheckpoint existing, ContainerCheckpoint ours) =>
        existing.Spec.PodName == ours.Spec.PodName && existing.Spec.Container == ours.Spec.Container
        && existing.Metadata.Annotations?.GetValueOrDefault(Annotations.ArchiveId)
            == ours.Metadata.Annotations?.GetValueOrDefault(Annotations.ArchiveId)
        && (existing.Metadata.OwnerReferences ?? []).Select(o => o.Uid).SequenceEqual((ours.Metadata.OwnerReferences ?? []).Select(o => o.Uid));

    /// <summary>The published checkpoint that took <paramref name="archive"/>; null when it is gone or is another one now.</summary>
    private async Task<ContainerCheckpoint?> CheckpointOfAsync(OfflineArchive archive, CancellationToken ct)
    {
        try
        {
            var ckpt = await _checkpoints.GetAsync(archive.Namespace, archive.CheckpointName, ct).ConfigureAwait(false);
            return ckpt.Metadata.Annotations?.GetValueOrDefault(Annotations.ArchiveId) == archive.ArchiveId ? ckpt : null;
        }
        catch (NotFoundException)
        {
            return null;
        }
    }

    private async Task<string> CreateContentAsync(OfflineArchive archive, CancellationToken ct)
    {
        var ckpt = await CheckpointOfAsync(archive, ct).ConfigureAwait(false);
        if (ckpt is null)
        {
            Log.CheckpointGone(_logger, archive.Namespace, archive.CheckpointName, archive.ArchiveId);
            return "superseded";
        }
        if (await _recorder.FindContentAsync(ckpt, ct).ConfigureAwait(false) is not null) return "existed";
        if (_store.Get(archive.ArchiveId) is not { } info)
        {
            Log.ArchiveGone(_logger, archive.Namespace, archive.CheckpointName, archive.ArchiveId);
            return "dropped";
        }
        var image = await PublishImageAsync(info, ct).ConfigureAwait(false);
        // "existed": the node's reconciler made it meanwhile from the same archive
        var (_, created) = await _recorder.EnsureContentAsync(ckpt, info, archive.Node, image, ct).ConfigureAwait(false);
        return created ? "published" : "existed";
    }

    private async Task<string?> PublishImageAsync(CheckpointInfo info, CancellationToken ct)
    {
        if (_images is null) return null;
        try
        {
            return await _images.PublishAsync(info, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Log.ImageFailed(_logger, e, info.Id);
            return null;
        }
    }

    private async Task<string> CompleteAsync(OfflineArchive archive, CancellationToken ct)
    {
        var ckpt = await CheckpointOfAsync(archive, ct).ConfigureAwait(false);
        if (ckpt is null) return "superseded";
        // finished by someone else (the node's reconciler from the same archive): nothing to add
        if (IsFinished(ckpt)) return "existed";
        ContainerCheckpointContent content;
        try
        {
            content = await _contents.GetAsync(null, ContainerCheckpointReconciler.ContentNameFor(ckpt.Metadata.Uid ?? ""), ct)
                .ConfigureAwait(false);
        }
        catch (NotFoundException)
        {
            Log.ContentMissing(_logger, archive.Namespace, archive.CheckpointName);
            return "dropped";
        }
        // changed meanwhile (409): read again and decide from the newer object
        var declined = "superseded";
        var written = await StatusWriter.UpdateStatusAsync(_checkpoints, ckpt, current =>
        {
            if (current.Metadata.Uid != ckpt.Metadata.Uid
                || current.Metadata.Annotations?.GetValueOrDefault(Annotations.ArchiveId) != archive.ArchiveId)
                return false;
            if (IsFinished(current))
            {
                declined = "existed";
                return false;
            }
            var message = $"checkpoint of container {current.Spec.Container} stored on node {content.Spec.Node} ({content.Spec.SizeBytes} bytes) while the API server was unreachable";
            CheckpointRecorder.MarkCompleted(current.Status ??= new ContainerCheckpointStatus(), content, message,
                archive.PodUid ?? content.Spec.Source.PodUid, archive.StartedAt, archive.CompletedAt, current.Metadata.Generation,
                _time.GetUtcNow());
            return true;
        }, ct).ConfigureAwait(false);
        return written is null ? declined : "published";
    }

    private static bool IsFinished(ContainerCheckpoint ckpt) =>
        ckpt.Status?.Phase is ContainerCheckpointPhase.Completed or ContainerCheckpointPhase.Failed;

    private async Task<string> ScheduleStatusAsync(OfflineScheduleRun run, CancellationToken ct)
    {
        CheckpointSchedule schedule;
        try
        {
            schedule = await _schedules.GetAsync(run.Namespace, run.Name, ct).ConfigureAwait(false);
        }
        catch (NotFoundException)
        {
            return "superseded";
        }
        // a newer schedule (409): read again; applied only while it is still older than this run
        var written = await StatusWriter.UpdateStatusAsync(_schedules, schedule, current =>
        {
            if (current.Metadata.Uid != run.Uid) return false;
            if (current.Status?.LastCheckpointTime is { } last && KubeTime.Truncate(last) >= KubeTime.Truncate(run.LastCheckpointTime))
                return false;
            current.Status ??= new CheckpointScheduleStatus();
            current.Status.LastCheckpointTime = KubeTime.Truncate(run.LastCheckpointTime);
            current.Status.LastCheckpointName = run.LastCheckpointName;
            return true;
        }, ct).ConfigureAwait(false);
        return written is null ? "superseded" : "published";
    }

    private async Task<string> CreateEventAsync(CoreEvent ev, CancellationToken ct)
    {
        try
        {
            await _events.CreateAsync(ev, ct).ConfigureAwait(false);
            return "published";
        }
        catch (AlreadyExistsException)
        {
            return "existed";
        }
        catch (KubeApiException e) when (NamespaceGone(e, ev.Metadata.Namespace ?? ""))
        {
            // nothing is left to be told about
            return "superseded";
        }
    }

    private async Task<string> RepeatEventAsync(CoreEvent ev, CancellationToken ct)
    {
        try
        {
            await new ApiEventSink(_events).UpdateRepeatAsync(ev, ct).ConfigureAwait(false);
            return "published";
        }
        catch (NotFoundException)
        {
            ev.Metadata.ResourceVersion = null;
            return await CreateEventAsync(ev, ct).ConfigureAwait(false);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(20201, LogLevel.Information, "API server back: publishing {Records} outbox record(s) after {Spread}")]
        public static partial void Back(ILogger logger, int records, TimeSpan spread);

        [LoggerMessage(20202, LogLevel.Warning, "Outbox record {Kind} at {Position} not published, retrying in {Wait}: {Reason}")]
        public static partial void Retry(ILogger logger, string kind, long position, TimeSpan wait, string reason);

        [LoggerMessage(20203, LogLevel.Error, "Outbox record {Kind} at {Position} can never be published as it is; it is dropped")]
        public static partial void Dropped(ILogger logger, Exception exception, string kind, long position);

        [LoggerMessage(20204, LogLevel.Warning, "ContainerCheckpoint {Namespace}/{Name} taken offline can never be published ({Reason}); its archive {CheckpointId} is deleted")]
        public static partial void Discarded(ILogger logger, string @namespace, string name, string checkpointId, string reason);

        [LoggerMessage(20209, LogLevel.Warning, "ContainerCheckpoint {Namespace}/{Name} taken offline can never be published ({Reason}); its archive {CheckpointId} is not in the store")]
        public static partial void DiscardedNoArchive(ILogger logger, string @namespace, string name, string checkpointId, string reason);

        [LoggerMessage(20210, LogLevel.Error, "Outbox publisher round failed; retrying in {Wait}")]
        public static partial void RoundFailed(ILogger logger, Exception exception, TimeSpan wait);

        [LoggerMessage(20211, LogLevel.Debug, "Outbox record at {Position} marks an offline run that has not ended; later records wait")]
        public static partial void WaitingForRun(ILogger logger, long position);

        [LoggerMessage(20205, LogLevel.Information, "ContainerCheckpoint {Namespace}/{Name} (archive {CheckpointId}) was deleted before its Content was published; skipped")]
        public static partial void CheckpointGone(ILogger logger, string @namespace, string name, string checkpointId);

        [LoggerMessage(20206, LogLevel.Warning, "Archive {CheckpointId} of ContainerCheckpoint {Namespace}/{Name} is no longer in the store; no Content is published for it")]
        public static partial void ArchiveGone(ILogger logger, string @namespace, string name, string checkpointId);

        [LoggerMessage(20207, LogLevel.Warning, "ContainerCheckpoint {Namespace}/{Name} has no Content to complete it with; its status is left to the node's reconciler")]
        public static partial void ContentMissing(ILogger logger, string @namespace, string name);

        [LoggerMessage(20208, LogLevel.Warning, "The image of offline checkpoint {CheckpointId} could not be published; its Content has none")]
        public static partial void ImageFailed(ILogger logger, Exception exception, string checkpointId);
    }
}

using System.Collections.Concurrent;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Queue;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Replication;

public sealed record CheckpointReplicatorOptions
{
    /// <summary>This node: only the Contents of its own store are pushed.</summary>
    public required string NodeName { get; init; }

    /// <summary>Wait before a failed push is tried again; it doubles with each failure of the same checkpoint.</summary>
    public TimeSpan RetryInitialDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest wait between two tries of the same checkpoint.</summary>
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromMinutes(10);
}

/// <summary>
/// Copies the checkpoints of schedules with <c>replicate: Registry</c> to the registry (node agent, every node, its own
/// store only), so that losing the node does not lose them. Reconciles <see cref="ContainerCheckpointContent"/>s: one of
/// this node, whose ContainerCheckpoint completed and is controlled by a schedule asking <c>Registry</c>, and which has
/// no Registry copy in this registry yet, has its checkpoint image pushed (<see cref="ICheckpointReplicaTarget"/>) and
/// the copy appended to its <c>status.copies</c> (a status write; a 409 reads it again and applies the copy once more,
/// never twice). Its own queue with one worker: a push never holds up a checkpoint nor another controller, and pushes
/// go one at a time. A failed push is tried again with a backoff that doubles per checkpoint
/// (<see cref="CheckpointReplicatorOptions.RetryInitialDelay"/> up to <see cref="CheckpointReplicatorOptions.RetryMaxDelay"/>),
/// with one Warning Event at its first failure. Level-triggered: after a restart the informers' first list brings every
/// Content of this node back, and those still lacking their copy are pushed. A Content deleted while its image was
/// pushed has that manifest deleted again.
/// </summary>
public sealed class CheckpointReplicator : IReconciler
{
    public const string ControllerName = "checkpoint-replicator";

    /// <summary>The Normal Event on the ContainerCheckpoint once its copy is recorded.</summary>
    public const string ReasonReplicated = "CheckpointReplicated";
    /// <summary>The Warning Event on the ContainerCheckpoint when its push first fails.</summary>
    public const string ReasonReplicationFailed = "ReplicationFailed";

    /// <summary>
    /// Sets the replicator up with <paramref name="manager"/> (node work, every instance): the Contents of
    /// <paramref name="options"/>' node, the ContainerCheckpoints (a checkpoint completing queues its Content) and the
    /// schedules (a schedule turning to <c>Registry</c> queues its checkpoints' Contents).
    /// </summary>
    public static ControllerSetup<CheckpointReplicator> SetUp(ControllerManager manager, ICheckpointStore store,
        ICheckpointReplicaTarget target, CheckpointReplicatorOptions options, ReplicationMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(options);
        var contents = manager.Informers.For(CrscResources.ContainerCheckpointContents);
        var checkpoints = manager.Informers.For(CrscResources.ContainerCheckpoints);
        var schedules = manager.Informers.For(CrscResources.CheckpointSchedules);
        var replicator = new CheckpointReplicator(manager.Kube, contents, checkpoints, schedules, store, target, manager.Events,
            options, manager.Time, manager.Loggers.CreateLogger<CheckpointReplicator>(), metrics);
        var controller = new Controller(ControllerName, replicator, manager.Time, manager.Loggers.CreateLogger<Controller>(),
            new ControllerOptions
            {
                Workers = 1,
                RateLimiter = _ => new ExponentialFailureRateLimiter<ObjectKey>(options.RetryInitialDelay, options.RetryMaxDelay),
            });
        var node = options.NodeName;
        controller.Watch(contents, c => c.Spec.Node == node ? [EnqueueHandlers.KeyOf(c)] : []);
        controller.Watch(checkpoints, c => ContentKeyOf(c, node) is { } key ? [key] : []);
        controller.Watch(schedules, s => s.Metadata.Uid is { Length: > 0 } uid
            ? checkpoints.ByIndex(Indexers.OwnerUid, uid).Select(c => ContentKeyOf(c, node)).OfType<ObjectKey>()
            : []);
        return new(manager.Add(controller, leaderOnly: false), replicator);
    }

    private readonly IKubeResourceClient<ContainerCheckpointContent> _contentsApi;
    private readonly Informer<ContainerCheckpointContent> _contents;
    private readonly Informer<ContainerCheckpoint> _checkpoints;
    private readonly Informer<CheckpointSchedule> _schedules;
    private readonly ICheckpointStore _store;
    private readonly ICheckpointReplicaTarget _target;
    private readonly IEventRecorder _events;
    private readonly CheckpointReplicatorOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ReplicationMetrics? _metrics;
    // failed pushes in a row, per Content (the first one is told as an Event)
    private readonly ConcurrentDictionary<string, int> _failures = new(StringComparer.Ordinal);

    /// <summary>
    /// Content name → the UID of the Content this agent recorded a registry copy on. A reconcile queued before that write
    /// reached the cache still sees the Content without its copy; without this it pushed the image a second time.
    /// </summary>
    private readonly ConcurrentDictionary<string, string> _replicated = new(StringComparer.Ordinal);

    public CheckpointReplicator(IKubeApi kube, Informer<ContainerCheckpointContent> contents, Informer<ContainerCheckpoint> checkpoints,
        Informer<CheckpointSchedule> schedules, ICheckpointStore store, ICheckpointReplicaTarget target, IEventRecorder events,
        CheckpointReplicatorOptions options, TimeProvider time, ILogger? logger = null, ReplicationMetrics? metrics = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.NodeName);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.RetryInitialDelay, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.RetryMaxDelay, options.RetryInitialDelay);
        _contentsApi = kube.Resource(CrscResources.ContainerCheckpointContents);
        _contents = contents;
        _checkpoints = checkpoints;
        _schedules = schedules;
        _store = store;
        _target = target;
        _events = events;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        _metrics = metrics;
        checkpoints.TryAddIndexer(Indexers.OwnerUid, Indexers.ByOwnerUid);
    }

    /// <summary>The Content of a completed checkpoint of <paramref name="node"/>, or null.</summary>
    private static ObjectKey? ContentKeyOf(ContainerCheckpoint c, string node) =>
        c.Status is { Phase: ContainerCheckpointPhase.Completed, ContentName.Length: > 0 } s && s.Node == node
            ? new ObjectKey(null, s.ContentName)
            : null;

    /// <summary>Whether <paramref name="content"/> lists a copy in <paramref name="target"/>'s registry.</summary>
    public static bool HasReplica(ContainerCheckpointContent content, ICheckpointReplicaTarget target) =>
        content.Status?.Copies?.Any(c => c.Kind == CheckpointCopyKind.Registry && target.Holds(c.ImageReference)) == true;

    public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var content = _contents.Get(key);
        if (content is null) _replicated.TryRemove(key.Name, out _);
        if (content is null || content.Metadata.DeletionTimestamp is not null || content.Spec.Node != _options.NodeName
            || HasReplica(content, _target)
            || (_replicated.TryGetValue(key.Name, out var replicatedUid) && replicatedUid == content.Metadata.Uid))
            return Forget(key);
        if (CheckpointOf(content) is not { } checkpoint || ScheduleOf(checkpoint)?.Spec.Replicate != CheckpointReplication.Registry)
            return Forget(key);
        var name = content.Metadata.Name!;
        if (ArchiveOf(content) is not { } archive)
        {
            Log.ArchiveMissing(_logger, name, content.Spec.Path);
            return Forget(key);
        }

        string reference;
        var started = _time.GetTimestamp();
        try
        {
            reference = await _target.PushAsync(archive, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            var failures = _failures.AddOrUpdate(name, 1, (_, n) => n + 1);
            _metrics?.Pushes.Inc(1, ReplicationMetrics.ResultFailed);
            Log.PushFailed(_logger, name, archive.Id, _target.Registry, failures, e.Message);
            if (failures == 1)
                _events.Warning(checkpoint, ReasonReplicationFailed,
                    $"pushing checkpoint {archive.Id} to registry {_target.Registry} failed (tried again with backoff): {e.Message}");
            return ReconcileResult.Requeue; // the rate limiter's backoff, doubling per Content
        }
        _metrics?.Pushes.Inc(1, ReplicationMetrics.ResultSucceeded);
        _metrics?.PushSeconds.Observe(_time.GetElapsedTime(started).TotalSeconds);

        var copy = new CheckpointCopy
        {
            Kind = CheckpointCopyKind.Registry,
            Node = _options.NodeName,
            ImageReference = reference,
            CopiedAt = KubeTime.Truncate(_time.GetUtcNow()),
        };
        var uid = content.Metadata.Uid;
        var recorded = false;
        var full = false;
        var written = await StatusWriter.UpdateStatusAsync(_contentsApi, content, c =>
        {
            if (c.Metadata.Uid != uid || c.Metadata.DeletionTimestamp is not null) return false;
            // after a 409: the object as it is now may list the copy already (never twice)
            if (c.Status?.Copies?.Any(x => x.Kind == CheckpointCopyKind.Registry && x.ImageReference == reference) == true)
            {
                recorded = true;
                return false;
            }
            if (c.Status?.Copies?.Count >= ContainerCheckpointContentStatus.MaxCopies)
            {
                full = true;
                return false;
            }
            c.Status ??= new ContainerCheckpointContentStatus();
            (c.Status.Copies ??= []).Add(copy);
            return true;
        }, ct).ConfigureAwait(false);
        _failures.TryRemove(name, out _);
        if (written is not null || recorded)
        {
            if (uid is not null) _replicated[name] = uid;
            Log.Replicated(_logger, name, archive.Id, reference);
            if (written is not null)
                _events.Normal(checkpoint, ReasonReplicated, $"checkpoint {archive.Id} copied to registry {_target.Registry} as {reference}");
            return ReconcileResult.Done;
        }
        if (full)
        {
            Log.CopiesFull(_logger, name, ContainerCheckpointContentStatus.MaxCopies, reference);
            return ReconcileResult.Done;
        }
        // the Content went (or is going) while its image was pushed: nobody will delete what was just pushed but us
        Log.ContentGoneAfterPush(_logger, name, reference);
        try
        {
            await _target.DeleteAsync(reference, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            Log.OrphanNotDeleted(_logger, reference, e.Message);
        }
        return ReconcileResult.Done;
    }

    private ReconcileResult Forget(ObjectKey key)
    {
        _failures.TryRemove(key.Name, out _);
        return ReconcileResult.Done;
    }

    /// <summary>The completed, not deleted ContainerCheckpoint the Content belongs to.</summary>
    private ContainerCheckpoint? CheckpointOf(ContainerCheckpointContent content)
    {
        var r = content.Spec.CheckpointRef;
        if (string.IsNullOrEmpty(r.Namespace) || string.IsNullOrEmpty(r.Name)) return null;
        var c = _checkpoints.Get(new ObjectKey(r.Namespace, r.Name));
        if (c is null || (r.Uid is { Length: > 0 } && c.Metadata.Uid != r.Uid) || c.Metadata.DeletionTimestamp is not null) return null;
        return c.Status?.Phase == ContainerCheckpointPhase.Completed ? c : null;
    }

    /// <summary>The schedule that controls <paramref name="checkpoint"/>, when it is a scheduled one.</summary>
    private CheckpointSchedule? ScheduleOf(ContainerCheckpoint checkpoint)
    {
        var owner = checkpoint.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true && o.Kind == CheckpointSchedule.KindName);
        if (owner is null) return null;
        var schedule = _schedules.Get(new ObjectKey(checkpoint.Metadata.Namespace, owner.Name));
        return schedule?.Metadata.Uid == owner.Uid ? schedule : null;
    }

    /// <summary>The Content's archive in this node's store (by its id, else by its path), when its digest is the Content's.</summary>
    private CheckpointInfo? ArchiveOf(ContainerCheckpointContent content)
    {
        var info = content.Metadata.Annotations?.GetValueOrDefault(Annotations.ArchiveId) is { Length: > 0 } id
            ? _store.Get(id)
            : _store.List(new CheckpointFilter(content.Spec.Source.Namespace)).FirstOrDefault(c => c.ArchivePath == content.Spec.Path);
        return info is not null && info.Digest == content.Spec.Digest ? info : null;
    }
}

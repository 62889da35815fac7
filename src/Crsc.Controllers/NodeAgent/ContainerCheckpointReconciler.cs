using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Replication;

namespace Crsc.Controllers.NodeAgent;

public sealed record ContainerCheckpointReconcilerOptions
{
    /// <summary>This node: only checkpoints of pods running here (or already executed here) are reconciled.</summary>
    public required string NodeName { get; init; }
}

/// <summary>
/// Executes the <see cref="ContainerCheckpoint"/> objects of pods on this node (run by every node agent, not
/// leader-only). Phases: ""/Pending → <c>Running</c> (a resourceVersion-checked status write: a 409 means someone
/// else moved first, so nobody executes an object twice) → checkpoint through <see cref="ICheckpointRunner"/> →
/// a <see cref="ContainerCheckpointContent"/> named after the object's UID (a retry finds it instead of making a
/// second) → <c>Completed</c>; or <c>Failed</c> with the runtime's message and CRIU log, and a Warning Event.
/// The archive's manifest records the object (namespace, name, UID) as its owner, so an object left <c>Running</c> —
/// by an earlier daemon, or by a status write that failed — is finished from the archive the store says it owns
/// (<see cref="ICheckpointStore.FindByOwner"/>), else failed ("interrupted by daemon restart"); it is never
/// checkpointed again. Content and status are written by the <see cref="CheckpointRecorder"/> the outbox uses too. <c>deletionPolicy: Delete</c> puts the
/// <see cref="Finalizers.Archive"/> on the object before it runs; deleting the object then deletes the archive, its
/// copies in the registry (<see cref="ReplicaRemover"/>) and the Content.
/// </summary>
public sealed class ContainerCheckpointReconciler : IReconciler
{
    public const string ControllerName = "containercheckpoint-node";

    /// <summary>
    /// Sets the node agent's checkpoint controller up with <paramref name="manager"/> (node work, every instance):
    /// ContainerCheckpoints of every namespace and the pods of <paramref name="nodeName"/>.
    /// </summary>
    /// <param name="workers">keys reconciled at once; default the runner's concurrency plus two, so deletions and
    /// status work never wait behind a long checkpoint</param>
    /// <param name="replicas">deletes the registry copies of a deleted checkpoint (<c>replicate: Registry</c>); null: none</param>
    public static ControllerSetup<ContainerCheckpointReconciler> SetUp(ControllerManager manager, string nodeName,
        ICheckpointRunner runner, ICheckpointStore store, CheckpointMetrics? metrics = null,
        ICheckpointImagePublisher? imagePublisher = null, int? workers = null, ReplicaRemover? replicas = null)
    {
        ArgumentNullException.ThrowIfNull(manager);
        var pods = manager.Informers.PodsOnNode(nodeName);
        var checkpoints = manager.Informers.For(CrscResources.ContainerCheckpoints);
        var reconciler = new ContainerCheckpointReconciler(manager.Kube, pods, checkpoints, runner, store, manager.Events,
            new ContainerCheckpointReconcilerOptions { NodeName = nodeName }, manager.Time,
            manager.Loggers.CreateLogger<ContainerCheckpointReconciler>(), metrics, imagePublisher, replicas);
        var concurrency = (runner as CheckpointRunner)?.Options.MaxConcurrent ?? 1;
        var controller = manager.NewController(ControllerName, reconciler, workers ?? concurrency + 2);
        controller.Watch(checkpoints);
        controller.Watch(pods, pod => CheckpointsOfPod(checkpoints, pod));
        return new(manager.Add(controller, leaderOnly: false), reconciler);
    }

    /// <summary>The index of the checkpoint informer by <c>&lt;namespace&gt;/&lt;spec.podName&gt;</c> (internal, not API).</summary>
    private const string ByPodIndex = "crsc.io/by-pod";

    private readonly IKubeResourceClient<ContainerCheckpoint> _checkpointsApi;
    private readonly IKubeResourceClient<ContainerCheckpointContent> _contentsApi;
    private readonly Informer<Pod> _pods;
    private readonly Informer<ContainerCheckpoint> _checkpoints;
    private readonly ICheckpointRunner _runner;
    private readonly ICheckpointStore _store;
    private readonly IEventRecorder _events;
    private readonly ContainerCheckpointReconcilerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CheckpointMetrics? _metrics;
    private readonly ICheckpointImagePublisher? _images;
    private readonly CheckpointRecorder _recorder;
    private readonly ReplicaRemover? _replicas;

    public ContainerCheckpointReconciler(
        IKubeApi kube,
        Informer<Pod> pods,
        Informer<ContainerCheckpoint> checkpoints,
        ICheckpointRunner runner,
        ICheckpointStore store,
        IEventRecorder events,
        ContainerCheckpointReconcilerOptions options,
        TimeProvider time,
        ILogger? logger = null,
        CheckpointMetrics? metrics = null,
        ICheckpointImagePublisher? imagePublisher = null,
        ReplicaRemover? replicas = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.NodeName);
        _checkpointsApi = kube.Resource(CrscResources.ContainerCheckpoints);
        _contentsApi = kube.Resource(CrscResources.ContainerCheckpointContents);
        _pods = pods;
        _checkpoints = checkpoints;
        _runner = runner;
        _store = store;
        _events = events;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        _metrics = metrics;
        _images = imagePublisher;
        _replicas = replicas;
        _recorder = new CheckpointRecorder(kube);
        try
        {
            checkpoints.AddIndexer(ByPodIndex, c => [$"{c.Metadata.Namespace}/{c.Spec.PodName}"]);
        }
        catch (InvalidOperationException)
        {
            // a second reconciler on the same informer (tests): the index is there already
        }
    }

    /// <summary>The deterministic name of the Content of the checkpoint with <paramref name="uid"/>.</summary>
    public static string ContentNameFor(string uid) => "ckpt-" + uid.ToLowerInvariant();

    /// <summary>The checkpoints that name <paramref name="pod"/> (for watching pods: a pod arriving on the node starts them).</summary>
    public static IEnumerable<ObjectKey> CheckpointsOfPod(Informer<ContainerCheckpoint> checkpoints, Pod pod)
        => checkpoints.ByIndex(ByPodIndex, $"{pod.Metadata.Namespace}/{pod.Metadata.Name}")
            .Select(c => EnqueueHandlers.KeyOf(c));

    public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var ckpt = _checkpoints.Get(key);
        if (ckpt is null) return ReconcileResult.Done;
        var status = ckpt.Status;
        var deleting = ckpt.Metadata.DeletionTimestamp is not null;

        if (deleting && HasFinalizer(ckpt) && string.IsNullOrEmpty(status?.Node))
        {
            // never claimed by any node: there is no archive anywhere, whoever sees it may let it go
            await RemoveFinalizerAsync(ckpt, ct).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        var pod = _pods.Get(new ObjectKey(ckpt.Metadata.Namespace, ckpt.Spec.PodName));
        var podHere = pod is not null && (string.IsNullOrEmpty(pod.Spec.NodeName) || pod.Spec.NodeName == _options.NodeName);
        var mine = string.IsNullOrEmpty(status?.Node) ? podHere : status.Node == _options.NodeName;
        if (!mine) return ReconcileResult.Done;

        if (deleting) return await FinalizeAsync(ckpt, ct).ConfigureAwait(false);
        return status?.Phase switch
        {
            ContainerCheckpointPhase.Completed or ContainerCheckpointPhase.Failed => ReconcileResult.Done,
            ContainerCheckpointPhase.Running => await ResumeAsync(ckpt, ct).ConfigureAwait(false),
            _ when ckpt.Metadata.Annotations?.GetValueOrDefault(Annotations.ArchiveId) is { Length: > 0 } archiveId =>
                await CompleteFromArchiveAsync(ckpt, archiveId, ct).ConfigureAwait(false),
            _ => podHere ? await ExecuteAsync(ckpt, pod!, ct).ConfigureAwait(false) : ReconcileResult.Done,
        };
    }

    private async Task<ReconcileResult> ExecuteAsync(ContainerCheckpoint cached, Pod pod, CancellationToken ct)
    {
        var ns = cached.Metadata.Namespace!;
        var name = cached.Metadata.Name!;
        var errors = cached.Spec.Validate();
        if (errors.Count > 0)
        {
            await FailAsync(cached, "InvalidSpec", "invalid spec: " + string.Join("; ", errors.Select(e => e.ToString())), null, ct)
                .ConfigureAwait(false);
            return ReconcileResult.Done;
        }
        if (!pod.Spec.Containers.Any(c => c.Name == cached.Spec.Container))
        {
            await FailAsync(cached, "ContainerNotFound",
                $"pod {ns}/{pod.Metadata.Name} has no container '{cached.Spec.Container}'; it has: {string.Join(", ", pod.Spec.Containers.Select(c => c.Name))}",
                null, ct).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        var current = StatusWriter.DeepCopy(_checkpointsApi.Type, cached);
        try
        {
            if (current.Spec.DeletionPolicy == DeletionPolicy.Delete && !HasFinalizer(current))
            {
                current.Metadata.Finalizers = [.. current.Metadata.Finalizers ?? [], Finalizers.Archive];
                current = await _checkpointsApi.UpdateAsync(current, ct).ConfigureAwait(false);
            }
            // the claim: a stale resourceVersion (another daemon, or our own cache behind our last write) is a 409
            var now = _time.GetUtcNow();
            current.Status ??= new ContainerCheckpointStatus();
            current.Status.Phase = ContainerCheckpointPhase.Running;
            current.Status.Node = _options.NodeName;
            current.Status.PodUid = pod.Metadata.Uid;
            current.Status.StartedAt = Crsc.Api.Kubernetes.KubeTime.Truncate(now);
            current.Status.Message = $"checkpointing container {current.Spec.Container} on node {_options.NodeName}";
            current.Status.ObservedGeneration = current.Metadata.Generation;
            current.Status.SetCondition(ConditionTypes.Progressing, ConditionStatus.True, "Running", current.Status.Message,
                current.Metadata.Generation, now);
            current = await _checkpointsApi.UpdateStatusAsync(current, ct).ConfigureAwait(false);
        }
        catch (ConflictException)
        {
            Log.ClaimConflict(_logger, ns, name);
            return ReconcileResult.Requeue;
        }
        catch (NotFoundException)
        {
            return ReconcileResult.Done;
        }
        Log.Claimed(_logger, ns, name, _options.NodeName);

        CheckpointOutcome outcome;
        try
        {
            outcome = await _runner.CheckpointAsync(
                new CheckpointRequest(ns, current.Spec.PodName, current.Spec.Container)
                {
                    // recorded in the archive's manifest: a retry or a restarted daemon finds the archive by it
                    Owner = new CheckpointOwner(ns, name, current.Metadata.Uid, CheckpointOrigin.Online),
                },
                progress: null, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the daemon is stopping: the object stays Running and the next start decides (archive or interrupted)
            throw;
        }
        catch (Exception e)
        {
            var (reason, criuLog) = e switch
            {
                CheckpointFailedException f => (f.Kind == ContainerRuntimeErrorKind.DeadlineExceeded ? "Timeout" : "RuntimeFailed", f.CriuLog),
                ContainerResolutionException => ("ContainerNotFound", null),
                ContainerRuntimeException r => (r.Kind == ContainerRuntimeErrorKind.DeadlineExceeded ? "Timeout" : "RuntimeFailed", null),
                ArchiveRejectedException => ("ArchiveRejected", null),
                CheckpointStoreException => ("StoreFailed", null),
                _ => ("Failed", (string?)null),
            };
            await FailAsync(current, reason, e.Message, criuLog, ct).ConfigureAwait(false);
            return ReconcileResult.Done;
        }
        await CompleteAsync(current, outcome.Checkpoint, outcome.Node, ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    /// <summary>
    /// A checkpoint taken while the API server was away, published by a node's outbox: it is finished from its
    /// archive when this node's store has it; otherwise it is left to the outbox of the node that took it. The
    /// container is never checkpointed again.
    /// </summary>
    private async Task<ReconcileResult> CompleteFromArchiveAsync(ContainerCheckpoint ckpt, string archiveId, CancellationToken ct)
    {
        if (_store.Get(archiveId) is not { } info)
        {
            Log.OfflineArchiveElsewhere(_logger, ckpt.Metadata.Namespace!, ckpt.Metadata.Name!, archiveId);
            return ReconcileResult.Done;
        }
        var current = ckpt;
        if (current.Spec.DeletionPolicy == DeletionPolicy.Delete && !HasFinalizer(current))
        {
            var uid = current.Metadata.Uid;
            var added = await StatusWriter.UpdateAsync(_checkpointsApi, current, c =>
            {
                // after a 409: only while it is the same object, still unfinished and still without the finalizer
                if (c.Metadata.Uid != uid || HasFinalizer(c) || c.Status?.Phase is ContainerCheckpointPhase.Completed or ContainerCheckpointPhase.Failed)
                    return false;
                c.Metadata.Finalizers = [.. c.Metadata.Finalizers ?? [], Finalizers.Archive];
                return true;
            }, ct).ConfigureAwait(false);
            // null: gone, or changed by someone else meanwhile (whose write queues it again)
            if (added is null) return ReconcileResult.Done;
            current = added;
        }
        Log.CompletedFromArchive(_logger, ckpt.Metadata.Namespace!, ckpt.Metadata.Name!, archiveId);
        await CompleteAsync(current, info, info.NodeName ?? _options.NodeName, ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    /// <summary>A <c>Running</c> object of this node that no reconcile of this process is executing.</summary>
    private async Task<ReconcileResult> ResumeAsync(ContainerCheckpoint ckpt, CancellationToken ct)
    {
        var ns = ckpt.Metadata.Namespace!;
        var name = ckpt.Metadata.Name!;
        var uid = ckpt.Metadata.Uid ?? "";
        var content = await GetContentAsync(uid, ct).ConfigureAwait(false);
        if (content is not null)
        {
            await WriteCompletedAsync(ckpt, content, ct).ConfigureAwait(false);
            return ReconcileResult.Done;
        }
        // the archive this object owns: stored by this process before a status write failed, or by an earlier daemon
        // that stopped before it could record it (the oldest, should there ever be two)
        if (_store.FindByOwner(ns, name, uid).LastOrDefault() is { } owned)
        {
            Log.Recovered(_logger, ns, name, owned.Id);
            await CompleteAsync(ckpt, owned, _options.NodeName, ct).ConfigureAwait(false);
            return ReconcileResult.Done;
        }
        Log.Interrupted(_logger, ns, name);
        await FailAsync(ckpt, "Interrupted",
            $"interrupted by daemon restart on node {_options.NodeName}: the checkpoint was running when the daemon stopped and no archive of it was stored; create a new ContainerCheckpoint to try again",
            null, ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    private async Task CompleteAsync(ContainerCheckpoint ckpt, CheckpointInfo info, string node, CancellationToken ct)
    {
        var content = await EnsureContentAsync(ckpt, info, node, ct).ConfigureAwait(false);
        await WriteCompletedAsync(ckpt, content, ct).ConfigureAwait(false);
    }

    private async Task WriteCompletedAsync(ContainerCheckpoint ckpt, ContainerCheckpointContent content, CancellationToken ct)
    {
        var ns = ckpt.Metadata.Namespace!;
        var name = ckpt.Metadata.Name!;
        var contentName = content.Metadata.Name!;
        var message = $"checkpoint of container {ckpt.Spec.Container} stored on node {content.Spec.Node} ({content.Spec.SizeBytes} bytes)";
        var written = await UpdateStatusAsync(ckpt, (s, now, generation) => CheckpointRecorder.MarkCompleted(s, content, message,
            s.PodUid ?? content.Spec.Source.PodUid, s.StartedAt ?? now, now, generation, now), ct).ConfigureAwait(false);
        if (written is null) return;
        Log.Completed(_logger, ns, name, contentName, content.Spec.SizeBytes, content.Spec.Digest);
        _events.Normal(written, "CheckpointCompleted", $"{message}, {content.Spec.Digest}, content {contentName}");
    }

    private async Task FailAsync(ContainerCheckpoint ckpt, string reason, string message, string? criuLog, CancellationToken ct)
    {
        var written = await UpdateStatusAsync(ckpt, (s, now, generation) =>
        {
            s.Phase = ContainerCheckpointPhase.Failed;
            s.Message = message;
            s.CriuLog = criuLog is null ? null : ContainerCheckpointStatus.CriuLogExcerpt(criuLog);
            s.CompletedAt = Crsc.Api.Kubernetes.KubeTime.Truncate(now);
            s.ObservedGeneration = generation;
            s.SetCondition(ConditionTypes.Progressing, ConditionStatus.False, reason, message, generation, now);
            s.SetCondition(ConditionTypes.Ready, ConditionStatus.False, reason, message, generation, now);
        }, ct).ConfigureAwait(false);
        if (written is null) return;
        Log.FailedCheckpoint(_logger, ckpt.Metadata.Namespace!, ckpt.Metadata.Name!, message);
        _events.Warning(written, "CheckpointFailed", message);
    }

    /// <summary>
    /// Writes the status through <see cref="StatusWriter"/>: on a 409 the change is applied to the object read again,
    /// while it is the same object and not finished by someone else. Null: nothing written (gone, replaced, or finished
    /// already).
    /// </summary>
    private Task<ContainerCheckpoint?> UpdateStatusAsync(ContainerCheckpoint ckpt,
        Action<ContainerCheckpointStatus, DateTimeOffset, long?> change, CancellationToken ct)
    {
        var uid = ckpt.Metadata.Uid;
        return StatusWriter.UpdateStatusAsync(_checkpointsApi, ckpt, current =>
        {
            if (current.Metadata.Uid != uid) return false;
            if (current.Status?.Phase is ContainerCheckpointPhase.Completed or ContainerCheckpointPhase.Failed) return false;
            change(current.Status ??= new ContainerCheckpointStatus(), _time.GetUtcNow(), current.Metadata.Generation);
            return true;
        }, ct);
    }

    private async Task<ContainerCheckpointContent> EnsureContentAsync(ContainerCheckpoint ckpt, CheckpointInfo info, string node,
        CancellationToken ct)
    {
        var imageReference = await PublishImageAsync(ckpt, info, ct).ConfigureAwait(false);
        return (await _recorder.EnsureContentAsync(ckpt, info, node, imageReference, ct).ConfigureAwait(false)).Content;
    }

    /// <summary>
    /// The checkpoint image's reference (null when images are off). A failure here does not fail the checkpoint: the
    /// archive is stored and usable; the Content just has no image, and a Warning Event says why.
    /// </summary>
    private async Task<string?> PublishImageAsync(ContainerCheckpoint ckpt, CheckpointInfo info, CancellationToken ct)
    {
        if (_images is null) return null;
        try
        {
            return await _images.PublishAsync(info, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            Log.ImagePublishFailed(_logger, e, ckpt.Metadata.Namespace!, ckpt.Metadata.Name!, info.Id);
            _events.Warning(ckpt, "ImagePublishFailed", $"checkpoint {info.Id} is stored but has no image: {e.Message}");
            return null;
        }
    }

    private async Task<ContainerCheckpointContent?> GetContentAsync(string uid, CancellationToken ct)
    {
        try
        {
            var content = await _contentsApi.GetAsync(null, ContentNameFor(uid), ct).ConfigureAwait(false);
            return content.Spec.CheckpointRef.Uid == uid ? content : null;
        }
        catch (NotFoundException)
        {
            return null;
        }
    }

    private async Task<ReconcileResult> FinalizeAsync(ContainerCheckpoint ckpt, CancellationToken ct)
    {
        if (!HasFinalizer(ckpt)) return ReconcileResult.Done;
        var uid = ckpt.Metadata.Uid ?? "";
        var content = await GetContentAsync(uid, ct).ConfigureAwait(false);
        if (content is not null && content.Spec.DeletionPolicy == DeletionPolicy.Delete)
        {
            var id = content.Metadata.Annotations?.GetValueOrDefault(Annotations.ArchiveId)
                ?? _store.List(new CheckpointFilter(content.Spec.Source.Namespace)).FirstOrDefault(c => c.ArchivePath == content.Spec.Path)?.Id;
            // its copies in the registry first: once the Content is gone nothing names them any more
            if (_replicas is not null) await _replicas.RemoveAsync(ckpt, content, ct).ConfigureAwait(false);
            if (id is not null) _store.Delete(id);
            try
            {
                await _contentsApi.DeleteAsync(null, content.Metadata.Name!, new DeleteOptions(PreconditionUid: content.Metadata.Uid), ct)
                    .ConfigureAwait(false);
            }
            catch (NotFoundException)
            {
            }
            _metrics?.UpdateStoreBytes(_store);
            Log.ArchiveDeleted(_logger, ckpt.Metadata.Namespace!, ckpt.Metadata.Name!, id ?? "(none)", content.Metadata.Name!);
        }
        await RemoveFinalizerAsync(ckpt, ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    /// <summary>Lets go of the archive finalizer; after a 409 only while the object read again is the same one.</summary>
    private async Task RemoveFinalizerAsync(ContainerCheckpoint ckpt, CancellationToken ct)
    {
        var uid = ckpt.Metadata.Uid;
        await StatusWriter.UpdateAsync(_checkpointsApi, ckpt, current =>
        {
            if (current.Metadata.Uid != uid || !HasFinalizer(current)) return false;
            current.Metadata.Finalizers!.RemoveAll(f => f == Finalizers.Archive);
            if (current.Metadata.Finalizers is { Count: 0 }) current.Metadata.Finalizers = null;
            return true;
        }, ct).ConfigureAwait(false);
    }

    private static bool HasFinalizer(ContainerCheckpoint ckpt) => ckpt.Metadata.Finalizers?.Contains(Finalizers.Archive) == true;
}

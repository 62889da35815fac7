using System.Collections.Concurrent;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Restores;
using Crsc.Controllers.Schedules;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Workloads;

public sealed record NodeAwayRestoreOptions
{
    /// <summary>A pod created this long after a node-away checkpoint, or later, is not restored from it (its memory is too old).</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary><c>spec.fallback</c> of the Restores it creates.</summary>
    public RestoreFallback Fallback { get; init; } = RestoreFallback.ColdStart;

    /// <summary><c>spec.maxAttempts</c> of the Restores it creates.</summary>
    public int MaxAttempts { get; init; } = RestoreSpec.DefaultMaxAttempts;
}

/// <summary>
/// Brings a drained or shut-down node's pods back with their memory (leader-only). Keys are managed Deployments. For
/// each container, the newest Completed ContainerCheckpoint of the workload with <c>crsc.io/checkpoint-reason</c>
/// <c>NodeDrain</c> or <c>NodeShutdown</c> (published by the node agent, <see cref="Autonomy.NodeAwayPublication"/>) that no
/// Restore names yet is restored into the workload's next pod: a pod scheduled to a node, created after the checkpoint
/// was taken and within <see cref="NodeAwayRestoreOptions.Window"/> of it, that is not the checkpointed pod and not
/// restored already (after a shutdown, also the checkpointed pod itself when its node came back and started its container
/// again). One Restore per checkpoint (<c>spec.checkpointName</c> set, its name derived from the checkpoint's),
/// which the <see cref="RestoreReconciler"/> carries out. When the pod runs on another node than the checkpoint's, the
/// pod is annotated <c>crsc.io/restore-from</c> with the checkpoint instead: its node's agent fetches the archive (from
/// a registry copy, or the node that took it, which serves it while it drains) into its own store and makes the Restore
/// (<see cref="RestoreFromReconciler"/>); its <c>crsc.io/RestoreFrom</c> condition says when it cannot.
/// </summary>
public sealed partial class NodeAwayRestoreReconciler : IReconciler
{
    public const string ControllerName = "node-away-restore";
    public const string RestoreCreatedReason = "NodeAwayRestoreCreated";

    private readonly IKubeResourceClient<Restore> _restoresApi;
    private readonly IKubeResourceClient<Pod> _podsApi;
    private readonly Informer<Pod> _pods;
    private readonly Informer<Deployment> _deployments;
    private readonly Informer<ContainerCheckpoint> _checkpoints;
    private readonly Informer<Restore> _restores;
    private readonly IEventRecorder _events;
    private readonly NodeAwayRestoreOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    /// <summary>Restores created here (namespace/name), until the cache shows them.</summary>
    private readonly ConcurrentDictionary<string, string> _created = new(StringComparer.Ordinal);

    public static ControllerSetup<NodeAwayRestoreReconciler> SetUp(ControllerManager manager, NodeAwayRestoreOptions? options = null, int workers = 1)
    {
        ArgumentNullException.ThrowIfNull(manager);
        var pods = manager.Informers.For(Resources.Pods);
        var deployments = manager.Informers.For(Resources.Deployments);
        var checkpoints = manager.Informers.For(CrscResources.ContainerCheckpoints);
        var restores = manager.Informers.For(CrscResources.Restores);
        var reconciler = new NodeAwayRestoreReconciler(manager.Kube, pods, deployments, checkpoints, restores, manager.Events,
            options ?? new NodeAwayRestoreOptions(), manager.Time, manager.Loggers.CreateLogger<NodeAwayRestoreReconciler>());
        var controller = manager.NewController(ControllerName, reconciler, workers);
        controller.Watch(deployments);
        controller.Watch(pods, p => PodFailureReconciler.DeploymentOf(p) is { } k ? [k] : []);
        controller.Watch(checkpoints, c => WorkloadOf(c) is { } k ? [k] : []);
        controller.Watch(restores, r => PodFailureReconciler.TargetOf(r) is { } k ? [k] : []);
        return new(manager.Add(controller, leaderOnly: true), reconciler);
    }

    public NodeAwayRestoreReconciler(IKubeApi kube, Informer<Pod> pods, Informer<Deployment> deployments,
        Informer<ContainerCheckpoint> checkpoints, Informer<Restore> restores, IEventRecorder events, NodeAwayRestoreOptions options,
        TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.Window, TimeSpan.Zero, nameof(options.Window));
        _restoresApi = kube.Resource(CrscResources.Restores);
        _podsApi = kube.Resource(Resources.Pods);
        _pods = pods;
        _deployments = deployments;
        _checkpoints = checkpoints;
        _restores = restores;
        _events = events;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        ReplacementRestores.Index(pods, checkpoints, restores);
    }

    /// <summary>The reason of a node-away checkpoint (<c>crsc.io/checkpoint-reason</c>); null for any other.</summary>
    public static string? NodeAwayReason(ContainerCheckpoint c) =>
        c.Metadata.Annotations?.GetValueOrDefault(Annotations.CheckpointReason) is CheckpointReasons.NodeDrain or CheckpointReasons.NodeShutdown
            ? c.Metadata.Annotations[Annotations.CheckpointReason]
            : null;

    /// <summary>The Restore of a node-away checkpoint: its name plus <c>-restore</c>, shortened with a hash to fit 253.</summary>
    public static string RestoreName(string checkpointName)
    {
        const string tail = "-restore";
        if (checkpointName.Length + tail.Length <= ScheduleNames.MaxNameLength) return checkpointName + tail;
        var hash = "-" + ScheduleNames.ShortHash(checkpointName)[..8];
        return checkpointName[..(ScheduleNames.MaxNameLength - tail.Length - hash.Length)].TrimEnd('-', '.') + hash + tail;
    }

    private static ObjectKey? WorkloadOf(ContainerCheckpoint c) =>
        NodeAwayReason(c) is not null && c.Metadata.Labels?.GetValueOrDefault(Labels.Workload) is { Length: > 0 } w
            ? new ObjectKey(c.Metadata.Namespace, w)
            : null;

    public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var deployment = _deployments.Get(key);
        if (deployment is null || deployment.Metadata.DeletionTimestamp is not null || !ManagedWorkload.Read(deployment).Managed)
            return ReconcileResult.Done;
        var ns = key.Namespace ?? "default";
        var now = _time.GetUtcNow();
        var newest = ReplacementRestores.Completed(_checkpoints, ns, key.Name)
            .Where(c => NodeAwayReason(c) is not null)
            .GroupBy(c => c.Spec.Container, StringComparer.Ordinal)
            .Select(g => ReplacementRestores.NewestFirst(g).First());
        var pods = ReplacementRestores.PodsOf(_pods, ns, key.Name);
        DateTimeOffset? recheck = null;
        foreach (var ckpt in newest.OrderBy(c => c.Metadata.Name, StringComparer.Ordinal))
        {
            var name = ckpt.Metadata.Name!;
            var takenAt = ReplacementRestores.TakenAt(ckpt)!.Value;
            if (now - takenAt > _options.Window) continue; // too old to bring back
            if (ReplacementRestores.Used(_restores, _pods, ns, name)) continue;
            var restoreName = RestoreName(name);
            if (_created.ContainsKey($"{ns}/{restoreName}")) continue;
            var pod = pods
                .Where(p => IsNextPod(p, ckpt, takenAt))
                .OrderBy(p => p.Metadata.CreationTimestamp)
                .ThenBy(p => p.Metadata.Name, StringComparer.Ordinal)
                .FirstOrDefault();
            if (pod is null)
            {
                // no pod yet: a new pod enqueues the workload; the end of the window is looked at again (nothing to do then)
                var end = takenAt + _options.Window;
                if (recheck is null || end < recheck) recheck = end;
                continue;
            }
            await CreateRestoreAsync(deployment, ckpt, pod, restoreName, ct).ConfigureAwait(false);
        }
        return recheck is { } at ? ReconcileResult.RequeueAfter(at - now > TimeSpan.FromSeconds(1) ? at - now : TimeSpan.FromSeconds(1)) : ReconcileResult.Done;
    }

    /// <summary>
    /// A pod the checkpoint is restored into: alive and scheduled, created after the checkpoint was taken and within the
    /// window, not the checkpointed pod, running the container, and not restored (or being restored) already. After a
    /// shutdown, the checkpointed pod itself when it came back with its node (a reboot shorter than the pod's eviction):
    /// its container started again after the checkpoint completed, within the window.
    /// </summary>
    private bool IsNextPod(Pod p, ContainerCheckpoint ckpt, DateTimeOffset takenAt)
    {
        if (p.Metadata.DeletionTimestamp is not null || p.Status?.Phase is "Succeeded" or "Failed") return false;
        if (string.IsNullOrEmpty(p.Spec.NodeName) || RestorePods.ContainerOf(p, ckpt.Spec.Container) is null) return false;
        DateTimeOffset since;
        if (p.Metadata.Name == ckpt.Spec.PodName)
        {
            if (NodeAwayReason(ckpt) != CheckpointReasons.NodeShutdown
                || RestorePods.StatusOf(p, ckpt.Spec.Container)?.State?.Running?.StartedAt is not { } started
                || started <= (ckpt.Status?.CompletedAt ?? takenAt))
                return false;
            since = started;
        }
        else if (p.Metadata.CreationTimestamp is { } created && created >= takenAt) since = created;
        else return false;
        return since - takenAt <= _options.Window && !ReplacementRestores.RestoredOrAsked(p);
    }

    private async Task CreateRestoreAsync(Deployment deployment, ContainerCheckpoint ckpt, Pod pod, string name, CancellationToken ct)
    {
        var ns = deployment.Metadata.Namespace!;
        var reason = NodeAwayReason(ckpt)!;
        if (ckpt.Status?.Node is { Length: > 0 } from && from != pod.Spec.NodeName)
        {
            await AskNodeAsync(deployment, ckpt, pod, name, from, reason, ct).ConfigureAwait(false);
            return;
        }
        var restore = PodFailureReconciler.NewRestore(deployment, name, ckpt.Spec.Container, new()
        {
            [Annotations.CheckpointReason] = reason,
            // the pod the Restore restores (the Restore reconciler takes it when it runs)
            [Annotations.FailedPod] = pod.Metadata.Name!,
            [Annotations.FailedAt] = KubeTime.FormatTime(pod.Metadata.CreationTimestamp ?? _time.GetUtcNow()),
        }, _options.Fallback, _options.MaxAttempts, checkpointName: ckpt.Metadata.Name);
        try
        {
            await _restoresApi.CreateAsync(restore, ct).ConfigureAwait(false);
        }
        catch (AlreadyExistsException)
        {
            Log.RestoreExists(_logger, ns, name);
            _created[$"{ns}/{name}"] = name;
            return;
        }
        _created[$"{ns}/{name}"] = name;
        Log.RestoreCreated(_logger, ns, name, ckpt.Metadata.Name!, reason, pod.Metadata.Name!, pod.Spec.NodeName ?? "");
        _events.Normal(deployment, RestoreCreatedReason,
            $"pod {pod.Metadata.Name} replaces pod {ckpt.Spec.PodName} of a node that went away ({reason}); created Restore {name} from checkpoint {ckpt.Metadata.Name}");
    }

    /// <summary>
    /// The pod runs on another node than the checkpoint's: that node's agent fetches the archive and restores it, asked
    /// through the pod's <c>crsc.io/restore-from</c> (<see cref="RestoreFromRequest"/>). Remembered under the Restore's
    /// name until the cache shows the annotation, so that a second pass does not pick another pod.
    /// </summary>
    private async Task AskNodeAsync(Deployment deployment, ContainerCheckpoint ckpt, Pod pod, string restoreName, string from, string reason,
        CancellationToken ct)
    {
        var ns = deployment.Metadata.Namespace!;
        if (!await RestoreFromRequest.AskAsync(_podsApi, pod, ckpt.Metadata.Name!, ct).ConfigureAwait(false)) return;
        _created[$"{ns}/{restoreName}"] = restoreName;
        Log.RestoreAsked(_logger, ns, pod.Metadata.Name!, pod.Spec.NodeName ?? "", ckpt.Metadata.Name!, reason, from);
        _events.Normal(deployment, RestoreCreatedReason,
            $"pod {pod.Metadata.Name} replaces pod {ckpt.Spec.PodName} of a node that went away ({reason}); checkpoint {ckpt.Metadata.Name} was taken on node {from} " +
            $"and the pod runs on node {pod.Spec.NodeName}: annotated {Annotations.RestoreFrom}: {ckpt.Metadata.Name}, so that node {pod.Spec.NodeName} fetches it and restores it");
    }

    private static partial class Log
    {
        [LoggerMessage(23001, LogLevel.Information, "Created Restore {Namespace}/{Name} from node-away checkpoint {Checkpoint} ({Reason}) for pod {Pod} on node {Node}")]
        public static partial void RestoreCreated(ILogger logger, string @namespace, string name, string checkpoint, string reason, string pod, string node);

        [LoggerMessage(23002, LogLevel.Debug, "Restore {Namespace}/{Name} of a node-away checkpoint exists already")]
        public static partial void RestoreExists(ILogger logger, string @namespace, string name);

        [LoggerMessage(23003, LogLevel.Information, "Pod {Namespace}/{Pod} on node {Node} is to be restored by its node from node-away checkpoint {Checkpoint} ({Reason}) taken on node {From}")]
        public static partial void RestoreAsked(ILogger logger, string @namespace, string pod, string node, string checkpoint, string reason, string from);
    }
}

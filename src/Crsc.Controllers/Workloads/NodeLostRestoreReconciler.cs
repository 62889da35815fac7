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
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Workloads;

public sealed record NodeLostRestoreOptions
{
    /// <summary>
    /// A pod created this long after a lost pod's checkpoint was taken, or later, is not restored from it (its memory is
    /// too old); nor is any pod once this long has passed since (a replacement that ran cold meanwhile keeps its state).
    /// </summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// How long before the node was lost (its Ready condition's transition, or the lost pod's deletion) a pod may have
    /// been made and still count as a replacement: the ReplicaSet's replacement and the Node's change reach the API
    /// server in either order.
    /// </summary>
    public TimeSpan Slack { get; init; } = TimeSpan.FromMinutes(1);

    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(Window, TimeSpan.Zero, nameof(Window));
        ArgumentOutOfRangeException.ThrowIfLessThan(Slack, TimeSpan.Zero, nameof(Slack));
    }
}

/// <summary>
/// Brings the pods of a lost node back elsewhere with their memory (leader-only). Keys are managed Deployments. A node
/// is lost when its Node object is gone or its Ready condition is not True; a pod was lost with it when its newest
/// Completed checkpoint (per container) was taken there and the pod is gone or being deleted. That pod's newest
/// checkpoint with a copy off the node (a registry copy, or another node's) is chosen, else its newest. Such a checkpoint —
/// unless it is a drain or shutdown checkpoint (<see cref="NodeAwayRestoreReconciler"/> has those) or a Restore or a pod
/// names it already — is restored into a replacement: a live pod of the workload on another node, created after the
/// checkpoint and within <see cref="NodeLostRestoreOptions.Window"/> of it (and not long before the loss), that runs the
/// container and is not restored or asked to be. The lost node cannot serve its archive, so the replacement is annotated
/// <c>crsc.io/restore-from</c> and its own node's agent fetches the checkpoint — from its registry copy
/// (<c>replicate: Registry</c>), else from a node that holds a copy — and restores it (<see cref="RestoreFromReconciler"/>);
/// with no copy anywhere, that pod's <c>crsc.io/RestoreFrom</c> condition says <c>CheckpointUnreachable</c>, naming the
/// node and the checkpoint, and the pod runs cold.
/// </summary>
public sealed partial class NodeLostRestoreReconciler : IReconciler
{
    public const string ControllerName = "node-lost-restore";
    public const string RestoreRequestedReason = "NodeLostRestoreRequested";

    private readonly IKubeResourceClient<Pod> _podsApi;
    private readonly IKubeResourceClient<Node> _nodesApi;
    private readonly Informer<Pod> _pods;
    private readonly Informer<Deployment> _deployments;
    private readonly Informer<ContainerCheckpoint> _checkpoints;
    private readonly Informer<ContainerCheckpointContent> _contents;
    private readonly Informer<Restore> _restores;
    private readonly IEventRecorder _events;
    private readonly NodeLostRestoreOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    /// <summary>Checkpoints (namespace/name) asked for on a pod here, until the cache shows the annotation.</summary>
    private readonly ConcurrentDictionary<string, string> _asked = new(StringComparer.Ordinal);

    public static ControllerSetup<NodeLostRestoreReconciler> SetUp(ControllerManager manager, NodeLostRestoreOptions? options = null, int workers = 1)
    {
        ArgumentNullException.ThrowIfNull(manager);
        var pods = manager.Informers.For(Resources.Pods);
        var deployments = manager.Informers.For(Resources.Deployments);
        var checkpoints = manager.Informers.For(CrscResources.ContainerCheckpoints);
        var contents = manager.Informers.For(CrscResources.ContainerCheckpointContents);
        var restores = manager.Informers.For(CrscResources.Restores);
        var reconciler = new NodeLostRestoreReconciler(manager.Kube, pods, deployments, checkpoints, contents, restores, manager.Events,
            options ?? new NodeLostRestoreOptions(), manager.Time, manager.Loggers.CreateLogger<NodeLostRestoreReconciler>());
        var controller = manager.NewController(ControllerName, reconciler, workers);
        controller.Watch(deployments);
        controller.Watch(pods, p => PodFailureReconciler.DeploymentOf(p) is { } k ? [k] : []);
        controller.Watch(checkpoints, c => c.Metadata.Labels?.GetValueOrDefault(Labels.Workload) is { Length: > 0 } w
            ? [new ObjectKey(c.Metadata.Namespace, w)] : []);
        controller.Watch(restores, r => PodFailureReconciler.TargetOf(r) is { } k ? [k] : []);
        return new(manager.Add(controller, leaderOnly: true), reconciler);
    }

    public NodeLostRestoreReconciler(IKubeApi kube, Informer<Pod> pods, Informer<Deployment> deployments,
        Informer<ContainerCheckpoint> checkpoints, Informer<ContainerCheckpointContent> contents, Informer<Restore> restores, IEventRecorder events, NodeLostRestoreOptions options,
        TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _podsApi = kube.Resource(Resources.Pods);
        _nodesApi = kube.Resource(Resources.Nodes);
        _pods = pods;
        _deployments = deployments;
        _checkpoints = checkpoints;
        _contents = contents;
        _restores = restores;
        _events = events;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        ReplacementRestores.Index(pods, checkpoints, restores);
    }

    private static DateTimeOffset? TakenAt(ContainerCheckpoint c) => ReplacementRestores.TakenAt(c);

    /// <summary>Why a node is lost, and since when (null: not known from the API).</summary>
    private sealed record Lost(string Why, DateTimeOffset? Since);

    public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var deployment = _deployments.Get(key);
        if (deployment is null || deployment.Metadata.DeletionTimestamp is not null || !ManagedWorkload.Read(deployment).Managed)
            return ReconcileResult.Done;
        var ns = key.Namespace ?? "default";
        var now = _time.GetUtcNow();
        foreach (var done in _asked.Where(a => a.Key.StartsWith(ns + "/", StringComparison.Ordinal)
                                               && RestoreFromRequest.Claimed(_pods, ns, a.Key[(ns.Length + 1)..])).ToList())
            _asked.TryRemove(done.Key, out _);

        // per pod and container, the newest finished checkpoint with a copy off its node (else the newest), newest
        // first: a lost pod's is the memory to bring back
        var candidates = ReplacementRestores.Completed(_checkpoints, ns, key.Name)
            .Where(c => c.Status?.Node is { Length: > 0 })
            .GroupBy(c => (c.Spec.PodName, c.Spec.Container))
            .Select(Reachable)
            .Where(c => NodeAwayRestoreReconciler.NodeAwayReason(c) is null && now - TakenAt(c)!.Value <= _options.Window
                        && !Used(ns, c.Metadata.Name!) && PodGone(ns, c))
            .OrderByDescending(TakenAt)
            .ThenBy(c => c.Metadata.Name, StringComparer.Ordinal)
            .ToList();
        if (candidates.Count == 0) return ReconcileResult.Done;

        var pods = ReplacementRestores.PodsOf(_pods, ns, key.Name)
            .Where(IsFree)
            .OrderBy(p => p.Metadata.CreationTimestamp)
            .ThenBy(p => p.Metadata.Name, StringComparer.Ordinal)
            .ToList();
        var lost = new Dictionary<string, Lost?>(StringComparer.Ordinal);
        var taken = new HashSet<string>(StringComparer.Ordinal);
        DateTimeOffset? recheck = null;
        foreach (var ckpt in candidates)
        {
            var node = ckpt.Status!.Node!;
            var takenAt = TakenAt(ckpt)!.Value;
            // the Node is read only when a pod could take the checkpoint (old checkpoints of long-gone pods cost nothing)
            var fits = pods.Where(p => !taken.Contains(p.Metadata.Uid!) && p.Spec.NodeName != node && Fits(p, ckpt, takenAt, null)).ToList();
            if (fits.Count == 0)
            {
                var end = takenAt + _options.Window;
                if (recheck is null || end < recheck) recheck = end;
                continue;
            }
            if (!lost.TryGetValue(node, out var why)) lost[node] = why = await LostAsync(node, ns, ckpt, ct).ConfigureAwait(false);
            if (why is null) continue; // its node is there: the pod went for another reason
            var since = why.Since ?? (_pods.Get(new ObjectKey(ns, ckpt.Spec.PodName))?.Metadata.DeletionTimestamp);
            var pod = fits.FirstOrDefault(p => Fits(p, ckpt, takenAt, since));
            if (pod is null) continue;
            taken.Add(pod.Metadata.Uid!);
            await AskAsync(deployment, ckpt, pod, why, ct).ConfigureAwait(false);
        }
        return recheck is { } at
            ? ReconcileResult.RequeueAfter(at - now > TimeSpan.FromSeconds(1) ? at - now : TimeSpan.FromSeconds(1))
            : ReconcileResult.Done;
    }

    /// <summary>
    /// Of one pod's checkpoints of one container: the newest that has a registry copy or a copy on another node than its
    /// own (a checkpoint completed just before the node was lost may not have been copied yet: the one before it has),
    /// else the newest (its node's agent says then that no copy can be reached, naming the node and the checkpoint).
    /// </summary>
    private ContainerCheckpoint Reachable(IEnumerable<ContainerCheckpoint> ofPod)
    {
        var newestFirst = ReplacementRestores.NewestFirst(ofPod).ToList();
        return newestFirst.FirstOrDefault(c => c.Status?.ContentName is { Length: > 0 } content
                   && _contents.Get(ObjectKey.Cluster(content))?.Status?.Copies is { } copies
                   && copies.Any(copy => copy.ImageReference.Length > 0
                                         && (copy.Kind == CheckpointCopyKind.Registry || (copy.Node is { Length: > 0 } n && n != c.Status.Node))))
               ?? newestFirst[0];
    }

    /// <summary>A Restore or a pod names the checkpoint already, or this process asked for it.</summary>
    private bool Used(string ns, string checkpoint) =>
        ReplacementRestores.Used(_restores, _pods, ns, checkpoint) || _asked.ContainsKey($"{ns}/{checkpoint}");

    /// <summary>The checkpointed pod is gone, being deleted, finished, or another pod has its name now.</summary>
    private bool PodGone(string ns, ContainerCheckpoint ckpt)
    {
        var pod = _pods.Get(new ObjectKey(ns, ckpt.Spec.PodName));
        return !RestorePods.IsLive(pod) || (ckpt.Status?.PodUid is { Length: > 0 } uid && pod!.Metadata.Uid != uid);
    }

    /// <summary>A pod that may be restored: alive, scheduled, not restored, not being restored, not asked to be.</summary>
    private static bool IsFree(Pod p) =>
        RestorePods.IsLive(p) && !string.IsNullOrEmpty(p.Spec.NodeName) && !string.IsNullOrEmpty(p.Metadata.Uid)
        && !ReplacementRestores.RestoredOrAsked(p);

    /// <summary>
    /// Whether <paramref name="p"/> can take <paramref name="ckpt"/>: it runs the container, is not the checkpointed pod,
    /// and was made after the checkpoint, within the window, and not long before the loss (when that is known).
    /// </summary>
    private bool Fits(Pod p, ContainerCheckpoint ckpt, DateTimeOffset takenAt, DateTimeOffset? lostSince)
    {
        if (p.Metadata.Name == ckpt.Spec.PodName || RestorePods.ContainerOf(p, ckpt.Spec.Container) is null) return false;
        if (p.Metadata.CreationTimestamp is not { } created || created < KubeTime.Truncate(takenAt) || created - takenAt > _options.Window) return false;
        return lostSince is not { } since || created >= since - _options.Slack;
    }

    /// <summary>
    /// Whether <paramref name="node"/> is lost: its Node is gone, or not Ready (the node controller says Unknown when its
    /// kubelet stopped posting). A Node not read (the API server away) throws: the pass is tried again.
    /// </summary>
    private async Task<Lost?> LostAsync(string node, string ns, ContainerCheckpoint ckpt, CancellationToken ct)
    {
        try
        {
            var n = await _nodesApi.GetAsync(null, node, ct).ConfigureAwait(false);
            var ready = n.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");
            if (ready is null || ready.Status == "True") return null;
            var reason = ready.Reason is { Length: > 0 } r ? $", {r}" : "";
            return new Lost($"its Node is not Ready ({ready.Status}{reason})", ready.LastTransitionTime);
        }
        catch (NotFoundException)
        {
            Log.NodeMissing(_logger, node, ns, ckpt.Metadata.Name!);
            return new Lost("its Node no longer exists", null);
        }
    }

    private async Task AskAsync(Deployment deployment, ContainerCheckpoint ckpt, Pod pod, Lost why, CancellationToken ct)
    {
        var ns = deployment.Metadata.Namespace!;
        var name = ckpt.Metadata.Name!;
        if (!await RestoreFromRequest.AskAsync(_podsApi, pod, name, ct).ConfigureAwait(false))
        {
            Log.NotAsked(_logger, ns, pod.Metadata.Name!, name);
            return; // changed or gone meanwhile: its event brings the workload back
        }
        _asked[$"{ns}/{name}"] = pod.Metadata.Name!;
        var message = $"pod {pod.Metadata.Name} on node {pod.Spec.NodeName} replaces pod {ckpt.Spec.PodName} of lost node {ckpt.Status!.Node} " +
                      $"({why.Why}): annotated {Annotations.RestoreFrom}: {name}, so that node {pod.Spec.NodeName} fetches that checkpoint " +
                      "(from its registry copy, or a node that holds a copy) and restores it";
        Log.Asked(_logger, ns, pod.Metadata.Name!, pod.Spec.NodeName ?? "", name, ckpt.Status.Node!, why.Why);
        _events.Normal(deployment, RestoreRequestedReason, message);
    }

    private static partial class Log
    {
        [LoggerMessage(23201, LogLevel.Information, "Pod {Namespace}/{Pod} on node {Node} replaces a pod of lost node {LostNode} ({Why}): asked for a restore from checkpoint {Checkpoint}")]
        public static partial void Asked(ILogger logger, string @namespace, string pod, string node, string checkpoint, string lostNode, string why);

        [LoggerMessage(23202, LogLevel.Debug, "Pod {Namespace}/{Pod} changed before it was asked to restore checkpoint {Checkpoint}; looking again")]
        public static partial void NotAsked(ILogger logger, string @namespace, string pod, string checkpoint);

        [LoggerMessage(23203, LogLevel.Debug, "Node {Node} of checkpoint {Namespace}/{Checkpoint} does not exist")]
        public static partial void NodeMissing(ILogger logger, string node, string @namespace, string checkpoint);
    }
}

using System.Text.Json.Nodes;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Leadership;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Runtime;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using KubeTime = Crsc.Api.Kubernetes.KubeTime;
using Crsc.Controllers.Hosting;

namespace Crsc.Controllers.Restores;

/// <summary>Timeouts of the restore reconciler. Every wait is measured with the injected <see cref="TimeProvider"/>.</summary>
public sealed record RestoreReconcilerOptions
{
    /// <summary>How long to wait for a running pod to restore (the replacement of a lost or deleted pod).</summary>
    public TimeSpan PodTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How long a chosen checkpoint may be unfinished or without its image (<c>spec.imageReference</c> of its Content)
    /// before the restore gives up on it (and the fallback applies).
    /// </summary>
    public TimeSpan ImageReferenceTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long to wait for the pod's node to report <c>ImagesReady</c>. After that the pod is patched anyway and the
    /// kubelet pulls the images (a node without crsc never reports).
    /// </summary>
    public TimeSpan ImagePreparationTimeout { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>How long the patched container may take to run (and be ready, when it has a readiness probe).</summary>
    public TimeSpan RestoreTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How soon a container status that does not tell the restored container's fate yet — it still describes the
    /// container the patch replaced — is looked at again (a change of the pod wakes the reconcile sooner). Time never
    /// makes such a status the restored container's: only the checkpoint image in the status, a container the kubelet
    /// made after the patch, or its failure to start one decides an attempt (or <see cref="RestoreTimeout"/> ends it).
    /// </summary>
    public TimeSpan StatusGrace { get; init; } = TimeSpan.FromSeconds(15);

    public void Validate()
    {
        foreach (var (name, value) in new[]
        {
            (nameof(PodTimeout), PodTimeout), (nameof(ImageReferenceTimeout), ImageReferenceTimeout),
            (nameof(ImagePreparationTimeout), ImagePreparationTimeout), (nameof(RestoreTimeout), RestoreTimeout),
        })
        {
            if (value <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(name, value, $"{name} must be greater than zero");
        }
        if (StatusGrace < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(StatusGrace), StatusGrace, "StatusGrace must not be negative");
    }
}

/// <summary>
/// The state manager (leader-only; each node also runs a standby instance for Restores of its own pods while the leader
/// is absent, see <see cref="SetUpStandby"/>): restores a workload's container <b>in place</b>. It picks the pod (the one named by
/// a Pod target; for a Deployment the failed pod of <c>crsc.io/failed-pod</c>, else the newest running one, else the
/// replacement of a lost pod once it runs) and the checkpoint (named, or the latest <c>Completed</c> one whose base image
/// is the pod's image), waits for the pod's node to report <c>ImagesReady</c> (the <see cref="RestorePreparer"/> pulls
/// them there), then patches the pod's container image to the checkpoint image — the kubelet restarts the container in
/// the same pod and the runtime restores it — and follows the container to running: <c>Restored</c>. A failed attempt
/// deletes the pod so that its replacement is restored next; after <c>maxAttempts</c> the fallback applies
/// (<c>ColdStart</c> puts the original image back: <c>FellBack</c>; <c>Fail</c>: <c>Failed</c>). The Deployment is never
/// edited.
/// <para>
/// All state is in the Restore's status and the pod's annotations, written status first: <c>status.patchedAt</c> and
/// the attempt count are written (resourceVersion-checked) before the pod is patched, so a new leader finds either an
/// unpatched pod to patch or a patched one to follow — never a second patch or a second count. Terminal phases are
/// never reconciled again.
/// </para>
/// <para>
/// The informers lag the API server — behind this reconciler's own writes too, and the Restore and pod caches each by
/// its own amount — so a pod is written to (patched, deleted, patched back) only on a decision taken from the Restore
/// as the API server returned it, and a counted attempt whose patch the pod cache does not show is checked against
/// the pod as the server has it. An attempt is judged only by the container the patch brought: the pre-patch status
/// (kept on the pod by the patch, <see cref="ReplacedContainer"/>) never counts, however late or however stamped.
/// </para>
/// </summary>
public sealed class RestoreReconciler : IReconciler
{
    public const string ControllerName = "restore";

    /// <summary>The reason of <c>RuntimeCannotRestore</c> when the runtime refused a restore the node's probe allowed.</summary>
    public const string RefusedByRuntime = "RefusedByRuntime";

    /// <summary>
    /// Sets the restore state manager up with <paramref name="manager"/> (leader-only): Restores, all pods,
    /// ContainerCheckpoints and their Contents. Restore changes reconcile themselves; pod changes the Restores naming
    /// the pod or its Deployment; checkpoint and Content changes the namespace's unfinished Restores.
    /// </summary>
    public static ControllerSetup<RestoreReconciler> SetUp(ControllerManager manager, RestoreReconcilerOptions? options = null,
        IRestoreBackend? backend = null)
    {
        ArgumentNullException.ThrowIfNull(manager);
        var restores = manager.Informers.For(CrscResources.Restores);
        var pods = manager.Informers.For(Resources.Pods);
        var checkpoints = manager.Informers.For(CrscResources.ContainerCheckpoints);
        var contents = manager.Informers.For(CrscResources.ContainerCheckpointContents);
        var nodes = manager.Informers.For(CrscResources.CheckpointNodes);
        var reconciler = new RestoreReconciler(manager.Kube, restores, pods, checkpoints, contents, manager.Events,
            options ?? new RestoreReconcilerOptions(), manager.Time, manager.Loggers.CreateLogger<RestoreReconciler>(), nodes, backend);
        var controller = manager.NewController(ControllerName, reconciler, workers: 2);
        controller.Watch(restores);
        controller.Watch(pods, pod => RestoresOfPod(restores, pod));
        controller.Watch(checkpoints, c => ActiveRestoresIn(restores, c.Metadata.Namespace));
        controller.Watch(contents, c => ActiveRestoresIn(restores, c.Spec.CheckpointRef.Namespace));
        // CheckpointNodes refine the decision (no patch on a node that cannot restore); without them (their CRD not
        // applied yet, an older node agent) restores go on as before, so the controller does not wait for them
        controller.WatchWithoutWaiting(nodes, n => ActiveRestoresOnNode(restores, n.Metadata.Name));
        return new(manager.Add(controller, leaderOnly: true), reconciler);
    }

    /// <summary>The name of the node's standby instance (<see cref="SetUpStandby"/>).</summary>
    public const string StandbyControllerName = "restore-standby";

    /// <summary>
    /// Sets up this node's standby instance of the restore state manager with <paramref name="manager"/> (node work): the
    /// same reconciler over this node's pods only (the informer the node agent keeps anyway) and this node's
    /// CheckpointNode, acting only while <paramref name="standby"/> is active and only on Restores whose pod is on this
    /// node — one whose pod was chosen here, or a new one whose failed pod (or target pod) runs here. Every write is the
    /// one the leader would make, resourceVersion-checked as the leader's are, so the two never both count or patch an
    /// attempt; the leader, back, continues from the status.
    /// </summary>
    public static ControllerSetup<RestoreReconciler> SetUpStandby(ControllerManager manager, NodeStandbyScope standby,
        RestoreReconcilerOptions? options = null, IRestoreBackend? backend = null)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(standby);
        var restores = manager.Informers.For(CrscResources.Restores);
        var pods = manager.Informers.PodsOnNode(standby.NodeName);
        var checkpoints = manager.Informers.For(CrscResources.ContainerCheckpoints);
        var contents = manager.Informers.For(CrscResources.ContainerCheckpointContents);
        // the selection of the node's CheckpointNodeReporter: one informer of this node's object, shared
        var nodes = manager.Informers.For(CrscResources.CheckpointNodes,
            new InformerOptions { FieldSelector = $"metadata.name={standby.NodeName}", Name = "informer/checkpointnode" });
        var reconciler = new RestoreReconciler(manager.Kube, restores, pods, checkpoints, contents, manager.Events,
            options ?? new RestoreReconcilerOptions(), manager.Time, manager.Loggers.CreateLogger<RestoreReconciler>(), nodes, backend,
            standby);
        var controller = manager.NewController(StandbyControllerName, reconciler);
        controller.Watch(restores, r => IsTerminal(r) ? [] : [EnqueueHandlers.KeyOf(r)]);
        controller.Watch(pods, pod => RestoresOfPod(restores, pod));
        controller.Watch(checkpoints, c => ActiveRestoresIn(restores, c.Metadata.Namespace));
        controller.Watch(contents, c => ActiveRestoresIn(restores, c.Spec.CheckpointRef.Namespace));
        controller.WatchWithoutWaiting(nodes, n => ActiveRestoresOnNode(restores, n.Metadata.Name));
        return new(manager.Add(controller, leaderOnly: false), reconciler);
    }

    /// <summary>
    /// Pods by <c>&lt;namespace&gt;/&lt;deployment&gt;</c> (ReplicaSet-owned pods only). An informer index (internal, not
    /// API), shared with the <see cref="Workloads.PodFailureReconciler"/>, which keeps the same index on the same informer.
    /// </summary>
    internal const string PodsByDeploymentIndex = "crsc.io/restore-deployment";
    /// <summary>Restores by the pods and workloads they concern: <c>&lt;ns&gt;/Pod/&lt;name&gt;</c>, <c>&lt;ns&gt;/Deployment/&lt;name&gt;</c> (internal, not API).</summary>
    private const string RestoresBySubjectIndex = "crsc.io/restore-subject";

    private const int MaxStepsPerReconcile = 16;

    private readonly IKubeResourceClient<Restore> _restoresApi;
    private readonly IKubeResourceClient<Pod> _podsApi;
    private readonly Informer<Restore> _restores;
    private readonly Informer<Pod> _pods;
    private readonly Informer<CheckpointNode>? _nodes;
    private readonly NodeStandbyScope? _standby;
    private readonly IRestoreBackend _backend;
    private readonly CheckpointChooser _chooser;
    private readonly Informer<ContainerCheckpoint> _checkpoints;
    private readonly IEventRecorder _events;
    private readonly RestoreReconcilerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public RestoreReconciler(
        IKubeApi kube,
        Informer<Restore> restores,
        Informer<Pod> pods,
        Informer<ContainerCheckpoint> checkpoints,
        Informer<ContainerCheckpointContent> contents,
        IEventRecorder events,
        RestoreReconcilerOptions options,
        TimeProvider time,
        ILogger? logger = null,
        Informer<CheckpointNode>? nodes = null,
        IRestoreBackend? backend = null,
        NodeStandbyScope? standby = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        options.Validate();
        _nodes = nodes;
        _standby = standby;
        _backend = backend ?? new ImageSwapRestoreBackend(kube);
        _restoresApi = kube.Resource(CrscResources.Restores);
        _podsApi = kube.Resource(Resources.Pods);
        _restores = restores;
        _pods = pods;
        _checkpoints = checkpoints;
        // a node without a CheckpointNode is gone (a registry copy of its checkpoints is restored instead); only the
        // leader's cache holds every node's, the standby's holds its own
        _chooser = new CheckpointChooser(pods, checkpoints, contents,
            standby is null && nodes is not null ? n => nodes.HasSynced && nodes.Get(ObjectKey.Cluster(n)) is null : null);
        _events = events;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        pods.TryAddIndexer(PodsByDeploymentIndex, RestorePods.DeploymentKeys);
        IndexBySubject(restores);
        restores.TryAddIndexer(Indexers.Namespace, Indexers.ByNamespace);
    }

    public RestoreReconcilerOptions Options => _options;

    /// <summary>Keeps the index <see cref="RestoresOfPod"/> reads on <paramref name="restores"/> (once per informer).</summary>
    internal static void IndexBySubject(Informer<Restore> restores) => restores.TryAddIndexer(RestoresBySubjectIndex, SubjectsOf);

    /// <summary>The unfinished Restores a pod change may concern: those naming the pod, and those of its Deployment.</summary>
    public static IEnumerable<ObjectKey> RestoresOfPod(Informer<Restore> restores, Pod pod)
    {
        var ns = pod.Metadata.Namespace;
        IEnumerable<Restore> found = restores.ByIndex(RestoresBySubjectIndex, $"{ns}/Pod/{pod.Metadata.Name}");
        if (RestorePods.DeploymentOf(pod) is { } deployment)
            found = found.Concat(restores.ByIndex(RestoresBySubjectIndex, $"{ns}/Deployment/{deployment}"));
        // finished Restores pile up (one per incident) and never act again: not woken by every pod status change
        return found.Where(r => !IsTerminal(r)).Select(EnqueueHandlers.KeyOf).Distinct();
    }

    /// <summary>The unfinished Restores of a namespace (a checkpoint or its Content changed there).</summary>
    public static IEnumerable<ObjectKey> ActiveRestoresIn(Informer<Restore> restores, string? ns) =>
        string.IsNullOrEmpty(ns)
            ? []
            : restores.ByIndex(Indexers.Namespace, ns).Where(r => !IsTerminal(r)).Select(EnqueueHandlers.KeyOf);

    /// <summary>The unfinished Restores whose pod is on <paramref name="node"/> (its CheckpointNode changed).</summary>
    public static IEnumerable<ObjectKey> ActiveRestoresOnNode(Informer<Restore> restores, string? node) =>
        string.IsNullOrEmpty(node)
            ? []
            : restores.List().Where(r => !IsTerminal(r) && r.Status?.Node == node).Select(EnqueueHandlers.KeyOf);

    public static bool IsTerminal(Restore r) => RestoreStages.IsTerminal(r);

    private static IEnumerable<string> SubjectsOf(Restore r)
    {
        var ns = r.Metadata.Namespace;
        var subjects = new List<string> { $"{ns}/{r.Spec.Target.Kind}/{r.Spec.Target.Name}" };
        if (r.Status?.PodName is { Length: > 0 } pod) subjects.Add($"{ns}/Pod/{pod}");
        if (r.Metadata.Annotations?.GetValueOrDefault(Annotations.FailedPod) is { Length: > 0 } failed) subjects.Add($"{ns}/Pod/{failed}");
        return subjects.Distinct(StringComparer.Ordinal);
    }

    public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var restore = _restores.Get(key);
        // the cache's copy may lag the API server, this reconciler's own last write included; what a write or a read
        // returned is the server's
        var fresh = false;
        for (var conflicts = 0; ; conflicts++)
        {
            // a Migration is the MigrationReconciler's (it follows the in-place Restore the target node makes instead)
            if (restore is null || IsTerminal(restore) || restore.Spec.IsMigration) return ReconcileResult.Done;
            try
            {
                for (var step = 0; step < MaxStepsPerReconcile; step++)
                {
                    var next = await StepAsync(restore, fresh, ct).ConfigureAwait(false);
                    if (next.Result is { } result) return result;
                    restore = next.Restore!;
                    fresh = true;
                }
                return ReconcileResult.Requeue;
            }
            catch (ConflictException) when (conflicts < 3)
            {
                // someone wrote first (the node's preparer, our own earlier write the cache has not seen, or a pod
                // precondition): decide again from the object as it is now
                Log.Conflict(_logger, key.Namespace ?? "", key.Name);
                var reloaded = await ReloadAsync(restore, ct).ConfigureAwait(false);
                if (reloaded.Result is { } gone) return gone;
                restore = reloaded.Restore!;
                fresh = true;
            }
        }
    }

    /// <summary>
    /// One step: either a result for the controller, or the Restore as the API server returned it (written or read), to
    /// take the next step from.
    /// </summary>
    private readonly record struct Step(Restore? Restore, ReconcileResult? Result)
    {
        public static Step Next(Restore r) => new(r, null);
        public static Step Stop(ReconcileResult result) => new(null, result);
    }

    /// <param name="fresh">whether <paramref name="r"/> is the API server's (returned by a write or a read) rather than the cache's</param>
    private async Task<Step> StepAsync(Restore r, bool fresh, CancellationToken ct)
    {
        // a node's standby instance: nothing while the leader is there, and never a Restore of another node's pod
        if (_standby is { } standby && (!standby.Active() || !OnStandbysNode(r, standby.NodeName)))
            return Step.Stop(ReconcileResult.Done);
        var now = _time.GetUtcNow();
        var pod = r.Status?.PodName is { } podName ? _pods.Get(new ObjectKey(r.Metadata.Namespace!, podName)) : null;
        var at = RestoreStages.Classify(r, pod, now, _options);
        // these stages delete, patch or patch back the pod. A cached Restore may not show this reconciler's last write
        // yet (an attempt failed but not counted looks like one counted but not patched) while the pod cache already
        // shows its effect: only the server's Restore says which it is
        if (at.NeedsServerCopy && !fresh) return await ReloadAsync(r, ct).ConfigureAwait(false);
        // a node whose runtime said it cannot restore gets no patch: the fallback applies at once, naming the fix
        if (at.Stage is RestoreStage.ChoosingCheckpoint or RestoreStage.WaitingForImages or RestoreStage.ReadyToPatch
                or RestoreStage.ImagesOverdue or RestoreStage.CountedNotPatched
            && pod?.Spec.NodeName is { Length: > 0 } nodeName && NodeThatCannotRestore(nodeName) is { } node)
            return await RuntimeCannotRestoreAsync(r, pod, node, ct).ConfigureAwait(false);
        switch (at.Stage)
        {
            case RestoreStage.Finished:
                return Step.Stop(ReconcileResult.Done);
            case RestoreStage.InvalidSpec:
                return await FinishAsync(r, null, RestorePhase.Failed, "InvalidSpec", at.Detail!, ct).ConfigureAwait(false);
            case RestoreStage.New:
                return await StartAsync(r, now, ct).ConfigureAwait(false);
            case RestoreStage.PodGone:
                return await PodLostAsync(r, ct).ConfigureAwait(false);
            case RestoreStage.ChoosingPod:
                return await ChoosePodAsync(r, now, ct).ConfigureAwait(false);
            case RestoreStage.ContainerNotFound:
                return await FinishAsync(r, pod, RestorePhase.Failed, "ContainerNotFound", at.Detail!, ct).ConfigureAwait(false);
            case RestoreStage.ChoosingCheckpoint:
                return await ChooseCheckpointAsync(r, pod!, at.Container!, now, ct).ConfigureAwait(false);
            case RestoreStage.WaitingForImages:
                return WaitForImages(r, now);
            case RestoreStage.ImagesFailed:
                return await FallbackAsync(r, pod, $"the images cannot be pulled on node {r.Status!.Node}: {at.ImagesReady!.Message}{CrossNodeNote(r)}", ct,
                    reason: "ImagePullFailed").ConfigureAwait(false);
            case RestoreStage.ReadyToPatch:
                return await BeginAttemptAsync(r, pod!, at.Container!, null, ct).ConfigureAwait(false);
            case RestoreStage.ImagesOverdue:
                return await BeginAttemptAsync(r, pod!, at.Container!, ImagesOverdueNote(r, at.ImagesReady), ct).ConfigureAwait(false);
            case RestoreStage.CountedNotPatched:
                return await PatchCountedAttemptAsync(r, pod!, at.Container!, ct).ConfigureAwait(false);
            case RestoreStage.PatchedBack:
                // the fallback put the original image back and the status write did not happen: finish it
                return await FinishAsync(r, pod, RestorePhase.FellBack, "ColdStart",
                    $"restore of pod {pod!.Metadata.Name} gave up; the original image {r.Status!.OriginalImage} is back and the container starts without its state",
                    ct).ConfigureAwait(false);
            case RestoreStage.Restoring:
                return WaitForContainer(r, now, at.LookAgain);
            case RestoreStage.AttemptSucceeded:
            {
                // the instance it restored: the failure detector tells a later restart (a new failure) by it, not by time
                var restored = RestorePods.StatusOf(pod!, at.Container!);
                return await FinishAsync(r, pod, RestorePhase.Restored, "Restored",
                    $"container {at.Container} of pod {pod!.Metadata.Name} runs again from checkpoint {r.Status!.CheckpointName} (attempt {r.Status.Attempts} of {r.Spec.MaxAttempts})",
                    ct, also: st =>
                    {
                        st.RestoredContainerId = restored?.ContainerID;
                        st.RestoredRestartCount = restored?.RestartCount;
                        var timeline = st.Timeline ??= new RestoreTimeline();
                        timeline.RunningAt = restored?.State?.Running?.StartedAt;
                        timeline.RestoredAt = KubeTime.Truncate(_time.GetUtcNow());
                    }).ConfigureAwait(false);
            }
            case RestoreStage.AttemptFailed when !at.TimedOut && RuntimeRefusals.RestoreRefusal(at.Detail) is { } refusal:
                return await RuntimeRefusedAsync(r, pod!, refusal, at.Detail!, ct).ConfigureAwait(false);
            case RestoreStage.AttemptFailed:
                return await AttemptFailedAsync(r, pod!, at.TimedOut
                    ? $"container {at.Container} did not run within {_options.RestoreTimeout} of the patch ({at.Detail})"
                    : at.Detail!, ct).ConfigureAwait(false);
            case RestoreStage.PodToReplace:
                return await DeletePodAsync(r, pod!, ct).ConfigureAwait(false);
            default:
                throw new InvalidOperationException($"restore stage {at.Stage} has no action");
        }
    }

    /// <summary>
    /// For a node's standby instance (whose pod cache holds this node's pods only): the Restore's pod is on
    /// <paramref name="node"/> — the pod it chose (by <c>status.node</c>, or found here), or, before it chose one, the
    /// failed pod it names (its target pod, for a Pod target) running here. Restores that have to find another pod (a
    /// lost pod's replacement, a user's Restore of a whole Deployment) are the leader's.
    /// </summary>
    private bool OnStandbysNode(Restore r, string node)
    {
        var ns = r.Metadata.Namespace;
        if (r.Status?.PodName is { Length: > 0 } chosen)
            return r.Status.Node is { Length: > 0 } n ? n == node : _pods.Get(new ObjectKey(ns, chosen)) is not null;
        var candidate = r.Spec.Target.Kind == RestoreTargetKind.Pod
            ? r.Spec.Target.Name
            : r.Metadata.Annotations?.GetValueOrDefault(Annotations.FailedPod);
        return candidate is { Length: > 0 } && _pods.Get(new ObjectKey(ns, candidate)) is { } pod
            && pod.Spec.NodeName == node && RestorePods.IsRunning(pod);
    }

    /// <summary>
    /// The CheckpointNode of <paramref name="nodeName"/> when its agent found that the runtime cannot restore
    /// (<see cref="CapabilityState.DisabledByConfig"/> or <see cref="CapabilityState.NotSupported"/>); null when it can, when
    /// that is not known, or when the node has no CheckpointNode (an older agent): then the restore is tried.
    /// </summary>
    private CheckpointNode? NodeThatCannotRestore(string nodeName) =>
        _nodes?.Get(ObjectKey.Cluster(nodeName)) is { } node && _backend.CannotRestoreOn(node) ? node : null;

    private Task<Step> RuntimeCannotRestoreAsync(Restore r, Pod pod, CheckpointNode node, CancellationToken ct)
    {
        var s = node.Status!;
        var runtime = s.RuntimeSummary ?? "its container runtime";
        var fix = s.Restore.Fix is { Length: > 0 } f ? $"; to enable it: {f}" : "";
        var why = $"node {node.Metadata.Name} cannot restore: {runtime} {(s.Restore.State == CapabilityState.DisabledByConfig ? "has restore turned off" : "does not support it")} ({s.Restore.Reason}){fix}{PlacementNote(r, pod)}";
        return CannotRestoreOnNodeAsync(r, pod, node.Metadata.Name!, s.Restore.State.ToString(), why, ct);
    }

    /// <summary>
    /// For a replacement pod (a Deployment's pod other than the one that failed): why crsc did not keep it off this node —
    /// what its placement did, or that the workload does not let crsc choose (no scheduling gate in its pod template).
    /// </summary>
    private static string PlacementNote(Restore r, Pod pod)
    {
        if (r.Spec.Target.Kind != RestoreTargetKind.Deployment
            || pod.Metadata.Name == r.Metadata.Annotations?.GetValueOrDefault(Annotations.FailedPod))
            return "";
        return pod.Metadata.Annotations?.GetValueOrDefault(Annotations.Placement) is { } placed
            ? $"; this replacement's placement: {placed}"
            : $"; crsc could not keep this replacement off the node: the pod template of Deployment {r.Spec.Target.Name} has no "
              + $"scheduling gate {SchedulingGates.RestorePlacement} (add it to let crsc keep replacements on nodes that can restore)";
    }

    /// <summary>
    /// The node's probe said yes, the runtime said no when the kubelet created the restored container: the same verdict
    /// as a probe's no. No more attempts (another would be refused alike); the fallback applies at once. The node agent
    /// probes its runtime again every interval, so its CheckpointNode catches up and the next Restore is not tried there.
    /// </summary>
    private Task<Step> RuntimeRefusedAsync(Restore r, Pod pod, string refusal, string detail, CancellationToken ct)
    {
        var node = pod.Spec.NodeName ?? r.Status?.Node ?? "?";
        var why = $"the container runtime of node {node} refused the restore (\"{refusal}\"): it cannot restore from checkpoint images "
                  + $"as configured; see kubectl get ckn {node} or crsc preflight on the node for the setting that enables it ({detail})";
        return CannotRestoreOnNodeAsync(r, pod, node, RefusedByRuntime, why, ct);
    }

    /// <summary>The pod's node cannot restore: a Warning Event, condition <c>RuntimeCannotRestore</c> (<paramref name="reason"/>), the fallback.</summary>
    private async Task<Step> CannotRestoreOnNodeAsync(Restore r, Pod pod, string node, string reason, string why, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        _events.Warning(r, RestoreConditions.RuntimeCannotRestore, why);
        Log.RuntimeCannotRestore(_logger, r.Metadata.Namespace!, r.Metadata.Name!, node, why);
        return await FallbackAsync(r, pod, why, ct, reason: RestoreConditions.RuntimeCannotRestore,
            also: st => st.SetCondition(RestoreConditions.RuntimeCannotRestore, ConditionStatus.True, reason, why,
                r.Metadata.Generation, now)).ConfigureAwait(false);
    }

    private async Task<Step> StartAsync(Restore r, DateTimeOffset now, CancellationToken ct)
    {
        var started = await WriteAsync(r, s =>
        {
            s.Phase = RestorePhase.Pending;
            s.Attempts ??= 0;
            s.StartedAt ??= KubeTime.Truncate(now);
            if (r.Metadata.Annotations?.GetValueOrDefault(Annotations.FailedAt) is { } failedAt
                && DateTimeOffset.TryParse(failedAt, System.Globalization.CultureInfo.InvariantCulture,
                    System.Globalization.DateTimeStyles.AssumeUniversal, out var at))
                (s.Timeline ??= new RestoreTimeline()).FailedAt ??= at.ToUniversalTime();
            s.WaitingSince = KubeTime.Truncate(now);
            s.Message = $"looking for the pod of {Describe(r.Spec.Target)} to restore";
            s.SetCondition(ConditionTypes.Progressing, ConditionStatus.True, "Pending", s.Message, r.Metadata.Generation, now);
        }, ct).ConfigureAwait(false);
        Log.Started(_logger, r.Metadata.Namespace!, r.Metadata.Name!, Describe(r.Spec.Target));
        return Step.Next(started);
    }

    /// <summary>The next step from the Restore as the API server has it (the cache's copy may lag).</summary>
    private async Task<Step> ReloadAsync(Restore r, CancellationToken ct)
    {
        try
        {
            return Step.Next(await _restoresApi.GetAsync(r.Metadata.Namespace, r.Metadata.Name!, ct).ConfigureAwait(false));
        }
        catch (NotFoundException)
        {
            return Step.Stop(ReconcileResult.Done);
        }
    }

    // ---- pods ----

    private async Task<Step> PodLostAsync(Restore r, CancellationToken ct)
    {
        var s = r.Status!;
        var lost = s.PodName!;
        var attempts = s.Attempts ?? 0;
        if (s.PatchedAt is not null && attempts >= r.Spec.MaxAttempts)
            return await FallbackAsync(r, null,
                $"attempt {attempts} of {r.Spec.MaxAttempts} ended: pod {lost} is gone", ct).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        var message = s.PatchedAt is not null
            ? $"attempt {attempts} of {r.Spec.MaxAttempts} ended: pod {lost} is gone; waiting for its replacement to run"
            : $"pod {lost} is gone; waiting for its replacement to run";
        var written = await WriteAsync(r, st =>
        {
            ForgetPod(st, now);
            st.Message = message;
            st.SetCondition(ConditionTypes.Progressing, ConditionStatus.True, "WaitingForPod", message, r.Metadata.Generation, now);
        }, ct).ConfigureAwait(false);
        Log.PodLost(_logger, r.Metadata.Namespace!, r.Metadata.Name!, lost);
        _events.Normal(written, "WaitingForPod", message);
        return Step.Next(written);
    }

    private async Task<Step> ChoosePodAsync(Restore r, DateTimeOffset now, CancellationToken ct)
    {
        var s = r.Status!;
        var (pod, why) = ChoosePod(r);
        if (pod is null)
        {
            var since = s.WaitingSince ?? s.StartedAt ?? now;
            if (now - since >= _options.PodTimeout)
                return await FinishAsync(r, null, RestorePhase.Failed, "NoPod",
                    $"no running pod of {Describe(r.Spec.Target)} within {_options.PodTimeout}: {why}", ct).ConfigureAwait(false);
            if (s.Message != why)
            {
                await WriteAsync(r, st =>
                {
                    st.Message = why;
                    st.SetCondition(ConditionTypes.Progressing, ConditionStatus.True, "WaitingForPod", why, r.Metadata.Generation, now);
                }, ct).ConfigureAwait(false);
            }
            // a pod event wakes the reconcile before this
            return Step.Stop(ReconcileResult.RequeueAfter(since + _options.PodTimeout - now));
        }

        var node = pod.Spec.NodeName ?? "";
        var message = $"restoring pod {pod.Metadata.Name} on node {node}";
        var written = await WriteAsync(r, st =>
        {
            ForgetPod(st, now);
            st.PodName = pod.Metadata.Name;
            st.PodUid = pod.Metadata.Uid;
            st.Node = pod.Spec.NodeName;
            st.Message = message;
            st.SetCondition(ConditionTypes.Progressing, ConditionStatus.True, "PodSelected", message, r.Metadata.Generation, now);
        }, ct).ConfigureAwait(false);
        Log.PodSelected(_logger, r.Metadata.Namespace!, r.Metadata.Name!, pod.Metadata.Name!, node);
        _events.Normal(written, "PodSelected", message);
        return Step.Next(written);
    }

    /// <summary>Clears what belonged to the previous pod (its images may be another node's business).</summary>
    private void ForgetPod(RestoreStatus st, DateTimeOffset now)
    {
        st.PodName = null;
        st.PodUid = null;
        st.Node = null;
        st.PatchedAt = null;
        st.Image = null;
        st.OriginalImage = null;
        st.WaitingSince = KubeTime.Truncate(now);
        st.RemoveCondition(RestoreConditions.ImagesReady);
    }

    private (Pod? Pod, string Why) ChoosePod(Restore r)
    {
        var ns = r.Metadata.Namespace!;
        var target = r.Spec.Target;
        if (target.Kind == RestoreTargetKind.Pod)
        {
            var p = _pods.Get(new ObjectKey(ns, target.Name));
            if (p is null) return (null, $"waiting for pod {target.Name} (it does not exist)");
            return RestorePods.IsRunning(p)
                ? (p, "")
                : (null, $"waiting for pod {target.Name} to run (phase {p.Status?.Phase ?? "Pending"}{(p.Metadata.DeletionTimestamp is null ? "" : ", terminating")})");
        }

        var pods = _pods.ByIndex(PodsByDeploymentIndex, $"{ns}/{target.Name}");
        if (r.Metadata.Annotations?.GetValueOrDefault(Annotations.FailedPod) is { Length: > 0 } failedName
            && pods.FirstOrDefault(p => p.Metadata.Name == failedName) is { } failed && RestorePods.IsRunning(failed))
            return (failed, "");
        var newest = pods.Where(RestorePods.IsRunning)
            .OrderByDescending(p => p.Metadata.CreationTimestamp ?? DateTimeOffset.MinValue)
            .ThenByDescending(p => p.Metadata.Name, StringComparer.Ordinal)
            .FirstOrDefault();
        return newest is not null
            ? (newest, "")
            : (null, pods.Count == 0
                ? $"waiting for a pod of Deployment {target.Name} (it has none)"
                : $"waiting for a pod of Deployment {target.Name} to run ({pods.Count} not running)");
    }

    // ---- checkpoint and images ----

    private async Task<Step> ChooseCheckpointAsync(Restore r, Pod pod, string container, DateTimeOffset now, CancellationToken ct)
    {
        var s = r.Status!;
        var baseImage = RestorePods.OriginalImageOf(pod, container);
        if (string.IsNullOrEmpty(baseImage))
            return await FinishAsync(r, pod, RestorePhase.Failed, "NoImage",
                $"container {container} of pod {pod.Metadata.Name} has no image", ct).ConfigureAwait(false);

        var choice = _chooser.Choose(r, pod, container, baseImage);
        switch (choice.Kind)
        {
            case CheckpointChoiceKind.Invalid:
                return await FinishAsync(r, pod, RestorePhase.Failed, "InvalidCheckpoint", choice.Message, ct).ConfigureAwait(false);
            case CheckpointChoiceKind.NoneUsable:
                return await FallbackAsync(r, pod, choice.Message, ct, reason: "NoUsableCheckpoint").ConfigureAwait(false);
            case CheckpointChoiceKind.Wait:
            {
                var since = s.WaitingSince ?? now;
                if (now - since >= _options.ImageReferenceTimeout)
                    return await FallbackAsync(r, pod, $"gave up after {_options.ImageReferenceTimeout}: {choice.Message}", ct,
                        reason: "NoCheckpointImage").ConfigureAwait(false);
                if (s.Message != choice.Message)
                {
                    await WriteAsync(r, st =>
                    {
                        st.Message = choice.Message;
                        st.CheckpointName = choice.Checkpoint?.Metadata.Name ?? st.CheckpointName;
                        st.SetCondition(ConditionTypes.Progressing, ConditionStatus.True, "WaitingForCheckpointImage", choice.Message,
                            r.Metadata.Generation, now);
                    }, ct).ConfigureAwait(false);
                }
                return Step.Stop(ReconcileResult.RequeueAfter(since + _options.ImageReferenceTimeout - now));
            }
        }

        var checkpoint = choice.Checkpoint!.Metadata.Name!;
        var message = $"preparing images on node {s.Node}: checkpoint image {choice.Image} and base image {baseImage}";
        var written = await WriteAsync(r, st =>
        {
            st.Phase = RestorePhase.Restoring;
            st.CheckpointName = checkpoint;
            st.Image = choice.Image;
            st.OriginalImage = baseImage;
            st.WaitingSince = KubeTime.Truncate(now);
            (st.Timeline ??= new RestoreTimeline()).CheckpointChosenAt = KubeTime.Truncate(now);
            st.RemoveCondition(RestoreConditions.ImagesReady);
            st.Message = message;
            st.SetCondition(ConditionTypes.Progressing, ConditionStatus.True, "PreparingImages", message, r.Metadata.Generation, now);
        }, ct).ConfigureAwait(false);
        Log.CheckpointSelected(_logger, r.Metadata.Namespace!, r.Metadata.Name!, checkpoint, choice.Image!);
        _events.Normal(written, "CheckpointSelected",
            $"restoring container {container} of pod {pod.Metadata.Name} from checkpoint {checkpoint} (image {choice.Image}, base image {baseImage})");
        return Step.Next(written);
    }

    private Step WaitForImages(Restore r, DateTimeOffset now)
    {
        var since = r.Status!.WaitingSince ?? now;
        return Step.Stop(ReconcileResult.RequeueAfter(since + _options.ImagePreparationTimeout - now));
    }

    private string ImagesOverdueNote(Restore r, Condition? ready) => (ready is null
        ? $"no crsc on node {r.Status!.Node} reported the images ready within {_options.ImagePreparationTimeout}; patching anyway, the kubelet pulls them"
        : $"the images are still not ready on node {r.Status!.Node} after {_options.ImagePreparationTimeout} ({ready.Message}); patching anyway, the kubelet pulls them")
        + CrossNodeNote(r);

    /// <summary>
    /// When the chosen checkpoint was taken on another node than the pod's (a drained node's pod restored elsewhere):
    /// that node can only pull its image from a registry (<c>images.registry</c>); without one, restoring on another
    /// node waits for cross-node restore (Step 14).
    /// </summary>
    private string CrossNodeNote(Restore r)
    {
        if (r.Status?.CheckpointName is not { Length: > 0 } name
            || _checkpoints.Get(new ObjectKey(r.Metadata.Namespace, name))?.Status?.Node is not { Length: > 0 } from
            || r.Status.Node is not { Length: > 0 } to || from == to)
            return "";
        return $"; checkpoint {name} was taken on node {from}, the pod runs on node {to}: node {to} pulls its image from node {from}'s "
               + $"endpoint unless it has a copy (a pod annotated {Annotations.RestoreFrom} has it fetched to its node first; "
               + "a schedule with replicate: Registry keeps one in the registry)";
    }

    // ---- the attempt ----

    private async Task<Step> BeginAttemptAsync(Restore r, Pod pod, string container, string? note, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        var attempt = (r.Status!.Attempts ?? 0) + 1;
        var message = $"attempt {attempt} of {r.Spec.MaxAttempts}: container {container} of pod {pod.Metadata.Name} restores from checkpoint {r.Status.CheckpointName}";
        // counted and stamped before the patch: a leader that stops after this write leaves a patch to make, not to count
        var written = await WriteAsync(r, st =>
        {
            st.Attempts = attempt;
            st.PatchedAt = KubeTime.Truncate(now);
            var timeline = st.Timeline ??= new RestoreTimeline();
            timeline.PatchedAt = KubeTime.Truncate(now);
            if (st.FindCondition(RestoreConditions.ImagesReady) is { Status: ConditionStatus.True } ready) timeline.ImagesReadyAt = ready.LastTransitionTime;
            timeline.RunningAt = null;
            st.Message = message;
            st.SetCondition(ConditionTypes.Progressing, ConditionStatus.True, "Restoring", message, r.Metadata.Generation, now);
        }, ct).ConfigureAwait(false);
        if (note is not null)
        {
            Log.ImagesNotPrepared(_logger, r.Metadata.Namespace!, r.Metadata.Name!, note);
            _events.Warning(written, "ImagesNotPrepared", note);
        }
        await PatchToCheckpointAsync(written, pod, container, ct).ConfigureAwait(false);
        return Step.Stop(ReconcileResult.RequeueAfter(_options.RestoreTimeout));
    }

    /// <summary>
    /// The attempt is counted (<paramref name="r"/> is the server's) and the cached pod does not show its patch: the
    /// server's pod does when the cache is only behind (nothing to do but wait for its event), else the patch is made now.
    /// </summary>
    private async Task<Step> PatchCountedAttemptAsync(Restore r, Pod cached, string container, CancellationToken ct)
    {
        Pod pod;
        try
        {
            pod = await _podsApi.GetAsync(cached.Metadata.Namespace, cached.Metadata.Name!, ct).ConfigureAwait(false);
        }
        catch (NotFoundException)
        {
            return await PodLostAsync(r, ct).ConfigureAwait(false);
        }
        if (!RestorePods.IsLive(pod) || pod.Metadata.Uid != (r.Status!.PodUid ?? cached.Metadata.Uid))
            return await PodLostAsync(r, ct).ConfigureAwait(false);
        if (_backend.Started(r, pod, container))
            return Step.Stop(ReconcileResult.RequeueAfter(LookAgainIn(_options.RestoreTimeout)));
        await PatchToCheckpointAsync(r, pod, container, ct).ConfigureAwait(false);
        return Step.Stop(ReconcileResult.RequeueAfter(_options.RestoreTimeout));
    }

    /// <summary>
    /// Patches the container to the checkpoint image. Conditional on <paramref name="pod"/>'s resourceVersion (a 409
    /// when the kubelet or anyone wrote since it was read), so that the status recorded as the replaced container's is
    /// exactly the one the server held when it took the patch.
    /// </summary>
    private async Task PatchToCheckpointAsync(Restore r, Pod pod, string container, CancellationToken ct)
    {
        var s = r.Status!;
        await _backend.StartAsync(r, pod, container, ct).ConfigureAwait(false);
        Log.Patched(_logger, r.Metadata.Namespace!, r.Metadata.Name!, pod.Metadata.Name!, container, s.Image!, s.Attempts ?? 0);
        _events.Normal(r, "Restoring",
            $"attempt {s.Attempts} of {r.Spec.MaxAttempts}: patched container {container} of pod {pod.Metadata.Name} to checkpoint image {s.Image}");
        _events.Normal(pod, "Restoring",
            $"container {container} restores from checkpoint {s.CheckpointName} (image {s.Image}) for Restore {r.Metadata.Name}; original image {s.OriginalImage}");
    }

    /// <summary>
    /// The restored container has neither run nor failed: looked at again at the restore timeout, or after the status
    /// grace when the status still describes the container the patch replaced (a change of the pod wakes it sooner).
    /// </summary>
    private Step WaitForContainer(Restore r, DateTimeOffset now, bool lookAgain)
    {
        var deadline = r.Status!.PatchedAt!.Value + _options.RestoreTimeout;
        var wake = lookAgain ? Min(now + LookAgainIn(_options.RestoreTimeout), deadline) : deadline;
        return Step.Stop(ReconcileResult.RequeueAfter(wake > now ? wake - now : TimeSpan.Zero));
    }

    /// <summary><see cref="RestoreReconcilerOptions.StatusGrace"/>, or <paramref name="otherwise"/> when it is zero.</summary>
    private TimeSpan LookAgainIn(TimeSpan otherwise) => _options.StatusGrace > TimeSpan.Zero ? _options.StatusGrace : otherwise;

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private async Task<Step> AttemptFailedAsync(Restore r, Pod pod, string detail, CancellationToken ct)
    {
        var s = r.Status!;
        var attempts = s.Attempts ?? 0;
        var max = r.Spec.MaxAttempts;
        var failure = $"attempt {attempts} of {max} failed: {detail}";
        Log.AttemptFailed(_logger, r.Metadata.Namespace!, r.Metadata.Name!, attempts, max, detail);
        if (attempts >= max)
        {
            _events.Warning(pod, "RestoreAttemptFailed", $"Restore {r.Metadata.Name}: {failure}");
            return await FallbackAsync(r, pod, $"the restore failed {attempts} times; last: {detail}", ct).ConfigureAwait(false);
        }
        if (RestorePods.Controller(pod) is null)
        {
            _events.Warning(pod, "RestoreAttemptFailed", $"Restore {r.Metadata.Name}: {failure}");
            return await FallbackAsync(r, pod,
                $"{failure}; pod {pod.Metadata.Name} has no controller to make a new pod, so the restore cannot be tried again", ct)
                .ConfigureAwait(false);
        }

        // status first: patchedAt cleared on a pod still patched by this restore marks it "to be replaced"
        var now = _time.GetUtcNow();
        var message = $"{failure}; deleting pod {pod.Metadata.Name} so that its replacement is restored";
        var written = await WriteAsync(r, st =>
        {
            st.PatchedAt = null;
            st.Message = message;
            st.SetCondition(ConditionTypes.Degraded, ConditionStatus.True, "AttemptFailed", failure, r.Metadata.Generation, now);
            st.SetCondition(ConditionTypes.Progressing, ConditionStatus.True, "ReplacingPod", message, r.Metadata.Generation, now);
        }, ct).ConfigureAwait(false);
        _events.Warning(written, "RestoreAttemptFailed", message);
        _events.Warning(pod, "RestoreAttemptFailed", $"Restore {r.Metadata.Name}: {failure}");
        return Step.Next(written);
    }

    private async Task<Step> DeletePodAsync(Restore r, Pod pod, CancellationToken ct)
    {
        try
        {
            await _podsApi.DeleteAsync(pod.Metadata.Namespace, pod.Metadata.Name!, new DeleteOptions(PreconditionUid: pod.Metadata.Uid), ct)
                .ConfigureAwait(false);
        }
        catch (NotFoundException)
        {
        }
        Log.PodDeleted(_logger, r.Metadata.Namespace!, r.Metadata.Name!, pod.Metadata.Name!);
        _events.Normal(r, "PodDeleted",
            $"deleted pod {pod.Metadata.Name}; its replacement is restored next (attempt {(r.Status!.Attempts ?? 0) + 1} of {r.Spec.MaxAttempts})");
        // the pod's deletion (or its replacement) wakes the reconcile; this is the backstop
        return Step.Stop(ReconcileResult.RequeueAfter(_options.PodTimeout));
    }

    // ---- endings ----

    /// <summary>The restore cannot (or can no longer) succeed: <c>ColdStart</c> → FellBack, <c>Fail</c> → Failed.</summary>
    /// <param name="also">more to record in the status write that ends the Restore</param>
    private async Task<Step> FallbackAsync(Restore r, Pod? pod, string why, CancellationToken ct, string reason = "RestoreFailed",
        Action<RestoreStatus>? also = null)
    {
        if (r.Spec.Fallback == RestoreFallback.Fail)
            return await FinishAsync(r, pod, RestorePhase.Failed, reason, $"{why}; fallback Fail: the pod is left as it is", ct, also)
                .ConfigureAwait(false);

        var s = r.Status!;
        var container = pod is null ? null : RestoreStages.ResolveContainer(r, pod, out _);
        var patched = container is not null && _backend.Started(r, pod!, container);
        if (!patched)
            return await FinishAsync(r, pod, RestorePhase.FellBack, "ColdStart",
                $"{why}; fallback ColdStart: the container keeps its own image and starts without its state", ct, also).ConfigureAwait(false);

        // the original image back
        await _backend.UndoAsync(r, pod!, container!, ct).ConfigureAwait(false);
        Log.ColdStart(_logger, r.Metadata.Namespace!, r.Metadata.Name!, pod!.Metadata.Name!, s.OriginalImage!);
        return await FinishAsync(r, pod, RestorePhase.FellBack, "ColdStart",
            $"{why}; fallback ColdStart: the original image {s.OriginalImage} is back and the container starts without its state", ct, also)
            .ConfigureAwait(false);
    }

    private async Task<Step> FinishAsync(Restore r, Pod? pod, RestorePhase phase, string reason, string message, CancellationToken ct,
        Action<RestoreStatus>? also = null)
    {
        var now = _time.GetUtcNow();
        var written = await WriteAsync(r, st =>
        {
            st.Phase = phase;
            st.Message = message;
            st.CompletedAt = KubeTime.Truncate(now);
            st.StartedAt ??= KubeTime.Truncate(now);
            st.Attempts ??= 0;
            st.WaitingSince = null;
            var ok = phase == RestorePhase.Restored;
            st.SetCondition(ConditionTypes.Ready, ok ? ConditionStatus.True : ConditionStatus.False, reason, message, r.Metadata.Generation, now);
            st.SetCondition(ConditionTypes.Progressing, ConditionStatus.False, reason, message, r.Metadata.Generation, now);
            if (ok) st.RemoveCondition(ConditionTypes.Degraded);
            else st.SetCondition(ConditionTypes.Degraded, ConditionStatus.True, reason, message, r.Metadata.Generation, now);
            also?.Invoke(st);
        }, ct).ConfigureAwait(false);
        Log.Finished(_logger, r.Metadata.Namespace!, r.Metadata.Name!, phase.ToString(), message);
        var eventReason = phase switch
        {
            RestorePhase.Restored => "Restored",
            RestorePhase.FellBack => "FellBack",
            _ => "RestoreFailed",
        };
        if (phase == RestorePhase.Restored)
        {
            _events.Normal(written, eventReason, message);
            if (pod is not null) _events.Normal(pod, eventReason, $"Restore {r.Metadata.Name}: {message}");
        }
        else
        {
            _events.Warning(written, eventReason, message);
            if (pod is not null) _events.Warning(pod, eventReason, $"Restore {r.Metadata.Name}: {message}");
        }
        return Step.Stop(ReconcileResult.Done);
    }

    /// <summary>
    /// Writes the status from <paramref name="r"/>'s resourceVersion. A 409 (the node's preparer wrote, or the cache was
    /// behind) is thrown: <see cref="ReconcileAsync"/> decides again from the fresh object, so neither writer loses the
    /// other's fields.
    /// </summary>
    private async Task<Restore> WriteAsync(Restore r, Action<RestoreStatus> change, CancellationToken ct)
    {
        var copy = StatusWriter.DeepCopy(_restoresApi.Type, r);
        copy.Status ??= new RestoreStatus();
        change(copy.Status);
        copy.Status.ObservedGeneration = copy.Metadata.Generation;
        return await _restoresApi.UpdateStatusAsync(copy, ct).ConfigureAwait(false);
    }

    private static string Describe(RestoreTarget target) => $"{target.Kind} {target.Name}";
}

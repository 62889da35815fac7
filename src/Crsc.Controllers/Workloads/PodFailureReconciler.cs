using System.Collections.Concurrent;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Leadership;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Restores;
using Crsc.Controllers.Schedules;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Crsc.Controllers.Hosting;

namespace Crsc.Controllers.Workloads;

/// <summary>
/// The failure detector (leader-only; each node also runs a standby instance for its own pods while the leader is
/// absent, see <see cref="NodeFailureStandby"/>). Reconciles managed Deployments (<c>crsc.io/checkpoint-restore: "true"</c>): looks
/// at the containers of their pods (pod → controlling ReplicaSet → Deployment; every container but crsc's sidecar) and,
/// when one fails — terminated with a non-zero exit code, restart count grown, CrashLoopBackOff, or running with a
/// liveness probe but not ready for longer than <see cref="PodFailureOptions.LivenessThreshold"/> — creates one
/// <see cref="Restore"/> for the incident, named <c>&lt;deployment&gt;-&lt;container&gt;-&lt;yyyyMMddHHmmss&gt;</c> after
/// the time of the failure.
/// <para>
/// No storms: at most one active (Pending/Restoring) Restore per workload, a backoff between automatic Restores and a
/// cap per hour (<see cref="RestoreThrottle"/>); a held-back incident gets a Warning Event on the Deployment saying why
/// and when crsc acts again. Restarts crsc causes are not failures: while a pod carries <c>crsc.io/restore</c> of a
/// Restore that is active, or turned Restored less than <see cref="PodFailureOptions.RestoredGracePeriod"/> ago, its
/// containers' restart counts are taken as the new baseline and nothing is reported.
/// </para>
/// <para>
/// A failure counts as handled by a Restore of the same pod (its <c>crsc.io/failed-pod</c>, its <c>status.podName</c>,
/// or the pod's <c>crsc.io/restore</c>) when it happened before that Restore ended. Everything that decides is read from
/// the API objects (Restores, their times, the pod's status and annotations), and names are deterministic, so a new
/// leader neither repeats a Restore nor misses one; memory only holds restart counts (signal b) and the Restores this
/// instance created that the cache does not show yet.
/// </para>
/// <para>
/// A Deployment that asks for the interceptor (<c>crsc.io/interceptor: "true"</c>) gets Restores only for its pods that carry
/// <c>crsc.io/interceptor-sidecar-attached: "true"</c>: a pod of the template before the sidecar has nothing holding its
/// requests while it is restored. Deployments without the annotation are watched as before.
/// </para>
/// </summary>
public sealed class PodFailureReconciler : IReconciler
{
    public const string ControllerName = "pod-failure";

    /// <summary>
    /// Sets the failure detector up with <paramref name="manager"/> (leader-only): Pods, ReplicaSets, Deployments and
    /// Restores of every namespace; keys are Deployments.
    /// </summary>
    public static ControllerSetup<PodFailureReconciler> SetUp(ControllerManager manager, PodFailureOptions? options = null, int workers = 2)
    {
        ArgumentNullException.ThrowIfNull(manager);
        var pods = manager.Informers.For(Resources.Pods);
        var replicaSets = manager.Informers.For(Resources.ReplicaSets);
        var deployments = manager.Informers.For(Resources.Deployments);
        var restores = manager.Informers.For(CrscResources.Restores);
        var reconciler = new PodFailureReconciler(manager.Kube, pods, replicaSets, deployments, restores, manager.Events,
            options ?? new PodFailureOptions(), manager.Time, manager.Loggers.CreateLogger<PodFailureReconciler>());
        var controller = manager.NewController(ControllerName, reconciler, workers);
        controller.Watch(deployments);
        controller.Watch(pods, p => reconciler.WorkloadOf(p) is { } k ? [k] : []);
        controller.Watch(replicaSets, rs => DeploymentOf(rs) is { } k ? [k] : []);
        controller.Watch(restores, r => TargetOf(r) is { } k ? [k] : []);
        return new(manager.Add(controller, leaderOnly: true), reconciler);
    }

    /// <summary>The name of the node's standby instance (<see cref="SetUpStandby"/>).</summary>
    public const string StandbyControllerName = "pod-failure-standby";

    /// <summary>
    /// Sets up this node's standby instance of the failure detector with <paramref name="manager"/> (node work): the same
    /// reconciler over this node's pods only (the informer the node agent keeps anyway), Deployments and Restores; it
    /// follows the containers' restart counts all the time and creates Restores only while <paramref name="standby"/> is
    /// active. The Restore it creates has the name the leader would give the incident, so when both act one create
    /// meets AlreadyExists. ReplicaSets are not watched (a pod's Deployment is read from the names, see
    /// <see cref="WorkloadOf"/>): no cluster-wide ReplicaSet cache on every node.
    /// </summary>
    public static ControllerSetup<PodFailureReconciler> SetUpStandby(ControllerManager manager, NodeStandbyScope standby,
        PodFailureOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(standby);
        var pods = manager.Informers.PodsOnNode(standby.NodeName);
        var deployments = manager.Informers.For(Resources.Deployments);
        var restores = manager.Informers.For(CrscResources.Restores);
        var reconciler = new PodFailureReconciler(manager.Kube, pods, null, deployments, restores, manager.Events,
            options ?? new PodFailureOptions(), manager.Time, manager.Loggers.CreateLogger<PodFailureReconciler>(), standby);
        var controller = manager.NewController(StandbyControllerName, reconciler);
        // a Deployment's change concerns this node only through its pods here
        controller.Watch(deployments, d => reconciler.HasPodsHere(d.Metadata.Key) ? [d.Metadata.Key] : []);
        controller.Watch(pods, p => reconciler.WorkloadOf(p) is { } k ? [k] : []);
        controller.Watch(restores, r => TargetOf(r) is { } k && reconciler.HasPodsHere(k) ? [k] : []);
        return new(manager.Add(controller, leaderOnly: false), reconciler);
    }

    /// <summary>Whether the pod cache holds a pod of <paramref name="deployment"/> (for a node's standby: one on this node).</summary>
    public bool HasPodsHere(ObjectKey deployment) => _pods.ByIndex(RestoreReconciler.PodsByDeploymentIndex, IndexValue(deployment)).Count > 0;

    /// <summary>Index of the Restore informer: <c>&lt;namespace&gt;/&lt;deployment&gt;</c> of <c>spec.target</c> (internal, not API).</summary>
    private const string ByTargetIndex = "crsc.io/restores-by-deployment";

    public const string RestoreCreatedReason = "RestoreCreated";
    public const string RestoreSuppressedReason = "RestoreSuppressed";

    /// <summary>How long a Restore created here is remembered while the cache does not show it yet.</summary>
    private static readonly TimeSpan CreatedMemory = TimeSpan.FromMinutes(5);

    private readonly IKubeResourceClient<Restore> _restoresApi;
    private readonly Informer<Pod> _pods;
    private readonly Informer<ReplicaSet>? _replicaSets;
    private readonly Informer<Deployment> _deployments;
    private readonly Informer<Restore> _restores;
    private readonly IEventRecorder _events;
    private readonly PodFailureOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly NodeStandbyScope? _standby;
    private readonly ConcurrentDictionary<ObjectKey, WorkloadMemory> _memory = new();

    public PodFailureReconciler(
        IKubeApi kube,
        Informer<Pod> pods,
        Informer<ReplicaSet>? replicaSets,
        Informer<Deployment> deployments,
        Informer<Restore> restores,
        IEventRecorder events,
        PodFailureOptions options,
        TimeProvider time,
        ILogger? logger = null,
        NodeStandbyScope? standby = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        options.Validate();
        _restoresApi = kube.Resource(CrscResources.Restores);
        _pods = pods;
        _replicaSets = replicaSets;
        _deployments = deployments;
        _restores = restores;
        _events = events;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        _standby = standby;
        // the Restore reconciler's index of the same name and function: on a shared informer it is kept once
        pods.TryAddIndexer(RestoreReconciler.PodsByDeploymentIndex, RestorePods.DeploymentKeys);
        restores.TryAddIndexer(ByTargetIndex, r => TargetOf(r) is { } k ? [IndexValue(k)] : []);
    }

    public PodFailureOptions Options => _options;

    // ---- mapping objects to the workload key (for the controller's watches) ----

    /// <summary>
    /// The Deployment a pod belongs to: its controlling ReplicaSet's controlling Deployment when the ReplicaSet is
    /// cached, else (or without a ReplicaSet cache) by name (the ReplicaSet's name minus the pod's
    /// <c>pod-template-hash</c>, as the Deployment controller names them). Null for pods of anything else.
    /// </summary>
    public ObjectKey? WorkloadOf(Pod pod)
    {
        var rs = ControllingReplicaSet(pod);
        if (rs is null) return null;
        if (_replicaSets?.Get(new ObjectKey(pod.Metadata.Namespace, rs.Name)) is { } cached)
        {
            var owner = Controlling(cached.Metadata, "Deployment");
            return owner is null ? null : new ObjectKey(pod.Metadata.Namespace, owner.Name);
        }
        return DeploymentOf(pod);
    }

    /// <summary>The Deployment a pod belongs to by the names alone (see <see cref="WorkloadOf"/>).</summary>
    public static ObjectKey? DeploymentOf(Pod pod) =>
        ControllingReplicaSet(pod) is not null && RestorePods.DeploymentOf(pod) is { Length: > 0 } d
            ? new ObjectKey(pod.Metadata.Namespace, d)
            : null;

    /// <summary>The Deployment a Restore targets.</summary>
    public static ObjectKey? TargetOf(Restore restore) =>
        restore.Spec.Target is { Kind: RestoreTargetKind.Deployment, Name.Length: > 0 } t
            ? new ObjectKey(restore.Metadata.Namespace, t.Name)
            : null;

    /// <summary>The Deployment that controls a ReplicaSet.</summary>
    public static ObjectKey? DeploymentOf(ReplicaSet rs) =>
        Controlling(rs.Metadata, "Deployment") is { } owner ? new ObjectKey(rs.Metadata.Namespace, owner.Name) : null;

    /// <summary>
    /// <c>&lt;deployment&gt;-&lt;container&gt;-&lt;yyyyMMddHHmmss&gt;</c> (UTC), shortened with a hash to fit 253 the way
    /// checkpoint names are (<see cref="ScheduleNames.CheckpointName"/>).
    /// </summary>
    public static string RestoreName(string deployment, string container, DateTimeOffset at) =>
        ScheduleNames.CheckpointName(deployment, container, at);

    // ---- reconcile ----

    public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var deployment = _deployments.Get(key);
        if (deployment is null || deployment.Metadata.DeletionTimestamp is not null)
        {
            _memory.TryRemove(key, out _);
            return ReconcileResult.Done;
        }
        var managed = ManagedWorkload.Read(deployment);
        if (!managed.Managed)
        {
            if (_memory.TryRemove(key, out _) || managed.Problem is not null)
                Log.NotMonitored(_logger, key.Namespace ?? "", key.Name, managed.Problem ?? "not annotated");
            return ReconcileResult.Done;
        }

        var memory = _memory.GetOrAdd(key, _ => new WorkloadMemory());
        var now = _time.GetUtcNow();
        var restores = RestoresOf(key, memory, now);
        var byName = restores.ToDictionary(r => r.Metadata.Name ?? "", StringComparer.Ordinal);
        var pods = PodsOf(deployment);
        memory.Forget(pods.Select(p => p.Metadata.Uid ?? ""));

        var incidents = new List<ContainerFailure>();
        DateTimeOffset? recheck = null;
        var interceptor = InterceptorInjection.Wanted(deployment);
        foreach (var pod in pods)
        {
            if (pod.Metadata.DeletionTimestamp is not null || pod.Status?.Phase is "Succeeded" or "Failed") continue;
            if (interceptor && pod.Metadata.Annotations?.GetValueOrDefault(Annotations.InterceptorSidecarAttached) != "true")
            {
                // a pod of a template without the sidecar (the rollout that adds it is under way): nothing would hold its
                // requests during a restore, so it is left to the kubelet and the rollout
                if (memory.NotIntercepted.Add(pod.Metadata.Uid ?? ""))
                    Log.NotIntercepted(_logger, key.Namespace ?? "", pod.Metadata.Name ?? "", key.Name);
                continue;
            }
            var statuses = pod.Status?.ContainerStatuses;
            if (statuses is null) continue;
            var ownRestore = CrscRestoring(pod, byName, now);
            foreach (var status in statuses)
            {
                if (_options.IgnoredContainers.Contains(status.Name)) continue;
                var spec = pod.Spec.Containers.FirstOrDefault(c => c.Name == status.Name);
                if (spec is null) continue;
                var seen = memory.Observe(pod.Metadata.Uid ?? "", status, now, out var previous);
                if (ownRestore is not null && !RestartedSinceRestored(byName[ownRestore], status))
                {
                    // crsc restarted it (image patch): the count seen now is the baseline, nothing is a failure
                    if (seen.PendingRestart is not null || previous != status.RestartCount)
                        Log.OwnRestart(_logger, key.Namespace ?? "", pod.Metadata.Name ?? "", status.Name, ownRestore, status.RestartCount);
                    seen.PendingRestart = null;
                    continue;
                }
                if (previous is { } before && status.RestartCount > before)
                    seen.PendingRestart ??= ContainerFailures.Restart(pod, status, before, now);

                var failure = ContainerFailures.FromStatus(pod, spec, status, now, _options.LivenessThreshold, seen.FirstSeen,
                    out var recheckAt);
                if (recheckAt is { } at && (recheck is null || at < recheck)) recheck = at;

                if (seen.PendingRestart is { } restart && (Handled(restart, pod, restores) || Stale(restart, now)))
                    seen.PendingRestart = null;
                if (failure is not null && (Handled(failure, pod, restores) || Stale(failure, now))) failure = null;
                if ((failure ?? seen.PendingRestart) is { } incident) incidents.Add(incident);
            }
        }

        if (incidents.Count == 0)
        {
            memory.LastSuppression = null;
            return recheck is { } r ? ReconcileResult.RequeueAfter(Max(r - now, TimeSpan.FromSeconds(1))) : ReconcileResult.Done;
        }
        // a node's standby instance has followed the restart counts; it acts only while the leader is absent (the
        // takeover enqueues every workload with pods here, so what was seen now is decided then)
        if (_standby is { } standby && !standby.Active()) return ReconcileResult.Done;

        var first = incidents.OrderBy(i => i.At).ThenBy(i => i.Pod, StringComparer.Ordinal).First();
        if (restores.FirstOrDefault(IsActive) is { } active)
        {
            Suppress(deployment, memory, first,
                $"restore {active.Metadata.Name} of this workload is in progress (at most one at a time); crsc looks again when it finishes");
            return ReconcileResult.Done; // the Restore's change enqueues the workload
        }
        var throttle = RestoreThrottle.Decide(
            restores.Where(IsAutomatic).Select(r => r.Metadata.CreationTimestamp ?? now), now, _options);
        if (!throttle.Allows(now))
        {
            Suppress(deployment, memory, first,
                $"{throttle.Reason}; the next restore may start at {RestoreThrottle.Text(throttle.NextAllowed)}");
            return ReconcileResult.RequeueAfter(Max(throttle.NextAllowed - now, TimeSpan.FromSeconds(1)));
        }

        await CreateRestoreAsync(deployment, memory, first, ct).ConfigureAwait(false);
        memory.LastSuppression = null;
        // more incidents wait for this restore to finish (its status change enqueues the workload)
        return ReconcileResult.Done;
    }

    private async Task CreateRestoreAsync(Deployment deployment, WorkloadMemory memory, ContainerFailure incident,
        CancellationToken ct)
    {
        var ns = deployment.Metadata.Namespace!;
        var name = RestoreName(deployment.Metadata.Name!, incident.Container, incident.At);
        var restore = NewRestore(deployment, name, incident.Container, new()
        {
            [Annotations.FailedPod] = incident.Pod,
            // the start of the restore's timeline (status.timeline.failedAt)
            [Annotations.FailedAt] = KubeTime.FormatTime(incident.At),
        }, _options.Fallback, _options.MaxAttempts);
        Restore created;
        try
        {
            created = await _restoresApi.CreateAsync(restore, ct).ConfigureAwait(false);
        }
        catch (AlreadyExistsException)
        {
            // the same incident (same container, same second), created by an earlier leader or reconcile
            Log.RestoreExists(_logger, ns, name);
            try
            {
                memory.Remember(await _restoresApi.GetAsync(ns, name, ct).ConfigureAwait(false));
            }
            catch (NotFoundException)
            {
                // deleted in between: the next reconcile decides again
            }
            return;
        }
        memory.Remember(created);
        Log.RestoreCreated(_logger, ns, name, incident.Pod, incident.Container, incident.Signal.ToString(), incident.Description);
        _events.Normal(deployment, RestoreCreatedReason, $"{incident.Description}; created Restore {name}");
    }

    /// <summary>
    /// An automatic Restore of <paramref name="deployment"/>'s <paramref name="container"/>: labelled with the workload,
    /// owned by the Deployment (not its controller, not blocking its deletion), the checkpoint chosen by the Restore
    /// path unless <paramref name="checkpointName"/> names one.
    /// </summary>
    internal static Restore NewRestore(Deployment deployment, string name, string container, Dictionary<string, string> annotations,
        RestoreFallback fallback, int maxAttempts, string? checkpointName = null) => new()
    {
        Metadata = new ObjectMeta
        {
            Name = name,
            Namespace = deployment.Metadata.Namespace,
            Labels = new() { [Labels.Workload] = ScheduleNames.LabelValue(deployment.Metadata.Name!) },
            Annotations = annotations,
            OwnerReferences = string.IsNullOrEmpty(deployment.Metadata.Uid)
                ? null
                : [new OwnerReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = deployment.Metadata.Name!, Uid = deployment.Metadata.Uid }],
        },
        Spec = new RestoreSpec
        {
            Target = new RestoreTarget { Kind = RestoreTargetKind.Deployment, Name = deployment.Metadata.Name! },
            Container = container,
            CheckpointName = checkpointName,
            Fallback = fallback,
            MaxAttempts = maxAttempts,
        },
    };

    private void Suppress(Deployment deployment, WorkloadMemory memory, ContainerFailure incident, string why)
    {
        var message = $"{incident.Description}; not restoring now: {why}";
        if (memory.LastSuppression == message) return;
        memory.LastSuppression = message;
        Log.RestoreSuppressed(_logger, deployment.Metadata.Namespace ?? "", deployment.Metadata.Name ?? "", message);
        _events.Warning(deployment, RestoreSuppressedReason, message);
    }

    // ---- what the API objects say ----

    /// <summary>The pods of <paramref name="deployment"/>, by name; a cached ReplicaSet must be controlled by it.</summary>
    private List<Pod> PodsOf(Deployment deployment)
    {
        var key = deployment.Metadata.Key;
        return [.. _pods.ByIndex(RestoreReconciler.PodsByDeploymentIndex, IndexValue(key))
            .Where(p => WorkloadOf(p) == key && OwnedByThisDeployment(p, deployment))
            .OrderBy(p => p.Metadata.Name, StringComparer.Ordinal)];
    }

    private bool OwnedByThisDeployment(Pod pod, Deployment deployment)
    {
        // a ReplicaSet of an earlier Deployment of the same name (deleted and created again) is not this one's
        if (ControllingReplicaSet(pod) is not { } rsRef) return false;
        if (_replicaSets?.Get(new ObjectKey(pod.Metadata.Namespace, rsRef.Name)) is not { } rs) return true;
        var owner = Controlling(rs.Metadata, "Deployment");
        return owner is not null && (string.IsNullOrEmpty(owner.Uid) || string.IsNullOrEmpty(deployment.Metadata.Uid)
                                     || owner.Uid == deployment.Metadata.Uid);
    }

    /// <summary>The workload's Restores: the cache's, plus those created here that it does not show yet.</summary>
    private List<Restore> RestoresOf(ObjectKey key, WorkloadMemory memory, DateTimeOffset now)
    {
        var cached = _restores.ByIndex(ByTargetIndex, IndexValue(key));
        var names = cached.Select(r => r.Metadata.Name).ToHashSet(StringComparer.Ordinal);
        memory.Created.RemoveAll(r => names.Contains(r.Metadata.Name) || now - (r.Metadata.CreationTimestamp ?? now) > CreatedMemory);
        return [.. cached, .. memory.Created];
    }

    /// <summary>
    /// The Restore that explains what the pod's containers do now: the pod carries its name in <c>crsc.io/restore</c>
    /// and it is active, or turned Restored (or FellBack, which patches the image back) within the grace period.
    /// </summary>
    private string? CrscRestoring(Pod pod, Dictionary<string, Restore> restores, DateTimeOffset now)
    {
        if (pod.Metadata.Annotations?.GetValueOrDefault(Annotations.Restore) is not { Length: > 0 } name) return null;
        if (!restores.TryGetValue(name, out var restore)) return null;
        if (IsActive(restore)) return name;
        return restore.Status?.Phase is RestorePhase.Restored or RestorePhase.FellBack
               && now - EndedAt(restore) < _options.RestoredGracePeriod
            ? name
            : null;
    }

    /// <summary>
    /// Whether a Restore of the same pod and container covers the failure: it is active, or the failure happened before
    /// it ended (plus the grace period after Restored/FellBack when the pod carries its name: its own restarts).
    /// </summary>
    private bool Handled(ContainerFailure failure, Pod pod, List<Restore> restores)
    {
        foreach (var r in restores)
        {
            if (!Concerns(r, pod, failure.Container)) continue;
            if (IsActive(r)) return true;
            var end = EndedAt(r);
            // a pod crsc restored in place: its restarts in the grace period were crsc's (as CrscRestoring says while
            // it lasts; a leader that comes later reads the same from the failure's time) — unless the Restore recorded
            // the instance it restored and the container has restarted since: that is a new failure
            if (r.Status?.Phase is RestorePhase.Restored or RestorePhase.FellBack
                && pod.Metadata.Annotations?.GetValueOrDefault(Annotations.Restore) == r.Metadata.Name
                && !(RestorePods.StatusOf(pod, failure.Container) is { } status && RestartedSinceRestored(r, status)))
                end += _options.RestoredGracePeriod;
            if (failure.At <= end) return true;
        }
        return false;
    }

    /// <summary>
    /// The container restarted after <paramref name="restore"/> restored it: the Restore recorded the restored instance's
    /// restart count and the status now shows more. (FellBack and older Restores record none: their time window applies.)
    /// </summary>
    private static bool RestartedSinceRestored(Restore restore, ContainerStatus status) =>
        restore.Status is { Phase: RestorePhase.Restored, RestoredRestartCount: { } restored }
        && (restore.Spec.Container is not { Length: > 0 } c || c == status.Name)
        && status.RestartCount > restored;

    private bool Stale(ContainerFailure failure, DateTimeOffset now) => !failure.Ongoing && now - failure.At > _options.IncidentWindow;

    /// <summary>Whether <paramref name="restore"/> is about this pod's container: by name, or for the whole workload.</summary>
    private static bool Concerns(Restore restore, Pod pod, string container)
    {
        if (restore.Spec.Container is { Length: > 0 } c && c != container) return false;
        var podName = pod.Metadata.Name;
        if (pod.Metadata.Annotations?.GetValueOrDefault(Annotations.Restore) == restore.Metadata.Name) return true;
        var failed = restore.Metadata.Annotations?.GetValueOrDefault(Annotations.FailedPod);
        var restoring = restore.Status?.PodName;
        if (string.IsNullOrEmpty(failed) && string.IsNullOrEmpty(restoring)) return true; // a user's, for the workload
        return failed == podName || restoring == podName;
    }

    public static bool IsActive(Restore restore) => restore.Status?.Phase is null or RestorePhase.Pending or RestorePhase.Restoring;

    /// <summary>Made by this reconciler (not by a user): it names the failed pod.</summary>
    private static bool IsAutomatic(Restore restore) =>
        restore.Metadata.Annotations?.ContainsKey(Annotations.FailedPod) == true;

    /// <summary>When a finished Restore finished: <c>status.completedAt</c>, else its last condition change, else its creation.</summary>
    private DateTimeOffset EndedAt(Restore restore) =>
        restore.Status?.CompletedAt
        ?? restore.Status?.Conditions?.Select(c => (DateTimeOffset?)c.LastTransitionTime).Max()
        ?? restore.Metadata.CreationTimestamp
        ?? _time.GetUtcNow();

    private static OwnerReference? ControllingReplicaSet(Pod pod) => Controlling(pod.Metadata, "ReplicaSet");

    private static OwnerReference? Controlling(ObjectMeta meta, string kind) =>
        meta.OwnerReferences?.FirstOrDefault(o => o.Controller == true && o.Kind == kind && !string.IsNullOrEmpty(o.Name));

    private static string IndexValue(ObjectKey key) => $"{key.Namespace}/{key.Name}";

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    // ---- memory ----

    /// <summary>What one workload's reconciles remember between them. Used by one reconcile at a time (per key).</summary>
    private sealed class WorkloadMemory
    {
        private readonly Dictionary<(string PodUid, string Container), ContainerMemory> _containers = [];

        /// <summary>Restores created here that the informer did not show yet.</summary>
        public List<Restore> Created { get; } = [];

        /// <summary>Pods (UIDs) without the interceptor sidecar of a Deployment that asks for it, logged once each.</summary>
        public HashSet<string> NotIntercepted { get; } = new(StringComparer.Ordinal);

        /// <summary>The last suppression reported (an unchanged one is not recorded again).</summary>
        public string? LastSuppression { get; set; }

        public void Remember(Restore restore)
        {
            Created.RemoveAll(r => r.Metadata.Name == restore.Metadata.Name);
            Created.Add(restore);
        }

        /// <summary>Records the container's status; <paramref name="previousCount"/> is null the first time it is seen.</summary>
        public ContainerMemory Observe(string podUid, ContainerStatus status, DateTimeOffset now, out int? previousCount)
        {
            var stateKey = StateKey(status);
            if (!_containers.TryGetValue((podUid, status.Name), out var seen))
            {
                previousCount = null;
                seen = new ContainerMemory { RestartCount = status.RestartCount, StateKey = stateKey, FirstSeen = now };
                _containers[(podUid, status.Name)] = seen;
                return seen;
            }
            previousCount = seen.RestartCount;
            seen.RestartCount = status.RestartCount;
            if (seen.StateKey != stateKey)
            {
                seen.StateKey = stateKey;
                seen.FirstSeen = now;
            }
            return seen;
        }

        public void Forget(IEnumerable<string> livePodUids)
        {
            var live = livePodUids.ToHashSet(StringComparer.Ordinal);
            foreach (var k in _containers.Keys.Where(k => !live.Contains(k.PodUid)).ToList()) _containers.Remove(k);
            NotIntercepted.IntersectWith(live);
        }

        private static string StateKey(ContainerStatus s) =>
            (s.State?.Running is not null ? "running" : s.State?.Waiting is { } w ? "waiting:" + w.Reason : s.State?.Terminated is not null ? "terminated" : "")
            + "/" + s.ContainerID + "/" + s.Ready;
    }

    private sealed class ContainerMemory
    {
        public int RestartCount { get; set; }
        public string StateKey { get; set; } = "";
        /// <summary>When the current state was first seen (dates a failure the status does not date).</summary>
        public DateTimeOffset FirstSeen { get; set; }
        /// <summary>A restart (signal b) not handled yet: kept until a Restore covers it or it is too old.</summary>
        public ContainerFailure? PendingRestart { get; set; }
    }
}

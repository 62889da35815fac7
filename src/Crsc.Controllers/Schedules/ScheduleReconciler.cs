using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Reconciling;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using KubeTime = Crsc.Api.Kubernetes.KubeTime;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Replication;

namespace Crsc.Controllers.Schedules;

public sealed record ScheduleReconcilerOptions
{
    /// <summary>This node: only schedules whose target has running pods here are run, and only for those pods.</summary>
    public required string NodeName { get; init; }

    /// <summary>Intervals below this are refused (Ready=False, <c>IntervalTooShort</c>).</summary>
    public TimeSpan MinimumInterval { get; init; } = ScheduleTiming.MinimumInterval;

    /// <summary>
    /// Failed checkpoints of a container in a row (after a success) that make the schedule Ready=False,
    /// <c>CheckpointsFailing</c>; with no success at all, the first failure does (see <see cref="CheckpointFailures"/>).
    /// </summary>
    public int FailingAfter { get; init; } = CheckpointFailures.DefaultFailingAfter;

    /// <summary>
    /// How long retention holds a node-away checkpoint (drain, shutdown, eviction) after it finished: the window in which
    /// the workload's next pod is restored from it (<c>shutdown.restoreWindow</c>); null: held by nothing but the policy.
    /// </summary>
    public TimeSpan? KeepNodeAway { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>
    /// What this node's registry does for checkpoints: a schedule with <c>replicate: Registry</c> gets the
    /// <see cref="ScheduleReconciler.ConditionReplication"/> condition from it (False, <c>NoRegistry</c>, without one).
    /// </summary>
    public CheckpointRegistryMode Registry { get; init; } = CheckpointRegistryMode.None;
}

/// <summary>
/// Runs <see cref="CheckpointSchedule"/>s on the node agent (every node, not leader-only): for a schedule whose
/// target (Deployment, StatefulSet or Pod) has running pods on this node, at each due time (see
/// <see cref="ScheduleTiming"/>) it creates one <see cref="ContainerCheckpoint"/> per selected container of each
/// such pod — named <c>&lt;workload&gt;-&lt;container&gt;-&lt;time&gt;</c>, labelled with the schedule, workload and container,
/// owned by the schedule, <c>deletionPolicy: Delete</c> — which the <see cref="ContainerCheckpointReconciler"/> then
/// executes. It writes the schedule's status (last/next times, last name, Ready) and waits with
/// <see cref="ReconcileResult.RequeueAfter"/>. Names come from the due time, so a retry after a crash or a lost
/// status write finds the checkpoint it made (AlreadyExists) instead of making a second. After each completed
/// checkpoint, <see cref="CheckpointRetention"/> deletes what the schedule's retention lets go; the checkpoints'
/// finalizer then removes their archives. Retention never deletes a checkpoint a pod of its namespace names in
/// <c>crsc.io/restore-from</c> while that pod is not terminated and its Restore has not finished (its node agent may not
/// have fetched the checkpoint yet); the pods are listed from the API only when retention would delete something (this
/// agent caches the pods of its own node only, and such a pod may be on any node). When the checkpoints it made keep failing (see <see cref="CheckpointFailures"/>)
/// the schedule is Ready=False and Degraded=True, reason <c>CheckpointsFailing</c>, naming the failures, the runtime's
/// last message and the last success, with one Warning Event when it turns; a completed checkpoint turns it back (its
/// phase change queues the schedule: the reconciler watches the checkpoints it owns).
/// </summary>
public sealed class ScheduleReconciler : IReconciler
{
    public const string ControllerName = "checkpointschedule-node";

    /// <summary>
    /// Sets the node agent's scheduler up with <paramref name="manager"/> (node work, every instance): the schedules
    /// (all namespaces), the pods of <paramref name="nodeName"/> and the ContainerCheckpoints the schedules own.
    /// </summary>
    /// <param name="keepNodeAway">see <see cref="ScheduleReconcilerOptions.KeepNodeAway"/> (null: its default)</param>
    /// <param name="registry">see <see cref="ScheduleReconcilerOptions.Registry"/></param>
    public static ControllerSetup<ScheduleReconciler> SetUp(ControllerManager manager, string nodeName,
        IScheduleRunLog? runLog = null, int workers = 2, TimeSpan? keepNodeAway = null,
        CheckpointRegistryMode registry = CheckpointRegistryMode.None)
    {
        ArgumentNullException.ThrowIfNull(manager);
        var pods = manager.Informers.PodsOnNode(nodeName);
        var schedules = manager.Informers.For(CrscResources.CheckpointSchedules);
        var checkpoints = manager.Informers.For(CrscResources.ContainerCheckpoints);
        var options = new ScheduleReconcilerOptions { NodeName = nodeName, Registry = registry };
        if (keepNodeAway is { } keep) options = options with { KeepNodeAway = keep };
        var reconciler = new ScheduleReconciler(manager.Kube, schedules, pods, checkpoints, manager.Events,
            options, manager.Time, manager.Loggers.CreateLogger<ScheduleReconciler>(), runLog);
        var controller = manager.NewController(ControllerName, reconciler, workers);
        controller.Watch(schedules);
        controller.Watch(pods, pod => SchedulesOfPod(schedules, pod));
        controller.WatchOwned(checkpoints, CheckpointSchedule.KindName, onlyController: true);
        return new(manager.Add(controller, leaderOnly: false), reconciler);
    }

    /// <summary>crsc's sidecar: never checkpointed unless a schedule names it.</summary>
    public const string InterceptorContainer = "crsc-interceptor";

    /// <summary>The index of the schedule informer by <c>&lt;namespace&gt;/&lt;kind&gt;/&lt;name&gt;</c> of the target (internal, not API).</summary>
    private const string ByTargetIndex = "crsc.io/by-target";

    public const string ReasonScheduled = "Scheduled";
    public const string ReasonSuspended = "Suspended";
    public const string ReasonInvalidSpec = "InvalidSpec";
    public const string ReasonIntervalTooShort = "IntervalTooShort";
    public const string ReasonInvalidCron = "InvalidCron";
    public const string ReasonNoNextTime = "NoNextTime";
    public const string ReasonNoContainers = "NoContainers";
    /// <summary>Ready=False and Degraded=True: the schedule's recent checkpoints failed (see <see cref="CheckpointFailures"/>).</summary>
    public const string ReasonCheckpointsFailing = "CheckpointsFailing";
    /// <summary>The Normal Event when a checkpoint completes after the schedule was failing.</summary>
    public const string ReasonCheckpointsRecovered = "CheckpointsRecovered";

    /// <summary>
    /// On a schedule with <c>replicate: Registry</c>: whether the node that runs it copies its checkpoints to a registry
    /// (True, <see cref="ReasonReplicating"/> or <see cref="ReasonPublishedToRegistry"/>) or cannot
    /// (False, <see cref="ReasonNoRegistry"/>, with a Warning Event when it turns so). Absent otherwise.
    /// </summary>
    public const string ConditionReplication = "Replication";
    public const string ReasonReplicating = "Replicating";
    public const string ReasonPublishedToRegistry = "PublishedToRegistry";
    public const string ReasonNoRegistry = "NoRegistry";

    private readonly IKubeResourceClient<CheckpointSchedule> _schedulesApi;
    private readonly IKubeResourceClient<ContainerCheckpoint> _checkpointsApi;
    private readonly IKubeResourceClient<Pod> _podsApi;
    private readonly IKubeResourceClient<Restore> _restoresApi;
    private readonly Informer<CheckpointSchedule> _schedules;
    private readonly Informer<Pod> _pods;
    private readonly Informer<ContainerCheckpoint> _checkpoints;
    private readonly IEventRecorder _events;
    private readonly ScheduleReconcilerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IScheduleRunLog? _runLog;
    // when this process first saw a schedule that has no creationTimestamp (the anchor of its slots)
    private readonly ConcurrentDictionary<string, DateTimeOffset> _firstSeen = new(StringComparer.Ordinal);

    public ScheduleReconciler(
        IKubeApi kube,
        Informer<CheckpointSchedule> schedules,
        Informer<Pod> pods,
        Informer<ContainerCheckpoint> checkpoints,
        IEventRecorder events,
        ScheduleReconcilerOptions options,
        TimeProvider time,
        ILogger? logger = null,
        IScheduleRunLog? runLog = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.NodeName);
        _runLog = runLog;
        _schedulesApi = kube.Resource(CrscResources.CheckpointSchedules);
        _checkpointsApi = kube.Resource(CrscResources.ContainerCheckpoints);
        _podsApi = kube.Resource(Resources.Pods);
        _restoresApi = kube.Resource(CrscResources.Restores);
        _schedules = schedules;
        _pods = pods;
        _checkpoints = checkpoints;
        _events = events;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        schedules.TryAddIndexer(ByTargetIndex, s => [TargetKey(s.Metadata.Namespace, s.Spec.Target.Kind.ToString(), s.Spec.Target.Name)]);
        checkpoints.TryAddIndexer(Indexers.OwnerUid, Indexers.ByOwnerUid);
    }

    /// <summary>The schedules whose target <paramref name="pod"/> is part of (for watching pods).</summary>
    public static IEnumerable<ObjectKey> SchedulesOfPod(Informer<CheckpointSchedule> schedules, Pod pod)
    {
        var ns = pod.Metadata.Namespace;
        var keys = new HashSet<string>(StringComparer.Ordinal) { TargetKey(ns, nameof(ScheduleTargetKind.Pod), pod.Metadata.Name ?? "") };
        if (ControllerOf(pod) is { } owner)
        {
            if (owner.Kind == "StatefulSet") keys.Add(TargetKey(ns, nameof(ScheduleTargetKind.StatefulSet), owner.Name));
            else if (owner.Kind == "ReplicaSet") keys.Add(TargetKey(ns, nameof(ScheduleTargetKind.Deployment), PodOwnerWorkloadResolver.WorkloadOf(pod)));
        }
        return keys.SelectMany(k => schedules.ByIndex(ByTargetIndex, k)).Select(s => EnqueueHandlers.KeyOf(s)).Distinct();
    }

    public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var schedule = _schedules.Get(key);
        if (schedule is null || schedule.Metadata.DeletionTimestamp is not null)
        {
            if (schedule?.Metadata.Uid is { } gone) _firstSeen.TryRemove(gone, out _);
            return ReconcileResult.Done;
        }
        // only the nodes running the target's pods act on a schedule (and write its status)
        var pods = TargetPods(schedule);
        if (pods.Count == 0) return ReconcileResult.Done;
        var now = _time.GetUtcNow();

        await ApplyRetentionAsync(schedule, now, ct).ConfigureAwait(false);

        var errors = schedule.Spec.Validate();
        if (errors.Count > 0)
            return await NotRunnableAsync(schedule, ReasonInvalidSpec,
                "invalid spec: " + string.Join("; ", errors.Select(e => e.ToString())), ct).ConfigureAwait(false);
        var grid = Grid(schedule, out var gridReason, out var gridProblem);
        if (grid is null)
            return await NotRunnableAsync(schedule, gridReason!, gridProblem!, ct).ConfigureAwait(false);
        if (schedule.Spec.Suspend)
            return await WriteStatusAsync(schedule, s =>
            {
                s.NextCheckpointTime = null;
                s.SetCondition(ConditionTypes.Ready, ConditionStatus.False, ReasonSuspended,
                    "suspended: no new checkpoints until spec.suspend is false", schedule.Metadata.Generation, now);
                s.RemoveCondition(ConditionTypes.Degraded); // failures of before the suspension are not news
            }, ct).ConfigureAwait(false) == StatusWrite.Conflict ? ReconcileResult.Requeue : ReconcileResult.Done;

        var jitter = ScheduleTiming.Jitter(schedule.Metadata.Uid, grid.Period);
        var lastTime = schedule.Status?.LastCheckpointTime;
        var lastName = schedule.Status?.LastCheckpointName;
        // a slot this node took while the API server was away (or whose status write was lost) is not taken again
        if (schedule.Metadata.Uid is { } scheduleUid && _runLog?.LastRun(scheduleUid) is { } logged
            && (lastTime is null || logged.RunAt > lastTime.Value))
            (lastTime, lastName) = (logged.RunAt, logged.CheckpointName);
        var decision = ScheduleTiming.Decide(grid, jitter, lastTime, now);
        if (decision.RunAt is { } runAt)
        {
            var made = 0;
            foreach (var pod in pods)
            {
                foreach (var container in SelectContainers(schedule, pod))
                {
                    lastName = await EnsureCheckpointAsync(schedule, pod, container, runAt, ct).ConfigureAwait(false);
                    if (schedule.Metadata.Uid is { } uid)
                        _runLog?.Record(new ScheduleRun(uid, pod.Metadata.Name!, container, runAt, lastName));
                    made++;
                }
            }
            if (made == 0)
                return await NotRunnableAsync(schedule, ReasonNoContainers,
                    $"none of the containers {string.Join(", ", schedule.Spec.Containers ?? [])} is in the target's pods on node {_options.NodeName}",
                    ct).ConfigureAwait(false);
            lastTime = runAt;
        }

        var (reason, message, ready) = decision.NextAt is { } next
            ? (ReasonScheduled, $"next checkpoint at {KubeTime.ToText(next)}", ConditionStatus.True)
            : (ReasonNoNextTime, $"cron schedule '{schedule.Spec.Cron}' names no time in the next five years", ConditionStatus.False);
        // the checkpoints it made: a schedule that runs on time but whose checkpoints all fail is not Ready
        var failing = CheckpointFailures.Failing(Owned(schedule), _options.FailingAfter);
        var wasFailing = schedule.Status?.FindCondition(ConditionTypes.Ready)?.Reason == ReasonCheckpointsFailing;
        string? failure = null;
        if (failing is not null && ready == ConditionStatus.True)
        {
            failure = failing.Describe();
            (reason, message, ready) = (ReasonCheckpointsFailing, $"{failure}; {message}", ConditionStatus.False);
        }
        var written = await WriteStatusAsync(schedule, s =>
        {
            s.LastCheckpointTime = lastTime;
            s.LastCheckpointName = lastName;
            s.NextCheckpointTime = decision.NextAt is { } n ? KubeTime.Truncate(n) : null;
            s.SetCondition(ConditionTypes.Ready, ready, reason, message, schedule.Metadata.Generation, now);
            if (failure is not null)
                s.SetCondition(ConditionTypes.Degraded, ConditionStatus.True, ReasonCheckpointsFailing, message, schedule.Metadata.Generation, now);
            else
                s.RemoveCondition(ConditionTypes.Degraded);
        }, ct).ConfigureAwait(false);
        if (written == StatusWrite.Conflict) return ReconcileResult.Requeue;
        // said once, when it turns (the write that turned it; a node whose cache was behind got a conflict above)
        if (written == StatusWrite.Written && failure is not null && !wasFailing)
        {
            Log.CheckpointsFailing(_logger, schedule.Metadata.Namespace!, schedule.Metadata.Name!, failure);
            _events.Warning(schedule, ReasonCheckpointsFailing, failure);
        }
        else if (written == StatusWrite.Written && wasFailing && failing is null)
        {
            _events.Normal(schedule, ReasonCheckpointsRecovered, "a checkpoint completed: the schedule's checkpoints are no longer failing");
        }
        return decision.NextAt is { } wake
            ? ReconcileResult.RequeueAfter(wake > now ? wake - now : TimeSpan.Zero)
            : ReconcileResult.Done;
    }

    /// <summary>The running pods of the schedule's target on this node, by name.</summary>
    private List<Pod> TargetPods(CheckpointSchedule schedule)
    {
        var ns = schedule.Metadata.Namespace;
        var target = schedule.Spec.Target;
        return [.. _pods.List()
            .Where(p => p.Metadata.Namespace == ns
                && p.Spec.NodeName == _options.NodeName
                && p.Metadata.DeletionTimestamp is null
                && p.Status?.Phase == "Running"
                && IsTarget(p, target))
            .OrderBy(p => p.Metadata.Name, StringComparer.Ordinal)];
    }

    /// <summary>Whether <paramref name="pod"/> is one of <paramref name="target"/>'s pods.</summary>
    public static bool IsTarget(Pod pod, ScheduleTarget target)
    {
        var owner = ControllerOf(pod);
        return target.Kind switch
        {
            ScheduleTargetKind.Pod => pod.Metadata.Name == target.Name,
            ScheduleTargetKind.StatefulSet => owner is { Kind: "StatefulSet" } && owner.Name == target.Name,
            ScheduleTargetKind.Deployment => owner is { Kind: "ReplicaSet" } && PodOwnerWorkloadResolver.WorkloadOf(pod) == target.Name,
            _ => false,
        };
    }

    private static OwnerReference? ControllerOf(Pod pod) => pod.Metadata.OwnerReferences?.FirstOrDefault(o => o.Controller == true);

    /// <summary>spec.containers that the pod has (in spec order), or every container but crsc's sidecar.</summary>
    private IEnumerable<string> SelectContainers(CheckpointSchedule schedule, Pod pod)
    {
        var present = pod.Spec.Containers.Select(c => c.Name).ToList();
        if (schedule.Spec.Containers is not { Count: > 0 } wanted) return SelectContainers(schedule, present);
        var missing = wanted.Where(c => !present.Contains(c)).ToList();
        if (missing.Count > 0)
            _events.Warning(schedule, "ContainerNotFound",
                $"pod {pod.Metadata.Name} has no container {string.Join(", ", missing)}; it has: {string.Join(", ", present)}");
        return wanted.Where(present.Contains);
    }

    /// <summary>spec.containers that <paramref name="present"/> has (in spec order), or all of them but crsc's sidecar.</summary>
    public static IEnumerable<string> SelectContainers(CheckpointSchedule schedule, IReadOnlyCollection<string> present)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        return schedule.Spec.Containers is { Count: > 0 } wanted
            ? wanted.Where(present.Contains)
            : present.Where(c => c != InterceptorContainer);
    }

    private ScheduleGrid? Grid(CheckpointSchedule schedule, out string? reason, out string? problem)
    {
        var anchor = schedule.Metadata.CreationTimestamp
            ?? _firstSeen.GetOrAdd(schedule.Metadata.Uid ?? schedule.Metadata.Key.ToString(), _ => KubeTime.Truncate(_time.GetUtcNow()));
        return Grid(schedule, anchor, _options.MinimumInterval, out reason, out problem);
    }

    /// <summary>The schedule's slots from <paramref name="anchor"/>; null (with the reason) when it cannot run.</summary>
    public static ScheduleGrid? Grid(CheckpointSchedule schedule, DateTimeOffset anchor, TimeSpan minimumInterval,
        out string? reason, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        reason = problem = null;
        if (schedule.Spec.Cron is { } text)
        {
            // Validate() accepted the shape; the fields' values are checked here
            if (CronExpression.TryParse(text, out var cron, out var error)) return new CronGrid(cron, anchor);
            (reason, problem) = (ReasonInvalidCron, error);
            return null;
        }
        var interval = schedule.Spec.IntervalValue!.Value;
        if (interval < minimumInterval)
        {
            reason = ReasonIntervalTooShort;
            problem = $"interval '{schedule.Spec.Interval}' is shorter than the minimum of {GoDuration.Format(minimumInterval)}";
            return null;
        }
        return new IntervalGrid(anchor, interval);
    }

    /// <summary>
    /// Creates the checkpoint of <paramref name="pod"/>/<paramref name="container"/> for the run at <paramref name="runAt"/>,
    /// or finds the one an earlier attempt made. The name is the plain one unless another pod of the workload has it
    /// (replicas checkpointed in the same second); then it carries a hash of the pod's name.
    /// </summary>
    private async Task<string> EnsureCheckpointAsync(CheckpointSchedule schedule, Pod pod, string container, DateTimeOffset runAt,
        CancellationToken ct)
    {
        var workload = schedule.Spec.Target.Name;
        var podName = pod.Metadata.Name!;
        string[] names =
        [
            ScheduleNames.CheckpointName(workload, container, runAt),
            ScheduleNames.CheckpointName(workload, container, runAt, ScheduleNames.ShortHash(podName)[..6]),
        ];
        foreach (var name in names)
        {
            if (_checkpoints.Get(new ObjectKey(schedule.Metadata.Namespace, name)) is { } cached)
            {
                if (IsRunOf(cached, schedule, podName, container)) return name;
                continue;
            }
            try
            {
                await _checkpointsApi.CreateAsync(NewCheckpoint(schedule, name, podName, container, runAt), ct).ConfigureAwait(false);
                Log.CheckpointCreated(_logger, schedule.Metadata.Namespace!, schedule.Metadata.Name!, name, podName, container, runAt);
                _events.Normal(schedule, "CheckpointCreated", $"created ContainerCheckpoint {name} of pod {podName} container {container}");
                return name;
            }
            catch (AlreadyExistsException)
            {
                ContainerCheckpoint existing;
                try
                {
                    existing = await _checkpointsApi.GetAsync(schedule.Metadata.Namespace, name, ct).ConfigureAwait(false);
                }
                catch (NotFoundException)
                {
                    // deleted in between: the next reconcile makes it again
                    throw new InvalidOperationException($"ContainerCheckpoint {name} existed and was deleted while looking at it; retrying");
                }
                if (IsRunOf(existing, schedule, podName, container))
                {
                    Log.CheckpointExisted(_logger, schedule.Metadata.Namespace!, schedule.Metadata.Name!, name, runAt);
                    return name;
                }
            }
        }
        throw new InvalidOperationException(
            $"ContainerCheckpoints {string.Join(" and ", names)} exist and are not of schedule {schedule.Metadata.Name} pod {podName} container {container}");
    }

    private static bool IsRunOf(ContainerCheckpoint c, CheckpointSchedule schedule, string pod, string container) =>
        c.Spec.PodName == pod && c.Spec.Container == container
        && c.Metadata.OwnerReferences?.Any(o => o.Uid == schedule.Metadata.Uid) == true;

    /// <summary>The ContainerCheckpoint of one run of <paramref name="schedule"/> (online and offline alike).</summary>
    public static ContainerCheckpoint NewCheckpoint(CheckpointSchedule schedule, string name, string pod, string container,
        DateTimeOffset runAt) => new()
    {
        Metadata = new ObjectMeta
        {
            Name = name,
            Namespace = schedule.Metadata.Namespace,
            Labels = new()
            {
                [Labels.Schedule] = ScheduleNames.LabelValue(schedule.Metadata.Name!),
                [Labels.Workload] = ScheduleNames.LabelValue(schedule.Spec.Target.Name),
                [Labels.Container] = container,
            },
            Annotations = new() { [Annotations.ScheduledFor] = KubeTime.ToText(runAt) },
            OwnerReferences =
            [
                new OwnerReference
                {
                    ApiVersion = CrscApi.GroupVersion,
                    Kind = CheckpointSchedule.KindName,
                    Name = schedule.Metadata.Name!,
                    Uid = schedule.Metadata.Uid ?? "",
                    Controller = true,
                    BlockOwnerDeletion = true,
                },
            ],
        },
        Spec = new ContainerCheckpointSpec { PodName = pod, Container = container, DeletionPolicy = DeletionPolicy.Delete },
    };

    /// <summary>The ContainerCheckpoints <paramref name="schedule"/> controls (from the cache).</summary>
    private IEnumerable<ContainerCheckpoint> Owned(CheckpointSchedule schedule)
    {
        if (schedule.Metadata.Uid is not { Length: > 0 } uid) return [];
        return _checkpoints.ByIndex(Indexers.OwnerUid, uid)
            .Where(c => c.Metadata.Namespace == schedule.Metadata.Namespace
                && c.Metadata.OwnerReferences!.Any(o => o.Uid == uid && o.Controller == true));
    }

    private async Task ApplyRetentionAsync(CheckpointSchedule schedule, DateTimeOffset now, CancellationToken ct)
    {
        var owned = Owned(schedule);
        IReadOnlyDictionary<string, string>? held = null;
        foreach (var group in owned.GroupBy(c => c.Spec.Container, StringComparer.Ordinal))
        {
            var chosen = CheckpointRetention.Select(group, schedule.Spec.Retention, now, _options.KeepNodeAway);
            if (chosen.Count == 0) continue;
            held ??= await HeldForRestoreFromAsync(schedule.Metadata.Namespace!, ct).ConfigureAwait(false);
            var doomed = new List<ContainerCheckpoint>(chosen.Count);
            foreach (var c in chosen)
            {
                if (held.TryGetValue(c.Metadata.Name!, out var pod))
                    Log.HeldForRestoreFrom(_logger, schedule.Metadata.Namespace!, schedule.Metadata.Name!, c.Metadata.Name!, pod);
                else doomed.Add(c);
            }
            if (doomed.Count == 0) continue;
            foreach (var c in doomed)
            {
                try
                {
                    await _checkpointsApi.DeleteAsync(c.Metadata.Namespace, c.Metadata.Name!,
                        new DeleteOptions(PreconditionUid: c.Metadata.Uid), ct).ConfigureAwait(false);
                }
                catch (NotFoundException)
                {
                    // gone already (another node's agent pruned it too)
                }
                catch (ConflictException)
                {
                    // a new object of that name: not the one retention chose
                }
                Log.Pruned(_logger, schedule.Metadata.Namespace!, schedule.Metadata.Name!, c.Metadata.Name!, group.Key,
                    c.Status?.Phase?.ToString() ?? "");
            }
            _events.Normal(schedule, "CheckpointsPruned", string.Create(CultureInfo.InvariantCulture,
                $"retention deleted {doomed.Count} checkpoint(s) of container {group.Key}: {string.Join(", ", doomed.Select(c => c.Metadata.Name))}"));
        }
    }

    /// <summary>
    /// The checkpoints of <paramref name="ns"/> (by name) that a pod there names in <see cref="Annotations.RestoreFrom"/>,
    /// each with one such pod: a pod that is not terminated (nor being deleted) and whose Restore (the one its node agent
    /// makes, <see cref="Labels.RestoreFromPodUid"/>) has not finished. Read from the API: this agent caches only its
    /// node's pods, and the pod to be restored may be on any node.
    /// </summary>
    private async Task<IReadOnlyDictionary<string, string>> HeldForRestoreFromAsync(string ns, CancellationToken ct)
    {
        var pods = (await _podsApi.ListAsync(ns, new ListOptions(), ct).ConfigureAwait(false)).Items
            .Where(p => p.Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFrom) is { Length: > 0 }
                        && p.Metadata.DeletionTimestamp is null && p.Status?.Phase is not ("Succeeded" or "Failed"))
            .ToList();
        if (pods.Count == 0) return new Dictionary<string, string>(StringComparer.Ordinal);
        var finished = (await _restoresApi.ListAsync(ns, new ListOptions(), ct).ConfigureAwait(false)).Items
            .Where(r => r.Status?.Phase is RestorePhase.Restored or RestorePhase.Failed or RestorePhase.FellBack)
            .Select(r => r.Metadata.Labels?.GetValueOrDefault(Labels.RestoreFromPodUid))
            .OfType<string>()
            .ToHashSet(StringComparer.Ordinal);
        var held = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in pods.Where(p => p.Metadata.Uid is not { } uid || !finished.Contains(uid)))
            held.TryAdd(p.Metadata.Annotations![Annotations.RestoreFrom], p.Metadata.Name!);
        return held;
    }

    private async Task<ReconcileResult> NotRunnableAsync(CheckpointSchedule schedule, string reason, string message, CancellationToken ct)
    {
        Log.NotRunnable(_logger, schedule.Metadata.Namespace!, schedule.Metadata.Name!, reason, message);
        var now = _time.GetUtcNow();
        var written = await WriteStatusAsync(schedule, s =>
        {
            s.NextCheckpointTime = null;
            s.SetCondition(ConditionTypes.Ready, ConditionStatus.False, reason, message, schedule.Metadata.Generation, now);
            s.RemoveCondition(ConditionTypes.Degraded); // Ready says what is wrong: the spec, not the checkpoints
        }, ct).ConfigureAwait(false);
        // once, when it becomes so (the schedule is reconciled again on every change of its pods)
        if (written == StatusWrite.Written) _events.Warning(schedule, reason, message);
        // nothing runs until the spec changes (which queues the schedule again)
        return written == StatusWrite.Conflict ? ReconcileResult.Requeue : ReconcileResult.Done;
    }

    private enum StatusWrite { Unchanged, Written, Conflict }

    /// <summary>The <see cref="ConditionReplication"/> condition for this node's registry (part of every status write).</summary>
    private void SetReplication(CheckpointScheduleStatus s, CheckpointSchedule schedule, DateTimeOffset now)
    {
        if (schedule.Spec.Replicate != CheckpointReplication.Registry)
        {
            s.RemoveCondition(ConditionReplication);
            return;
        }
        var node = _options.NodeName;
        var (status, reason, message) = _options.Registry switch
        {
            CheckpointRegistryMode.Replicate => (ConditionStatus.True, ReasonReplicating,
                $"node {node} pushes each checkpoint's image to the registry in the background after it completes"),
            CheckpointRegistryMode.Publish => (ConditionStatus.True, ReasonPublishedToRegistry,
                $"node {node} publishes every checkpoint image to the registry (images.registryMode: publish): the Content's image reference names it"),
            _ => (ConditionStatus.False, ReasonNoRegistry,
                $"spec.replicate is Registry but node {node} has no registry configured (images.registry): its checkpoints are kept in its store only"),
        };
        s.SetCondition(ConditionReplication, status, reason, message, schedule.Metadata.Generation, now);
    }

    /// <summary>One Warning Event when a write turned the schedule's replication to <see cref="ReasonNoRegistry"/>.</summary>
    private void AnnounceReplication(CheckpointSchedule before, StatusWrite written)
    {
        if (written != StatusWrite.Written || before.Spec.Replicate != CheckpointReplication.Registry
            || _options.Registry != CheckpointRegistryMode.None
            || before.Status?.FindCondition(ConditionReplication)?.Reason == ReasonNoRegistry)
            return;
        var message = $"spec.replicate is Registry but node {_options.NodeName} has no registry configured (images.registry): its checkpoints are not copied anywhere";
        Log.NoRegistry(_logger, before.Metadata.Namespace!, before.Metadata.Name!, _options.NodeName);
        _events.Warning(before, ReasonNoRegistry, message);
    }

    /// <summary>
    /// Writes the status <paramref name="change"/> makes of the cached one, when it changes anything. Conflict on a 409
    /// (the cache is behind another writer): one attempt only, because the change was decided from the cached object
    /// (a checkpoint may have been made for it); requeue and decide again from the newer object.
    /// </summary>
    private async Task<StatusWrite> WriteStatusAsync(CheckpointSchedule cached, Action<CheckpointScheduleStatus> change, CancellationToken ct)
    {
        var json = _schedulesApi.Type.Json;
        var before = JsonSerializer.Serialize(cached, json);
        try
        {
            var now = _time.GetUtcNow();
            var written = await StatusWriter.UpdateStatusAsync(_schedulesApi, cached, updated =>
            {
                change(updated.Status ??= new CheckpointScheduleStatus());
                SetReplication(updated.Status, cached, now);
                updated.Status.ObservedGeneration = cached.Metadata.Generation;
                return JsonSerializer.Serialize(updated, json) != before;
            }, ct, attempts: 1).ConfigureAwait(false);
            // null: unchanged, or the schedule is gone
            var result = written is null ? StatusWrite.Unchanged : StatusWrite.Written;
            AnnounceReplication(cached, result);
            return result;
        }
        catch (ConflictException)
        {
            Log.StatusConflict(_logger, cached.Metadata.Namespace!, cached.Metadata.Name!);
            return StatusWrite.Conflict;
        }
    }

    private static string TargetKey(string? ns, string kind, string name) => $"{ns}/{kind}/{name}";
}

using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Schedules;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Crsc.Controllers.Hosting;

namespace Crsc.Controllers.Workloads;

public sealed record DeploymentReconcilerOptions
{
    /// <summary>Shorter <c>crsc.io/checkpoint-interval</c> values are refused (a checkpoint takes seconds).</summary>
    public TimeSpan MinimumInterval { get; init; } = ScheduleTiming.MinimumInterval;

    /// <summary>Longer values are refused too (they are typing mistakes, and overflow date arithmetic).</summary>
    public TimeSpan MaximumInterval { get; init; } = TimeSpan.FromDays(366);

    /// <summary>The sidecar given to Deployments annotated <c>crsc.io/interceptor: "true"</c> (image, resources).</summary>
    public InterceptorSidecarOptions Interceptor { get; init; } = new();
}

/// <summary>
/// Leader-only. A Deployment annotated <c>crsc.io/checkpoint-restore: "true"</c> gets a <see cref="CheckpointSchedule"/>
/// of the same name, owned by it (controller, blockOwnerDeletion: garbage collection removes it with the Deployment),
/// targeting it, at the interval of <c>crsc.io/checkpoint-interval</c> (default 10m, Go durations or plain seconds,
/// 10s to 366 days), retention <c>keepLast: 5</c>, and <c>replicate</c> as <c>crsc.io/checkpoint-replicate</c> says
/// (<c>registry</c>/<c>none</c>; absent: <c>None</c> on a new schedule, and an existing one keeps what a user set). A
/// changed annotation updates the schedule's target, interval and (when the annotation is there) replicate (users may
/// tune the rest of it); a removed one (or any value but "true") deletes it. A bad interval or replicate value changes
/// nothing: a Warning Event on the Deployment names the value, and an existing schedule keeps its spec and gets
/// <c>Degraded=True</c>, reason <c>InvalidAnnotation</c>. A schedule of that name that the Deployment does not own
/// is a user's: it is left alone, and said so with an Event.
/// <para>
/// Independently of the schedule, a Deployment annotated <c>crsc.io/interceptor: "true"</c> gets the interceptor sidecar in
/// its pod template, and loses it (the template put back exactly) when the annotation goes (<see cref="InterceptorInjection"/>):
/// the only edit crsc makes to a workload. A PUT with the Deployment's resourceVersion, only when the template differs
/// from what the annotations ask (no rollout loops); a bad annotation is a Warning Event and no edit.
/// </para>
/// </summary>
public sealed class DeploymentReconciler : IReconciler
{
    public const string ControllerName = "deployment-schedules";

    /// <summary>
    /// Sets the Deployment reconciler up with <paramref name="manager"/> (leader-only): Deployments and
    /// CheckpointSchedules of every namespace; a Deployment is reconciled when it or a schedule of it changes.
    /// </summary>
    public static ControllerSetup<DeploymentReconciler> SetUp(ControllerManager manager, DeploymentReconcilerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(manager);
        var deployments = manager.Informers.For(Resources.Deployments);
        var schedules = manager.Informers.For(CrscResources.CheckpointSchedules);
        var reconciler = new DeploymentReconciler(manager.Kube, deployments, schedules, manager.Events, manager.Time,
            manager.Loggers.CreateLogger<DeploymentReconciler>(), options);
        var controller = manager.NewController(ControllerName, reconciler);
        controller.Watch(deployments, DeploymentEvents);
        controller.Watch(schedules, DeploymentsOfSchedule);
        return new(manager.Add(controller, leaderOnly: true), reconciler);
    }

    public const string ReasonInvalidAnnotation = "InvalidAnnotation";
    public const string ReasonScheduleNotOwned = "ScheduleNotOwned";
    public const string ReasonInterceptorInjected = "InterceptorInjected";
    public const string ReasonInterceptorUpdated = "InterceptorUpdated";
    public const string ReasonInterceptorRemoved = "InterceptorRemoved";
    private const string DeploymentApiVersion = "apps/v1";
    private const string DeploymentKind = "Deployment";

    private readonly IKubeResourceClient<CheckpointSchedule> _schedulesApi;
    private readonly IKubeResourceClient<Deployment> _deploymentsApi;
    private readonly Informer<Deployment> _deployments;
    private readonly Informer<CheckpointSchedule> _schedules;
    private readonly IEventRecorder _events;
    private readonly DeploymentReconcilerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public DeploymentReconciler(
        IKubeApi kube,
        Informer<Deployment> deployments,
        Informer<CheckpointSchedule> schedules,
        IEventRecorder events,
        TimeProvider time,
        ILogger? logger = null,
        DeploymentReconcilerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        _schedulesApi = kube.Resource(CrscResources.CheckpointSchedules);
        _deploymentsApi = kube.Resource(Resources.Deployments);
        _deployments = deployments;
        _schedules = schedules;
        _events = events;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        _options = options ?? new DeploymentReconcilerOptions();
    }

    /// <summary>The Deployment a schedule event concerns: its owner, and the Deployment of the same name (a user's schedule in the way).</summary>
    public static IEnumerable<ObjectKey> DeploymentsOfSchedule(CheckpointSchedule schedule) =>
        EnqueueHandlers.OwnerKeys(schedule, DeploymentKind, "apps").Append(EnqueueHandlers.KeyOf(schedule)).Distinct();

    /// <summary>
    /// Enqueues a Deployment when it comes or goes, and on an update only when something the reconciler reads changed
    /// (its UID, deletion, its spec's generation, crsc's annotations) or on a resync: Deployments' status changes with every pod, and those
    /// updates would only repeat the same decision (and any Warning event).
    /// </summary>
    public static IResourceEventHandler<Deployment> DeploymentEvents(Action<ObjectKey> enqueue) =>
        new ResourceEventHandler<Deployment>(
            d => enqueue(EnqueueHandlers.KeyOf(d)),
            (old, current) =>
            {
                if (ReferenceEquals(old, current) || Relevant(old) != Relevant(current)) enqueue(EnqueueHandlers.KeyOf(current));
            },
            d => enqueue(EnqueueHandlers.KeyOf(d)));

    private static (string?, bool, long?, string?, string?, string?, string?, string?, string?, string?, string?, string?) Relevant(Deployment d) =>
        (d.Metadata.Uid, d.Metadata.DeletionTimestamp is null, d.Metadata.Generation,
         d.Metadata.Annotations?.GetValueOrDefault(Annotations.CheckpointRestore),
         d.Metadata.Annotations?.GetValueOrDefault(Annotations.CheckpointInterval),
         d.Metadata.Annotations?.GetValueOrDefault(Annotations.CheckpointReplicate),
         d.Metadata.Annotations?.GetValueOrDefault(Annotations.Interceptor),
         d.Metadata.Annotations?.GetValueOrDefault(Annotations.InterceptorPort),
         d.Metadata.Annotations?.GetValueOrDefault(Annotations.InterceptorPortEnv),
         d.Metadata.Annotations?.GetValueOrDefault(Annotations.InterceptorReplay),
         d.Metadata.Annotations?.GetValueOrDefault(Annotations.InterceptorReplayMethods),
         d.Metadata.Annotations?.GetValueOrDefault(Annotations.InterceptorOriginal));

    /// <summary>
    /// Reads <c>crsc.io/checkpoint-interval</c> (absent: 10m). False with a message naming the value when it is not a
    /// duration or outside [<paramref name="min"/>, <paramref name="max"/>].
    /// </summary>
    public static bool TryParseInterval(string? text, TimeSpan min, TimeSpan max, out TimeSpan interval, out string error)
    {
        error = "";
        if (text is null)
        {
            interval = GoDuration.Parse(Annotations.DefaultCheckpointInterval);
            return true;
        }
        if (!GoDuration.TryParse(text.Trim(), out interval, out var why))
        {
            error = $"annotation {Annotations.CheckpointInterval}: '{text}' is not a duration: {why}";
            return false;
        }
        if (interval < min)
        {
            error = $"annotation {Annotations.CheckpointInterval}: '{text}' is shorter than the minimum of {GoDuration.Format(min)}";
            return false;
        }
        if (interval > max)
        {
            error = $"annotation {Annotations.CheckpointInterval}: '{text}' is longer than the maximum of {GoDuration.Format(max)}";
            return false;
        }
        return true;
    }

    /// <summary>
    /// Reads <c>crsc.io/checkpoint-replicate</c>: <c>registry</c> or <c>none</c>, also capitalized as the schedule's
    /// <c>spec.replicate</c> spells them (<c>Registry</c>, <c>None</c>). Absent: true with null (a new schedule gets
    /// <c>None</c>, an existing one keeps its own). False with a message naming the value and the accepted ones otherwise.
    /// </summary>
    public static bool TryParseReplicate(string? text, out CheckpointReplication? replicate, out string error)
    {
        error = "";
        replicate = text switch
        {
            null => null,
            "registry" or "Registry" => CheckpointReplication.Registry,
            "none" or "None" => CheckpointReplication.None,
            _ => null,
        };
        if (text is null || replicate is not null) return true;
        error = $"annotation {Annotations.CheckpointReplicate}: '{text}' is not one of registry, none (or Registry, None)";
        return false;
    }

    public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var deployment = _deployments.Get(key);
        // gone or going: garbage collection removes the schedule it owns
        if (deployment is null || deployment.Metadata.DeletionTimestamp is not null) return ReconcileResult.Done;
        var schedule = await ReconcileScheduleAsync(key, deployment, ct).ConfigureAwait(false);
        var interceptor = await ReconcileInterceptorAsync(deployment, ct).ConfigureAwait(false);
        return schedule.Outcome != ReconcileOutcome.Done ? schedule : interceptor;
    }

    /// <summary>
    /// The interceptor sidecar in the pod template as the annotations ask (<see cref="InterceptorInjection"/>): one PUT with
    /// the resourceVersion when the template differs (on a 409 decided again on the Deployment read afresh), none when
    /// it matches; a bad annotation is a Warning Event naming it and no change.
    /// </summary>
    private async Task<ReconcileResult> ReconcileInterceptorAsync(Deployment deployment, CancellationToken ct)
    {
        var ns = deployment.Metadata.Namespace ?? "";
        var name = deployment.Metadata.Name ?? "";
        var outcome = InterceptorInjection.Reconcile(StatusWriter.DeepCopy(Resources.Deployments, deployment), _options.Interceptor);
        if (outcome.Error is { } error)
        {
            Log.InvalidAnnotation(_logger, ns, name, error);
            _events.Warning(deployment, ReasonInvalidAnnotation, error);
            return ReconcileResult.Done;
        }
        if (!outcome.Changed) return ReconcileResult.Done;

        var uid = deployment.Metadata.Uid;
        var injected = deployment.Metadata.Annotations?.ContainsKey(Annotations.InterceptorOriginal) == true;
        InterceptorInjection.Outcome? written = null;
        var updated = await StatusWriter.UpdateAsync(_deploymentsApi, deployment, d =>
        {
            if (d.Metadata.Uid != uid || d.Metadata.DeletionTimestamp is not null) return false;
            injected = d.Metadata.Annotations?.ContainsKey(Annotations.InterceptorOriginal) == true;
            written = InterceptorInjection.Reconcile(d, _options.Interceptor);
            return written.Changed;
        }, ct).ConfigureAwait(false);
        // gone, or changed meanwhile so that nothing is left to do (or a bad annotation now): decide again from the cache
        if (updated is null || written is null) return ReconcileResult.Requeue;
        var wanted = InterceptorInjection.Wanted(updated);
        var reason = !wanted ? ReasonInterceptorRemoved : injected ? ReasonInterceptorUpdated : ReasonInterceptorInjected;
        Log.InterceptorChanged(_logger, ns, name, reason, written.Description);
        _events.Normal(deployment, reason, written.Description);
        return ReconcileResult.Done;
    }

    private async Task<ReconcileResult> ReconcileScheduleAsync(ObjectKey key, Deployment deployment, CancellationToken ct)
    {
        var ns = key.Namespace ?? "";
        var schedule = _schedules.Get(key);
        var ownership = OwnershipOf(schedule, deployment);
        var annotations = deployment.Metadata.Annotations;
        var managed = annotations?.GetValueOrDefault(Annotations.CheckpointRestore) == "true";

        if (ownership == Ownership.Stale)
        {
            // an earlier Deployment of this name owned it and garbage collection has not got to it yet
            Log.StaleSchedule(_logger, ns, key.Name, OwnerOf(schedule!)!.Uid);
            return await DeleteAsync(schedule!, ct).ConfigureAwait(false);
        }
        if (!managed)
        {
            if (ownership != Ownership.Ours) return ReconcileResult.Done;
            var result = await DeleteAsync(schedule!, ct).ConfigureAwait(false);
            Log.ScheduleDeleted(_logger, ns, key.Name);
            _events.Normal(deployment, "ScheduleDeleted",
                $"deleted CheckpointSchedule {key.Name}: annotation {Annotations.CheckpointRestore} is not \"true\"");
            return result;
        }
        if (ownership == Ownership.Foreign)
        {
            Log.ForeignSchedule(_logger, ns, key.Name);
            _events.Warning(deployment, ReasonScheduleNotOwned,
                $"CheckpointSchedule {key.Name} exists and is not owned by this Deployment; crsc leaves it alone (delete it to let crsc manage the schedule)");
            return ReconcileResult.Done;
        }

        // every bad value at once, so that one fix is enough
        var errors = new List<string>(2);
        var text = annotations?.GetValueOrDefault(Annotations.CheckpointInterval);
        if (!TryParseInterval(text, _options.MinimumInterval, _options.MaximumInterval, out var interval, out var error))
            errors.Add(error);
        if (!TryParseReplicate(annotations?.GetValueOrDefault(Annotations.CheckpointReplicate), out var replicate, out error))
            errors.Add(error);
        if (errors.Count > 0)
            return await RejectAsync(deployment, schedule, string.Join("; ", errors), ct).ConfigureAwait(false);
        var intervalText = GoDuration.Format(interval);

        if (schedule is null)
        {
            var created = NewSchedule(deployment, intervalText, replicate ?? CheckpointReplication.None);
            try
            {
                await _schedulesApi.CreateAsync(created, ct).ConfigureAwait(false);
            }
            catch (AlreadyExistsException)
            {
                // the cache is behind: decide again when it shows the schedule
                return ReconcileResult.Requeue;
            }
            Log.ScheduleCreated(_logger, ns, key.Name, intervalText, created.Spec.Replicate);
            _events.Normal(deployment, "ScheduleCreated", $"created CheckpointSchedule {key.Name}: a checkpoint every {intervalText}"
                + (created.Spec.Replicate == CheckpointReplication.Registry ? ", each copied to the registry" : ""));
            return ReconcileResult.Done;
        }

        // on a 409 each write reads the schedule again and applies the change while it is the same schedule, still ours
        var uid = schedule.Metadata.Uid;
        var current = schedule;
        if (NeedsUpdate(schedule, key.Name, intervalText, replicate))
        {
            var updated = await StatusWriter.UpdateAsync(_schedulesApi, schedule, c =>
            {
                if (c.Metadata.Uid != uid || OwnershipOf(c, deployment) != Ownership.Ours || !NeedsUpdate(c, key.Name, intervalText, replicate))
                    return false;
                c.Spec.Target = new ScheduleTarget { Kind = ScheduleTargetKind.Deployment, Name = key.Name };
                c.Spec.Interval = intervalText;
                c.Spec.Cron = null;
                c.Spec.Retention ??= DefaultRetention();
                // absent: what a user set on the schedule stays
                if (replicate is { } wanted) c.Spec.Replicate = wanted;
                return true;
            }, ct).ConfigureAwait(false);
            // gone, or changed by someone else meanwhile: decide again from the cache
            if (updated is null) return ReconcileResult.Requeue;
            current = updated;
            Log.ScheduleUpdated(_logger, ns, key.Name, schedule.Spec.Interval, intervalText, schedule.Spec.Replicate, updated.Spec.Replicate);
            var change = $"interval {schedule.Spec.Interval ?? schedule.Spec.Cron} -> {intervalText}";
            if (updated.Spec.Replicate != schedule.Spec.Replicate)
                change = (schedule.Spec.Interval == intervalText ? "" : change + ", ")
                    + $"replicate {schedule.Spec.Replicate} -> {updated.Spec.Replicate}";
            _events.Normal(deployment, "ScheduleUpdated", $"CheckpointSchedule {key.Name}: {change}");
        }
        if (current.Status?.FindCondition(ConditionTypes.Degraded) is { Reason: ReasonInvalidAnnotation })
        {
            await StatusWriter.UpdateStatusAsync(_schedulesApi, current, c =>
                c.Metadata.Uid == uid && c.Status?.FindCondition(ConditionTypes.Degraded) is { Reason: ReasonInvalidAnnotation }
                && c.Status.RemoveCondition(ConditionTypes.Degraded), ct).ConfigureAwait(false);
        }
        return ReconcileResult.Done;
    }

    /// <summary>A bad annotation: say so on the Deployment and the schedule; change nothing else.</summary>
    private async Task<ReconcileResult> RejectAsync(Deployment deployment, CheckpointSchedule? schedule, string error, CancellationToken ct)
    {
        var ns = deployment.Metadata.Namespace ?? "";
        var name = deployment.Metadata.Name ?? "";
        var message = schedule is null
            ? $"{error}; no CheckpointSchedule is created until it is fixed"
            : $"{error}; CheckpointSchedule {name} keeps {(schedule.Spec.Interval is { } i ? "interval " + i : "its schedule")}"
              + $" and replicate {schedule.Spec.Replicate}";
        Log.InvalidAnnotation(_logger, ns, name, message);
        _events.Warning(deployment, ReasonInvalidAnnotation, message);
        if (schedule is null) return ReconcileResult.Done;
        var uid = schedule.Metadata.Uid;
        await StatusWriter.UpdateStatusAsync(_schedulesApi, schedule, c =>
            c.Metadata.Uid == uid
            && (c.Status ??= new CheckpointScheduleStatus()).SetCondition(ConditionTypes.Degraded, ConditionStatus.True,
                ReasonInvalidAnnotation, message, schedule.Metadata.Generation, _time.GetUtcNow()), ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    private async Task<ReconcileResult> DeleteAsync(CheckpointSchedule schedule, CancellationToken ct)
    {
        try
        {
            await _schedulesApi.DeleteAsync(schedule.Metadata.Namespace, schedule.Metadata.Name!,
                new DeleteOptions(PreconditionUid: schedule.Metadata.Uid), ct).ConfigureAwait(false);
        }
        catch (NotFoundException)
        {
        }
        catch (ConflictException)
        {
            // another object of that name by now: look again
            return ReconcileResult.Requeue;
        }
        return ReconcileResult.Done;
    }

    /// <summary>Whether the schedule differs from what the annotations ask; a null <paramref name="replicate"/> (annotation absent) asks nothing of it.</summary>
    private static bool NeedsUpdate(CheckpointSchedule schedule, string name, string interval, CheckpointReplication? replicate) =>
        schedule.Spec.Target.Kind != ScheduleTargetKind.Deployment
        || schedule.Spec.Target.Name != name
        || schedule.Spec.Interval != interval
        || schedule.Spec.Cron is not null
        || schedule.Spec.Retention is null
        || (replicate is { } wanted && schedule.Spec.Replicate != wanted);

    private static CheckpointSchedule NewSchedule(Deployment deployment, string interval, CheckpointReplication replicate) => new()
    {
        Metadata = new ObjectMeta
        {
            Name = deployment.Metadata.Name,
            Namespace = deployment.Metadata.Namespace,
            Labels = new() { [Labels.Workload] = ScheduleNames.LabelValue(deployment.Metadata.Name!) },
            OwnerReferences =
            [
                new OwnerReference
                {
                    ApiVersion = DeploymentApiVersion,
                    Kind = DeploymentKind,
                    Name = deployment.Metadata.Name!,
                    Uid = deployment.Metadata.Uid ?? "",
                    Controller = true,
                    BlockOwnerDeletion = true,
                },
            ],
        },
        Spec = new CheckpointScheduleSpec
        {
            Target = new ScheduleTarget { Kind = ScheduleTargetKind.Deployment, Name = deployment.Metadata.Name! },
            Interval = interval,
            Retention = DefaultRetention(),
            Replicate = replicate,
        },
    };

    private static RetentionPolicy DefaultRetention() => new() { KeepLast = RetentionPolicy.DefaultKeepLast };

    private enum Ownership { None, Ours, Stale, Foreign }

    private static Ownership OwnershipOf(CheckpointSchedule? schedule, Deployment deployment)
    {
        if (schedule is null) return Ownership.None;
        if (OwnerOf(schedule) is not { } owner || owner.Name != deployment.Metadata.Name) return Ownership.Foreign;
        return owner.Uid == deployment.Metadata.Uid ? Ownership.Ours : Ownership.Stale;
    }

    /// <summary>The schedule's controlling Deployment reference, if a Deployment controls it.</summary>
    private static OwnerReference? OwnerOf(CheckpointSchedule schedule) =>
        schedule.Metadata.OwnerReferences?.FirstOrDefault(o =>
            o.Controller == true && o.Kind == DeploymentKind && o.ApiVersion.StartsWith("apps/", StringComparison.Ordinal));
}

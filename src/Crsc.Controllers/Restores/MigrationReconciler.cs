using System.Text.Json;
using System.Text.Json.Nodes;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Schedules;
using Crsc.Controllers.Workloads;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using KubeTime = Crsc.Api.Kubernetes.KubeTime;

namespace Crsc.Controllers.Restores;

public sealed record MigrationReconcilerOptions
{
    /// <summary>How long after the source pod's deletion its ReplicaSet may take to make the replacement.</summary>
    public TimeSpan ReplacementTimeout { get; init; } = TimeSpan.FromMinutes(10);

    public void Validate()
    {
        if (ReplacementTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(ReplacementTimeout), ReplacementTimeout, "ReplacementTimeout must be greater than zero");
    }
}

/// <summary>
/// Carries out Restores of <see cref="RestoreMode.Migration"/> (leader-only; <c>crsc migrate</c>): moves a running pod
/// with its memory, on top of <c>crsc.io/restore-from</c>. It checks the move can be made (the pod runs; a bare pod names
/// its node; pinning a Deployment's replacement to a node needs the template's scheduling gate
/// <c>crsc.io/restore-placement</c>; the node exists), then checkpoints the pod's container now (a ContainerCheckpoint it
/// owns, <see cref="CheckpointName"/>), and only once that checkpoint Completed deletes the pod. A Deployment's pod is
/// replaced by its ReplicaSet: the replacement (a pod of that ReplicaSet made after the deletion) gets the annotation
/// <c>crsc.io/restore-from</c> and, with a target node, a required node affinity naming it — on that pod only, in the same
/// write that removes crsc's gate (kube-apiserver allows it only while the pod is gated). A bare pod is made again under
/// its name on the target node, from the spec kept in the status before the deletion. The replacement's node agent then
/// fetches the checkpoint and makes an in-place Restore (<see cref="RestoreFromReconciler"/>), which this follows: its end
/// is the migration's, with the downtime (the source container's stop to the restored container running) in the status.
/// Nothing is cordoned. Every step is recorded in the status before it is taken, so a new leader goes on from there.
/// </summary>
public sealed partial class MigrationReconciler : IReconciler
{
    public const string ControllerName = "restore-migration";

    // reasons (status condition Ready, Events)
    public const string ReasonInvalidSpec = "InvalidSpec";
    public const string ReasonPodNotFound = "PodNotFound";
    public const string ReasonContainerNotFound = "ContainerNotFound";
    public const string ReasonUnsupportedOwner = "UnsupportedOwner";
    public const string ReasonTargetNodeRequired = "TargetNodeRequired";
    public const string ReasonNodeNotFound = "NodeNotFound";
    public const string ReasonPlacementGateMissing = "PlacementGateMissing";
    public const string ReasonCheckpointFailed = "CheckpointFailed";
    public const string ReasonPodGone = "PodGone";
    public const string ReasonNoReplacement = "NoReplacement";
    public const string ReasonNameTaken = "NameTaken";
    public const string ReasonNotRestored = "NotRestored";
    public const string ReasonMigrated = "Migrated";

    /// <summary>Reasons of the pod's <c>crsc.io/RestoreFrom</c> condition that the node agent tries again by itself.</summary>
    private static readonly HashSet<string> RetriedReasons =
        [RestoreFromReconciler.CheckpointUnreachable, RestoreFromReconciler.CheckpointNotCompleted, RestoreFromReconciler.Fetching];

    private const int MaxStepsPerReconcile = 12;

    private readonly IKubeResourceClient<Restore> _restoresApi;
    private readonly IKubeResourceClient<Pod> _podsApi;
    private readonly IKubeResourceClient<ContainerCheckpoint> _checkpointsApi;
    private readonly IKubeResourceClient<ReplicaSet> _replicaSetsApi;
    private readonly IKubeResourceClient<Node> _nodesApi;
    private readonly Informer<Restore> _restores;
    private readonly Informer<Pod> _pods;
    private readonly Informer<ContainerCheckpoint> _checkpoints;
    private readonly IEventRecorder _events;
    private readonly MigrationReconcilerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    /// <summary>
    /// Sets migration up with <paramref name="manager"/> (leader-only): Restores (the migrations, and the in-place Restores
    /// the target nodes make for them), all pods and the ContainerCheckpoints. A change of any of these in a namespace
    /// wakes the namespace's unfinished migrations (there are few).
    /// </summary>
    public static ControllerSetup<MigrationReconciler> SetUp(ControllerManager manager, MigrationReconcilerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(manager);
        var restores = manager.Informers.For(CrscResources.Restores);
        var pods = manager.Informers.For(Resources.Pods);
        var checkpoints = manager.Informers.For(CrscResources.ContainerCheckpoints);
        var reconciler = new MigrationReconciler(manager.Kube, restores, pods, checkpoints, manager.Events,
            options ?? new MigrationReconcilerOptions(), manager.Time, manager.Loggers.CreateLogger<MigrationReconciler>());
        var controller = manager.NewController(ControllerName, reconciler, workers: 1);
        controller.Watch(restores, r => r.Spec.IsMigration ? [EnqueueHandlers.KeyOf(r)] : ActiveMigrationsIn(restores, r.Metadata.Namespace));
        controller.Watch(pods, p => ActiveMigrationsIn(restores, p.Metadata.Namespace));
        controller.Watch(checkpoints, c => ActiveMigrationsIn(restores, c.Metadata.Namespace));
        return new(manager.Add(controller, leaderOnly: true), reconciler);
    }

    public MigrationReconciler(IKubeApi kube, Informer<Restore> restores, Informer<Pod> pods, Informer<ContainerCheckpoint> checkpoints,
        IEventRecorder events, MigrationReconcilerOptions options, TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        options.Validate();
        _restoresApi = kube.Resource(CrscResources.Restores);
        _podsApi = kube.Resource(Resources.Pods);
        _checkpointsApi = kube.Resource(CrscResources.ContainerCheckpoints);
        _replicaSetsApi = kube.Resource(Resources.ReplicaSets);
        _nodesApi = kube.Resource(Resources.Nodes);
        _restores = restores;
        _pods = pods;
        _checkpoints = checkpoints;
        _events = events;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        restores.TryAddIndexer(Indexers.Namespace, Indexers.ByNamespace);
    }

    /// <summary>The unfinished migrations of a namespace.</summary>
    public static IEnumerable<ObjectKey> ActiveMigrationsIn(Informer<Restore> restores, string? ns) =>
        string.IsNullOrEmpty(ns)
            ? []
            : restores.ByIndex(Indexers.Namespace, ns).Where(r => r.Spec.IsMigration && !RestoreStages.IsTerminal(r)).Select(EnqueueHandlers.KeyOf);

    /// <summary>
    /// Whether an unfinished migration with a target node waits to pin <paramref name="pod"/>: the pod is of the
    /// migration's ReplicaSet, is not the pod moved, and the migration has no replacement yet. The
    /// <see cref="ReplacementPlacementReconciler"/> leaves such a pod's gate to the migration, which removes it in the
    /// write that pins the pod.
    /// </summary>
    public static bool WaitsToPin(Restore migration, Pod pod) =>
        migration.Spec.IsMigration && !RestoreStages.IsTerminal(migration) && migration.Spec.TargetNode is { Length: > 0 }
        && migration.Metadata.Namespace == pod.Metadata.Namespace
        && migration.Status is { ReplicaSet: { Length: > 0 } rs, ReplacementPodUid: null } s
        && RestorePods.Controller(pod) is { Kind: "ReplicaSet" } owner && owner.Name == rs
        && pod.Metadata.Uid != s.SourcePodUid;

    /// <summary>
    /// The ContainerCheckpoint a migration takes: <c>&lt;restore name&gt;-ckpt</c>, the Restore's name cut (at a letter or
    /// digit) so that it fits 253 characters.
    /// </summary>
    public static string CheckpointName(string restoreName)
    {
        ArgumentException.ThrowIfNullOrEmpty(restoreName);
        const string tail = "-ckpt";
        var keep = Math.Min(restoreName.Length, ScheduleNames.MaxNameLength - tail.Length);
        return restoreName[..keep].TrimEnd('-', '.') + tail;
    }

    private readonly record struct Step(Restore? Restore, ReconcileResult? Result)
    {
        public static Step Next(Restore r) => new(r, null);
        public static Step Stop(ReconcileResult result) => new(null, result);
        public static readonly Step Continue = new(null, null);
        public bool IsContinue => Restore is null && Result is null;
    }

    public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var restore = _restores.Get(key);
        try
        {
            for (var step = 0; step < MaxStepsPerReconcile; step++)
            {
                if (restore is null || !restore.Spec.IsMigration || RestoreStages.IsTerminal(restore)) return ReconcileResult.Done;
                var next = await StepAsync(restore, ct).ConfigureAwait(false);
                if (next.Result is { } result) return result;
                restore = next.Restore;
            }
            return ReconcileResult.Requeue;
        }
        catch (ConflictException)
        {
            // another writer (or our own write the cache has not shown yet): decide again from the caches
            return ReconcileResult.Requeue;
        }
    }

    private async Task<Step> StepAsync(Restore r, CancellationToken ct)
    {
        var s = r.Status;
        if (s?.Phase is null) return await StartAsync(r, ct).ConfigureAwait(false);
        if (s.Timeline?.CheckpointedAt is null) return await CheckpointAsync(r, ct).ConfigureAwait(false);
        if (s.Timeline.SourceDeletedAt is null)
            return await WriteAsync(r, st =>
            {
                st.Timeline!.SourceDeletedAt = Now();
                st.Message = $"deleting pod {r.Spec.Target.Name} on node {st.SourceNode} after its checkpoint {st.CheckpointName}";
            }, ct).ConfigureAwait(false);

        var stopped = await SourceAsync(r, ct).ConfigureAwait(false);
        if (!stopped.IsContinue) return stopped;
        if (s.ReplacementPodUid is null)
        {
            var replaced = s.ReplicaSet is not null
                ? await ReplicaSetReplacementAsync(r, ct).ConfigureAwait(false)
                : await RecreateAsync(r, ct).ConfigureAwait(false);
            if (!replaced.IsContinue) return replaced;
        }
        return await FollowAsync(r, ct).ConfigureAwait(false);
    }

    // ---- start: what can be moved, and how ----

    private async Task<Step> StartAsync(Restore r, CancellationToken ct)
    {
        var ns = r.Metadata.Namespace!;
        var name = r.Spec.Target.Name;
        if (r.Spec.Validate() is { Count: > 0 } errors)
            return await FailAsync(r, ReasonInvalidSpec, "invalid spec: " + string.Join("; ", errors.Select(e => e.ToString())), ct).ConfigureAwait(false);
        var pod = _pods.Get(new ObjectKey(ns, name));
        if (pod is null || !RestorePods.IsRunning(pod))
            return await FailAsync(r, ReasonPodNotFound,
                $"pod {ns}/{name} {(pod is null ? "does not exist" : "is not running")}; nothing was checkpointed", ct).ConfigureAwait(false);
        var others = pod.Spec.Containers.Select(c => c.Name).Where(c => c != PodFailureOptions.InterceptorSidecar).ToList();
        var container = r.Spec.Container ?? (others.Count == 1 ? others[0] : null);
        if (container is null || RestorePods.StatusOf(pod, container)?.State?.Running is null)
            return await FailAsync(r, ReasonContainerNotFound, r.Spec.Container is null
                ? $"pod {ns}/{name} has {others.Count} containers besides crsc's sidecar ({string.Join(", ", others)}); name one in spec.container"
                : $"pod {ns}/{name} has no running container {container} (it has {string.Join(", ", pod.Spec.Containers.Select(c => c.Name))})", ct)
                .ConfigureAwait(false);

        var owner = RestorePods.Controller(pod);
        var target = r.Spec.TargetNode;
        if (owner is not null && owner.Kind != "ReplicaSet")
            return await FailAsync(r, ReasonUnsupportedOwner,
                $"pod {ns}/{name} is controlled by {owner.Kind} {owner.Name}: a migration moves a Deployment's (ReplicaSet's) pod or a bare pod", ct)
                .ConfigureAwait(false);
        if (owner is null && target is null)
            return await FailAsync(r, ReasonTargetNodeRequired,
                $"pod {ns}/{name} is a bare pod (no controller), which crsc makes again itself on the node it is given: set spec.targetNode (crsc migrate --to NODE)", ct)
                .ConfigureAwait(false);
        if (target is not null)
        {
            try
            {
                await _nodesApi.GetAsync(null, target, ct).ConfigureAwait(false);
            }
            catch (NotFoundException)
            {
                return await FailAsync(r, ReasonNodeNotFound, $"target node {target} does not exist; nothing was checkpointed", ct).ConfigureAwait(false);
            }
        }
        if (owner is not null && target is not null)
        {
            ReplicaSet rs;
            try
            {
                rs = await _replicaSetsApi.GetAsync(ns, owner.Name, ct).ConfigureAwait(false);
            }
            catch (NotFoundException)
            {
                return await FailAsync(r, ReasonUnsupportedOwner, $"pod {ns}/{name}'s ReplicaSet {owner.Name} does not exist", ct).ConfigureAwait(false);
            }
            if (!HasPlacementGate(rs.Spec.Template?.Spec))
            {
                var workload = RestorePods.DeploymentOf(pod) is { } d ? $"Deployment {d}" : $"ReplicaSet {owner.Name}";
                return await FailAsync(r, ReasonPlacementGateMissing,
                    $"cannot pin the replacement of pod {ns}/{name} to node {target}: kube-apiserver lets crsc set a pod's node affinity only " +
                    $"while the pod is held by a scheduling gate, and the pod template of {workload} has no gate {SchedulingGates.RestorePlacement}. " +
                    $"Add it (spec.template.spec.schedulingGates: [{{name: {SchedulingGates.RestorePlacement}}}]; crsc removes it from every new pod) " +
                    "and migrate again, or migrate without a target node; nothing was checkpointed", ct).ConfigureAwait(false);
            }
        }

        string? sourcePod = null;
        if (owner is null)
        {
            sourcePod = JsonSerializer.Serialize(new Pod
            {
                Metadata = new ObjectMeta
                {
                    Labels = pod.Metadata.Labels, Annotations = pod.Metadata.Annotations, OwnerReferences = pod.Metadata.OwnerReferences,
                },
                Spec = pod.Spec,
            }, KubeJsonContext.Default.Pod);
            if (sourcePod.Length > RestoreStatus.MaxSourcePodLength)
                return await FailAsync(r, ReasonUnsupportedOwner,
                    $"pod {ns}/{name}'s spec is {sourcePod.Length} characters of JSON, more than the {RestoreStatus.MaxSourcePodLength} a Restore keeps to make it again", ct)
                    .ConfigureAwait(false);
        }

        var now = Now();
        var started = await WriteAsync(r, st =>
        {
            st.Phase = RestorePhase.Pending;
            st.StartedAt = now;
            st.SourcePodUid = pod.Metadata.Uid;
            st.SourceNode = pod.Spec.NodeName;
            st.ReplicaSet = owner?.Name;
            st.SourcePod = sourcePod;
            st.CheckpointName = CheckpointName(r.Metadata.Name!);
            st.Timeline = new RestoreTimeline();
            st.Message = $"checkpointing container {container} of pod {name} on node {pod.Spec.NodeName}";
        }, ct).ConfigureAwait(false);
        if (started.Restore is { } written)
        {
            Log.MigrationStarted(_logger, ns, r.Metadata.Name!, name, pod.Spec.NodeName ?? "", target ?? "(the scheduler's choice)");
            return await CreateCheckpointAsync(written, pod, container, ct).ConfigureAwait(false);
        }
        return started;
    }

    private static bool HasPlacementGate(PodSpec? spec) =>
        spec?.Extra?.GetValueOrDefault("schedulingGates") is { ValueKind: JsonValueKind.Array } gates
        && gates.EnumerateArray().Any(g => g.TryGetProperty("name", out var n) && n.GetString() == SchedulingGates.RestorePlacement);

    // ---- the checkpoint ----

    private async Task<Step> CreateCheckpointAsync(Restore r, Pod pod, string container, CancellationToken ct)
    {
        var checkpoint = new ContainerCheckpoint
        {
            Metadata = new ObjectMeta
            {
                Namespace = r.Metadata.Namespace,
                Name = r.Status!.CheckpointName,
                OwnerReferences =
                [
                    new OwnerReference
                    {
                        ApiVersion = CrscApi.GroupVersion, Kind = Restore.KindName, Name = r.Metadata.Name!, Uid = r.Metadata.Uid!,
                        Controller = true, BlockOwnerDeletion = true,
                    },
                ],
            },
            Spec = new ContainerCheckpointSpec { PodName = pod.Metadata.Name!, Container = container },
        };
        try
        {
            await _checkpointsApi.CreateAsync(checkpoint, ct).ConfigureAwait(false);
            _events.Normal(r, "Checkpointing", $"checkpointing container {container} of pod {pod.Metadata.Name} (ContainerCheckpoint {checkpoint.Metadata.Name})");
        }
        catch (AlreadyExistsException)
        {
            // made before (the cache had not shown it); whose it is is checked when it is read
        }
        return await WriteAsync(r, st => st.Phase = RestorePhase.Restoring, ct).ConfigureAwait(false);
    }

    private async Task<Step> CheckpointAsync(Restore r, CancellationToken ct)
    {
        var ns = r.Metadata.Namespace!;
        var s = r.Status!;
        var name = s.CheckpointName ?? CheckpointName(r.Metadata.Name!);
        var checkpoint = _checkpoints.Get(new ObjectKey(ns, name));
        if (checkpoint is null && s.Phase == RestorePhase.Restoring)
        {
            // made already (the phase says so) and the cache does not show it yet: the server's copy decides
            try
            {
                checkpoint = await _checkpointsApi.GetAsync(ns, name, ct).ConfigureAwait(false);
            }
            catch (NotFoundException)
            {
                // deleted since: made again below
            }
        }
        var pod = _pods.Get(new ObjectKey(ns, r.Spec.Target.Name));
        var source = pod is not null && pod.Metadata.Uid == s.SourcePodUid ? pod : null;
        if (checkpoint is null)
        {
            if (!RestorePods.IsRunning(source!))
                return await FailAsync(r, ReasonPodGone, $"pod {r.Spec.Target.Name} stopped before it was checkpointed", ct).ConfigureAwait(false);
            var container = r.Spec.Container
                            ?? source!.Spec.Containers.Select(c => c.Name).Single(c => c != PodFailureOptions.InterceptorSidecar);
            return await CreateCheckpointAsync(r, source!, container, ct).ConfigureAwait(false);
        }
        if (checkpoint.Metadata.OwnerReferences?.Any(o => o.Uid == r.Metadata.Uid) != true)
            return await FailAsync(r, ReasonCheckpointFailed,
                $"ContainerCheckpoint {name} exists and is not this migration's; nothing was moved", ct).ConfigureAwait(false);
        switch (checkpoint.Status?.Phase)
        {
            case ContainerCheckpointPhase.Failed:
                return await FailAsync(r, ReasonCheckpointFailed,
                    $"checkpoint {name} of pod {r.Spec.Target.Name} failed: {checkpoint.Status.Message}; the pod keeps running on node {s.SourceNode}", ct)
                    .ConfigureAwait(false);
            case ContainerCheckpointPhase.Completed when checkpoint.Status.ContentName is { Length: > 0 }:
                var at = checkpoint.Status.CompletedAt ?? Now();
                _events.Normal(r, "Checkpointed", $"checkpoint {name} of pod {r.Spec.Target.Name} completed; deleting the pod");
                return await WriteAsync(r, st =>
                {
                    st.Timeline ??= new RestoreTimeline();
                    st.Timeline.CheckpointedAt = at;
                    st.Message = $"checkpoint {name} completed on node {st.SourceNode}";
                }, ct).ConfigureAwait(false);
            default:
                if (source is null || !RestorePods.IsLive(source))
                    return await FailAsync(r, ReasonPodGone, $"pod {r.Spec.Target.Name} went away before its checkpoint {name} completed", ct)
                        .ConfigureAwait(false);
                return Step.Stop(ReconcileResult.Done); // the checkpoint's change wakes it
        }
    }

    // ---- the source pod: deleted, and when it stopped ----

    private async Task<Step> SourceAsync(Restore r, CancellationToken ct)
    {
        var ns = r.Metadata.Namespace!;
        var s = r.Status!;
        var pod = _pods.Get(new ObjectKey(ns, r.Spec.Target.Name));
        var source = pod is not null && pod.Metadata.Uid == s.SourcePodUid ? pod : null;
        if (source is { Metadata.DeletionTimestamp: null })
        {
            try
            {
                await _podsApi.DeleteAsync(ns, source.Metadata.Name!, new DeleteOptions(PreconditionUid: source.Metadata.Uid), ct).ConfigureAwait(false);
                Log.SourceDeleted(_logger, ns, r.Metadata.Name!, source.Metadata.Name!);
            }
            catch (Exception e) when (e is NotFoundException or ConflictException)
            {
                // gone already, or another pod under the name now (the cache was behind)
            }
        }
        if (s.Timeline!.SourceStoppedAt is not null) return Step.Continue;
        DateTimeOffset? stoppedAt = null;
        if (source is null) stoppedAt = Now();
        else if (source.Status?.ContainerStatuses?.Select(c => c.State?.Terminated?.FinishedAt).Where(t => t is not null).Max() is { } finished
                 && source.Status.ContainerStatuses.All(c => c.State?.Running is null))
            stoppedAt = finished;
        if (stoppedAt is not { } stopped) return Step.Continue;
        return await WriteAsync(r, st => st.Timeline!.SourceStoppedAt = stopped, ct).ConfigureAwait(false);
    }

    // ---- the replacement ----

    /// <summary>A Deployment's pod: the ReplicaSet's replacement is annotated (and pinned, with a target node).</summary>
    private async Task<Step> ReplicaSetReplacementAsync(Restore r, CancellationToken ct)
    {
        var ns = r.Metadata.Namespace!;
        var s = r.Status!;
        var checkpoint = s.CheckpointName!;
        var deletedAt = s.Timeline!.SourceDeletedAt!.Value;
        var replacement = _pods.List()
            .Where(p => p.Metadata.Namespace == ns && RestorePods.IsLive(p) && p.Metadata.Uid != s.SourcePodUid
                        && RestorePods.Controller(p) is { Kind: "ReplicaSet" } o && o.Name == s.ReplicaSet
                        && (p.Metadata.CreationTimestamp ?? DateTimeOffset.MaxValue) >= KubeTime.Truncate(deletedAt)
                        && (p.Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFrom) is not { } a || a == checkpoint))
            .OrderByDescending(p => p.Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFrom) == checkpoint)
            .ThenBy(p => p.Metadata.CreationTimestamp)
            .ThenBy(p => p.Metadata.Name, StringComparer.Ordinal)
            .FirstOrDefault();
        if (replacement is null)
        {
            var left = deletedAt + _options.ReplacementTimeout - _time.GetUtcNow();
            if (left > TimeSpan.Zero) return Step.Stop(ReconcileResult.RequeueAfter(left));
            return await FailAsync(r, ReasonNoReplacement,
                $"ReplicaSet {s.ReplicaSet} made no replacement of pod {r.Spec.Target.Name} within {_options.ReplacementTimeout} of its deletion; checkpoint {checkpoint} is kept",
                ct).ConfigureAwait(false);
        }

        var target = r.Spec.TargetNode;
        var pinned = target is not null && ReplacementPlacementReconciler.IsGated(replacement);
        var patch = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["uid"] = replacement.Metadata.Uid,
                ["resourceVersion"] = replacement.Metadata.ResourceVersion,
                ["annotations"] = new JsonObject
                {
                    [Annotations.RestoreFrom] = checkpoint,
                    [Annotations.Placement] = pinned ? $"pinned to node {target} by migration {r.Metadata.Name}" : null,
                },
            },
        };
        if (pinned)
            patch["spec"] = new JsonObject
            {
                ["schedulingGates"] = RemainingGates(replacement),
                ["affinity"] = new JsonObject
                {
                    ["nodeAffinity"] = new JsonObject
                    {
                        ["requiredDuringSchedulingIgnoredDuringExecution"] = new JsonObject { ["nodeSelectorTerms"] = PinnedTerms(replacement, target!) },
                    },
                },
            };
        try
        {
            // a merge patch replaces the lists it names whole: both were computed from this resourceVersion of the pod
            await _podsApi.PatchAsync(ns, replacement.Metadata.Name!, PatchType.Merge, patch.ToJsonString(), ct).ConfigureAwait(false);
        }
        catch (NotFoundException)
        {
            return Step.Stop(ReconcileResult.Requeue);
        }
        var how = pinned ? $"pinned to node {target}"
            : target is null ? "placed by the scheduler"
            : $"NOT pinned to node {target}: it was released from its scheduling gate {SchedulingGates.RestorePlacement} before crsc could pin it";
        var message = $"replacement pod {replacement.Metadata.Name} of ReplicaSet {s.ReplicaSet} ({how}) is restored from checkpoint {checkpoint} by its node";
        Log.Replacement(_logger, ns, r.Metadata.Name!, replacement.Metadata.Name!, how);
        _events.Normal(r, "Replacement", message);
        return await WriteAsync(r, st =>
        {
            st.ReplacementPod = replacement.Metadata.Name;
            st.ReplacementPodUid = replacement.Metadata.Uid;
            st.Message = message;
        }, ct).ConfigureAwait(false);
    }

    /// <summary>The pod's required node selector terms, each with <c>metadata.name In [node]</c> added (or one such term).</summary>
    internal static JsonArray PinnedTerms(Pod pod, string node)
    {
        var affinity = pod.Spec.Affinity is { } a ? JsonNode.Parse(a.GetRawText()) : null;
        var existing = affinity?["nodeAffinity"]?["requiredDuringSchedulingIgnoredDuringExecution"]?["nodeSelectorTerms"] as JsonArray;
        var terms = existing is { Count: > 0 } ? (JsonArray)existing.DeepClone() : new JsonArray(new JsonObject());
        foreach (var term in terms.OfType<JsonObject>())
        {
            var fields = term["matchFields"] as JsonArray ?? [];
            fields.Add((JsonNode)new JsonObject { ["key"] = "metadata.name", ["operator"] = "In", ["values"] = new JsonArray(node) });
            term["matchFields"] = fields;
        }
        return terms;
    }

    private static JsonArray? RemainingGates(Pod pod)
    {
        if (pod.Spec.Extra?.GetValueOrDefault("schedulingGates") is not { ValueKind: JsonValueKind.Array } gates) return null;
        var rest = new JsonArray();
        foreach (var g in gates.EnumerateArray())
        {
            if (g.TryGetProperty("name", out var n) && n.GetString() == SchedulingGates.RestorePlacement) continue;
            rest.Add(JsonNode.Parse(g.GetRawText()));
        }
        return rest.Count == 0 ? null : rest;
    }

    /// <summary>A bare pod: made again under its name on the target node, once the source is gone.</summary>
    private async Task<Step> RecreateAsync(Restore r, CancellationToken ct)
    {
        var ns = r.Metadata.Namespace!;
        var s = r.Status!;
        var name = r.Spec.Target.Name;
        var checkpoint = s.CheckpointName!;
        var existing = _pods.Get(new ObjectKey(ns, name));
        if (existing is not null)
        {
            if (existing.Metadata.Uid == s.SourcePodUid) return Step.Stop(ReconcileResult.Done); // its deletion wakes it
            if (existing.Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFrom) != checkpoint)
                return await FailAsync(r, ReasonNameTaken,
                    $"another pod {ns}/{name} was made after the source was deleted; checkpoint {checkpoint} is kept (restore it with the annotation {Annotations.RestoreFrom})",
                    ct).ConfigureAwait(false);
            return await RecordReplacementAsync(r, existing, ct).ConfigureAwait(false); // made by an earlier pass
        }

        var pod = s.SourcePod is { Length: > 0 } json ? JsonSerializer.Deserialize(json, KubeJsonContext.Default.Pod) : null;
        if (pod is null)
            return await FailAsync(r, ReasonPodGone, $"the spec of bare pod {name} was not kept; it cannot be made again (checkpoint {checkpoint} is kept)", ct)
                .ConfigureAwait(false);
        var annotations = new Dictionary<string, string>(pod.Metadata.Annotations ?? [], StringComparer.Ordinal);
        // a container restored in place before runs a checkpoint image: its own image goes back, the restore marks go
        if (annotations.GetValueOrDefault(Annotations.OriginalImage) is { } original && original.IndexOf('=', StringComparison.Ordinal) is > 0 and var eq
            && pod.Spec.Containers.FirstOrDefault(c => c.Name == original[..eq]) is { } restored && eq < original.Length - 1)
            restored.Image = original[(eq + 1)..];
        foreach (var mark in new[] { Annotations.OriginalImage, Annotations.RestoredFrom, Annotations.ReplacedContainer, Annotations.Placement })
            annotations.Remove(mark);
        annotations[Annotations.RestoreFrom] = checkpoint;
        pod.Metadata = new ObjectMeta
        {
            Namespace = ns, Name = name, Labels = pod.Metadata.Labels, Annotations = annotations, OwnerReferences = pod.Metadata.OwnerReferences,
        };
        pod.Spec.NodeName = r.Spec.TargetNode;
        // a pod given its node cannot be gated; its priority is the admission's to fill in again
        pod.Spec.Extra?.Remove("schedulingGates");
        pod.Spec.Extra?.Remove("priority");
        pod.Status = null;
        Pod created;
        try
        {
            created = await _podsApi.CreateAsync(pod, ct).ConfigureAwait(false);
        }
        catch (AlreadyExistsException)
        {
            return Step.Stop(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(1))); // the source is still terminating
        }
        Log.Replacement(_logger, ns, r.Metadata.Name!, name, $"made again on node {r.Spec.TargetNode}");
        return await RecordReplacementAsync(r, created, ct).ConfigureAwait(false);
    }

    private async Task<Step> RecordReplacementAsync(Restore r, Pod replacement, CancellationToken ct)
    {
        var message = $"pod {replacement.Metadata.Name} made again on node {replacement.Spec.NodeName}; its node restores it from checkpoint {r.Status!.CheckpointName}";
        _events.Normal(r, "Replacement", message);
        return await WriteAsync(r, st =>
        {
            st.ReplacementPod = replacement.Metadata.Name;
            st.ReplacementPodUid = replacement.Metadata.Uid;
            st.Message = message;
        }, ct).ConfigureAwait(false);
    }

    // ---- the target node's restore ----

    private async Task<Step> FollowAsync(Restore r, CancellationToken ct)
    {
        var ns = r.Metadata.Namespace!;
        var s = r.Status!;
        var podName = s.ReplacementPod!;
        var pod = _pods.Get(new ObjectKey(ns, podName)) is { } p && p.Metadata.Uid == s.ReplacementPodUid ? p : null;
        var childName = RestoreFromReconciler.RestoreName(podName, s.ReplacementPodUid!);
        var child = _restores.Get(new ObjectKey(ns, childName)) is { } c && c.Metadata.Labels?.GetValueOrDefault(Labels.RestoreFromPodUid) == s.ReplacementPodUid
            ? c : null;
        var node = pod?.Spec.NodeName is { Length: > 0 } n ? n : r.Spec.TargetNode ?? "(not scheduled yet)";

        if (child?.Status?.Phase is RestorePhase.Failed or RestorePhase.FellBack)
            return await FailAsync(r, ReasonNotRestored,
                $"replacement pod {podName} on node {node} was not restored: Restore {childName} {child.Status.Phase}: {child.Status.Message}", ct,
                childName).ConfigureAwait(false);
        if (child?.Status?.Phase == RestorePhase.Restored)
        {
            if (s.Timeline!.SourceStoppedAt is not { } stopped) return Step.Stop(ReconcileResult.Done); // the source's end wakes it
            var running = child.Status.Timeline?.RunningAt ?? child.Status.CompletedAt ?? Now();
            var downtime = running > stopped ? running - stopped : TimeSpan.Zero;
            var text = GoDuration.Format(downtime);
            var message = $"pod {r.Spec.Target.Name} moved from node {s.SourceNode} to node {node} as pod {podName} with its memory " +
                          $"(checkpoint {s.CheckpointName}): downtime {text}, from the source container's stop to the restored container running " +
                          "(the old process's last request served is approximated by its container's stop)";
            return await FinishAsync(r, RestorePhase.Restored, ReasonMigrated, message, ct, st =>
            {
                st.Downtime = text;
                st.InPlaceRestore = childName;
                st.Timeline!.RunningAt = running;
            }).ConfigureAwait(false);
        }
        if (pod is not null && !RestorePods.IsLive(pod))
            return await FailAsync(r, ReasonNotRestored, $"replacement pod {podName} ended before it was restored", ct, child?.Metadata.Name).ConfigureAwait(false);

        var condition = pod?.Status?.Conditions?.FirstOrDefault(x => x.Type == PodConditions.RestoreFrom);
        if (condition is { Status: "False" } && !RetriedReasons.Contains(condition.Reason ?? ""))
            return await FailAsync(r, condition.Reason is { Length: > 0 } reason ? reason : ReasonNotRestored,
                $"node {node} does not restore replacement pod {podName}: {condition.Message}", ct, child?.Metadata.Name).ConfigureAwait(false);
        var progress = child is not null
            ? $"node {node} restores pod {podName} in place (Restore {childName}, {child.Status?.Phase ?? RestorePhase.Pending}{(child.Status?.Message is { Length: > 0 } m ? ": " + m : "")})"
            : condition is not null
                ? $"node {node}: {condition.Message}"
                : null;
        if (progress is null || (progress == s.Message && s.InPlaceRestore == child?.Metadata.Name)) return Step.Stop(ReconcileResult.Done);
        var written = await WriteAsync(r, st =>
        {
            st.Message = progress;
            st.InPlaceRestore = child?.Metadata.Name;
        }, ct).ConfigureAwait(false);
        return written.Result is { } result ? Step.Stop(result) : Step.Stop(ReconcileResult.Done);
    }

    // ---- status ----

    private DateTimeOffset Now() => KubeTime.Truncate(_time.GetUtcNow());

    /// <summary>Writes the status from the Restore as given (its resourceVersion: a 409 decides again from the caches).</summary>
    private async Task<Step> WriteAsync(Restore r, Action<RestoreStatus> change, CancellationToken ct)
    {
        var copy = StatusWriter.DeepCopy(CrscResources.Restores, r);
        copy.Status ??= new RestoreStatus();
        copy.Status.Timeline ??= new RestoreTimeline();
        change(copy.Status);
        copy.Status.ObservedGeneration = r.Metadata.Generation;
        try
        {
            return Step.Next(await _restoresApi.UpdateStatusAsync(copy, ct).ConfigureAwait(false));
        }
        catch (NotFoundException)
        {
            return Step.Stop(ReconcileResult.Done);
        }
    }

    private Task<Step> FailAsync(Restore r, string reason, string message, CancellationToken ct, string? inPlaceRestore = null) =>
        FinishAsync(r, RestorePhase.Failed, reason, message, ct, st => st.InPlaceRestore ??= inPlaceRestore);

    private async Task<Step> FinishAsync(Restore r, RestorePhase phase, string reason, string message, CancellationToken ct,
        Action<RestoreStatus>? more = null)
    {
        var now = _time.GetUtcNow();
        var written = await WriteAsync(r, st =>
        {
            st.Phase = phase;
            st.Message = message;
            st.CompletedAt = KubeTime.Truncate(now);
            if (phase == RestorePhase.Restored) st.Timeline!.RestoredAt = KubeTime.Truncate(now);
            st.SetCondition(ConditionTypes.Ready, phase == RestorePhase.Restored ? ConditionStatus.True : ConditionStatus.False, reason, message,
                r.Metadata.Generation, now);
            more?.Invoke(st);
        }, ct).ConfigureAwait(false);
        if (written.Restore is { } done)
        {
            Log.MigrationFinished(_logger, r.Metadata.Namespace!, r.Metadata.Name!, phase.ToString(), message);
            if (phase == RestorePhase.Restored) _events.Normal(done, reason, message);
            else _events.Warning(done, reason, message);
        }
        return written.Result is { } result ? Step.Stop(result) : Step.Stop(ReconcileResult.Done);
    }

    private static partial class Log
    {
        [LoggerMessage(23101, LogLevel.Information, "Migration {Namespace}/{Name}: moving pod {Pod} from node {Source} to {Target}")]
        public static partial void MigrationStarted(ILogger logger, string @namespace, string name, string pod, string source, string target);

        [LoggerMessage(23102, LogLevel.Information, "Migration {Namespace}/{Name}: deleted pod {Pod} after its checkpoint")]
        public static partial void SourceDeleted(ILogger logger, string @namespace, string name, string pod);

        [LoggerMessage(23103, LogLevel.Information, "Migration {Namespace}/{Name}: replacement pod {Pod}, {How}")]
        public static partial void Replacement(ILogger logger, string @namespace, string name, string pod, string how);

        [LoggerMessage(23104, LogLevel.Information, "Migration {Namespace}/{Name}: {Phase}: {Message}")]
        public static partial void MigrationFinished(ILogger logger, string @namespace, string name, string phase, string message);
    }
}

using System.Text.Json.Nodes;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Reconciling;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Restores;

public sealed record ReplacementPlacementOptions
{
    /// <summary>
    /// How long a replacement crsc kept off the nodes that cannot restore may stay unschedulable before crsc gives up
    /// the restriction: it deletes that (never started) pod, and the next replacement goes to any node.
    /// </summary>
    public TimeSpan UnschedulableTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public void Validate()
    {
        if (UnschedulableTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(UnschedulableTimeout), UnschedulableTimeout, "UnschedulableTimeout must be greater than zero");
    }
}

/// <summary>
/// Chooses where a Restore's replacement pod may run (leader-only). A workload opts in by putting the scheduling gate
/// <c>crsc.io/restore-placement</c> in its pod template: every new pod then waits for crsc. A pod that a Restore of its
/// Deployment waits for (the Restore has no pod yet) gets a required node affinity that keeps it off every node whose
/// CheckpointNode says its runtime cannot restore — added to the pod only, never to the template, which kube-apiserver
/// allows only while the pod is gated — and loses the gate in the same write; any other gated pod loses the gate at
/// once. A restricted pod that no node will take within <see cref="ReplacementPlacementOptions.UnschedulableTimeout"/>
/// (every node that fits it cannot restore) has never run: crsc deletes it, marks the Restore
/// (<c>ReplacementPlacement=False</c>, <c>NoNodeCanRestore</c>) and lets the next replacement go anywhere, so the
/// workload is never left without a pod. Without the gate a replacement goes where the scheduler puts it, and a
/// Restore that finds it on a node that cannot restore says so and names the gate. A gated pod that a migration to a
/// named node waits to pin (<see cref="MigrationReconciler.WaitsToPin"/>) is left to the <see cref="MigrationReconciler"/>.
/// </summary>
public sealed partial class ReplacementPlacementReconciler : IReconciler
{
    public const string ControllerName = "restore-placement";
    public const string ReasonRestricted = "Restricted";
    public const string ReasonNoNodeCanRestore = "NoNodeCanRestore";

    /// <summary>Pods holding crsc's gate, or restricted by crsc and not yet on a node (internal, not API).</summary>
    private const string WatchedPodsIndex = "crsc.io/placement";
    private const string RestrictedPrefix = "restricted by Restore ";

    private readonly IKubeResourceClient<Pod> _podsApi;
    private readonly IKubeResourceClient<Restore> _restoresApi;
    private readonly Informer<Pod> _pods;
    private readonly Informer<Restore> _restores;
    private readonly Informer<CheckpointNode> _nodes;
    private readonly IRestoreBackend _backend;
    private readonly IEventRecorder _events;
    private readonly ReplacementPlacementOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    /// <param name="backend">whose verdict says which nodes cannot restore (the restore reconciler's; default: the image swap)</param>
    public static ControllerSetup<ReplacementPlacementReconciler> SetUp(ControllerManager manager, ReplacementPlacementOptions? options = null,
        IRestoreBackend? backend = null)
    {
        ArgumentNullException.ThrowIfNull(manager);
        var pods = manager.Informers.For(Resources.Pods);
        var restores = manager.Informers.For(CrscResources.Restores);
        var nodes = manager.Informers.For(CrscResources.CheckpointNodes);
        var reconciler = new ReplacementPlacementReconciler(manager.Kube, pods, restores, nodes, manager.Events,
            options ?? new ReplacementPlacementOptions(), manager.Time, manager.Loggers.CreateLogger<ReplacementPlacementReconciler>(), backend);
        var controller = manager.NewController(ControllerName, reconciler, workers: 1);
        controller.Watch(pods, p => Watched(p) ? [EnqueueHandlers.KeyOf(p)] : []);
        controller.Watch(restores, r => reconciler.WatchedPodsOf(r));
        // a node's capability changes which nodes a restriction names; without the CRD nothing is restricted
        controller.WatchWithoutWaiting(nodes, _ => reconciler.AllWatchedPods());
        return new(manager.Add(controller, leaderOnly: true), reconciler);
    }

    public ReplacementPlacementReconciler(IKubeApi kube, Informer<Pod> pods, Informer<Restore> restores, Informer<CheckpointNode> nodes,
        IEventRecorder events, ReplacementPlacementOptions options, TimeProvider time, ILogger? logger = null, IRestoreBackend? backend = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        options.Validate();
        _backend = backend ?? new ImageSwapRestoreBackend(kube);
        _podsApi = kube.Resource(Resources.Pods);
        _restoresApi = kube.Resource(CrscResources.Restores);
        _pods = pods;
        _restores = restores;
        _nodes = nodes;
        _events = events;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        pods.TryAddIndexer(WatchedPodsIndex, p => Watched(p) ? ["yes"] : []);
        pods.TryAddIndexer(RestoreReconciler.PodsByDeploymentIndex, RestorePods.DeploymentKeys);
        RestoreReconciler.IndexBySubject(restores);
    }

    public static bool IsGated(Pod pod) =>
        pod.Spec.Extra?.TryGetValue("schedulingGates", out var gates) == true
        && gates.ValueKind == System.Text.Json.JsonValueKind.Array
        && gates.EnumerateArray().Any(g => g.TryGetProperty("name", out var n) && n.GetString() == SchedulingGates.RestorePlacement);

    private static string? RestrictedFor(Pod pod) =>
        pod.Metadata.Annotations?.GetValueOrDefault(Annotations.Placement) is { } placed && placed.StartsWith(RestrictedPrefix, StringComparison.Ordinal)
            ? placed[RestrictedPrefix.Length..].Split(':', 2)[0]
            : null;

    private static bool Watched(Pod pod) =>
        RestorePods.IsLive(pod) && (IsGated(pod) || (RestrictedFor(pod) is not null && string.IsNullOrEmpty(pod.Spec.NodeName)));

    private IEnumerable<ObjectKey> AllWatchedPods() => _pods.ByIndex(WatchedPodsIndex, "yes").Select(EnqueueHandlers.KeyOf);

    private IEnumerable<ObjectKey> WatchedPodsOf(Restore r) =>
        r.Spec.Target.Kind == RestoreTargetKind.Deployment
            ? _pods.ByIndex(RestoreReconciler.PodsByDeploymentIndex, $"{r.Metadata.Namespace}/{r.Spec.Target.Name}")
                .Where(Watched).Select(EnqueueHandlers.KeyOf)
            // a migration that held its ReplicaSet's gated pods lets the others go once it has its replacement (or ended)
            : r.Spec.IsMigration && r.Status?.ReplicaSet is { Length: > 0 } rs
                ? _pods.ByIndex(WatchedPodsIndex, "yes")
                    .Where(p => p.Metadata.Namespace == r.Metadata.Namespace && RestorePods.Controller(p)?.Name == rs)
                    .Select(EnqueueHandlers.KeyOf)
                : [];

    public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var pod = _pods.Get(key);
        if (pod is null || !RestorePods.IsLive(pod)) return ReconcileResult.Done;
        try
        {
            if (IsGated(pod))
            {
                // a migration to a named node pins this pod itself, removing the gate in the same write
                if (_restores.List().Any(r => MigrationReconciler.WaitsToPin(r, pod))) return ReconcileResult.Done;
                return await ReleaseAsync(pod, ct).ConfigureAwait(false);
            }
            if (RestrictedFor(pod) is { } restore && string.IsNullOrEmpty(pod.Spec.NodeName))
                return await WatchUnschedulableAsync(pod, restore, ct).ConfigureAwait(false);
            return ReconcileResult.Done;
        }
        catch (ConflictException)
        {
            // the pod (or the Restore) changed since the cache's copy: its event brings the next decision
            return ReconcileResult.Requeue;
        }
        catch (NotFoundException)
        {
            return ReconcileResult.Done;
        }
    }

    /// <summary>The Restore of the pod's Deployment that waits for a pod to restore (has none yet), if any.</summary>
    private Restore? WaitingRestoreOf(Pod pod) =>
        RestoreReconciler.RestoresOfPod(_restores, pod)
            .Select(_restores.Get)
            .Where(r => r is { Spec.Target.Kind: RestoreTargetKind.Deployment } && string.IsNullOrEmpty(r.Status?.PodName))
            .OrderBy(r => r!.Metadata.CreationTimestamp ?? DateTimeOffset.MinValue)
            .ThenBy(r => r!.Metadata.Name, StringComparer.Ordinal)
            .FirstOrDefault();

    /// <summary>The nodes where the restore step cannot run (the backend's verdict on their CheckpointNode: a fact, not an Unknown), by name.</summary>
    private List<string> NodesThatCannotRestore() =>
        _nodes.List()
            .Where(_backend.CannotRestoreOn)
            .Select(n => n.Metadata.Name!)
            .Order(StringComparer.Ordinal)
            .ToList();

    private async Task<ReconcileResult> ReleaseAsync(Pod pod, CancellationToken ct)
    {
        var restore = WaitingRestoreOf(pod);
        var excluded = NodesThatCannotRestore();
        string placement;
        JsonArray? terms = null;
        if (restore is null)
            placement = "released: no Restore waits for this pod";
        else if (restore.Status?.FindCondition(RestoreConditions.ReplacementPlacement) is { Status: ConditionStatus.False } gaveUp)
            placement = $"released: Restore {restore.Metadata.Name} gave up choosing nodes ({gaveUp.Message})";
        else if (excluded.Count == 0)
            placement = $"released: every node crsc knows can restore (Restore {restore.Metadata.Name})";
        else
        {
            terms = NarrowedTerms(pod, excluded);
            placement = $"{RestrictedPrefix}{restore.Metadata.Name}: not on {string.Join(", ", excluded)} (their runtime cannot restore)";
        }

        var spec = new JsonObject { ["schedulingGates"] = RemainingGates(pod) };
        if (terms is not null)
            spec["affinity"] = new JsonObject
            {
                ["nodeAffinity"] = new JsonObject
                {
                    ["requiredDuringSchedulingIgnoredDuringExecution"] = new JsonObject { ["nodeSelectorTerms"] = terms },
                },
            };
        var patch = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["uid"] = pod.Metadata.Uid,
                ["resourceVersion"] = pod.Metadata.ResourceVersion,
                ["annotations"] = new JsonObject { [Annotations.Placement] = placement },
            },
            ["spec"] = spec,
        };
        // a merge patch replaces the lists it names whole: both were computed from this resourceVersion of the pod
        await _podsApi.PatchAsync(pod.Metadata.Namespace, pod.Metadata.Name!, PatchType.Merge, patch.ToJsonString(), ct).ConfigureAwait(false);
        Log.Released(_logger, pod.Metadata.Namespace!, pod.Metadata.Name!, placement);
        if (terms is not null)
        {
            var message = $"replacement pod {pod.Metadata.Name} may run only on nodes that can restore: kept off {string.Join(", ", excluded)}";
            _events.Normal(pod, "RestorePlacement", message);
            await SetPlacementConditionAsync(restore!, ConditionStatus.True, ReasonRestricted, message, ct).ConfigureAwait(false);
        }
        return ReconcileResult.Done;
    }

    /// <summary>
    /// The pod's required node selector terms with one <c>metadata.name NotIn</c> requirement per excluded node added to
    /// each (kube-apiserver takes one value per node field requirement; requirements in a term are ANDed), or one term
    /// of them when the pod had none.
    /// </summary>
    internal static JsonArray NarrowedTerms(Pod pod, IReadOnlyList<string> excluded)
    {
        var affinity = pod.Spec.Affinity is { } a ? JsonNode.Parse(a.GetRawText()) : null;
        var existing = affinity?["nodeAffinity"]?["requiredDuringSchedulingIgnoredDuringExecution"]?["nodeSelectorTerms"] as JsonArray;
        var terms = existing is { Count: > 0 } ? (JsonArray)existing.DeepClone() : new JsonArray(new JsonObject());
        foreach (var term in terms.OfType<JsonObject>())
        {
            var fields = term["matchFields"] as JsonArray ?? [];
            foreach (var node in excluded)
            {
                fields.Add((JsonNode)new JsonObject
                {
                    ["key"] = "metadata.name",
                    ["operator"] = "NotIn",
                    ["values"] = new JsonArray(node),
                });
            }
            term["matchFields"] = fields;
        }
        return terms;
    }

    private static JsonArray? RemainingGates(Pod pod)
    {
        if (pod.Spec.Extra?.GetValueOrDefault("schedulingGates") is not { ValueKind: System.Text.Json.JsonValueKind.Array } gates) return null;
        var rest = new JsonArray();
        foreach (var g in gates.EnumerateArray())
        {
            if (g.TryGetProperty("name", out var n) && n.GetString() == SchedulingGates.RestorePlacement) continue;
            rest.Add(JsonNode.Parse(g.GetRawText()));
        }
        return rest.Count == 0 ? null : rest;
    }

    /// <summary>
    /// A restricted pod the scheduler cannot place: after the timeout crsc gives the restriction up — the Restore is
    /// marked first (so its next replacement is let go anywhere), then the never-started pod is deleted.
    /// </summary>
    private async Task<ReconcileResult> WatchUnschedulableAsync(Pod pod, string restoreName, CancellationToken ct)
    {
        var scheduled = pod.Status?.Conditions?.FirstOrDefault(c => c.Type == "PodScheduled");
        if (scheduled is not { Status: "False", Reason: "Unschedulable" }) return ReconcileResult.Done;
        var since = scheduled.LastTransitionTime ?? pod.Metadata.CreationTimestamp ?? _time.GetUtcNow();
        var left = since + _options.UnschedulableTimeout - _time.GetUtcNow();
        if (left > TimeSpan.Zero) return ReconcileResult.RequeueAfter(left);

        var why = $"no node that can restore will take replacement pod {pod.Metadata.Name} ({scheduled.Message ?? "unschedulable"}) "
                  + $"after {_options.UnschedulableTimeout}; it is deleted and the next replacement may run on any node";
        if (_restores.Get(new ObjectKey(pod.Metadata.Namespace!, restoreName)) is { } restore && !RestoreReconciler.IsTerminal(restore))
            await SetPlacementConditionAsync(restore, ConditionStatus.False, ReasonNoNodeCanRestore, why, ct).ConfigureAwait(false);
        await _podsApi.DeleteAsync(pod.Metadata.Namespace, pod.Metadata.Name!, new DeleteOptions(PreconditionUid: pod.Metadata.Uid), ct)
            .ConfigureAwait(false);
        Log.GaveUp(_logger, pod.Metadata.Namespace!, pod.Metadata.Name!, why);
        _events.Warning(pod, "RestorePlacementGivenUp", why);
        return ReconcileResult.Done;
    }

    /// <summary>The condition on the Restore as the server has it (the restore reconciler writes the same status).</summary>
    private async Task SetPlacementConditionAsync(Restore cached, ConditionStatus status, string reason, string message, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            var r = await _restoresApi.GetAsync(cached.Metadata.Namespace, cached.Metadata.Name!, ct).ConfigureAwait(false);
            if (RestoreReconciler.IsTerminal(r)) return;
            r.Status ??= new RestoreStatus();
            r.Status.SetCondition(RestoreConditions.ReplacementPlacement, status, reason, message, r.Metadata.Generation, _time.GetUtcNow());
            try
            {
                var written = await _restoresApi.UpdateStatusAsync(r, ct).ConfigureAwait(false);
                if (status == ConditionStatus.True) _events.Normal(written, "RestorePlacement", message);
                else _events.Warning(written, "RestorePlacementGivenUp", message);
                return;
            }
            catch (ConflictException) when (attempt < 3)
            {
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(21601, LogLevel.Information, "Pod {Namespace}/{Name} released from its scheduling gate: {Placement}")]
        public static partial void Released(ILogger logger, string @namespace, string name, string placement);

        [LoggerMessage(21602, LogLevel.Warning, "Pod {Namespace}/{Name}: {Message}")]
        public static partial void GaveUp(ILogger logger, string @namespace, string name, string message);
    }
}

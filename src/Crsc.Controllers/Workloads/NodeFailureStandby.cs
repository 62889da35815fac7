using Crsc.Api.Crds;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Leadership;
using Crsc.Controllers.Restores;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Workloads;

public sealed record NodeFailureStandbyOptions
{
    /// <summary>This node: the standby acts for its pods only.</summary>
    public required string NodeName { get; init; }

    /// <summary>crsc's namespace, where the leader's Lease is.</summary>
    public required string Namespace { get; init; }

    public string LeaseName { get; init; } = LeaderElectionOptions.DefaultLeaseName;

    /// <summary>See <see cref="LeaderLivenessOptions.AbsentAfter"/>.</summary>
    public TimeSpan LeaderAbsentAfter { get; init; } = LeaderLivenessOptions.DefaultAbsentAfter;

    /// <summary>The failure detector's thresholds (the leader's, so that both decide alike).</summary>
    public PodFailureOptions? PodFailure { get; init; }

    /// <summary>The restore state manager's timeouts (the leader's).</summary>
    public RestoreReconcilerOptions? Restore { get; init; }
}

/// <summary>
/// A restore does not wait for a new leader: the node agent that sees a failure acts on it while the leader is absent.
/// Every node runs a standby instance of the failure detector and of the restore state manager, restricted to its own
/// pods (<see cref="PodFailureReconciler.SetUpStandby"/>, <see cref="RestoreReconciler.SetUpStandby"/>), gated by
/// <see cref="Active"/>: the leader's Lease has not been seen to change for <see cref="LeaderLivenessOptions.AbsentAfter"/>
/// (or is gone, or has no holder — <see cref="LeaderLiveness"/>) and this process does not lead. While the leader is
/// there the instances read their caches and write nothing. When it goes, every workload with pods here and every
/// unfinished Restore is looked at at once (a failure seen just before is handled); when a leader is there again (its
/// Lease changes: renewed, or taken by a new one) the instances stop writing and the leader continues each Restore
/// from its status. The Restore stays the one point of coordination: one per incident under a deterministic name,
/// created idempotently, its attempts counted resourceVersion-checked before the pod is patched, and the patch itself
/// conditional on the pod's resourceVersion — so leader and node never both patch.
/// </summary>
public sealed partial class NodeFailureStandby
{
    private readonly Lock _gate = new();
    private readonly LeaderLiveness _liveness;
    private readonly Func<bool> _leading;
    private readonly ILogger _logger;
    private bool _acting;

    private NodeFailureStandby(string nodeName, LeaderLiveness liveness, Func<bool> leading, ILogger logger)
    {
        NodeName = nodeName;
        _liveness = liveness;
        _leading = leading;
        _logger = logger;
    }

    /// <summary>
    /// Sets the standby up with <paramref name="manager"/> (node work): the watch on the leader's Lease and the two
    /// node-scoped standby controllers. It is active only where <paramref name="manager"/> does not lead (a manager
    /// without an elector leads for its whole run, so it never is).
    /// </summary>
    public static NodeFailureStandby SetUp(ControllerManager manager, NodeFailureStandbyOptions options)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.NodeName);
        var liveness = LeaderLiveness.SetUp(manager, new LeaderLivenessOptions
        {
            Namespace = options.Namespace, LeaseName = options.LeaseName, AbsentAfter = options.LeaderAbsentAfter,
        });
        var standby = new NodeFailureStandby(options.NodeName, liveness, () => manager.IsLeading, manager.Loggers.CreateLogger<NodeFailureStandby>());
        var scope = new NodeStandbyScope(options.NodeName, () => standby.Active);
        standby.Failures = PodFailureReconciler.SetUpStandby(manager, scope, options.PodFailure);
        standby.Restores = RestoreReconciler.SetUpStandby(manager, scope, options.Restore);
        var pods = manager.Informers.PodsOnNode(options.NodeName);
        var restores = manager.Informers.For(CrscResources.Restores);
        liveness.Changed += present =>
        {
            if (!standby.Changed(present)) return;
            // what was seen while the leader was there, decided now
            foreach (var pod in pods.List())
                if (standby.Failures.Reconciler.WorkloadOf(pod) is { } workload) standby.Failures.Controller.Enqueue(workload);
            foreach (var restore in restores.List())
                if (!RestoreReconciler.IsTerminal(restore)) standby.Restores.Controller.Enqueue(restore.Metadata.Key);
        };
        return standby;
    }

    public string NodeName { get; }

    public LeaderLiveness Liveness => _liveness;

    /// <summary>The node's standby failure detector.</summary>
    public ControllerSetup<PodFailureReconciler> Failures { get; private set; } = null!;

    /// <summary>The node's standby restore state manager.</summary>
    public ControllerSetup<RestoreReconciler> Restores { get; private set; } = null!;

    /// <summary>True while this node acts in the leader's place: the leader is absent and this process does not lead.</summary>
    public bool Active => !_leading() && !_liveness.LeaderPresent;

    /// <summary>Logs the takeover and the hand-back; true when this node has just taken over.</summary>
    private bool Changed(bool present)
    {
        lock (_gate)
        {
            if (!present && !_acting && !_leading())
            {
                _acting = true;
                Log.TakingOver(_logger, NodeName, _liveness.Holder ?? "(none)", _liveness.SinceLastChange, _liveness.Options.AbsentAfter);
                return true;
            }
            if (present && _acting)
            {
                _acting = false;
                Log.HandingBack(_logger, NodeName, _liveness.Holder ?? "(none)");
            }
            return false;
        }
    }

    // event ids: a block of its own in Crsc.Controllers' range
    private static partial class Log
    {
        [LoggerMessage(21801, LogLevel.Warning, "Node {Node} takes over failure handling for its pods: the leader ({Holder}) is absent, its Lease not seen to change for {Since} (threshold {AbsentAfter})")]
        public static partial void TakingOver(ILogger logger, string node, string holder, TimeSpan since, TimeSpan absentAfter);

        [LoggerMessage(21802, LogLevel.Information, "Node {Node} hands failure handling back: the leader ({Holder}) renews its Lease again")]
        public static partial void HandingBack(ILogger logger, string node, string holder);
    }
}

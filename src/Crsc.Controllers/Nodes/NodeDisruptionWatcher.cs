using Crsc.Api.Kubernetes;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Nodes;

public sealed record NodeDisruptionOptions
{
    public required string NodeName { get; init; }

    /// <summary>Taint keys that mean "this node is going away" (<see cref="DefaultDrainTaints"/> unless configured).</summary>
    public IReadOnlyList<string> DrainTaints { get; init; } = DefaultDrainTaints;

    /// <summary>
    /// The taints that the tools which take nodes away put on a node before they drain or delete it. Looked up in their
    /// sources and docs (2026-12):
    /// <list type="bullet">
    /// <item><c>ToBeDeletedByClusterAutoscaler</c>: kubernetes/autoscaler cluster-autoscaler/utils/taints/taints.go
    /// (its soft <c>DeletionCandidateOfClusterAutoscaler</c> only marks a candidate and is left out).</item>
    /// <item><c>karpenter.sh/disrupted</c> (Karpenter v1, "markDisrupted" in pkg/controllers/disruption/queue.go and the
    /// termination controller) and the older <c>karpenter.sh/disruption</c> (value <c>disrupting</c>, before v1;
    /// kubernetes-sigs/karpenter PR 762).</item>
    /// <item><c>cloud.google.com/impending-node-termination</c>: GKE's node termination/maintenance handler
    /// (<c>--taint=cloud.google.com/impending-node-termination::NoSchedule</c>).</item>
    /// <item><c>aws-node-termination-handler/spot-itn</c>, <c>…/scheduled-maintenance</c>, <c>…/asg-lifecycle-termination</c>:
    /// aws/aws-node-termination-handler pkg/node/node.go and its TAINT_NODE docs (its
    /// <c>…/rebalance-recommendation</c> is an early hint, not a termination, and is left out: add it to checkpoint then too).</item>
    /// <item><c>remediator.aks.microsoft.com/unschedulable</c>: AKS node auto-drain on a scheduled event (Preempt on spot
    /// pools, maintenance), per the AKS docs.</item>
    /// </list>
    /// </summary>
    public static readonly IReadOnlyList<string> DefaultDrainTaints =
    [
        "ToBeDeletedByClusterAutoscaler",
        "karpenter.sh/disrupted",
        "karpenter.sh/disruption",
        "cloud.google.com/impending-node-termination",
        "aws-node-termination-handler/spot-itn",
        "aws-node-termination-handler/scheduled-maintenance",
        "aws-node-termination-handler/asg-lifecycle-termination",
        "remediator.aks.microsoft.com/unschedulable",
    ];
}

/// <summary>
/// Watches this node's own Node object (an informer on <c>metadata.name</c>) and reports to <see cref="NodeGoingAway"/>
/// whether it is going away: a listed taint (reason <see cref="NodeAwayReason.Taint"/>, which names what takes the node
/// away) or a cordon (<c>spec.unschedulable</c>, <see cref="NodeAwayReason.Drain"/>). Level-triggered: every add or
/// update of the Node is evaluated whole; the node state decides whether anything changed.
/// </summary>
public sealed partial class NodeDisruptionWatcher
{
    private readonly NodeGoingAway _state;
    private readonly NodeDisruptionOptions _options;
    private readonly ILogger _logger;
    private readonly HashSet<string> _taints;

    public NodeDisruptionWatcher(NodeGoingAway state, NodeDisruptionOptions options, ILogger logger)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(options.NodeName);
        _state = state;
        _options = options;
        _logger = logger;
        _taints = new HashSet<string>(options.DrainTaints, StringComparer.Ordinal);
    }

    /// <summary>Sets the watcher up with <paramref name="manager"/>: node work, on every instance, over an informer of this Node only.</summary>
    public static NodeDisruptionWatcher SetUp(ControllerManager manager, NodeGoingAway state, NodeDisruptionOptions options)
    {
        ArgumentNullException.ThrowIfNull(manager);
        var nodes = manager.Informers.For(Resources.Nodes,
            new InformerOptions { FieldSelector = $"metadata.name={options.NodeName}", Name = "informer/node" });
        var watcher = new NodeDisruptionWatcher(state, options, manager.Loggers.CreateLogger<NodeDisruptionWatcher>());
        // for the manager's life: the informer tells it the cached Node first, then every change
        nodes.AddEventHandler(new ResourceEventHandler<Node>(watcher.Observe, (_, n) => watcher.Observe(n), watcher.Deleted));
        return watcher;
    }

    /// <summary>What <paramref name="node"/> says: a listed taint first (it names the cause), else a cordon, else nothing.</summary>
    public static (NodeAwayReason? Reason, string? Detail) Evaluate(Node node, IReadOnlySet<string> drainTaints)
    {
        ArgumentNullException.ThrowIfNull(node);
        var cordoned = node.Spec?.Unschedulable == true;
        foreach (var taint in node.Spec?.Taints ?? [])
        {
            if (!drainTaints.Contains(taint.Key)) continue;
            var value = string.IsNullOrEmpty(taint.Value) ? "" : "=" + taint.Value;
            return (NodeAwayReason.Taint, $"taint {taint.Key}{value}:{taint.Effect}{(cordoned ? " (and cordoned)" : "")}");
        }
        return cordoned ? (NodeAwayReason.Drain, "cordoned (spec.unschedulable)") : (null, null);
    }

    /// <summary>Evaluates the Node as the informer has it now.</summary>
    public void Observe(Node node)
    {
        if (node.Metadata.Name != _options.NodeName) return;
        var (reason, detail) = Evaluate(node, _taints);
        var change = _state.Report(NodeAwaySource.NodeObject, reason, detail);
        if (change is null) return;
        if (reason is { } r) Log.GoingAway(_logger, _options.NodeName, r, detail ?? "");
        else Log.NotGoingAway(_logger, _options.NodeName);
    }

    private void Deleted(Node node)
    {
        if (node.Metadata.Name != _options.NodeName) return;
        // the object is gone, and with it what it said; the node itself may still be here (re-registered later)
        if (_state.Report(NodeAwaySource.NodeObject, null) is not null) Log.NodeDeleted(_logger, _options.NodeName);
    }

    private static partial class Log
    {
        [LoggerMessage(22501, LogLevel.Warning, "Node {Node} is going away ({Reason}): {Detail}")]
        public static partial void GoingAway(ILogger logger, string node, NodeAwayReason reason, string detail);

        [LoggerMessage(22502, LogLevel.Information, "Node {Node} no longer shows a drain or termination signal")]
        public static partial void NotGoingAway(ILogger logger, string node);

        [LoggerMessage(22503, LogLevel.Information, "Node object {Node} was deleted; its drain or termination signals no longer count")]
        public static partial void NodeDeleted(ILogger logger, string node);
    }
}

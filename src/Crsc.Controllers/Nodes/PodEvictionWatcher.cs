using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Nodes;

/// <summary>A managed pod of this node that is being taken away: its <c>DisruptionTarget</c> condition's reason.</summary>
public sealed record EvictedPod(string Namespace, string Name, string? Uid, string Reason)
{
    public override string ToString() => $"{Namespace}/{Name} ({Reason})";
}

/// <summary>
/// Watches the pods of this node (the node agent's pod informer) and reports to <see cref="NodeGoingAway"/> (source
/// <see cref="NodeAwaySource.Eviction"/>, reason <see cref="NodeAwayReason.Eviction"/>) while a managed pod is being
/// taken away by something other than its owner. The API server marks such a pod with the condition
/// <c>DisruptionTarget=True</c> before it deletes it (Kubernetes ≥ 1.26; GA in 1.31): its reason says who —
/// <c>EvictionByEvictionAPI</c> (kubectl drain, the autoscaler, the descheduler), <c>PreemptionByScheduler</c>,
/// <c>DeletionByTaintManager</c> (a NoExecute taint), <c>TerminationByKubelet</c> (node-pressure eviction, graceful
/// node shutdown), <c>DeletionByPodGC</c>. The kubelet stops the containers only after the deletion, so a checkpoint
/// started at the condition (<see cref="NodeDrainCheckpoints"/> takes the evicted pods first) runs ahead of the kill.
/// A pod counts until it is gone from the informer or its condition is cleared; "managed" is what the node state's
/// schedules select (<see cref="NodeAwayCheckpointer.ManagedOn"/>), so an unmanaged pod's eviction is nothing here.
/// </summary>
public sealed partial class PodEvictionWatcher
{
    /// <summary>The pod condition type the API server sets on a pod it is about to delete for a disruption.</summary>
    public const string DisruptionTarget = "DisruptionTarget";

    private readonly NodeGoingAway _state;
    private readonly string _nodeName;
    private readonly Func<IReadOnlyList<ManagedContainer>> _managed;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly SortedDictionary<(string Namespace, string Name), EvictedPod> _evicting = [];

    public PodEvictionWatcher(NodeGoingAway state, string nodeName, Func<IReadOnlyList<ManagedContainer>> managed, ILogger logger)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nodeName);
        _state = state;
        _nodeName = nodeName;
        _managed = managed;
        _logger = logger;
    }

    /// <summary>Follows <paramref name="nodePods"/> (the informer of this node's pods): the cached pods first, then every change.</summary>
    public void Watch(Informer<Pod> nodePods)
    {
        ArgumentNullException.ThrowIfNull(nodePods);
        nodePods.AddEventHandler(new ResourceEventHandler<Pod>(Observe, (_, p) => Observe(p), Deleted));
    }

    /// <summary>
    /// Raised after the pods being evicted changed (the node state may show no change: a drain is more urgent than an
    /// eviction and hides it).
    /// </summary>
    public event Action? Changed;

    /// <summary>The managed pods being taken away now, by namespace and name.</summary>
    public IReadOnlyList<EvictedPod> Evicting
    {
        get { lock (_gate) return [.. _evicting.Values]; }
    }

    /// <summary>Whether <paramref name="container"/>'s pod is being taken away now.</summary>
    public bool IsEvicting(ManagedContainer container)
    {
        ArgumentNullException.ThrowIfNull(container);
        lock (_gate) return _evicting.ContainsKey((container.Namespace, container.Pod));
    }

    /// <summary>The reason of <paramref name="pod"/>'s <c>DisruptionTarget=True</c> condition, or null when it has none.</summary>
    public static string? DisruptionOf(Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var condition = pod.Status?.Conditions?.FirstOrDefault(c => c.Type == DisruptionTarget);
        return condition is { Status: "True" } ? (string.IsNullOrEmpty(condition.Reason) ? "unknown reason" : condition.Reason) : null;
    }

    /// <summary>Evaluates <paramref name="pod"/> as the informer has it now.</summary>
    public void Observe(Pod pod)
    {
        ArgumentNullException.ThrowIfNull(pod);
        if (pod.Spec?.NodeName != _nodeName || pod.Metadata.Name is not { } name) return;
        var ns = pod.Metadata.Namespace ?? "default";
        var reason = DisruptionOf(pod);
        EvictedPod? added = null;
        bool changed;
        lock (_gate)
        {
            if (reason is not null && _managed().Any(c => c.Namespace == ns && c.Pod == name))
            {
                added = new EvictedPod(ns, name, pod.Metadata.Uid, reason);
                changed = !_evicting.TryGetValue((ns, name), out var known) || known != added;
                _evicting[(ns, name)] = added;
            }
            else changed = _evicting.Remove((ns, name));
            if (changed) ReportLocked();
        }
        if (!changed) return;
        if (added is not null) Log.Evicting(_logger, added.ToString());
        Changed?.Invoke();
    }

    private void Deleted(Pod pod)
    {
        if (pod.Metadata.Name is not { } name) return;
        lock (_gate)
        {
            if (!_evicting.Remove((pod.Metadata.Namespace ?? "default", name))) return;
            ReportLocked();
        }
        Changed?.Invoke();
    }

    // under the gate: the node state sees the evictions in the order they changed
    private void ReportLocked()
    {
        if (_evicting.Count == 0)
        {
            _state.Report(NodeAwaySource.Eviction, null);
            return;
        }
        var pods = string.Join(", ", _evicting.Values);
        _state.Report(NodeAwaySource.Eviction, NodeAwayReason.Eviction,
            _evicting.Count == 1 ? $"managed pod {pods} is being evicted" : $"{_evicting.Count} managed pods are being evicted: {pods}");
    }

    private static partial class Log
    {
        [LoggerMessage(22504, LogLevel.Warning, "Managed pod {Pod} is being taken away (DisruptionTarget): checkpointing it before the kubelet stops it")]
        public static partial void Evicting(ILogger logger, string pod);
    }
}

namespace Crsc.Controllers.Nodes;

/// <summary>Why the node is going away, most urgent first (the order <see cref="NodeGoingAway"/> picks the one it shows by).</summary>
public enum NodeAwayReason
{
    /// <summary>logind announced a shutdown or reboot (<c>PrepareForShutdown(true)</c>).</summary>
    Shutdown,
    /// <summary>The Node is cordoned (<c>spec.unschedulable</c>): <c>kubectl drain</c>, or a handler that drains.</summary>
    Drain,
    /// <summary>The Node carries one of the configured disruption/termination taints (autoscaler, Karpenter, spot handlers).</summary>
    Taint,
    /// <summary>A managed pod on the node is being evicted.</summary>
    Eviction,
}

/// <summary>Who told the node state something; each source keeps its own signal until it says otherwise.</summary>
public enum NodeAwaySource
{
    /// <summary>The logind shutdown monitor.</summary>
    Logind,
    /// <summary>The node's own Node object (cordon, taints).</summary>
    NodeObject,
    /// <summary>Evictions of managed pods.</summary>
    Eviction,
}

/// <summary>
/// The node's state as published: not going away, or going away with the most urgent reason any source gives, its
/// detail, and <see cref="Since"/> (when this going-away episode began: the first signal after none). <see cref="Updated"/>
/// is when the state last changed.
/// </summary>
public sealed record NodeAwayState(bool GoingAway, NodeAwayReason? Reason, string? Detail, DateTimeOffset? Since, DateTimeOffset Updated)
{
    /// <summary>Which going-away episode this is (1 for the first since start; kept while not going away after one).</summary>
    public int Episode { get; init; }

    public static NodeAwayState Staying(DateTimeOffset at) => new(false, null, null, null, at);
}

/// <summary>A change of <see cref="NodeGoingAway.Current"/>; <see cref="EpisodeStarted"/> when the node was not going away before.</summary>
public sealed record NodeAwayChange(NodeAwayState Previous, NodeAwayState Current)
{
    public bool EpisodeStarted => !Previous.GoingAway && Current.GoingAway;
}

/// <summary>
/// Whether this node is going away and why, from every source (logind, the Node object, evictions). A source reports its
/// own signal (a reason and a detail, or none); the state shows the most urgent signal present. An episode lasts from the
/// first signal to the moment no source has one; <see cref="Changed"/> is raised for every change, in order, on the
/// reporting thread (handlers are quick: they publish, or start work elsewhere). No I/O.
/// </summary>
public sealed class NodeGoingAway(TimeProvider time)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<NodeAwaySource, (NodeAwayReason Reason, string Detail)> _signals = [];
    private NodeAwayState _current = NodeAwayState.Staying(time.GetUtcNow());

    public NodeAwayState Current { get { lock (_gate) return _current; } }

    /// <summary>Raised after every change of <see cref="Current"/>, in the order of the changes.</summary>
    public event Action<NodeAwayChange>? Changed;

    /// <summary>
    /// Sets <paramref name="source"/>'s signal: going away for <paramref name="reason"/> (with a detail a person can act
    /// on), or, with null, that this source no longer sees a reason. Returns the change, or null when nothing changed.
    /// </summary>
    public NodeAwayChange? Report(NodeAwaySource source, NodeAwayReason? reason, string? detail = null)
    {
        lock (_gate)
        {
            if (reason is { } r) _signals[source] = (r, detail ?? "");
            else _signals.Remove(source);
            var now = time.GetUtcNow();
            NodeAwayState next;
            if (_signals.Count == 0)
                next = _current.GoingAway ? NodeAwayState.Staying(now) with { Episode = _current.Episode } : _current;
            else
            {
                var top = _signals.Values.OrderBy(s => s.Reason).First();
                next = new NodeAwayState(true, top.Reason, top.Detail.Length == 0 ? null : top.Detail,
                    _current.Since ?? now, now) { Episode = _current.GoingAway ? _current.Episode : _current.Episode + 1 };
                if (_current.GoingAway && _current.Reason == next.Reason && _current.Detail == next.Detail) next = _current;
            }
            if (ReferenceEquals(next, _current)) return null;
            var change = new NodeAwayChange(_current, next);
            _current = next;
            // raised under the lock: handlers see the changes one at a time and in order
            Changed?.Invoke(change);
            return change;
        }
    }
}

using Crsc.Api;
using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.StaticPods;

public enum StaticPodActionKind
{
    /// <summary>Write or refresh the inactive checkpoint of <see cref="StaticPodAction.Pod"/>.</summary>
    Checkpoint,
    /// <summary>Copy the inactive checkpoint into the manifest directory: the kubelet runs it.</summary>
    Activate,
    /// <summary>Remove the active copy: the parent runs again.</summary>
    Deactivate,
    /// <summary>Remove active, inactive, Secrets and ConfigMaps: the parent is gone from this node.</summary>
    Remove,
    /// <summary>A parent whose names cannot be used; nothing is written for it.</summary>
    Refuse,
}

public sealed record StaticPodAction(StaticPodActionKind Kind, ObjectKey Parent, string Reason, Pod? Pod = null);

/// <summary>What the planner sees in one round.</summary>
/// <param name="PodsOnNode">the API server's pods on this node (informer cache), null when not known (unreachable or not synced)</param>
/// <param name="ApiReachable">whether the API server answers now</param>
/// <param name="RunningLocally">pods with a READY sandbox in the runtime, by namespace/name; null when the runtime did not answer</param>
/// <param name="OnDisk">the checkpoints on disk</param>
/// <param name="State">timers from the previous round (persisted)</param>
/// <param name="Now">the current time</param>
public sealed record StaticPodPlanInput(
    IReadOnlyList<Pod>? PodsOnNode,
    bool ApiReachable,
    IReadOnlySet<ObjectKey>? RunningLocally,
    IReadOnlyList<StoredStaticCheckpoint> OnDisk,
    StaticCheckpointState State,
    DateTimeOffset Now);

public sealed record StaticPodPlan(IReadOnlyList<StaticPodAction> Actions, StaticCheckpointState State);

public sealed record StaticCheckpointPlannerOptions
{
    public required string NodeName { get; init; }

    /// <summary>crsc's own pod (POD_NAMESPACE/POD_NAME) when it runs as a pod; null as a systemd service.</summary>
    public ObjectKey? Self { get; init; }

    /// <summary>How long a parent must be down (with the API server away) before its checkpoint runs.</summary>
    public TimeSpan ActivationGrace { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a parent must run again before its active checkpoint is removed.</summary>
    public TimeSpan DeactivationGrace { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>An unchanged parent's checkpoint is still rewritten this often (its Secrets and ConfigMaps may have changed).</summary>
    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary>
/// The static-pod checkpointer's decisions, pure (CoreOS pod-checkpointer semantics):
/// <list type="bullet">
/// <item>While the API server's view is known, every parent (annotated, scheduled here, not static, not a
/// checkpoint) gets a current inactive checkpoint, and a checkpoint whose parent the API server no longer has on
/// this node is removed with its Secrets and ConfigMaps.</item>
/// <item>A checkpoint is activated once its parent has not been running here, while the API server was
/// unreachable, for <see cref="StaticCheckpointPlannerOptions.ActivationGrace"/>.</item>
/// <item>An active checkpoint is deactivated once its parent has been running here again for
/// <see cref="StaticCheckpointPlannerOptions.DeactivationGrace"/> (whether or not the API server answers).</item>
/// <item>When crsc runs as a pod and the API server says that pod is no longer scheduled here (gone, elsewhere, or
/// being deleted), every checkpoint is removed, crsc's own last (removing its active copy stops crsc).</item>
/// </list>
/// A runtime that does not answer changes nothing: no activation or deactivation without local truth.
/// </summary>
public sealed class StaticCheckpointPlanner(StaticCheckpointPlannerOptions options)
{
    public StaticCheckpointPlannerOptions Options { get; } = options;

    public StaticPodPlan Plan(StaticPodPlanInput input)
    {
        var actions = new List<StaticPodAction>();
        var timers = new Dictionary<ObjectKey, StaticCheckpointTimers>();
        var onDisk = input.OnDisk.ToDictionary(c => c.Parent);

        Dictionary<ObjectKey, Pod>? parents = null;
        if (input.PodsOnNode is { } pods)
        {
            parents = [];
            foreach (var pod in pods.Where(p => StaticPodNames.IsParent(p, Options.NodeName)))
            {
                ObjectKey key;
                try { key = StaticPodNames.Parent(pod); }
                catch (InvalidStaticPodNameException e)
                {
                    actions.Add(new StaticPodAction(StaticPodActionKind.Refuse,
                        new ObjectKey(pod.Metadata.Namespace, pod.Metadata.Name ?? ""), e.Message));
                    continue;
                }
                parents[key] = pod;
            }

            if (SelfGone(pods, onDisk) is { } selfParent)
            {
                var reason = $"crsc's own pod {selfParent} is no longer scheduled on node {Options.NodeName}: removing every static-pod checkpoint";
                actions.AddRange(onDisk.Keys.Where(k => k != selfParent).Order(KeyOrder.Instance)
                    .Select(k => new StaticPodAction(StaticPodActionKind.Remove, k, reason)));
                if (onDisk.ContainsKey(selfParent)) actions.Add(new StaticPodAction(StaticPodActionKind.Remove, selfParent, reason));
                return new StaticPodPlan(actions, StaticCheckpointState.Empty);
            }
        }

        var keys = onDisk.Keys.Concat(parents is null ? [] : parents.Keys).Distinct().Order(KeyOrder.Instance);
        foreach (var key in keys)
        {
            var t = input.State.For(key);
            onDisk.TryGetValue(key, out var disk);
            if (parents is not null)
            {
                if (!parents.TryGetValue(key, out var parent))
                {
                    // authoritative: deleted, moved, finished, no longer annotated
                    actions.Add(new StaticPodAction(StaticPodActionKind.Remove, key,
                        $"the API server no longer has {key} as a checkpointed pod on node {Options.NodeName}"));
                    continue;
                }
                var version = parent.Metadata.ResourceVersion;
                if (disk is not { Inactive: true } || t.WrittenVersion != version || t.WrittenAt is not { } at
                    || input.Now - at >= Options.RefreshInterval || at > input.Now)
                {
                    actions.Add(new StaticPodAction(StaticPodActionKind.Checkpoint, key,
                        disk is not { Inactive: true } ? "new parent" : t.WrittenVersion != version ? "parent changed" : "refresh", parent));
                }
            }

            if (input.RunningLocally is { } running && disk is not null)
            {
                if (running.Contains(key))
                {
                    t = t with { DownSince = null };
                    if (disk.Active)
                    {
                        var since = t.UpSince ?? input.Now;
                        t = t with { UpSince = since };
                        if (input.Now - since >= Options.DeactivationGrace)
                        {
                            actions.Add(new StaticPodAction(StaticPodActionKind.Deactivate, key,
                                $"the parent has been running again since {since:O}"));
                            t = t with { UpSince = null };
                        }
                    }
                    else
                    {
                        t = t with { UpSince = null };
                    }
                }
                else
                {
                    t = t with { UpSince = null };
                    if (!input.ApiReachable && disk.Inactive)
                    {
                        var since = t.DownSince ?? input.Now;
                        t = t with { DownSince = since };
                        if (!disk.Active && input.Now - since >= Options.ActivationGrace)
                            actions.Add(new StaticPodAction(StaticPodActionKind.Activate, key,
                                $"the parent has not been running since {since:O} and the API server is unreachable"));
                    }
                    else
                    {
                        t = t with { DownSince = null };
                    }
                }
            }
            else if (disk is null)
            {
                t = t with { DownSince = null, UpSince = null };
            }
            if (!t.IsEmpty) timers[key] = t;
        }
        return new StaticPodPlan(actions, new StaticCheckpointState(timers));
    }

    /// <summary>
    /// The parent crsc runs for when the API server says its own pod is no longer scheduled here; null when crsc is
    /// not a pod, is a static pod of its own, or its pod is here.
    /// </summary>
    private ObjectKey? SelfGone(IReadOnlyList<Pod> pods, IReadOnlyDictionary<ObjectKey, StoredStaticCheckpoint> onDisk)
    {
        if (Options.Self is not { } self) return null;
        var selfParent = self;
        var selfPod = pods.FirstOrDefault(p => p.Metadata.Namespace == self.Namespace && p.Metadata.Name == self.Name);
        if (selfPod is not null && StaticPodNames.IsStatic(selfPod))
        {
            // crsc runs as a static pod: as its own activated checkpoint (the mirror names the parent), or installed so
            var of = selfPod.Metadata.Annotations?.GetValueOrDefault(Annotations.CheckpointOf);
            if (of is null) return null;
            selfParent = new ObjectKey(self.Namespace, of);
        }
        else if (selfPod is null)
        {
            // the kubelet names an activated checkpoint <parent>-<node>; its mirror pod may not exist yet
            var suffix = "-" + Options.NodeName;
            if (self.Name.EndsWith(suffix, StringComparison.Ordinal)
                && onDisk.TryGetValue(new ObjectKey(self.Namespace, self.Name[..^suffix.Length]), out var own) && own.Active)
                selfParent = own.Parent;
        }
        var parent = pods.FirstOrDefault(p => p.Metadata.Namespace == selfParent.Namespace && p.Metadata.Name == selfParent.Name
                                              && !StaticPodNames.IsStatic(p));
        var here = parent is not null && parent.Spec.NodeName == Options.NodeName && parent.Metadata.DeletionTimestamp is null;
        return here ? null : selfParent;
    }

    private sealed class KeyOrder : IComparer<ObjectKey>
    {
        public static readonly KeyOrder Instance = new();
        public int Compare(ObjectKey x, ObjectKey y) => string.CompareOrdinal(x.ToString(), y.ToString());
    }
}

using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.StaticPods;

namespace Crsc.Controllers.Tests.StaticPods;

/// <summary>
/// The checkpointer's state machine: parent running / not running / deleted / scheduled elsewhere × API server
/// reachable / unreachable, with the grace periods moved by hand, flapping, and crsc's own pod.
/// </summary>
public sealed class StaticCheckpointPlannerTests
{
    private const string Node = "node-a";
    private static readonly ObjectKey Web = new("default", "web");
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Step = TimeSpan.FromSeconds(5);

    internal static Pod Parent(string name = "web", string ns = "default", string node = Node, string rv = "1",
        Dictionary<string, string>? annotations = null) => new()
    {
        Metadata = new ObjectMeta
        {
            Name = name, Namespace = ns, ResourceVersion = rv,
            Annotations = annotations ?? new() { [Annotations.StaticCheckpoint] = "true" },
        },
        Spec = new PodSpec { NodeName = node, Containers = [new Container { Name = "main", Image = "registry.local/web:1" }] },
        Status = new PodStatus { Phase = "Running" },
    };

    /// <summary>Plans round after round and applies the actions to a simulated disk, as the checkpointer does.</summary>
    private sealed class Rig(StaticCheckpointPlannerOptions? options = null)
    {
        public StaticCheckpointPlanner Planner { get; } = new(options ?? new StaticCheckpointPlannerOptions
        {
            NodeName = Node, ActivationGrace = Grace, DeactivationGrace = Grace, RefreshInterval = TimeSpan.FromMinutes(1),
        });
        public DateTimeOffset Now { get; set; } = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        public StaticCheckpointState State { get; private set; } = StaticCheckpointState.Empty;
        public Dictionary<ObjectKey, StoredStaticCheckpoint> Disk { get; } = [];
        public List<StaticPodAction> All { get; } = [];

        public IReadOnlyList<StaticPodAction> Round(IReadOnlyList<Pod>? pods, bool reachable, IEnumerable<ObjectKey>? running)
        {
            var plan = Planner.Plan(new StaticPodPlanInput(pods, reachable, running?.ToHashSet(), [.. Disk.Values], State, Now));
            var timers = new Dictionary<ObjectKey, StaticCheckpointTimers>(plan.State.Timers);
            foreach (var a in plan.Actions)
            {
                var disk = Disk.GetValueOrDefault(a.Parent) ?? new StoredStaticCheckpoint(a.Parent, false, false);
                switch (a.Kind)
                {
                    case StaticPodActionKind.Checkpoint:
                        Disk[a.Parent] = disk with { Inactive = true };
                        timers[a.Parent] = (timers.GetValueOrDefault(a.Parent) ?? new()) with { WrittenVersion = a.Pod!.Metadata.ResourceVersion, WrittenAt = Now };
                        break;
                    case StaticPodActionKind.Activate: Disk[a.Parent] = disk with { Active = true }; break;
                    case StaticPodActionKind.Deactivate: Disk[a.Parent] = disk with { Active = false }; break;
                    case StaticPodActionKind.Remove: Disk.Remove(a.Parent); timers.Remove(a.Parent); break;
                }
            }
            State = new StaticCheckpointState(timers);
            All.AddRange(plan.Actions);
            return plan.Actions;
        }

        /// <summary>Rounds every <see cref="Step"/> for <paramref name="span"/>; the actions of all of them.</summary>
        public List<StaticPodAction> For(TimeSpan span, Func<IReadOnlyList<Pod>?> pods, bool reachable, Func<IEnumerable<ObjectKey>?> running)
        {
            var actions = new List<StaticPodAction>();
            for (var t = TimeSpan.Zero; t < span; t += Step)
            {
                actions.AddRange(Round(pods(), reachable, running()));
                Now += Step;
            }
            return actions;
        }

        public StoredStaticCheckpoint? Of(ObjectKey key) => Disk.GetValueOrDefault(key);
    }

    private static Rig WithInactiveCheckpoint(bool active = false)
    {
        var rig = new Rig();
        var actions = rig.Round([Parent()], reachable: true, running: [Web]);
        Assert.Equal([StaticPodActionKind.Checkpoint], actions.Select(a => a.Kind));
        if (active) rig.Disk[Web] = rig.Disk[Web] with { Active = true };
        rig.Now += Step;
        return rig;
    }

    [Fact]
    public void A_running_parent_is_checkpointed_once_then_again_when_it_changes_and_at_the_refresh_interval()
    {
        var rig = new Rig();
        Assert.Equal("new parent", Assert.Single(rig.Round([Parent()], true, [Web])).Reason);
        rig.Now += Step;
        Assert.Empty(rig.Round([Parent()], true, [Web]));
        rig.Now += Step;
        var changed = Assert.Single(rig.Round([Parent(rv: "2")], true, [Web]));
        Assert.Equal((StaticPodActionKind.Checkpoint, "parent changed"), (changed.Kind, changed.Reason));
        rig.Now += TimeSpan.FromSeconds(59);
        Assert.Empty(rig.Round([Parent(rv: "2")], true, [Web]));
        rig.Now += TimeSpan.FromSeconds(1);
        Assert.Equal("refresh", Assert.Single(rig.Round([Parent(rv: "2")], true, [Web])).Reason);
        Assert.Equal(new StoredStaticCheckpoint(Web, true, false), rig.Of(Web));
    }

    public enum ParentIs { Running, NotRunning, Deleted, ScheduledElsewhere }

    /// <summary>
    /// Every combination, from an inactive and from an active checkpoint: what is on disk just before the grace
    /// period ends, and after it.
    /// </summary>
    [Theory]
    //        parent                    api    from active | before grace: inactive, active | after grace: inactive, active
    [InlineData(ParentIs.Running, true, false, true, false, true, false)]
    [InlineData(ParentIs.Running, false, false, true, false, true, false)]
    [InlineData(ParentIs.NotRunning, true, false, true, false, true, false)]
    [InlineData(ParentIs.NotRunning, false, false, true, false, true, true)]
    [InlineData(ParentIs.Deleted, true, false, false, false, false, false)]
    [InlineData(ParentIs.Deleted, false, false, true, false, true, true)]
    [InlineData(ParentIs.ScheduledElsewhere, true, false, false, false, false, false)]
    [InlineData(ParentIs.ScheduledElsewhere, false, false, true, false, true, true)]
    [InlineData(ParentIs.Running, true, true, true, true, true, false)]
    [InlineData(ParentIs.Running, false, true, true, true, true, false)]
    [InlineData(ParentIs.NotRunning, true, true, true, true, true, true)]
    [InlineData(ParentIs.NotRunning, false, true, true, true, true, true)]
    [InlineData(ParentIs.Deleted, true, true, false, false, false, false)]
    [InlineData(ParentIs.Deleted, false, true, true, true, true, true)]
    [InlineData(ParentIs.ScheduledElsewhere, true, true, false, false, false, false)]
    [InlineData(ParentIs.ScheduledElsewhere, false, true, true, true, true, true)]
    public void Every_combination_of_parent_and_api_server(ParentIs parent, bool reachable, bool fromActive,
        bool inactiveBefore, bool activeBefore, bool inactiveAfter, bool activeAfter)
    {
        var rig = WithInactiveCheckpoint(fromActive);
        IReadOnlyList<Pod>? Pods() => !reachable ? null : parent switch
        {
            ParentIs.Deleted => [],
            ParentIs.ScheduledElsewhere => [Parent(node: "node-b")],
            _ => [Parent()],
        };
        IEnumerable<ObjectKey> Running() => parent == ParentIs.Running ? [Web] : [];

        rig.For(Grace, Pods, reachable, Running);
        Assert.Equal((inactiveBefore, activeBefore), (rig.Of(Web)?.Inactive ?? false, rig.Of(Web)?.Active ?? false));
        rig.For(Step * 2, Pods, reachable, Running);
        Assert.Equal((inactiveAfter, activeAfter), (rig.Of(Web)?.Inactive ?? false, rig.Of(Web)?.Active ?? false));
        // and it stays so: one decision, no repeats
        var later = rig.For(Grace * 2, Pods, reachable, Running);
        Assert.DoesNotContain(later, a => a.Kind is StaticPodActionKind.Activate or StaticPodActionKind.Deactivate or StaticPodActionKind.Remove);
        Assert.Equal((inactiveAfter, activeAfter), (rig.Of(Web)?.Inactive ?? false, rig.Of(Web)?.Active ?? false));
    }

    [Fact]
    public void Activation_needs_the_parent_down_and_the_api_server_away_for_one_whole_grace_period()
    {
        var rig = WithInactiveCheckpoint();
        // down 25 s, back 5 s, down 25 s: never 30 s in a row
        rig.For(TimeSpan.FromSeconds(25), () => null, false, () => []);
        rig.For(Step, () => null, false, () => [Web]);
        rig.For(TimeSpan.FromSeconds(25), () => null, false, () => []);
        // the API server answers for a moment: the clock starts again too
        rig.For(Step, () => [Parent()], true, () => []);
        rig.For(TimeSpan.FromSeconds(25), () => null, false, () => []);
        Assert.DoesNotContain(rig.All, a => a.Kind == StaticPodActionKind.Activate);
        rig.For(Step * 2, () => null, false, () => []);
        var activate = Assert.Single(rig.All, a => a.Kind == StaticPodActionKind.Activate);
        Assert.Contains("API server is unreachable", activate.Reason);
    }

    [Fact]
    public void Deactivation_needs_the_parent_back_for_one_whole_grace_period_and_a_flapping_parent_keeps_the_checkpoint()
    {
        var rig = WithInactiveCheckpoint(active: true);
        for (var i = 0; i < 5; i++)
        {
            rig.For(TimeSpan.FromSeconds(25), () => null, false, () => [Web]);
            rig.For(Step, () => null, false, () => []);
        }
        Assert.DoesNotContain(rig.All, a => a.Kind == StaticPodActionKind.Deactivate);
        Assert.True(rig.Of(Web)!.Active);
        rig.For(Grace + Step, () => null, false, () => [Web]);
        Assert.Single(rig.All, a => a.Kind == StaticPodActionKind.Deactivate);
        Assert.Equal(new StoredStaticCheckpoint(Web, true, false), rig.Of(Web));
    }

    [Fact]
    public void Without_an_answer_from_the_runtime_nothing_is_activated_or_deactivated()
    {
        var rig = WithInactiveCheckpoint();
        rig.For(Grace * 3, () => null, false, () => null);
        Assert.False(rig.Of(Web)!.Active);
        rig.Disk[Web] = rig.Disk[Web] with { Active = true };
        rig.For(Grace * 3, () => null, false, () => null);
        Assert.True(rig.Of(Web)!.Active);
        Assert.DoesNotContain(rig.All, a => a.Kind is StaticPodActionKind.Activate or StaticPodActionKind.Deactivate);
    }

    [Fact]
    public void A_reachable_api_server_whose_pods_are_not_synced_yet_neither_removes_nor_activates()
    {
        var rig = WithInactiveCheckpoint();
        rig.For(Grace * 3, () => null, true, () => []);
        Assert.Equal(new StoredStaticCheckpoint(Web, true, false), rig.Of(Web));
        Assert.Single(rig.All); // the first checkpoint only
    }

    [Fact]
    public void After_a_reboot_without_api_server_a_checkpoint_on_disk_is_activated_after_the_grace_period()
    {
        var rig = new Rig();
        rig.Disk[Web] = new StoredStaticCheckpoint(Web, true, false);
        rig.For(Grace, () => null, false, () => []);
        Assert.False(rig.Of(Web)!.Active);
        rig.For(Step * 2, () => null, false, () => []);
        Assert.True(rig.Of(Web)!.Active);
    }

    [Fact]
    public void Only_annotated_pods_of_this_node_that_are_neither_static_nor_checkpoints_are_parents()
    {
        var rig = new Rig();
        Pod With(string name, Dictionary<string, string> annotations, string node = Node, string? phase = "Running")
        {
            var p = Parent(name, annotations: annotations, node: node);
            p.Status!.Phase = phase;
            return p;
        }
        var pods = new List<Pod>
        {
            With("crsc", new() { [Annotations.StaticCheckpoint] = "true" }),
            With("coreos", new() { [Annotations.CoreOsCheckpoint] = "true" }),
            With("plain", []),
            With("false", new() { [Annotations.StaticCheckpoint] = "false" }),
            With("mirror", new() { [Annotations.StaticCheckpoint] = "true", [StaticPodNames.ConfigMirror] = "abc" }),
            With("file", new() { [Annotations.StaticCheckpoint] = "true", [StaticPodNames.ConfigSource] = "file" }),
            With("api", new() { [Annotations.StaticCheckpoint] = "true", [StaticPodNames.ConfigSource] = "api" }),
            With("ckpt", new() { [Annotations.StaticCheckpoint] = "true", [Annotations.CheckpointOf] = "x" }),
            With("bootkube-ckpt", new() { [Annotations.StaticCheckpoint] = "true", [StaticPodNames.CoreOsCheckpointOf] = "x" }),
            With("elsewhere", new() { [Annotations.StaticCheckpoint] = "true" }, node: "node-b"),
            With("done", new() { [Annotations.StaticCheckpoint] = "true" }, phase: "Succeeded"),
        };
        var actions = rig.Round(pods, true, []);
        Assert.Equal(["api", "coreos", "crsc"], actions.Select(a => a.Parent.Name).Order(StringComparer.Ordinal));
        Assert.All(actions, a => Assert.Equal(StaticPodActionKind.Checkpoint, a.Kind));
    }

    [Fact]
    public void A_parent_whose_names_cannot_be_paths_is_refused()
    {
        var rig = new Rig();
        var refused = Assert.Single(rig.Round([Parent(ns: "Bad_NS")], true, []));
        Assert.Equal(StaticPodActionKind.Refuse, refused.Kind);
        Assert.Contains("Bad_NS", refused.Reason);
        Assert.Empty(rig.Disk);
    }

    private static Rig SelfRig(string selfName = "crsc-abcde")
    {
        var rig = new Rig(new StaticCheckpointPlannerOptions
        {
            NodeName = Node, Self = new ObjectKey("crsc-system", selfName), ActivationGrace = Grace, DeactivationGrace = Grace,
        });
        return rig;
    }

    [Fact]
    public void Crscs_own_pod_is_checkpointed_like_any_other_and_while_it_is_here_nothing_is_removed()
    {
        var rig = SelfRig();
        var self = Parent("crsc-abcde", "crsc-system");
        rig.For(Grace, () => [self, Parent()], true, () => [Web, new ObjectKey("crsc-system", "crsc-abcde")]);
        Assert.Equal([new ObjectKey("crsc-system", "crsc-abcde"), Web], rig.Disk.Keys.Order(Comparer<ObjectKey>.Create((a, b) => string.CompareOrdinal(a.ToString(), b.ToString()))));
        Assert.DoesNotContain(rig.All, a => a.Kind == StaticPodActionKind.Remove);
    }

    [Theory]
    [InlineData("deleted")]
    [InlineData("elsewhere")]
    [InlineData("terminating")]
    public void When_the_api_server_says_crscs_own_pod_is_no_longer_here_every_checkpoint_is_removed_its_own_last(string how)
    {
        var rig = SelfRig();
        var self = Parent("crsc-abcde", "crsc-system");
        var selfKey = new ObjectKey("crsc-system", "crsc-abcde");
        rig.Round([Parent("a"), self, Parent("z")], true, []);
        Assert.Equal(3, rig.Disk.Count);
        rig.Disk[selfKey] = rig.Disk[selfKey] with { Active = true };
        rig.Now += Step;

        var gone = how switch
        {
            "deleted" => null,
            "elsewhere" => Parent("crsc-abcde", "crsc-system", node: "node-b"),
            _ => Parent("crsc-abcde", "crsc-system"),
        };
        if (how == "terminating") gone!.Metadata.DeletionTimestamp = rig.Now;
        var actions = rig.Round(gone is null ? [Parent("a"), Parent("z")] : [Parent("a"), gone, Parent("z")], true, []);
        Assert.Equal([StaticPodActionKind.Remove, StaticPodActionKind.Remove, StaticPodActionKind.Remove], actions.Select(a => a.Kind));
        Assert.Equal(["default/a", "default/z", "crsc-system/crsc-abcde"], actions.Select(a => a.Parent.ToString()));
        Assert.All(actions, a => Assert.Contains("crsc's own pod", a.Reason));
        Assert.Empty(rig.Disk);
        Assert.Empty(rig.State.Timers);
    }

    [Fact]
    public void Crsc_running_as_its_own_activated_checkpoint_removes_everything_when_its_parent_is_gone()
    {
        // the kubelet runs the checkpoint as <parent>-<node>; its mirror pod names the parent
        var rig = SelfRig("crsc-abcde-" + Node);
        var parentKey = new ObjectKey("crsc-system", "crsc-abcde");
        rig.Disk[parentKey] = new StoredStaticCheckpoint(parentKey, true, true);
        rig.Disk[Web] = new StoredStaticCheckpoint(Web, true, false);
        var mirror = Parent("crsc-abcde-" + Node, "crsc-system", annotations: new()
        {
            [StaticPodNames.ConfigMirror] = "x", [Annotations.CheckpointOf] = "crsc-abcde",
        });

        // the parent is still there (not running yet): nothing removed, the active checkpoint stays
        rig.For(Grace * 2, () => [mirror, Parent("crsc-abcde", "crsc-system"), Parent()], true, () => [Web]);
        Assert.True(rig.Of(parentKey)!.Active);
        Assert.DoesNotContain(rig.All, a => a.Kind == StaticPodActionKind.Remove);

        // before the mirror pod exists, the name alone says which checkpoint crsc is
        Assert.DoesNotContain(rig.Round([Parent("crsc-abcde", "crsc-system"), Parent()], true, [Web]), a => a.Kind == StaticPodActionKind.Remove);

        var actions = rig.Round([mirror, Parent()], true, [Web]);
        Assert.Equal(["default/web", "crsc-system/crsc-abcde"], actions.Select(a => a.Parent.ToString()));
        Assert.All(actions, a => Assert.Equal(StaticPodActionKind.Remove, a.Kind));
    }

    [Fact]
    public void As_a_systemd_service_crsc_has_no_pod_of_its_own_to_lose()
    {
        var rig = new Rig(); // Self = null
        rig.Round([Parent()], true, [Web]);
        rig.Now += Step;
        Assert.Empty(rig.Round([Parent()], true, [Web]));
        Assert.NotNull(rig.Of(Web));
    }
}

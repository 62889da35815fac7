using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Restores;
using Crsc.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using static Crsc.Controllers.Tests.Restores.RestoreFixture;

namespace Crsc.Controllers.Tests.Restores;

/// <summary>
/// The replacement a Restore waits for is kept off the nodes that cannot restore — through the pod's scheduling gate,
/// on a FakeKube that enforces kube-apiserver's rules (gates only removed, node affinity only narrowed while gated).
/// </summary>
public sealed class ReplacementPlacementTests : IAsyncLifetime
{
    private const string Gated = "counter-7d9f8c6b5-xyzzy";
    private readonly RestoreFixture _f = new();
    private readonly ReplacementPlacementOptions _options = new();
    private readonly CancellationTokenSource _stop = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _f.DisposeAsync();
        _stop.Dispose();
    }

    /// <summary>A pod of the Deployment as the ReplicaSet makes it from a template that carries crsc's gate (and another).</summary>
    private async Task<Pod> CreateGatedPodAsync(string name = Gated, string? affinity = null, bool otherGate = true)
    {
        var gates = otherGate
            ? $$"""[{"name":"example.com/quota"},{"name":"{{SchedulingGates.RestorePlacement}}"}]"""
            : $$"""[{"name":"{{SchedulingGates.RestorePlacement}}"}]""";
        var pod = new Pod
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns, Name = name,
                Labels = new() { ["app"] = RestoreFixture.Deployment, ["pod-template-hash"] = Hash },
                OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = RestoreFixture.ReplicaSet, Uid = "rs-1", Controller = true }],
            },
            Spec = new PodSpec
            {
                Containers = [new Crsc.Api.Kubernetes.Container { Name = RestoreFixture.Container, Image = ImageV1 }],
                Affinity = affinity is null ? null : JsonDocument.Parse(affinity).RootElement.Clone(),
                Extra = new() { ["schedulingGates"] = JsonDocument.Parse(gates).RootElement.Clone() },
            },
            Status = new PodStatus { Phase = "Pending" },
        };
        return await _f.PodsApi.SeedAsync(pod, CancellationToken.None);
    }

    /// <summary>A Restore of the Deployment whose pod is gone: it waits for the replacement (no pod chosen).</summary>
    private Task<Restore> CreateWaitingRestoreAsync() =>
        _f.CreateRestoreAsync("r1", status: new RestoreStatus { Phase = RestorePhase.Pending, Attempts = 1, Message = "waiting for its replacement" });

    private async Task<ReplacementPlacementReconciler> ReconcilerAsync()
    {
        var leader = await _f.StartLeaderAsync();
        await Eventually.TrueAsync(() => InSync(leader.Pods, _f.PodsApi) && InSync(leader.Restores, _f.RestoresApi) && InSync(leader.Nodes, _f.NodesApi),
            "caches as stored");
        _reconcile = async name =>
        {
            await Eventually.TrueAsync(() => InSync(leader.Pods, _f.PodsApi) && InSync(leader.Restores, _f.RestoresApi) && InSync(leader.Nodes, _f.NodesApi),
                "caches as stored");
            return await _reconciler!.ReconcileAsync(new ObjectKey(Ns, name), CancellationToken.None);
        };
        return _reconciler = new ReplacementPlacementReconciler(_f.Kube, leader.Pods, leader.Restores, leader.Nodes, _f.Events, _options, _f.Time,
            NullLogger.Instance);
    }

    private ReplacementPlacementReconciler? _reconciler;
    private Func<string, Task<ReconcileResult>> _reconcile = _ => throw new InvalidOperationException("no reconciler");

    private static List<string> GateNames(Pod pod) =>
        pod.Spec.Extra?.GetValueOrDefault("schedulingGates") is { ValueKind: JsonValueKind.Array } g
            ? [.. g.EnumerateArray().Select(x => x.GetProperty("name").GetString()!)]
            : [];

    private static JsonElement Terms(Pod pod) =>
        pod.Spec.Affinity!.Value.GetProperty("nodeAffinity").GetProperty("requiredDuringSchedulingIgnoredDuringExecution").GetProperty("nodeSelectorTerms");

    private static List<string> ExcludedIn(JsonElement term) =>
        [.. term.GetProperty("matchFields").EnumerateArray()
            .Where(f => f.GetProperty("key").GetString() == "metadata.name" && f.GetProperty("operator").GetString() == "NotIn")
            .Select(f => f.GetProperty("values").EnumerateArray().Single().GetString()!)];

    [Fact]
    public async Task The_replacement_a_Restore_waits_for_is_kept_off_every_node_that_cannot_restore_and_released()
    {
        await _f.SetNodeRestoreAsync("n1", CapabilityState.DisabledByConfig, "off by default in containerd 2.3.4");
        await _f.SetNodeRestoreAsync("n2", CapabilityState.Supported, "restores");
        await _f.SetNodeRestoreAsync("n3", CapabilityState.NotSupported, "containerd 2.4 removed it");
        await _f.SetNodeRestoreAsync("n4", CapabilityState.Unknown, "could not read the config");
        await CreateWaitingRestoreAsync();
        // the workload's own required affinity: two ORed terms, each keeps its requirements and gets crsc's
        await CreateGatedPodAsync(affinity: """
            {"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[
              {"matchExpressions":[{"key":"zone","operator":"In","values":["a"]}]},
              {"matchExpressions":[{"key":"zone","operator":"In","values":["b"]}],"matchFields":[{"key":"metadata.name","operator":"NotIn","values":["n9"]}]}]}},
             "podAntiAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[]}}
            """);
        await ReconcilerAsync();

        Assert.Equal(ReconcileResult.Done, await _reconcile(Gated));

        var pod = _f.Pod(Gated)!;
        Assert.Equal(["example.com/quota"], GateNames(pod)); // only crsc's gate goes
        var terms = Terms(pod).EnumerateArray().ToList();
        Assert.Equal(2, terms.Count);
        Assert.Equal("zone", terms[0].GetProperty("matchExpressions")[0].GetProperty("key").GetString());
        Assert.Equal(["n1", "n3"], ExcludedIn(terms[0])); // an Unknown is not a fact: n4 stays a candidate
        Assert.Equal(["n9", "n1", "n3"], ExcludedIn(terms[1]));
        Assert.True(pod.Spec.Affinity!.Value.TryGetProperty("podAntiAffinity", out _));
        Assert.StartsWith("restricted by Restore r1: not on n1, n3", pod.Metadata.Annotations![Annotations.Placement]);
        var condition = _f.Restore("r1").Status!.FindCondition(RestoreConditions.ReplacementPlacement)!;
        Assert.Equal((ConditionStatus.True, ReplacementPlacementReconciler.ReasonRestricted), (condition.Status, condition.Reason));
        Assert.Contains("kept off n1, n3", condition.Message);
        Assert.Contains("RestorePlacement", _f.EventReasons("Pod", Gated));
        Assert.Equal(1, _f.PodsApi.CallCount("patch")); // restriction and release in one write
    }

    [Fact]
    public async Task A_gated_pod_no_Restore_waits_for_is_released_at_once_without_a_restriction()
    {
        await _f.SetNodeRestoreAsync("n1", CapabilityState.DisabledByConfig, "off");
        await _f.CreateRestoreAsync("done", status: new RestoreStatus { Phase = RestorePhase.Restored, PodName = "old" });
        await CreateGatedPodAsync(otherGate: false);
        await ReconcilerAsync();

        await _reconcile(Gated);

        var pod = _f.Pod(Gated)!;
        Assert.Empty(GateNames(pod));
        Assert.Null(pod.Spec.Affinity);
        Assert.Equal("released: no Restore waits for this pod", pod.Metadata.Annotations![Annotations.Placement]);
        Assert.Null(_f.Restore("done").Status!.FindCondition(RestoreConditions.ReplacementPlacement));
    }

    [Fact]
    public async Task When_every_node_can_restore_the_replacement_is_released_as_it_is()
    {
        await _f.SetNodeRestoreAsync("n1", CapabilityState.Supported, "restores");
        await CreateWaitingRestoreAsync();
        await CreateGatedPodAsync();
        await ReconcilerAsync();

        await _reconcile(Gated);

        var pod = _f.Pod(Gated)!;
        Assert.Equal(["example.com/quota"], GateNames(pod));
        Assert.Null(pod.Spec.Affinity);
        Assert.StartsWith("released: every node crsc knows can restore", pod.Metadata.Annotations![Annotations.Placement]);
    }

    /// <summary>n1 cannot restore; the gated replacement r1 waits for is restricted off it and released.</summary>
    private async Task RestrictedAsync()
    {
        await _f.SetNodeRestoreAsync("n1", CapabilityState.DisabledByConfig, "off");
        await CreateWaitingRestoreAsync();
        await CreateGatedPodAsync();
        await ReconcilerAsync();
        await _reconcile(Gated);
        Assert.StartsWith("restricted by Restore r1", _f.Pod(Gated)!.Metadata.Annotations![Annotations.Placement]);
    }

    [Fact]
    public async Task A_restricted_replacement_no_node_takes_is_given_up_after_the_timeout_and_the_next_one_goes_anywhere()
    {
        await RestrictedAsync();
        // the scheduler: no node fits but n1
        var pod = _f.Pod(Gated)!;
        pod.Status = new PodStatus
        {
            Phase = "Pending",
            Conditions = [new PodCondition { Type = "PodScheduled", Status = "False", Reason = "Unschedulable",
                Message = "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 Insufficient memory.",
                LastTransitionTime = _f.Time.GetUtcNow() }],
        };
        await _f.PodsApi.UpdateStatusAsync(pod, CancellationToken.None);

        _f.Time.Advance(TimeSpan.FromSeconds(20));
        var early = await _reconcile(Gated);
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(40)), early);
        Assert.NotNull(_f.Pod(Gated)); // never deleted before the timeout

        _f.Time.Advance(TimeSpan.FromSeconds(40));
        await _reconcile(Gated);

        Assert.Null(_f.Pod(Gated));
        var condition = _f.Restore("r1").Status!.FindCondition(RestoreConditions.ReplacementPlacement)!;
        Assert.Equal((ConditionStatus.False, ReplacementPlacementReconciler.ReasonNoNodeCanRestore), (condition.Status, condition.Reason));
        Assert.Contains("Insufficient memory", condition.Message);

        // the ReplicaSet's next pod is let go to any node: the Restore then meets the node as it is (and falls back there)
        await CreateGatedPodAsync("counter-7d9f8c6b5-next");
        await _reconcile("counter-7d9f8c6b5-next");
        var next = _f.Pod("counter-7d9f8c6b5-next")!;
        Assert.Null(next.Spec.Affinity);
        Assert.Equal(["example.com/quota"], GateNames(next));
        Assert.StartsWith("released: Restore r1 gave up choosing nodes", next.Metadata.Annotations![Annotations.Placement]);
    }

    [Fact]
    public async Task A_restricted_replacement_that_was_scheduled_is_left_alone()
    {
        await RestrictedAsync();
        var pod = _f.Pod(Gated)!;
        pod.Spec.NodeName = "n2";
        await _f.PodsApi.SeedAsync(pod, CancellationToken.None);
        _f.Time.Advance(TimeSpan.FromHours(1));

        Assert.Equal(ReconcileResult.Done, await _reconcile(Gated));
        Assert.NotNull(_f.Pod(Gated));
        Assert.Equal(0, _f.PodsApi.CallCount("delete"));
    }

    [Fact]
    public async Task Set_up_as_the_daemon_does_a_gated_replacement_is_placed_by_the_watches_alone()
    {
        await _f.SetNodeRestoreAsync("n1", CapabilityState.DisabledByConfig, "off");
        await CreateWaitingRestoreAsync();
        var manager = new ControllerManager(new ControllerManagerOptions
        {
            Kube = _f.Kube, Events = _f.Events, Time = TimeProvider.System, Loggers = NullLoggerFactory.Instance,
        });
        ReplacementPlacementReconciler.SetUp(manager);
        var running = manager.RunAsync(_stop.Token);

        await CreateGatedPodAsync();

        await Eventually.TrueAsync(() => _f.Pod(Gated)?.Metadata.Annotations?.ContainsKey(Annotations.Placement) == true, "pod released");
        Assert.Equal(["n1"], ExcludedIn(Terms(_f.Pod(Gated)!)[0]));
        await _stop.CancelAsync();
        await running;
    }
}

using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Restores;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;
using static Crsc.Controllers.Tests.Restores.RestoreFixture;

namespace Crsc.Controllers.Tests.Restores;

/// <summary>
/// <c>crsc migrate</c>'s Restore (mode Migration) on a FakeKube that enforces kube-apiserver's pod update rules; the test
/// plays the source node (the checkpoint's status), the ReplicaSet (its replacement pod) and the target node (the
/// in-place Restore it makes for <c>crsc.io/restore-from</c>).
/// </summary>
public sealed class MigrationReconcilerTests : IAsyncLifetime
{
    private const string Source = "counter-7d9f8c6b5-abcde";
    private const string Migration = "mv";
    private readonly RestoreFixture _f = new();
    private FakeResourceClient<ReplicaSet> ReplicaSets => _f.Kube.For(Resources.ReplicaSets);
    private FakeResourceClient<Crsc.Api.Kubernetes.Node> Nodes => _f.Kube.For(Resources.Nodes);
    private Leader _leader = null!;
    private MigrationReconciler _reconciler = null!;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _f.DisposeAsync();

    private async Task StartAsync()
    {
        _leader = await _f.StartLeaderAsync();
        _reconciler = new MigrationReconciler(_f.Kube, _leader.Restores, _leader.Pods, _leader.Checkpoints, _f.Events,
            new MigrationReconcilerOptions(), _f.Time, NullLogger.Instance);
    }

    private async Task<ReconcileResult> ReconcileAsync(string name = Migration)
    {
        await Eventually.TrueAsync(() => InSync(_leader.Restores, _f.RestoresApi) && InSync(_leader.Pods, _f.PodsApi)
            && InSync(_leader.Checkpoints, _f.CheckpointsApi), "caches as stored");
        return await _reconciler.ReconcileAsync(new ObjectKey(Ns, name), CancellationToken.None);
    }

    private Task SeedNodeAsync(string name) => Nodes.SeedAsync(new Crsc.Api.Kubernetes.Node { Metadata = new ObjectMeta { Name = name } });

    private Task SeedReplicaSetAsync(bool gated) => ReplicaSets.SeedAsync(new ReplicaSet
    {
        Metadata = new ObjectMeta { Namespace = Ns, Name = RestoreFixture.ReplicaSet },
        Spec = new ReplicaSetSpec
        {
            Replicas = 2,
            Template = new PodTemplateSpec
            {
                Spec = new PodSpec
                {
                    Containers = [new Container { Name = RestoreFixture.Container, Image = ImageV1 }],
                    Extra = gated
                        ? new() { ["schedulingGates"] = JsonDocument.Parse($$"""[{"name":"{{SchedulingGates.RestorePlacement}}"}]""").RootElement.Clone() }
                        : null,
                },
            },
        },
    });

    private Task<Restore> CreateMigrationAsync(string pod = Source, string? targetNode = "n2", string? container = RestoreFixture.Container) =>
        _f.RestoresApi.SeedAsync(new Restore
        {
            Metadata = new ObjectMeta { Namespace = Ns, Name = Migration },
            Spec = new RestoreSpec
            {
                Target = new RestoreTarget { Kind = RestoreTargetKind.Pod, Name = pod },
                Container = container, Mode = RestoreMode.Migration, TargetNode = targetNode,
            },
        });

    /// <summary>What the source node's agent writes on the checkpoint.</summary>
    private async Task SetCheckpointAsync(ContainerCheckpointPhase phase, string? message = null)
    {
        var c = _f.CheckpointsApi.Stored(Ns, MigrationReconciler.CheckpointName(Migration))!;
        c.Status = new ContainerCheckpointStatus
        {
            Phase = phase, Node = "n1", Message = message,
            ContentName = phase == ContainerCheckpointPhase.Completed ? "content-1" : null,
            CompletedAt = phase == ContainerCheckpointPhase.Running ? null : _f.Time.GetUtcNow(),
        };
        await _f.CheckpointsApi.UpdateStatusAsync(c, CancellationToken.None);
    }

    /// <summary>A pod of the ReplicaSet as it makes it from its (gated) template.</summary>
    private async Task<Pod> SeedReplicaSetPodAsync(string name, bool gated)
    {
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
                Containers = [new Container { Name = RestoreFixture.Container, Image = ImageV1 }],
                Extra = gated
                    ? new() { ["schedulingGates"] = JsonDocument.Parse($$"""[{"name":"{{SchedulingGates.RestorePlacement}}"}]""").RootElement.Clone() }
                    : null,
            },
            Status = new PodStatus { Phase = "Pending" },
        };
        return await _f.PodsApi.SeedAsync(pod, CancellationToken.None);
    }

    /// <summary>What the target node's agent makes for the annotated replacement, in the phase given.</summary>
    private Task<Restore> SeedInPlaceRestoreAsync(Pod replacement, RestorePhase phase, DateTimeOffset? runningAt = null, string? message = null) =>
        _f.RestoresApi.SeedAsync(new Restore
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns, Name = RestoreFromReconciler.RestoreName(replacement.Metadata.Name!, replacement.Metadata.Uid!),
                Labels = new() { [Labels.RestoreFromPodUid] = replacement.Metadata.Uid! },
                Annotations = new() { [Annotations.RestoreFromPod] = replacement.Metadata.Name! },
            },
            Spec = new RestoreSpec { Target = new RestoreTarget { Kind = RestoreTargetKind.Pod, Name = replacement.Metadata.Name! }, MaxAttempts = 1 },
            Status = new RestoreStatus { Phase = phase, Message = message, Timeline = new RestoreTimeline { RunningAt = runningAt } },
        });

    private static List<string> GateNames(Pod pod) =>
        pod.Spec.Extra?.GetValueOrDefault("schedulingGates") is { ValueKind: JsonValueKind.Array } g
            ? [.. g.EnumerateArray().Select(x => x.GetProperty("name").GetString()!)]
            : [];

    [Fact]
    public async Task A_deployment_pod_is_checkpointed_deleted_after_completion_and_its_replacement_pinned_then_restored_with_its_downtime()
    {
        await SeedNodeAsync("n2");
        await SeedReplicaSetAsync(gated: true);
        var source = await _f.CreatePodAsync(Source, node: "n1");
        var otherReplica = await _f.CreatePodAsync("counter-7d9f8c6b5-other", node: "n1"); // made before: never the replacement
        var templateBefore = JsonSerializer.Serialize(ReplicaSets.Stored(Ns, RestoreFixture.ReplicaSet)!.Spec, KubeJsonContext.Default.ReplicaSetSpec);
        var migration = await CreateMigrationAsync();
        await StartAsync();

        // checkpoint now: a ContainerCheckpoint of the pod's container, owned by the migration
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());
        var ckpt = Assert.Single(_f.CheckpointsApi.AllStored());
        Assert.Equal((MigrationReconciler.CheckpointName(Migration), Source, RestoreFixture.Container),
            (ckpt.Metadata.Name, ckpt.Spec.PodName, ckpt.Spec.Container));
        var owner = Assert.Single(ckpt.Metadata.OwnerReferences!);
        Assert.Equal((Restore.KindName, migration.Metadata.Uid, true), (owner.Kind, owner.Uid, owner.Controller));
        var status = _f.Restore(Migration).Status!;
        Assert.Equal((RestorePhase.Restoring, source.Metadata.Uid, "n1", RestoreFixture.ReplicaSet), (status.Phase, status.SourcePodUid, status.SourceNode, status.ReplicaSet));

        // the pod is not deleted while the checkpoint runs
        await SetCheckpointAsync(ContainerCheckpointPhase.Running);
        await ReconcileAsync();
        Assert.NotNull(_f.Pod(Source));
        Assert.Equal(0, _f.PodsApi.CallCount("delete"));

        _f.Time.Advance(TimeSpan.FromSeconds(5));
        await SetCheckpointAsync(ContainerCheckpointPhase.Completed);
        await ReconcileAsync();
        Assert.Null(_f.Pod(Source));
        Assert.NotNull(_f.Pod(otherReplica.Metadata.Name!));
        var timeline = _f.Restore(Migration).Status!.Timeline!;
        Assert.Equal(_f.Time.GetUtcNow(), timeline.CheckpointedAt);
        Assert.NotNull(timeline.SourceDeletedAt);

        // the ReplicaSet's replacement, held by the gate: the placement reconciler leaves it to the migration
        _f.Time.Advance(TimeSpan.FromSeconds(1));
        var replacement = await SeedReplicaSetPodAsync("counter-7d9f8c6b5-new12", gated: true);
        var placement = new ReplacementPlacementReconciler(_f.Kube, _leader.Pods, _leader.Restores, _leader.Nodes, _f.Events,
            new ReplacementPlacementOptions(), _f.Time, NullLogger.Instance);
        await Eventually.TrueAsync(() => InSync(_leader.Pods, _f.PodsApi) && InSync(_leader.Restores, _f.RestoresApi), "caches as stored");
        await placement.ReconcileAsync(new ObjectKey(Ns, replacement.Metadata.Name!), CancellationToken.None);
        Assert.Equal([SchedulingGates.RestorePlacement], GateNames(_f.Pod(replacement.Metadata.Name!)!));

        var patchesBefore = _f.PodsApi.CallCount("patch");
        var stoppedAt = _f.Time.GetUtcNow();
        await ReconcileAsync();
        var pinned = _f.Pod(replacement.Metadata.Name!)!;
        Assert.Equal(MigrationReconciler.CheckpointName(Migration), pinned.Metadata.Annotations![Annotations.RestoreFrom]);
        Assert.Empty(GateNames(pinned));
        var term = Assert.Single(pinned.Spec.Affinity!.Value.GetProperty("nodeAffinity").GetProperty("requiredDuringSchedulingIgnoredDuringExecution")
            .GetProperty("nodeSelectorTerms").EnumerateArray());
        var field = Assert.Single(term.GetProperty("matchFields").EnumerateArray());
        Assert.Equal(("metadata.name", "In", "n2"), (field.GetProperty("key").GetString(), field.GetProperty("operator").GetString(),
            field.GetProperty("values")[0].GetString()));
        Assert.Equal(patchesBefore + 1, _f.PodsApi.CallCount("patch")); // pin and release in one write
        Assert.Null(_f.Pod(otherReplica.Metadata.Name!)!.Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFrom));
        Assert.Equal(templateBefore, JsonSerializer.Serialize(ReplicaSets.Stored(Ns, RestoreFixture.ReplicaSet)!.Spec, KubeJsonContext.Default.ReplicaSetSpec));
        status = _f.Restore(Migration).Status!;
        Assert.Equal((replacement.Metadata.Name, replacement.Metadata.Uid), (status.ReplacementPod, status.ReplacementPodUid));
        Assert.Equal(stoppedAt, status.Timeline!.SourceStoppedAt); // seen gone

        // the target node restores it in place: the migration ends with it, with the downtime
        _f.Time.Advance(TimeSpan.FromSeconds(30));
        await SeedInPlaceRestoreAsync(pinned, RestorePhase.Restoring);
        await ReconcileAsync();
        Assert.Equal(RestorePhase.Restoring, _f.Restore(Migration).Status!.Phase);
        Assert.Equal(RestoreFromReconciler.RestoreName(pinned.Metadata.Name!, pinned.Metadata.Uid!), _f.Restore(Migration).Status!.InPlaceRestore);
        await SeedInPlaceRestoreAsync(pinned, RestorePhase.Restored, runningAt: stoppedAt.AddSeconds(7));
        await ReconcileAsync();
        status = _f.Restore(Migration).Status!;
        Assert.Equal(RestorePhase.Restored, status.Phase);
        Assert.Equal("7s", status.Downtime);
        Assert.Equal(stoppedAt.AddSeconds(7), status.Timeline!.RunningAt);
        Assert.Contains("downtime 7s", status.Message);
        Assert.Contains("to node n2", status.Message);
        Assert.Contains("approximated", status.Message);
    }

    [Fact]
    public async Task A_target_node_without_the_templates_scheduling_gate_fails_before_any_checkpoint()
    {
        await SeedNodeAsync("n2");
        await SeedReplicaSetAsync(gated: false);
        await _f.CreatePodAsync(Source, node: "n1");
        await CreateMigrationAsync();
        await StartAsync();

        await ReconcileAsync();

        var status = _f.Restore(Migration).Status!;
        Assert.Equal(RestorePhase.Failed, status.Phase);
        Assert.Equal(MigrationReconciler.ReasonPlacementGateMissing, status.FindCondition(ConditionTypes.Ready)!.Reason);
        Assert.Contains($"no gate {SchedulingGates.RestorePlacement}", status.Message);
        Assert.Contains("Deployment counter", status.Message);
        Assert.Contains("spec.template.spec.schedulingGates", status.Message);
        Assert.Empty(_f.CheckpointsApi.AllStored());
        Assert.Equal(0, _f.CheckpointsApi.CallCount("create"));
        Assert.NotNull(_f.Pod(Source));
    }

    [Fact]
    public async Task A_bare_pod_is_made_again_under_its_name_on_the_target_node_with_the_annotation()
    {
        await SeedNodeAsync("n2");
        var source = await _f.CreatePodAsync("solo", node: "n1", replicaSet: null);
        var labelled = _f.Pod("solo")!;
        labelled.Metadata.Labels = new() { ["app"] = "solo" };
        labelled.Spec.Extra = new() { ["priority"] = JsonDocument.Parse("0").RootElement.Clone(), ["dnsPolicy"] = JsonDocument.Parse("\"ClusterFirst\"").RootElement.Clone() };
        source = await _f.PodsApi.SeedAsync(labelled);
        await CreateMigrationAsync("solo");
        await StartAsync();

        await ReconcileAsync();
        Assert.NotNull(_f.Restore(Migration).Status!.SourcePod);
        await SetCheckpointAsync(ContainerCheckpointPhase.Completed);
        await ReconcileAsync(); // deleted
        await ReconcileAsync(); // gone: made again

        var made = _f.Pod("solo")!;
        Assert.NotEqual(source.Metadata.Uid, made.Metadata.Uid);
        Assert.Equal("n2", made.Spec.NodeName);
        Assert.Equal(MigrationReconciler.CheckpointName(Migration), made.Metadata.Annotations![Annotations.RestoreFrom]);
        Assert.Equal("solo", made.Metadata.Labels!["app"]);
        Assert.Equal(ImageV1, made.Spec.Containers.Single().Image);
        Assert.Equal("ClusterFirst", made.Spec.Extra!["dnsPolicy"].GetString());
        Assert.False(made.Spec.Extra.ContainsKey("priority"));
        Assert.Null(made.Status);
        var status = _f.Restore(Migration).Status!;
        Assert.Equal(("solo", made.Metadata.Uid), (status.ReplacementPod, status.ReplacementPodUid));
        Assert.Equal(1, _f.PodsApi.CallCount("create"));
    }

    [Fact]
    public async Task A_failed_checkpoint_fails_the_migration_with_its_message_and_the_pod_keeps_running()
    {
        await SeedNodeAsync("n2");
        await SeedReplicaSetAsync(gated: true);
        await _f.CreatePodAsync(Source, node: "n1");
        await CreateMigrationAsync();
        await StartAsync();
        await ReconcileAsync();

        await SetCheckpointAsync(ContainerCheckpointPhase.Failed, "criu dump: can't dump ghost file");
        await ReconcileAsync();

        var status = _f.Restore(Migration).Status!;
        Assert.Equal(RestorePhase.Failed, status.Phase);
        Assert.Contains("criu dump: can't dump ghost file", status.Message);
        Assert.Equal(MigrationReconciler.ReasonCheckpointFailed, status.FindCondition(ConditionTypes.Ready)!.Reason);
        Assert.NotNull(_f.Pod(Source));
        Assert.Equal(0, _f.PodsApi.CallCount("delete"));
    }

    [Fact]
    public async Task The_in_place_restore_falling_back_fails_the_migration_with_its_message()
    {
        await SeedNodeAsync("n2");
        await SeedReplicaSetAsync(gated: false);
        await _f.CreatePodAsync(Source, node: "n1");
        await CreateMigrationAsync(targetNode: null); // where the scheduler puts it: no gate needed
        await StartAsync();
        await ReconcileAsync();
        await SetCheckpointAsync(ContainerCheckpointPhase.Completed);
        await ReconcileAsync();
        _f.Time.Advance(TimeSpan.FromSeconds(1));
        var replacement = await SeedReplicaSetPodAsync("counter-7d9f8c6b5-new12", gated: false);
        await ReconcileAsync();
        Assert.Equal(MigrationReconciler.CheckpointName(Migration), _f.Pod(replacement.Metadata.Name!)!.Metadata.Annotations![Annotations.RestoreFrom]);
        Assert.Null(_f.Pod(replacement.Metadata.Name!)!.Spec.Affinity);

        await SeedInPlaceRestoreAsync(replacement, RestorePhase.FellBack, message: "the runtime refused the restore; original image put back");
        await ReconcileAsync();

        var status = _f.Restore(Migration).Status!;
        Assert.Equal(RestorePhase.Failed, status.Phase);
        Assert.Contains("FellBack: the runtime refused the restore", status.Message);
        Assert.Null(status.Downtime);
    }

    /// <summary>Up to the replacement annotated: a Deployment pod moved where the scheduler puts it.</summary>
    private async Task<Pod> MigrateToReplacementAsync()
    {
        await SeedNodeAsync("n2");
        await SeedReplicaSetAsync(gated: false);
        await _f.CreatePodAsync(Source, node: "n1");
        await CreateMigrationAsync(targetNode: null);
        await StartAsync();
        await ReconcileAsync();
        await SetCheckpointAsync(ContainerCheckpointPhase.Completed);
        await ReconcileAsync();
        _f.Time.Advance(TimeSpan.FromSeconds(1));
        var replacement = await SeedReplicaSetPodAsync("counter-7d9f8c6b5-new12", gated: false);
        await ReconcileAsync();
        Assert.Equal(replacement.Metadata.Uid, _f.Restore(Migration).Status!.ReplacementPodUid);
        return replacement;
    }

    /// <summary>What the target node's agent writes on the replacement: its crsc.io/RestoreFrom condition.</summary>
    private async Task SetRestoreFromConditionAsync(string pod, string status, string reason, string message)
    {
        var p = _f.PodsApi.Stored(Ns, pod)!;
        p.Status ??= new PodStatus();
        p.Status.Conditions = [new PodCondition { Type = PodConditions.RestoreFrom, Status = status, Reason = reason, Message = message }];
        await _f.PodsApi.UpdateStatusAsync(p, CancellationToken.None);
    }

    [Theory]
    [InlineData(RestoreFromReconciler.ImageMismatch, true)]
    [InlineData(RestoreFromReconciler.RuntimeCannotRestore, true)]
    [InlineData(RestoreFromReconciler.CheckpointUnreachable, false)] // the node tries again by itself
    public async Task The_replacements_restore_from_condition_false_fails_the_migration_unless_the_node_retries(string reason, bool fails)
    {
        var replacement = await MigrateToReplacementAsync();

        await SetRestoreFromConditionAsync(replacement.Metadata.Name!, "False", reason, "pod is not restored: the reason; the pod keeps running cold");
        await ReconcileAsync();

        var status = _f.Restore(Migration).Status!;
        Assert.Equal(fails ? RestorePhase.Failed : RestorePhase.Restoring, status.Phase);
        Assert.Contains("pod is not restored: the reason", status.Message);
        if (fails) Assert.Equal(reason, status.FindCondition(ConditionTypes.Ready)!.Reason);
    }

    [Fact]
    public async Task The_source_stop_is_its_containers_finish_time_when_the_status_shows_it()
    {
        await SeedNodeAsync("n2");
        await SeedReplicaSetAsync(gated: false);
        var source = await _f.CreatePodAsync(Source, node: "n1");
        source.Metadata.Finalizers = ["example.com/keep"]; // deletion marks it: the kubelet's stop shows in its status
        await _f.PodsApi.SeedAsync(source);
        await CreateMigrationAsync(targetNode: null);
        await StartAsync();
        await ReconcileAsync();
        await SetCheckpointAsync(ContainerCheckpointPhase.Completed);
        await ReconcileAsync();
        Assert.NotNull(_f.Pod(Source)!.Metadata.DeletionTimestamp);
        Assert.Null(_f.Restore(Migration).Status!.Timeline!.SourceStoppedAt); // still running

        var finished = _f.Time.GetUtcNow().AddSeconds(2);
        _f.Time.Advance(TimeSpan.FromSeconds(10));
        await _f.SetContainerStateAsync(Source, new ContainerState { Terminated = new ContainerStateTerminated { ExitCode = 143, FinishedAt = finished } });
        await ReconcileAsync();

        Assert.Equal(finished, _f.Restore(Migration).Status!.Timeline!.SourceStoppedAt);
    }

    [Theory]
    [InlineData("bare", "n2", MigrationReconciler.ReasonTargetNodeRequired)]
    [InlineData("deployment", "n9", MigrationReconciler.ReasonNodeNotFound)]
    [InlineData("missing", "n2", MigrationReconciler.ReasonPodNotFound)]
    public async Task What_cannot_be_moved_fails_before_any_checkpoint_naming_why(string pod, string node, string reason)
    {
        await SeedNodeAsync("n2");
        await SeedReplicaSetAsync(gated: true);
        if (pod == "bare") await _f.CreatePodAsync("solo", replicaSet: null);
        if (pod == "deployment") await _f.CreatePodAsync(Source);
        await CreateMigrationAsync(pod switch { "bare" => "solo", "deployment" => Source, _ => "nope" }, pod == "bare" ? null : node);
        await StartAsync();

        await ReconcileAsync();

        var status = _f.Restore(Migration).Status!;
        Assert.Equal(RestorePhase.Failed, status.Phase);
        Assert.Equal(reason, status.FindCondition(ConditionTypes.Ready)!.Reason);
        Assert.Empty(_f.CheckpointsApi.AllStored());
    }

    [Fact]
    public async Task The_restore_reconciler_leaves_migrations_alone()
    {
        await _f.CreatePodAsync(Source);
        await CreateMigrationAsync();
        await StartAsync();

        Assert.Equal(ReconcileResult.Done, await _leader.ReconcileAsync(Migration));

        Assert.Null(_f.Restore(Migration).Status);
        Assert.Equal(0, _f.RestoresApi.CallCount("updateStatus"));
    }
}

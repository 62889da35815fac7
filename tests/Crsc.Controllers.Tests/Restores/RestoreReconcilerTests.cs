using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Restores;
using static Crsc.Controllers.Tests.Restores.RestoreFixture;

namespace Crsc.Controllers.Tests.Restores;

public sealed class RestoreReconcilerTests : IAsyncLifetime
{
    private const string P1 = "counter-7d9f8c6b5-abcde";
    private const string P2 = "counter-7d9f8c6b5-fghij";
    private readonly RestoreFixture _f = new();
    private readonly RestoreReconcilerOptions _options = new();

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit 2 runs IAsyncLifetime.DisposeAsync on a test class, never IAsyncDisposable's: cleanup must be here
    public Task DisposeAsync() => _f.DisposeAsync().AsTask();

    private DateTimeOffset Now => _f.Time.GetUtcNow();

    /// <summary>The usual start: pod P1 running v1, checkpoint c1 of v1, Restore r1 for P1's failure.</summary>
    private async Task<Leader> SeedAsync(string? failedPod = P1, RestoreFallback fallback = RestoreFallback.ColdStart, int maxAttempts = 3,
        bool readinessProbe = false)
    {
        await _f.CreatePodAsync(P1, readinessProbe: readinessProbe);
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        await _f.CreateRestoreAsync("r1", failedPod: failedPod, fallback: fallback, maxAttempts: maxAttempts);
        return await _f.StartLeaderAsync(_options);
    }

    /// <summary>Seeds, lets the node report the images and the leader patch P1 (attempt 1).</summary>
    private async Task<Leader> PatchedAsync(RestoreFallback fallback = RestoreFallback.ColdStart, int maxAttempts = 3, bool readinessProbe = false)
    {
        var leader = await SeedAsync(fallback: fallback, maxAttempts: maxAttempts, readinessProbe: readinessProbe);
        await leader.ReconcileAsync("r1");
        await _f.SetImagesReadyAsync("r1", ConditionStatus.True);
        await leader.ReconcileAsync("r1");
        Assert.Equal(ImageOf("c1"), _f.ImageOfPod(P1));
        return leader;
    }

    // ---- the node's runtime cannot restore ----

    private const string Fix = "set enable_experimental_restore_via_create = true under [plugins.\"io.containerd.cri.v1.runtime\"], then restart containerd";

    [Theory]
    [InlineData(RestoreFallback.ColdStart, RestorePhase.FellBack)]
    [InlineData(RestoreFallback.Fail, RestorePhase.Failed)]
    public async Task On_a_node_whose_runtime_cannot_restore_nothing_is_patched_and_the_fallback_applies_at_once(
        RestoreFallback fallback, RestorePhase expected)
    {
        await _f.SetNodeRestoreAsync("n1", CapabilityState.DisabledByConfig, "restore via CreateContainer is off by default in containerd 2.3.4", Fix);
        var leader = await SeedAsync(fallback: fallback);

        await leader.ReconcileAsync("r1");

        var s = _f.Restore("r1").Status!;
        Assert.Equal(expected, s.Phase);
        var condition = s.FindCondition(RestoreConditions.RuntimeCannotRestore)!;
        Assert.Equal((ConditionStatus.True, "DisabledByConfig"), (condition.Status, condition.Reason));
        Assert.Contains("node n1 cannot restore", condition.Message);
        Assert.Contains("containerd v2.3.4", condition.Message);
        Assert.Contains(Fix, condition.Message);
        Assert.Contains(Fix, s.Message);
        // no patch, no pull asked of the node, the pod keeps its image
        Assert.Equal(0, _f.PodsApi.CallCount("patch"));
        Assert.Equal(ImageV1, _f.ImageOfPod(P1));
        Assert.Null(s.Image);
        Assert.Contains(RestoreConditions.RuntimeCannotRestore, _f.EventReasons("Restore", "r1"));
        Assert.Equal("Warning", _f.Events.Events.Single(e => e.Reason == RestoreConditions.RuntimeCannotRestore).Type);
    }

    [Fact]
    public async Task A_replacement_on_a_node_that_cannot_restore_says_the_workload_did_not_let_crsc_choose_its_node()
    {
        await _f.SetNodeRestoreAsync("n1", CapabilityState.DisabledByConfig, "off by default in containerd 2.3.4", Fix);
        // the failed pod P1 is gone; its replacement P2 runs on n1, where the scheduler put it
        await _f.CreatePodAsync(P2);
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        await _f.CreateRestoreAsync("r1", failedPod: P1);
        var leader = await _f.StartLeaderAsync(_options);

        await leader.ReconcileAsync("r1");

        var message = _f.Restore("r1").Status!.FindCondition(RestoreConditions.RuntimeCannotRestore)!.Message;
        Assert.Contains($"no scheduling gate {SchedulingGates.RestorePlacement}", message);
        Assert.Contains("Deployment counter", message);
        Assert.Equal(0, _f.PodsApi.CallCount("patch"));
    }

    [Fact]
    public async Task The_failed_pod_itself_on_a_node_that_cannot_restore_gets_no_placement_advice()
    {
        await _f.SetNodeRestoreAsync("n1", CapabilityState.DisabledByConfig, "off by default in containerd 2.3.4", Fix);
        var leader = await SeedAsync();

        await leader.ReconcileAsync("r1");

        Assert.DoesNotContain(SchedulingGates.RestorePlacement, _f.Restore("r1").Status!.FindCondition(RestoreConditions.RuntimeCannotRestore)!.Message);
    }

    [Theory]
    [InlineData(CapabilityState.Supported)]
    [InlineData(CapabilityState.Unknown)]
    public async Task A_node_that_can_restore_or_does_not_know_is_restored_as_before(CapabilityState state)
    {
        // Unknown is never acted on as if it were a fact: the restore is tried
        await _f.SetNodeRestoreAsync("n1", state, "whatever the probe found");
        var leader = await PatchedAsync();
        Assert.Null(_f.Restore("r1").Status!.FindCondition(RestoreConditions.RuntimeCannotRestore));
        Assert.Equal(RestorePhase.Restoring, _f.Restore("r1").Status!.Phase);
        _ = leader;
    }

    [Fact]
    public async Task A_node_that_loses_restore_while_images_are_pulled_gets_no_patch()
    {
        var leader = await SeedAsync();
        await leader.ReconcileAsync("r1"); // checkpoint chosen, waiting for the node's images
        Assert.Equal(RestorePhase.Restoring, _f.Restore("r1").Status!.Phase);
        await _f.SetNodeRestoreAsync("n1", CapabilityState.NotSupported, "containerd 2.4 removed restore in CreateContainer");
        await _f.SetImagesReadyAsync("r1", ConditionStatus.True);

        await leader.ReconcileAsync("r1");

        Assert.Equal(RestorePhase.FellBack, _f.Restore("r1").Status!.Phase);
        Assert.Equal(0, _f.PodsApi.CallCount("patch"));
        Assert.Contains("does not support it", _f.Restore("r1").Status!.FindCondition(RestoreConditions.RuntimeCannotRestore)!.Message);
    }

    // ---- the restore step is a backend's ----

    /// <summary>The image swap, counted; and a node verdict of its own (a pod-level backend would read other fields).</summary>
    private sealed class RecordingBackend(IRestoreBackend inner, Func<CheckpointNode, bool>? cannot = null) : IRestoreBackend
    {
        public List<string> Calls { get; } = [];
        public string Name => "recording " + inner.Name;
        public bool CannotRestoreOn(CheckpointNode node) => cannot?.Invoke(node) ?? inner.CannotRestoreOn(node);
        public Task StartAsync(Restore r, Pod pod, string container, CancellationToken ct)
        {
            Calls.Add($"start {pod.Metadata.Name}/{container}");
            return inner.StartAsync(r, pod, container, ct);
        }
        public bool Started(Restore r, Pod pod, string container) => inner.Started(r, pod, container);
        public Task UndoAsync(Restore r, Pod pod, string container, CancellationToken ct)
        {
            Calls.Add($"undo {pod.Metadata.Name}/{container}");
            return inner.UndoAsync(r, pod, container, ct);
        }
    }

    [Fact]
    public async Task The_restore_is_started_and_undone_through_its_backend()
    {
        var backend = new RecordingBackend(new ImageSwapRestoreBackend(_f.Kube));
        await _f.CreatePodAsync(P1);
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        await _f.CreateRestoreAsync("r1", failedPod: P1, maxAttempts: 1);
        var leader = await _f.StartLeaderAsync(_options, backend: backend);
        await leader.ReconcileAsync("r1");
        await _f.SetImagesReadyAsync("r1", ConditionStatus.True);

        await leader.ReconcileAsync("r1");
        Assert.Equal([$"start {P1}/{RestoreFixture.Container}"], backend.Calls);
        Assert.Equal(ImageOf("c1"), _f.ImageOfPod(P1));

        _f.Time.Advance(_options.RestoreTimeout + TimeSpan.FromSeconds(1));
        await leader.ReconcileAsync("r1");

        Assert.Equal([$"start {P1}/{RestoreFixture.Container}", $"undo {P1}/{RestoreFixture.Container}"], backend.Calls);
        Assert.Equal(RestorePhase.FellBack, _f.Restore("r1").Status!.Phase);
        Assert.Equal(ImageV1, _f.ImageOfPod(P1));
    }

    [Fact]
    public async Task Whether_a_node_can_restore_is_the_backends_verdict()
    {
        // the node's runtime restores containers, but this backend needs what the node lacks
        await _f.SetNodeRestoreAsync("n1", CapabilityState.Supported, "restores containers");
        var backend = new RecordingBackend(new ImageSwapRestoreBackend(_f.Kube), cannot: n => n.Status?.PodCheckpointApi?.StartsWith("served", StringComparison.Ordinal) != true);
        await _f.CreatePodAsync(P1);
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        await _f.CreateRestoreAsync("r1", failedPod: P1);
        var leader = await _f.StartLeaderAsync(_options, backend: backend);

        await leader.ReconcileAsync("r1");

        Assert.Empty(backend.Calls);
        Assert.Equal(RestorePhase.FellBack, _f.Restore("r1").Status!.Phase);
        Assert.NotNull(_f.Restore("r1").Status!.FindCondition(RestoreConditions.RuntimeCannotRestore));
    }

    // ---- checkpoint choice ----

    [Fact]
    public async Task Chooses_the_latest_completed_checkpoint_of_the_pods_image_and_of_this_workload()
    {
        await _f.CreatePodAsync(P1);
        await _f.CreateCheckpointAsync("c-old", Now.AddMinutes(-10));
        await _f.CreateCheckpointAsync("c-new", Now.AddMinutes(-5));
        await _f.CreateCheckpointAsync("c-other-image", Now.AddMinutes(-1), baseImage: "registry.local/counter:0");
        await _f.CreateCheckpointAsync("c-other-workload", Now.AddMinutes(-1), workload: "web", pod: "web-5f5f5-zzzzz");
        await _f.CreateCheckpointAsync("c-running", Now, phase: ContainerCheckpointPhase.Running);
        await _f.CreateRestoreAsync("r1", failedPod: P1);
        var leader = await _f.StartLeaderAsync(_options);

        var result = await leader.ReconcileAsync("r1");

        var s = _f.Restore("r1").Status!;
        Assert.Equal(RestorePhase.Restoring, s.Phase);
        Assert.Equal("c-new", s.CheckpointName);
        Assert.Equal(ImageOf("c-new"), s.Image);
        Assert.Equal(ImageV1, s.OriginalImage);
        Assert.Equal((P1, _f.Pod(P1)!.Metadata.Uid, "n1"), (s.PodName, s.PodUid, s.Node));
        Assert.Equal(0, s.Attempts);
        Assert.Null(s.PatchedAt);
        // nothing is patched before the node has the images
        Assert.Equal(ImageV1, _f.ImageOfPod(P1));
        Assert.Equal(0, _f.PodsApi.CallCount("patch"));
        Assert.Equal(ReconcileResult.RequeueAfter(_options.ImagePreparationTimeout), result);
        Assert.Equal(["PodSelected", "CheckpointSelected"], _f.EventReasons("Restore", "r1"));
    }

    [Fact]
    public async Task An_unlabelled_checkpoint_counts_by_the_pod_it_was_taken_of_and_docker_hub_spellings_match()
    {
        await _f.CreatePodAsync(P1, image: "nginx");
        await _f.CreateCheckpointAsync("c-labelled-web", Now.AddMinutes(-1), baseImage: "docker.io/library/nginx:latest", workload: "web");
        // taken of a pod of the Deployment that is gone now: known by its name
        await _f.CreateCheckpointAsync("c-manual", Now.AddMinutes(-3), baseImage: "docker.io/library/nginx:latest", workload: null,
            pod: "counter-7d9f8c6b5-old00");
        await _f.CreateRestoreAsync("r1", failedPod: P1);
        var leader = await _f.StartLeaderAsync(_options);

        await leader.ReconcileAsync("r1");

        Assert.Equal("c-manual", _f.Restore("r1").Status!.CheckpointName);
        Assert.Equal("nginx", _f.Restore("r1").Status!.OriginalImage);
    }

    [Fact]
    public async Task A_named_checkpoint_is_used_even_when_a_newer_one_exists()
    {
        await _f.CreatePodAsync(P1);
        await _f.CreateCheckpointAsync("c-old", Now.AddMinutes(-10));
        await _f.CreateCheckpointAsync("c-new", Now.AddMinutes(-5));
        await _f.CreateRestoreAsync("r1", failedPod: P1, checkpoint: "c-old");
        var leader = await _f.StartLeaderAsync(_options);

        await leader.ReconcileAsync("r1");

        Assert.Equal(("c-old", ImageOf("c-old")), (_f.Restore("r1").Status!.CheckpointName, _f.Restore("r1").Status!.Image));
    }

    [Fact]
    public async Task After_a_users_rollout_old_checkpoints_are_not_restored_and_ColdStart_leaves_the_new_version_alone()
    {
        await _f.CreatePodAsync(P1, image: ImageV2, replicaSet: "counter-55c8d9f7b", hash: "55c8d9f7b");
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        await _f.CreateRestoreAsync("r1", failedPod: P1);
        var leader = await _f.StartLeaderAsync(_options);

        Assert.Equal(ReconcileResult.Done, await leader.ReconcileAsync("r1"));

        var s = _f.Restore("r1").Status!;
        Assert.Equal(RestorePhase.FellBack, s.Phase);
        Assert.Contains(ImageV2, s.Message);
        Assert.Contains($"c1 ({ImageV1})", s.Message);
        Assert.Contains("new version", s.Message);
        Assert.Equal(0, s.Attempts);
        Assert.NotNull(s.CompletedAt);
        Assert.Equal(ImageV2, _f.ImageOfPod(P1));
        Assert.Equal(0, _f.PodsApi.CallCount("patch"));
        Assert.Contains("FellBack", _f.EventReasons("Restore", "r1"));
    }

    // ---- no checkpoint: why there is none ----

    private const string RuntimeRefusal = "rpc error: code = Unknown desc = checkpoint/restore support not available";

    [Fact]
    public async Task With_no_checkpoint_ever_taken_the_fallback_says_so()
    {
        await _f.CreatePodAsync(P1);
        await _f.CreateCheckpointAsync("c-web", Now.AddMinutes(-5), workload: "web", pod: "web-5f5f5-zzzzz"); // another workload's
        await _f.CreateRestoreAsync("r1", failedPod: P1);
        var leader = await _f.StartLeaderAsync(_options);

        Assert.Equal(ReconcileResult.Done, await leader.ReconcileAsync("r1"));

        var s = _f.Restore("r1").Status!;
        Assert.Equal(RestorePhase.FellBack, s.Phase);
        const string why = "there is no Completed checkpoint of container app of Deployment counter: no checkpoint of it was ever taken " +
            "(no ContainerCheckpoint of it exists: a CheckpointSchedule or a ContainerCheckpoint makes one)";
        Assert.StartsWith(why, s.Message);
        Assert.StartsWith(why, s.FindCondition(ConditionTypes.Degraded)!.Message);
        Assert.Equal(0, _f.PodsApi.CallCount("patch"));
    }

    [Fact]
    public async Task With_checkpoints_of_other_containers_only_the_fallback_names_them()
    {
        await _f.CreatePodAsync(P1);
        await _f.CreateCheckpointAsync("c-sidecar", Now.AddMinutes(-5), container: "sidecar");
        await _f.CreateRestoreAsync("r1", failedPod: P1);
        var leader = await _f.StartLeaderAsync(_options);

        await leader.ReconcileAsync("r1");

        Assert.StartsWith("there is no Completed checkpoint of container app of Deployment counter: no checkpoint of it was ever taken " +
            "(there are checkpoints of its other containers: sidecar)", _f.Restore("r1").Status!.Message);
    }

    /// <summary>Seen on a CRI-O node with checkpointing off: the fallback said only "there is no Completed checkpoint".</summary>
    [Fact]
    public async Task When_every_checkpoint_failed_the_fallback_counts_them_and_quotes_the_runtime()
    {
        await _f.CreatePodAsync(P1);
        for (var i = 1; i <= 4; i++)
            await _f.CreateCheckpointAsync($"f{i}", Now.AddMinutes(-50 + 10 * i), phase: ContainerCheckpointPhase.Failed, failure: RuntimeRefusal);
        await _f.CreateCheckpointAsync("c-running", Now, phase: ContainerCheckpointPhase.Running);
        await _f.CreateRestoreAsync("r1", failedPod: P1, fallback: RestoreFallback.Fail);
        var leader = await _f.StartLeaderAsync(_options);

        await leader.ReconcileAsync("r1");

        var s = _f.Restore("r1").Status!;
        Assert.Equal(RestorePhase.Failed, s.Phase);
        Assert.Equal("NoUsableCheckpoint", s.FindCondition(ConditionTypes.Ready)!.Reason);
        var lastFailed = _f.CheckpointsApi.Stored(Ns, "f4")!.Status!.CompletedAt!.Value;
        Assert.StartsWith("there is no Completed checkpoint of container app of Deployment counter: " +
            $"the last 4 checkpoints of container app failed (latest f4 at {KubeTime.ToText(lastFailed)}: {RuntimeRefusal}); last success: never; " +
            "checkpoint c-running is not finished (phase Running); fallback Fail", s.Message);
    }

    [Fact]
    public async Task After_a_rollout_whose_checkpoints_fail_the_fallback_says_both()
    {
        await _f.CreatePodAsync(P1, image: ImageV2, replicaSet: "counter-55c8d9f7b", hash: "55c8d9f7b");
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-30));
        await _f.CreateCheckpointAsync("f2", Now.AddMinutes(-10), phase: ContainerCheckpointPhase.Failed, failure: RuntimeRefusal);
        await _f.CreateRestoreAsync("r1", failedPod: P1);
        var leader = await _f.StartLeaderAsync(_options);

        await leader.ReconcileAsync("r1");

        var s = _f.Restore("r1").Status!;
        Assert.Equal(RestorePhase.FellBack, s.Phase);
        Assert.Contains($"was taken from the pod's image {ImageV2}", s.Message);
        Assert.Contains($"c1 ({ImageV1}); since then, the last checkpoint of container app failed (latest f2 at ", s.Message);
        Assert.Contains($"{RuntimeRefusal}); last success: ", s.Message);
        Assert.Contains("(c1)", s.Message);
    }

    [Fact]
    public async Task A_named_checkpoint_of_an_older_version_fails_the_restore_with_fallback_Fail()
    {
        await _f.CreatePodAsync(P1, image: ImageV2);
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        await _f.CreateRestoreAsync("r1", failedPod: P1, checkpoint: "c1", fallback: RestoreFallback.Fail);
        var leader = await _f.StartLeaderAsync(_options);

        await leader.ReconcileAsync("r1");

        var s = _f.Restore("r1").Status!;
        Assert.Equal(RestorePhase.Failed, s.Phase);
        Assert.Contains($"checkpoint c1 was taken from image {ImageV1}, but the pod runs {ImageV2}", s.Message);
        Assert.Equal(ImageV2, _f.ImageOfPod(P1));
        Assert.Contains("RestoreFailed", _f.EventReasons("Restore", "r1"));
        Assert.Contains("RestoreFailed", _f.EventReasons("Pod", P1));
    }

    [Fact]
    public async Task A_named_checkpoint_that_does_not_exist_fails_naming_the_field()
    {
        await _f.CreatePodAsync(P1);
        await _f.CreateRestoreAsync("r1", failedPod: P1, checkpoint: "nope");
        var leader = await _f.StartLeaderAsync(_options);

        await leader.ReconcileAsync("r1");

        Assert.Equal(RestorePhase.Failed, _f.Restore("r1").Status!.Phase);
        Assert.StartsWith("spec.checkpointName: ContainerCheckpoint shop/nope does not exist", _f.Restore("r1").Status!.Message);
    }

    [Fact]
    public async Task Waits_for_the_checkpoint_image_then_gives_up_through_the_fallback()
    {
        await _f.CreatePodAsync(P1);
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5), imageReference: null);
        await _f.CreateRestoreAsync("r1", failedPod: P1, fallback: RestoreFallback.Fail);
        var leader = await _f.StartLeaderAsync(_options);

        var first = await leader.ReconcileAsync("r1");

        var s = _f.Restore("r1").Status!;
        Assert.Equal(RestorePhase.Pending, s.Phase);
        Assert.Contains("checkpoint c1 has no image yet", s.Message);
        Assert.Equal(ReconcileOutcome.RequeueAfter, first.Outcome);
        Assert.True(first.Delay <= _options.ImageReferenceTimeout);

        _f.Time.Advance(_options.ImageReferenceTimeout);
        await leader.ReconcileAsync("r1");

        s = _f.Restore("r1").Status!;
        Assert.Equal(RestorePhase.Failed, s.Phase);
        Assert.Contains("spec.imageReference", s.Message);
        Assert.Contains($"gave up after {_options.ImageReferenceTimeout}", s.Message);
        Assert.Equal(ImageV1, _f.ImageOfPod(P1));
    }

    [Fact]
    public async Task The_image_published_while_waiting_is_used()
    {
        await _f.CreatePodAsync(P1);
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5), imageReference: null);
        await _f.CreateRestoreAsync("r1", failedPod: P1);
        var leader = await _f.StartLeaderAsync(_options);
        await leader.ReconcileAsync("r1");

        var content = _f.ContentsApi.Stored(null, "ckpt-c1")!;
        content.Spec.ImageReference = ImageOf("c1");
        await _f.ContentsApi.UpdateAsync(content, CancellationToken.None);
        _f.Time.Advance(TimeSpan.FromMinutes(1));
        await leader.ReconcileAsync("r1");

        Assert.Equal((RestorePhase.Restoring, ImageOf("c1")), (_f.Restore("r1").Status!.Phase, _f.Restore("r1").Status!.Image));
    }

    // ---- pod choice ----

    [Fact]
    public async Task The_failed_pod_of_the_annotation_is_restored_rather_than_the_newest()
    {
        await _f.CreatePodAsync(P1);
        await _f.CreatePodAsync(P2);
        await _f.CreatePodAsync("web-5f5f5-zzzzz", replicaSet: "web-5f5f5", hash: "5f5f5");
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        await _f.CreateRestoreAsync("r-failed", failedPod: P1);
        await _f.CreateRestoreAsync("r-none");
        await _f.CreateRestoreAsync("r-foreign", failedPod: "web-5f5f5-zzzzz");
        var leader = await _f.StartLeaderAsync(_options);

        await leader.ReconcileAsync("r-failed");
        await leader.ReconcileAsync("r-none");
        await leader.ReconcileAsync("r-foreign");

        Assert.Equal(P1, _f.Restore("r-failed").Status!.PodName);
        Assert.Equal(P2, _f.Restore("r-none").Status!.PodName); // newest of the Deployment
        Assert.Equal(P2, _f.Restore("r-foreign").Status!.PodName); // the annotation names another Deployment's pod
    }

    [Fact]
    public async Task A_lost_pod_is_replaced_by_the_ReplicaSets_new_pod_once_it_runs()
    {
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        await _f.CreateRestoreAsync("r1", failedPod: P1); // P1 is gone already (its node died)
        var leader = await _f.StartLeaderAsync(_options);

        var waiting = await leader.ReconcileAsync("r1");

        var s = _f.Restore("r1").Status!;
        Assert.Equal(RestorePhase.Pending, s.Phase);
        Assert.Null(s.PodName);
        Assert.Contains("waiting for a pod of Deployment counter", s.Message);
        Assert.Equal(ReconcileOutcome.RequeueAfter, waiting.Outcome);

        var replacement = await _f.CreatePodAsync(P2, node: "n2");
        var p = _f.Pod(P2)!;
        p.Status!.Phase = "Pending";
        await _f.PodsApi.UpdateStatusAsync(p, CancellationToken.None);
        await leader.ReconcileAsync("r1");
        Assert.Null(_f.Restore("r1").Status!.PodName); // not running yet

        p = _f.Pod(P2)!;
        p.Status!.Phase = "Running";
        await _f.PodsApi.UpdateStatusAsync(p, CancellationToken.None);
        await leader.ReconcileAsync("r1");

        s = _f.Restore("r1").Status!;
        Assert.Equal((P2, replacement.Metadata.Uid, "n2"), (s.PodName, s.PodUid, s.Node));
        Assert.Equal(RestorePhase.Restoring, s.Phase);
        Assert.Equal(0, s.Attempts);
    }

    [Fact]
    public async Task A_pod_lost_while_images_are_prepared_is_exchanged_for_its_replacement_without_counting_an_attempt()
    {
        var leader = await SeedAsync();
        await leader.ReconcileAsync("r1");
        await _f.SetImagesReadyAsync("r1", ConditionStatus.Unknown, "pulling");

        await _f.PodsApi.DeleteAsync(Ns, P1, null, CancellationToken.None);
        await leader.ReconcileAsync("r1");
        var s = _f.Restore("r1").Status!;
        Assert.Null(s.PodName);
        Assert.Null(s.Image);
        Assert.Null(s.FindCondition(RestoreConditions.ImagesReady)); // that was the other node's answer
        Assert.Contains(_f.Events.Events, e => e.Reason == "WaitingForPod" && e.Message.Contains($"pod {P1} is gone; waiting for its replacement"));

        await _f.CreatePodAsync(P2, node: "n2");
        await leader.ReconcileAsync("r1");

        s = _f.Restore("r1").Status!;
        Assert.Equal((P2, "n2", 0), (s.PodName, s.Node, s.Attempts));
        Assert.Equal(ImageOf("c1"), s.Image);
        Assert.Equal(0, _f.PodsApi.CallCount("patch"));
    }

    [Fact]
    public async Task Gives_up_when_no_pod_runs_within_the_pod_timeout()
    {
        await _f.CreateRestoreAsync("r1", failedPod: P1);
        var leader = await _f.StartLeaderAsync(_options);
        await leader.ReconcileAsync("r1");

        _f.Time.Advance(_options.PodTimeout);
        await leader.ReconcileAsync("r1");

        Assert.Equal(RestorePhase.Failed, _f.Restore("r1").Status!.Phase);
        Assert.Contains("no running pod of Deployment counter", _f.Restore("r1").Status!.Message);
    }

    // ---- images and the patch ----

    [Fact]
    public async Task Patches_the_container_image_and_annotates_the_pod_once_the_node_reports_the_images_ready()
    {
        var leader = await SeedAsync();
        await leader.ReconcileAsync("r1");
        await _f.SetImagesReadyAsync("r1", ConditionStatus.True);
        var patchedAt = Now;

        var result = await leader.ReconcileAsync("r1");

        var pod = _f.Pod(P1)!;
        Assert.Equal(ImageOf("c1"), _f.ImageOfPod(P1));
        Assert.Equal("r1", pod.Metadata.Annotations![Annotations.Restore]);
        Assert.Equal("c1", pod.Metadata.Annotations[Annotations.RestoredFrom]);
        Assert.Equal($"{RestoreFixture.Container}={ImageV1}", pod.Metadata.Annotations[Annotations.OriginalImage]);
        Assert.Equal("Running", pod.Status!.Phase); // same pod, nothing else touched
        var s = _f.Restore("r1").Status!;
        Assert.Equal(1, s.Attempts);
        Assert.Equal(patchedAt, s.PatchedAt);
        Assert.Equal(RestorePhase.Restoring, s.Phase);
        Assert.Equal(ReconcileResult.RequeueAfter(_options.RestoreTimeout), result);
        Assert.Equal(["PodSelected", "CheckpointSelected", "Restoring"], _f.EventReasons("Restore", "r1"));
        Assert.Equal(["Restoring"], _f.EventReasons("Pod", P1));

        // level-triggered: nothing more until the kubelet reports
        await leader.ReconcileAsync("r1");
        Assert.Equal(1, _f.PodsApi.CallCount("patch"));
        Assert.Equal(1, _f.Restore("r1").Status!.Attempts);
    }

    [Fact]
    public async Task Without_an_answer_from_the_node_it_patches_after_the_preparation_timeout_and_says_so()
    {
        var leader = await SeedAsync();
        await leader.ReconcileAsync("r1");
        _f.Time.Advance(_options.ImagePreparationTimeout - TimeSpan.FromSeconds(1));
        await leader.ReconcileAsync("r1");
        Assert.Equal(ImageV1, _f.ImageOfPod(P1));

        _f.Time.Advance(TimeSpan.FromSeconds(1));
        await leader.ReconcileAsync("r1");

        Assert.Equal(ImageOf("c1"), _f.ImageOfPod(P1));
        var warning = Assert.Single(_f.Events.Events, e => e.Reason == "ImagesNotPrepared");
        Assert.Equal("Warning", warning.Type);
        Assert.Contains("no crsc on node n1 reported the images ready", warning.Message);
        Assert.Contains("the kubelet pulls them", warning.Message);
    }

    [Fact]
    public async Task Images_that_cannot_be_pulled_end_the_restore_through_the_fallback_with_the_runtimes_message()
    {
        var leader = await SeedAsync();
        await leader.ReconcileAsync("r1");
        await _f.SetImagesReadyAsync("r1", ConditionStatus.False, "pulling x failed (3 of 3): manifest unknown");

        await leader.ReconcileAsync("r1");

        var s = _f.Restore("r1").Status!;
        Assert.Equal(RestorePhase.FellBack, s.Phase);
        Assert.Contains("cannot be pulled on node n1: pulling x failed (3 of 3): manifest unknown", s.Message);
        Assert.Equal(ImageV1, _f.ImageOfPod(P1));
        Assert.Equal(0, _f.PodsApi.CallCount("patch"));
    }

    [Fact]
    public async Task Images_of_a_checkpoint_taken_on_another_node_that_cannot_be_pulled_say_where_a_copy_would_come_from()
    {
        await _f.CreatePodAsync(P1);
        // a drained node's checkpoint, restored into a pod on n1
        var ckpt = await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        ckpt.Status!.Node = "n9";
        await _f.CheckpointsApi.SeedAsync(ckpt, CancellationToken.None);
        await _f.CreateRestoreAsync("r1", failedPod: P1);
        var leader = await _f.StartLeaderAsync(_options);
        await leader.ReconcileAsync("r1");
        await _f.SetImagesReadyAsync("r1", ConditionStatus.False, "pulling x failed (3 of 3): not found");

        await leader.ReconcileAsync("r1");

        var s = _f.Restore("r1").Status!;
        Assert.Equal(RestorePhase.FellBack, s.Phase);
        Assert.Contains("cannot be pulled on node n1: pulling x failed (3 of 3): not found; checkpoint c1 was taken on node n9, the pod runs on node n1", s.Message);
        Assert.Contains("replicate: Registry", s.Message);
        Assert.Contains("pulls its image from node n9's endpoint", s.Message);
        Assert.Contains("crsc.io/restore-from", s.Message);
    }

    // ---- the timeline ----

    [Fact]
    public async Task The_timeline_records_each_phase_from_the_failure_to_Restored()
    {
        var failedAt = Now.AddSeconds(-3);
        await _f.CreatePodAsync(P1);
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        await _f.CreateRestoreAsync("r1", failedPod: P1, failedAt: failedAt);
        var leader = await _f.StartLeaderAsync(_options);

        var chosen = Now;
        await leader.ReconcileAsync("r1"); // Pending, then the checkpoint chosen
        var t = _f.Restore("r1").Status!.Timeline!;
        Assert.Equal(KubeTime.Truncate(failedAt), t.FailedAt);
        Assert.Equal(chosen, t.CheckpointChosenAt);
        Assert.Null(t.PatchedAt);

        _f.Time.Advance(TimeSpan.FromSeconds(4));
        var ready = Now;
        await _f.SetImagesReadyAsync("r1", ConditionStatus.True);
        _f.Time.Advance(TimeSpan.FromSeconds(1));
        var patched = Now;
        await leader.ReconcileAsync("r1");
        t = _f.Restore("r1").Status!.Timeline!;
        Assert.Equal(ready, t.ImagesReadyAt);
        Assert.Equal(patched, t.PatchedAt);

        _f.Time.Advance(TimeSpan.FromSeconds(2));
        var running = Now.AddSeconds(-1); // the node's clock, as the kubelet reports it
        await _f.SetContainerStateAsync(P1, Running(running), image: ImageOf("c1"), ready: true, restartCount: 1);
        await leader.ReconcileAsync("r1");
        t = _f.Restore("r1").Status!.Timeline!;
        Assert.Equal(running, t.RunningAt);
        Assert.Equal(Now, t.RestoredAt);
        Assert.Equal(RestorePhase.Restored, _f.Restore("r1").Status!.Phase);
    }

    // ---- following the container ----

    [Fact]
    public async Task Restored_when_the_container_runs_from_the_checkpoint_image()
    {
        var leader = await PatchedAsync();
        _f.Time.Advance(TimeSpan.FromSeconds(2));
        await _f.SetContainerStateAsync(P1, Running(Now), image: ImageOf("c1"), ready: true, restartCount: 1);

        Assert.Equal(ReconcileResult.Done, await leader.ReconcileAsync("r1"));

        var s = _f.Restore("r1").Status!;
        Assert.Equal(RestorePhase.Restored, s.Phase);
        Assert.Equal(Now, s.CompletedAt);
        Assert.True(s.IsConditionTrue(ConditionTypes.Ready));
        Assert.Equal(1, s.Attempts);
        // the restored instance, by which the failure detector tells a later crash from crsc's own restarts
        Assert.Equal(1, s.RestoredRestartCount);
        Assert.Equal(_f.Pod(P1)!.Status!.ContainerStatuses![0].ContainerID, s.RestoredContainerId);
        Assert.Contains("Restored", _f.EventReasons("Restore", "r1"));
        Assert.Contains("Restored", _f.EventReasons("Pod", P1));
        Assert.NotNull(_f.Pod(P1)); // same pod
    }

    [Fact]
    public async Task With_a_readiness_probe_Restored_waits_for_ready()
    {
        var leader = await PatchedAsync(readinessProbe: true);
        _f.Time.Advance(TimeSpan.FromSeconds(2));
        await _f.SetContainerStateAsync(P1, Running(Now), image: ImageOf("c1"), ready: false);
        await leader.ReconcileAsync("r1");
        Assert.Equal(RestorePhase.Restoring, _f.Restore("r1").Status!.Phase);

        await _f.SetContainerStateAsync(P1, Running(Now), image: ImageOf("c1"), ready: true);
        await leader.ReconcileAsync("r1");
        Assert.Equal(RestorePhase.Restored, _f.Restore("r1").Status!.Phase);
    }

    [Fact]
    public async Task The_old_containers_state_right_after_the_patch_is_not_taken_for_the_restores()
    {
        var leader = await PatchedAsync();
        // the kubelet has not acted yet: the status is still the crashing original container's
        await _f.SetContainerStateAsync(P1, Waiting("CrashLoopBackOff", "back-off 5m0s restarting failed container"), image: ImageV1);
        var result = await leader.ReconcileAsync("r1");
        Assert.Equal(RestorePhase.Restoring, _f.Restore("r1").Status!.Phase);
        Assert.Equal(ReconcileResult.RequeueAfter(_options.StatusGrace), result);

        _f.Time.Advance(TimeSpan.FromSeconds(3));
        await _f.SetContainerStateAsync(P1, Running(Now), image: ImageOf("c1"), ready: true);
        await leader.ReconcileAsync("r1");
        Assert.Equal(RestorePhase.Restored, _f.Restore("r1").Status!.Phase);
    }

    [Theory]
    // containerd 2.2.7+/2.3.4+ without the opt-in, as the kubelet passes CreateContainer's error on
    [InlineData("failed to create containerd container: checkpoint restore via CreateContainer is disabled by configuration")]
    // CRI-O with CRIU support off
    [InlineData("checkpoint/restore support not available")]
    public async Task A_runtime_that_refuses_the_restore_at_the_patch_falls_back_at_once_without_deleting_the_pod(string message)
    {
        var leader = await PatchedAsync(); // the node's CheckpointNode said nothing against it (an older agent, or a stale probe)
        _f.Time.Advance(TimeSpan.FromSeconds(3));
        await _f.SetContainerStateAsync(P1, Waiting("CreateContainerError", message), image: ImageOf("c1"));

        await leader.ReconcileAsync("r1");

        var s = _f.Restore("r1").Status!;
        Assert.Equal(RestorePhase.FellBack, s.Phase);
        Assert.Equal(1, s.Attempts); // no second attempt: it would be refused alike
        Assert.NotNull(_f.Pod(P1)); // not deleted: the fallback puts the original image back in place
        Assert.Equal(ImageV1, _f.ImageOfPod(P1));
        var condition = s.FindCondition(RestoreConditions.RuntimeCannotRestore)!;
        Assert.Equal((ConditionStatus.True, "RefusedByRuntime"), (condition.Status, condition.Reason));
        Assert.Contains("refused the restore", condition.Message);
        Assert.Contains("kubectl get ckn n1", condition.Message);
        Assert.Contains(RestoreConditions.RuntimeCannotRestore, _f.EventReasons("Restore", "r1"));
        Assert.DoesNotContain("PodDeleted", _f.EventReasons("Restore", "r1"));
    }

    [Fact]
    public async Task A_restore_that_fails_in_the_runtime_deletes_the_pod_and_restores_its_replacement()
    {
        var leader = await PatchedAsync();
        _f.Time.Advance(TimeSpan.FromSeconds(3));
        await _f.SetContainerStateAsync(P1, Waiting("CreateContainerError",
            "failed to restore container app: criu failed: type NOTIFY errno 0"), image: ImageOf("c1"));

        await leader.ReconcileAsync("r1");

        Assert.Null(_f.Pod(P1)); // deleted: the ReplicaSet makes a new one
        var s = _f.Restore("r1").Status!;
        Assert.Equal(1, s.Attempts);
        Assert.Null(s.PatchedAt);
        Assert.Contains("attempt 1 of 3 failed: CreateContainerError: failed to restore container app: criu failed: type NOTIFY", s.Message);
        Assert.Contains("RestoreAttemptFailed", _f.EventReasons("Restore", "r1"));
        Assert.Contains("PodDeleted", _f.EventReasons("Restore", "r1"));
        Assert.Contains("RestoreAttemptFailed", _f.EventReasons("Pod", P1));

        await leader.ReconcileAsync("r1");
        Assert.Null(_f.Restore("r1").Status!.PodName);

        await _f.CreatePodAsync(P2, node: "n2");
        await leader.ReconcileAsync("r1");
        s = _f.Restore("r1").Status!;
        Assert.Equal((P2, "n2", RestorePhase.Restoring), (s.PodName, s.Node, s.Phase));
        await _f.SetImagesReadyAsync("r1", ConditionStatus.True);
        await leader.ReconcileAsync("r1");

        Assert.Equal(ImageOf("c1"), _f.ImageOfPod(P2));
        Assert.Equal(2, _f.Restore("r1").Status!.Attempts);
        Assert.Equal(2, _f.PodsApi.CallCount("patch"));
        Assert.Equal(1, _f.PodsApi.CallCount("delete"));
    }

    [Fact]
    public async Task The_patch_records_the_container_it_replaces_as_the_server_held_its_status()
    {
        var leader = await SeedAsync();
        await _f.SetContainerStateAsync(P1, Running(Now), image: ImageV1, ready: true, restartCount: 4);
        await leader.ReconcileAsync("r1");
        await _f.SetImagesReadyAsync("r1", ConditionStatus.True);
        // the kubelet writes between the leader's read of the pod (its cache) and the patch
        var kubeletFirst = true;
        _f.PodsApi.BeforeCall = (verb, _) =>
        {
            if (verb != "patch" || !kubeletFirst) return;
            kubeletFirst = false;
            var p = _f.PodsApi.Stored(Ns, P1)!;
            var cs = p.Status!.ContainerStatuses!.Single();
            cs.ContainerID = "containerd://app-5";
            cs.RestartCount = 5;
            cs.State = Waiting("CrashLoopBackOff", "back-off 10s restarting failed container");
            _f.PodsApi.UpdateStatusAsync(p, CancellationToken.None).GetAwaiter().GetResult();
        };

        await leader.ReconcileAsync("r1");

        // the patch made from the cache met the newer status (409); the one made is the server's pod's
        Assert.False(kubeletFirst);
        Assert.Equal(ImageOf("c1"), _f.ImageOfPod(P1));
        Assert.Equal(1, _f.Restore("r1").Status!.Attempts);
        var replaced = System.Text.Json.Nodes.JsonNode.Parse(_f.Pod(P1)!.Metadata.Annotations![Annotations.ReplacedContainer])!;
        Assert.Equal(("app", "containerd://app-5", 5, "waiting:CrashLoopBackOff"),
            ((string?)replaced["container"], (string?)replaced["containerID"], (int)replaced["restartCount"]!, (string?)replaced["state"]));
        Assert.Equal(1, _f.Events.Events.Count(e => e.Kind == "Restore" && e.Reason == "Restoring"));
    }

    [Fact]
    public async Task A_restored_container_reported_with_its_base_image_counts_when_the_kubelet_made_it_after_the_patch()
    {
        var leader = await SeedAsync();
        await KubeletReportsAsync("containerd://app-1", Running(Now.AddSeconds(5))); // a node clock ahead of crsc's
        await leader.ReconcileAsync("r1");
        await _f.SetImagesReadyAsync("r1", ConditionStatus.True);
        await leader.ReconcileAsync("r1");
        Assert.Equal(ImageOf("c1"), _f.ImageOfPod(P1));

        // the replaced container, started "after" the patch by the node's clock, is still the replaced one
        await leader.ReconcileAsync("r1");
        Assert.Equal(RestorePhase.Restoring, _f.Restore("r1").Status!.Phase);

        // some runtimes report a restored container by its base image: a container made after the patch is it
        _f.Time.Advance(TimeSpan.FromSeconds(2));
        await KubeletReportsAsync("containerd://app-2", Running(Now), restartCount: 1);
        await leader.ReconcileAsync("r1");

        Assert.Equal(RestorePhase.Restored, _f.Restore("r1").Status!.Phase);
    }

    private async Task KubeletReportsAsync(string containerId, ContainerState state, int restartCount = 0)
    {
        var p = _f.Pod(P1)!;
        var cs = p.Status!.ContainerStatuses!.Single();
        cs.ContainerID = containerId;
        cs.RestartCount = restartCount;
        cs.State = state;
        await _f.PodsApi.UpdateStatusAsync(p, CancellationToken.None);
    }

    [Fact]
    public async Task A_start_error_where_the_replaced_container_ran_fails_the_attempt_without_waiting_for_the_checkpoint_image()
    {
        var leader = await PatchedAsync();
        // the kubelet keeps reporting the last container it had (the replaced one, its image) with the reason it could
        // not start the new one
        await _f.SetContainerStateAsync(P1, Waiting("CreateContainerError", "failed to restore container app: criu failed"));

        await leader.ReconcileAsync("r1");

        Assert.Null(_f.Pod(P1));
        Assert.Contains("attempt 1 of 3 failed: CreateContainerError: failed to restore container app", _f.Restore("r1").Status!.Message);
    }

    [Fact]
    public async Task A_start_error_the_replaced_container_already_had_decides_nothing()
    {
        var leader = await SeedAsync();
        await _f.SetContainerStateAsync(P1, Waiting("RunContainerError", "exec: no such file"), image: ImageV1);
        await leader.ReconcileAsync("r1");
        await _f.SetImagesReadyAsync("r1", ConditionStatus.True);
        await leader.ReconcileAsync("r1");
        Assert.Equal(ImageOf("c1"), _f.ImageOfPod(P1));

        _f.Time.Advance(_options.StatusGrace * 2);
        var result = await leader.ReconcileAsync("r1");

        Assert.Equal(RestorePhase.Restoring, _f.Restore("r1").Status!.Phase);
        Assert.Equal(ReconcileResult.RequeueAfter(_options.StatusGrace), result);
        Assert.NotNull(_f.Pod(P1));
    }

    [Fact]
    public async Task A_container_that_does_not_run_within_the_restore_timeout_fails_the_attempt()
    {
        var leader = await PatchedAsync();
        await _f.SetContainerStateAsync(P1, Waiting("ContainerCreating"), image: ImageOf("c1"));
        var waiting = await leader.ReconcileAsync("r1");
        Assert.Equal(ReconcileResult.RequeueAfter(_options.RestoreTimeout), waiting);

        _f.Time.Advance(_options.RestoreTimeout);
        await leader.ReconcileAsync("r1");

        Assert.Null(_f.Pod(P1));
        Assert.Contains($"did not run within {_options.RestoreTimeout}", _f.Restore("r1").Status!.Message);
    }

    [Fact]
    public async Task After_max_attempts_ColdStart_puts_the_original_image_back_in_the_same_pod()
    {
        var leader = await PatchedAsync(maxAttempts: 1);
        _f.Time.Advance(TimeSpan.FromSeconds(3));
        await _f.SetContainerStateAsync(P1, Waiting("CreateContainerError", "criu failed: type NOTIFY"), image: ImageOf("c1"));

        await leader.ReconcileAsync("r1");

        var pod = _f.Pod(P1)!;
        Assert.Equal(ImageV1, _f.ImageOfPod(P1));
        Assert.Equal("r1", pod.Metadata.Annotations![Annotations.Restore]);
        Assert.False(pod.Metadata.Annotations.ContainsKey(Annotations.RestoredFrom));
        Assert.False(pod.Metadata.Annotations.ContainsKey(Annotations.OriginalImage));
        Assert.False(pod.Metadata.Annotations.ContainsKey(Annotations.ReplacedContainer));
        var s = _f.Restore("r1").Status!;
        Assert.Equal(RestorePhase.FellBack, s.Phase);
        Assert.Contains("the restore failed 1 times; last: CreateContainerError: criu failed", s.Message);
        Assert.Contains($"the original image {ImageV1} is back", s.Message);
        Assert.Equal(0, _f.PodsApi.CallCount("delete"));
        Assert.Contains("FellBack", _f.EventReasons("Restore", "r1"));
        Assert.Contains("FellBack", _f.EventReasons("Pod", P1));
    }

    [Fact]
    public async Task After_max_attempts_Fail_stops_and_leaves_the_pod_as_it_is()
    {
        var leader = await PatchedAsync(fallback: RestoreFallback.Fail, maxAttempts: 1);
        _f.Time.Advance(TimeSpan.FromSeconds(3));
        await _f.SetContainerStateAsync(P1, Waiting("CreateContainerError", "criu failed: type NOTIFY"), image: ImageOf("c1"));

        await leader.ReconcileAsync("r1");

        Assert.Equal(RestorePhase.Failed, _f.Restore("r1").Status!.Phase);
        Assert.Contains("fallback Fail", _f.Restore("r1").Status!.Message);
        Assert.Equal(ImageOf("c1"), _f.ImageOfPod(P1));
        Assert.Equal(1, _f.PodsApi.CallCount("patch"));
        Assert.Equal(0, _f.PodsApi.CallCount("delete"));
    }

    // ---- leadership ----

    [Fact]
    public async Task A_new_leader_after_the_patch_follows_the_container_without_a_second_patch_or_count()
    {
        await PatchedAsync();
        // the old leader is gone; a new daemon starts with fresh caches and a fresh reconciler
        var next = await _f.StartLeaderAsync(_options);

        await next.ReconcileAsync("r1");
        Assert.Equal(1, _f.PodsApi.CallCount("patch"));
        Assert.Equal(1, _f.Restore("r1").Status!.Attempts);

        _f.Time.Advance(TimeSpan.FromSeconds(2));
        await _f.SetContainerStateAsync(P1, Running(Now), image: ImageOf("c1"), ready: true);
        await next.ReconcileAsync("r1");

        Assert.Equal(RestorePhase.Restored, _f.Restore("r1").Status!.Phase);
        Assert.Equal(1, _f.Restore("r1").Status!.Attempts);
        Assert.Equal(1, _f.PodsApi.CallCount("patch"));
    }

    [Fact]
    public async Task A_new_leader_after_the_counted_attempt_but_before_the_patch_makes_the_patch_without_counting_again()
    {
        var leader = await SeedAsync();
        await leader.ReconcileAsync("r1");
        await _f.SetImagesReadyAsync("r1", ConditionStatus.True);
        _f.PodsApi.BeforeCall = (verb, _) =>
        {
            if (verb == "patch") throw new KubeUnavailableException("connection refused (fake)");
        };
        await Assert.ThrowsAsync<KubeUnavailableException>(async () => await leader.ReconcileAsync("r1"));
        Assert.Equal(1, _f.Restore("r1").Status!.Attempts);
        Assert.Equal(ImageV1, _f.ImageOfPod(P1));
        _f.PodsApi.BeforeCall = null;

        var next = await _f.StartLeaderAsync(_options);
        await next.ReconcileAsync("r1");

        Assert.Equal(ImageOf("c1"), _f.ImageOfPod(P1));
        Assert.Equal(1, _f.Restore("r1").Status!.Attempts);
        Assert.Equal("c1", _f.Pod(P1)!.Metadata.Annotations![Annotations.RestoredFrom]);
    }

    [Fact]
    public async Task A_new_leader_after_the_cold_start_patch_finishes_without_patching_again()
    {
        var leader = await PatchedAsync(maxAttempts: 1);
        _f.Time.Advance(TimeSpan.FromSeconds(3));
        await _f.SetContainerStateAsync(P1, Waiting("CreateContainerError", "criu failed"), image: ImageOf("c1"));
        var written = 0;
        _f.RestoresApi.BeforeCall = (verb, obj) =>
        {
            if (verb == "updateStatus" && obj?.Status?.Phase == RestorePhase.FellBack && written++ == 0)
                throw new KubeUnavailableException("connection refused (fake)");
        };
        await Assert.ThrowsAsync<KubeUnavailableException>(async () => await leader.ReconcileAsync("r1"));
        Assert.Equal(ImageV1, _f.ImageOfPod(P1));
        Assert.Equal(RestorePhase.Restoring, _f.Restore("r1").Status!.Phase);

        var next = await _f.StartLeaderAsync(_options);
        await next.ReconcileAsync("r1");

        Assert.Equal(RestorePhase.FellBack, _f.Restore("r1").Status!.Phase);
        Assert.Equal(ImageV1, _f.ImageOfPod(P1));
        Assert.Equal(2, _f.PodsApi.CallCount("patch")); // the restore and the one cold start
    }

    [Fact]
    public async Task A_status_write_that_meets_another_writer_decides_again_and_keeps_their_fields()
    {
        var leader = await SeedAsync();
        var once = true;
        _f.RestoresApi.BeforeCall = (verb, obj) =>
        {
            // the node's preparer (another writer) gets in first
            if (verb != "updateStatus" || !once || obj?.Status?.Phase != RestorePhase.Restoring) return;
            once = false;
            var stored = _f.RestoresApi.Stored(Ns, "r1")!;
            stored.Status!.SetCondition("NodeNote", ConditionStatus.True, "Seen", "from the node", 1, Now);
            _f.RestoresApi.UpdateStatusAsync(stored, CancellationToken.None).GetAwaiter().GetResult();
        };

        await leader.ReconcileAsync("r1");

        var s = _f.Restore("r1").Status!;
        Assert.False(once);
        Assert.Equal(RestorePhase.Restoring, s.Phase);
        Assert.Equal("c1", s.CheckpointName);
        Assert.Equal("from the node", s.FindCondition("NodeNote")!.Message);
    }

    // ---- terminal and invalid ----

    [Theory]
    [InlineData(RestorePhase.Restored)]
    [InlineData(RestorePhase.Failed)]
    [InlineData(RestorePhase.FellBack)]
    public async Task Terminal_phases_are_never_reconciled_again(RestorePhase phase)
    {
        await _f.CreatePodAsync(P1);
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        await _f.CreateRestoreAsync("r1", failedPod: P1, status: new RestoreStatus
        {
            Phase = phase, Attempts = 1, PodName = P1, Image = ImageOf("c1"), OriginalImage = ImageV1, CheckpointName = "c1",
            PatchedAt = Now.AddMinutes(-1),
        });
        await _f.CreateRestoreAsync("r-bad", failedPod: P1, maxAttempts: 0, status: new RestoreStatus { Phase = phase });
        var leader = await _f.StartLeaderAsync(_options);
        _f.Time.Advance(TimeSpan.FromHours(1));

        Assert.Equal(ReconcileResult.Done, await leader.ReconcileAsync("r1"));
        Assert.Equal(ReconcileResult.Done, await leader.ReconcileAsync("r-bad"));

        Assert.Equal(0, _f.RestoresApi.CallCount("updateStatus"));
        Assert.Equal(0, _f.PodsApi.CallCount("patch"));
        Assert.Equal(0, _f.PodsApi.CallCount("delete"));
        Assert.Empty(_f.Events.Events);
    }

    [Fact]
    public async Task An_invalid_spec_fails_naming_the_field()
    {
        await _f.CreatePodAsync(P1);
        await _f.CreateRestoreAsync("r1", failedPod: P1, maxAttempts: 0);
        await _f.CreateRestoreAsync("r2", failedPod: P1, container: "db");
        var leader = await _f.StartLeaderAsync(_options);

        await leader.ReconcileAsync("r1");
        await leader.ReconcileAsync("r2");

        Assert.Equal(RestorePhase.Failed, _f.Restore("r1").Status!.Phase);
        Assert.Contains("spec.maxAttempts: must be between 1 and 10, is 0", _f.Restore("r1").Status!.Message);
        Assert.Equal(RestorePhase.Failed, _f.Restore("r2").Status!.Phase);
        Assert.Contains($"spec.container: pod {P1} has no container 'db'; it has: app", _f.Restore("r2").Status!.Message);
        Assert.Equal(0, _f.PodsApi.CallCount("patch"));
        Assert.Contains("InvalidSpec", _f.Restore("r1").Status!.FindCondition(ConditionTypes.Ready)!.Reason);
    }

    [Fact]
    public async Task A_Pod_target_is_restored_in_that_pod()
    {
        await _f.CreatePodAsync("solo", replicaSet: null);
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5), workload: null, pod: "solo");
        await _f.CreateRestoreAsync("r1", kind: RestoreTargetKind.Pod, target: "solo", container: null);
        var leader = await _f.StartLeaderAsync(_options);

        await leader.ReconcileAsync("r1");
        await _f.SetImagesReadyAsync("r1", ConditionStatus.True);
        await leader.ReconcileAsync("r1");

        Assert.Equal(ImageOf("c1"), _f.ImageOfPod("solo"));
        // a bare pod has nobody to recreate it: a failed attempt goes to the fallback instead of deleting it
        _f.Time.Advance(TimeSpan.FromSeconds(30));
        await _f.SetContainerStateAsync("solo", Waiting("CreateContainerError", "criu failed"));
        await leader.ReconcileAsync("r1");

        Assert.Equal(RestorePhase.FellBack, _f.Restore("r1").Status!.Phase);
        Assert.Contains("no controller to make a new pod", _f.Restore("r1").Status!.Message);
        Assert.Equal(ImageV1, _f.ImageOfPod("solo"));
        Assert.NotNull(_f.Pod("solo"));
    }

    [Fact]
    public async Task Pod_changes_wake_the_unfinished_Restores_of_the_pod_and_of_its_Deployment_only()
    {
        await _f.CreatePodAsync(P1);
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        await _f.CreateRestoreAsync("r-active", failedPod: P1);
        await _f.CreateRestoreAsync("r-done", failedPod: P1, status: new RestoreStatus { Phase = RestorePhase.Restored });
        await _f.CreateRestoreAsync("r-pod", kind: RestoreTargetKind.Pod, target: P1);
        await _f.CreateRestoreAsync("r-web", target: "web");
        var leader = await _f.StartLeaderAsync(_options);
        await leader.ReconcileAsync("r-active");

        var keys = RestoreReconciler.RestoresOfPod(leader.Restores, _f.Pod(P1)!).Select(k => k.Name).Order().ToList();

        Assert.Equal(["r-active", "r-pod"], keys);
    }
}

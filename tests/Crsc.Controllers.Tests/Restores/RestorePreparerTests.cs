using Crsc.Api.Crds;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Restores;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Tests.NodeAgent;
using static Crsc.Controllers.Tests.Restores.RestoreFixture;

namespace Crsc.Controllers.Tests.Restores;

public sealed class RestorePreparerTests : IAsyncLifetime
{
    private const string P1 = "counter-7d9f8c6b5-abcde";
    private readonly RestoreFixture _f = new();
    private readonly FakeContainerRuntime _runtime = new();

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit 2 runs IAsyncLifetime.DisposeAsync on a test class, never IAsyncDisposable's: cleanup must be here
    public Task DisposeAsync() => _f.DisposeAsync().AsTask();

    private DateTimeOffset Now => _f.Time.GetUtcNow();

    /// <summary>P1 on n1, checkpoint c1, and Restore r1 taken by the leader to Restoring (images chosen).</summary>
    private async Task<Leader> RestoringAsync(string node = "n1")
    {
        await _f.CreatePodAsync(P1, node: node);
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        await _f.CreateRestoreAsync("r1", failedPod: P1);
        var leader = await _f.StartLeaderAsync();
        await leader.ReconcileAsync("r1");
        Assert.Equal(RestorePhase.Restoring, _f.Restore("r1").Status!.Phase);
        return leader;
    }

    [Fact]
    public async Task Pulls_the_missing_image_into_the_pods_sandbox_and_reports_ImagesReady()
    {
        await RestoringAsync();
        _runtime.AddImage(ImageV1); // the base image is there already
        var node = await _f.StartNodeAsync("n1", _runtime);

        Assert.Equal(ReconcileResult.Done, await node.ReconcileAsync("r1"));

        var pull = Assert.Single(_runtime.PullCalls);
        Assert.Equal(ImageOf("c1"), pull.Image);
        var pod = _f.Pod(P1)!;
        Assert.Equal(new PodIdentity(Ns, P1, pod.Metadata.Uid!), pull.Sandbox);
        var ready = _f.Restore("r1").Status!.FindCondition(RestoreConditions.ImagesReady)!;
        Assert.Equal(ConditionStatus.True, ready.Status);
        Assert.Contains($"pulled {ImageOf("c1")}", ready.Message);
        Assert.Contains("ImagesReady", _f.EventReasons("Restore", "r1"));

        // answered: nothing more to do
        await node.ReconcileAsync("r1");
        Assert.Single(_runtime.PullCalls);
    }

    private sealed class TokenFor(string image) : IPullCredentials
    {
        public List<(string Image, string Namespace)> Asked { get; } = [];
        public RegistryAuth? For(string i, string ns)
        {
            Asked.Add((i, ns));
            return i == image ? new RegistryAuth(Username: "crsc-restore", Password: "token-for-" + ns) : null;
        }
    }

    [Fact]
    public async Task The_checkpoint_image_is_pulled_with_the_credential_minted_for_it_and_the_base_image_without()
    {
        await RestoringAsync();
        var credentials = new TokenFor(ImageOf("c1"));
        var node = await _f.StartNodeAsync("n1", _runtime, new RestorePreparerOptions { NodeName = "n1", PullCredentials = credentials });

        Assert.Equal(ReconcileResult.Done, await node.ReconcileAsync("r1"));

        Assert.Equal([(ImageV1, Ns), (ImageOf("c1"), Ns)], credentials.Asked);
        Assert.Equal([(ImageV1, (RegistryAuth?)null), (ImageOf("c1"), new RegistryAuth(Username: "crsc-restore", Password: "token-for-" + Ns))],
            _runtime.PullAuths);
    }

    [Fact]
    public async Task Leader_and_node_together_reach_the_patch()
    {
        var leader = await RestoringAsync();
        var node = await _f.StartNodeAsync("n1", _runtime);

        await node.ReconcileAsync("r1");
        await leader.ReconcileAsync("r1");

        Assert.Equal([ImageV1, ImageOf("c1")], _runtime.PullCalls.Select(p => p.Image));
        Assert.Equal(ImageOf("c1"), _f.ImageOfPod(P1));
        Assert.Equal(1, _f.Restore("r1").Status!.Attempts);
    }

    [Fact]
    public async Task Another_nodes_restores_and_patched_ones_are_not_its_business()
    {
        await RestoringAsync(node: "n2");
        var node = await _f.StartNodeAsync("n1", _runtime);

        await node.ReconcileAsync("r1");

        Assert.Empty(_runtime.PullCalls);
        Assert.Equal(0, _runtime.ImageStatusCalls);
        Assert.Null(_f.Restore("r1").Status!.FindCondition(RestoreConditions.ImagesReady));

        var patched = _f.Restore("r1");
        patched.Status!.PatchedAt = Now;
        await _f.RestoresApi.UpdateStatusAsync(patched, CancellationToken.None);
        var other = await _f.StartNodeAsync("n2", _runtime);
        await other.ReconcileAsync("r1");
        Assert.Empty(_runtime.PullCalls);
    }

    [Fact]
    public async Task A_failing_pull_is_retried_then_reported_False_with_the_runtimes_message()
    {
        var leader = await RestoringAsync();
        _runtime.OnPull = (image, _) => throw new ContainerRuntimeException(ContainerRuntimeErrorKind.NotFound,
            $"pull image {image}: manifest unknown", "NotFound", "manifest unknown");
        var options = new RestorePreparerOptions { NodeName = "n1", MaxPullAttempts = 2, RetryDelay = TimeSpan.FromSeconds(10) };
        var node = await _f.StartNodeAsync("n1", _runtime, options);

        var first = await node.ReconcileAsync("r1");

        Assert.Equal(ReconcileResult.RequeueAfter(options.RetryDelay), first);
        var cond = _f.Restore("r1").Status!.FindCondition(RestoreConditions.ImagesReady)!;
        Assert.Equal((ConditionStatus.Unknown, "Pulling"), (cond.Status, cond.Reason));
        Assert.Contains("(1 of 2)", cond.Message);

        Assert.Equal(ReconcileResult.Done, await node.ReconcileAsync("r1"));
        cond = _f.Restore("r1").Status!.FindCondition(RestoreConditions.ImagesReady)!;
        Assert.Equal((ConditionStatus.False, "PullFailed"), (cond.Status, cond.Reason));
        Assert.Contains("manifest unknown", cond.Message);
        Assert.Contains("ImagePullFailed", _f.EventReasons("Restore", "r1"));

        await leader.ReconcileAsync("r1");
        Assert.Equal(RestorePhase.FellBack, _f.Restore("r1").Status!.Phase);
        Assert.Contains("manifest unknown", _f.Restore("r1").Status!.Message);
        Assert.Equal(ImageV1, _f.ImageOfPod(P1));
    }

    [Fact]
    public async Task A_conflicting_leader_write_is_kept_and_the_condition_added_to_it()
    {
        await RestoringAsync();
        var node = await _f.StartNodeAsync("n1", _runtime);
        var once = true;
        _f.RestoresApi.BeforeCall = (verb, obj) =>
        {
            if (verb != "updateStatus" || !once || obj?.Status?.FindCondition(RestoreConditions.ImagesReady) is null) return;
            once = false;
            // the leader writes between the node's read and its write
            var stored = _f.RestoresApi.Stored(Ns, "r1")!;
            stored.Status!.Message = "written by the leader";
            _f.RestoresApi.UpdateStatusAsync(stored, CancellationToken.None).GetAwaiter().GetResult();
        };

        await node.ReconcileAsync("r1");

        var s = _f.Restore("r1").Status!;
        Assert.False(once);
        Assert.Equal("written by the leader", s.Message);
        Assert.Equal(ConditionStatus.True, s.FindCondition(RestoreConditions.ImagesReady)!.Status);
    }

    [Fact]
    public async Task Does_not_answer_for_a_pod_the_leader_has_moved_away_from()
    {
        await RestoringAsync();
        var node = await _f.StartNodeAsync("n1", _runtime);
        _f.RestoresApi.BeforeCall = (verb, obj) =>
        {
            if (verb != "updateStatus" || obj?.Status?.FindCondition(RestoreConditions.ImagesReady) is null
                || _f.RestoresApi.Stored(Ns, "r1")!.Status!.PodName is null) return;
            // meanwhile the leader saw the pod go and forgot it
            var stored = _f.RestoresApi.Stored(Ns, "r1")!;
            stored.Status!.PodName = null;
            stored.Status.PodUid = null;
            _f.RestoresApi.UpdateStatusAsync(stored, CancellationToken.None).GetAwaiter().GetResult();
        };

        await node.ReconcileAsync("r1");

        Assert.Null(_f.Restore("r1").Status!.FindCondition(RestoreConditions.ImagesReady));
    }

    // ---- the container the patch replaced is stopped at once ----

    /// <summary>
    /// Restoring, with the cold-started instance the kubelet runs in P1 (a container in the runtime, reported in the pod's
    /// status); the node reports the images and the leader patches P1 to the checkpoint image (recording that instance).
    /// </summary>
    private async Task<string> PatchedWithColdInstanceAsync(string? podUid = null, string image = ImageV1, string container = Container)
    {
        var leader = await RestoringAsync();
        var pod = _f.Pod(P1)!;
        var cold = _runtime.AddContainer(Ns, P1, container, podUid: podUid ?? pod.Metadata.Uid, image: image);
        pod.Status!.ContainerStatuses![0].ContainerID = "containerd://" + cold.Id;
        await _f.PodsApi.UpdateStatusAsync(pod, CancellationToken.None);
        await _f.SetImagesReadyAsync("r1", ConditionStatus.True);
        await leader.ReconcileAsync("r1");
        Assert.Equal(ImageOf("c1"), _f.ImageOfPod(P1));
        return cold.Id;
    }

    [Fact]
    public async Task After_the_patch_the_replaced_instance_is_stopped_at_once_and_only_once()
    {
        var id = await PatchedWithColdInstanceAsync();
        var node = await _f.StartNodeAsync("n1", _runtime);

        await node.ReconcileAsync("r1");
        await node.ReconcileAsync("r1");

        Assert.Equal([(id, TimeSpan.Zero)], _runtime.StopCalls);
        Assert.Contains("StoppedReplacedContainer", _f.EventReasons("Pod", P1));
    }

    [Theory]
    [InlineData("another pod's container")]
    [InlineData("another container of the pod")]
    [InlineData("the checkpoint image")]
    [InlineData("an image that is not the original")]
    public async Task A_container_that_is_not_exactly_the_replaced_instance_is_never_stopped(string which)
    {
        await PatchedWithColdInstanceAsync(
            podUid: which == "another pod's container" ? "uid-of-another-pod" : null,
            container: which == "another container of the pod" ? "sidecar" : Container,
            image: which switch
            {
                "the checkpoint image" => ImageOf("c1"),
                "an image that is not the original" => "registry.local/counter:0",
                _ => ImageV1,
            });
        var node = await _f.StartNodeAsync("n1", _runtime);

        await node.ReconcileAsync("r1");

        Assert.Empty(_runtime.StopCalls);
    }

    [Fact]
    public async Task Nothing_is_stopped_before_the_API_server_took_the_patch()
    {
        await RestoringAsync();
        var pod = _f.Pod(P1)!;
        var cold = _runtime.AddContainer(Ns, P1, Container, podUid: pod.Metadata.Uid, image: ImageV1);
        pod.Status!.ContainerStatuses![0].ContainerID = "containerd://" + cold.Id;
        await _f.PodsApi.UpdateStatusAsync(pod, CancellationToken.None);
        // the leader counted the attempt (status first) but its patch has not reached the pod
        var r = _f.Restore("r1");
        r.Status!.Attempts = 1;
        r.Status.PatchedAt = Now;
        await _f.RestoresApi.UpdateStatusAsync(r, CancellationToken.None);
        var node = await _f.StartNodeAsync("n1", _runtime);

        await node.ReconcileAsync("r1");

        Assert.Empty(_runtime.StopCalls);
        Assert.Equal(Crsc.Controllers.Runtime.ContainerState.Running, (await _runtime.ContainerStatusAsync(cold.Id, false, CancellationToken.None)).State);
    }

    [Fact]
    public async Task Another_nodes_agent_stops_nothing_and_an_instance_already_gone_is_no_error()
    {
        var id = await PatchedWithColdInstanceAsync();
        var other = await _f.StartNodeAsync("n2", _runtime);
        await other.ReconcileAsync("r1");
        Assert.Empty(_runtime.StopCalls);

        await _runtime.StopContainerAsync(id, TimeSpan.FromSeconds(30), CancellationToken.None); // the kubelet was first
        var node = await _f.StartNodeAsync("n1", _runtime);
        Assert.Equal(ReconcileResult.Done, await node.ReconcileAsync("r1"));
        Assert.Single(_runtime.StopCalls); // the kubelet's, not another
    }

    private sealed class ProbeAsks : IRuntimeProbeTrigger
    {
        public List<string> Asked { get; } = [];
        public void ProbeNow(string why) => Asked.Add(why);
    }

    [Theory]
    [InlineData("n1", RestoreReconciler.RefusedByRuntime, 1)]
    [InlineData("n2", RestoreReconciler.RefusedByRuntime, 0)] // another node's runtime refused
    [InlineData("n1", "DisabledByConfig", 0)] // the probe had said so already
    public async Task A_runtime_that_refused_a_restore_is_probed_again_on_its_node_once(string restoreNode, string reason, int asks)
    {
        await _f.CreateRestoreAsync("r1", failedPod: P1, status: new RestoreStatus { Phase = RestorePhase.FellBack, Node = restoreNode, PodName = P1 });
        var r = _f.Restore("r1");
        r.Status!.SetCondition(RestoreConditions.RuntimeCannotRestore, ConditionStatus.True, reason, "refused", 1, Now);
        await _f.RestoresApi.UpdateStatusAsync(r, CancellationToken.None);
        var probe = new ProbeAsks();
        var node = await _f.StartNodeAsync("n1", _runtime, new RestorePreparerOptions { NodeName = "n1", RuntimeProbe = probe });

        await node.ReconcileAsync("r1");
        await node.ReconcileAsync("r1");

        Assert.Equal(asks, probe.Asked.Count);
        Assert.All(probe.Asked, a => Assert.Contains("refused Restore shop/r1", a));
    }

    private sealed class TrafficLog : Crsc.Controllers.NodeAgent.IPodTrafficHold
    {
        public List<string> Log { get; } = [];
        /// <summary>Also records the replay log's steps.</summary>
        public bool RecordLogSteps { get; init; }
        /// <summary>What a replay answers (null: the pod's interceptor keeps no replay log).</summary>
        public Crsc.Controllers.NodeAgent.ReplayOutcome? Replay { get; init; }
        /// <summary>False: the pod has no interceptor (nothing held).</summary>
        public bool HasInterceptor { get; init; } = true;

        public Task<Crsc.Controllers.NodeAgent.IHeldTraffic?> HoldAsync(string ns, string pod, string podUid, string reason, CancellationToken ct)
        {
            Log.Add($"hold {ns}/{pod}: {reason}");
            return Task.FromResult<Crsc.Controllers.NodeAgent.IHeldTraffic?>(HasInterceptor ? new Releaser(this) : null);
        }

        private sealed class Releaser(TrafficLog owner) : Crsc.Controllers.NodeAgent.IHeldTraffic
        {
            public ValueTask DisposeAsync()
            {
                owner.Log.Add("release");
                return ValueTask.CompletedTask;
            }

            public Task CheckpointCommittedAsync(CancellationToken ct)
            {
                if (owner.RecordLogSteps) owner.Log.Add("checkpoint committed");
                return Task.CompletedTask;
            }

            public Task<Crsc.Controllers.NodeAgent.ReplayOutcome?> ReplayAsync(CancellationToken ct)
            {
                if (owner.RecordLogSteps) owner.Log.Add("replay");
                return Task.FromResult(owner.Replay);
            }
        }
    }

    [Theory]
    [InlineData(RestorePhase.Restored, true)]
    [InlineData(RestorePhase.FellBack, false)]
    [InlineData(RestorePhase.Failed, false)]
    public async Task A_restored_app_gets_the_replay_before_the_release_and_another_outcome_none(RestorePhase phase, bool replayed)
    {
        await PatchedWithColdInstanceAsync();
        var traffic = new TrafficLog { RecordLogSteps = true };
        var node = await _f.StartNodeAsync("n1", _runtime, new RestorePreparerOptions { NodeName = "n1", TrafficHold = traffic });
        await node.ReconcileAsync("r1");

        var r = _f.Restore("r1");
        r.Status!.Phase = phase;
        await _f.RestoresApi.UpdateStatusAsync(r, CancellationToken.None);
        await node.ReconcileAsync("r1");

        var hold = $"hold {Ns}/{P1}: restore of {RestoreFixture.Container} from checkpoint c1";
        Assert.Equal(replayed ? [hold, "replay", "release"] : [hold, "release"], traffic.Log);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task The_hold_and_the_replay_are_Events_on_the_pod(bool replaySucceeds)
    {
        await PatchedWithColdInstanceAsync();
        var traffic = new TrafficLog
        {
            Replay = replaySucceeds ? new(true, 3) : new(false, 0, "entry 2 of 3 (POST /orders to 127.0.0.1:18080): the app answered 500"),
        };
        var node = await _f.StartNodeAsync("n1", _runtime, new RestorePreparerOptions { NodeName = "n1", TrafficHold = traffic });
        await node.ReconcileAsync("r1");
        await node.ReconcileAsync("r1"); // asked once per attempt: one Event

        var held = Assert.Single(_f.Events.Events, e => e.Reason == RestorePreparer.TrafficHeld);
        Assert.Equal(("Pod", P1, Crsc.Api.Kubernetes.CoreEvent.Normal), (held.Kind, held.Name, held.Type));
        Assert.Contains($"restore of {RestoreFixture.Container} from checkpoint c1", held.Message);

        var r = _f.Restore("r1");
        r.Status!.Phase = RestorePhase.Restored;
        await _f.RestoresApi.UpdateStatusAsync(r, CancellationToken.None);
        await node.ReconcileAsync("r1");

        if (replaySucceeds)
        {
            var replayed = Assert.Single(_f.Events.Events, e => e.Reason == RestorePreparer.TrafficReplayed);
            Assert.Equal(("Pod", P1, Crsc.Api.Kubernetes.CoreEvent.Normal), (replayed.Kind, replayed.Name, replayed.Type));
            Assert.Contains("replayed 3 request(s)", replayed.Message);
            Assert.DoesNotContain(_f.Events.Events, e => e.Reason == RestorePreparer.ReplayFailed);
        }
        else
        {
            var failed = Assert.Single(_f.Events.Events, e => e.Reason == RestorePreparer.ReplayFailed);
            Assert.Equal(("Pod", P1, Crsc.Api.Kubernetes.CoreEvent.Warning), (failed.Kind, failed.Name, failed.Type));
            Assert.Contains("the app answered 500", failed.Message);
            Assert.DoesNotContain(_f.Events.Events, e => e.Reason == RestorePreparer.TrafficReplayed);
        }
    }

    [Fact]
    public async Task No_Event_for_a_pod_without_an_interceptor()
    {
        await PatchedWithColdInstanceAsync();
        var traffic = new TrafficLog { HasInterceptor = false };
        var node = await _f.StartNodeAsync("n1", _runtime, new RestorePreparerOptions { NodeName = "n1", TrafficHold = traffic });
        await node.ReconcileAsync("r1");

        Assert.Single(traffic.Log); // asked
        Assert.DoesNotContain(_f.Events.Events, e => e.Reason == RestorePreparer.TrafficHeld);
    }

    [Fact]
    public async Task No_replay_Event_without_a_replay_log()
    {
        await PatchedWithColdInstanceAsync();
        var traffic = new TrafficLog(); // Replay null: the interceptor keeps no replay log
        var node = await _f.StartNodeAsync("n1", _runtime, new RestorePreparerOptions { NodeName = "n1", TrafficHold = traffic });
        await node.ReconcileAsync("r1");
        var r = _f.Restore("r1");
        r.Status!.Phase = RestorePhase.Restored;
        await _f.RestoresApi.UpdateStatusAsync(r, CancellationToken.None);
        await node.ReconcileAsync("r1");

        Assert.Contains(_f.Events.Events, e => e.Reason == RestorePreparer.TrafficHeld);
        Assert.DoesNotContain(_f.Events.Events, e => e.Reason is RestorePreparer.TrafficReplayed or RestorePreparer.ReplayFailed);
    }

    [Fact]
    public async Task The_pods_traffic_is_held_from_the_accepted_patch_until_the_Restore_is_done()
    {
        await PatchedWithColdInstanceAsync();
        var traffic = new TrafficLog();
        var node = await _f.StartNodeAsync("n1", _runtime, new RestorePreparerOptions { NodeName = "n1", TrafficHold = traffic });

        await node.ReconcileAsync("r1");
        await node.ReconcileAsync("r1"); // once per attempt
        Assert.Equal([$"hold {Ns}/{P1}: restore of {RestoreFixture.Container} from checkpoint c1"], traffic.Log);

        // the leader finds the restored container running: Restored
        var r = _f.Restore("r1");
        r.Status!.Phase = RestorePhase.Restored;
        await _f.RestoresApi.UpdateStatusAsync(r, CancellationToken.None);
        await node.ReconcileAsync("r1");

        Assert.Equal([$"hold {Ns}/{P1}: restore of {RestoreFixture.Container} from checkpoint c1", "release"], traffic.Log);
    }

    [Fact]
    public async Task No_traffic_is_held_before_the_API_server_took_the_patch()
    {
        await RestoringAsync();
        var r = _f.Restore("r1");
        r.Status!.Attempts = 1;
        r.Status.PatchedAt = Now;
        await _f.RestoresApi.UpdateStatusAsync(r, CancellationToken.None);
        var traffic = new TrafficLog();
        var node = await _f.StartNodeAsync("n1", _runtime, new RestorePreparerOptions { NodeName = "n1", TrafficHold = traffic });

        await node.ReconcileAsync("r1");

        Assert.Empty(traffic.Log);
    }
}

using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Restores;
using Crsc.Controllers.Storage;
using Crsc.Controllers.Tests.NodeAgent;
using static Crsc.Controllers.Tests.Restores.RestoreFixture;

namespace Crsc.Controllers.Tests.Restores;

/// <summary>
/// Before pulling, the node checks a checkpoint image of its own store: its manifest MAC must verify with the node's key
/// and it must be of the Restore's namespace and workload; otherwise ImagesReady=False names the failed check.
/// </summary>
public sealed class RestorePreparerArchiveTests : IAsyncLifetime
{
    private const string P1 = "counter-7d9f8c6b5-abcde";
    private readonly RestoreFixture _f = new();
    private readonly FakeContainerRuntime _runtime = new();
    private readonly LocalCheckpoints _local = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _f.DisposeAsync().AsTask();

    /// <summary>This node's store as the preparer sees it: checkpoints by image reference.</summary>
    private sealed class LocalCheckpoints : ICheckpointImageLookup
    {
        public Dictionary<string, CheckpointInfo> ByImage { get; } = new(StringComparer.Ordinal);
        public List<string> Asked { get; } = [];

        public CheckpointInfo? FindByImage(string imageReference)
        {
            Asked.Add(imageReference);
            return ByImage.GetValueOrDefault(imageReference);
        }
    }

    private static CheckpointInfo Checkpoint(CheckpointAuthenticity authenticity, string ns = Ns, string workload = Deployment) => new()
    {
        FormatVersion = 1, Id = "20260101T000000Z-0a1b2c3d", Namespace = ns, Workload = workload, Container = Container,
        Archive = new ArchiveFacts(), Compression = CheckpointCompression.Zstd, Digest = "sha256:" + new string('1', 64), Size = 1,
        UncompressedDigest = "sha256:" + new string('2', 64), UncompressedSize = 1, CreatedAt = DateTimeOffset.UnixEpoch,
        CrscVersion = "test", ArchivePath = "/var/lib/crsc/checkpoints/x.tar.zst", Authenticity = authenticity,
        MacKeyId = authenticity == CheckpointAuthenticity.Unsigned ? null : "0123456789abcdef",
    };

    /// <summary>P1 on n1, checkpoint c1 (its image one of n1's store: <paramref name="local"/>), and r1 taken to Restoring.</summary>
    private async Task<(Leader Leader, RestoreFixture.Node Node)> RestoringAsync(CheckpointInfo? local, RestoreTargetKind kind = RestoreTargetKind.Deployment,
        string target = Deployment, bool allowUnauthenticated = false, string? restoreFrom = null)
    {
        await _f.CreatePodAsync(P1);
        if (restoreFrom is not null)
        {
            var pod = _f.Pod(P1)!;
            (pod.Metadata.Annotations ??= [])[Annotations.RestoreFrom] = restoreFrom;
            await _f.PodsApi.SeedAsync(pod);
        }
        await _f.CreateCheckpointAsync("c1", _f.Time.GetUtcNow().AddMinutes(-5));
        var r = await _f.CreateRestoreAsync("r1", kind: kind, target: target, failedPod: P1);
        if (allowUnauthenticated)
        {
            r.Metadata.Annotations![Annotations.AllowUnauthenticated] = "true";
            await _f.RestoresApi.UpdateAsync(r, CancellationToken.None);
        }
        var leader = await _f.StartLeaderAsync();
        await leader.ReconcileAsync("r1");
        Assert.Equal(RestorePhase.Restoring, _f.Restore("r1").Status!.Phase);
        if (local is not null) _local.ByImage[ImageOf("c1")] = local;
        _runtime.AddImage(ImageV1);
        var node = await _f.StartNodeAsync("n1", _runtime, new RestorePreparerOptions { NodeName = "n1", LocalCheckpoints = _local });
        return (leader, node);
    }

    private Condition ImagesReady() => _f.Restore("r1").Status!.FindCondition(RestoreConditions.ImagesReady)!;

    [Theory]
    [InlineData(CheckpointAuthenticity.Unsigned, "carries no MAC")]
    [InlineData(CheckpointAuthenticity.Invalid, "invalid MAC")]
    [InlineData(CheckpointAuthenticity.OtherKey, "signed by key id 0123456789abcdef")]
    public async Task An_archive_the_node_key_does_not_vouch_for_is_refused_before_any_pull(CheckpointAuthenticity authenticity, string check)
    {
        var (leader, node) = await RestoringAsync(Checkpoint(authenticity));

        Assert.Equal(ReconcileResult.Done, await node.ReconcileAsync("r1"));

        Assert.Empty(_runtime.PullCalls);
        Assert.Equal([ImageOf("c1")], _local.Asked);
        var cond = ImagesReady();
        Assert.Equal((ConditionStatus.False, "ArchiveNotAuthentic"), (cond.Status, cond.Reason));
        Assert.Contains(check, cond.Message);
        Assert.Contains(ImageOf("c1"), cond.Message);
        Assert.Contains("ArchiveNotAuthentic", _f.EventReasons("Restore", "r1"));

        // the leader falls back, saying why
        await leader.ReconcileAsync("r1");
        Assert.Equal(RestorePhase.FellBack, _f.Restore("r1").Status!.Phase);
        Assert.Contains(check, _f.Restore("r1").Status!.Message);
    }

    [Fact]
    public async Task A_checkpoint_of_another_workload_is_refused_even_when_authentic()
    {
        var (_, node) = await RestoringAsync(Checkpoint(CheckpointAuthenticity.Verified, workload: "payments"));

        Assert.Equal(ReconcileResult.Done, await node.ReconcileAsync("r1"));

        Assert.Empty(_runtime.PullCalls);
        var cond = ImagesReady();
        Assert.Equal((ConditionStatus.False, "CheckpointOfAnotherWorkload"), (cond.Status, cond.Reason));
        Assert.Contains($"of {Ns}/payments, not of {Ns}/{Deployment}", cond.Message);
    }

    [Theory]
    [InlineData("c1", Ns, true)]          // the pod asked for this checkpoint itself: another workload's, same namespace
    [InlineData("c1", "billing", false)]  // ... never another namespace's
    [InlineData("c0", Ns, false)]         // a pod that names another checkpoint asked for nothing of this one
    public async Task A_pod_that_names_the_checkpoint_in_its_restore_from_may_take_another_workloads_of_its_namespace(
        string named, string checkpointNamespace, bool accepted)
    {
        var (_, node) = await RestoringAsync(Checkpoint(CheckpointAuthenticity.Verified, ns: checkpointNamespace, workload: "payments"),
            RestoreTargetKind.Pod, P1, restoreFrom: named);

        await node.ReconcileAsync("r1");

        if (accepted)
        {
            Assert.Equal(ConditionStatus.True, ImagesReady().Status);
            Assert.NotEmpty(_runtime.PullCalls);
        }
        else
        {
            Assert.Equal("CheckpointOfAnotherWorkload", ImagesReady().Reason);
            Assert.Empty(_runtime.PullCalls);
        }
    }

    [Fact]
    public async Task A_checkpoint_of_another_namespace_is_refused()
    {
        var (_, node) = await RestoringAsync(Checkpoint(CheckpointAuthenticity.Verified, ns: "billing"));

        await node.ReconcileAsync("r1");

        Assert.Equal("CheckpointOfAnotherWorkload", ImagesReady().Reason);
        Assert.Contains($"of billing/{Deployment}, not of {Ns}/{Deployment}", ImagesReady().Message);
    }

    [Fact]
    public async Task For_a_pod_target_the_checkpoint_must_be_of_the_workload_the_pod_belongs_to()
    {
        var (_, node) = await RestoringAsync(Checkpoint(CheckpointAuthenticity.Verified, workload: P1), RestoreTargetKind.Pod, P1);

        await node.ReconcileAsync("r1");

        // the node agent files a Deployment's pod's checkpoints under the Deployment, never under the pod's name
        Assert.Equal("CheckpointOfAnotherWorkload", ImagesReady().Reason);
        Assert.Contains($"not of {Ns}/{Deployment}, the Restore's target (Pod {P1})", ImagesReady().Message);
        Assert.Empty(_runtime.PullCalls);
    }

    [Fact]
    public async Task An_authentic_checkpoint_of_the_target_and_an_image_of_no_local_checkpoint_are_pulled()
    {
        var (_, node) = await RestoringAsync(Checkpoint(CheckpointAuthenticity.Verified), RestoreTargetKind.Pod, P1);

        await node.ReconcileAsync("r1");

        Assert.Equal((ConditionStatus.True, "Pulled"), (ImagesReady().Status, ImagesReady().Reason));
        Assert.Equal([ImageOf("c1")], _runtime.PullCalls.Select(c => c.Image));
    }

    [Fact]
    public async Task The_annotation_lets_an_unsigned_archive_through_with_a_warning()
    {
        var (_, node) = await RestoringAsync(Checkpoint(CheckpointAuthenticity.Unsigned), allowUnauthenticated: true);

        await node.ReconcileAsync("r1");

        Assert.Equal(ConditionStatus.True, ImagesReady().Status);
        Assert.Single(_runtime.PullCalls);
        Assert.Contains("UnauthenticatedArchive", _f.EventReasons("Restore", "r1"));
    }

    [Fact]
    public async Task The_annotation_does_not_let_a_wrong_mac_through()
    {
        var (_, node) = await RestoringAsync(Checkpoint(CheckpointAuthenticity.Invalid), allowUnauthenticated: true);

        await node.ReconcileAsync("r1");

        Assert.Equal((ConditionStatus.False, "ArchiveNotAuthentic"), (ImagesReady().Status, ImagesReady().Reason));
        Assert.Empty(_runtime.PullCalls);
    }
}

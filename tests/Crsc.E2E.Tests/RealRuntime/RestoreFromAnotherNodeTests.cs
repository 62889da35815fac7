using Crsc.Api.Crds;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Testing.Scenarios;
using Xunit;
using Xunit.Abstractions;

namespace Crsc.E2E.Tests.RealRuntime;

/// <summary>
/// Issue 19, "a pod annotated crsc.io/restore-from on another node comes back with the memory of the checkpoint", on the
/// sandbox's real containerd + runc + CRIU with two published AOT daemons, one per node (each its own store and image
/// endpoint): the checkpoint is taken on one node, fetched by the other node's agent from the first node's endpoint
/// (authenticated, digest and MAC checked), and the pod there is restored from the copy in its own node's store.
/// </summary>
[Collection(RealRuntimeCollection.Name)]
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed class RestoreFromAnotherNodeTests(RealRuntimeFixture sandbox, ITestOutputHelper output)
{
    [RealComponentsFact]
    public async Task A_pod_annotated_restore_from_on_another_node_continues_the_checkpointed_process()
    {
        var work = sandbox.CreateSharedDirectory("restore-from-");
        var scenario = new CheckpointRestoreScenario(sandbox.ScenarioOptions(work) with { NodeName = "node-a", Interval = "10s" },
            line => output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f} {line}"));

        var result = await scenario.RunRestoreFromAsync("node-b", sandbox.CheckpointImagesAddress, CancellationToken.None);

        Assert.Equal("node-a", result.SourceNode);
        Assert.Equal(RestorePhase.Restored, result.RestorePhase);
        // restored from node-b's own copy (its endpoint), which its agent recorded on the Content
        Assert.StartsWith(sandbox.CheckpointImagesAddress + "/", result.RestoredImage);
        var copy = Assert.Single(result.Copies);
        Assert.Equal(CheckpointCopyKind.Node, copy.Kind);
        Assert.Equal("node-b", copy.Node);
        Assert.Equal(result.RestoredImage, copy.ImageReference);
        Assert.StartsWith("True RestoreRequested", result.Condition);
        // the checkpointed process itself, counting on from where the checkpoint took it
        Assert.True(result.SameProcess, "the target pod runs the checkpointed process");
        Assert.InRange(result.FirstCounterOnTarget, 1, result.CounterAtCheckpointEnd + 60);
    }
}

using Crsc.Api.Crds;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Testing.Scenarios;
using Xunit;
using Xunit.Abstractions;

namespace Crsc.E2E.Tests.RealRuntime;

/// <summary>
/// Issue 18, "a drained node's pods come back with their memory", on the sandbox's real containerd + runc + CRIU with
/// the published AOT daemon: a cordon makes crsc checkpoint the managed container at once (reason NodeDrain), before
/// the pod is evicted; the replacement pod the node gets once it is back is restored from that checkpoint, and its
/// counter goes on from where the drain took it.
/// </summary>
[Collection(RealRuntimeCollection.Name)]
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed class NodeDrainRestoreTests(RealRuntimeFixture sandbox, ITestOutputHelper output)
{
    [RealComponentsFact]
    public async Task A_drained_nodes_pod_comes_back_in_its_replacement_with_its_memory()
    {
        var work = sandbox.CreateSharedDirectory("drain-");
        // no scheduled checkpoint before the end: the only one is the drain's
        var scenario = new CheckpointRestoreScenario(sandbox.ScenarioOptions(work) with { Interval = "1h" },
            line => output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f} {line}"));

        var result = await scenario.RunDrainAsync(CancellationToken.None);

        Assert.Equal("NodeDrain", result.CheckpointReason);
        Assert.Contains("-away-", result.CheckpointName, StringComparison.Ordinal);
        Assert.True(result.CheckpointCompletedBeforeEviction, "the drain checkpoint completed before the pod was evicted");
        Assert.NotEqual(result.EvictedPodUid, result.ReplacementPodUid);
        Assert.Equal(RestorePhase.Restored, result.RestorePhase);
        // the evicted pod's process, with its counter where the drain took it (and at most a few seconds past it)
        Assert.True(result.RestoredIncarnationIsTheEvictedOne, "the replacement pod runs the evicted pod's process");
        Assert.InRange(result.FirstCounterAfterRestore, result.CounterAtCordon, result.CounterAtCheckpointDone + 30);
    }

    /// <summary>
    /// Issue 19's drain integration: the drained node stays cordoned and its pod's replacement is scheduled to another
    /// node; that node's agent, asked through crsc.io/restore-from, fetches the drain checkpoint from the drained node's
    /// endpoint and restores it from its own copy.
    /// </summary>
    [RealComponentsFact]
    public async Task A_drained_nodes_pod_comes_back_with_its_memory_on_the_node_the_scheduler_picks()
    {
        var work = sandbox.CreateSharedDirectory("drain-away-");
        var scenario = new CheckpointRestoreScenario(sandbox.ScenarioOptions(work) with { NodeName = "node-a", Interval = "1h" },
            line => output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f} {line}"));

        var result = await scenario.RunDrainAsync(CancellationToken.None, "node-b", sandbox.CheckpointImagesAddress);

        Assert.Equal("NodeDrain", result.CheckpointReason);
        Assert.True(result.CheckpointCompletedBeforeEviction, "the drain checkpoint completed before the pod was evicted");
        Assert.Equal("node-b", result.ReplacementNode);
        Assert.Equal(RestorePhase.Restored, result.RestorePhase);
        // from node-b's own copy (its endpoint), fetched from node-a
        Assert.StartsWith(sandbox.CheckpointImagesAddress + "/", result.RestoredImage);
        Assert.True(result.RestoredIncarnationIsTheEvictedOne, "the replacement pod runs the evicted pod's process");
        Assert.InRange(result.FirstCounterAfterRestore, result.CounterAtCordon, result.CounterAtCheckpointDone + 30);
    }
}

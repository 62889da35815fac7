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
}

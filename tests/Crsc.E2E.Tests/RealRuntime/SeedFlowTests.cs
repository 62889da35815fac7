using Crsc.Api.Crds;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Testing.Scenarios;
using Xunit;
using Xunit.Abstractions;

namespace Crsc.E2E.Tests.RealRuntime;

/// <summary>
/// Issue 7, "Done when": the seed flow end to end on the real containerd + runc + CRIU of the sandbox, with the
/// published AOT daemon, an API server (the in-process fake) and the kubelet's part played over CRI
/// (<see cref="Crsc.Testing.Kubelet.SandboxKubelet"/>) — the same scenario <c>make demo</c> narrates. An annotated
/// Deployment gets its schedule and a Completed checkpoint with a published image; a killed container turns into a
/// Restore that brings the same pod's container back from the checkpoint image with its memory.
/// </summary>
[Collection(RealRuntimeCollection.Name)]
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed class SeedFlowTests(RealRuntimeFixture sandbox, ITestOutputHelper output)
{
    [RealComponentsFact]
    public async Task A_killed_container_of_an_annotated_Deployment_comes_back_in_the_same_pod_with_its_memory()
    {
        var work = sandbox.CreateSharedDirectory("seed-flow-");
        var scenario = new CheckpointRestoreScenario(sandbox.ScenarioOptions(work), line => output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f} {line}"));

        var result = await scenario.RunAsync(CancellationToken.None);

        Assert.Equal(RestorePhase.Restored, result.RestorePhase);
        // the container was really replaced (killed, then created again by the kubelet from the checkpoint image) ...
        Assert.NotEqual(result.ContainerIdBefore, result.ContainerIdAfter);
        Assert.NotEqual("", result.ContainerIdAfter);
        // ... and if the kubelet cold-started it first, that lost the state
        if (result.CounterAfterColdStart >= 0)
            Assert.True(result.CounterAfterColdStart < result.CounterAtCheckpointStart,
                $"cold start at {result.CounterAfterColdStart}, checkpoint at {result.CounterAtCheckpointStart}");
        // the restore brought the first incarnation back (the scenario waits for its start time in the file), with
        // its counter where the checkpoint took it: not from zero, and at most a few seconds of counting past it
        Assert.InRange(result.FirstCounterAfterRestore, result.CounterAtCheckpointStart, result.CounterAtCheckpointEnd + 30);
        Assert.Equal(result.PodUidBefore, result.PodUidAfter);
        Assert.Contains("@sha256:", result.CheckpointImage);
    }
}

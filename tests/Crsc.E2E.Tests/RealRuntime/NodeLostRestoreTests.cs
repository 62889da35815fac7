using Crsc.Api.Crds;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Testing.Scenarios;
using Xunit;
using Xunit.Abstractions;

namespace Crsc.E2E.Tests.RealRuntime;

/// <summary>
/// Issue 19, "a lost node's workloads restore elsewhere from their replicas", on the sandbox's real containerd + runc +
/// CRIU, its loopback registry and two published AOT daemons: the Deployment's checkpoints are copied to the registry
/// (crsc.io/checkpoint-replicate: registry); node-a is lost (its crsc killed, its Node and pod deleted); the leader
/// annotates the ReplicaSet's replacement on node-b crsc.io/restore-from with the lost pod's checkpoint, node-b's agent
/// fetches it from the registry copy (node-a cannot serve it) and the replacement continues the lost process.
/// </summary>
[Collection(RealRuntimeCollection.Name)]
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed class NodeLostRestoreTests(RealRuntimeFixture sandbox, ITestOutputHelper output)
{
    [RealComponentsFact]
    public async Task The_replacement_of_a_pod_of_a_lost_node_continues_its_process_from_the_registry_copy()
    {
        var work = sandbox.CreateSharedDirectory("node-lost-");
        var scenario = new CheckpointRestoreScenario(sandbox.ScenarioOptions(work) with { NodeName = "node-a", Interval = "10s" },
            line => output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f} {line}"));

        var result = await scenario.RunNodeLostAsync("node-b", sandbox.CheckpointImagesAddress, sandbox.RegistryAddress, CancellationToken.None);

        Assert.StartsWith(sandbox.RegistryAddress + "/", result.RegistryCopy);
        // the leader asked for the lost pod's checkpoint on the replacement, and node-b got it from the registry copy
        Assert.Equal(result.CheckpointName, result.AskedFor);
        Assert.NotNull(result.Fetched);
        Assert.Contains("from the registry copy " + sandbox.RegistryAddress + "/", result.Fetched);
        Assert.Equal(RestorePhase.Restored, result.RestorePhase);
        Assert.StartsWith(sandbox.CheckpointImagesAddress + "/", result.RestoredImage); // node-b's own copy
        Assert.StartsWith("True RestoreRequested", result.Condition);
        Assert.True(result.SameProcess, "the replacement runs the lost pod's checkpointed process");
        Assert.InRange(result.FirstCounterAfter, 1, result.CounterAtCheckpointEnd + 120);
    }
}

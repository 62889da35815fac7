using Crsc.Api.Crds;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Testing.Scenarios;
using Xunit;
using Xunit.Abstractions;

namespace Crsc.E2E.Tests.RealRuntime;

/// <summary>
/// Issue 19, "crsc migrate moves a Deployment's pod to a named node with its memory and reports its downtime", on the
/// sandbox's real containerd + runc + CRIU with two published AOT daemons and the published CLI.
/// </summary>
[Collection(RealRuntimeCollection.Name)]
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed class MigrateTests(RealRuntimeFixture sandbox, ITestOutputHelper output)
{
    [RealComponentsFact]
    public async Task Crsc_migrate_moves_a_Deployments_pod_to_the_named_node_with_its_memory_and_reports_the_downtime()
    {
        var work = sandbox.CreateSharedDirectory("migrate-");
        var scenario = new CheckpointRestoreScenario(sandbox.ScenarioOptions(work) with { NodeName = "node-a", Interval = "1h" },
            line => output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f} {line}"));

        var result = await scenario.RunMigrateAsync("node-b", sandbox.CheckpointImagesAddress, CancellationToken.None);

        Assert.True(result.ExitCode == 0, $"crsc migrate exited {result.ExitCode}:\n{result.Stdout}\n{result.Stderr}");
        Assert.Equal(RestorePhase.Restored, result.Phase);
        Assert.Equal("node-b", result.ReplacementNode);
        Assert.True(result.PinnedOnPodOnly, "the replacement is pinned to node-b by its own affinity; the template is left alone");
        Assert.NotNull(result.Downtime);
        Assert.Contains("downtime: " + result.Downtime, result.Stdout);
        Assert.True(result.SameProcess, "the replacement runs the migrated process");
        Assert.True(result.FirstCounterAfter >= result.CounterBeforeMigrate,
            $"counter {result.CounterBeforeMigrate} before the migration, {result.FirstCounterAfter} after");
    }
}

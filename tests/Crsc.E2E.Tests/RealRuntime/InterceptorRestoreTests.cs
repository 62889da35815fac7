using Crsc.Api.Crds;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Testing.Scenarios;
using Xunit;
using Xunit.Abstractions;

namespace Crsc.E2E.Tests.RealRuntime;

/// <summary>
/// Issue 17, "Done when": through a real kill and an in-place restore on the sandbox's containerd + runc + CRIU, a client
/// under load through <c>crsc interceptor</c> sees no failed request, and the app's state (a count of POSTs kept in the
/// container's filesystem, which the checkpoint saves and the restore brings back) includes every acknowledged POST:
/// the ones since the checkpoint are replayed to the restored process before the held traffic goes on.
/// </summary>
[Collection(RealRuntimeCollection.Name)]
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed class InterceptorRestoreTests(RealRuntimeFixture sandbox, ITestOutputHelper output)
{
    [RealComponentsFact]
    public async Task Under_load_through_a_kill_and_an_in_place_restore_no_request_fails_and_every_acknowledged_POST_counts()
    {
        var work = sandbox.CreateSharedDirectory("interceptor-restore-");
        var scenario = new CheckpointRestoreScenario(sandbox.ScenarioOptions(work) with { Interval = "10s" }, line => output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f} {line}"));

        var result = await scenario.RunInterceptorAsync(requestsPerSecond: 100, CancellationToken.None);

        Assert.Equal(RestorePhase.Restored, result.RestorePhase);
        Assert.True(result.Sent >= 500, $"only {result.Sent} requests were sent");
        Assert.True(result.Failed == 0, $"{result.Failed} of {result.Sent} requests failed:\n{string.Join('\n', result.Failures)}");
        // every acknowledged POST is in the count: none lost with the killed process, none applied twice by the replay
        Assert.Equal(result.PostsAcknowledged, result.FinalCounter);
        Assert.True(result.CounterBeforeKill > 0 && result.FinalCounter > result.CounterBeforeKill,
            $"count {result.CounterBeforeKill} before the kill, {result.FinalCounter} at the end");
    }
}

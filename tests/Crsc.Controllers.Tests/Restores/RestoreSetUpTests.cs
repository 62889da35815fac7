using Crsc.Api.Crds;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Restores;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using static Crsc.Controllers.Tests.Restores.RestoreFixture;

namespace Crsc.Controllers.Tests.Restores;

/// <summary>The leader and node halves set up as the daemon sets them up, running: watches alone carry a Restore from creation to Restored.</summary>
public sealed class RestoreSetUpTests : IAsyncLifetime
{
    private const string P1 = "counter-7d9f8c6b5-abcde";
    private readonly RestoreFixture _f = new();
    private readonly CancellationTokenSource _stop = new();

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit 2 runs IAsyncLifetime.DisposeAsync on a test class, never IAsyncDisposable's: cleanup must be here
    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _f.DisposeAsync();
        _stop.Dispose();
    }

    [Fact]
    public async Task A_created_Restore_is_prepared_on_the_pods_node_patched_and_followed_to_Restored()
    {
        await _f.CreatePodAsync(P1, node: "n1");
        await _f.CreateCheckpointAsync("c1", _f.Time.GetUtcNow().AddMinutes(-5));
        var runtime = new FakeContainerRuntime();
        // three instances as the daemon sets them up: the leader's restore state manager, and each node's preparer
        var leader = Manager();
        RestoreReconciler.SetUp(leader);
        var node1 = Manager();
        RestorePreparer.SetUp(node1, runtime, new RestorePreparerOptions { NodeName = "n1" });
        var node2 = Manager();
        RestorePreparer.SetUp(node2, runtime, new RestorePreparerOptions { NodeName = "n2" });
        var running = Task.WhenAll(leader.RunAsync(_stop.Token), node1.RunAsync(_stop.Token), node2.RunAsync(_stop.Token));

        await _f.CreateRestoreAsync("r1", failedPod: P1);

        await Eventually.TrueAsync(() => _f.ImageOfPod(P1) == ImageOf("c1"), "pod patched to the checkpoint image");
        Assert.Equal([ImageV1, ImageOf("c1")], runtime.PullCalls.Select(p => p.Image)); // once, by n1 only
        Assert.Equal(1, _f.Restore("r1").Status!.Attempts);

        await _f.SetContainerStateAsync(P1, Running(DateTimeOffset.UtcNow.AddSeconds(5)), image: ImageOf("c1"), ready: true);
        await Eventually.TrueAsync(() => _f.Restore("r1").Status!.Phase == RestorePhase.Restored, "Restored");

        await _stop.CancelAsync();
        await running;
    }

    private ControllerManager Manager() => new(new ControllerManagerOptions
    {
        Kube = _f.Kube, Events = _f.Events, Time = TimeProvider.System, Loggers = NullLoggerFactory.Instance,
    });
}

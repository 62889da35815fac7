using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Restores;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using static Crsc.Controllers.Tests.Restores.RestoreFixture;

namespace Crsc.Controllers.Tests.Restores;

/// <summary>A completed checkpoint's image is pulled to its node before any failure; the one it replaces goes.</summary>
public sealed class CheckpointImageWarmerTests : IAsyncLifetime
{
    private const string P1 = "counter-7d9f8c6b5-abcde";
    private static readonly ObjectKey Source = new(Ns, $"{P1}/{RestoreFixture.Container}");
    private readonly RestoreFixture _f = new();
    private readonly FakeContainerRuntime _runtime = new();
    private readonly CancellationTokenSource _stop = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _f.DisposeAsync();
        _stop.Dispose();
    }

    private sealed class Tokens : IPullCredentials
    {
        public RegistryAuth? For(string image, string ns) => new(Username: "crsc-restore", Password: $"token-{ns}");
    }

    private async Task<Func<Task>> WarmerAsync(string node = "n1")
    {
        var leader = await _f.StartLeaderAsync();
        var warmer = new CheckpointImageWarmer(leader.Contents, leader.Pods, leader.Restores, _runtime,
            new CheckpointImageWarmerOptions { NodeName = node, PullCredentials = new Tokens() }, _f.Time, NullLogger.Instance);
        return async () =>
        {
            await Eventually.TrueAsync(() => InSync(leader.Contents, _f.ContentsApi) && InSync(leader.Pods, _f.PodsApi)
                && InSync(leader.Restores, _f.RestoresApi), "caches as stored");
            await warmer.ReconcileAsync(Source, CancellationToken.None);
        };
    }

    private async Task CheckpointAsync(string name)
    {
        _f.Time.Advance(TimeSpan.FromMinutes(10)); // creation times in order
        await _f.CreateCheckpointAsync(name, _f.Time.GetUtcNow());
    }

    [Fact]
    public async Task The_newest_checkpoints_image_is_pulled_into_the_pods_sandbox_and_the_one_it_replaces_is_removed()
    {
        await CheckpointAsync("c1");
        var reconcile = await WarmerAsync();

        await reconcile();
        var pull = Assert.Single(_runtime.PullCalls);
        Assert.Equal(ImageOf("c1"), pull.Image);
        Assert.Equal((Ns, P1), (pull.Sandbox!.Namespace, pull.Sandbox.Name));
        Assert.Equal(new RegistryAuth(Username: "crsc-restore", Password: $"token-{Ns}"), _runtime.PullAuths.Single().Auth);
        await reconcile(); // kept: nothing more
        Assert.Single(_runtime.PullCalls);
        Assert.Empty(_runtime.RemoveCalls);

        await CheckpointAsync("c2");
        await reconcile();

        Assert.Equal([ImageOf("c1"), ImageOf("c2")], _runtime.PullCalls.Select(p => p.Image));
        Assert.Equal([ImageOf("c1")], _runtime.RemoveCalls);
        Assert.Equal([ImageOf("c2")], _runtime.Images);
    }

    [Fact]
    public async Task Another_nodes_checkpoint_is_not_pulled_here()
    {
        await CheckpointAsync("c1");
        var reconcile = await WarmerAsync(node: "n2");

        await reconcile();

        Assert.Empty(_runtime.PullCalls);
    }

    [Fact]
    public async Task An_image_the_runtime_had_already_is_never_removed_by_the_warmer()
    {
        await CheckpointAsync("c1");
        _runtime.AddImage(ImageOf("c1")); // a restore pulled it
        var reconcile = await WarmerAsync();
        await reconcile();
        Assert.Empty(_runtime.PullCalls);

        await CheckpointAsync("c2");
        await reconcile();

        Assert.Equal([ImageOf("c2")], _runtime.PullCalls.Select(p => p.Image));
        Assert.Empty(_runtime.RemoveCalls);
        Assert.Contains(ImageOf("c1"), _runtime.Images);
    }

    [Fact]
    public async Task An_image_a_pod_runs_is_kept_until_nothing_uses_it()
    {
        await CheckpointAsync("c1");
        var reconcile = await WarmerAsync();
        await reconcile();
        // the pod was restored from c1: its spec names the checkpoint image
        await _f.CreatePodAsync(P1, image: ImageOf("c1"));

        await CheckpointAsync("c2");
        await reconcile();
        Assert.Empty(_runtime.RemoveCalls);
        Assert.Contains(ImageOf("c1"), _runtime.Images);

        // a new instance of the pod runs its own image again: the old checkpoint image can go
        var pod = _f.Pod(P1)!;
        pod.Spec.Containers[0].Image = ImageV1;
        await _f.PodsApi.SeedAsync(pod, CancellationToken.None);
        await reconcile();
        Assert.Equal([ImageOf("c1")], _runtime.RemoveCalls);
    }

    [Fact]
    public async Task When_the_containers_checkpoints_are_gone_so_is_the_image_pulled_for_them()
    {
        await CheckpointAsync("c1");
        var reconcile = await WarmerAsync();
        await reconcile();

        await _f.ContentsApi.DeleteAsync(null, "ckpt-c1", null, CancellationToken.None);
        await reconcile();

        Assert.Equal([ImageOf("c1")], _runtime.RemoveCalls);
    }

    [Fact]
    public async Task Set_up_as_the_daemon_does_a_completed_checkpoint_is_pulled_by_the_watch_alone()
    {
        var manager = new ControllerManager(new ControllerManagerOptions
        {
            Kube = _f.Kube, Events = _f.Events, Time = TimeProvider.System, Loggers = NullLoggerFactory.Instance,
        });
        CheckpointImageWarmer.SetUp(manager, _runtime, new CheckpointImageWarmerOptions { NodeName = "n1" });
        var running = manager.RunAsync(_stop.Token);

        await CheckpointAsync("c1");

        await Eventually.TrueAsync(() => _runtime.PullCalls.Any(p => p.Image == ImageOf("c1")), "the checkpoint image pulled");
        await _stop.CancelAsync();
        await running;
    }
}

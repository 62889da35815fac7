using Crsc.Api.Kubernetes;
using Crsc.Cri;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Crsc.Testing.Kube;
using Crsc.Testing.Kubelet;

namespace Crsc.E2E.Tests.Sandbox;

/// <summary>
/// The sandbox kubelet's cleanup runs while the demo's or a test's own error is on its way out (an <c>await using</c>):
/// a runtime that does not answer must cost a bounded time and a warning, never an exception that replaces that error
/// (the demo once reported "StopContainer was cancelled" instead of the checkpoint that timed out).
/// </summary>
public sealed class SandboxKubeletTests
{
    [Fact]
    public async Task Dispose_with_a_runtime_that_does_not_stop_the_container_warns_within_its_limit_and_does_not_throw()
    {
        using var dir = new TempDir();
        await using var api = await FakeApiServer.StartAsync();
        await using var cri = await FakeCriServer.StartAsync(Path.Combine(dir.Path, "cri.sock"));
        cri.AddImage("registry.local/busybox:1");
        api.Seed(Resources.Pods, new Pod
        {
            Metadata = new ObjectMeta { Name = "web", Namespace = "demo" },
            Spec = new PodSpec { NodeName = "n1", Containers = [new Container { Name = "app", Image = "registry.local/busybox:1" }] },
        });
        using var client = new CriClient(new CriClientOptions { Endpoint = "unix://" + cri.SocketPath });
        var lines = new List<string>();
        var kubelet = new SandboxKubelet(api, client, new SandboxKubeletOptions
        {
            NodeName = "n1", CgroupParent = "/test", DataRoot = Path.Combine(dir.Path, "kubelet"),
            CleanupTimeout = TimeSpan.FromMilliseconds(500),
        });
        kubelet.OnAction = line => { lock (lines) lines.Add(line); };
        await kubelet.SyncOnceAsync(CancellationToken.None);
        Assert.NotNull(kubelet.ContainerIdOf("demo", "web", "app"));

        cri.Inject("StopContainer", new CriFault { Delay = TimeSpan.FromMinutes(10) });
        var dispose = kubelet.DisposeAsync().AsTask();
        var finished = await Task.WhenAny(dispose, Task.Delay(TimeSpan.FromSeconds(30)));
        Assert.Same(dispose, finished);
        await dispose; // no exception
        lock (lines)
            Assert.Contains(lines, l => l.StartsWith("WARNING: pod demo/web: cleanup did not finish within", StringComparison.Ordinal));
    }
}

/// <summary>
/// The kubelet keys a container's restart back-off by the pod, the container and the hash of its spec, so a container
/// whose image changed in the pod spec (crsc's patch to a checkpoint image) is started at once, whatever back-off the
/// old spec had earned. The sandbox kubelet must do the same, or the kill → serving benchmark would time its back-off.
/// </summary>
public sealed class SandboxKubeletBackoffTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private FakeApiServer _api = null!;
    private FakeCriServer _cri = null!;
    private CriClient _client = null!;
    private SandboxKubelet _kubelet = null!;

    public async Task InitializeAsync()
    {
        _api = await FakeApiServer.StartAsync();
        _cri = await FakeCriServer.StartAsync(Path.Combine(_dir.Path, "cri.sock"));
        _cri.AddImage("registry.local/busybox:1");
        _cri.AddImage("registry.local/checkpoint:1");
        _api.Seed(Resources.Pods, new Pod
        {
            Metadata = new ObjectMeta { Name = "web", Namespace = "demo" },
            Spec = new PodSpec { NodeName = "n1", Containers = [new Container { Name = "app", Image = "registry.local/busybox:1" }] },
        });
        _client = new CriClient(new CriClientOptions { Endpoint = "unix://" + _cri.SocketPath });
        _kubelet = new SandboxKubelet(_api, _client, new SandboxKubeletOptions
        {
            NodeName = "n1", CgroupParent = "/test", DataRoot = Path.Combine(_dir.Path, "kubelet"),
            RestartBackoff = TimeSpan.FromMinutes(10), CleanupTimeout = TimeSpan.FromSeconds(5),
        });
    }

    public async Task DisposeAsync()
    {
        await _kubelet.DisposeAsync();
        _client.Dispose();
        await _cri.DisposeAsync();
        await _api.DisposeAsync();
        _dir.Dispose();
    }

    private async Task<string?> KillAndSyncAsync()
    {
        var id = _kubelet.ContainerIdOf("demo", "web", "app")!;
        await _client.StopContainerAsync(new Runtime.V1.StopContainerRequest { ContainerId = id, Timeout = 0 });
        await _kubelet.SyncOnceAsync(CancellationToken.None);
        return _kubelet.ContainerIdOf("demo", "web", "app");
    }

    private void ChangeImage() => _api.Mutate(_api.ResourceOf(Resources.Pods), "demo", "web", o =>
    {
        o["spec"]!["containers"]![0]!["image"] = "registry.local/checkpoint:1";
        return true;
    });

    [Fact]
    public async Task A_second_exit_backs_off_but_a_new_image_starts_at_once()
    {
        await _kubelet.SyncOnceAsync(CancellationToken.None);
        Assert.NotNull(await KillAndSyncAsync()); // the first exit restarts at once
        Assert.Null(await KillAndSyncAsync());    // the second backs off (10 min here)

        ChangeImage();
        await _kubelet.SyncOnceAsync(CancellationToken.None);

        var started = Assert.Single(_kubelet.Starts, s => s.Image == "registry.local/checkpoint:1");
        Assert.Equal(started.ContainerId, _kubelet.ContainerIdOf("demo", "web", "app"));
    }

    [Fact]
    public async Task A_container_stopped_after_its_image_changed_starts_from_the_new_image_at_once()
    {
        await _kubelet.SyncOnceAsync(CancellationToken.None);
        Assert.NotNull(await KillAndSyncAsync()); // one exit already: the next one of the same spec would back off

        // crsc patches the image, then stops the running (old-image) container itself before the kubelet's sync
        ChangeImage();
        var id = await KillAndSyncAsync();

        Assert.NotNull(id);
        Assert.Equal("registry.local/checkpoint:1", _kubelet.Starts[^1].Image);
        Assert.Equal(3, _kubelet.Starts.Count);
    }
}

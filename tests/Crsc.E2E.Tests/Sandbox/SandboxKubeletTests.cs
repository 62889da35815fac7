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

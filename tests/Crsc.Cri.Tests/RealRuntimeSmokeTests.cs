using Crsc.Controllers.Runtime;
using Crsc.Cri.Grpc;

namespace Crsc.Cri.Tests;

/// <summary>Runs only when <c>CRSC_TEST_CRI_ENDPOINT</c> names a real CRI runtime (e.g. the tests/sandbox containerd).</summary>
public sealed class RealRuntimeFactAttribute : FactAttribute
{
    public RealRuntimeFactAttribute()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CRSC_TEST_CRI_ENDPOINT")))
            Skip = "set CRSC_TEST_CRI_ENDPOINT to a real CRI socket (e.g. unix:///run/crsc-sandbox/containerd.sock)";
    }
}

/// <summary>
/// Read-only checks of the client against a real runtime: the wire format and the error mapping
/// as containerd or CRI-O really answer. The full pod/checkpoint flow is in Crsc.E2E.Tests.
/// </summary>
public sealed class RealRuntimeSmokeTests
{
    private static CriContainerRuntime Runtime() =>
        new(new CriClientOptions { Endpoint = Environment.GetEnvironmentVariable("CRSC_TEST_CRI_ENDPOINT")!, DefaultTimeout = TimeSpan.FromSeconds(20) });

    [RealRuntimeFact]
    public async Task Version_and_lists()
    {
        using var runtime = Runtime();
        var v = await runtime.VersionAsync(default);
        Assert.False(string.IsNullOrEmpty(v.RuntimeName));
        Assert.Equal("v1", v.RuntimeApiVersion);
        var sandboxes = await runtime.ListPodSandboxesAsync(null, default);
        var containers = await runtime.ListContainersAsync(null, default);
        Assert.All(containers, c => Assert.Contains(sandboxes, s => s.Id == c.PodSandboxId));
        Assert.Null(await runtime.ImageStatusAsync("127.0.0.1:5000/crsc-test/never-pulled:" + Guid.NewGuid().ToString("N"), default));
    }

    [RealRuntimeFact]
    public async Task Unknown_container_is_not_found()
    {
        using var runtime = Runtime();
        string id = new('0', 64);
        var e = await Assert.ThrowsAsync<ContainerNotFoundException>(() => runtime.ContainerStatusAsync(id, false, default));
        Assert.Equal(nameof(GrpcStatusCode.NotFound), e.Code);
        await Assert.ThrowsAsync<ContainerNotFoundException>(() =>
            runtime.CheckpointContainerAsync(id, "/tmp/crsc-never-written.tar", TimeSpan.FromSeconds(10), default));
    }
}

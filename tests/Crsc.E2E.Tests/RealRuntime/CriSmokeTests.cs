using Crsc.Controllers.Runtime;
using Crsc.Cri;
using Crsc.E2E.Tests.Sandbox;

namespace Crsc.E2E.Tests.RealRuntime;

/// <summary>
/// Read-only checks of crsc's CRI client against the sandbox's real containerd: the wire format of the list and
/// image calls and the error mapping as a real runtime answers them. (They were opt-in unit tests behind an
/// environment variable nothing set; here they run wherever the real-component suite runs, CI included.)
/// </summary>
[Collection(RealRuntimeCollection.Name)]
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed class CriSmokeTests(RealRuntimeFixture sandbox)
{
    private CriContainerRuntime Runtime() =>
        new(new CriClientOptions { Endpoint = sandbox.CriEndpoint, DefaultTimeout = TimeSpan.FromSeconds(20) });

    [RealComponentsFact]
    public async Task Version_lists_and_an_unknown_image_answer_as_the_runtime_means_them()
    {
        using var runtime = Runtime();
        var v = await runtime.VersionAsync(default);
        Assert.False(string.IsNullOrEmpty(v.RuntimeName));
        Assert.Equal("v1", v.RuntimeApiVersion);
        var sandboxes = await runtime.ListPodSandboxesAsync(null, default);
        var containers = await runtime.ListContainersAsync(null, default);
        Assert.All(containers, c => Assert.Contains(sandboxes, s => s.Id == c.PodSandboxId));
        // an image the runtime has never seen is "no status", not an error
        Assert.Null(await runtime.ImageStatusAsync("127.0.0.1:5000/crsc-test/never-pulled:" + Guid.NewGuid().ToString("N"), default));
    }

    /// <summary>
    /// What the checkpoint image warmer does on a real runtime: pull, remove (the image is gone from the runtime's
    /// view), and remove again without an error; the image is pulled back for the tests that start containers from it.
    /// </summary>
    [RealComponentsFact]
    public async Task A_pulled_image_is_removed_and_removing_it_again_is_no_error()
    {
        using var runtime = Runtime();
        await runtime.PullImageAsync(sandbox.BusyboxImage, null, null, default);
        Assert.NotNull(await runtime.ImageStatusAsync(sandbox.BusyboxImage, default));
        try
        {
            await runtime.RemoveImageAsync(sandbox.BusyboxImage, default);
            Assert.Null(await runtime.ImageStatusAsync(sandbox.BusyboxImage, default));
            await runtime.RemoveImageAsync(sandbox.BusyboxImage, default);
        }
        finally
        {
            await runtime.PullImageAsync(sandbox.BusyboxImage, null, null, default);
        }
    }

    [RealComponentsFact]
    public async Task An_unknown_container_is_not_found_for_status_and_for_checkpoint()
    {
        using var runtime = Runtime();
        string id = new('0', 64);
        var e = await Assert.ThrowsAsync<ContainerNotFoundException>(() => runtime.ContainerStatusAsync(id, false, default));
        Assert.Equal("NotFound", e.Code);
        var path = Path.Combine(sandbox.CreateSharedDirectory("cri-smoke-"), "never-written.tar");
        await Assert.ThrowsAsync<ContainerNotFoundException>(() =>
            runtime.CheckpointContainerAsync(id, path, TimeSpan.FromSeconds(10), default));
        Assert.False(File.Exists(path), "a refused checkpoint wrote an archive");
    }

    /// <summary>
    /// The runtime capability probe against the real containerd 2.1: verbose CRI Status carries its CRI configuration
    /// (info["config"]), and the verdicts are Supported for both (2.1 restores in CreateContainer with no opt-in).
    /// </summary>
    [RealComponentsFact]
    public async Task The_capability_probe_finds_that_containerd_2_1_checkpoints_and_restores()
    {
        using var runtime = Runtime();
        var status = await runtime.StatusAsync(verbose: true, default);
        Assert.True(status.Info.ContainsKey("config"), "containerd's verbose Status has its CRI config: " + string.Join(", ", status.Info.Keys));
        var criu = await sandbox.InNamespaceAsync(["criu", "--version"], TimeSpan.FromMinutes(1));
        Assert.True(criu.Succeeded, criu.ToString());
        var probe = new RuntimeCapabilityProbe(runtime, _ => Task.FromResult(CriuFact.Found(criu.Stdout.Trim())));
        var caps = await probe.ProbeAsync(default);
        Assert.Equal("containerd", caps.RuntimeName);
        Assert.Matches(@"^v?2\.1\.", caps.RuntimeVersion);
        Assert.True(caps.Checkpoint.State == Crsc.Api.Crds.CapabilityState.Supported, caps.Checkpoint.Reason);
        Assert.True(caps.Restore.State == Crsc.Api.Crds.CapabilityState.Supported, caps.Restore.Reason);
        Assert.NotEmpty(caps.Fingerprint);
    }
}

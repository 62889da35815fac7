using Crsc.Controllers.Runtime;
using Crsc.Cri;
using KubeletLabels = Crsc.Api.Kubernetes.KubeletLabels;
using V1 = Runtime.V1;

namespace Crsc.E2E.Tests.Sandbox;

/// <summary>
/// Pods and containers on the sandbox's containerd, configured as the kubelet would ask for them (its labels, a
/// cgroup under <see cref="RealRuntimeFixture.CgroupParent"/>, the node's network). No xunit: the real-runtime
/// benchmark (tests/Crsc.Benchmarks) compiles this file too.
/// </summary>
public static class SandboxPods
{
    /// <summary>A pod sandbox's configuration: kubelet labels, cgroup under the sandbox's parent, no pod network.</summary>
    public static V1.PodSandboxConfig PodConfig(RealRuntimeFixture sandbox, string podNamespace, string name, string uid,
        string logDirectory) => new()
    {
        Metadata = new V1.PodSandboxMetadata { Name = name, Namespace = podNamespace, Uid = uid },
        LogDirectory = logDirectory,
        Labels =
        {
            [KubeletLabels.PodName] = name,
            [KubeletLabels.PodNamespace] = podNamespace,
            [KubeletLabels.PodUid] = uid,
        },
        Linux = new V1.LinuxPodSandboxConfig
        {
            CgroupParent = $"{sandbox.CgroupParent}/pod{uid}",
            SecurityContext = new V1.LinuxSandboxSecurityContext
            {
                // the node's network: the tests need no pod network
                NamespaceOptions = new V1.NamespaceOption
                {
                    Network = V1.NamespaceMode.Node, Pid = V1.NamespaceMode.Container, Ipc = V1.NamespaceMode.Pod,
                },
            },
        },
    };

    /// <summary>
    /// A busybox container running <paramref name="command"/> with <paramref name="dataDirectory"/> at <c>/data</c>,
    /// labelled as the kubelet labels the containers of that pod (so crsc finds it by pod and container name).
    /// </summary>
    public static V1.ContainerConfig BusyboxConfig(RealRuntimeFixture sandbox, string podNamespace, string podName, string podUid,
        string containerName, string dataDirectory, params string[] command)
    {
        var config = new V1.ContainerConfig
        {
            Metadata = new V1.ContainerMetadata { Name = containerName },
            Image = new V1.ImageSpec { Image = sandbox.BusyboxImage },
            Mounts = { new V1.Mount { HostPath = dataDirectory, ContainerPath = "/data" } },
            LogPath = containerName + ".log",
            Labels =
            {
                [KubeletLabels.PodName] = podName,
                [KubeletLabels.PodNamespace] = podNamespace,
                [KubeletLabels.PodUid] = podUid,
                [KubeletLabels.ContainerName] = containerName,
            },
            Linux = new V1.LinuxContainerConfig
            {
                SecurityContext = new V1.LinuxContainerSecurityContext
                {
                    NamespaceOptions = new V1.NamespaceOption
                    {
                        Network = V1.NamespaceMode.Node, Pid = V1.NamespaceMode.Container, Ipc = V1.NamespaceMode.Pod,
                    },
                },
            },
        };
        config.Command.AddRange(command);
        return config;
    }

    /// <summary>Pulls the busybox image, runs a pod sandbox and starts one container in it; returns both IDs.</summary>
    public static async Task<(string PodId, string ContainerId)> RunAsync(CriClient client, V1.PodSandboxConfig pod,
        V1.ContainerConfig container, CancellationToken ct)
    {
        await client.PullImageAsync(new V1.PullImageRequest { Image = container.Image }, ct: ct);
        var podId = (await client.RunPodSandboxAsync(new V1.RunPodSandboxRequest { Config = pod }, ct: ct)).PodSandboxId;
        try
        {
            var containerId = (await client.CreateContainerAsync(new V1.CreateContainerRequest
            {
                PodSandboxId = podId, Config = container, SandboxConfig = pod,
            }, ct: ct)).ContainerId;
            await client.StartContainerAsync(new V1.StartContainerRequest { ContainerId = containerId }, ct: ct);
            return (podId, containerId);
        }
        catch
        {
            await RemovePodAsync(client, podId, _ => { });
            throw;
        }
    }

    /// <summary>Stops and removes the pod and its containers, by ID; a failure here is reported, not thrown.</summary>
    public static async Task RemovePodAsync(CriClient client, string podId, Action<string> report)
    {
        try
        {
            var containers = await client.ListContainersAsync(new V1.ListContainersRequest
            {
                Filter = new V1.ContainerFilter { PodSandboxId = podId },
            });
            foreach (var c in containers.Containers)
            {
                await client.StopContainerAsync(new V1.StopContainerRequest { ContainerId = c.Id, Timeout = 0 });
                await client.RemoveContainerAsync(new V1.RemoveContainerRequest { ContainerId = c.Id });
            }
            await client.StopPodSandboxAsync(new V1.StopPodSandboxRequest { PodSandboxId = podId });
            await client.RemovePodSandboxAsync(new V1.RemovePodSandboxRequest { PodSandboxId = podId });
        }
        catch (Exception e) when (e is ContainerRuntimeException or IOException)
        {
            report($"cleanup of pod {podId}: {e.Message}");
        }
    }
}

using System.Formats.Tar;
using System.Text.Json;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Runtime;
using Crsc.Cri.Grpc;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Runtime.V1;
using ContainerState = Crsc.Controllers.Runtime.ContainerState;
using PodSandboxState = Crsc.Controllers.Runtime.PodSandboxState;
using ContainerFilter = Crsc.Controllers.Runtime.ContainerFilter;
using PodSandboxFilter = Crsc.Controllers.Runtime.PodSandboxFilter;

namespace Crsc.Cri.Tests;

/// <summary>Every call of the CRI client and <see cref="CriContainerRuntime"/> against <see cref="FakeCriServer"/>.</summary>
public sealed class CriClientTests : IAsyncLifetime
{
    private FakeCriServer _cri = null!;
    private CriClient _client = null!;
    private CriContainerRuntime _runtime = null!;
    private readonly TempDir _tmp = new();

    public async Task InitializeAsync()
    {
        _cri = await FakeCriServer.StartAsync();
        _client = new CriClient(new CriClientOptions { Endpoint = _cri.Endpoint, DefaultTimeout = TimeSpan.FromSeconds(20) });
        _runtime = new CriContainerRuntime(_client);
    }

    public async Task DisposeAsync()
    {
        _runtime.Dispose();
        _client.Dispose();
        await _cri.DisposeAsync();
        _tmp.Dispose();
    }

    [Fact]
    public async Task Version_speaks_grpc_over_http2_with_the_required_headers()
    {
        _cri.RuntimeName = "containerd";
        _cri.RuntimeVersion = "v2.1.9";
        var v = await _runtime.VersionAsync(default);
        Assert.Equal("containerd", v.RuntimeName);
        Assert.Equal("v2.1.9", v.RuntimeVersionString);
        Assert.Equal("v1", v.RuntimeApiVersion);

        var call = Assert.Single(_cri.Calls);
        Assert.Equal("Version", call.Method);
        Assert.Equal("HTTP/2", call.Protocol);
        Assert.Equal("application/grpc", call.ContentType);
        Assert.Equal("trailers", call.Te);
        Assert.Equal("v1", ((VersionRequest)call.Request!).Version);
        Assert.True(GrpcWire.TryParseTimeout(call.GrpcTimeout, out var t), call.GrpcTimeout);
        Assert.InRange(t, TimeSpan.FromSeconds(19), TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task Creates_runs_lists_stops_and_removes_a_pod_and_container_through_the_low_level_client()
    {
        var pulled = await _client.PullImageAsync(new PullImageRequest { Image = new ImageSpec { Image = "registry.local/busybox:1" } });
        Assert.StartsWith("sha256:", pulled.ImageRef);

        var sandboxConfig = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = "counter", Namespace = "default", Uid = "uid-1" },
            Labels = { ["io.kubernetes.pod.name"] = "counter", ["io.kubernetes.pod.namespace"] = "default" },
        };
        var sb = await _client.RunPodSandboxAsync(new RunPodSandboxRequest { Config = sandboxConfig });
        var created = await _client.CreateContainerAsync(new CreateContainerRequest
        {
            PodSandboxId = sb.PodSandboxId,
            SandboxConfig = sandboxConfig,
            Config = new ContainerConfig
            {
                Metadata = new ContainerMetadata { Name = "count" },
                Image = new ImageSpec { Image = "registry.local/busybox:1" },
                Command = { "/bin/sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 1; done" },
                Labels = { ["io.kubernetes.container.name"] = "count", ["io.kubernetes.pod.name"] = "counter", ["io.kubernetes.pod.namespace"] = "default" },
            },
        });
        Assert.Equal(ContainerState.Created, (await _runtime.ContainerStatusAsync(created.ContainerId, false, default)).State);

        await _client.StartContainerAsync(new StartContainerRequest { ContainerId = created.ContainerId });
        var status = await _runtime.ContainerStatusAsync(created.ContainerId, verbose: true, default);
        Assert.Equal(ContainerState.Running, status.State);
        Assert.Equal("count", status.Name);
        Assert.Equal("registry.local/busybox:1", status.Image);
        Assert.Equal(pulled.ImageRef, status.ImageRef);
        Assert.NotNull(status.StartedAt);
        Assert.Contains("pid", status.Info["info"]);

        var running = await _runtime.ListContainersAsync(new ContainerFilter(State: ContainerState.Running), default);
        var c = Assert.Single(running);
        Assert.Equal(created.ContainerId, c.Id);
        Assert.Equal(sb.PodSandboxId, c.PodSandboxId);
        Assert.Equal("default", c.PodNamespace);
        Assert.Equal("counter", c.PodName);
        Assert.Equal("count", c.ContainerName);

        var sandboxes = await _runtime.ListPodSandboxesAsync(new PodSandboxFilter(State: PodSandboxState.Ready), default);
        var s = Assert.Single(sandboxes);
        Assert.Equal(new PodIdentity("default", "counter", "uid-1"), s.Pod);
        Assert.True(s.CreatedAt > DateTimeOffset.UnixEpoch);

        await _client.StopContainerAsync(new StopContainerRequest { ContainerId = created.ContainerId, Timeout = 5 });
        var stopped = await _runtime.ContainerStatusAsync(created.ContainerId, false, default);
        Assert.Equal(ContainerState.Exited, stopped.State);
        Assert.NotNull(stopped.FinishedAt);
        Assert.Empty(await _runtime.ListContainersAsync(new ContainerFilter(State: ContainerState.Running), default));

        await _client.RemoveContainerAsync(new RemoveContainerRequest { ContainerId = created.ContainerId });
        await _client.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = sb.PodSandboxId });
        Assert.Equal(PodSandboxState.NotReady, Assert.Single(await _runtime.ListPodSandboxesAsync(null, default)).State);
        await _client.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = sb.PodSandboxId });
        Assert.Empty(await _runtime.ListPodSandboxesAsync(null, default));
        Assert.Empty(await _runtime.ListContainersAsync(null, default));
    }

    [Fact]
    public async Task Filters_are_sent_to_the_runtime()
    {
        var (sbA, a) = _cri.AddRunningContainer("ns1", "pod-a", "app");
        var (_, b) = _cri.AddRunningContainer("ns2", "pod-b", "app");

        var byLabel = await _runtime.ListContainersAsync(
            new ContainerFilter(Labels: new Dictionary<string, string> { [KubeletLabels.PodNamespace] = "ns2" }), default);
        Assert.Equal(b, Assert.Single(byLabel).Id);
        var bySandbox = await _runtime.ListContainersAsync(new ContainerFilter(PodSandboxId: sbA), default);
        Assert.Equal(a, Assert.Single(bySandbox).Id);
        var byId = await _runtime.ListContainersAsync(new ContainerFilter(Id: b), default);
        Assert.Equal(b, Assert.Single(byId).Id);
        var sandboxById = await _runtime.ListPodSandboxesAsync(new PodSandboxFilter(Id: sbA), default);
        Assert.Equal("pod-a", Assert.Single(sandboxById).Pod.Name);

        var sent = (ListContainersRequest)_cri.CallsTo("ListContainers").First().Request!;
        Assert.Equal("ns2", sent.Filter.LabelSelector[KubeletLabels.PodNamespace]);
        Assert.Null(sent.Filter.State);
    }

    [Fact]
    public async Task Checkpoint_writes_the_archive_at_the_requested_path_with_our_deadline()
    {
        var (_, id) = _cri.AddRunningContainer("default", "counter", "count");
        string archive = _tmp.Combine("staging-1.tar");

        await _runtime.CheckpointContainerAsync(id, archive, TimeSpan.FromSeconds(42), default);

        var call = Assert.Single(_cri.CallsTo("CheckpointContainer"));
        var req = (CheckpointContainerRequest)call.Request!;
        Assert.Equal(id, req.ContainerId);
        Assert.Equal(archive, req.Location);
        Assert.Equal(42, req.Timeout);
        Assert.True(GrpcWire.TryParseTimeout(call.GrpcTimeout, out var deadline));
        Assert.InRange(deadline, TimeSpan.FromSeconds(41), TimeSpan.FromSeconds(42));

        var names = new List<string>();
        await using (var f = File.OpenRead(archive))
        using (var tar = new TarReader(f))
        {
            while (tar.GetNextEntry() is { } e)
            {
                names.Add(e.Name);
                if (e.Name == "config.dump")
                {
                    using var doc = JsonDocument.Parse(e.DataStream!);
                    Assert.Equal(id, doc.RootElement.GetProperty("id").GetString());
                }
            }
        }
        Assert.Contains("config.dump", names);
        Assert.Contains("spec.dump", names);
        Assert.Contains("checkpoint/", names);
        Assert.Contains("checkpoint/inventory.img", names);
        Assert.Contains("rootfs-diff.tar", names);
        Assert.Equal(ContainerState.Running, (await _runtime.ContainerStatusAsync(id, false, default)).State);
    }

    [Fact]
    public async Task Checkpoint_by_pod_and_container_name_finds_the_running_container()
    {
        _cri.AddRunningContainer("default", "other", "count");
        var (_, id) = _cri.AddRunningContainer("default", "counter", "count");
        string archive = _tmp.Combine("c.tar");

        var result = await _runtime.CheckpointAsync(new CheckpointTarget("default", "counter", "count"), archive, TimeSpan.FromSeconds(10), default);

        Assert.Equal(archive, result.Path);
        Assert.Equal(id, ((CheckpointContainerRequest)Assert.Single(_cri.CallsTo("CheckpointContainer")).Request!).ContainerId);
        Assert.True(File.Exists(archive));

        var missing = await Assert.ThrowsAsync<ContainerNotFoundException>(() =>
            _runtime.CheckpointAsync(new CheckpointTarget("default", "nope", "count"), archive, TimeSpan.FromSeconds(10), default));
        Assert.Contains("default/nope", missing.Message);
    }

    [Fact]
    public async Task The_fake_writes_under_its_filesystem_root_and_labels_the_pod_uid_it_is_given()
    {
        // a runtime outside the client's container: the client's /staging/a.tar is the host's {root}/staging/a.tar
        var root = Directory.CreateDirectory(_tmp.Combine("root")).FullName;
        Directory.CreateDirectory(Path.Combine(root, "staging"));
        _cri.FilesystemRoot = root;
        var (_, id) = _cri.AddRunningContainer("default", "counter", "count", podUid: "0b9d1f5e-pod-uid");

        await _runtime.CheckpointContainerAsync(id, "/staging/a.tar", TimeSpan.FromSeconds(10), default);

        Assert.Equal("/staging/a.tar", ((CheckpointContainerRequest)Assert.Single(_cri.CallsTo("CheckpointContainer")).Request!).Location);
        Assert.True(File.Exists(Path.Combine(root, "staging", "a.tar")));
        Assert.False(File.Exists("/staging/a.tar"));
        var c = Assert.Single(await _runtime.ListContainersAsync(null, default));
        Assert.Equal("0b9d1f5e-pod-uid", c.PodUid);
        Assert.Equal("0b9d1f5e-pod-uid", Assert.Single(_cri.Sandboxes).Metadata.Uid);
        await Assert.ThrowsAnyAsync<Exception>(() => _runtime.CheckpointContainerAsync(id, "relative.tar", TimeSpan.FromSeconds(10), default));
    }

    [Fact]
    public async Task Pull_sends_auth_and_sandbox_and_image_status_reports_presence()
    {
        Assert.Null(await _runtime.ImageStatusAsync("registry.local/app:2", default));

        string imageRef = await _runtime.PullImageAsync("registry.local/app:2",
            new RegistryAuth(Username: "u", Password: "p", ServerAddress: "registry.local"),
            new PodIdentity("default", "counter", "uid-9", 1), default);

        var req = (PullImageRequest)Assert.Single(_cri.CallsTo("PullImage")).Request!;
        Assert.Equal("registry.local/app:2", req.Image.Image);
        Assert.Equal("u", req.Auth.Username);
        Assert.Equal("p", req.Auth.Password);
        Assert.Equal("registry.local", req.Auth.ServerAddress);
        Assert.Equal("uid-9", req.SandboxConfig.Metadata.Uid);
        Assert.Equal(1u, req.SandboxConfig.Metadata.Attempt);

        var image = await _runtime.ImageStatusAsync("registry.local/app:2", default);
        Assert.NotNull(image);
        Assert.Equal(imageRef, image.Id);
        Assert.Contains("registry.local/app:2", image.RepoTags);
        Assert.True(image.Size > 0);

        await Assert.ThrowsAsync<ContainerNotFoundException>(() => _runtime.PullImageAsync("registry.local/does-not-exist:1", null, null, default));
    }

    [Fact]
    public async Task Concurrent_calls_share_the_connection()
    {
        var tasks = Enumerable.Range(0, 32).Select(_ => _runtime.VersionAsync(default)).ToArray();
        var all = await Task.WhenAll(tasks);
        Assert.All(all, v => Assert.Equal("fake-cri", v.RuntimeName));
        Assert.Equal(32, _cri.CallsTo("Version").Count());
    }
}

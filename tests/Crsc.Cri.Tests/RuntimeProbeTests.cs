using Crsc.Api.Crds;
using System.Net.Sockets;
using System.Text;
using Crsc.Controllers.Runtime;
using Crsc.Cri.Grpc;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Runtime.V1;
using static Crsc.Testing.Cri.RuntimeAnswers;
using RuntimeCondition = Runtime.V1.RuntimeCondition;

namespace Crsc.Cri.Tests;

/// <summary>
/// The capability probe over the real CRI client against in-process runtimes that answer the way containerd 2.3.4 with
/// restore disabled and CRI-O 1.34 with <c>container_level_enabled = "checkpoint_only"</c> answer. Shapes: containerd's
/// verbose Status puts its CRI config JSON under <c>info["config"]</c> (containerd internal/cri/server/status.go); CRI-O
/// serves <c>GET /config</c> as TOML beside gRPC on its socket (cri-o server/inspect.go; the fake serves it on a second
/// socket, see <see cref="FakeCriServer.CrioConfig"/>). The containerd refusal text is
/// the one containerd's contrib/checkpoint/checkpoint-restore-cri-disable-test.sh expects.
/// </summary>
public sealed class RuntimeProbeTests : IAsyncLifetime
{
    private FakeCriServer _cri = null!;
    private CriContainerRuntime _runtime = null!;
    private readonly TempDir _tmp = new();
    private static readonly CriuFact Criu = CriuFact.Found("/usr/sbin/criu: Version: 4.1.1");

    public async Task InitializeAsync()
    {
        _cri = await FakeCriServer.StartAsync(http1: true);
        _runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = _cri.Endpoint, DefaultTimeout = TimeSpan.FromSeconds(20) });
    }

    public async Task DisposeAsync()
    {
        _runtime.Dispose();
        await _cri.DisposeAsync();
        _tmp.Dispose();
    }

    [Fact]
    public async Task Status_returns_the_conditions_and_the_info_only_when_verbose()
    {
        _cri.StatusConditions.Add(new RuntimeCondition { Type = "ContainerdHasNoDeprecationWarnings", Status = false, Reason = "ContainerdHasDeprecationWarnings", Message = "{\"x\":\"y\"}" });
        _cri.StatusInfo["config"] = "{}";
        var quiet = await _runtime.StatusAsync(verbose: false, CancellationToken.None);
        var verbose = await _runtime.StatusAsync(verbose: true, CancellationToken.None);
        Assert.Empty(quiet.Info);
        Assert.Equal("{}", verbose.Info["config"]);
        Assert.Equal([("RuntimeReady", true), ("NetworkReady", true), ("ContainerdHasNoDeprecationWarnings", false)],
            verbose.Conditions.Select(c => (c.Type, c.Status)));
        Assert.Equal("ContainerdHasDeprecationWarnings", verbose.Conditions[2].Reason);
        Assert.Equal([false, true], _cri.CallsTo("Status").Select(c => ((StatusRequest)c.Request!).Verbose));
    }

    [Fact]
    public async Task Containerd_2_3_4_with_restore_disabled_is_DisabledByConfig_with_the_option_to_set()
    {
        _cri.RuntimeName = "containerd";
        _cri.RuntimeVersion = "v2.3.4";
        _cri.StatusInfo["config"] = ContainerdConfigJson(restoreViaCreate: false, enableCriu: true);
        _cri.StatusInfo["golang"] = "\"go1.24.6\"";
        // what CreateContainer of a checkpoint image answers there (an Unknown status from a plain Go error)
        _cri.Inject("CreateContainer", CriFault.Error(GrpcStatusCode.Unknown, "checkpoint restore via CreateContainer is disabled by configuration"));

        var caps = await new RuntimeCapabilityProbe(_runtime, _ => Task.FromResult(Criu), new CrioConfigReader(_cri.InfoEndpoint!)).ProbeAsync(CancellationToken.None);

        Assert.Equal(CapabilityState.Supported, caps.Checkpoint.State);
        Assert.Equal(CapabilityState.DisabledByConfig, caps.Restore.State);
        Assert.Contains("enable_experimental_restore_via_create = true under [plugins.\"io.containerd.cri.v1.runtime\"]", caps.Restore.Fix);
        Assert.Equal(("containerd", "v2.3.4"), (caps.RuntimeName, caps.RuntimeVersion));
        Assert.Contains("CRI Status verbose: info[\"config\"] read", caps.Inputs);
        Assert.DoesNotContain(_cri.Calls, c => c.Method.StartsWith("GET ", StringComparison.Ordinal)); // CRI-O's endpoint is not asked

        using var client = new CriClient(_cri.Endpoint);
        var sandbox = await client.RunPodSandboxAsync(new RunPodSandboxRequest { Config = new PodSandboxConfig { Metadata = new PodSandboxMetadata { Name = "p", Namespace = "n", Uid = "u" } } });
        var refused = await Assert.ThrowsAsync<ContainerRuntimeException>(() => client.CreateContainerAsync(new CreateContainerRequest
        {
            PodSandboxId = sandbox.PodSandboxId,
            Config = new ContainerConfig { Metadata = new ContainerMetadata { Name = "app" }, Image = new ImageSpec { Image = "localhost:5055/ckpt/app:1" } },
        }));
        Assert.Equal("Unknown", refused.Code);
        Assert.Equal("checkpoint restore via CreateContainer is disabled by configuration", refused.RuntimeMessage);
    }

    [Fact]
    public async Task Crio_with_checkpoint_only_checkpoints_and_does_not_restore_read_from_its_config_endpoint()
    {
        _cri.RuntimeName = "cri-o";
        _cri.RuntimeVersion = "1.34.14";
        _cri.CrioConfig = CrioConfigToml("checkpoint_only");

        var caps = await new RuntimeCapabilityProbe(_runtime, _ => Task.FromResult(Criu), new CrioConfigReader(_cri.InfoEndpoint!)).ProbeAsync(CancellationToken.None);

        Assert.Equal(CapabilityState.Supported, caps.Checkpoint.State);
        Assert.Equal(CapabilityState.DisabledByConfig, caps.Restore.State);
        Assert.Contains("container_level_enabled = \"checkpoint_restore\" under [crio.checkpoint_restore]", caps.Restore.Fix);
        Assert.Contains("CRI-O GET /config: read", caps.Inputs);
        var get = Assert.Single(_cri.Calls, c => c.Method == "GET /config");
        Assert.Equal("HTTP/1.1", get.Protocol);
    }

    [Fact]
    public async Task Crio_without_a_config_endpoint_is_Unknown_naming_the_answer()
    {
        _cri.RuntimeName = "cri-o";
        _cri.RuntimeVersion = "1.34.14";
        // CrioConfig unset: the fake answers 404
        var caps = await new RuntimeCapabilityProbe(_runtime, _ => Task.FromResult(Criu), new CrioConfigReader(_cri.InfoEndpoint!)).ProbeAsync(CancellationToken.None);
        Assert.Equal(CapabilityState.Unknown, caps.Restore.State);
        Assert.Contains("answered HTTP 404", caps.Restore.Reason);
    }

    // --- the reader's bounds, against a raw socket that answers whatever the test writes ---

    private async Task<(string Endpoint, Task Server)> RawServerAsync(string? answer)
    {
        var path = _tmp.Combine($"raw-{Guid.NewGuid():N}.sock");
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(4);
        var server = Task.Run(async () =>
        {
            using (listener)
            {
                using var conn = await listener.AcceptAsync();
                var buffer = new byte[4096];
                await conn.ReceiveAsync(buffer); // the request
                if (answer is null)
                {
                    await Task.Delay(TimeSpan.FromSeconds(10)); // never answers
                    return;
                }
                await conn.SendAsync(Encoding.ASCII.GetBytes(answer));
                conn.Shutdown(SocketShutdown.Both);
            }
        });
        await Task.Yield();
        return ("unix://" + path, server);
    }

    [Fact]
    public async Task The_reader_does_not_follow_redirects()
    {
        var (endpoint, _) = await RawServerAsync("HTTP/1.1 302 Found\r\nLocation: http://example.org/config\r\nContent-Length: 0\r\n\r\n");
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => new CrioConfigReader(endpoint).ReadConfigAsync(CancellationToken.None));
        Assert.Contains("answered HTTP 302", e.Message);
    }

    [Fact]
    public async Task The_reader_refuses_an_answer_larger_than_its_bound_with_or_without_a_length()
    {
        var body = new string('x', 5000);
        var (withLength, _) = await RawServerAsync($"HTTP/1.1 200 OK\r\nContent-Type: application/toml\r\nContent-Length: {body.Length}\r\n\r\n{body}");
        var e1 = await Assert.ThrowsAsync<InvalidOperationException>(() => new CrioConfigReader(withLength, maxBytes: 4096).ReadConfigAsync(CancellationToken.None));
        Assert.Contains("more than 4096", e1.Message);
        var (chunked, _) = await RawServerAsync($"HTTP/1.1 200 OK\r\nContent-Type: application/toml\r\nConnection: close\r\n\r\n{body}");
        var e2 = await Assert.ThrowsAsync<InvalidOperationException>(() => new CrioConfigReader(chunked, maxBytes: 4096).ReadConfigAsync(CancellationToken.None));
        Assert.Contains("more than 4096 bytes", e2.Message);
        var (small, _) = await RawServerAsync("HTTP/1.1 200 OK\r\nContent-Type: application/toml\r\nContent-Length: 10\r\n\r\n[crio]\na=1");
        Assert.Equal("[crio]\na=1", await new CrioConfigReader(small, maxBytes: 4096).ReadConfigAsync(CancellationToken.None));
    }

    [Fact]
    public async Task The_reader_gives_up_after_its_timeout()
    {
        var (endpoint, _) = await RawServerAsync(null);
        var e = await Assert.ThrowsAsync<TimeoutException>(() =>
            new CrioConfigReader(endpoint, TimeSpan.FromMilliseconds(300)).ReadConfigAsync(CancellationToken.None));
        Assert.Contains("did not answer within 0.3s", e.Message);
    }
}

using System.Net.Sockets;
using System.Text.Json;
using Crsc.Configuration;
using Crsc.Controllers.Nodes;
using Crsc.Daemon;
using Crsc.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Tests.Daemon;

/// <summary>The daemon as composed: state.json published at start and on every change, the node state in /v1/status and
/// in <c>crsc status</c>, and no bus for logind as a degraded <c>shutdown</c> entry.</summary>
public sealed class NodeLeavingDaemonTests : IAsyncLifetime
{
    private readonly TempDir _dir = new("crsc-daemon-leaving-");
    private WebApplication _app = null!;
    private HttpClient _http = null!;
    private CrscOptions _options = null!;

    public async Task InitializeAsync()
    {
        _options = new CrscOptions
        {
            NodeName = "node-a", Socket = _dir.Combine("crsc.sock"),
            CheckpointDir = _dir.Combine("checkpoints"), StagingDir = _dir.Combine("staging"), StateDir = _dir.Combine("state"),
            RuntimeEndpoint = "unix://" + _dir.Combine("no-runtime.sock"), ImagesListen = "",
            NodeStateDirectory = _dir.Combine("run", "node-state"), ShutdownBusAddress = "unix:path=" + _dir.Combine("no-bus"),
        };
        _app = DaemonHost.Build(_options, new Serilog.LoggerConfiguration().CreateLogger(), TimeProvider.System);
        NodeCheckpointing.OpenStore(_app.Services, NullLogger.Instance);
        await _app.StartAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        _app.Services.GetRequiredService<DaemonState>().Started = true;
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(_options.Socket), ct);
                return new NetworkStream(s, ownsSocket: true);
            },
        }) { BaseAddress = new Uri("http://localhost"), Timeout = TimeSpan.FromSeconds(10) };
    }

    public async Task DisposeAsync()
    {
        _http?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
            await _app.DisposeAsync();
        }
        _dir.Dispose();
    }

    private string StateFile => Path.Combine(_options.NodeStateDirectory, "state.json");

    [Fact]
    public async Task The_state_file_is_published_at_start_and_follows_the_node_state_into_status()
    {
        using (var doc = JsonDocument.Parse(await File.ReadAllBytesAsync(StateFile)))
            Assert.Equal(("node-a", false), (doc.RootElement.GetProperty("node").GetString(), doc.RootElement.GetProperty("goingAway").GetBoolean()));
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(_options.NodeStateDirectory));

        _app.Services.GetRequiredService<NodeGoingAway>().Report(NodeAwaySource.NodeObject, NodeAwayReason.Drain, "cordoned (spec.unschedulable)");
        using (var doc = JsonDocument.Parse(await File.ReadAllBytesAsync(StateFile)))
            Assert.Equal((true, "Drain", "cordoned (spec.unschedulable)"), (doc.RootElement.GetProperty("goingAway").GetBoolean(),
                doc.RootElement.GetProperty("reason").GetString(), doc.RootElement.GetProperty("detail").GetString()));

        var json = await _http.GetStringAsync("/v1/status");
        var status = JsonSerializer.Deserialize(json, NodeStatusJson.Default.NodeStatusResponse)!;
        Assert.Equal((true, "Drain", "cordoned (spec.unschedulable)"), (status.NodeState!.GoingAway, status.NodeState.Reason, status.NodeState.Detail));
        var text = new StringWriter();
        Crsc.Cli.StatusCommand.Print(text, status, DateTimeOffset.UtcNow);
        Assert.Contains("Node going away: Drain (cordoned (spec.unschedulable)), since", text.ToString());
    }

    [Fact]
    public async Task No_bus_for_logind_is_a_degraded_shutdown_entry_and_the_daemon_serves_on()
    {
        var health = _app.Services.GetRequiredService<Crsc.Controllers.Health.HealthRegistry>();
        await Eventually.TrueAsync(() => health.Snapshot().Any(e => e.Component == "shutdown"), "the shutdown entry");
        var entry = health.Snapshot().Single(e => e.Component == "shutdown");
        Assert.Equal(Crsc.Controllers.Health.HealthStatus.Degraded, entry.Status);
        Assert.Contains("containers are not checkpointed at shutdown", entry.Message);
        Assert.Contains("\"nodeState\"", await _http.GetStringAsync("/v1/status"));
    }
}

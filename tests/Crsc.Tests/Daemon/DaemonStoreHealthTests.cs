using System.Net;
using System.Net.Sockets;
using Crsc.Cli;
using Crsc.Configuration;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Storage;
using Crsc.Daemon;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Tests.Daemon;

/// <summary>
/// The <c>store</c> line of /readyz (and <c>crsc_store_bytes</c>) on the daemon as <see cref="DaemonHost.Build"/> composes
/// it and as its start opens the store: it follows the store through checkpoints, retention and deletes (issue 15: it
/// stayed at the count the daemon started with).
/// </summary>
public sealed class DaemonStoreHealthTests : IAsyncLifetime
{
    private readonly TempDir _dir = new("crsc-daemon-store-");
    private FakeCriServer _cri = null!;
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _cri = await FakeCriServer.StartAsync(_dir.Combine("cri.sock"));
        _cri.AddRunningContainer("shop", "web-0", "app");
        var options = new CrscOptions
        {
            NodeName = "node-a", Socket = _dir.Combine("crsc.sock"),
            CheckpointDir = _dir.Combine("checkpoints"), StagingDir = _dir.Combine("staging"), StateDir = _dir.Combine("state"),
            // the node state and logind of the test, not the machine's
            NodeStateDirectory = _dir.Combine("node-state"), ShutdownBusAddress = "unix:path=" + _dir.Combine("no-bus"),
            RuntimeEndpoint = _cri.Endpoint, ImagesListen = "",
        };
        _app = DaemonHost.Build(options, new Serilog.LoggerConfiguration().CreateLogger(), TimeProvider.System);
        // as the daemon's start does: the store is opened (lock, recovery, its health entry) before the host starts
        NodeCheckpointing.OpenStore(_app.Services, NullLogger.Instance);
        await _app.StartAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        _app.Services.GetRequiredService<DaemonState>().Started = true;
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(options.Socket), ct);
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
        await _cri.DisposeAsync();
        _dir.Dispose();
    }

    private async Task<string> GetAsync(string path)
    {
        using var response = await _http.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    private async Task<string> StoreLineAsync()
    {
        var body = await GetAsync("/readyz");
        return Assert.Single(body.Split('\n'), l => l.StartsWith("[+]store ", StringComparison.Ordinal)
            || l.StartsWith("[~]store ", StringComparison.Ordinal) || l.StartsWith("[-]store ", StringComparison.Ordinal));
    }

    private async Task<long> StoreBytesMetricAsync()
    {
        var line = Assert.Single((await GetAsync("/metrics")).Split('\n'), l => l.StartsWith("crsc_store_bytes ", StringComparison.Ordinal));
        return long.Parse(line["crsc_store_bytes ".Length..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<CheckpointInfo> CheckpointAsync() =>
        (await _app.Services.GetRequiredService<ICheckpointRunner>()
            .CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None)).Checkpoint;

    [Fact]
    public async Task The_store_line_of_readyz_counts_the_archives_as_they_are_stored_and_removed()
    {
        Assert.Equal("[+]store healthy: 0 checkpoint(s), 0 B", await StoreLineAsync());

        // the path of `crsc checkpoint` (the node API's runner): committed, and counted at once
        var first = await CheckpointAsync();
        Assert.Equal($"[+]store healthy: 1 checkpoint(s), {CliOutput.Bytes(first.Size)}", await StoreLineAsync());
        Assert.Equal(first.Size, await StoreBytesMetricAsync());

        var second = await CheckpointAsync();
        Assert.Equal($"[+]store healthy: 2 checkpoint(s), {CliOutput.Bytes(first.Size + second.Size)}", await StoreLineAsync());

        // retention deletes the older one (the newest good checkpoint is kept whatever the rules)
        var store = _app.Services.GetRequiredService<ICheckpointStore>();
        var retention = store.ApplyRetention(new RetentionRequest { Default = new StoreRetention(KeepLast: 1) });
        Assert.Equal(first.Id, Assert.Single(retention.Deleted).Checkpoint.Id);
        Assert.Equal($"[+]store healthy: 1 checkpoint(s), {CliOutput.Bytes(second.Size)}", await StoreLineAsync());
        Assert.Equal(second.Size, await StoreBytesMetricAsync());

        // a delete (a ContainerCheckpoint deleted, the outbox, the offline scheduler all delete through the store)
        Assert.True(store.Delete(second.Id));
        Assert.Equal("[+]store healthy: 0 checkpoint(s), 0 B", await StoreLineAsync());
        Assert.Equal(0, await StoreBytesMetricAsync());
    }
}

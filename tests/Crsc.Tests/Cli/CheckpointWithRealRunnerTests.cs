using System.Text.RegularExpressions;
using Crsc.Cli;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Storage;
using Crsc.Cri;
using Crsc.Daemon;
using Crsc.Storage;
using Crsc.Testing.Cri;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Crsc.Tests.Cli;

/// <summary>
/// The operator's path in one process: <c>crsc checkpoint</c> → node API socket → the real <see cref="CheckpointRunner"/>
/// → the real CRI client → <see cref="FakeCriServer"/> → the real store; then <c>crsc list</c> and <c>crsc inspect</c>
/// read that store while the "daemon" still holds its lock.
/// </summary>
public sealed class CheckpointWithRealRunnerTests : IAsyncLifetime
{
    private readonly CliStore _s = new();
    private FakeCriServer _cri = null!;
    private CriContainerRuntime _runtime = null!;
    private DiskCheckpointStore _store = null!;
    private CheckpointRunner _runner = null!;
    private WebApplication _app = null!;
    private string Socket => _s.Dir.Combine("crsc.sock");

    public async Task InitializeAsync()
    {
        _cri = await FakeCriServer.StartAsync();
        _runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = _cri.Endpoint });
        _store = _s.Open();
        _runner = new CheckpointRunner(_runtime, _runtime, _store, new CheckpointRunnerOptions { NodeName = "node-a" }, TimeProvider.System,
            new Crsc.Storage.FileStagingArea());
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(Socket, l => l.Protocols = HttpProtocols.Http1));
        builder.Services.AddSingleton<ICheckpointRunner>(_runner);
        builder.Services.AddSingleton<ICheckpointStore>(_store);
        _app = builder.Build();
        NodeApiCheckpoints.Map(_app);
        await _app.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        _runner.Dispose();
        _store.Dispose();
        _runtime.Dispose();
        await _cri.DisposeAsync();
        _s.Dispose();
    }

    [Fact]
    public async Task Checkpoint_then_list_and_inspect_the_archive()
    {
        _cri.AddRunningContainer("shop", "counter-0", "counter");

        var (code, output, err) = await CliStore.RunAsync("checkpoint", "shop/counter-0", "--socket", Socket);
        Assert.True(code == ExitCodes.Ok, output + err);
        Assert.Matches(@"\[\w+\] ", output); // progress lines
        var id = Regex.Match(output, @"Checkpoint (\S+) stored").Groups[1].Value;
        var stored = _store.Get(id);
        Assert.NotNull(stored);
        Assert.Contains(stored.Digest, output);
        Assert.Contains(stored.ArchivePath, output);
        Assert.Equal("counter", stored.Container);
        Assert.True((await _store.VerifyAsync(id, CancellationToken.None)).Valid);

        (code, output, err) = await CliStore.RunAsync(["list", "shop", .. _s.ReadFlags]);
        Assert.True(code == ExitCodes.Ok, err);
        Assert.Contains(id, output);
        Assert.Contains("/counter", output);

        (code, output, err) = await CliStore.RunAsync(["inspect", id, .. _s.ReadFlags]);
        Assert.True(code == ExitCodes.Ok, err);
        Assert.Matches(@"Container:\s+counter", output);
        Assert.Matches(@"Pod:\s+shop/counter-0", output);
        Assert.Contains("(verified)", output);
    }

    [Fact]
    public async Task A_pod_that_is_not_on_this_node_fails_with_the_runners_message()
    {
        var (code, _, err) = await CliStore.RunAsync("checkpoint", "shop/absent-0", "--socket", Socket);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("checkpoint of shop/absent-0 failed (not-found)", err);
        Assert.Contains("absent-0", err[err.IndexOf("):", StringComparison.Ordinal)..]);
        Assert.Empty(_store.List());
    }
}

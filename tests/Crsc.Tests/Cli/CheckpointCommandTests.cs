using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Crsc.Cli;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Storage;
using Crsc.Daemon;
using Crsc.Storage;
using Crsc.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Crsc.Tests.Cli;

/// <summary>A recording <see cref="ICheckpointRunner"/>: reports progress, then returns a result or throws the injected failure.</summary>
internal sealed class FakeCheckpointRunner : ICheckpointRunner
{
    public ConcurrentQueue<CheckpointRequest> Requests { get; } = new();
    public Exception? Failure { get; set; }
    public TaskCompletionSource? Gate { get; set; }
    public CancellationToken LastToken { get; private set; }
    /// <summary>How many byte-progress reports the ingest step makes (the last one says 3 MiB).</summary>
    public int ByteReports { get; set; } = 1;

    public async Task<CheckpointOutcome> CheckpointAsync(CheckpointRequest request, IProgress<CheckpointProgress>? progress, CancellationToken ct)
    {
        Requests.Enqueue(request);
        LastToken = ct;
        progress?.Report(new CheckpointProgress("find", $"container {request.Container ?? "app"} of pod {request.Namespace}/{request.Pod} is c0ffee012345"));
        progress?.Report(new CheckpointProgress("checkpoint", "the runtime is checkpointing the container"));
        if (Gate is { } g) await g.Task.WaitAsync(ct);
        if (Failure is { } f) throw f;
        for (var i = 1; i < ByteReports; i++) progress?.Report(new CheckpointProgress("ingest", "hashing and compressing", i * 1024L));
        progress?.Report(new CheckpointProgress("ingest", "hashing and compressing", 3L << 20));
        progress?.Report(new CheckpointProgress("ingest", "committed", 12_582_912));
        var info = new CheckpointInfo
        {
            FormatVersion = 1,
            Id = "20261122T041809Z-1a2b3c4d",
            Namespace = request.Namespace,
            Workload = "cart",
            Container = request.Container ?? "app",
            NodeName = "node-a",
            Archive = new ArchiveFacts { ContainerName = request.Container ?? "app" },
            Compression = CheckpointCompression.Zstd,
            Digest = "sha256:" + new string('a', 64),
            Size = 4_404_019,
            UncompressedDigest = "sha256:" + new string('b', 64),
            UncompressedSize = 12_582_912,
            CreatedAt = DateTimeOffset.UtcNow,
            CrscVersion = "test",
            ArchivePath = $"/var/lib/crsc/checkpoints/{request.Namespace}/cart/app/20261122T041809Z-1a2b3c4d.tar.zst",
        };
        return new CheckpointOutcome(info, "node-a", "c0ffee0123456789", TimeSpan.FromMilliseconds(840), TimeSpan.FromMilliseconds(1210));
    }
}

/// <summary>The node API's checkpoint endpoints on a real Kestrel Unix socket, driven by the real <c>crsc checkpoint</c> code.</summary>
public sealed class CheckpointCommandTests : IAsyncLifetime
{
    private readonly CliStore _s = new();
    private readonly FakeCheckpointRunner _runner = new();
    private DiskCheckpointStore? _store;
    private WebApplication? _app;
    private string Socket => _s.Dir.Combine("crsc.sock");

    public async Task InitializeAsync()
    {
        _store = _s.Open();
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
        if (_app is not null) await _app.DisposeAsync();
        _store?.Dispose();
        _s.Dispose();
    }

    [Fact]
    public async Task Checkpoint_prints_progress_and_the_archive()
    {
        var (code, output, err) = await CliStore.RunAsync("checkpoint", "shop/cart-0/app", "--timeout", "90s", "--socket", Socket);
        Assert.True(code == ExitCodes.Ok, err);
        var req = Assert.Single(_runner.Requests);
        Assert.Equal(new CheckpointRequest("shop", "cart-0", "app") { Timeout = TimeSpan.FromSeconds(90) }, req);

        Assert.Contains("  [find] container app of pod shop/cart-0 is c0ffee012345", output);
        Assert.Contains("  [checkpoint] the runtime is checkpointing the container", output);
        Assert.Contains("  [ingest] hashing and compressing (3.0 MiB)", output);
        Assert.Contains("  [ingest] committed (12 MiB)", output);
        Assert.Contains("Checkpoint 20261122T041809Z-1a2b3c4d stored", output);
        Assert.Contains("/var/lib/crsc/checkpoints/shop/cart/app/20261122T041809Z-1a2b3c4d.tar.zst", output);
        Assert.Contains("4.2 MiB (4404019 bytes, 12 MiB uncompressed)", output);
        Assert.Contains("sha256:" + new string('a', 64), output);
        Assert.Contains("1210 ms (840 ms in the runtime)", output);
        // progress comes before the result, in order
        Assert.True(output.IndexOf("[find]", StringComparison.Ordinal) < output.IndexOf("[ingest]", StringComparison.Ordinal));
        Assert.True(output.IndexOf("committed", StringComparison.Ordinal) < output.IndexOf("stored", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Checkpoint_json_prints_parseable_lines_ending_with_the_result()
    {
        var (code, output, err) = await CliStore.RunAsync("checkpoint", "shop/cart-0", "--json", "--socket", Socket);
        Assert.True(code == ExitCodes.Ok, err);
        Assert.Null(Assert.Single(_runner.Requests).Container);
        var lines = output.TrimEnd().Split('\n').Select(l => JsonDocument.Parse(l)).ToList();
        Assert.Equal(5, lines.Count);
        Assert.Equal("find", lines[0].RootElement.GetProperty("stage").GetString());
        Assert.Equal(3L << 20, lines[2].RootElement.GetProperty("bytes").GetInt64());
        var result = lines[^1].RootElement.GetProperty("result");
        foreach (var p in new[] { "id", "path", "sizeBytes", "digest", "node", "runtimeMs", "totalMs" })
            Assert.True(result.TryGetProperty(p, out _), p);
        Assert.Equal(4_404_019, result.GetProperty("sizeBytes").GetInt64());
        Assert.Equal(840, result.GetProperty("runtimeMs").GetInt64());
    }

    [Fact]
    public async Task Repeated_byte_progress_is_thinned_in_the_text_output_but_not_in_json()
    {
        _runner.ByteReports = 200;
        var (code, output, err) = await CliStore.RunAsync("checkpoint", "shop/cart-0", "--socket", Socket);
        Assert.True(code == ExitCodes.Ok, err);
        var ingest = output.Split('\n').Count(l => l.Contains("[ingest] hashing and compressing", StringComparison.Ordinal));
        Assert.InRange(ingest, 1, 20);
        Assert.Contains("[ingest] committed (12 MiB)", output);

        (code, output, err) = await CliStore.RunAsync("checkpoint", "shop/cart-0", "--socket", Socket, "--json");
        Assert.True(code == ExitCodes.Ok, err);
        Assert.Equal(200, output.Split('\n').Count(l => l.Contains("hashing and compressing", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Runner_failure_exits_1_with_its_message()
    {
        _runner.Failure = new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed,
            "checkpointing container c0ffee012345 failed: criu dump failed: (00.012) Error (criu/tty.c:1023): tty: Unable to dump");
        var (code, output, err) = await CliStore.RunAsync("checkpoint", "shop/cart-0/app", "--socket", Socket);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("[checkpoint]", output); // the progress before the failure was shown
        Assert.Contains("checkpoint of shop/cart-0/app failed (runtime)", err);
        Assert.Contains("criu dump failed: (00.012) Error (criu/tty.c:1023): tty: Unable to dump", err);
    }

    [Fact]
    public async Task A_failed_dump_shows_the_criu_log_and_an_ambiguous_pod_its_containers()
    {
        var runtime = new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed, "rpc error", "Unknown", "criu failed: type NOTIFY errno 0");
        _runner.Failure = new CheckpointFailedException(runtime, "checkpointing shop/cart-0/app (c0ffee012345) failed: criu failed: type NOTIFY errno 0",
            "c0ffee012345", "(00.004) Error (criu/sk-inet.c:188): inet: Connected TCP socket, consider using --tcp-established option.\n", "/run/containerd/dump.log");
        var (code, _, err) = await CliStore.RunAsync("checkpoint", "shop/cart-0/app", "--socket", Socket);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("failed (runtime): checkpointing shop/cart-0/app (c0ffee012345) failed", err);
        Assert.Contains("--- end of CRIU's log (/run/containerd/dump.log) ---", err);
        Assert.Contains("consider using --tcp-established option.", err);

        _runner.Failure = new ContainerResolutionException("pod shop/cart-0 has 2 app containers; name one", ["app", "proxy"]);
        (code, _, err) = await CliStore.RunAsync("checkpoint", "shop/cart-0", "--socket", Socket);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("failed (not-found): pod shop/cart-0 has 2 app containers", err);
        Assert.Contains("the pod's containers: app, proxy (name one: shop/cart-0/CONTAINER)", err);
    }

    [Fact]
    public async Task Socket_missing_is_a_clear_error()
    {
        var missing = _s.Dir.Combine("nobody", "crsc.sock");
        var (code, _, err) = await CliStore.RunAsync("checkpoint", "shop/cart-0", "--socket", missing);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains($"is the daemon running? (socket {missing})", err);

        var stale = _s.Dir.Combine("stale.sock");
        // a socket file nobody listens on (bound, never listening; .NET removes the file when the socket closes)
        using var bound = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        bound.Bind(new UnixDomainSocketEndPoint(stale));
        (code, _, err) = await CliStore.RunAsync("checkpoint", "shop/cart-0", "--socket", stale);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.True(err.Contains("connection refused"), err);
        Assert.Contains($"is the daemon running? (socket {stale})", err);
        Assert.Empty(_runner.Requests);
    }

    [Theory]
    [InlineData("Shop/cart-0", "namespace 'Shop'")]
    [InlineData("shop/cart_0", "pod 'cart_0'")]
    [InlineData("shop/cart-0/App", "container 'App'")]
    [InlineData("shop", "is not NS/POD")]
    [InlineData("shop/a/b/c", "is not NS/POD")]
    public async Task Bad_names_are_usage_errors_before_the_daemon_is_asked(string target, string expected)
    {
        var (code, _, err) = await CliStore.RunAsync("checkpoint", target, "--socket", Socket);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains(expected, err);
        Assert.Empty(_runner.Requests);
    }

    [Fact]
    public async Task Bad_timeout_is_a_usage_error()
    {
        var (code, _, err) = await CliStore.RunAsync("checkpoint", "shop/cart-0", "--timeout", "soon", "--socket", Socket);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--timeout 'soon'", err);
    }

    [Fact]
    public async Task Timeout_without_a_unit_is_a_usage_error_and_checkpoints_nothing()
    {
        var (code, _, err) = await CliStore.RunAsync("checkpoint", "shop/cart-0", "--timeout", "90", "--socket", Socket);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--timeout '90' has no unit: write 90s, 90m or 90h", err);
        Assert.Empty(_runner.Requests);
    }

    [Fact]
    public async Task The_endpoint_refuses_bad_input_with_400_naming_the_field()
    {
        using var http = UnixHttp();
        foreach (var (body, field) in new[]
                 {
                     ("{\"namespace\":\"shop\",\"pod\":\"Cart\"}", "pod 'Cart'"),
                     ("{\"pod\":\"cart\"}", "namespace is required"),
                     ("{\"namespace\":\"shop\",\"pod\":\"cart\",\"container\":\"../x\"}", "container '../x'"),
                     ("{\"namespace\":\"shop\",\"pod\":\"cart\",\"timeoutSeconds\":0}", "timeoutSeconds"),
                     ("not json", "not a valid checkpoint request"),
                 })
        {
            var response = await http.PostAsync("/v1/checkpoints", new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(400, (int)response.StatusCode);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Contains(field, doc.RootElement.GetProperty("error").GetProperty("message").GetString());
            Assert.Equal("invalid", doc.RootElement.GetProperty("error").GetProperty("kind").GetString());
        }
        Assert.Empty(_runner.Requests);
    }

    [Fact]
    public async Task Interrupting_the_client_cancels_the_checkpoint()
    {
        _runner.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cts = new CancellationTokenSource();
        var o = new StringWriter();
        var run = new CommandLineParser(Commands.Root(), o, new StringWriter())
            .RunAsync(["checkpoint", "shop/cart-0", "--socket", Socket], cts.Token);
        await Eventually.TrueAsync(() => _runner.Requests.Count == 1, "the runner was called");
        cts.Cancel();
        Assert.Equal(ExitCodes.Failure, await run);
        await Eventually.TrueAsync(() => _runner.LastToken.IsCancellationRequested, "the runner's token was cancelled");
    }

    [Fact]
    public async Task List_endpoint_returns_the_store_filtered()
    {
        var a = await CliStore.AddAsync(_store!, "shop", "cart", "app");
        await CliStore.AddAsync(_store!, "default", "counter", "counter");
        using var http = UnixHttp();
        using var doc = JsonDocument.Parse(await http.GetStringAsync("/v1/checkpoints?namespace=shop&workload=cart"));
        var item = Assert.Single(doc.RootElement.GetProperty("items").EnumerateArray());
        Assert.Equal(a.Id, item.GetProperty("id").GetString());
        Assert.Equal(a.Digest, item.GetProperty("digest").GetString());

        using var all = JsonDocument.Parse(await http.GetStringAsync("/v1/checkpoints"));
        Assert.Equal(2, all.RootElement.GetProperty("items").GetArrayLength());

        var bad = await http.GetAsync("/v1/checkpoints?namespace=Shop");
        Assert.Equal(400, (int)bad.StatusCode);
        using (var problem = JsonDocument.Parse(await bad.Content.ReadAsStringAsync()))
            Assert.Contains("namespace 'Shop'", problem.RootElement.GetProperty("error").GetProperty("message").GetString());
    }

    private HttpClient UnixHttp() => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var s = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await s.ConnectAsync(new UnixDomainSocketEndPoint(Socket), ct);
            return new NetworkStream(s, ownsSocket: true);
        },
    })
    { BaseAddress = new Uri("http://crsc") };
}

using System.Diagnostics;
using System.Globalization;
using System.Net;
using Crsc.Controllers.Storage;
using Crsc.Storage;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Xunit.Abstractions;

namespace Crsc.E2E.Tests.Binary;

/// <summary>
/// Issue "Step 8": the AOT daemon as an unprivileged local user meets it. A user made for the test (on a node: any
/// account, a hostNetwork pod) cannot use the node socket, cannot pull any checkpoint image from the image endpoint
/// (not even knowing its name and digest), cannot make a token, and cannot trigger or list checkpoints through any TCP
/// listener — while root, with the node key, can do each of these things, so every refusal is shown to be the rule
/// and not a broken daemon. Needs root (to create the user and run the daemon), as the daemon does.
/// </summary>
[Trait("Category", "E2E")]
public sealed class UnprivilegedUserTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly TempDir _dir = new("crsc-e2e-unpriv-");
    private readonly string _user = "crsc-e2e-" + Guid.NewGuid().ToString("N")[..8];
    private bool _userMade;

    public async Task InitializeAsync()
    {
        // the test's directory may be traversed by anyone: only crsc's own modes keep the user out
        File.SetUnixFileMode(_dir.Path, (UnixFileMode)0b111_101_101);
        var (code, _, err) = await RunAsync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _user]);
        Assert.True(code == 0, $"useradd {_user}: {err}");
        _userMade = true;
    }

    public async Task DisposeAsync()
    {
        if (_userMade) await RunAsync("userdel", [_user]);
        _dir.Dispose();
    }

    private static async Task<(int Code, string Out, string Err)> RunAsync(string file, string[] args, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs a command as the test's user (no supplementary groups, a clean environment but for <paramref name="env"/>).</summary>
    private Task<(int Code, string Out, string Err)> AsUserAsync(string[] command, IDictionary<string, string>? env = null) =>
        RunAsync("setpriv", [$"--reuid={_user}", $"--regid={_user}", "--clear-groups", "--reset-env", "--", .. command], env);

    [Fact]
    public async Task An_unprivileged_user_cannot_use_the_node_socket_pull_a_checkpoint_image_or_checkpoint_through_TCP()
    {
        var socket = _dir.Combine("run", "crsc.sock");
        var metricsPort = LoopbackPorts.Free();
        var imagesPort = LoopbackPorts.Free();
        File.WriteAllText(_dir.Combine("config.yaml"), "");
        var env = new Dictionary<string, string>
        {
            ["CRSC_SOCKET"] = socket,
            ["CRSC_STATE_DIR"] = _dir.Combine("state"),
            ["CRSC_NODE_STATE_DIRECTORY"] = _dir.Combine("node-state"),
            ["CRSC_CHECKPOINT_DIR"] = _dir.Combine("checkpoints"),
            ["CRSC_STAGING_DIR"] = _dir.Combine("staging"),
            ["CRSC_RUNTIME_ENDPOINT"] = "unix://" + _dir.Combine("no-runtime.sock"),
            ["NODE_NAME"] = "e2e-node",
            ["CRSC_CONFIG"] = _dir.Combine("config.yaml"),
            ["CRSC_METRICS_ADDRESS"] = $"127.0.0.1:{metricsPort}",
            ["CRSC_IMAGES_LISTEN"] = $"127.0.0.1:{imagesPort}",
            ["CRSC_LOG_FORMAT"] = "json",
        };
        // a checkpoint in the store, as a schedule would have left it, signed with the node's key (the daemon serves it)
        var nodeKey = Crsc.Storage.Security.NodeKey.LoadOrCreate(Crsc.Storage.Security.NodeKey.PathIn(env["CRSC_STATE_DIR"]), out _);
        CheckpointInfo info;
        using (var store = new DiskCheckpointStore(new DiskCheckpointStoreOptions
               {
                   CheckpointDirectory = env["CRSC_CHECKPOINT_DIR"], StagingDirectory = env["CRSC_STAGING_DIR"], Key = nodeKey,
               }))
        {
            info = await StoreSeed.AddAsync(store, "shop", "cart", "cart");
        }
        var repository = $"crsc/{info.Namespace}/{info.Workload}/{info.Container}";

        using var daemon = Process.Start(PublishedBinary.Start(["daemon"], env))!;
        var stderr = daemon.StandardError.ReadToEndAsync();
        _ = daemon.StandardOutput.ReadToEndAsync();
        try
        {
            using var root = PublishedBinary.UnixHttpClient(socket);
            await Eventually.TrueAsync(async () => daemon.HasExited || (await TryGetAsync(root, "/readyz")).Contains("[+]images healthy"),
                "the daemon serves its socket and images", TimeSpan.FromSeconds(30));
            if (daemon.HasExited) Assert.Fail("the daemon exited: " + await stderr);
            var id = await RunAsync("id", [_user]);
            output.WriteLine($"user: {id.Out.Trim()}");

            // 1. the node socket: root lists checkpoints; the user cannot connect, by curl or by crsc itself
            Assert.Equal(HttpStatusCode.OK, (await root.GetAsync("/v1/checkpoints")).StatusCode);
            var curl = await AsUserAsync(["curl", "-sS", "--max-time", "5", "--unix-socket", socket, "http://localhost/v1/checkpoints"]);
            output.WriteLine($"user curl socket: exit {curl.Code} {curl.Err.Trim()}");
            Assert.NotEqual(0, curl.Code);
            Assert.DoesNotContain(info.Id, curl.Out);
            var post = await AsUserAsync(["curl", "-sS", "--max-time", "5", "--unix-socket", socket, "-X", "POST",
                "-H", "Content-Type: application/json", "-d", "{\"namespace\":\"shop\",\"pod\":\"cart-0\",\"container\":\"cart\"}",
                "http://localhost/v1/checkpoints"]);
            Assert.NotEqual(0, post.Code);
            var cli = await AsUserAsync([PublishedBinary.Path, "checkpoint", "shop/cart-0/cart", "--socket", socket, "--config", env["CRSC_CONFIG"]]);
            output.WriteLine($"user crsc checkpoint: exit {cli.Code} {cli.Err.Trim()}");
            Assert.NotEqual(0, cli.Code);
            Assert.Contains("ermission denied", cli.Err);
            // the node's status (health, runtime verdicts, checkpoint ids) is root's too
            Assert.Equal(HttpStatusCode.OK, (await root.GetAsync("/v1/status")).StatusCode);
            var status = await AsUserAsync([PublishedBinary.Path, "status", "--socket", socket, "--config", env["CRSC_CONFIG"]]);
            output.WriteLine($"user crsc status: exit {status.Code} {status.Err.Trim()}");
            Assert.NotEqual(0, status.Code);
            Assert.Contains("ermission denied", status.Err);
            Assert.DoesNotContain(info.Id, status.Out);

            // 2. the image endpoint: root (with a token from the node key) pulls the layer; the user gets 401 for every
            //    path, even with the exact digest, and cannot make a token
            var layer = await LayerDigestAsync(env, imagesPort, repository, info.Id);
            foreach (var path in new[] { "/v2/", $"/v2/{repository}/tags/list", $"/v2/{repository}/manifests/{info.Id}", $"/v2/{repository}/blobs/{layer}" })
            {
                var r = await AsUserAsync(["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", $"http://127.0.0.1:{imagesPort}{path}"]);
                Assert.True(r.Out == "401", $"user GET {path}: {r.Out} {r.Err}");
                var basic = await AsUserAsync(["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", "-u", "crsc-restore:guess",
                    $"http://127.0.0.1:{imagesPort}{path}"]);
                Assert.True(basic.Out == "401", $"user GET {path} with a guessed password: {basic.Out} {basic.Err}");
            }
            var token = await AsUserAsync([PublishedBinary.Path, "image-token", repository, "--config", env["CRSC_CONFIG"],
                "--state-dir", env["CRSC_STATE_DIR"]]);
            output.WriteLine($"user crsc image-token: exit {token.Code} {token.Err.Trim()}");
            Assert.NotEqual(0, token.Code);
            Assert.DoesNotContain("crsc1.", token.Out);
            var key = await AsUserAsync(["cat", Crsc.Storage.Security.NodeKey.PathIn(env["CRSC_STATE_DIR"])]);
            Assert.NotEqual(0, key.Code);
            var archive = await AsUserAsync(["cat", info.ArchivePath]);
            Assert.NotEqual(0, archive.Code);

            // 3. the TCP metrics listener: metrics for anyone, the checkpoint API for no one
            var metrics = await AsUserAsync(["curl", "-sS", "--max-time", "5", $"http://127.0.0.1:{metricsPort}/metrics"]);
            Assert.Contains("crsc_build_info", metrics.Out);
            foreach (var method in new[] { "GET", "POST" })
            {
                var r = await AsUserAsync(["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", "-X", method,
                    "-H", "Content-Type: application/json", "-d", "{\"namespace\":\"shop\",\"pod\":\"cart-0\",\"container\":\"cart\"}",
                    $"http://127.0.0.1:{metricsPort}/v1/checkpoints"]);
                Assert.True(r.Out == "404", $"user {method} /v1/checkpoints on the metrics port: {r.Out} {r.Err}");
                var statusOnTcp = await AsUserAsync(["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", "-X", method,
                    $"http://127.0.0.1:{metricsPort}/v1/status"]);
                Assert.True(statusOnTcp.Out == "404", $"user {method} /v1/status on the metrics port: {statusOnTcp.Out} {statusOnTcp.Err}");
                var onImages = await AsUserAsync(["curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", "-X", method,
                    $"http://127.0.0.1:{imagesPort}/v1/checkpoints"]);
                Assert.True(onImages.Out == "401", $"user {method} /v1/checkpoints on the image port: {onImages.Out} {onImages.Err}");
            }
            // nothing the user did made a checkpoint
            Assert.Single(new ReadOnlyCheckpointStore(env["CRSC_CHECKPOINT_DIR"]).List());
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
            await daemon.WaitForExitAsync();
            output.WriteLine("daemon stderr: " + await stderr);
        }
    }

    /// <summary>
    /// The interceptor's control socket (hold, release, status) answers only its owner: the AOT sidecar run as root
    /// makes it 0600, the user cannot connect to it — so cannot hold a pod's traffic — while root can.
    /// </summary>
    [Fact]
    public async Task An_unprivileged_user_cannot_hold_traffic_through_the_interceptors_control_socket()
    {
        var control = _dir.Combine("control.sock");
        var listen = LoopbackPorts.Free();
        using var sidecar = Process.Start(PublishedBinary.Start(["interceptor", "--listen", $"127.0.0.1:{listen}", "--upstream", "127.0.0.1:1",
            "--control-socket", control]))!;
        _ = sidecar.StandardOutput.ReadToEndAsync();
        var stderr = sidecar.StandardError.ReadToEndAsync();
        try
        {
            await Eventually.TrueAsync(() => sidecar.HasExited || File.Exists(control), "the sidecar serves its control socket", TimeSpan.FromSeconds(30));
            if (sidecar.HasExited) Assert.Fail("the sidecar exited: " + await stderr);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(control));

            var user = await AsUserAsync(["curl", "-sS", "--max-time", "5", "--unix-socket", control, "--data-binary", "hold\n", "http://localhost/"]);
            output.WriteLine($"user curl control socket: exit {user.Code} {user.Err.Trim()}");
            // curl says only that it could not connect; the socket is there and answers root (below): the mode refused it
            Assert.Equal(7, user.Code);
            Assert.Contains("\"held\":false", await AskAsync(control, "status"));
            // the rule, not a dead socket: root holds and releases
            Assert.StartsWith("ok {\"held\":true", await AskAsync(control, "hold by root"));
            Assert.StartsWith("ok {\"held\":false", await AskAsync(control, "release"));
        }
        finally
        {
            if (!sidecar.HasExited) sidecar.Kill();
            await sidecar.WaitForExitAsync();
        }
    }

    private static async Task<string> AskAsync(string socket, string line)
    {
        using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream,
            System.Net.Sockets.ProtocolType.Unspecified);
        await s.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(socket));
        await s.SendAsync(System.Text.Encoding.UTF8.GetBytes(line + "\n"));
        var buffer = new byte[4096];
        return System.Text.Encoding.UTF8.GetString(buffer, 0, await s.ReceiveAsync(buffer));
    }

    private static async Task<string> TryGetAsync(HttpClient http, string path)
    {
        try { return await http.GetStringAsync(path); }
        catch (HttpRequestException) { return ""; }
    }

    /// <summary>As root: a token from the node key, then the image's layer digest from its manifest (and the layer pulled).</summary>
    private async Task<string> LayerDigestAsync(Dictionary<string, string> env, int port, string repository, string id)
    {
        var (code, stdout, stderr) = await PublishedBinary.RunAsync(["image-token", repository], env);
        Assert.True(code == 0, $"root crsc image-token: {stderr}");
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", stdout.Trim());
        using var manifest = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"/v2/{repository}/manifests/{id}"));
        var layer = manifest.RootElement.GetProperty("layers")[0].GetProperty("digest").GetString()!;
        var bytes = await http.GetByteArrayAsync($"/v2/{repository}/blobs/{layer}");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"root pulled layer {layer}: {bytes.Length} bytes"));
        Assert.NotEmpty(bytes);
        return layer;
    }
}

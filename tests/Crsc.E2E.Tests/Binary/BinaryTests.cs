using System.Diagnostics;
using System.Text.Json;
using Crsc.Testing;
using Xunit.Abstractions;

namespace Crsc.E2E.Tests.Binary;

/// <summary>The published Native AOT binary, run as a user or systemd would run it.</summary>
[Trait("Category", "E2E")]
public sealed class BinaryTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new("crsc-e2e-");

    public void Dispose() => _dir.Dispose();

    private Dictionary<string, string> DaemonEnv(string socket)
    {
        // an explicit, empty configuration file: defaults, whatever /etc/crsc holds on this machine
        File.WriteAllText(_dir.Combine("config.yaml"), "");
        return DaemonEnvFor(socket);
    }

    private Dictionary<string, string> DaemonEnvFor(string socket) => new()
    {
        ["CRSC_SOCKET"] = socket,
        ["CRSC_STATE_DIR"] = _dir.Combine("state"),
        ["CRSC_NODE_STATE_DIRECTORY"] = _dir.Combine("node-state"),
        ["CRSC_CHECKPOINT_DIR"] = _dir.Combine("checkpoints"),
        ["CRSC_STAGING_DIR"] = _dir.Combine("staging"),
        ["CRSC_RUNTIME_ENDPOINT"] = "unix://" + _dir.Combine("no-runtime.sock"),
        ["NODE_NAME"] = "e2e-node",
        ["CRSC_CONFIG"] = _dir.Combine("config.yaml"),
    };

    [Fact]
    public async Task Version_reports_the_aot_flavour_and_the_commit()
    {
        var (code, stdout, stderr) = await PublishedBinary.RunAsync(["version"]);
        Assert.True(code == 0, stderr);
        Assert.Matches(@"^crsc \d+\.\d+\.\d+ \(commit [0-9a-f]{7,12}, aot, ", stdout);
    }

    [Fact]
    public async Task Manifests_are_embedded_in_the_aot_binary()
    {
        var (code, stdout, stderr) = await PublishedBinary.RunAsync(["manifests", "all"]);
        Assert.True(code == 0, stderr);
        foreach (var kind in new[] { "checkpointschedules.crsc.io", "containercheckpoints.crsc.io", "containercheckpointcontents.crsc.io", "restores.crsc.io" })
            Assert.Contains("name: " + kind, stdout);
        Assert.Contains("kind: ClusterRole", stdout);
    }

    [Fact]
    public async Task Static_pod_manifest_is_embedded_in_the_aot_binary()
    {
        var (code, stdout, stderr) = await PublishedBinary.RunAsync(["manifests", "static-pod"]);
        Assert.True(code == 0, stderr);
        Assert.Equal(File.ReadAllText(Path.Combine(PublishedBinary.RepoRoot, "packaging", "kubernetes", "static-pod.yaml")), stdout);
    }

    [Fact]
    public async Task Build_image_in_two_processes_gives_the_same_digest_and_labels_the_image_with_this_binarys_commit()
    {
        // two processes: nothing of a run (process id, clock, scratch names) may reach the bytes
        var rootfs = Directory.CreateDirectory(_dir.Combine("rootfs", "etc")).Parent!.FullName;
        File.WriteAllText(_dir.Combine("rootfs", "etc", "passwd"), "root:x:0:0:root:/root:/usr/sbin/nologin\n");
        var runs = new List<string>();
        foreach (var tarball in new[] { _dir.Combine("a", "crsc.oci.tar"), _dir.Combine("b", "crsc.oci.tar") })
        {
            var (code, stdout, stderr) = await PublishedBinary.RunAsync(
                ["build-image", "--rootfs", rootfs, "--output", tarball, "--created", "1780000000"], timeout: TimeSpan.FromMinutes(2));
            Assert.True(code == 0, stderr);
            output.WriteLine(stdout);
            runs.Add(stdout.Split('\n').Single(l => l.StartsWith("digest ", StringComparison.Ordinal)));
            await Task.Delay(1100);
        }
        Assert.Equal(runs[0], runs[1]);
        Assert.Equal(File.ReadAllBytes(_dir.Combine("a", "crsc.oci.tar")), File.ReadAllBytes(_dir.Combine("b", "crsc.oci.tar")));

        // without --binary the AOT binary packs itself, and so can state its version and commit
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using (var reader = new System.Formats.Tar.TarReader(File.OpenRead(_dir.Combine("a", "crsc.oci.tar"))))
            while (reader.GetNextEntry() is { } e)
            {
                if (e.DataStream is null || e.Length > 1 << 20) continue;
                var m = new MemoryStream();
                e.DataStream.CopyTo(m);
                files[e.Name] = m.ToArray();
            }
        var manifestDigest = runs[0].Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        using var manifest = JsonDocument.Parse(files["blobs/sha256/" + manifestDigest["sha256:".Length..]]);
        var configDigest = manifest.RootElement.GetProperty("config").GetProperty("digest").GetString()!;
        using var config = JsonDocument.Parse(files["blobs/sha256/" + configDigest["sha256:".Length..]]);
        var labels = config.RootElement.GetProperty("config").GetProperty("Labels");
        var version = (await PublishedBinary.RunAsync(["version"])).Out; // crsc 0.1.0 (commit abc, aot, …)
        Assert.Contains($"(commit {labels.GetProperty("org.opencontainers.image.revision").GetString()}, aot", version);
        Assert.StartsWith($"crsc {labels.GetProperty("org.opencontainers.image.version").GetString()} ", version);
    }

    [Fact]
    public async Task Preflight_runs_in_the_aot_binary_and_fails_naming_a_missing_runtime_socket()
    {
        // statx, programs and JSON under Native AOT; a socket that cannot exist makes the result certain
        var (code, stdout, stderr) = await PublishedBinary.RunAsync(
            ["preflight", "--json", "--runtime-endpoint", "unix://" + _dir.Combine("no-runtime.sock"), "--state-dir", _dir.Combine("state")]);
        Assert.True(code == 1, stderr + stdout);
        using var doc = System.Text.Json.JsonDocument.Parse(stdout);
        Assert.False(doc.RootElement.GetProperty("ok").GetBoolean());
        var rows = doc.RootElement.GetProperty("checks").EnumerateArray()
            .ToDictionary(r => r.GetProperty("check").GetString()!, r => r.GetProperty("status").GetString());
        Assert.Equal("FAIL", rows["runtime socket"]);
        Assert.Equal("OK", rows["kernel"]);  // /proc/sys/kernel/ns_last_pid, read through statx
        Assert.Contains(rows["stateDir"], new[] { "OK", "FAIL" });
        Assert.Contains("criu", rows.Keys);
        Assert.Contains("cgroups", rows.Keys);
    }

    [Fact]
    public async Task Unknown_verbs_and_flags_exit_2()
    {
        Assert.Equal(2, (await PublishedBinary.RunAsync(["frobnicate"])).Code);
        var (code, _, err) = await PublishedBinary.RunAsync(["daemon", "--no-such-flag"]);
        Assert.Equal(2, code);
        Assert.Contains("--no-such-flag", err);
    }

    [Fact]
    public async Task Config_check_accepts_a_good_file_and_names_the_bad_key_of_a_bad_one()
    {
        var good = _dir.Combine("good.yaml");
        File.WriteAllText(good, "nodeName: worker-1\nruntime:\n  endpoint: unix:///run/containerd/containerd.sock\n");
        var ok = await PublishedBinary.RunAsync(["config", "check", good]);
        Assert.True(ok.Code == 0, ok.Err);
        Assert.Contains("worker-1", ok.Out);

        var bad = _dir.Combine("bad.yaml");
        File.WriteAllText(bad, "runtime:\n  checkpointVia: podman\n");
        var (code, _, err) = await PublishedBinary.RunAsync(["config", "check", bad]);
        Assert.Equal(78, code);
        Assert.Contains("runtime.checkpointVia", err);
        Assert.Contains("podman", err);
    }

    [Fact]
    public async Task Daemon_refuses_to_start_on_invalid_configuration_with_exit_78()
    {
        var socket = _dir.Combine("crsc.sock");
        using var notify = new NotifySocket(_dir.Combine("notify.sock"));
        var env = DaemonEnv(socket);
        env["CRSC_CHECKPOINT_VIA"] = "telepathy";
        env["NOTIFY_SOCKET"] = notify.Path;
        var (code, _, err) = await PublishedBinary.RunAsync(["daemon"], env);
        Assert.Equal(78, code);
        Assert.Contains("CRSC_CHECKPOINT_VIA", err);
        Assert.DoesNotContain("READY=1", notify.Lines);
        Assert.False(File.Exists(socket));
    }

    [Fact]
    public async Task Daemon_reaches_READY_serves_readyz_on_its_socket_and_stops_cleanly_on_SIGTERM()
    {
        var socket = _dir.Combine("run", "crsc.sock");
        using var notify = new NotifySocket(_dir.Combine("notify.sock"));
        var env = DaemonEnv(socket);
        env["NOTIFY_SOCKET"] = notify.Path;
        env["CRSC_LOG_FORMAT"] = "json";

        using var daemon = Process.Start(PublishedBinary.Start(["daemon"], env))!;
        var stdout = daemon.StandardOutput.ReadToEndAsync();
        var stderr = daemon.StandardError.ReadToEndAsync();
        try
        {
            await Eventually.TrueAsync(() => notify.Lines.Contains("READY=1") || daemon.HasExited, "the daemon sends READY=1");
            if (daemon.HasExited) Assert.Fail("daemon exited early: " + await stderr); // stderr ends only when it exits
            Assert.Contains(notify.Lines, l => l.StartsWith("STATUS=", StringComparison.Ordinal) && l.Contains("degraded"));
            // READY's own STATUS= already names the runtime (it waits, bounded, for the first probe)
            var readyMessage = notify.Messages.Single(m => m.Split('\n').Contains("READY=1"));
            Assert.Contains("runtime: unreachable", readyMessage);

            // the node socket is root's only
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(socket)!));

            using var http = PublishedBinary.UnixHttpClient(socket);
            var ready = await http.GetAsync("/readyz");
            var body = await ready.Content.ReadAsStringAsync();
            Assert.True(ready.IsSuccessStatusCode, body);
            Assert.StartsWith("ready (degraded)", body);
            Assert.Contains("[~]kube degraded: no API server configured", body);
            Assert.Equal("ok\n", await http.GetStringAsync("/healthz"));
            var metrics = await http.GetStringAsync("/metrics");
            Assert.Contains("crsc_build_info{version=\"", metrics);
            Assert.Contains("flavour=\"aot\"} 1", metrics);
            Assert.Matches(@"process_resident_memory_bytes \d+", metrics);
            Assert.Contains("crsc_uptime_seconds ", metrics);

            // SIGTERM: STOPPING=1, exit 0, socket removed
            using (var kill = Process.Start("kill", ["-TERM", daemon.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(25));
            await daemon.WaitForExitAsync(cts.Token);
            Assert.Equal(0, daemon.ExitCode);
            await Eventually.TrueAsync(() => notify.Lines.Contains("STOPPING=1"), "the daemon sends STOPPING=1");
            Assert.False(File.Exists(socket), "the socket is removed on a clean stop");

            // JSON lines on stdout when not on a terminal and not under systemd
            var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.NotEmpty(lines);
            foreach (var line in lines)
            {
                using var doc = JsonDocument.Parse(line);
                Assert.True(doc.RootElement.TryGetProperty("msg", out _), line);
                Assert.True(doc.RootElement.TryGetProperty("level", out _), line);
            }
            Assert.Contains(lines, l => l.Contains("started on node e2e-node", StringComparison.Ordinal));
        }
        finally
        {
            if (!daemon.HasExited) daemon.Kill();
            await daemon.WaitForExitAsync();
            output.WriteLine("stderr: " + await stderr);
        }
    }

    [Fact]
    public async Task A_second_daemon_on_the_same_socket_is_refused_and_the_first_keeps_serving()
    {
        var socket = _dir.Combine("crsc.sock");
        using var notify = new NotifySocket(_dir.Combine("notify.sock"));
        var env = DaemonEnv(socket);
        env["NOTIFY_SOCKET"] = notify.Path;
        using var first = Process.Start(PublishedBinary.Start(["daemon"], env))!;
        _ = first.StandardOutput.ReadToEndAsync();
        _ = first.StandardError.ReadToEndAsync();
        try
        {
            await Eventually.TrueAsync(() => notify.Lines.Contains("READY=1"), "first daemon READY");
            var env2 = DaemonEnv(socket);
            var (code, _, err) = await PublishedBinary.RunAsync(["daemon"], env2);
            Assert.Equal(1, code);
            Assert.Contains("another crsc daemon is already answering on " + socket, err);
            using var http = PublishedBinary.UnixHttpClient(socket);
            Assert.Equal("ok\n", await http.GetStringAsync("/healthz"));
        }
        finally
        {
            first.Kill();
        }
    }

    [Fact]
    public async Task A_stale_socket_left_by_a_killed_daemon_is_replaced()
    {
        var socket = _dir.Combine("crsc.sock");
        using var notify = new NotifySocket(_dir.Combine("notify.sock"));
        var env = DaemonEnv(socket);
        env["NOTIFY_SOCKET"] = notify.Path;
        using (var crashed = Process.Start(PublishedBinary.Start(["daemon"], env))!)
        {
            _ = crashed.StandardOutput.ReadToEndAsync();
            _ = crashed.StandardError.ReadToEndAsync();
            await Eventually.TrueAsync(() => notify.Lines.Contains("READY=1"), "first daemon READY");
            crashed.Kill(); // SIGKILL: no cleanup, the socket file stays behind
            await crashed.WaitForExitAsync();
        }
        Assert.True(File.Exists(socket), "a killed daemon leaves its socket file");
        var readies = notify.Lines.Count(l => l == "READY=1");

        using var daemon = Process.Start(PublishedBinary.Start(["daemon"], env))!;
        _ = daemon.StandardOutput.ReadToEndAsync();
        var err = daemon.StandardError.ReadToEndAsync();
        try
        {
            await Eventually.TrueAsync(() => notify.Lines.Count(l => l == "READY=1") > readies || daemon.HasExited, "second daemon READY over the stale socket");
            if (daemon.HasExited) Assert.Fail("second daemon exited: " + await err); // stderr ends only when it exits
            using var http = PublishedBinary.UnixHttpClient(socket);
            Assert.Equal("ok\n", await http.GetStringAsync("/healthz"));
        }
        finally { daemon.Kill(); }
    }
}

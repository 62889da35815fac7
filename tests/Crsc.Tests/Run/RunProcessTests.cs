using Crsc.Run;
using Crsc.Testing;

namespace Crsc.Tests.Run;

/// <summary><c>crsc run</c> as a process: the real binary, a fake criu, real signals.</summary>
public sealed class RunProcessTests
{
    // the workload: says it is ready, then idles in short sleeps so its traps run promptly
    private const string Idle = "echo $$ > ready; while :; do sleep 0.05; done";

    private static Task Ready(RunHarness h) =>
        Eventually.TrueAsync(() => File.Exists(Path.Combine(h.Root, "ready")) && File.ReadAllText(Path.Combine(h.Root, "ready")).Trim().Length > 0, "the workload started");

    [Fact]
    public async Task The_child_runs_in_its_own_session_without_the_descriptors_crsc_inherited()
    {
        using var h = new RunHarness();
        // ls's own descriptors: 0-2 and 3 (the directory it reads); the 9 sh gave crsc must not be there
        using var run = h.Start("sh", "-c", "ls /proc/self/fd > fds; cut -d' ' -f6 /proc/$$/stat > sid; echo $$ > pid; exit 0");
        var (code, _, err) = await run.ExitAsync();

        Assert.True(code == 0, err);
        Assert.Equal(["0", "1", "2", "3"], File.ReadAllLines(Path.Combine(h.Root, "fds")).Order());
        Assert.Equal(File.ReadAllText(Path.Combine(h.Root, "pid")).Trim(), File.ReadAllText(Path.Combine(h.Root, "sid")).Trim());
    }

    [Theory]
    [InlineData("USR1")]
    [InlineData("USR2")]
    [InlineData("HUP")]
    [InlineData("QUIT")]
    public async Task A_signal_is_passed_on_to_the_child(string signal)
    {
        using var h = new RunHarness();
        using var run = h.Start("sh", "-c", $"trap 'echo {signal} > got; exit 9' {signal}; {Idle}");
        await Ready(h);
        run.Signal(signal);
        var (code, _, err) = await run.ExitAsync();

        Assert.True(code == 9, err);
        Assert.Equal(signal, File.ReadAllText(Path.Combine(h.Root, "got")).Trim());
    }

    [Fact]
    public async Task A_child_ended_by_a_signal_gives_128_plus_the_signal()
    {
        using var h = new RunHarness();
        using var run = h.Start("sh", "-c", Idle);
        await Ready(h);
        run.Signal("INT");
        var (code, _, err) = await run.ExitAsync();

        Assert.Equal(130, code);
        Assert.Contains("crsc run: sh -c", err);
        Assert.Contains("signal 2", err);
    }

    [Fact]
    public async Task The_childs_exit_code_is_crsc_runs()
    {
        using var h = new RunHarness();
        using var run = h.Start("sh", "-c", "echo hello; exit 42");
        var (code, output, _) = await run.ExitAsync();

        Assert.Equal(42, code);
        Assert.Equal("hello", output.Trim());
    }

    [Fact]
    public async Task A_command_that_is_not_there_exits_127_with_a_line_that_names_it()
    {
        using var h = new RunHarness();
        using var run = h.Start("no-such-command-anywhere");
        var (code, _, err) = await run.ExitAsync();

        Assert.Equal(127, code);
        Assert.Contains("crsc run: cannot start no-such-command-anywhere", err);
    }

    [Fact]
    public async Task Sigterm_while_the_node_is_going_away_checkpoints_and_exits_0()
    {
        using var h = new RunHarness(extraConfig: "additionalPaths: [{0}/data]\ninotifyIncompatiblePaths: [{0}/watched]");
        // the harness's extraConfig is a template for the data paths: rewrite them to this test's directory
        File.WriteAllText(h.ConfigFile, File.ReadAllText(h.ConfigFile).Replace("{0}", h.Root));
        Directory.CreateDirectory(Path.Combine(h.Root, "data", "sub"));
        File.WriteAllText(Path.Combine(h.Root, "data", "sub", "state.db"), "rows");
        File.SetUnixFileMode(Path.Combine(h.Root, "data", "sub", "state.db"), (UnixFileMode)0b110_100_100);
        File.WriteAllText(Path.Combine(h.Root, "watched"), "inotify");
        h.NodeGoingAway(true, "Drain");

        using var run = h.Start("sh", "-c", Idle);
        await Ready(h);
        var pid = File.ReadAllText(Path.Combine(h.Root, "ready")).Trim();
        run.Signal("TERM");
        var (code, _, err) = await run.ExitAsync();

        Assert.True(code == 0, err);
        Assert.Contains("node node-a is going away (reason Drain: cordoned): checkpointing", err);
        Assert.Contains("checkpoint written to " + h.CheckpointDir, err);
        var argv = h.CriuArgv("dump")!;
        Assert.Equal(["dump", "--tree", pid, "--images-dir"], argv[..4]);
        Assert.Matches(@"/\.checkpoint\.tmp-[0-9a-f]+/images$", argv[4]);
        Assert.StartsWith(h.ImageDir + "/", argv[4]);
        Assert.Equal(["--log-file", Path.Combine(h.ImageDir, "criu-dump.log"), "-v4", "--tcp-established", "--file-locks", "--ext-unix-sk"], argv[5..]);
        Assert.DoesNotContain("--shell-job", argv);

        var manifest = RunManifest.Parse(File.ReadAllBytes(Path.Combine(h.CheckpointDir, "manifest.json")));
        Assert.Null(CheckpointDirectory.Verify(h.CheckpointDir, manifest));
        Assert.Equal(["sh", "-c", Idle], manifest.CommandLine);
        Assert.Equal("Drain", manifest.Reason);
        Assert.Equal("node-a", manifest.Node);
        Assert.Contains(manifest.Files, f => f.Path == $"images/core-{pid}.img");
        Assert.Contains(manifest.Files, f => f.Path == "images/pages-1.img" && f.Size == 70000);
        var copied = Assert.Single(manifest.Paths);
        Assert.Equal(Path.Combine(h.Root, "data"), copied.Source);
        Assert.Contains(manifest.Files, f => f.Path == copied.Entry + "/sub/state.db" && f.Mode == 0b110_100_100);
        // process memory: private files and directories
        foreach (var f in Directory.EnumerateFiles(h.CheckpointDir, "*", SearchOption.AllDirectories))
            Assert.Equal((UnixFileMode)0b110_000_000, File.GetUnixFileMode(f));
        foreach (var d in Directory.EnumerateDirectories(h.CheckpointDir, "*", SearchOption.AllDirectories).Append(h.CheckpointDir))
            Assert.Equal((UnixFileMode)0b111_000_000, File.GetUnixFileMode(d));
        Assert.False(File.Exists(Path.Combine(h.Root, "watched")), "inotifyIncompatiblePaths are removed before the dump");
        Assert.Empty(Directory.GetDirectories(h.ImageDir, ".checkpoint.tmp-*"));
    }

    [Fact]
    public async Task Sigterm_while_the_node_stays_passes_the_sigterm_on_and_takes_no_checkpoint()
    {
        using var h = new RunHarness();
        h.NodeGoingAway(false);
        using var run = h.Start("sh", "-c", $"trap 'exit 7' TERM; {Idle}");
        await Ready(h);
        run.Signal("TERM");
        var (code, _, err) = await run.ExitAsync();

        Assert.True(code == 7, err);
        Assert.Contains("SIGTERM: node node-a is not going away", err);
        Assert.Contains("stopping sh -c", err);
        Assert.Null(h.CriuArgv("dump"));
        Assert.False(Directory.Exists(h.CheckpointDir));
    }

    [Fact]
    public async Task Sigterm_without_a_node_state_file_is_a_plain_stop_that_says_why()
    {
        using var h = new RunHarness();
        using var run = h.Start("sh", "-c", Idle);
        await Ready(h);
        run.Signal("TERM");
        var (code, _, err) = await run.ExitAsync();

        Assert.Equal(143, code);
        Assert.Contains($"node-state file {h.StateFile} does not exist", err);
        Assert.Contains("without a checkpoint", err);
        Assert.Null(h.CriuArgv("dump"));
    }

    [Theory]
    [InlineData(FakeMode.Fail, "criu dump exited with code 1")]
    [InlineData(FakeMode.Hang, "criu dump did not finish in 2 s (dumpTimeoutSeconds)")]
    public async Task A_failed_dump_stops_the_child_exits_1_and_leaves_no_checkpoint(FakeMode mode, string logged)
    {
        using var h = new RunHarness(dump: mode);
        h.NodeGoingAway(true);
        using var run = h.Start("sh", "-c", $"trap 'echo term > got; exit 0' TERM; {Idle}");
        await Ready(h);
        run.Signal("TERM");
        var (code, _, err) = await run.ExitAsync();

        Assert.True(code == 1, err);
        Assert.Contains("checkpoint failed: " + logged, err);
        Assert.Equal("term", File.ReadAllText(Path.Combine(h.Root, "got")).Trim());
        Assert.False(Directory.Exists(h.CheckpointDir));
        Assert.Empty(Directory.GetFileSystemEntries(h.ImageDir, ".checkpoint.tmp-*"));
    }

    [Fact]
    public async Task A_checkpoint_is_restored_by_the_next_start_of_the_same_command_and_then_removed()
    {
        using var h = new RunHarness();
        h.NodeGoingAway(true);
        using (var first = h.Start("sh", "-c", Idle))
        {
            await Ready(h);
            first.Signal("TERM");
            Assert.Equal(0, (await first.ExitAsync()).Code);
        }
        var manifest = RunManifest.Parse(File.ReadAllBytes(Path.Combine(h.CheckpointDir, "manifest.json")));

        using var second = h.Start("sh", "-c", Idle);
        var (code, output, err) = await second.ExitAsync();

        // the fake's "restored process" ends with 5 after a while: crsc run waited for it and exits with its code
        Assert.True(code == 5, err);
        Assert.Contains("restored-process", output);
        Assert.Contains("crsc run: restoring sh -c", err);
        Assert.Contains("(node node-a, reason Drain)", err);
        Assert.Matches(@"restored sh -c .* as pid \d+", err);
        var argv = h.CriuArgv("restore")!;
        Assert.Equal(
            ["restore", "--images-dir", Path.Combine(h.CheckpointDir, "images"), "--log-file", Path.Combine(h.ImageDir, "criu-restore.log"), "-v4",
             "--restore-detached", "--restore-sibling", "--pidfile", Path.Combine(h.ImageDir, "criu-restore.pid"),
             "--tcp-established", "--file-locks", "--ext-unix-sk"],
            argv.TakeWhile(a => a != "--inherit-fd"));
        Assert.DoesNotContain("--shell-job", argv);
        // the test's stdout and stderr are pipes: the restored process gets ours for them
        Assert.StartsWith("pipe:[", manifest.Stdio[1]);
        Assert.Contains($"fd[1]:{manifest.Stdio[1]}", argv);
        Assert.Contains($"fd[2]:{manifest.Stdio[2]}", argv);
        Assert.False(Directory.Exists(h.CheckpointDir), "a restored checkpoint is removed");
        Assert.Empty(Directory.GetFileSystemEntries(h.ImageDir, ".checkpoint.tmp-*"));
    }

    [Fact]
    public async Task Additional_paths_are_copied_back_before_the_restore()
    {
        using var h = new RunHarness(extraConfig: "additionalPaths: [{0}/data]");
        File.WriteAllText(h.ConfigFile, File.ReadAllText(h.ConfigFile).Replace("{0}", h.Root));
        Directory.CreateDirectory(Path.Combine(h.Root, "data"));
        File.WriteAllText(Path.Combine(h.Root, "data", "journal"), "before the node went away");
        File.SetUnixFileMode(Path.Combine(h.Root, "data", "journal"), (UnixFileMode)0b110_100_000);
        h.NodeGoingAway(true);
        using (var first = h.Start("sh", "-c", Idle))
        {
            await Ready(h);
            first.Signal("TERM");
            Assert.Equal(0, (await first.ExitAsync()).Code);
        }
        // the new pod's volume does not have it (or has another version)
        Directory.Delete(Path.Combine(h.Root, "data"), recursive: true);

        using var second = h.Start("sh", "-c", Idle);
        var (code, _, err) = await second.ExitAsync();

        Assert.True(code == 5, err);
        Assert.Equal("before the node went away", File.ReadAllText(Path.Combine(h.Root, "data", "journal")));
        Assert.Equal((UnixFileMode)0b110_100_000, File.GetUnixFileMode(Path.Combine(h.Root, "data", "journal")));
    }

    [Fact]
    public async Task A_failed_restore_starts_the_command_fresh_and_moves_the_checkpoint_aside()
    {
        using var h = new RunHarness(restore: FakeMode.Fail);
        h.NodeGoingAway(true);
        using (var first = h.Start("sh", "-c", "echo $$ > ready; while :; do sleep 0.05; done"))
        {
            await Ready(h);
            first.Signal("TERM");
            Assert.Equal(0, (await first.ExitAsync()).Code);
        }
        File.Delete(Path.Combine(h.Root, "ready"));

        using var second = h.Start("sh", "-c", "echo $$ > ready; while :; do sleep 0.05; done");
        await Ready(h);
        second.Signal("INT");
        var (code, _, err) = await second.ExitAsync();

        Assert.True(code == 130, err);
        Assert.Contains($"criu restore failed (exit 1); see {h.ImageDir}/criu-restore.log; starting fresh", err);
        Assert.False(Directory.Exists(h.CheckpointDir));
        Assert.True(Directory.Exists(Path.Combine(h.ImageDir, "checkpoint.rejected")));
    }

    public enum Damage { Digest, MissingFile, Symlink, ExtraFile, NoManifest, OtherCommand }

    [Theory]
    [InlineData(Damage.Digest, "images/pages-1.img does not match its SHA-256")]
    [InlineData(Damage.MissingFile, "images/pages-1.img is missing")]
    [InlineData(Damage.Symlink, "images/link.img is a symlink")]
    [InlineData(Damage.ExtraFile, "images/extra.img is not listed in the manifest")]
    [InlineData(Damage.NoManifest, "it has no manifest.json (a partial checkpoint)")]
    [InlineData(Damage.OtherCommand, "it was taken of another command line")]
    public async Task A_damaged_partial_or_foreign_checkpoint_is_logged_moved_aside_and_the_command_starts_fresh(Damage damage, string why)
    {
        using var h = new RunHarness();
        Seal(h, ["sh", "-c", damage == Damage.OtherCommand ? "another" : "echo cold; exit 4"]);
        var images = Path.Combine(h.CheckpointDir, "images");
        switch (damage)
        {
            case Damage.Digest:
                var bytes = File.ReadAllBytes(Path.Combine(images, "pages-1.img"));
                bytes[100] ^= 0xff;
                File.WriteAllBytes(Path.Combine(images, "pages-1.img"), bytes);
                break;
            case Damage.MissingFile: File.Delete(Path.Combine(images, "pages-1.img")); break;
            case Damage.Symlink: File.CreateSymbolicLink(Path.Combine(images, "link.img"), "/etc/passwd"); break;
            case Damage.ExtraFile: File.WriteAllText(Path.Combine(images, "extra.img"), "x"); break;
            case Damage.NoManifest: File.Delete(Path.Combine(h.CheckpointDir, "manifest.json")); break;
        }

        using var run = h.Start("sh", "-c", "echo cold; exit 4");
        var (code, output, err) = await run.ExitAsync();

        Assert.True(code == 4, err);
        Assert.Equal("cold", output.Trim());
        Assert.Contains($"crsc run: not restoring the checkpoint in {h.CheckpointDir}: {why}", err);
        Assert.Contains("starting fresh", err);
        Assert.Null(h.CriuArgv("restore"));
        Assert.False(Directory.Exists(h.CheckpointDir));
        Assert.True(Directory.Exists(Path.Combine(h.ImageDir, "checkpoint.rejected")));
    }

    [Fact]
    public async Task An_unfinished_dump_left_by_a_kill_is_removed_and_the_command_starts_fresh()
    {
        using var h = new RunHarness();
        var leftover = Path.Combine(h.ImageDir, ".checkpoint.tmp-0123456789ab");
        Directory.CreateDirectory(Path.Combine(leftover, "images"));
        File.WriteAllText(Path.Combine(leftover, "images", "pages-1.img"), "half");
        File.WriteAllText(Path.Combine(h.ImageDir, "not-ours"), "kept");

        using var run = h.Start("sh", "-c", "echo cold; exit 0");
        var (code, output, err) = await run.ExitAsync();

        Assert.True(code == 0, err);
        Assert.Equal("cold", output.Trim());
        Assert.Contains($"crsc run: removed {leftover}: a checkpoint that was not finished", err);
        Assert.False(Directory.Exists(leftover));
        Assert.Equal("kept", File.ReadAllText(Path.Combine(h.ImageDir, "not-ours")));
        Assert.Null(h.CriuArgv("restore"));
    }

    [Fact]
    public async Task A_configuration_error_names_the_key_and_exits_2()
    {
        using var h = new RunHarness(extraConfig: "imageDirr: /tmp/typo");
        using var run = h.Start("true");
        var (code, _, err) = await run.ExitAsync();

        Assert.Equal(2, code);
        Assert.Contains("imageDirr (line 5): is not a known key", err);
        Assert.StartsWith("crsc run: ", err);
    }

    [Fact]
    public async Task In_a_pid_namespace_of_its_own_the_workload_starts_above_the_pids_a_restore_needs_for_itself()
    {
        using var h = new RunHarness();
        var psi = new System.Diagnostics.ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["--pid", "--fork", "--mount-proc", RunHarness.Binary, "run", "--config", h.ConfigFile, "--", "sh", "-c", "echo $$"])
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var err = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();

        Assert.True(p.ExitCode == 0, await err);
        Assert.True(int.Parse((await output).Trim(), System.Globalization.CultureInfo.InvariantCulture) > PidFloor.Floor, await output);
    }

    [Fact]
    public async Task Check_passes_as_root_here_and_tells_an_unprivileged_user_what_to_add_to_the_pod_spec()
    {
        using var h = new RunHarness();
        h.NodeGoingAway(false);

        var (code, output, err) = await CheckAsync(h, asNobody: false);
        Assert.True(code == 0, output + err);
        Assert.Contains("Version: 4.2", output);
        Assert.Contains("Looks good.", output);
        Assert.Null(h.CriuArgv("dump"));

        // nobody: no capabilities, imageDir not writable (the harness's files readable for it)
        // whatever the umask made them (CI runs with 077): the files it reads readable, the fake criu reachable
        File.SetUnixFileMode(h.Root, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(h.ConfigFile, (UnixFileMode)0b110_100_100);
        File.SetUnixFileMode(h.StateFile, (UnixFileMode)0b110_100_100);
        File.SetUnixFileMode(h.CriuDir, (UnixFileMode)0b111_101_101);
        var (nobodyCode, nobody, nobodyErr) = await CheckAsync(h, asNobody: true);
        Assert.True(nobodyCode == 1, nobody + nobodyErr);
        Assert.Contains("missing CHECKPOINT_RESTORE, SYS_PTRACE, NET_ADMIN", nobody);
        Assert.Contains("fix: add to the container: securityContext.capabilities.add: [CHECKPOINT_RESTORE, SYS_PTRACE, NET_ADMIN]", nobody);
        Assert.Contains($"{h.ImageDir}: is not writable", nobody);
    }

    private static async Task<(int Code, string Out, string Err)> CheckAsync(RunHarness h, bool asNobody)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(asNobody ? "setpriv" : RunHarness.Binary) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (asNobody) foreach (var a in (string[])["--reuid=nobody", "--regid=nogroup", "--clear-groups", RunHarness.Binary]) psi.ArgumentList.Add(a);
        foreach (var a in (string[])["run", "--check", "--config", h.ConfigFile]) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var err = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await output, await err);
    }

    /// <summary>A checkpoint of <paramref name="command"/> as a dump would leave it (images/core-1.img, images/pages-1.img).</summary>
    internal static void Seal(RunHarness h, string[] command)
    {
        var dir = new CheckpointDirectory(h.ImageDir);
        var temp = dir.CreateTemp();
        File.WriteAllText(Path.Combine(temp, "images", "core-1.img"), "core");
        File.WriteAllBytes(Path.Combine(temp, "images", "pages-1.img"), new byte[4096]);
        dir.Seal(temp, new RunManifest { CommandLine = command, Created = DateTimeOffset.UtcNow, Files = [] }, new Dictionary<string, (int, int, int)>());
    }
}

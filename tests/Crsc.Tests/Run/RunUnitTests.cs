using Crsc.Preflight;
using Crsc.Run;
using Crsc.Testing;

namespace Crsc.Tests.Run;

public sealed class RunConfigTests
{
    [Fact]
    public void Every_key_is_read_from_yaml()
    {
        var (o, errors) = RunConfigLoader.Parse("""
            imageDir: /var/lib/app-ckpt
            additionalPaths: [/data/a, /data/b]
            inotifyIncompatiblePaths:
              - /tmp/watched
            criuPath: /usr/local/sbin/criu
            nodeStateFile: /node/state.json
            dumpTimeoutSeconds: 40
            """, "run.yaml");

        Assert.Empty(errors);
        Assert.Equal("/var/lib/app-ckpt", o!.ImageDir);
        Assert.Equal(["/data/a", "/data/b"], o.AdditionalPaths);
        Assert.Equal(["/tmp/watched"], o.InotifyIncompatiblePaths);
        Assert.Equal("/usr/local/sbin/criu", o.CriuPath);
        Assert.Equal("/node/state.json", o.NodeStateFile);
        Assert.Equal(40, o.DumpTimeoutSeconds);
    }

    [Fact]
    public void Json_is_read_too_and_the_defaults_fill_the_rest()
    {
        var (o, errors) = RunConfigLoader.Parse("""{"imageDir": "/ckpt", "additionalPaths": []}""", "run.json");

        Assert.Empty(errors);
        Assert.Equal("criu", o!.CriuPath);
        Assert.Equal("/run/crsc/node-state/state.json", o.NodeStateFile);
        Assert.Equal(25, o.DumpTimeoutSeconds);
        Assert.Empty(o.AdditionalPaths);
    }

    [Theory]
    [InlineData("additionalPaths: [/a]", "imageDir: is required")]
    [InlineData("imageDir: relative/dir", "imageDir (line 1): \"relative/dir\" is not an absolute path")]
    [InlineData("imageDir: /c\nimagedir: /d", "imagedir (line 2): is not a known key; known keys: imageDir, additionalPaths")]
    [InlineData("imageDir: /c\ndumpTimeoutSeconds: 10s", "dumpTimeoutSeconds (line 2): \"10s\" is not a whole number of seconds from 1 to 3600")]
    [InlineData("imageDir: /c\ndumpTimeoutSeconds: 0", "dumpTimeoutSeconds (line 2): \"0\" is not a whole number")]
    [InlineData("imageDir: /c\nadditionalPaths: /data", "additionalPaths (line 2): must be a list of absolute paths")]
    [InlineData("imageDir: /c\nadditionalPaths: [data]", "additionalPaths (line 2): \"data\" is not an absolute path")]
    [InlineData("imageDir: /c\nadditionalPaths: [/c/sub]", "additionalPaths: \"/c/sub\" overlaps imageDir /c")]
    [InlineData("imageDir: [/c]", "imageDir (line 1): must be a single value")]
    [InlineData("imageDir: /c\ncriuPath: \"\"", "criuPath (line 2): must not be empty")]
    [InlineData("- imageDir", "must hold one mapping of keys to values")]
    [InlineData("imageDir: &a /c\nnodeStateFile: *a", "anchor")]
    public void A_bad_value_is_an_error_that_names_its_key(string yaml, string expected)
    {
        var (o, errors) = RunConfigLoader.Parse(yaml, "run.yaml");

        Assert.Null(o);
        Assert.Contains(errors, e => e.StartsWith("run.yaml: ", StringComparison.Ordinal) && e.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void A_missing_file_is_an_error_that_names_it()
    {
        var (o, errors) = RunConfigLoader.Load("/nonexistent/run.yaml");
        Assert.Null(o);
        Assert.Equal(["configuration file /nonexistent/run.yaml: does not exist"], errors);
    }
}

public sealed class NodeStateTests
{
    [Fact]
    public void Going_away_means_checkpoint_with_the_reason()
    {
        using var dir = new TempDir();
        var f = dir.Combine("state.json");
        File.WriteAllText(f, """{"node":"n1","goingAway":true,"reason":"Shutdown","detail":null,"since":"2026-12-07T06:00:00Z","updated":"2026-12-07T06:00:00Z"}""");

        var v = NodeStateReader.Read(f);

        Assert.True(v.Checkpoint);
        Assert.Equal("Shutdown", v.State!.Reason);
        Assert.Equal("node n1 is going away (reason Shutdown)", v.Why);
    }

    [Theory]
    [InlineData("""{"node":"n1","goingAway":false,"reason":null}""", "node n1 is not going away")]
    [InlineData("""{"node":"n1","goingAway":"yes"}""", "is not the node agent's JSON: \"goingAway\" is missing or not true/false")]
    [InlineData("""{"node":"n1"}""", "\"goingAway\" is missing")]
    [InlineData("not json", "is not the node agent's JSON")]
    [InlineData("[]", "the top level is not an object")]
    public void Anything_else_is_a_plain_stop_that_says_why(string text, string why)
    {
        using var dir = new TempDir();
        var f = dir.Combine("state.json");
        File.WriteAllText(f, text);

        var v = NodeStateReader.Read(f);

        Assert.False(v.Checkpoint);
        Assert.Contains(why, v.Why);
    }

    [Fact]
    public void An_unreadable_file_is_a_plain_stop_that_says_why()
    {
        using var dir = new TempDir();
        var v = NodeStateReader.Read(dir.Path);
        Assert.False(v.Checkpoint);
        Assert.Contains("cannot be read", v.Why);
    }
}

public sealed class RunManifestTests
{
    [Fact]
    public void A_manifest_reads_back_as_written()
    {
        var m = new RunManifest
        {
            CommandLine = ["/app/server", "--port", "8080"],
            Created = new DateTimeOffset(2026, 12, 7, 6, 0, 0, TimeSpan.Zero),
            Node = "n1",
            Reason = "Taint",
            RootPid = 7,
            Stdio = ["/dev/null", "pipe:[1]", "pipe:[2]"],
            Paths = [new RunManifestPath("/data", "paths/0", true)],
            Directories = [new RunManifestDirectory("paths/0", 0b111_101_101, 1000, 1000)],
            Files = [new RunManifestFile("images/core-7.img", 12, new string('a', 64), 0b110_000_000)],
        };

        var back = RunManifest.Parse(m.ToJson());

        Assert.Equal(m.CommandLine, back.CommandLine);
        Assert.Equal(m.Created, back.Created);
        Assert.Equal(m.Stdio, back.Stdio);
        Assert.Equal(m.Paths, back.Paths);
        Assert.Equal(m.Directories, back.Directories);
        Assert.Equal(m.Files, back.Files);
        Assert.Equal(("n1", "Taint", 7), (back.Node, back.Reason, back.RootPid));
    }

    [Theory]
    [InlineData("""{"kind":"other"}""", "kind is not crsc-run-checkpoint")]
    [InlineData("""{"kind":"crsc-run-checkpoint","formatVersion":2}""", "formatVersion 2 is not 1")]
    [InlineData("""{"kind":"crsc-run-checkpoint","formatVersion":1,"commandLine":["a"],"created":"2026-12-07T06:00:00Z"}""", "has no \"paths\"")]
    [InlineData("{", "not valid JSON")]
    public void A_manifest_this_version_does_not_know_is_refused_with_the_reason(string json, string reason)
    {
        var e = Assert.Throws<FormatException>(() => RunManifest.Parse(System.Text.Encoding.UTF8.GetBytes(json)));
        Assert.Contains(reason, e.Message);
    }

    [Theory]
    [InlineData("../outside")]
    [InlineData("/etc/passwd")]
    [InlineData("images/../../x")]
    public void A_manifest_that_lists_a_path_outside_the_checkpoint_fails_verification(string path)
    {
        using var dir = new TempDir();
        var m = new RunManifest { CommandLine = ["x"], Created = DateTimeOffset.UtcNow, Files = [new RunManifestFile(path, 0, "", 0)] };
        Assert.Contains("outside the checkpoint", CheckpointDirectory.Verify(dir.Path, m));
    }
}

public sealed class CheckpointDirectoryTests
{
    [Fact]
    public void A_listed_file_that_is_a_fifo_fails_verification_without_blocking()
    {
        using var dir = new TempDir();
        var images = dir.Combine("checkpoint", "images");
        Directory.CreateDirectory(images);
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [Path.Combine(images, "pages-1.img")])!) mkfifo.WaitForExit();
        var m = new RunManifest { CommandLine = ["x"], Created = DateTimeOffset.UtcNow, Files = [new RunManifestFile("images/pages-1.img", 0, new string('0', 64), 0b110_000_000)] };

        Assert.Equal("images/pages-1.img is not a regular file", CheckpointDirectory.Verify(dir.Combine("checkpoint"), m));
    }
}

public sealed class PidFloorTests
{
    private const string Nested = "pid:[4026532987]";
    private const string Host = "pid:[4026531836]";

    [Fact]
    public void In_a_containers_pid_namespace_the_next_pid_moves_above_the_floor()
    {
        using var dir = new TempDir();
        var f = dir.Combine("ns_last_pid");
        File.WriteAllText(f, "12\n");
        Assert.Null(PidFloor.Raise(Nested, f));
        Assert.Equal("1000", File.ReadAllText(f));
    }

    [Fact]
    public void Above_the_floor_or_in_the_hosts_namespace_nothing_is_written()
    {
        using var dir = new TempDir();
        var f = dir.Combine("ns_last_pid");
        File.WriteAllText(f, "5000\n");
        Assert.Null(PidFloor.Raise(Nested, f));
        Assert.Equal("5000\n", File.ReadAllText(f));
        File.WriteAllText(f, "12\n");
        Assert.Null(PidFloor.Raise(Host, f));
        Assert.Equal("12\n", File.ReadAllText(f));
    }

    [Fact]
    public void A_namespace_that_refuses_it_is_a_warning()
    {
        using var dir = new TempDir();
        Assert.Contains("cannot move the next pid above 1000", PidFloor.Raise(Nested, dir.Combine("missing")));
    }
}

public sealed class CriuArgumentTests
{
    [Fact]
    public void Dump_and_restore_argument_vectors()
    {
        Assert.Equal(
            ["criu", "dump", "--tree", "42", "--images-dir", "/i", "--log-file", "/l", "-v4", "--tcp-established", "--file-locks", "--ext-unix-sk", "--unprivileged"],
            Criu.DumpArguments("criu", 42, "/i", "/l", unprivileged: true));
        Assert.Equal(
            ["/c", "restore", "--images-dir", "/i", "--log-file", "/l", "-v4", "--restore-detached", "--restore-sibling", "--pidfile", "/p",
             "--tcp-established", "--file-locks", "--ext-unix-sk", "--inherit-fd", "fd[2]:pipe:[99]"],
            Criu.RestoreArguments("/c", "/i", "/l", "/p", ["/dev/null", "/dev/pts/0", "pipe:[99]"], unprivileged: false));
    }
}

public sealed class RunCheckTests
{
    private sealed class Host(string status, string? criu) : IPreflightHost
    {
        public string? ReadText(string path) => path == "/proc/self/status" ? status : null;
        public PathInfo? Stat(string path) => null;
        public string KernelRelease => "6.18.0";
        public uint EffectiveUid => 0;
        public string? FindExecutable(string name) => name == "criu" ? criu : null;
        public IReadOnlyList<string> ListFiles(string directory) => [];
    }

    private sealed class Programs(int checkExit) : IProgramRunner
    {
        public Task<ProgramOutput> RunAsync(string program, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken ct) =>
            Task.FromResult(arguments[0] == "--version" ? new ProgramOutput(0, "Version: 4.2\n")
                : new ProgramOutput(checkExit, checkExit == 0 ? "Looks good.\n" : "Error (criu/cr-check.c): ptrace failed\n"));
    }

    private const string AllCaps = "Name:\tcrsc\nCapEff:\t000001ffffffffff\nSeccomp:\t0\n";

    [Fact]
    public async Task Everything_in_place_is_all_ok()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Combine("state.json"), """{"node":"n1","goingAway":false}""");
        var rows = await new RunCheck(new Host(AllCaps, "/usr/sbin/criu"), new Programs(0), RunCheck.TryWrite)
            .RunAsync(new RunOptions { ImageDir = dir.Path, NodeStateFile = dir.Combine("state.json") }, default);

        Assert.All(rows, r => Assert.Equal(PreflightStatus.Ok, r.Status));
        Assert.Contains(rows, r => r.Check == "criu" && r.Detail == "/usr/sbin/criu, Version: 4.2");
        Assert.Contains(rows, r => r.Check == "criu check" && r.Detail == "Looks good.");
        Assert.Equal(0, Crsc.Cli.PreflightCommand.ExitCode(rows));
    }

    [Fact]
    public async Task Each_failure_says_what_to_add_to_the_pod_spec()
    {
        using var dir = new TempDir();
        // CAP_CHOWN..CAP_KILL only (a default container), a seccomp filter, no imageDir, no node-state file
        var status = "CapEff:\t00000000a80425fb\nSeccomp:\t2\n";
        var rows = await new RunCheck(new Host(status, null), new Programs(1), RunCheck.TryWrite)
            .RunAsync(new RunOptions { ImageDir = dir.Combine("missing"), NodeStateFile = dir.Combine("state.json") }, default);

        Assert.Contains(rows, r => r.Check == "criu" && r.Status == PreflightStatus.Fail && r.Fix!.Contains("install criu"));
        var caps = Assert.Single(rows, r => r.Check == "capabilities");
        Assert.Equal(PreflightStatus.Fail, caps.Status);
        Assert.Contains("securityContext.capabilities.add: [CHECKPOINT_RESTORE, SYS_PTRACE, NET_ADMIN]", caps.Fix);
        Assert.Contains(rows, r => r.Check == "seccomp" && r.Status == PreflightStatus.Warn && r.Fix!.Contains("seccompProfile"));
        Assert.Contains(rows, r => r.Check == "imageDir" && r.Status == PreflightStatus.Fail && r.Fix!.Contains("PersistentVolumeClaim"));
        Assert.Contains(rows, r => r.Check == "node state" && r.Status == PreflightStatus.Fail && r.Fix!.Contains("hostPath"));
        Assert.Equal(1, Crsc.Cli.PreflightCommand.ExitCode(rows));
    }

    [Fact]
    public async Task A_failing_criu_check_fails()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Combine("state.json"), """{"node":"n1","goingAway":false}""");
        var rows = await new RunCheck(new Host(AllCaps, "/usr/sbin/criu"), new Programs(1), RunCheck.TryWrite)
            .RunAsync(new RunOptions { ImageDir = dir.Path, NodeStateFile = dir.Combine("state.json") }, default);

        var check = Assert.Single(rows, r => r.Check == "criu check");
        Assert.Equal(PreflightStatus.Fail, check.Status);
        Assert.Contains("ptrace failed", check.Detail);
    }

    [Fact]
    public async Task Sys_admin_stands_in_for_checkpoint_restore()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Combine("state.json"), """{"node":"n1","goingAway":false}""");
        // SYS_ADMIN (21), SYS_PTRACE (19), NET_ADMIN (12), no CHECKPOINT_RESTORE (40)
        var status = $"CapEff:\t{(1UL << 21) | (1UL << 19) | (1UL << 12):x16}\nSeccomp:\t0\n";
        var rows = await new RunCheck(new Host(status, "/usr/sbin/criu"), new Programs(0), RunCheck.TryWrite)
            .RunAsync(new RunOptions { ImageDir = dir.Path, NodeStateFile = dir.Combine("state.json") }, default);
        Assert.Equal(PreflightStatus.Ok, Assert.Single(rows, r => r.Check == "capabilities").Status);
    }
}

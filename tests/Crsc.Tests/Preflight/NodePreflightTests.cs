using Crsc.Configuration;
using Crsc.Controllers.Runtime;
using Crsc.Preflight;

namespace Crsc.Tests.Preflight;

/// <summary>A node as a table of files, stats and program outputs, the way the preflight sees it.</summary>
internal sealed class FakeNode : IPreflightHost, IProgramRunner, IRuntimeVersionProbe
{
    public const string CrioSocket = "/var/run/crio/crio.sock";
    public const string V2Mountinfo = "30 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
    public const string HybridMountinfo =
        "25 1 0:22 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755\n" +
        "26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw\n" +
        "28 25 0:25 / /sys/fs/cgroup/memory rw,nosuid shared:12 - cgroup cgroup rw,memory\n";

    public Dictionary<string, string> Files { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, PathInfo> Paths { get; } = new(StringComparer.Ordinal);
    /// <summary>"criu --version" → output; absent = not installed.</summary>
    public Dictionary<string, ProgramOutput> Programs { get; } = new(StringComparer.Ordinal);
    public List<string> Ran { get; } = [];
    public Func<string, RuntimeVersion> Runtime { get; set; } = _ => new RuntimeVersion("0.1.0", "cri-o", "1.31.3", "v1");
    public List<string> VersionCalls { get; } = [];
    public string KernelRelease { get; set; } = "6.12.0-test";
    public uint EffectiveUid { get; set; }
    /// <summary>Name → absolute path of the executables on the search path.</summary>
    public Dictionary<string, string> Executables { get; } = new(StringComparer.Ordinal);

    /// <summary>A node where everything a full check looks at is right.</summary>
    public static FakeNode Healthy()
    {
        var n = new FakeNode();
        n.Paths[CrioSocket] = new PathInfo(PathKind.Socket, 0, (UnixFileMode)0b110_110_000);
        n.Files["/proc/self/mountinfo"] = V2Mountinfo;
        n.Paths["/proc/sys/kernel/ns_last_pid"] = new PathInfo(PathKind.File, 0, (UnixFileMode)0b110_100_100);
        n.Paths["/proc/sys/vm/unprivileged_userfaultfd"] = new PathInfo(PathKind.File, 0, (UnixFileMode)0b110_100_100);
        n.Files["/boot/config-6.12.0-test"] = string.Join("\n",
            NodePreflight.RequiredKernelOptions.Concat(NodePreflight.OptionalKernelOptions).Select(o => o + "=y")) + "\n# CONFIG_FOO is not set\n";
        n.Programs["criu --version"] = new ProgramOutput(0, "Version: 4.1.1\n");
        n.Programs["criu check"] = new ProgramOutput(0, "Error (criu/util.c:123): rlimit: Can't setup RLIMIT_NOFILE for self\nLooks good.\n");
        n.Executables["runc"] = "/usr/bin/runc";
        n.Programs["/usr/bin/runc --version"] = new ProgramOutput(0, "runc version 1.4.3\ncommit: v1.4.3-0-g1a2b3c4d\nspec: 1.2.1\ngo: go1.25.1\nlibseccomp: 2.6.0\n");
        n.Dir("/var/lib/crsc", 0, 0b111_000_000);
        n.Dir("/var/lib/crsc/checkpoints", 0, 0b111_000_000);
        n.Dir("/var/lib/crsc/staging", 0, 0b111_000_000);
        n.Dir("/var/lib/crsc/state", 0, 0b111_000_000);
        n.Dir("/run/crsc", 0, 0b111_000_000);
        return n;
    }

    public void Dir(string path, uint uid, int mode) => Paths[path] = new PathInfo(PathKind.Directory, uid, (UnixFileMode)mode);

    public string? ReadText(string path) => Files.GetValueOrDefault(path);
    public PathInfo? Stat(string path) => Paths.GetValueOrDefault(path);
    public string? FindExecutable(string name) => Executables.GetValueOrDefault(name);

    public IReadOnlyList<string> ListFiles(string directory) =>
        Files.Keys.Where(f => Path.GetDirectoryName(f) == directory).Order(StringComparer.Ordinal).ToList();

    public Task<ProgramOutput> RunAsync(string program, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken ct)
    {
        var line = string.Join(' ', [program, .. arguments]);
        Ran.Add(line);
        return Task.FromResult(Programs.GetValueOrDefault(line) ?? new ProgramOutput(null, program + ": not found"));
    }

    public Task<RuntimeVersion> VersionAsync(string endpoint, TimeSpan timeout, CancellationToken ct)
    {
        VersionCalls.Add(endpoint);
        return Task.FromResult(Runtime(endpoint));
    }

    /// <summary>How long the preflight asks a runtime that answers "unavailable" again (short here: tests wait it out).</summary>
    public TimeSpan RuntimeStartupGrace { get; set; } = TimeSpan.FromMilliseconds(700);

    public NodePreflight Preflight() => new(this, this, this) { RuntimeStartupGrace = RuntimeStartupGrace };

    public async Task<IReadOnlyList<PreflightRow>> RunAsync(CrscOptions? options = null) =>
        await Preflight().RunAsync(options ?? new CrscOptions(), CancellationToken.None);
}

public sealed class NodePreflightTests
{
    private static PreflightRow Row(IReadOnlyList<PreflightRow> rows, string check) =>
        rows.SingleOrDefault(r => r.Check == check) ?? throw new Xunit.Sdk.XunitException($"no row '{check}' in: {string.Join(", ", rows.Select(r => r.Check))}");

    [Fact]
    public async Task A_node_with_everything_in_place_is_all_ok()
    {
        var node = FakeNode.Healthy();
        var rows = await node.RunAsync();
        Assert.All(rows, r => Assert.True(r.Status == PreflightStatus.Ok, $"{r.Check}: {r.Status} {r.Detail}"));
        Assert.Equal(["runtime socket", "runtime version", "criu", "criu check", "cri-o security", "runc security", "cgroups", "kernel",
                      "kernel config", "userfaultfd", "checkpointDir", "stagingDir", "stateDir", "socket dir"], rows.Select(r => r.Check));
        Assert.Contains("cri-o 1.31.3", Row(rows, "runtime version").Detail);
        Assert.Contains("CRIU 4.1.1", Row(rows, "criu").Detail);
        Assert.Equal("cri-o 1.31.3 is not affected by CVE-2024-8676 (GHSA-7p9f-6x8j-gxxp)", Row(rows, "cri-o security").Detail);
        Assert.StartsWith("runc 1.4.3 (/usr/bin/runc) is not affected by CVE-2025-31133", Row(rows, "runc security").Detail);
        Assert.Equal(["unix:///var/run/crio/crio.sock"], node.VersionCalls);
        Assert.Equal(["criu --version", "criu check", "/usr/bin/runc --version"], node.Ran);
        Assert.Equal(0, Crsc.Cli.PreflightCommand.ExitCode(rows));
    }

    [Fact]
    public async Task A_missing_runtime_socket_fails_with_the_endpoint_fix_and_the_runtime_is_not_called()
    {
        var node = FakeNode.Healthy();
        node.Paths.Remove(FakeNode.CrioSocket);
        var rows = await node.RunAsync();
        var row = Row(rows, "runtime socket");
        Assert.Equal(PreflightStatus.Fail, row.Status);
        Assert.Contains("/var/run/crio/crio.sock does not exist", row.Detail);
        Assert.Contains("runtime.endpoint", row.Fix);
        Assert.Empty(node.VersionCalls);
        Assert.DoesNotContain(rows, r => r.Check == "runtime version");
        Assert.Equal(1, Crsc.Cli.PreflightCommand.ExitCode(rows));
    }

    [Fact]
    public async Task The_configured_endpoint_is_the_one_checked()
    {
        var node = FakeNode.Healthy();
        node.Paths["/run/containerd/containerd.sock"] = new PathInfo(PathKind.Socket, 0, (UnixFileMode)0b110_110_000);
        node.Runtime = _ => new RuntimeVersion("0.1.0", "containerd", "v2.1.9", "v1");
        var rows = await node.RunAsync(new CrscOptions { RuntimeEndpoint = "unix:///run/containerd/containerd.sock" });
        Assert.Equal(["unix:///run/containerd/containerd.sock"], node.VersionCalls);
        Assert.Equal(PreflightStatus.Ok, Row(rows, "runtime version").Status);
        Assert.Contains("containerd v2.1.9", Row(rows, "runtime version").Detail);
    }

    [Fact]
    public async Task A_socket_path_that_is_not_a_socket_fails()
    {
        var node = FakeNode.Healthy();
        node.Paths[FakeNode.CrioSocket] = new PathInfo(PathKind.File, 0, (UnixFileMode)0b110_100_100);
        var row = Row(await node.RunAsync(), "runtime socket");
        Assert.Equal(PreflightStatus.Fail, row.Status);
        Assert.Contains("is a file, not a socket", row.Detail);
    }

    [Fact]
    public async Task A_runtime_that_does_not_answer_fails_with_its_error()
    {
        var node = FakeNode.Healthy();
        node.Runtime = _ => throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Unavailable, "connection refused");
        var row = Row(await node.RunAsync(), "runtime socket");
        Assert.Equal(PreflightStatus.Fail, row.Status);
        Assert.Contains("CRI Version failed: connection refused", row.Detail);
        Assert.Contains("journalctl", row.Fix);
    }

    [Fact]
    public async Task A_runtime_that_is_still_starting_is_asked_again_until_it_answers()
    {
        // containerd's CRI plugin, for a moment after containerd starts, answers every call with UNAVAILABLE
        // "server is not initialized yet" (CI saw a preflight run in that moment fail)
        var node = FakeNode.Healthy();
        node.RuntimeStartupGrace = TimeSpan.FromSeconds(30);
        int calls = 0;
        node.Runtime = _ => ++calls <= 2
            ? throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Unavailable, "CRI Version: runtime unavailable: server is not initialized yet")
            : new RuntimeVersion("0.1.0", "containerd", "v2.1.9", "v1");
        var rows = await node.RunAsync();
        var row = Row(rows, "runtime socket");
        Assert.Equal(PreflightStatus.Ok, row.Status);
        Assert.Equal(3, node.VersionCalls.Count);
        Assert.Contains("containerd v2.1.9", Row(rows, "runtime version").Detail);
    }

    [Fact]
    public async Task A_runtime_that_stays_unavailable_fails_once_the_grace_is_over_and_other_errors_are_not_asked_again()
    {
        var node = FakeNode.Healthy();
        node.RuntimeStartupGrace = TimeSpan.FromMilliseconds(700);
        node.Runtime = _ => throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Unavailable, "connection refused");
        var row = Row(await node.RunAsync(), "runtime socket");
        Assert.Equal(PreflightStatus.Fail, row.Status);
        Assert.Contains("connection refused", row.Detail);
        Assert.InRange(node.VersionCalls.Count, 2, 4); // asked again every 200 ms within the grace, then given up

        var failing = FakeNode.Healthy();
        failing.RuntimeStartupGrace = TimeSpan.FromSeconds(30);
        failing.Runtime = _ => throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed, "unknown service runtime.v1.RuntimeService");
        var failed = Row(await failing.RunAsync(), "runtime socket");
        Assert.Equal(PreflightStatus.Fail, failed.Status);
        Assert.Contains("unknown service", failed.Detail);
        Assert.Single(failing.VersionCalls);
    }

    [Theory]
    [InlineData("cri-o", "1.25.4", "Fail")]
    [InlineData("cri-o", "1.26.0", "Ok")]
    [InlineData("cri-o", "1.32.1", "Ok")]
    [InlineData("containerd", "1.7.24", "Fail")]
    [InlineData("containerd", "v2.0.5", "Warn")]
    [InlineData("containerd", "v2.1.9", "Ok")]
    [InlineData("containerd", "2.3.0", "Ok")]
    [InlineData("containerd", "2.4.0", "Warn")]
    [InlineData("containerd", "main", "Warn")]
    [InlineData("docker", "27.0", "Warn")]
    public void Runtime_versions_are_judged_by_what_can_checkpoint_and_restore(string name, string version, string expectedStatus)
    {
        var expected = Enum.Parse<PreflightStatus>(expectedStatus);
        var row = NodePreflight.RuntimeVersionRow(name, version);
        Assert.Equal(expected, row.Status);
        Assert.Contains(version, row.Detail);
        if (expected != PreflightStatus.Ok) Assert.False(string.IsNullOrEmpty(row.Fix));
    }

    [Fact]
    public async Task Criu_not_installed_fails_and_check_is_not_run()
    {
        var node = FakeNode.Healthy();
        node.Programs.Remove("criu --version");
        var rows = await node.RunAsync();
        Assert.Equal(PreflightStatus.Fail, Row(rows, "criu").Status);
        Assert.Contains("not installed", Row(rows, "criu").Detail);
        Assert.Contains("apt install criu", Row(rows, "criu").Fix);
        Assert.DoesNotContain("criu check", node.Ran);
    }

    [Fact]
    public async Task Criu_older_than_4_fails()
    {
        var node = FakeNode.Healthy();
        node.Programs["criu --version"] = new ProgramOutput(0, "Version: 3.17.1\n");
        var row = Row(await node.RunAsync(), "criu");
        Assert.Equal(PreflightStatus.Fail, row.Status);
        Assert.Contains("CRIU 3.17.1 is older than 4.0", row.Detail);
    }

    [Fact]
    public async Task A_failing_criu_check_names_its_first_real_error()
    {
        var node = FakeNode.Healthy();
        node.Programs["criu check"] = new ProgramOutput(1,
            "Error (criu/util.c:123): rlimit: Can't setup RLIMIT_NOFILE for self\n" +
            "Error (criu/cr-check.c:1223): UFFD is not supported\n" +
            "Error (criu/cr-check.c:99): vdso: Unexpected rt vDSO area bounds\n");
        var row = Row(await node.RunAsync(), "criu check");
        Assert.Equal(PreflightStatus.Fail, row.Status);
        Assert.Equal("exit 1: Error (criu/cr-check.c:1223): UFFD is not supported", row.Detail);
        Assert.Contains("criu check --all", row.Fix);
    }

    [Fact]
    public void Criu_version_is_read_from_its_output()
    {
        Assert.Equal(new Version(4, 1, 1), NodePreflight.ParseCriuVersion("Version: 4.1.1\n"));
        Assert.Equal(new Version(3, 17, 0), NodePreflight.ParseCriuVersion("Version: 3.17\nGitID: v3.17\n"));
        Assert.Null(NodePreflight.ParseCriuVersion("criu: unknown option"));
    }

    [Theory]
    [InlineData(FakeNode.V2Mountinfo, "V2")]
    [InlineData(FakeNode.HybridMountinfo, "Hybrid")]
    [InlineData("28 25 0:25 / /sys/fs/cgroup/memory rw,nosuid shared:12 - cgroup cgroup rw,memory\n", "V1")]
    [InlineData("22 1 0:21 / /proc rw - proc proc rw\n", "Unknown")]
    public void Cgroup_layout_comes_from_mountinfo(string mountinfo, string expected) =>
        Assert.Equal(expected, NodePreflight.DetectCgroups(mountinfo).ToString());

    [Fact]
    public async Task A_hybrid_cgroup_layout_warns_and_no_cgroups_fail()
    {
        var node = FakeNode.Healthy();
        node.Files["/proc/self/mountinfo"] = FakeNode.HybridMountinfo;
        Assert.Equal(PreflightStatus.Warn, Row(await node.RunAsync(), "cgroups").Status);
        node.Files.Remove("/proc/self/mountinfo");
        Assert.Equal(PreflightStatus.Fail, Row(await node.RunAsync(), "cgroups").Status);
    }

    [Fact]
    public async Task A_kernel_without_checkpoint_restore_fails()
    {
        var node = FakeNode.Healthy();
        node.Paths.Remove("/proc/sys/kernel/ns_last_pid");
        var row = Row(await node.RunAsync(), "kernel");
        Assert.Equal(PreflightStatus.Fail, row.Status);
        Assert.Contains("CONFIG_CHECKPOINT_RESTORE", row.Detail);
    }

    [Fact]
    public async Task Kernel_config_names_missing_required_options_and_warns_for_optional_ones()
    {
        var node = FakeNode.Healthy();
        node.Files["/boot/config-6.12.0-test"] = "CONFIG_CHECKPOINT_RESTORE=y\nCONFIG_NAMESPACES=y\nCONFIG_UNIX_DIAG=m\nCONFIG_INET_DIAG=y\n# CONFIG_NETLINK_DIAG is not set\n";
        var rows = await node.RunAsync();
        var config = Row(rows, "kernel config");
        Assert.Equal(PreflightStatus.Fail, config.Status);
        Assert.Equal("missing CONFIG_NETLINK_DIAG, CONFIG_PACKET_DIAG", config.Detail);
        Assert.Equal(PreflightStatus.Warn, Row(rows, "kernel extras").Status);
        Assert.Contains("CONFIG_MEM_SOFT_DIRTY", Row(rows, "kernel extras").Detail);
    }

    [Fact]
    public async Task Without_a_kernel_config_file_the_options_are_a_warning()
    {
        var node = FakeNode.Healthy();
        node.Files.Remove("/boot/config-6.12.0-test");
        Assert.Equal(PreflightStatus.Warn, Row(await node.RunAsync(), "kernel config").Status);
    }

    [Fact]
    public async Task The_running_kernels_proc_config_is_read_when_boot_has_none()
    {
        var node = FakeNode.Healthy();
        node.Files.Remove("/boot/config-6.12.0-test");
        node.Files["/proc/config.gz"] = "CONFIG_CHECKPOINT_RESTORE=y\n";
        var row = Row(await node.RunAsync(), "kernel config");
        Assert.Equal(PreflightStatus.Fail, row.Status);
        Assert.StartsWith("missing CONFIG_NAMESPACES", row.Detail);
    }

    [Fact]
    public void The_system_host_reads_proc_config_gz_decompressed()
    {
        var text = new SystemPreflightHost().ReadText("/proc/config.gz");
        if (text is null) return; // a kernel without IKCONFIG_PROC: nothing to read here
        Assert.Contains("CONFIG_", text);
        Assert.Contains(NodePreflight.ParseKernelConfig(text), o => o == "CONFIG_NAMESPACES");
    }

    [Fact]
    public void The_system_host_stats_without_following_links_and_reads_owner_and_mode()
    {
        using var dir = new Crsc.Testing.TempDir();
        var link = Path.Combine(dir.Path, "link");
        File.CreateSymbolicLink(link, "/");
        var host = new SystemPreflightHost();
        Assert.Equal(PathKind.Symlink, host.Stat(link)!.Kind);
        var d = host.Stat(dir.Path)!;
        Assert.Equal(PathKind.Directory, d.Kind);
        Assert.Equal((UnixFileMode)0b111_000_000, d.Mode);
        Assert.Equal(host.EffectiveUid, d.OwnerUid);
        Assert.Null(host.Stat(Path.Combine(dir.Path, "absent")));
        Assert.Equal(PathKind.File, host.Stat("/proc/sys/kernel/osrelease")?.Kind);
    }

    [Fact]
    public async Task A_checkpoint_dir_others_can_read_fails_with_chmod()
    {
        var node = FakeNode.Healthy();
        node.Dir("/var/lib/crsc/checkpoints", 0, 0b111_101_101);
        var row = Row(await node.RunAsync(), "checkpointDir");
        Assert.Equal(PreflightStatus.Fail, row.Status);
        Assert.Contains("mode 0755", row.Detail);
        Assert.StartsWith("chmod 0700 /var/lib/crsc/checkpoints if it is crsc's own, else point checkpointDir at a dedicated directory", row.Fix);
    }

    [Fact]
    public async Task A_state_dir_not_owned_by_root_fails_with_chown()
    {
        var node = FakeNode.Healthy();
        node.Dir("/var/lib/crsc/state", 1000, 0b111_000_000);
        var row = Row(await node.RunAsync(), "stateDir");
        Assert.Equal(PreflightStatus.Fail, row.Status);
        Assert.Contains("uid 1000", row.Detail);
        Assert.StartsWith("chown root:root /var/lib/crsc/state if it is crsc's own, else point stateDir at a dedicated directory", row.Fix);
    }

    [Fact]
    public async Task A_symlinked_or_non_directory_path_fails()
    {
        var node = FakeNode.Healthy();
        node.Paths["/var/lib/crsc/staging"] = new PathInfo(PathKind.Symlink, 0, (UnixFileMode)0b111_111_111);
        node.Paths["/run/crsc"] = new PathInfo(PathKind.File, 0, (UnixFileMode)0b110_000_000);
        var rows = await node.RunAsync();
        Assert.Contains("symbolic link", Row(rows, "stagingDir").Detail);
        Assert.Equal(PreflightStatus.Fail, Row(rows, "stagingDir").Status);
        Assert.Equal(PreflightStatus.Fail, Row(rows, "socket dir").Status);
    }

    [Fact]
    public async Task Absent_directories_are_ok_under_a_root_owned_parent_and_fail_otherwise()
    {
        var node = FakeNode.Healthy();
        foreach (var p in node.Paths.Keys.Where(k => k.StartsWith("/var/lib/crsc", StringComparison.Ordinal)).ToList()) node.Paths.Remove(p);
        node.Dir("/var/lib", 0, 0b111_101_101);
        var rows = await node.RunAsync(new CrscOptions { StateDir = "/home/alice/state" });
        Assert.Equal(PreflightStatus.Ok, Row(rows, "checkpointDir").Status);
        Assert.Contains("the daemon creates it", Row(rows, "checkpointDir").Detail);
        node.Dir("/home/alice", 1000, 0b111_101_101);
        rows = await node.RunAsync(new CrscOptions { StateDir = "/home/alice/state" });
        Assert.Equal(PreflightStatus.Fail, Row(rows, "stateDir").Status);
        Assert.Contains("install -d -m 0700", Row(rows, "stateDir").Fix);
    }

    [Fact]
    public async Task Not_running_as_root_is_a_warning_first()
    {
        var node = FakeNode.Healthy();
        node.EffectiveUid = 1000;
        var rows = await node.RunAsync();
        Assert.Equal("user", rows[0].Check);
        Assert.Equal(PreflightStatus.Warn, rows[0].Status);
        Assert.Contains("sudo crsc preflight", rows[0].Fix);
    }
}

/// <summary>The kubelet's graceful node shutdown, read from its config file: what lets crsc's shutdown checkpoints run.</summary>
public sealed class KubeletShutdownPreflightTests
{
    private static async Task<PreflightRow?> CheckAsync(string? config)
    {
        var node = FakeNode.Healthy();
        if (config is not null) node.Files[NodePreflight.KubeletConfigFile] = config;
        var rows = await node.RunAsync();
        return rows.SingleOrDefault(r => r.Check == NodePreflight.KubeletShutdownCheck);
    }

    [Fact]
    public async Task A_grace_period_is_ok()
    {
        var row = (await CheckAsync("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nshutdownGracePeriod: 60s\nshutdownGracePeriodCriticalPods: 10s\n"))!;
        Assert.Equal(PreflightStatus.Ok, row.Status);
        Assert.Contains("shutdownGracePeriod 60s", row.Detail);
    }

    [Theory]
    [InlineData("kind: KubeletConfiguration\n", "is not set")]
    [InlineData("kind: KubeletConfiguration\nshutdownGracePeriod: 0s\n", "is 0s")]
    [InlineData("kind: KubeletConfiguration\nshutdownGracePeriod: \"0\"\n", "is 0")]
    public async Task Off_is_a_warning_that_says_what_to_set(string config, string said)
    {
        var row = (await CheckAsync(config))!;
        Assert.Equal(PreflightStatus.Warn, row.Status);
        Assert.Contains(said, row.Detail);
        Assert.Contains("race the kill", row.Detail);
        Assert.Contains("set shutdownGracePeriod", row.Fix);
    }

    [Fact]
    public async Task No_kubelet_config_file_adds_no_row_and_shutdown_checkpoint_off_neither()
    {
        Assert.Null(await CheckAsync(null));
        var node = FakeNode.Healthy();
        node.Files[NodePreflight.KubeletConfigFile] = "kind: KubeletConfiguration\n";
        var rows = await node.RunAsync(new CrscOptions { ShutdownCheckpoint = "false" });
        Assert.DoesNotContain(rows, r => r.Check == NodePreflight.KubeletShutdownCheck);
    }
}

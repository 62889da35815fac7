using Crsc.Controllers.Runtime;
using Crsc.Preflight;
using Crsc.Testing;

namespace Crsc.Tests.Preflight;

/// <summary>The preflight's security-fix rows: which binaries it asks, what it warns about, and that warnings do not fail it.</summary>
public sealed class RestoreAdvisoryPreflightTests
{
    private static PreflightRow Row(IReadOnlyList<PreflightRow> rows, string check) =>
        rows.SingleOrDefault(r => r.Check == check) ?? throw new Xunit.Sdk.XunitException($"no row '{check}' in: {string.Join(", ", rows.Select(r => r.Check))}");

    private static ProgramOutput RuncSays(string version) => new(0, $"runc version {version}\ncommit: v{version}-0-g0123456\nspec: 1.2.1\ngo: go1.24.9\n");

    [Fact]
    public async Task An_old_runc_on_the_path_is_a_warning_naming_the_advisories_and_the_release_to_upgrade_to()
    {
        var node = FakeNode.Healthy();
        node.Programs["/usr/bin/runc --version"] = RuncSays("1.2.8");
        var rows = await node.RunAsync();
        var row = Row(rows, "runc security");
        Assert.Equal(PreflightStatus.Warn, row.Status);
        Assert.Equal("runc 1.2.8 (/usr/bin/runc) predates the fix for CVE-2026-41579 (GHSA-xjvp-4fhw-gc47): image /dev symlink writes to the host", row.Detail);
        Assert.StartsWith("upgrade runc to 1.3.6 or later", row.Fix);
        Assert.Equal(0, Crsc.Cli.PreflightCommand.ExitCode(rows)); // a warning, as before: only FAIL rows fail the preflight
    }

    [Fact]
    public async Task A_containerd_older_than_its_checkpoint_restore_fixes_warns_from_its_CRI_version()
    {
        var node = FakeNode.Healthy();
        node.Paths["/run/containerd/containerd.sock"] = new PathInfo(PathKind.Socket, 0, (UnixFileMode)0b110_110_000);
        node.Runtime = _ => new RuntimeVersion("0.1.0", "containerd", "v2.2.4", "v1");
        var rows = await node.RunAsync(new Crsc.Configuration.CrscOptions { RuntimeEndpoint = "unix:///run/containerd/containerd.sock" });
        var row = Row(rows, "containerd security");
        Assert.Equal(PreflightStatus.Warn, row.Status);
        Assert.StartsWith("containerd v2.2.4 predates the fix for CVE-2026-50195 (GHSA-cvxm-645q-p574)", row.Detail);
        Assert.Contains("CVE-2026-53489 (GHSA-rgh6-rfwx-v388)", row.Detail);
        Assert.StartsWith("upgrade containerd to 2.2.5 or later", row.Fix);
        Assert.DoesNotContain(rows, r => r.Check == "cri-o security");
    }

    [Fact]
    public async Task A_runtime_that_did_not_answer_gets_no_security_row_and_an_unknown_runtime_neither()
    {
        var node = FakeNode.Healthy();
        node.Runtime = _ => throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Unavailable, "connection refused");
        Assert.DoesNotContain(await node.RunAsync(), r => r.Check is "cri-o security" or "containerd security");
        node.Runtime = _ => new RuntimeVersion("0.1.0", "docker", "27.0", "v1");
        Assert.DoesNotContain(await node.RunAsync(), r => r.Check == "docker security");
    }

    [Fact]
    public async Task A_runtime_version_that_is_not_understood_cannot_be_checked()
    {
        var node = FakeNode.Healthy();
        node.Runtime = _ => new RuntimeVersion("0.1.0", "cri-o", "main", "v1");
        var row = Row(await node.RunAsync(), "cri-o security");
        Assert.Equal(PreflightStatus.Warn, row.Status);
        Assert.Equal("cri-o main: version not understood, its restore security fixes were not checked", row.Detail);
        Assert.Contains("CVE-2024-8676", row.Fix);
    }

    [Fact]
    public async Task Binaries_named_in_the_runtime_configuration_are_checked_too()
    {
        var node = FakeNode.Healthy();
        node.Executables.Clear();
        node.Files["/etc/crio/crio.conf.d/10-crun.conf"] =
            "[crio.runtime]\ndefault_runtime = \"crun\"\n\n[crio.runtime.runtimes.crun]\nruntime_path = \"/usr/libexec/crio/crun\"\n" +
            "[crio.runtime.runtimes.runc]\nruntime_path = \"\"\n[crio.runtime.runtimes.kata]\nruntime_path = \"/opt/kata/bin/kata-runtime\"\n" +
            "[crio.runtime.runtimes.gone]\nruntime_path = \"/usr/local/bin/gone\"\n";
        node.Files["/etc/crio/crio.conf.d/README"] = "runtime_path = \"/not/a/config/file\"\n";
        node.Files["/etc/containerd/config.toml"] =
            "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  BinaryName = '/usr/local/sbin/runc'\n";
        node.Programs["/usr/libexec/crio/crun --version"] = new ProgramOutput(0, "crun version 1.27\ncommit: 0123\nrundir: /run/crun\nspec: 1.0.0\n+SYSTEMD +SELINUX +CRIU\n");
        node.Programs["/opt/kata/bin/kata-runtime --version"] = new ProgramOutput(0, "kata-runtime  : 3.2.0\n");
        node.Programs["/usr/local/sbin/runc --version"] = RuncSays("1.3.6");
        var rows = await node.RunAsync();

        Assert.Contains("/usr/libexec/crio/crun --version", node.Ran);
        Assert.Contains("/usr/local/bin/gone --version", node.Ran);
        Assert.DoesNotContain("/not/a/config/file --version", node.Ran);
        var crun = Row(rows, "crun security");
        Assert.Equal(PreflightStatus.Warn, crun.Status);
        Assert.StartsWith("crun 1.27 (/usr/libexec/crio/crun) predates the fix for CVE-2026-47766 (GHSA-7vwr-4279-7gq5)", crun.Detail);
        Assert.StartsWith("upgrade crun to 1.28 or later", crun.Fix);
        Assert.Equal(PreflightStatus.Ok, Row(rows, "runc security").Status);
        Assert.Contains("(/usr/local/sbin/runc)", Row(rows, "runc security").Detail);
        Assert.DoesNotContain(rows, r => r.Check.StartsWith("kata", StringComparison.Ordinal) || r.Check == "oci runtime security");
    }

    [Fact]
    public async Task Two_runc_binaries_get_one_row_each_under_distinct_names()
    {
        var node = FakeNode.Healthy();
        node.Files["/etc/containerd/config.toml"] = "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  BinaryName = '/usr/local/sbin/runc'\n";
        node.Programs["/usr/local/sbin/runc --version"] = RuncSays("1.2.8");
        var rows = (await node.RunAsync()).Where(r => r.Check.StartsWith("runc security", StringComparison.Ordinal)).ToList();
        Assert.Equal(["runc security", "runc security /usr/bin/runc"], rows.Select(r => r.Check));
        Assert.Equal([PreflightStatus.Warn, PreflightStatus.Ok], rows.Select(r => r.Status));
        Assert.Contains("(/usr/local/sbin/runc)", rows[0].Detail);
    }

    [Fact]
    public async Task A_runc_whose_version_cannot_be_read_is_reported_as_not_checked()
    {
        var node = FakeNode.Healthy();
        node.Programs["/usr/bin/runc --version"] = new ProgramOutput(2, "Incorrect Usage: flag provided but not defined: -version\n");
        var row = Row(await node.RunAsync(), "runc security");
        Assert.Equal(PreflightStatus.Warn, row.Status);
        Assert.Equal("/usr/bin/runc --version (exit 2) did not say its version: Incorrect Usage: flag provided but not defined: -version; its restore security fixes were not checked", row.Detail);
        Assert.Contains("CVE-2026-41579", row.Fix);
    }

    [Fact]
    public async Task Without_runc_or_crun_anywhere_the_check_says_it_could_not_look()
    {
        var node = FakeNode.Healthy();
        node.Executables.Clear();
        var row = Row(await node.RunAsync(), "oci runtime security");
        Assert.Equal(PreflightStatus.Warn, row.Status);
        Assert.Contains("were not checked", row.Detail);
    }

    [Theory]
    [InlineData("runtime_path = \"/usr/bin/crun\"", "/usr/bin/crun")]
    [InlineData("  BinaryName = '/usr/local/sbin/runc'", "/usr/local/sbin/runc")]
    [InlineData("\tBinaryName=\"/opt/runc\"", "/opt/runc")]
    [InlineData("runtime_path = \"\"", "")]
    [InlineData("runtime_path = \"crun\"", "")]                 // relative: the runtime looks it up on its PATH
    [InlineData("# runtime_path = \"/usr/bin/crun\"", "")]
    [InlineData("monitor_path = \"/usr/libexec/crio/conmon\"", "")]
    public void Configured_runtime_binaries_are_read_from_toml_lines(string line, string expected) =>
        Assert.Equal(expected, string.Join(',', NodePreflight.ConfiguredRuntimeBinaries(line + "\n")));

    // --- real programs: shell scripts standing in for runc and crun ------------------------------

    /// <summary>The node's files from a table, its executables from a real search path.</summary>
    private sealed class ScriptNode(string searchPath) : IPreflightHost, IRuntimeVersionProbe
    {
        private readonly SystemPreflightHost _system = new(searchPath);
        public Dictionary<string, string> Files { get; } = new(StringComparer.Ordinal);
        public string? ReadText(string path) => Files.GetValueOrDefault(path);
        public PathInfo? Stat(string path) => null;
        public string KernelRelease => "6.12.0-test";
        public uint EffectiveUid => 0;
        public string? FindExecutable(string name) => _system.FindExecutable(name);
        public IReadOnlyList<string> ListFiles(string directory) => Files.Keys.Where(f => Path.GetDirectoryName(f) == directory).ToList();
        public Task<RuntimeVersion> VersionAsync(string endpoint, TimeSpan timeout, CancellationToken ct) => throw new NotSupportedException();
    }

    private static string Script(TempDir dir, string relative, string output)
    {
        var path = dir.Combine(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "#!/bin/sh\nprintf '%s\\n' " + string.Join(' ', output.Split('\n').Select(l => "'" + l + "'")) + "\n");
        File.SetUnixFileMode(path, (UnixFileMode)0b111_000_000);
        return path;
    }

    [Fact]
    public async Task A_runc_script_first_on_the_search_path_is_run_and_judged()
    {
        using var dir = new TempDir();
        var old = Script(dir, "old/runc", "runc version 1.4.2\ncommit: v1.4.2-0-gdeadbee\nspec: 1.2.1");
        Script(dir, "new/runc", "runc version 1.4.3\ncommit: v1.4.3-0-gdeadbee\nspec: 1.2.1");
        var node = new ScriptNode($"{dir.Combine("old")}:{dir.Combine("new")}");
        var rows = await new NodePreflight(node, new SystemProgramRunner(), node).CheckRestoreAdvisoriesAsync(null, CancellationToken.None);
        var row = Assert.Single(rows);
        Assert.Equal("runc security", row.Check);
        Assert.Equal(PreflightStatus.Warn, row.Status);
        Assert.Equal($"runc 1.4.2 ({old}) predates the fix for CVE-2026-41579 (GHSA-xjvp-4fhw-gc47): image /dev symlink writes to the host", row.Detail);
        Assert.StartsWith("upgrade runc to 1.4.3 or later", row.Fix);

        node = new ScriptNode($"{dir.Combine("new")}:{dir.Combine("old")}");
        row = Assert.Single(await new NodePreflight(node, new SystemProgramRunner(), node).CheckRestoreAdvisoriesAsync(null, CancellationToken.None));
        Assert.Equal(PreflightStatus.Ok, row.Status);
        Assert.StartsWith($"runc 1.4.3 ({dir.Combine("new", "runc")}) is not affected by CVE-2025-31133", row.Detail);
    }

    [Fact]
    public async Task A_crun_script_named_in_the_configuration_is_run_and_one_on_the_path_as_well()
    {
        using var dir = new TempDir();
        var configured = Script(dir, "libexec/crio-crun", "crun version 1.26\ncommit: 0123\nrundir: /run/crun\nspec: 1.0.0\n+SYSTEMD +CRIU");
        var onPath = Script(dir, "bin/crun", "crun version 1.28\ncommit: 4567\nspec: 1.0.0");
        var node = new ScriptNode(dir.Combine("bin"));
        node.Files["/etc/crio/crio.conf"] = $"[crio.runtime.runtimes.crun]\nruntime_path = \"{configured}\"\n";
        var rows = await new NodePreflight(node, new SystemProgramRunner(), node).CheckRestoreAdvisoriesAsync(null, CancellationToken.None);
        Assert.Equal(2, rows.Count);
        Assert.Equal(PreflightStatus.Warn, rows[0].Status);
        Assert.StartsWith($"crun 1.26 ({configured}) predates the fix for CVE-2026-47766", rows[0].Detail);
        Assert.Equal(PreflightStatus.Ok, rows[1].Status);
        Assert.StartsWith($"crun 1.28 ({onPath}) is not affected", rows[1].Detail);
    }

    [Fact]
    public void The_system_host_finds_only_executable_files_in_absolute_search_path_entries()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.Combine("a", "runc")); // a directory named runc
        Directory.CreateDirectory(dir.Combine("b"));
        File.WriteAllText(dir.Combine("b", "runc"), "not executable");
        File.SetUnixFileMode(dir.Combine("b", "runc"), (UnixFileMode)0b110_000_000);
        var good = Script(dir, "c/runc", "runc version 1.4.3");
        Script(dir, "d/runc", "runc version 1.0.0");
        Assert.Equal(good, new SystemPreflightHost($"{dir.Combine("a")}:{dir.Combine("b")}::relative/dir:{dir.Combine("c")}:{dir.Combine("d")}").FindExecutable("runc"));
        Assert.Null(new SystemPreflightHost($"{dir.Combine("a")}:{dir.Combine("b")}").FindExecutable("runc"));
        Assert.Null(new SystemPreflightHost(dir.Combine("c")).FindExecutable("../c/runc"));

        // a relative entry is the current directory's: never used, even when it has the program
        var cwd = Environment.CurrentDirectory;
        Assert.Null(new SystemPreflightHost(Path.GetRelativePath(cwd, dir.Combine("c"))).FindExecutable("runc"));
    }

    [Fact]
    public void The_system_host_lists_a_directorys_files_sorted_and_an_absent_one_as_empty()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Combine("b.conf"), "");
        File.WriteAllText(dir.Combine("a.conf"), "");
        Directory.CreateDirectory(dir.Combine("c.conf"));
        var host = new SystemPreflightHost();
        Assert.Equal([dir.Combine("a.conf"), dir.Combine("b.conf")], host.ListFiles(dir.Path));
        Assert.Empty(host.ListFiles(dir.Combine("absent")));
    }
}

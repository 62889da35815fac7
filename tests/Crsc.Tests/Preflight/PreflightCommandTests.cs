using System.Text.Json;
using Crsc.Cli;
using Crsc.Preflight;
using Crsc.Testing;

namespace Crsc.Tests.Preflight;

/// <summary><c>crsc preflight</c> as the user sees it: the table, the JSON, the exit code, the configuration it reads.</summary>
public sealed class PreflightCommandTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private async Task<(int Code, string Out, string Err)> RunAsync(FakeNode node, string configYaml, params string[] switches)
    {
        var config = _dir.Combine("config.yaml");
        await File.WriteAllTextAsync(config, configYaml);
        var o = new StringWriter();
        var e = new StringWriter();
        var p = new ParsedCommand(PreflightCommand.Spec(), "crsc preflight", o, e);
        p.Values["--config"] = config;
        foreach (var s in switches) p.Switches.Add(s);
        var code = await PreflightCommand.RunAsync(p, node.Preflight(), CancellationToken.None);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task A_healthy_node_prints_ok_rows_and_exits_0()
    {
        var (code, output, _) = await RunAsync(FakeNode.Healthy(), "log:\n  level: debug\n");
        Assert.Equal(0, code);
        var lines = output.Split('\n');
        Assert.StartsWith("CHECK", lines[0]);
        Assert.Matches(@"^configuration\s+OK\s+.*config\.yaml is valid$", lines[1]);
        Assert.Matches(@"^criu\s+OK\s+CRIU 4\.1\.1$", lines.Single(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^criu\s{2,}")));
        Assert.DoesNotContain("fix:", output);
        Assert.Contains("this node can run crsc", output);
    }

    [Fact]
    public async Task Failing_rows_get_a_fix_line_and_exit_1()
    {
        var node = FakeNode.Healthy();
        node.Programs.Remove("criu --version");
        var (code, output, _) = await RunAsync(node, "");
        Assert.Equal(1, code);
        var lines = output.Split('\n').ToList();
        var criu = lines.FindIndex(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^criu\s{2,}"));
        Assert.Matches(@"^criu\s+FAIL\s+criu is not installed", lines[criu]);
        Assert.Matches(@"^\s+fix: install CRIU >= 4", lines[criu + 1]);
        Assert.Contains("1 failed: fix the FAIL rows", output);
    }

    [Fact]
    public async Task A_runtime_older_than_its_security_fixes_is_a_warn_row_with_the_upgrade_and_still_exits_0()
    {
        var node = FakeNode.Healthy();
        node.Programs["/usr/bin/runc --version"] = new ProgramOutput(0, "runc version 1.3.5\ncommit: v1.3.5-0-g0123456\nspec: 1.2.1\n");
        var (code, output, _) = await RunAsync(node, "");
        Assert.Equal(0, code);
        var lines = output.Split('\n').ToList();
        var runc = lines.FindIndex(l => l.StartsWith("runc security", StringComparison.Ordinal));
        Assert.Matches(@"^runc security\s+WARN\s+runc 1\.3\.5 \(/usr/bin/runc\) predates the fix for CVE-2026-41579 \(GHSA-xjvp-4fhw-gc47\)", lines[runc]);
        Assert.Matches(@"^\s+fix: upgrade runc to 1\.3\.6 or later", lines[runc + 1]);
        Assert.Contains("1 warning(s): this node can run crsc (see the warnings)", output);

        (code, output, _) = await RunAsync(node, "", "--json");
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        Assert.True(doc.RootElement.GetProperty("ok").GetBoolean());
        var row = doc.RootElement.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("check").GetString() == "runc security");
        Assert.Equal("WARN", row.GetProperty("status").GetString());
        Assert.StartsWith("upgrade runc to 1.3.6 or later", row.GetProperty("fix").GetString());
    }

    [Fact]
    public async Task The_configured_runtime_endpoint_is_used()
    {
        var node = FakeNode.Healthy();
        node.Paths["/run/containerd/containerd.sock"] = new PathInfo(PathKind.Socket, 0, (UnixFileMode)0b110_110_000);
        await RunAsync(node, "runtime:\n  endpoint: unix:///run/containerd/containerd.sock\n");
        Assert.Equal(["unix:///run/containerd/containerd.sock"], node.VersionCalls);
    }

    [Fact]
    public async Task Invalid_configuration_is_a_failed_row_naming_the_key()
    {
        var (code, output, _) = await RunAsync(FakeNode.Healthy(), "runtime:\n  checkpointVia: telepathy\n");
        Assert.Equal(1, code);
        Assert.Matches(@"configuration\s+FAIL\s+runtime\.checkpointVia: ""telepathy""", output);
    }

    [Fact]
    public async Task Json_has_every_row_with_status_and_fix()
    {
        var node = FakeNode.Healthy();
        node.Dir("/var/lib/crsc/checkpoints", 0, 0b111_111_111);
        var (code, output, _) = await RunAsync(node, "", "--json");
        Assert.Equal(1, code);
        using var doc = JsonDocument.Parse(output);
        Assert.False(doc.RootElement.GetProperty("ok").GetBoolean());
        var checks = doc.RootElement.GetProperty("checks").EnumerateArray().ToList();
        Assert.Equal(15, checks.Count);
        var dir = checks.Single(c => c.GetProperty("check").GetString() == "checkpointDir");
        Assert.Equal("FAIL", dir.GetProperty("status").GetString());
        Assert.StartsWith("chmod 0700 /var/lib/crsc/checkpoints if it is crsc's own", dir.GetProperty("fix").GetString());
        Assert.False(checks.Single(c => c.GetProperty("check").GetString() == "criu").TryGetProperty("fix", out _));
    }

    [Fact]
    public async Task Preflight_is_a_verb_with_help()
    {
        var o = new StringWriter();
        var code = await new CommandLineParser(Commands.Root(), o, new StringWriter()).RunAsync(["preflight", "--help"], CancellationToken.None);
        Assert.Equal(0, code);
        Assert.Contains("Usage: crsc preflight", o.ToString());
        Assert.Contains("--json", o.ToString());
        Assert.Contains("--runtime-endpoint", o.ToString());
        o = new StringWriter();
        await new CommandLineParser(Commands.Root(), o, new StringWriter()).RunAsync(["--help"], CancellationToken.None);
        Assert.Matches(@"\n  preflight\s+Check this node", o.ToString());
    }
}

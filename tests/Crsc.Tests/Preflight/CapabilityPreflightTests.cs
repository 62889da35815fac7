using System.Text.Json;
using Crsc.Cli;
using Crsc.Configuration;
using Crsc.Preflight;
using Crsc.Testing;
using Crsc.Testing.Cri;
using static Crsc.Testing.Cri.RuntimeAnswers;

namespace Crsc.Tests.Preflight;

/// <summary>
/// The checkpoint and restore rows of <c>crsc preflight</c>, from the real CRI client and capability probe against an
/// in-process runtime that answers as containerd or CRI-O do (shapes and sources in <see cref="RuntimeAnswers"/>).
/// Checkpointing is crsc's core: off or impossible FAILs. Restore from images off or impossible WARNs. Unknown WARNs.
/// </summary>
public sealed class CapabilityPreflightTests : IAsyncLifetime
{
    private FakeCriServer _cri = null!;
    private readonly FakeNode _node = FakeNode.Healthy();
    private readonly TempDir _dir = new();

    public async Task InitializeAsync()
    {
        _cri = await FakeCriServer.StartAsync(_dir.Combine("runtime.sock"), http1: true);
        _node.Paths[_cri.SocketPath] = new PathInfo(PathKind.Socket, 0, (UnixFileMode)0b110_110_000);
    }

    public async Task DisposeAsync()
    {
        await _cri.DisposeAsync();
        _dir.Dispose();
    }

    private NodePreflight Preflight() =>
        // the fake serves CRI-O's /config on a second socket (a real CRI-O serves it on the CRI socket itself)
        new(_node, _node, new CriRuntimeVersionProbe(), new CriRuntimeCapabilitySource(_node, _cri.InfoEndpoint));

    private async Task<IReadOnlyList<PreflightRow>> RowsAsync() =>
        await Preflight().RunAsync(new CrscOptions { RuntimeEndpoint = _cri.Endpoint }, CancellationToken.None);

    private static PreflightRow Row(IReadOnlyList<PreflightRow> rows, string check) =>
        rows.SingleOrDefault(r => r.Check == check) ?? throw new Xunit.Sdk.XunitException($"no row '{check}' in: {string.Join(", ", rows.Select(r => r.Check))}");

    private void Containerd(string version, string configJson)
    {
        _cri.RuntimeName = "containerd";
        _cri.RuntimeVersion = version;
        _cri.StatusInfo["config"] = configJson;
    }

    private void Crio(string version, string? toml)
    {
        _cri.RuntimeName = "cri-o";
        _cri.RuntimeVersion = version;
        _cri.CrioConfig = toml;
    }

    [Fact]
    public async Task Containerd_2_1_checkpoints_and_restores_both_rows_ok_right_after_the_runtime_rows()
    {
        Containerd("v2.1.4", ContainerdConfigJson());
        var rows = await RowsAsync();
        Assert.Equal(["runtime socket", "runtime version", "checkpoint support", "restore support", "criu"], rows.Take(5).Select(r => r.Check));
        Assert.Equal(PreflightStatus.Ok, Row(rows, "checkpoint support").Status);
        Assert.Equal(PreflightStatus.Ok, Row(rows, "restore support").Status);
        Assert.Contains("containerd v2.1.4 restores from checkpoint images", Row(rows, "restore support").Detail);
        Assert.Equal([true], _cri.CallsTo("Status").Select(c => ((global::Runtime.V1.StatusRequest)c.Request!).Verbose));
    }

    [Fact]
    public async Task Containerd_2_3_4_with_restore_off_warns_with_the_config_line_and_still_exits_0()
    {
        Containerd("v2.3.4", ContainerdConfigJson(restoreViaCreate: false, enableCriu: true));
        var rows = await RowsAsync();
        Assert.Equal(PreflightStatus.Ok, Row(rows, "checkpoint support").Status);
        var restore = Row(rows, "restore support");
        Assert.Equal(PreflightStatus.Warn, restore.Status);
        Assert.Contains("disabled by the runtime's configuration", restore.Detail);
        Assert.Contains("enable_experimental_restore_via_create = false", restore.Detail);
        Assert.Contains("crsc still checkpoints", restore.Detail);
        Assert.Equal("in /etc/containerd/config.toml set enable_experimental_restore_via_create = true under " +
                     "[plugins.\"io.containerd.cri.v1.runtime\"] ([plugins.\"io.containerd.grpc.v1.cri\"] in a version = 2 file), then systemctl restart containerd",
            restore.Fix);
        Assert.Contains("see the restore row", Row(rows, "runtime version").Detail);
        Assert.Equal(0, PreflightCommand.ExitCode(rows));

        var table = new StringWriter();
        PreflightCommand.WriteTable(table, rows);
        var lines = table.ToString().Split('\n').ToList();
        var at = lines.FindIndex(l => l.StartsWith("restore support", StringComparison.Ordinal));
        Assert.Matches(@"^restore support\s+WARN\s+disabled by the runtime's configuration", lines[at]);
        Assert.Matches(@"^\s+fix: in /etc/containerd/config.toml set enable_experimental_restore_via_create = true", lines[at + 1]);
    }

    [Fact]
    public async Task Crio_with_enable_criu_support_false_fails_checkpoint_with_the_setting_the_issue_saw_pass()
    {
        // the node of issue 15: CRI-O 1.34 with enable_criu_support = false, which preflight used to call OK
        Crio("1.34.2", CrioConfigToml(level: null, enableCriuSupport: false));
        var rows = await RowsAsync();
        var checkpoint = Row(rows, "checkpoint support");
        Assert.Equal(PreflightStatus.Fail, checkpoint.Status);
        Assert.Contains("enable_criu_support = false", checkpoint.Detail);
        Assert.Contains("checkpoint/restore support not available", checkpoint.Detail);
        Assert.Contains("set enable_criu_support = true under [crio.runtime]", checkpoint.Fix);
        Assert.Equal(PreflightStatus.Warn, Row(rows, "restore support").Status);
        Assert.Equal(1, PreflightCommand.ExitCode(rows));
    }

    [Fact]
    public async Task Crio_with_checkpoint_only_checkpoints_and_warns_on_restore_with_the_level_to_set()
    {
        Crio("1.34.14", CrioConfigToml("checkpoint_only"));
        var rows = await RowsAsync();
        Assert.Equal(PreflightStatus.Ok, Row(rows, "checkpoint support").Status);
        var restore = Row(rows, "restore support");
        Assert.Equal(PreflightStatus.Warn, restore.Status);
        Assert.StartsWith("set container_level_enabled = \"checkpoint_restore\" under [crio.checkpoint_restore]", restore.Fix);
        Assert.Single(_cri.Calls, c => c.Method == "GET /config");

        var json = new StringWriter();
        PreflightCommand.WriteJson(json, rows);
        using var doc = JsonDocument.Parse(json.ToString());
        var row = doc.RootElement.GetProperty("checks").EnumerateArray().Single(r => r.GetProperty("check").GetString() == "restore support");
        Assert.Equal("WARN", row.GetProperty("status").GetString());
        Assert.Contains("container_level_enabled = \"checkpoint_restore\"", row.GetProperty("fix").GetString());
    }

    [Fact]
    public async Task Crio_whose_config_cannot_be_read_warns_unknown_for_both_saying_what_was_not_read()
    {
        Crio("1.34.14", null); // GET /config answers 404
        var rows = await RowsAsync();
        foreach (var check in new[] { "checkpoint support", "restore support" })
        {
            var row = Row(rows, check);
            Assert.Equal(PreflightStatus.Warn, row.Status);
            Assert.StartsWith("unknown: CRI-O 1.34.14: its configuration could not be read from GET /config", row.Detail);
            Assert.Contains("HTTP 404", row.Detail);
            Assert.Contains("crio status config", row.Fix);
        }
    }

    [Fact]
    public async Task Without_criu_checkpoint_fails_naming_criu()
    {
        Containerd("2.1.4", ContainerdConfigJson());
        _node.Programs.Remove("criu --version");
        var rows = await RowsAsync();
        var checkpoint = Row(rows, "checkpoint support");
        Assert.Equal(PreflightStatus.Fail, checkpoint.Status);
        Assert.Contains("criu is not installed", checkpoint.Detail);
        Assert.StartsWith("install CRIU >= 4", checkpoint.Fix);
    }

    [Fact]
    public async Task Containerd_2_4_warns_that_restore_was_removed_for_RestorePod()
    {
        Containerd("2.4.0", ContainerdConfigJson(enableCheckpointRestore: true));
        var rows = await RowsAsync();
        var restore = Row(rows, "restore support");
        Assert.Equal(PreflightStatus.Warn, restore.Status);
        Assert.Contains("not supported", restore.Detail);
        Assert.Contains("RestorePod", restore.Detail);
        Assert.Equal(PreflightStatus.Ok, Row(rows, "checkpoint support").Status);
    }

    [Fact]
    public async Task A_runtime_that_does_not_answer_Version_gets_no_capability_rows()
    {
        Containerd("2.1.4", ContainerdConfigJson());
        _cri.Inject("Version", CriFault.Error(Crsc.Cri.Grpc.GrpcStatusCode.Unavailable, "starting up"));
        var rows = await RowsAsync();
        Assert.Equal(PreflightStatus.Fail, Row(rows, "runtime socket").Status);
        Assert.DoesNotContain(rows, r => r.Check is "checkpoint support" or "restore support");
    }
}

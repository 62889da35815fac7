using Crsc.Api.Crds;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Tests.NodeAgent;
using static Crsc.Testing.Cri.RuntimeAnswers;
using S = Crsc.Api.Crds.CapabilityState;

namespace Crsc.Controllers.Tests.Runtime;

/// <summary>
/// <see cref="RuntimeCapabilityProbe.Classify"/> over the runtimes and versions people run. The facts each row rests
/// on, with their sources (containerd PRs 10365, 13913/13937, 13871; cri-o PRs 10248, 10251, 10327–10339), are listed
/// beside the rules in RuntimeCapabilityProbe.cs; the answers' shapes are in Crsc.Testing.Cri.RuntimeAnswers.
/// </summary>
public sealed class RuntimeCapabilityProbeTests
{
    private static readonly CriuFact Criu = CriuFact.Found("/usr/sbin/criu: Version: 4.1.1");

    private sealed record Case(
        RuntimeProbeInputs Inputs,
        S Checkpoint,
        S Restore,
        string[]? CheckpointSays = null,
        string[]? RestoreSays = null,
        string[]? RestoreFixSays = null,
        string[]? CheckpointFixSays = null);

    private static RuntimeProbeInputs Containerd(string version, string? configJson, CriuFact? criu = null, string? statusError = null) =>
        new(new RuntimeVersion("0.1.0", "containerd", version, "v1"),
            Status: statusError is null
                ? new RuntimeStatusInfo([new RuntimeCondition("RuntimeReady", true, "", "")],
                    configJson is null ? new Dictionary<string, string> { ["golang"] = "\"go1.24.4\"" }
                                       : new Dictionary<string, string> { ["config"] = configJson, ["golang"] = "\"go1.24.4\"" })
                : null,
            StatusError: statusError,
            Criu: criu ?? Criu);

    private static RuntimeProbeInputs Crio(string version, string? toml, CriuFact? criu = null, string? error = null) =>
        new(new RuntimeVersion("0.1.0", "cri-o", version, "v1"),
            Status: new RuntimeStatusInfo([new RuntimeCondition("RuntimeReady", true, "", "")], new Dictionary<string, string>()),
            CrioConfig: toml, CrioConfigError: toml is null ? error ?? "connection refused" : null, Criu: criu ?? Criu);

    private const string RestoreKeyFix = "enable_experimental_restore_via_create = true";
    private const string ContainerdTable = "[plugins.\"io.containerd.cri.v1.runtime\"]";
    private const string CrioLevelFix = "container_level_enabled = \"checkpoint_restore\"";

    private static readonly Dictionary<string, Case> Cases = new()
    {
        // containerd < 2.0: no CRI checkpoint; restore in CreateContainer came in 2.1 (PR 10365)
        ["containerd 1.7"] = new(Containerd("1.7.24", ContainerdConfigJson()), S.NotSupported, S.NotSupported,
            CheckpointSays: ["containerd 1.7.24", "CheckpointContainer"], RestoreSays: ["PR 10365"]),
        ["containerd 2.0: checkpoints, cannot restore"] = new(Containerd("v2.0.5", ContainerdConfigJson()), S.Supported, S.NotSupported,
            RestoreSays: ["added in containerd 2.1"]),
        ["containerd 2.1: both, no option exists"] = new(Containerd("2.1.4~ds1-2", ContainerdConfigJson()), S.Supported, S.Supported),
        ["containerd 2.2.6: before the default changed"] = new(Containerd("2.2.6", ContainerdConfigJson(enableCriu: true)), S.Supported, S.Supported),
        ["containerd 2.3.3: before the default changed"] = new(Containerd("2.3.3", ContainerdConfigJson()), S.Supported, S.Supported),
        // 2.2.7 and 2.3.4: off unless enabled (PRs 13937, 13913)
        ["containerd 2.2.7 disabled"] = new(Containerd("2.2.7", ContainerdConfigJson(restoreViaCreate: false, enableCriu: true)), S.Supported, S.DisabledByConfig,
            RestoreSays: ["enable_experimental_restore_via_create = false", "disabled by configuration"], RestoreFixSays: [RestoreKeyFix, ContainerdTable, "restart containerd"]),
        ["containerd 2.2.7 enabled"] = new(Containerd("2.2.7", ContainerdConfigJson(restoreViaCreate: true, enableCriu: true)), S.Supported, S.Supported),
        ["containerd 2.3.4 disabled"] = new(Containerd("2.3.4", ContainerdConfigJson(restoreViaCreate: false, enableCriu: true)), S.Supported, S.DisabledByConfig,
            RestoreFixSays: [RestoreKeyFix, ContainerdTable, "[plugins.\"io.containerd.grpc.v1.cri\"]"]),
        ["containerd 2.3.5 enabled"] = new(Containerd("2.3.5", ContainerdConfigJson(restoreViaCreate: true, enableCriu: true)), S.Supported, S.Supported),
        ["containerd 2.3.4 readable config without the key: the default is off"] = new(Containerd("2.3.4", ContainerdConfigJson()), S.Supported, S.DisabledByConfig,
            RestoreSays: ["does not set it"], RestoreFixSays: [RestoreKeyFix]),
        ["containerd 2.3.4 no verbose config: unknown, not a guess"] = new(Containerd("2.3.4", null), S.Supported, S.Unknown,
            RestoreSays: ["could not be read", "no info[\"config\"]"], RestoreFixSays: ["containerd config dump", RestoreKeyFix]),
        ["containerd 2.2.7 Status failed: unknown"] = new(Containerd("2.2.7", null, statusError: "CRI Status failed: Unavailable"), S.Supported, S.Unknown,
            RestoreSays: ["CRI Status failed"]),
        ["containerd 2.3.4 config not JSON: unknown"] = new(Containerd("2.3.4", "{not json"), S.Supported, S.Unknown, RestoreSays: ["not JSON"]),
        ["containerd 2.1 with the option set false (a backport): the configuration wins"] = new(
            Containerd("2.1.5", ContainerdConfigJson(restoreViaCreate: false)), S.Supported, S.DisabledByConfig),
        ["containerd 2.2.7 enable_criu = false"] = new(Containerd("2.2.7", ContainerdConfigJson(restoreViaCreate: true, enableCriu: false)), S.DisabledByConfig, S.DisabledByConfig,
            CheckpointSays: ["enable_criu = false"], CheckpointFixSays: ["enable_criu = true", ContainerdTable]),
        ["containerd enable_checkpoint_restore = false"] = new(Containerd("2.3.6", ContainerdConfigJson(restoreViaCreate: true, enableCheckpointRestore: false)), S.DisabledByConfig, S.DisabledByConfig,
            CheckpointFixSays: ["enable_checkpoint_restore = true"]),
        // 2.4 removed it (PR 13871) for RestorePod
        ["containerd 2.4: removed"] = new(Containerd("2.4.0", ContainerdConfigJson(enableCheckpointRestore: true)), S.Supported, S.NotSupported,
            RestoreSays: ["RestorePod", "PR 13871"]),
        ["containerd 2.4 even with the old option true"] = new(Containerd("2.4.1", ContainerdConfigJson(restoreViaCreate: true)), S.Supported, S.NotSupported),
        // CRI-O
        ["cri-o 1.25: too old"] = new(Crio("1.25.4", CrioConfigToml(null, true)), S.NotSupported, S.NotSupported),
        ["cri-o old, enable_criu_support = true"] = new(Crio("1.28.2", CrioConfigToml(null, true)), S.Supported, S.Supported),
        ["cri-o old, enable_criu_support = false"] = new(Crio("1.34.2", CrioConfigToml(null, false)), S.DisabledByConfig, S.DisabledByConfig,
            CheckpointSays: ["enable_criu_support = false", "checkpoint/restore support not available"], CheckpointFixSays: ["enable_criu_support = true", "[crio.runtime]", "restart crio"]),
        ["cri-o checkpoint_only (the new default)"] = new(Crio("1.34.14", CrioConfigToml("checkpoint_only")), S.Supported, S.DisabledByConfig,
            RestoreSays: ["checkpoint_only"], RestoreFixSays: [CrioLevelFix, "[crio.checkpoint_restore]", "restart crio"]),
        ["cri-o checkpoint_restore"] = new(Crio("1.34.14", CrioConfigToml("checkpoint_restore")), S.Supported, S.Supported),
        ["cri-o none"] = new(Crio("1.35.9", CrioConfigToml("none")), S.DisabledByConfig, S.DisabledByConfig, CheckpointFixSays: [CrioLevelFix]),
        ["cri-o unknown level value"] = new(Crio("1.36.6", CrioConfigToml("pod_only")), S.Unknown, S.Unknown),
        ["cri-o level and the deprecated switch contradict"] = new(Crio("1.34.14", CrioConfigToml("checkpoint_restore", false)), S.Unknown, S.Unknown,
            RestoreFixSays: ["remove enable_criu_support = false"]),
        ["cri-o config not readable: unknown"] = new(Crio("1.34.14", null, error: "GET /config answered HTTP 404"), S.Unknown, S.Unknown,
            RestoreSays: ["GET /config", "HTTP 404"], RestoreFixSays: ["crio status config"]),
        ["cri-o config without either key: unknown"] = new(Crio("1.30.1", "[crio]\n[crio.runtime]\n"), S.Unknown, S.Unknown),
        // neither
        ["unknown runtime"] = new(new RuntimeProbeInputs(new RuntimeVersion("0.1.0", "fake-cri", "1.0.0", "v1"), Criu: Criu), S.Unknown, S.Unknown,
            RestoreSays: ["fake-cri", "not one crsc knows"]),
        ["Version failed"] = new(new RuntimeProbeInputs(null, "CRI Version of the runtime: runtime unavailable", Criu: Criu), S.Unknown, S.Unknown,
            RestoreSays: ["runtime unavailable"]),
        ["version not understood"] = new(Containerd("devel", ContainerdConfigJson()), S.Unknown, S.Unknown, RestoreSays: ["\"devel\" is not understood"]),
        // CRIU
        ["containerd 2.1, criu missing"] = new(Containerd("2.1.4", ContainerdConfigJson(), CriuFact.Missing("criu: not found on PATH")), S.NotSupported, S.NotSupported,
            CheckpointSays: ["criu is not installed", "criu binary not found"], CheckpointFixSays: ["install CRIU"]),
        ["cri-o checkpoint_only, criu missing: both fixes"] = new(Crio("1.34.14", CrioConfigToml("checkpoint_only"), CriuFact.Missing("criu: not found on PATH")), S.NotSupported, S.NotSupported,
            RestoreSays: ["criu is not installed", "checkpoint_only"], RestoreFixSays: ["install CRIU", CrioLevelFix]),
        ["containerd 1.7, criu missing: the version is the reason"] = new(Containerd("1.7.24", ContainerdConfigJson(), CriuFact.Missing("not on PATH")), S.NotSupported, S.NotSupported,
            CheckpointSays: ["CheckpointContainer"]),
        ["criu not checked: a yes becomes unknown"] = new(Containerd("2.1.4", ContainerdConfigJson(), CriuFact.NotChecked("criu --version timed out")), S.Unknown, S.Unknown,
            CheckpointSays: ["could not be checked", "timed out"]),
    };

    public static TheoryData<string> CaseNames() => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Classify(string name)
    {
        var c = Cases[name];
        var caps = RuntimeCapabilityProbe.Classify(c.Inputs);
        Assert.True(c.Checkpoint == caps.Checkpoint.State, $"checkpoint: {caps.Checkpoint}");
        Assert.True(c.Restore == caps.Restore.State, $"restore: {caps.Restore}");
        foreach (var s in c.CheckpointSays ?? []) Assert.Contains(s, caps.Checkpoint.Reason);
        foreach (var s in c.RestoreSays ?? []) Assert.Contains(s, caps.Restore.Reason);
        foreach (var s in c.CheckpointFixSays ?? []) Assert.Contains(s, caps.Checkpoint.Fix ?? "(no fix)");
        foreach (var s in c.RestoreFixSays ?? []) Assert.Contains(s, caps.Restore.Fix ?? "(no fix)");
        // a verdict that is not a yes always says what to do, except a version that can never do it
        foreach (var cap in new[] { caps.Checkpoint, caps.Restore })
            if (cap.State is S.DisabledByConfig) Assert.False(string.IsNullOrEmpty(cap.Fix), cap.ToString());
        Assert.Equal(c.Inputs.Version?.RuntimeName ?? "", caps.RuntimeName);
        Assert.NotEmpty(caps.Inputs);
    }

    [Fact]
    public void The_inputs_say_what_was_read_and_what_failed()
    {
        var caps = RuntimeCapabilityProbe.Classify(Crio("1.34.14", null, error: "connection refused"));
        Assert.Equal(["CRI Version: cri-o 1.34.14", "CRI Status verbose: keys [], no \"config\"", "CRI-O GET /config: failed: connection refused",
            "criu: /usr/sbin/criu: Version: 4.1.1"], caps.Inputs);
    }

    [Fact]
    public void The_fingerprint_changes_with_the_version_the_configuration_and_criu_and_only_with_them()
    {
        string Fp(RuntimeProbeInputs i) => RuntimeCapabilityProbe.Classify(i).Fingerprint;
        var baseline = Fp(Containerd("2.3.4", ContainerdConfigJson(restoreViaCreate: false)));
        Assert.Matches("^[0-9a-f]{16}$", baseline);
        Assert.Equal(baseline, Fp(Containerd("2.3.4", ContainerdConfigJson(restoreViaCreate: false))));
        Assert.NotEqual(baseline, Fp(Containerd("2.3.5", ContainerdConfigJson(restoreViaCreate: false))));
        Assert.NotEqual(baseline, Fp(Containerd("2.3.4", ContainerdConfigJson(restoreViaCreate: true))));
        Assert.NotEqual(baseline, Fp(Containerd("2.3.4", ContainerdConfigJson(restoreViaCreate: false), CriuFact.Missing("gone"))));
        Assert.NotEqual(Fp(Crio("1.34.14", CrioConfigToml("checkpoint_only"))), Fp(Crio("1.34.14", CrioConfigToml("checkpoint_restore"))));
    }

    [Fact]
    public void Crio_toml_keys_are_read_per_table_with_comments_and_arrays_skipped()
    {
        var keys = RuntimeCapabilityProbe.ScanToml(CrioConfigToml("checkpoint_only", false) +
                                                  "[crio.other]\ncontainer_level_enabled = 'x' # another table\n");
        Assert.Equal("checkpoint_only", keys["crio.checkpoint_restore.container_level_enabled"]);
        Assert.Equal("false", keys["crio.runtime.enable_criu_support"]);
        Assert.Equal("x", keys["crio.other.container_level_enabled"]);
        Assert.Equal("crun", keys["crio.runtime.default_runtime"]);
        Assert.DoesNotContain(keys.Keys, k => k.Contains("CHOWN", StringComparison.Ordinal));
    }

    // --- ProbeAsync: which questions it asks, and what a failed answer does ---

    private sealed class Reader(Func<Task<string>> read) : ICrioConfigReader
    {
        public int Calls;
        public Task<string> ReadConfigAsync(CancellationToken ct) { Calls++; return read(); }
    }

    [Fact]
    public async Task The_probe_asks_containerd_for_its_verbose_status_and_never_reads_crio_config()
    {
        var runtime = new FakeContainerRuntime
        {
            Version = new RuntimeVersion("0.1.0", "containerd", "2.3.4", "v1"),
            Status = new RuntimeStatusInfo([], new Dictionary<string, string> { ["config"] = ContainerdConfigJson(restoreViaCreate: false) }),
        };
        var reader = new Reader(() => Task.FromResult(CrioConfigToml()));
        var caps = await new RuntimeCapabilityProbe(runtime, _ => Task.FromResult(Criu), reader).ProbeAsync(CancellationToken.None);
        Assert.Equal([true], runtime.StatusCalls);
        Assert.Equal(0, reader.Calls);
        Assert.Equal(S.DisabledByConfig, caps.Restore.State);
        Assert.Equal(("containerd", "2.3.4"), (caps.RuntimeName, caps.RuntimeVersion));
    }

    [Fact]
    public async Task A_crio_config_that_cannot_be_read_makes_the_crio_verdicts_unknown_with_the_error()
    {
        var runtime = new FakeContainerRuntime { Version = new RuntimeVersion("0.1.0", "cri-o", "1.34.14", "v1") };
        var reader = new Reader(() => throw new TimeoutException("GET /config did not answer within 5s"));
        var caps = await new RuntimeCapabilityProbe(runtime, _ => Task.FromResult(Criu), reader).ProbeAsync(CancellationToken.None);
        Assert.Equal(1, reader.Calls);
        Assert.Equal(S.Unknown, caps.Restore.State);
        Assert.Contains("did not answer within 5s", caps.Restore.Reason);
        Assert.Contains("CRI-O GET /config: failed: GET /config did not answer within 5s", caps.Inputs);
    }

    [Fact]
    public async Task Failing_calls_and_a_failing_criu_check_are_unknowns_not_exceptions()
    {
        var runtime = new FakeContainerRuntime
        {
            Version = new RuntimeVersion("0.1.0", "containerd", "2.2.7", "v1"),
            OnStatus = _ => throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Unavailable, "CRI Status: runtime unavailable"),
        };
        var caps = await new RuntimeCapabilityProbe(runtime, _ => throw new IOException("fork failed")).ProbeAsync(CancellationToken.None);
        Assert.Equal(S.Unknown, caps.Checkpoint.State);
        Assert.Contains("fork failed", caps.Checkpoint.Reason);
        Assert.Equal(S.Unknown, caps.Restore.State);
        Assert.Contains("runtime unavailable", caps.Restore.Reason);
    }

    [Fact]
    public async Task Cancellation_is_not_turned_into_an_unknown()
    {
        using var cts = new CancellationTokenSource();
        var runtime = new FakeContainerRuntime { OnStatus = _ => { cts.Cancel(); throw new OperationCanceledException(cts.Token); } };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            new RuntimeCapabilityProbe(runtime, _ => Task.FromResult(Criu)).ProbeAsync(cts.Token));
    }
}

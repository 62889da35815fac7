using Crsc.Api.Crds;
using Crsc.Cli;
using Crsc.Configuration;
using Crsc.Controllers.Nodes;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Storage;
using Crsc.Cri;
using Crsc.Preflight;

namespace Crsc.Daemon;

/// <summary>
/// What the daemon reports in its node's <c>CheckpointNode</c>: the runtime capability probe (CRI Version and verbose
/// Status, CRI-O's configuration, CRIU), the store's checkpoints and space, and this binary's version. The probe's CRI
/// calls are local and cheap and run every round, so a runtime restarted with another version or configuration is
/// seen within one interval; <c>criu --version</c> is a process and runs at most every <see cref="CriuRecheck"/>.
/// </summary>
internal sealed class DaemonNodeReportSource(
    IContainerRuntime runtime,
    ICheckpointStore store,
    CrscOptions options,
    TimeProvider time) : INodeReportSource
{
    public static readonly TimeSpan CriuRecheck = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan CriuTimeout = TimeSpan.FromSeconds(10);

    private readonly SystemProgramRunner _programs = new();
    private (CriuFact Fact, string? Version, DateTimeOffset At)? _criu;

    /// <summary>The last probe's verdicts (null before the first), for status and health.</summary>
    public RuntimeCapabilities? Last { get; private set; }

    public async ValueTask<NodeReport> ReportAsync(CancellationToken ct)
    {
        var probe = new RuntimeCapabilityProbe(runtime, CriuAsync, new CrioConfigReader(options.RuntimeEndpoint));
        var caps = await probe.ProbeAsync(ct).ConfigureAwait(false);
        Last = caps;
        return new NodeReport(
            caps.RuntimeName.Length == 0 ? null : new NodeRuntime { Name = caps.RuntimeName, Version = caps.RuntimeVersion },
            _criu?.Version,
            ToApi(caps.Checkpoint),
            ToApi(caps.Restore),
            StoreReport(),
            BuildInfo.Version);
    }

    public static NodeCapability ToApi(Capability c) => new()
    {
        State = c.State,
        Reason = Clip(c.Reason),
        Fix = c.Fix is null ? null : Clip(c.Fix),
    };

    private static string Clip(string text) =>
        text.Length <= NodeCapability.MaxTextLength ? text : text[..(NodeCapability.MaxTextLength - 1)] + "…";

    private NodeStore StoreReport()
    {
        var checkpoints = store.List();
        var bytes = checkpoints.Sum(c => c.Size);
        long free = 0;
        try
        {
            var drive = new DriveInfo(options.CheckpointDir);
            free = drive.AvailableFreeSpace / NodeStore.FreeBytesStep * NodeStore.FreeBytesStep;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            // no store directory yet: nothing free to report
        }
        return new NodeStore { Checkpoints = checkpoints.Count, Bytes = bytes, FreeBytes = free, Used = CliOutput.Bytes(bytes) };
    }

    private async Task<CriuFact> CriuAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (_criu is { } cached && now - cached.At < CriuRecheck) return cached.Fact;
        var output = await _programs.RunAsync("criu", ["--version"], CriuTimeout, ct).ConfigureAwait(false);
        var version = NodePreflight.ParseCriuVersion(output.Output);
        var fact = !output.Started ? CriuFact.Missing("criu is not on the search path")
            : output.ExitCode == 0 && version is not null ? CriuFact.Found($"criu {version}")
            : CriuFact.NotChecked($"criu --version exited {output.ExitCode} without a version");
        _criu = (fact, version?.ToString(), now);
        return fact;
    }
}

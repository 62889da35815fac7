using Crsc.Api.Crds;
using Crsc.Cli;
using Crsc.Configuration;
using Crsc.Controllers.NodeAgent;
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
/// seen within one interval. The same probe's verdicts are in the <c>runtime</c> health entry (/readyz, STATUS=).
/// </summary>
/// <remarks>
/// CRIU: the runtime runs it, on its own search path, which crsc may not see (a static pod's image has no criu). So
/// the daemon counts CRIU as there when <c>criu --version</c> answers on its own path (checked at most every
/// <see cref="CriuRecheck"/>) or when a checkpoint through the runtime has succeeded since start; otherwise it says it
/// could not check, never that CRIU is missing (<c>crsc preflight</c>, run on the node, can say that).
/// </remarks>
internal sealed class DaemonNodeReportSource(
    IContainerRuntime runtime,
    StoreUsageReporter storeUsage,
    CheckpointMetrics metrics,
    CrscOptions options,
    TimeProvider time,
    ClusterServices? cluster = null) : INodeReportSource
{
    /// <summary>The API group of the pod-level checkpoint API (KEP-5823).</summary>
    public const string PodCheckpointGroup = "checkpoint.k8s.io";
    public static readonly TimeSpan DiscoveryRecheck = TimeSpan.FromMinutes(10);
    private (string Answer, DateTimeOffset At)? _podCheckpointApi;
    public static readonly TimeSpan CriuRecheck = TimeSpan.FromMinutes(10);

    private readonly SystemProgramRunner _programs = new();
    private (CriuFact Fact, string? Version, DateTimeOffset At)? _criu;

    /// <summary>The last answer about the pod-level checkpoint API (null: not asked, no API server).</summary>
    public string? LastPodCheckpointApi => _podCheckpointApi?.Answer;

    /// <summary>The last probe's verdicts (null before the first), for status and health.</summary>
    public RuntimeCapabilities? Last { get; private set; }

    /// <summary>Probes the runtime now (CRI calls; criu at most every <see cref="CriuRecheck"/>).</summary>
    /// <param name="known">the runtime's Version answer the caller has just had</param>
    public async Task<RuntimeCapabilities> ProbeAsync(CancellationToken ct, RuntimeVersion? known = null)
    {
        var probe = new RuntimeCapabilityProbe(runtime, CriuAsync, new CrioConfigReader(options.RuntimeEndpoint));
        var caps = await probe.ProbeAsync(ct, known).ConfigureAwait(false);
        Last = caps;
        return caps;
    }

    /// <remarks>
    /// The runtime monitor probes every interval and keeps <see cref="Last"/>; the report takes that rather than asking
    /// the runtime a second time, and probes itself only before the monitor's first probe.
    /// </remarks>
    public async ValueTask<NodeReport> ReportAsync(CancellationToken ct)
    {
        var caps = Last ?? await ProbeAsync(ct).ConfigureAwait(false);
        return new NodeReport(
            caps.RuntimeName.Length == 0 ? null : new NodeRuntime { Name = caps.RuntimeName, Version = caps.RuntimeVersion },
            _criu?.Version,
            ToApi(caps.Checkpoint),
            ToApi(caps.Restore),
            StoreReport(),
            BuildInfo.Version,
            await PodCheckpointApiAsync(ct).ConfigureAwait(false));
    }

    /// <summary>What discovery says of the pod-level checkpoint API, asked at most every <see cref="DiscoveryRecheck"/>; null when it cannot be asked.</summary>
    public async Task<string?> PodCheckpointApiAsync(CancellationToken ct)
    {
        if (cluster?.Api is not { } api) return null;
        var now = time.GetUtcNow();
        if (_podCheckpointApi is { } cached && now - cached.At < DiscoveryRecheck) return cached.Answer;
        try
        {
            var versions = await api.GetGroupVersionsAsync(PodCheckpointGroup, ct).ConfigureAwait(false);
            var answer = versions.Count == 0 ? "not served" : "served: " + string.Join(", ", versions);
            _podCheckpointApi = (answer, now);
            return answer;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return _podCheckpointApi?.Answer; // the API server away: the last answer, or unknown
        }
    }

    /// <summary>The verdicts in a few words for the <c>runtime</c> health entry; empty when both are Supported.</summary>
    public static string Describe(RuntimeCapabilities caps)
    {
        static string? One(string what, Capability c) => c.State switch
        {
            CapabilityState.Supported => null,
            CapabilityState.DisabledByConfig => $"{what}: disabled by runtime config (crsc preflight shows the setting)",
            CapabilityState.NotSupported => $"{what}: not supported ({c.Reason})",
            _ => $"{what}: unknown",
        };
        return string.Join("; ", new[] { One("checkpoint", caps.Checkpoint), One("restore", caps.Restore) }.Where(x => x is not null));
    }

    /// <summary>A verdict a person must act on: the runtime turns it off or cannot (Unknown is not).</summary>
    public static bool NeedsAction(RuntimeCapabilities caps) =>
        caps.Checkpoint.State is CapabilityState.DisabledByConfig or CapabilityState.NotSupported
        || caps.Restore.State is CapabilityState.DisabledByConfig or CapabilityState.NotSupported;

    public static NodeCapability ToApi(Capability c) => new()
    {
        State = c.State,
        Reason = Clip(c.Reason),
        Fix = c.Fix is null ? null : Clip(c.Fix),
    };

    private static string Clip(string text) =>
        text.Length <= NodeCapability.MaxTextLength ? text : text[..(NodeCapability.MaxTextLength - 1)] + "…";

    /// <summary>The store's usage as the store's own change events keep it (no listing of the store per round).</summary>
    private NodeStore StoreReport()
    {
        var usage = storeUsage.Last ?? storeUsage.Refresh() ?? default;
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
        return new NodeStore { Checkpoints = usage.Checkpoints, Bytes = usage.Bytes, FreeBytes = free, Used = CliOutput.Bytes(usage.Bytes) };
    }

    private async Task<CriuFact> CriuAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (_criu is not { } cached || now - cached.At >= CriuRecheck)
        {
            var (fact, version) = await NodePreflight.CriuFactAsync(_programs,
                CriuFact.NotChecked("criu is not on crsc's own search path (the runtime's may differ)"), ct).ConfigureAwait(false);
            _criu = cached = (fact, version?.ToString(), now);
        }
        if (cached.Fact.Present != true && metrics.Checkpoints.Value(CheckpointMetrics.ResultSucceeded) > 0)
            return CriuFact.Found("a checkpoint through the runtime succeeded since crsc started");
        return cached.Fact;
    }
}

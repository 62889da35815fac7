using System.Text.Json;
using System.Threading.Channels;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Queue;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Nodes;

/// <summary>What the node agent knows about its node right now: the input of a <see cref="CheckpointNode"/>'s status.</summary>
public sealed record NodeReport(
    NodeRuntime? Runtime,
    string? CriuVersion,
    NodeCapability Checkpoint,
    NodeCapability Restore,
    NodeStore? Store,
    string AgentVersion,
    string? PodCheckpointApi = null);

/// <summary>Where the reporter gets a <see cref="NodeReport"/> from (the daemon: its runtime probe and its store).</summary>
public interface INodeReportSource
{
    ValueTask<NodeReport> ReportAsync(CancellationToken ct);
}

public sealed record CheckpointNodeReporterOptions
{
    public required string NodeName { get; init; }

    /// <summary>How often the report is computed again and compared with what the object says.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The longest the object goes unwritten when nothing changes (its <c>lastHeartbeatTime</c>). Long on purpose:
    /// liveness is the presence Lease; this object is written when something changes, not to say "still here".
    /// </summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromHours(6);

    /// <summary>
    /// After a failed write, the first wait before trying again: doubling up to <see cref="Interval"/> when the API
    /// server answered with an error, up to 3 s while it cannot be reached (<see cref="ReconnectBackoff"/>).
    /// </summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// Keeps this node's <see cref="CheckpointNode"/> (named after the node) saying what the node agent found: created
/// when missing (and again if someone deletes it), its status written only when the report changed or the heartbeat
/// is due, so that a node at rest writes nothing. It reads its own object through a shared informer selected by name,
/// so a change by anyone else is seen and put right at once.
/// </summary>
public sealed partial class CheckpointNodeReporter
{
    private readonly IKubeResourceClient<CheckpointNode> _client;
    private readonly Informer<CheckpointNode> _objects;
    private readonly INodeReportSource _source;
    private readonly CheckpointNodeReporterOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<bool> _poke = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private int _writes;
    private int _rounds;
    private volatile bool _waiting;

    public CheckpointNodeReporter(IKubeApi kube, Informer<CheckpointNode> objects, INodeReportSource source,
        CheckpointNodeReporterOptions options, TimeProvider time, ILogger logger)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(options.NodeName);
        _client = kube.Resource(CrscResources.CheckpointNodes);
        _objects = objects;
        _source = source;
        _options = options;
        _time = time;
        _logger = logger;
    }

    /// <summary>
    /// Sets the reporter up with <paramref name="manager"/>: node work, on every instance, over an informer of this
    /// node's object only.
    /// </summary>
    public static CheckpointNodeReporter SetUp(ControllerManager manager, INodeReportSource source, CheckpointNodeReporterOptions options)
    {
        ArgumentNullException.ThrowIfNull(manager);
        var objects = manager.Informers.For(CrscResources.CheckpointNodes,
            new InformerOptions { FieldSelector = $"metadata.name={options.NodeName}", Name = "informer/checkpointnode" });
        var reporter = new CheckpointNodeReporter(manager.Kube, objects, source, options, manager.Time,
            manager.Loggers.CreateLogger<CheckpointNodeReporter>());
        manager.AddRunnable("checkpointnode reporter", reporter.RunAsync);
        return reporter;
    }

    /// <summary>Writes made to the API (creates and status updates) since start: 0 per round at rest.</summary>
    public int Writes => Volatile.Read(ref _writes);

    /// <summary>Rounds done since start (each computes the report and compares it with the object).</summary>
    public int Rounds => Volatile.Read(ref _rounds);

    /// <summary>True while the loop waits for the next interval or a poke (nothing in flight).</summary>
    public bool Waiting => _waiting;

    /// <summary>Report again now (the runtime restarted, a probe changed, a checkpoint was stored).</summary>
    public void Poke() => _poke.Writer.TryWrite(true);

    public async Task RunAsync(CancellationToken ct)
    {
        using var registration = _objects.AddEventHandler(new ResourceEventHandler<CheckpointNode>(
            _ => Poke(), (_, _) => Poke(), _ => Poke()));
        try
        {
            await _objects.WaitForSyncAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return;
        }
        var retry = new ReconnectBackoff(_options.RetryDelay, _options.Interval, ReconnectBackoff.DefaultUnreachableMax, jitter: 0);
        while (!ct.IsCancellationRequested)
        {
            TimeSpan wait;
            try
            {
                await ReportOnceAsync(ct).ConfigureAwait(false);
                Interlocked.Increment(ref _rounds);
                wait = _options.Interval;
                retry.Reset();
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // the API server away or refusing: the report waits; the node agent goes on
                Interlocked.Increment(ref _rounds);
                wait = retry.Next(e);
                Log.WriteFailed(_logger, _options.NodeName, e.Message, wait);
            }
            using var delay = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var sleeping = Task.Delay(wait, _time, delay.Token);
            var poked = _poke.Reader.WaitToReadAsync(delay.Token).AsTask();
            _waiting = true;
            try
            {
                await Task.WhenAny(sleeping, poked).ConfigureAwait(false);
            }
            finally
            {
                _waiting = false;
                await delay.CancelAsync().ConfigureAwait(false);
            }
            while (_poke.Reader.TryRead(out _)) { }
        }
    }

    /// <summary>One round: compares the report with the object and writes only what differs. Returns whether it wrote.</summary>
    public async Task<bool> ReportOnceAsync(CancellationToken ct)
    {
        var report = await _source.ReportAsync(ct).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        var current = _objects.Get(Crsc.Api.ObjectKey.Cluster(_options.NodeName));
        if (current is null)
        {
            try
            {
                current = await _client.CreateAsync(new CheckpointNode { Metadata = new ObjectMeta { Name = _options.NodeName } }, ct)
                    .ConfigureAwait(false);
                Interlocked.Increment(ref _writes);
                Log.Created(_logger, _options.NodeName);
            }
            catch (AlreadyExistsException)
            {
                current = await _client.GetAsync(null, _options.NodeName, ct).ConfigureAwait(false);
            }
        }
        var written = await StatusWriter.UpdateStatusAsync(_client, current, obj => Apply(obj, report, now), ct).ConfigureAwait(false);
        if (written is null) return false;
        Interlocked.Increment(ref _writes);
        Log.Reported(_logger, _options.NodeName, report.Checkpoint.State, report.Restore.State);
        return true;
    }

    /// <summary>Puts <paramref name="report"/> into <paramref name="obj"/>'s status; false when that changes nothing and the heartbeat is not due.</summary>
    private bool Apply(CheckpointNode obj, NodeReport report, DateTimeOffset now)
    {
        var status = obj.Status ?? new CheckpointNodeStatus();
        var before = Comparable(obj.Status);
        status.Runtime = report.Runtime;
        status.RuntimeSummary = report.Runtime is { } r ? $"{r.Name} {r.Version}" : null;
        status.CriuVersion = report.CriuVersion;
        status.Checkpoint = report.Checkpoint;
        status.Restore = report.Restore;
        status.Store = report.Store;
        status.AgentVersion = report.AgentVersion;
        status.PodCheckpointApi = report.PodCheckpointApi;
        SetCapabilityCondition(status, CheckpointNodeConditions.CheckpointReady, report.Checkpoint, now);
        SetCapabilityCondition(status, CheckpointNodeConditions.RestoreReady, report.Restore, now);
        var changed = !string.Equals(before, Comparable(status), StringComparison.Ordinal);
        var heartbeatDue = status.LastHeartbeatTime is not { } last || now - last >= _options.HeartbeatInterval;
        if (!changed && !heartbeatDue) return false;
        status.LastHeartbeatTime = KubeTime.Truncate(now);
        obj.Status = status;
        return true;
    }

    private static void SetCapabilityCondition(CheckpointNodeStatus status, string type, NodeCapability capability, DateTimeOffset now)
    {
        var value = capability.State switch
        {
            CapabilityState.Supported => ConditionStatus.True,
            CapabilityState.Unknown => ConditionStatus.Unknown,
            _ => ConditionStatus.False,
        };
        var message = capability.Fix is { Length: > 0 } fix ? $"{capability.Reason}; to enable: {fix}" : capability.Reason;
        status.SetCondition(type, value, capability.State.ToString(), message, null, now);
    }

    /// <summary>The status without its heartbeat, as text: two that compare equal say the same.</summary>
    private static string Comparable(CheckpointNodeStatus? status)
    {
        if (status is null) return "";
        var heartbeat = status.LastHeartbeatTime;
        status.LastHeartbeatTime = null;
        try
        {
            return JsonSerializer.Serialize(status, CrscJsonContext.Default.CheckpointNodeStatus);
        }
        finally
        {
            status.LastHeartbeatTime = heartbeat;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(21501, LogLevel.Information, "CheckpointNode {Node} created")]
        public static partial void Created(ILogger logger, string node);

        [LoggerMessage(21502, LogLevel.Information, "CheckpointNode {Node} reported: checkpoint {Checkpoint}, restore {Restore}")]
        public static partial void Reported(ILogger logger, string node, CapabilityState checkpoint, CapabilityState restore);

        [LoggerMessage(21503, LogLevel.Warning, "CheckpointNode {Node} could not be written, trying again in {Retry}: {Reason}")]
        public static partial void WriteFailed(ILogger logger, string node, string reason, TimeSpan retry);
    }
}

using System.Text.Json;
using Crsc.Controllers.NodeAgent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Crsc.Controllers.Schedules;

namespace Crsc.Controllers.Autonomy;

/// <summary>
/// The node state in memory and on disk: loaded at start (<see cref="Load"/>), its view of schedules and pods replaced
/// from the informers while connected (<see cref="ReplaceView"/>), its runs recorded as they happen. Writes only
/// when something changed. A failed write is logged; the state in memory goes on. Thread-safe.
/// </summary>
public sealed partial class NodeStateStore : IScheduleRunLog, IWorkloadNameResolver, Crsc.Controllers.Nodes.INodeAwayLog
{
    private readonly Lock _gate = new();
    private readonly INodeStateFile _file;
    private readonly ILogger _logger;
    private NodeState _state;
    private byte[] _saved = [];

    public NodeStateStore(INodeStateFile file, string nodeName, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentException.ThrowIfNullOrWhiteSpace(nodeName);
        _file = file;
        _logger = logger ?? NullLogger.Instance;
        _state = new NodeState { Node = nodeName };
    }

    public NodeState Current
    {
        get { lock (_gate) return _state; }
    }

    /// <summary>Reads the saved state; keeps an empty one when there is none, it is refused, or it is another node's.</summary>
    public void Load()
    {
        var loaded = _file.Load();
        lock (_gate)
        {
            if (loaded is null) return;
            if (loaded.Node != _state.Node)
            {
                Log.OtherNode(_logger, loaded.Node, _state.Node);
                return;
            }
            _state = loaded;
            _saved = Serialize(loaded);
            Log.Loaded(_logger, loaded.Schedules.Count, loaded.Pods.Count, loaded.Runs.Count);
        }
    }

    /// <summary>
    /// The schedules and pods as the informers show them now; runs of schedules no longer here are forgotten.
    /// Returns whether the file was written.
    /// </summary>
    public bool ReplaceView(IReadOnlyList<SavedSchedule> schedules, IReadOnlyList<SavedPod> pods)
    {
        lock (_gate)
        {
            var uids = schedules.Select(s => s.Schedule.Metadata.Uid).ToHashSet(StringComparer.Ordinal);
            _state = _state with
            {
                Schedules = [.. schedules.OrderBy(s => s.Schedule.Metadata.Namespace, StringComparer.Ordinal)
                    .ThenBy(s => s.Schedule.Metadata.Name, StringComparer.Ordinal)],
                Pods = [.. pods.OrderBy(p => p.Namespace, StringComparer.Ordinal).ThenBy(p => p.Name, StringComparer.Ordinal)],
                Runs = [.. _state.Runs.Where(r => uids.Contains(r.ScheduleUid))],
            };
            return SaveIfChanged();
        }
    }

    public ScheduleRun? LastRun(string scheduleUid)
    {
        lock (_gate) return _state.Runs.Where(r => r.ScheduleUid == scheduleUid).MaxBy(r => r.RunAt);
    }

    public ScheduleRun? LastRun(string scheduleUid, string pod, string container)
    {
        lock (_gate) return _state.Runs.FirstOrDefault(r => r.ScheduleUid == scheduleUid && r.Pod == pod && r.Container == container);
    }

    public void Record(ScheduleRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        lock (_gate)
        {
            var old = _state.Runs.FirstOrDefault(r => r.ScheduleUid == run.ScheduleUid && r.Pod == run.Pod && r.Container == run.Container);
            if (old is not null && old.RunAt >= run.RunAt) return;
            _state = _state with { Runs = [.. _state.Runs.Where(r => r != old), run] };
            SaveIfChanged();
        }
    }

    public IReadOnlyList<AwayTried> AwayTried()
    {
        lock (_gate) return [.. _state.AwayTried];
    }

    public void AddAwayTried(IReadOnlyList<AwayTried> pods)
    {
        ArgumentNullException.ThrowIfNull(pods);
        if (pods.Count == 0) return;
        lock (_gate)
        {
            var replaced = pods.Select(p => (p.Namespace, p.Pod)).ToHashSet();
            _state = _state with { AwayTried = [.. _state.AwayTried.Where(p => !replaced.Contains((p.Namespace, p.Pod))), .. pods] };
            SaveIfChanged();
        }
    }

    public void ClearAwayTried()
    {
        lock (_gate)
        {
            if (_state.AwayTried.Count == 0) return;
            _state = _state with { AwayTried = [] };
            SaveIfChanged();
        }
    }

    /// <summary>The saved pod's workload (for the store's layout when the pod informer has not seen the pod).</summary>
    public string? WorkloadOf(string @namespace, string pod)
    {
        lock (_gate) return _state.Pods.FirstOrDefault(p => p.Namespace == @namespace && p.Name == pod)?.Workload;
    }

    private bool SaveIfChanged()
    {
        var bytes = Serialize(_state);
        if (bytes.AsSpan().SequenceEqual(_saved)) return false;
        try
        {
            _file.Save(_state);
            _saved = bytes;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.SaveFailed(_logger, e);
            return false;
        }
    }

    private static byte[] Serialize(NodeState state) => JsonSerializer.SerializeToUtf8Bytes(state, AutonomyJsonContext.Default.NodeState);

    private static partial class Log
    {
        [LoggerMessage(20001, LogLevel.Information, "Node state loaded: {Schedules} schedule(s), {Pods} pod(s), {Runs} run(s)")]
        public static partial void Loaded(ILogger logger, int schedules, int pods, int runs);

        [LoggerMessage(20002, LogLevel.Warning, "Node state belongs to node {SavedNode}, not {NodeName}; starting without it")]
        public static partial void OtherNode(ILogger logger, string savedNode, string nodeName);

        [LoggerMessage(20003, LogLevel.Warning, "Node state could not be saved; it is kept in memory and saved at the next change")]
        public static partial void SaveFailed(ILogger logger, Exception exception);
    }
}

using System.Threading.Channels;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Schedules;

namespace Crsc.Controllers.Autonomy;

/// <summary>
/// Keeps the node state's view of schedules and pods up to date from the informers while connected: on any change,
/// after a short quiet time (<see cref="Debounce"/>), once both informers have synced (an unsynced cache would
/// overwrite a good saved state with an empty one), it saves the schedules whose targets have running pods on this
/// node and those pods. Nothing is written when nothing changed.
/// </summary>
public sealed class NodeStateRecorder
{
    private readonly NodeStateStore _store;
    private readonly Informer<CheckpointSchedule> _schedules;
    private readonly Informer<Pod> _pods;
    private readonly string _nodeName;
    private readonly TimeProvider _time;
    private readonly Channel<bool> _changed = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    public NodeStateRecorder(NodeStateStore store, Informer<CheckpointSchedule> schedules, Informer<Pod> pods, string nodeName,
        TimeProvider time)
    {
        _store = store;
        _schedules = schedules;
        _pods = pods;
        _nodeName = nodeName;
        _time = time;
    }

    public TimeSpan Debounce { get; init; } = TimeSpan.FromSeconds(2);

    public async Task RunAsync(CancellationToken ct)
    {
        using var a = _schedules.AddEventHandler(new ResourceEventHandler<CheckpointSchedule>(_ => Changed(), (_, _) => Changed(), _ => Changed()));
        using var b = _pods.AddEventHandler(new ResourceEventHandler<Pod>(_ => Changed(), (_, _) => Changed(), _ => Changed()));
        Changed();
        try
        {
            while (await _changed.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                await Task.Delay(Debounce, _time, ct).ConfigureAwait(false);
                _changed.Reader.TryRead(out _);
                Refresh();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private void Changed() => _changed.Writer.TryWrite(true);

    /// <summary>Saves the view now (when both informers have synced); returns whether the file was written.</summary>
    public bool Refresh()
    {
        if (!_schedules.HasSynced || !_pods.HasSynced) return false;
        var running = _pods.List()
            .Where(p => p.Spec.NodeName == _nodeName && p.Metadata.DeletionTimestamp is null && p.Status?.Phase == "Running")
            .ToList();
        var schedules = new List<SavedSchedule>();
        var used = new Dictionary<string, Pod>(StringComparer.Ordinal);
        foreach (var schedule in _schedules.List().Where(s => s.Metadata.DeletionTimestamp is null))
        {
            var pods = running.Where(p => p.Metadata.Namespace == schedule.Metadata.Namespace && ScheduleReconciler.IsTarget(p, schedule.Spec.Target))
                .OrderBy(p => p.Metadata.Name, StringComparer.Ordinal).ToList();
            if (pods.Count == 0) continue;
            foreach (var p in pods) used[$"{p.Metadata.Namespace}/{p.Metadata.Name}"] = p;
            schedules.Add(new SavedSchedule(schedule, [.. pods.Select(p => p.Metadata.Name!)]));
        }
        var saved = used.Values.Select(p => new SavedPod(p.Metadata.Namespace ?? "default", p.Metadata.Name!, p.Metadata.Uid,
            PodOwnerWorkloadResolver.WorkloadOf(p), [.. p.Spec.Containers.Select(c => c.Name)])).ToList();
        return _store.ReplaceView(schedules, saved);
    }
}

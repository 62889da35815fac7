using System.Threading.Channels;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Nodes;

/// <summary>
/// When the node starts going away for a drain or a termination taint, checkpoints every managed container at once
/// (reason <see cref="CheckpointReasons.NodeDrain"/>), before the pods are evicted: once per going-away episode (an
/// episode is told by its <see cref="NodeAwayState.Episode"/>), not on every update of the Node. A cordon followed by a
/// taint is one episode; an uncordon ends it, and the next cordon is a new one.
/// <para>
/// With a <see cref="PodEvictionWatcher"/>, a managed pod being evicted is checkpointed too (same reason), whether or
/// not the Node shows a drain (the descheduler, a preemption, a NoExecute taint): its containers go first in a run
/// already going on, and a pod not yet tried in this episode gets a run of its own. No pod is tried twice in an episode
/// (a failed checkpoint is not retried: the kubelet is stopping the pod).
/// </para>
/// </summary>
public sealed partial class NodeDrainCheckpoints(NodeGoingAway state, NodeAwayCheckpointer checkpointer, int parallelism, ILogger logger,
    PodEvictionWatcher? evictions = null)
{
    private int _runs;

    /// <summary>Drain runs done since start (a run for evicted pods counts as one).</summary>
    public int Runs => Volatile.Read(ref _runs);

    /// <summary>The last drain run (null before the first).</summary>
    public NodeAwayRun? LastRun { get; private set; }

    public async Task RunAsync(CancellationToken ct)
    {
        var wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        void OnChanged(NodeAwayChange _) => wake.Writer.TryWrite(true);
        void OnEvictions() => wake.Writer.TryWrite(true);
        state.Changed += OnChanged;
        if (evictions is not null) evictions.Changed += OnEvictions;
        try
        {
            var drainDone = 0;
            var triedEpisode = 0;
            // the pods this episode's runs took (or tried), with their UID when known: a later pod of the same name is another
            var tried = new Dictionary<(string, string), string?>();
            bool Tried(string ns, string pod, string? uid) =>
                tried.TryGetValue((ns, pod), out var known) && (known is null || uid is null || known == uid);
            bool Untried(ManagedContainer c) => !Tried(c.Namespace, c.Pod, c.PodUid);
            while (!ct.IsCancellationRequested)
            {
                var now = state.Current;
                if (now.Episode != triedEpisode)
                {
                    tried.Clear();
                    triedEpisode = now.Episode;
                }
                NodeAwayRun? run = null;
                if (now is { GoingAway: true, Reason: NodeAwayReason.Drain or NodeAwayReason.Taint } && now.Episode != drainDone)
                {
                    drainDone = now.Episode;
                    Log.DrainStarted(logger, now.Reason.Value, now.Detail ?? "");
                    run = await checkpointer.CheckpointAllAsync(CheckpointReasons.NodeDrain, parallelism, null, ct,
                        only: Untried, urgent: evictions is null ? null : evictions.IsEvicting).ConfigureAwait(false);
                }
                else if (evictions?.Evicting.Where(p => !Tried(p.Namespace, p.Name, p.Uid)).ToList() is { Count: > 0 } evicted)
                {
                    Log.EvictionStarted(logger, string.Join(", ", evicted));
                    run = await checkpointer.CheckpointAllAsync(CheckpointReasons.NodeDrain, parallelism, null, ct,
                        only: c => Untried(c) && evicted.Any(p => p.Namespace == c.Namespace && p.Name == c.Pod
                            && (p.Uid is null || c.PodUid is null || p.Uid == c.PodUid))).ConfigureAwait(false);
                    // tried, whatever the run took: the kubelet is stopping these pods
                    foreach (var p in evicted) tried[(p.Namespace, p.Name)] = p.Uid;
                }
                if (run is not null)
                {
                    foreach (var c in run.Checkpoints) tried[(c.Container.Namespace, c.Container.Pod)] = c.Container.PodUid;
                    LastRun = run;
                    Interlocked.Increment(ref _runs);
                    continue; // look again at once: the state may have moved on while the checkpoints ran
                }
                await wake.Reader.WaitToReadAsync(ct).ConfigureAwait(false);
                wake.Reader.TryRead(out _);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        finally
        {
            state.Changed -= OnChanged;
            if (evictions is not null) evictions.Changed -= OnEvictions;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(22701, LogLevel.Warning, "Node going away ({Reason}: {Detail}): checkpointing the managed containers before they are evicted")]
        public static partial void DrainStarted(ILogger logger, NodeAwayReason reason, string detail);

        [LoggerMessage(22702, LogLevel.Warning, "Managed pods being evicted ({Pods}): checkpointing their containers before the kubelet stops them")]
        public static partial void EvictionStarted(ILogger logger, string pods);
    }
}

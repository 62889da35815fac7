using System.Threading.Channels;
using Crsc.Controllers.Autonomy;
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
/// <para>
/// With an <see cref="INodeAwayLog"/> (the node state on disk), the pods an episode took survive a restart of the
/// daemon: the first going-away episode after the start is taken as the one under way before it (a cordoned node stays
/// cordoned across the restart), and its pods are not taken again; what the log holds is forgotten when an episode
/// ends, and anything older than <c>remember</c> is not used (such a checkpoint could not be restored from any more).
/// </para>
/// </summary>
public sealed partial class NodeDrainCheckpoints(NodeGoingAway state, NodeAwayCheckpointer checkpointer, int parallelism, ILogger logger,
    PodEvictionWatcher? evictions = null, INodeAwayLog? log = null, TimeSpan? remember = null, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

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
            bool Tried(string ns, string pod, string? uid) => tried.TryGetValue((ns, pod), out var known) && SamePod(known, uid);
            bool Untried(ManagedContainer c) => !Tried(c.Namespace, c.Pod, c.PodUid);
            // a restart in the middle of an episode: what it took before (bound to the first episode seen)
            var bound = true;
            if (log?.AwayTried() is { Count: > 0 } saved)
            {
                var since = _time.GetUtcNow() - (remember ?? TimeSpan.FromMinutes(15));
                foreach (var p in saved.Where(p => p.At > since)) tried[(p.Namespace, p.Pod)] = p.Uid;
                bound = false;
                if (tried.Count > 0) Log.Resumed(logger, tried.Count);
            }
            void Forget()
            {
                tried.Clear();
                log?.ClearAwayTried();
            }
            while (!ct.IsCancellationRequested)
            {
                var now = state.Current;
                if (!now.GoingAway)
                {
                    // an episode ended here (not the node at rest at the start, before its Node object is seen)
                    if (bound && tried.Count > 0) Forget();
                }
                else if (!bound)
                {
                    bound = true;
                    triedEpisode = now.Episode;
                }
                else if (now.Episode != triedEpisode)
                {
                    Forget();
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
                        only: c => Untried(c) && evicted.Any(p => p.Namespace == c.Namespace && p.Name == c.Pod && SamePod(p.Uid, c.PodUid)))
                        .ConfigureAwait(false);
                    // tried, whatever the run took: the kubelet is stopping these pods
                    foreach (var p in evicted) tried[(p.Namespace, p.Name)] = p.Uid;
                }
                if (run is not null)
                {
                    foreach (var c in run.Checkpoints) tried[(c.Container.Namespace, c.Container.Pod)] = c.Container.PodUid;
                    var at = _time.GetUtcNow();
                    log?.AddAwayTried([.. tried.Select(t => new AwayTried(t.Key.Item1, t.Key.Item2, t.Value, at))]);
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

    /// <summary>Two pods of one name are the same pod unless both UIDs are known and differ (a StatefulSet's later pod).</summary>
    private static bool SamePod(string? uid, string? other) => uid is null || other is null || uid == other;

    private static partial class Log
    {
        [LoggerMessage(22701, LogLevel.Warning, "Node going away ({Reason}: {Detail}): checkpointing the managed containers before they are evicted")]
        public static partial void DrainStarted(ILogger logger, NodeAwayReason reason, string detail);

        [LoggerMessage(22703, LogLevel.Information, "Going-away episode under way before the restart: {Count} pod(s) it checkpointed are not taken again")]
        public static partial void Resumed(ILogger logger, int count);

        [LoggerMessage(22702, LogLevel.Warning, "Managed pods being evicted ({Pods}): checkpointing their containers before the kubelet stops them")]
        public static partial void EvictionStarted(ILogger logger, string pods);
    }
}

/// <summary>Where the pods of the going-away episode under way are kept across restarts (the node state on disk).</summary>
public interface INodeAwayLog
{
    IReadOnlyList<AwayTried> AwayTried();

    /// <summary>Adds (or replaces, by namespace and name) <paramref name="pods"/>.</summary>
    void AddAwayTried(IReadOnlyList<AwayTried> pods);

    void ClearAwayTried();
}

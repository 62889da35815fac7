using Crsc.Controllers.Autonomy;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Schedules;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Nodes;

/// <summary>A managed container on this node. <see cref="MemoryBytes"/> when known (the smallest are checkpointed first).</summary>
public sealed record ManagedContainer(string Namespace, string Pod, string Container, long? MemoryBytes = null)
{
    /// <summary>The pod's UID as the node state has it (null when not known): tells a pod from a later one of the same name.</summary>
    public string? PodUid { get; init; }

    public override string ToString() => $"{Namespace}/{Pod}/{Container}";
}

/// <summary>One container's checkpoint of a node-away run: the archive id, or why there is none.</summary>
public sealed record NodeAwayCheckpoint(ManagedContainer Container, string? CheckpointId, string? Error);

/// <summary>What a node-away run did.</summary>
public sealed record NodeAwayRun(string Reason, IReadOnlyList<NodeAwayCheckpoint> Checkpoints, TimeSpan Elapsed)
{
    public int Stored => Checkpoints.Count(c => c.CheckpointId is not null);
    public int Failed => Checkpoints.Count - Stored;
}

/// <summary>
/// Checkpoints every managed container of this node at once, because the node is going away: a drain or termination
/// taint (<see cref="Crsc.Controllers.Storage.CheckpointReasons.NodeDrain"/>) or a shutdown
/// (<see cref="Crsc.Controllers.Storage.CheckpointReasons.NodeShutdown"/>), the reason recorded in each manifest. Up to
/// a number at a time, the smallest (by memory, when known) first, then in a stable order; with a deadline, each
/// checkpoint is given what is left of it and none is started without time left. Through the node's
/// <see cref="ICheckpointRunner"/>, so it needs no API server; each archive is committed (fsynced) to the store before
/// its checkpoint counts. With a <see cref="NodeAwayPublication"/>, each stored checkpoint is published as a
/// ContainerCheckpoint (through the outbox), so the next pod of its workload can be restored from it.
/// </summary>
public sealed partial class NodeAwayCheckpointer(
    ICheckpointRunner runner,
    Func<IReadOnlyList<ManagedContainer>> managed,
    TimeProvider time,
    ILogger logger,
    NodeAwayPublication? publication = null)
{
    /// <summary>Below this, a checkpoint is not started: it could not finish.</summary>
    public static readonly TimeSpan MinimumTime = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The managed containers of this node as the node state has them (kept on disk, so known while the API server is
    /// away): every container a CheckpointSchedule selects in its target's pods here.
    /// </summary>
    public static IReadOnlyList<ManagedContainer> ManagedOn(NodeState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var pods = state.Pods.ToDictionary(p => (p.Namespace, p.Name));
        var found = new SortedDictionary<(string, string, string), string?>();
        foreach (var saved in state.Schedules)
        {
            var ns = saved.Schedule.Metadata.Namespace ?? "default";
            foreach (var name in saved.Pods)
            {
                if (!pods.TryGetValue((ns, name), out var pod)) continue;
                foreach (var container in ScheduleReconciler.SelectContainers(saved.Schedule, pod.Containers))
                    found[(ns, name, container)] = pod.Uid;
            }
        }
        return [.. found.Select(f => new ManagedContainer(f.Key.Item1, f.Key.Item2, f.Key.Item3) { PodUid = f.Value })];
    }

    /// <summary>The order containers are checkpointed in: smallest known memory first, unknown after, then by name.</summary>
    public static IReadOnlyList<ManagedContainer> Order(IEnumerable<ManagedContainer> containers) =>
        [.. containers.OrderBy(c => c.MemoryBytes ?? long.MaxValue)
            .ThenBy(c => c.Namespace, StringComparer.Ordinal).ThenBy(c => c.Pod, StringComparer.Ordinal)
            .ThenBy(c => c.Container, StringComparer.Ordinal)];

    /// <summary>The managed containers of this node now.</summary>
    public IReadOnlyList<ManagedContainer> Managed() => managed();

    /// <param name="reason">recorded in each checkpoint's manifest</param>
    /// <param name="parallelism">checkpoints at a time (at least 1)</param>
    /// <param name="deadline">when every checkpoint must be done (null: each has the node's default timeout)</param>
    /// <param name="only">which of the managed containers to take (null: all)</param>
    /// <param name="urgent">
    /// asked each time a checkpoint is started, of those not started yet: the first one it says is urgent goes next (a
    /// pod being evicted while the run goes on), ahead of <see cref="Order"/>
    /// </param>
    public async Task<NodeAwayRun> CheckpointAllAsync(string reason, int parallelism, DateTimeOffset? deadline, CancellationToken ct,
        Func<ManagedContainer, bool>? only = null, Func<ManagedContainer, bool>? urgent = null)
    {
        var started = time.GetTimestamp();
        var ordered = Order(only is null ? managed() : managed().Where(only));
        var workers = Math.Clamp(parallelism, 1, Math.Max(1, ordered.Count));
        Log.Starting(logger, reason, ordered.Count, workers,
            deadline is { } d ? $"{Math.Max(0, (d - time.GetUtcNow()).TotalSeconds):0.#} s" : "the default timeout each");
        // each request's timeout is what is left; this cancels whatever still runs at the deadline
        using var atDeadline = deadline is { } end
            ? new CancellationTokenSource(Max(end - time.GetUtcNow(), TimeSpan.Zero), time)
            : new CancellationTokenSource();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, atDeadline.Token);
        var results = new NodeAwayCheckpoint[ordered.Count];
        var taken = new bool[ordered.Count];
        var pick = new Lock();

        int Next()
        {
            lock (pick)
            {
                var first = -1;
                for (var i = 0; i < ordered.Count; i++)
                {
                    if (taken[i]) continue;
                    if (first < 0) first = i;
                    if (urgent is null || urgent(ordered[i])) { first = i; break; }
                }
                if (first >= 0) taken[first] = true;
                return first;
            }
        }

        async Task WorkerAsync()
        {
            int i;
            while ((i = Next()) >= 0)
                results[i] = await OneAsync(ordered[i], reason, deadline, stop.Token).ConfigureAwait(false);
        }

        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => WorkerAsync())).ConfigureAwait(false);
        var run = new NodeAwayRun(reason, results, time.GetElapsedTime(started));
        Log.Done(logger, reason, run.Stored, ordered.Count, run.Failed, run.Elapsed.TotalSeconds);
        return run;
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private async Task<NodeAwayCheckpoint> OneAsync(ManagedContainer c, string reason, DateTimeOffset? deadline, CancellationToken ct)
    {
        TimeSpan? timeout = null;
        if (deadline is { } end)
        {
            var left = end - time.GetUtcNow();
            if (left < MinimumTime || ct.IsCancellationRequested)
            {
                Log.NoTimeLeft(logger, reason, c.ToString());
                return new NodeAwayCheckpoint(c, null, "no time left before the deadline");
            }
            timeout = left;
        }
        var startedAt = time.GetUtcNow();
        var target = publication?.Plan(c, startedAt);
        // the start mark first: a crash between the store's commit and the records leaves it, and the next start adopts the archive
        var mark = target is null ? null : publication!.MarkStarted(reason, c, target, startedAt);
        CheckpointOutcome outcome;
        try
        {
            outcome = await runner.CheckpointAsync(new CheckpointRequest(c.Namespace, c.Pod, c.Container)
            {
                Reason = reason,
                Timeout = timeout,
                // the object is created by the outbox: its UID is not known yet (the archive id annotation ties them)
                Owner = target is null ? null : new CheckpointOwner(c.Namespace, target.Name, null, CheckpointOrigin.Offline),
            }, null, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            Log.Failed(logger, reason, c.ToString(), "cancelled at the deadline");
            if (mark is not null) publication!.MarkEnded(mark);
            return new NodeAwayCheckpoint(c, null, "cancelled at the deadline");
        }
        catch (Exception e)
        {
            Log.Failed(logger, reason, c.ToString(), e.Message);
            if (mark is not null) publication!.MarkEnded(mark);
            return new NodeAwayCheckpoint(c, null, e.Message);
        }
        Log.Stored(logger, reason, c.ToString(), outcome.Checkpoint.Id, outcome.TotalTime.TotalSeconds);
        // its ContainerCheckpoint record ends the run's mark (the archive is stored: a failure to publish is no failed checkpoint)
        if (target is not null) publication!.Record(reason, c, target, outcome, startedAt);
        return new NodeAwayCheckpoint(c, outcome.Checkpoint.Id, null);
    }

    private static partial class Log
    {
        [LoggerMessage(22601, LogLevel.Warning, "Node going away ({Reason}): checkpointing {Count} managed container(s), {Parallelism} at a time, within {Budget}")]
        public static partial void Starting(ILogger logger, string reason, int count, int parallelism, string budget);

        [LoggerMessage(22602, LogLevel.Information, "Node going away ({Reason}): {Container} checkpointed as {Id} in {Seconds:0.##} s")]
        public static partial void Stored(ILogger logger, string reason, string container, string id, double seconds);

        [LoggerMessage(22603, LogLevel.Error, "Node going away ({Reason}): checkpoint of {Container} failed: {Error}")]
        public static partial void Failed(ILogger logger, string reason, string container, string error);

        [LoggerMessage(22604, LogLevel.Error, "Node going away ({Reason}): no time left to checkpoint {Container}")]
        public static partial void NoTimeLeft(ILogger logger, string reason, string container);

        [LoggerMessage(22605, LogLevel.Warning, "Node going away ({Reason}): {Stored} of {Count} checkpoint(s) stored, {Failed} failed, in {Seconds:0.##} s")]
        public static partial void Done(ILogger logger, string reason, int stored, int count, int failed, double seconds);
    }
}

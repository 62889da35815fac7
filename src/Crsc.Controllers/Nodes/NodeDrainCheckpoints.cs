using System.Threading.Channels;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Nodes;

/// <summary>
/// When the node starts going away for a drain or a termination taint, checkpoints every managed container at once
/// (reason <see cref="CheckpointReasons.NodeDrain"/>), before the pods are evicted: once per going-away episode (an
/// episode is told by its <see cref="NodeAwayState.Episode"/>), not on every update of the Node. A cordon followed by a
/// taint is one episode; an uncordon ends it, and the next cordon is a new one.
/// </summary>
public sealed partial class NodeDrainCheckpoints(NodeGoingAway state, NodeAwayCheckpointer checkpointer, int parallelism, ILogger logger)
{
    private int _runs;

    /// <summary>Drain runs done since start.</summary>
    public int Runs => Volatile.Read(ref _runs);

    /// <summary>The last drain run (null before the first).</summary>
    public NodeAwayRun? LastRun { get; private set; }

    public async Task RunAsync(CancellationToken ct)
    {
        var wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        void OnChanged(NodeAwayChange _) => wake.Writer.TryWrite(true);
        state.Changed += OnChanged;
        try
        {
            var episodeDone = 0;
            while (!ct.IsCancellationRequested)
            {
                var now = state.Current;
                if (now is { GoingAway: true, Reason: NodeAwayReason.Drain or NodeAwayReason.Taint } && now.Episode != episodeDone)
                {
                    episodeDone = now.Episode;
                    Log.DrainStarted(logger, now.Reason.Value, now.Detail ?? "");
                    LastRun = await checkpointer.CheckpointAllAsync(CheckpointReasons.NodeDrain, parallelism, null, ct).ConfigureAwait(false);
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
        }
    }

    private static partial class Log
    {
        [LoggerMessage(22701, LogLevel.Warning, "Node going away ({Reason}: {Detail}): checkpointing the managed containers before they are evicted")]
        public static partial void DrainStarted(ILogger logger, NodeAwayReason reason, string detail);
    }
}

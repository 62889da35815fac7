using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Nodes;

/// <summary>What the shutdown monitor (logind's <c>PrepareForShutdown</c>) tells the node agent.</summary>
public interface IShutdownListener
{
    /// <summary>
    /// The system is shutting down or rebooting: do what must be done within <paramref name="budget"/> (what is left of
    /// logind's inhibitor delay) and return; the delay inhibitor is released when this returns.
    /// </summary>
    Task ShuttingDownAsync(TimeSpan budget, CancellationToken ct);

    /// <summary>A shutdown announced before was cancelled (<c>PrepareForShutdown(false)</c>).</summary>
    void ShutdownCancelled();
}

/// <summary>
/// At shutdown: the node state says going away (<see cref="NodeAwayReason.Shutdown"/>) and every managed container is
/// checkpointed within the budget, reason <see cref="CheckpointReasons.NodeShutdown"/>; each archive is committed
/// (fsynced) to the store, which survives the reboot, before this returns.
/// </summary>
public sealed partial class ShutdownCheckpoints(NodeGoingAway state, NodeAwayCheckpointer checkpointer, int parallelism,
    TimeProvider time, ILogger logger) : IShutdownListener
{
    /// <summary>The last shutdown run (null before the first).</summary>
    public NodeAwayRun? LastRun { get; private set; }

    public async Task ShuttingDownAsync(TimeSpan budget, CancellationToken ct)
    {
        state.Report(NodeAwaySource.Logind, NodeAwayReason.Shutdown, $"logind PrepareForShutdown(true); {budget.TotalSeconds:0.#} s to checkpoint");
        LastRun = await checkpointer.CheckpointAllAsync(CheckpointReasons.NodeShutdown, parallelism, time.GetUtcNow() + budget, ct)
            .ConfigureAwait(false);
    }

    public void ShutdownCancelled()
    {
        if (state.Report(NodeAwaySource.Logind, null) is not null) Log.Cancelled(logger);
    }

    private static partial class Log
    {
        [LoggerMessage(22801, LogLevel.Information, "The shutdown was cancelled (logind PrepareForShutdown(false))")]
        public static partial void Cancelled(ILogger logger);
    }
}

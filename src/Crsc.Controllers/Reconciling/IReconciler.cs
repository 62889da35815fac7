using Crsc.Api;

namespace Crsc.Controllers.Reconciling;

/// <summary>
/// Level-triggered reconcile of one object (controller-runtime's contract): read the object from the informer's
/// cache, drive the world towards its spec, write its status. Return how to continue; throw to be retried with
/// backoff; throw <see cref="TerminalException"/> when retrying cannot help (after setting the Failed condition).
/// </summary>
public interface IReconciler
{
    ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct);
}

public enum ReconcileOutcome
{
    /// <summary>Nothing more to do until the object (or something it watches) changes.</summary>
    Done,
    /// <summary>Try again after the key's rate-limited backoff.</summary>
    Requeue,
    /// <summary>Try again after a fixed delay (time-based work); resets the key's backoff.</summary>
    RequeueAfter,
}

/// <summary>What a reconcile asks for: <see cref="Done"/>, <see cref="Requeue"/> or <see cref="RequeueAfter"/>.</summary>
public readonly record struct ReconcileResult
{
    private ReconcileResult(ReconcileOutcome outcome, TimeSpan delay)
    {
        Outcome = outcome;
        Delay = delay;
    }

    public ReconcileOutcome Outcome { get; }

    /// <summary>The delay of a <see cref="ReconcileOutcome.RequeueAfter"/>; zero otherwise.</summary>
    public TimeSpan Delay { get; }

    public static ReconcileResult Done => default;

    public static ReconcileResult Requeue => new(ReconcileOutcome.Requeue, TimeSpan.Zero);

    public static ReconcileResult RequeueAfter(TimeSpan delay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        return new(ReconcileOutcome.RequeueAfter, delay);
    }

    public override string ToString() => Outcome == ReconcileOutcome.RequeueAfter ? $"RequeueAfter({Delay})" : Outcome.ToString();
}

/// <summary>
/// A failure that retrying cannot fix (a bad spec, a checkpoint that no longer exists). The runner logs it and
/// does not requeue; the reconciler records it on the object (Failed condition, Warning event) before throwing.
/// </summary>
public class TerminalException : Exception
{
    public TerminalException(string message) : base(message) { }
    public TerminalException(string message, Exception? inner) : base(message, inner) { }
}

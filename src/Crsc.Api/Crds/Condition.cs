using System.Text.Json.Serialization;
using Crsc.Api.Kubernetes;

namespace Crsc.Api.Crds;

/// <summary>The three values of a condition's status, as <c>metav1.ConditionStatus</c> spells them.</summary>
public enum ConditionStatus { True, False, Unknown }

/// <summary>
/// A status condition in the standard <c>metav1.Condition</c> shape: type, status, observedGeneration,
/// lastTransitionTime, reason (CamelCase, machine-readable) and message (for people).
/// </summary>
public sealed class Condition
{
    public string Type { get; set; } = "";
    public ConditionStatus Status { get; set; } = ConditionStatus.Unknown;
    public long? ObservedGeneration { get; set; }
    public DateTimeOffset LastTransitionTime { get; set; }
    public string Reason { get; set; } = "";
    public string Message { get; set; } = "";
}

/// <summary>A status that carries conditions (every crsc status does).</summary>
public interface IHasConditions
{
    List<Condition>? Conditions { get; set; }
}

/// <summary>Condition types crsc sets on its objects. Reconcilers may add their own.</summary>
public static class ConditionTypes
{
    /// <summary>The object does what it asks for (schedule active, checkpoint stored, workload restored).</summary>
    public const string Ready = "Ready";
    /// <summary>Work is under way (checkpoint running, restore in progress).</summary>
    public const string Progressing = "Progressing";
    /// <summary>Something the object depends on is wrong (bad value, missing pod, runtime error).</summary>
    public const string Degraded = "Degraded";
}

/// <summary>
/// Finding and setting conditions the way <c>meta.SetStatusCondition</c> does: one entry per type,
/// <c>lastTransitionTime</c> moves only when the status changes, times are whole seconds (what the
/// API server stores, so a status read back compares equal to the one written).
/// </summary>
public static class ConditionExtensions
{
    public static Condition? FindCondition(this IHasConditions status, string type)
    {
        if (status.Conditions is null) return null;
        foreach (var c in status.Conditions)
            if (string.Equals(c.Type, type, StringComparison.Ordinal)) return c;
        return null;
    }

    public static bool IsConditionTrue(this IHasConditions status, string type) =>
        status.FindCondition(type)?.Status == ConditionStatus.True;

    /// <summary>
    /// Adds or updates the condition of <paramref name="type"/>. Returns whether anything changed, so a
    /// reconciler can skip a status write that would change nothing.
    /// </summary>
    public static bool SetCondition(
        this IHasConditions status,
        string type,
        ConditionStatus value,
        string reason,
        string message,
        long? observedGeneration,
        DateTimeOffset now)
    {
        ArgumentException.ThrowIfNullOrEmpty(type);
        ArgumentException.ThrowIfNullOrEmpty(reason);
        status.Conditions ??= [];
        var existing = status.FindCondition(type);
        if (existing is null)
        {
            status.Conditions.Add(new Condition
            {
                Type = type,
                Status = value,
                ObservedGeneration = observedGeneration,
                LastTransitionTime = KubeTime.Truncate(now),
                Reason = reason,
                Message = message,
            });
            return true;
        }

        var changed = false;
        if (existing.Status != value)
        {
            existing.Status = value;
            existing.LastTransitionTime = KubeTime.Truncate(now);
            changed = true;
        }
        if (!string.Equals(existing.Reason, reason, StringComparison.Ordinal)) { existing.Reason = reason; changed = true; }
        if (!string.Equals(existing.Message, message, StringComparison.Ordinal)) { existing.Message = message; changed = true; }
        if (existing.ObservedGeneration != observedGeneration) { existing.ObservedGeneration = observedGeneration; changed = true; }
        return changed;
    }

    /// <summary>Removes the condition of <paramref name="type"/>; returns whether there was one.</summary>
    public static bool RemoveCondition(this IHasConditions status, string type)
    {
        if (status.Conditions is null) return false;
        var removed = status.Conditions.RemoveAll(c => string.Equals(c.Type, type, StringComparison.Ordinal)) > 0;
        if (status.Conditions.Count == 0) status.Conditions = null;
        return removed;
    }
}

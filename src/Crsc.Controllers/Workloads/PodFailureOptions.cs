using Crsc.Api.Crds;

namespace Crsc.Controllers.Workloads;

/// <summary>Thresholds of the <see cref="PodFailureReconciler"/>. The defaults are production's; tests shorten nothing, they move a clock.</summary>
public sealed record PodFailureOptions
{
    /// <summary>The container crsc adds beside the application; never monitored.</summary>
    public const string InterceptorSidecar = "crsc-interceptor";

    /// <summary>
    /// A running container with a liveness probe that has not been ready for this long is failing (the kubelet's
    /// status does not say that the liveness probe failed; not ready for this long is the approximation).
    /// </summary>
    public TimeSpan LivenessThreshold { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The wait after the first automatic Restore of a workload before the next; doubles with each one after.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>The longest wait between two automatic Restores of a workload.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>A workload with no automatic Restore for this long starts again at <see cref="InitialBackoff"/>.</summary>
    public TimeSpan QuietPeriod { get; init; } = TimeSpan.FromHours(1);

    /// <summary>At most this many automatic Restores of one workload in any hour.</summary>
    public int MaxRestoresPerHour { get; init; } = 6;

    /// <summary>
    /// After a Restore turned Restored (or FellBack), restarts of its pod for this long are still crsc's own doing
    /// (the image patch restarts the container), not new failures.
    /// </summary>
    public TimeSpan RestoredGracePeriod { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A failure that is over (the container exited and runs again) is acted on only this long after it happened: a
    /// daemon that starts, or a Deployment that becomes managed, does not restore for a crash long past, and a
    /// restore held back longer than this would throw away the state the fresh container has built since.
    /// Failures the pod still shows (CrashLoopBackOff, a failing liveness probe) have no such limit.
    /// </summary>
    public TimeSpan IncidentWindow { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary><c>spec.fallback</c> of the Restores it creates.</summary>
    public RestoreFallback Fallback { get; init; } = RestoreFallback.ColdStart;

    /// <summary><c>spec.maxAttempts</c> of the Restores it creates.</summary>
    public int MaxAttempts { get; init; } = RestoreSpec.DefaultMaxAttempts;

    /// <summary>Containers that are never monitored.</summary>
    public IReadOnlySet<string> IgnoredContainers { get; init; } = new HashSet<string>(StringComparer.Ordinal) { InterceptorSidecar };

    /// <summary>Throws when a value cannot work (the daemon validates before it builds the reconciler).</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(LivenessThreshold, TimeSpan.Zero, nameof(LivenessThreshold));
        ArgumentOutOfRangeException.ThrowIfLessThan(InitialBackoff, TimeSpan.Zero, nameof(InitialBackoff));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxBackoff, InitialBackoff, nameof(MaxBackoff));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(QuietPeriod, TimeSpan.Zero, nameof(QuietPeriod));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxRestoresPerHour, 1, nameof(MaxRestoresPerHour));
        ArgumentOutOfRangeException.ThrowIfLessThan(RestoredGracePeriod, TimeSpan.Zero, nameof(RestoredGracePeriod));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(IncidentWindow, TimeSpan.Zero, nameof(IncidentWindow));
        if (!Enum.IsDefined(Fallback)) throw new ArgumentOutOfRangeException(nameof(Fallback), Fallback, "not a fallback");
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxAttempts, 1, nameof(MaxAttempts));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxAttempts, RestoreSpec.MaxMaxAttempts, nameof(MaxAttempts));
    }
}

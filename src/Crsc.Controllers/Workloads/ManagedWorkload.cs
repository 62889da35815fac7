using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.Workloads;

/// <summary>Whether a Deployment asks crsc to manage it, read from its annotations (DESIGN.md §2).</summary>
public readonly record struct ManagedWorkload(bool Managed, string? Problem)
{
    /// <summary>
    /// Managed when <c>crsc.io/checkpoint-restore</c> is <c>"true"</c> and <c>crsc.io/checkpoint-interval</c> and
    /// <c>crsc.io/checkpoint-replicate</c> are absent or valid — exactly what the <see cref="DeploymentReconciler"/> gives
    /// a schedule (no schedule, no checkpoints to restore from). Any other value is a <see cref="Problem"/> naming it, and
    /// crsc uses nothing from the Deployment (the Deployment reconciler reports a bad value with a Warning Event and a condition).
    /// </summary>
    public static ManagedWorkload Read(Deployment deployment, DeploymentReconcilerOptions? limits = null)
    {
        var annotations = deployment.Metadata.Annotations;
        var flag = annotations?.GetValueOrDefault(Annotations.CheckpointRestore);
        if (flag != "true")
            return new ManagedWorkload(false, flag is null or "false" ? null
                : $"annotation {Annotations.CheckpointRestore}: '{flag}' is not \"true\"");
        limits ??= new DeploymentReconcilerOptions();
        if (!DeploymentReconciler.TryParseInterval(annotations?.GetValueOrDefault(Annotations.CheckpointInterval),
                limits.MinimumInterval, limits.MaximumInterval, out _, out var error))
            return new ManagedWorkload(false, error);
        return DeploymentReconciler.TryParseReplicate(annotations?.GetValueOrDefault(Annotations.CheckpointReplicate), out _, out error)
            ? new ManagedWorkload(true, null)
            : new ManagedWorkload(false, error);
    }
}

using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.Workloads;

/// <summary>Whether a Deployment asks crsc to manage it, read from its annotations (DESIGN.md §2).</summary>
public readonly record struct ManagedWorkload(bool Managed, string? Problem)
{
    /// <summary>
    /// Managed when <c>crsc.io/checkpoint-restore</c> is <c>"true"</c> and <c>crsc.io/checkpoint-interval</c>, if set,
    /// is a positive duration. Any other value of either is a <see cref="Problem"/> naming it, and crsc uses nothing
    /// from the Deployment (the Deployment reconciler reports it with a Warning Event and a condition).
    /// </summary>
    public static ManagedWorkload Read(Deployment deployment)
    {
        var annotations = deployment.Metadata.Annotations;
        if (annotations is null || !annotations.TryGetValue(CrscAnnotations.CheckpointRestore, out var flag))
            return new ManagedWorkload(false, null);
        switch (flag.Trim())
        {
            case var f when f.Equals("false", StringComparison.OrdinalIgnoreCase):
                return new ManagedWorkload(false, null);
            case var t when !t.Equals("true", StringComparison.OrdinalIgnoreCase):
                return new ManagedWorkload(false, $"annotation {CrscAnnotations.CheckpointRestore}: '{flag}' is not \"true\" or \"false\"");
        }
        if (annotations.TryGetValue(CrscAnnotations.CheckpointInterval, out var interval)
            && (!GoDuration.TryParse(interval.Trim(), out var every) || every <= TimeSpan.Zero))
            return new ManagedWorkload(false, $"annotation {CrscAnnotations.CheckpointInterval}: '{interval}' is not a duration (e.g. 30s, 5m, 1h)");
        return new ManagedWorkload(true, null);
    }
}

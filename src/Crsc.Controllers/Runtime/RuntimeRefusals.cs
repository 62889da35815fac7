namespace Crsc.Controllers.Runtime;

/// <summary>
/// The runtimes' own words for "this node does not restore from a checkpoint image", as the kubelet passes them on
/// in a container's waiting message (CreateContainerError). Facts, with where they come from: a refusal seen during a
/// restore is the same verdict as the node's probe, and is handled the same way.
/// </summary>
public static class RuntimeRefusals
{
    private static readonly string[] RestoreRefusals =
    [
        // containerd 2.2.7+ / 2.3.4+ without enable_experimental_restore_via_create
        // (contrib/checkpoint/checkpoint-restore-cri-disable-test.sh; PRs 13913, 13937)
        "checkpoint restore via CreateContainer is disabled by configuration",
        // containerd with enable_criu = false (PRs 13795, 13734)
        "criu support is disabled by configuration",
        // CRI-O with CRIU support off (server/container_checkpoint.go)
        "checkpoint/restore support not available",
    ];

    /// <summary>The refusal text <paramref name="message"/> carries, or null when it is not one of the runtimes' refusals.</summary>
    public static string? RestoreRefusal(string? message) =>
        string.IsNullOrEmpty(message) ? null
            : RestoreRefusals.FirstOrDefault(r => message.Contains(r, StringComparison.OrdinalIgnoreCase));
}

using System.Globalization;

namespace Crsc.Run;

/// <summary>
/// A restored process gets back the pids it had, so they must be free in the new container. There, at restore time,
/// <c>crsc run</c>'s own threads and criu take the lowest pids of the fresh pid namespace, the same ones the workload
/// would have got at a cold start right after crsc (criu would then sit on the pid it has to restore: "Can't fork for
/// N: File exists"). So a cold start in a container's own pid namespace moves the namespace's next pid above
/// <see cref="Floor"/> first (<c>/proc/sys/kernel/ns_last_pid</c>; CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN), and the
/// workload's tree lives in pids no restore-time helper reaches. In the host's pid namespace nothing is changed.
/// </summary>
internal static class PidFloor
{
    public const int Floor = 1000;
    public const string NsLastPidPath = "/proc/sys/kernel/ns_last_pid";

    /// <summary>The initial (host) pid namespace: its inode number is fixed (PROC_PID_INIT_INO).</summary>
    public const string HostPidNamespace = "pid:[4026531836]";

    /// <summary>Our pid namespace as <c>/proc/self/ns/pid</c> names it (<c>pid:[N]</c>), or null.</summary>
    public static string? CurrentPidNamespace()
    {
        try { return new FileInfo("/proc/self/ns/pid").LinkTarget; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Moves the next pid above <paramref name="floor"/> when in a pid namespace of our own (not the host's); a warning for the log, or null.</summary>
    public static string? Raise(string? pidNamespace, string nsLastPidPath = NsLastPidPath, int floor = Floor)
    {
        if (pidNamespace is null || pidNamespace == HostPidNamespace) return null;
        try
        {
            var last = int.Parse(File.ReadAllText(nsLastPidPath).Trim(), NumberStyles.None, CultureInfo.InvariantCulture);
            if (last >= floor) return null;
            File.WriteAllText(nsLastPidPath, floor.ToString(CultureInfo.InvariantCulture));
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or OverflowException)
        {
            return $"warning: cannot move the next pid above {floor} ({nsLastPidPath}: {e.Message}); a later restore may find the pids it needs taken";
        }
    }
}

using System.Globalization;
using System.Runtime.InteropServices;

namespace Crsc.Daemon;

/// <summary>
/// Gives back the memory that only starting up needed, once the daemon is READY. Two parts:
/// <list type="bullet">
/// <item>The one-off garbage. Under Native AOT, building the host (dependency injection, options, Kestrel, generic
/// virtual calls) makes the runtime's type loader construct ~1,000 types and method dictionaries at run time: ~6 MB
/// of scratch objects, of which ~2 MB stay live. The gen0 budget is larger than that, so without a collection the
/// scratch keeps its pages until the daemon has allocated a whole gen0 budget again (tens of minutes for an idle
/// node agent). One compacting collection returns those pages.</item>
/// <item>The executable's pages that startup read. The binary is ~22 MB of code, read-only data and unwind tables;
/// starting the host touches code all over it and the kernel maps every touched page with its 64 KB neighbourhood
/// (fault-around), so ~17 MB of the file stay mapped although an idle daemon runs a small part of it. Those pages
/// are clean copies of the file: <c>madvise(MADV_PAGEOUT)</c> on the executable's read-only mappings lets the
/// kernel take them back now rather than under memory pressure, and what the daemon runs later is read in again
/// on first use. Pages written since loading (relocations) are anonymous and never discarded by PAGEOUT; kernels
/// before 5.4 refuse the advice (EINVAL), which changes nothing.</item>
/// </list>
/// Not a timer, not repeated: later garbage and page reclaim are the GC's and the kernel's business as usual.
/// </summary>
internal static partial class StartupMemory
{
    private const int MadvPageout = 21;

    /// <summary>Collects the startup garbage and pages out the executable's read-only mappings; returns what was advised.</summary>
    public static ReleaseReport Release()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (!OperatingSystem.IsLinux() || Environment.ProcessPath is not { } exe) return new ReleaseReport(0, 0, null);
        string maps;
        try
        {
            maps = File.ReadAllText("/proc/self/maps");
        }
        catch (IOException e)
        {
            return new ReleaseReport(0, 0, e.Message);
        }
        return PageOut(ReadOnlyMappingsOf(maps, ResolveExe(exe)));
    }

    /// <summary>Advises <c>MADV_PAGEOUT</c> on each mapping; stops at the first refusal.</summary>
    public static ReleaseReport PageOut(IEnumerable<Mapping> mappings)
    {
        var ranges = 0;
        long bytes = 0;
        foreach (var m in mappings)
        {
            if (Madvise((nint)m.Start, (nuint)(m.End - m.Start), MadvPageout) != 0)
                return new ReleaseReport(ranges, bytes, $"madvise(MADV_PAGEOUT) failed: errno {Marshal.GetLastPInvokeError()}");
            ranges++;
            bytes += (long)(m.End - m.Start);
        }
        return new ReleaseReport(ranges, bytes, null);
    }

    /// <summary>What <see cref="Release"/> advised: mappings and bytes, or why it stopped.</summary>
    public sealed record ReleaseReport(int Ranges, long Bytes, string? Error);

    /// <summary>One line of <c>/proc/PID/maps</c>.</summary>
    public readonly record struct Mapping(ulong Start, ulong End, string Permissions, string Path);

    /// <summary>
    /// The mappings of <paramref name="path"/> that can be neither written nor were ever writable in this mapping
    /// (<c>r--p</c>, <c>r-xp</c>): clean file pages only. Writable mappings (data, relocated GOT) are left alone.
    /// </summary>
    public static IEnumerable<Mapping> ReadOnlyMappingsOf(string maps, string path)
    {
        foreach (var line in maps.Split('\n'))
        {
            if (Parse(line) is not { } m) continue;
            if (m.Path != path) continue;
            if (m.Permissions.Length < 4 || m.Permissions[0] != 'r' || m.Permissions[1] != '-' || m.Permissions[3] != 'p') continue;
            yield return m;
        }
    }

    /// <summary>Parses <c>start-end perms offset dev inode path</c>; null for a line that is not one.</summary>
    public static Mapping? Parse(string line)
    {
        var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 5) return null;
        var dash = fields[0].IndexOf('-');
        if (dash <= 0
            || !ulong.TryParse(fields[0].AsSpan(0, dash), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var start)
            || !ulong.TryParse(fields[0].AsSpan(dash + 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var end)
            || end <= start)
            return null;
        var path = fields.Length == 6 ? fields[5].Trim() : "";
        return new Mapping(start, end, fields[1], path);
    }

    private static string ResolveExe(string exe)
    {
        try
        {
            return new FileInfo(exe).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(exe);
        }
        catch (IOException)
        {
            return Path.GetFullPath(exe);
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(nint address, nuint length, int advice);
}

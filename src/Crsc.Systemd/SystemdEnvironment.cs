using System.Globalization;
using Crsc.Systemd.Native;

namespace Crsc.Systemd;

/// <summary>What the environment says about systemd having started us, for choosing log sinks.</summary>
public static class SystemdEnvironment
{
    /// <summary>journald's native-protocol socket.</summary>
    public const string JournalSocketPath = "/run/systemd/journal/socket";

    public const string InvocationIdVariable = "INVOCATION_ID";
    public const string JournalStreamVariable = "JOURNAL_STREAM";

    /// <summary>
    /// True when systemd started this process: <c>INVOCATION_ID</c> is set, or <c>JOURNAL_STREAM</c> names the
    /// device and inode of our standard error.
    /// </summary>
    public static bool IsStartedBySystemd
        => IsStartedBySystemdCore(Environment.GetEnvironmentVariable(InvocationIdVariable),
            Environment.GetEnvironmentVariable(JournalStreamVariable), GetFileIdentity(2));

    /// <summary>True when standard error is the journal stream systemd connected (<c>JOURNAL_STREAM</c> matches fd 2).</summary>
    public static bool IsStandardErrorJournal
        => JournalStreamMatches(Environment.GetEnvironmentVariable(JournalStreamVariable), GetFileIdentity(2));

    /// <summary>True when journald's native socket exists.</summary>
    public static bool IsJournalSocketPresent(string path = JournalSocketPath) => Path.Exists(path);

    internal static bool IsStartedBySystemdCore(string? invocationId, string? journalStream, (ulong Device, ulong Inode)? standardError)
        => !string.IsNullOrEmpty(invocationId) || JournalStreamMatches(journalStream, standardError);

    /// <summary><c>JOURNAL_STREAM</c> is <c>DEVICE:INODE</c> in decimal, both as fstat(2) reports them.</summary>
    internal static bool JournalStreamMatches(string? journalStream, (ulong Device, ulong Inode)? file)
    {
        if (string.IsNullOrEmpty(journalStream) || file is not { } id) return false;
        var colon = journalStream.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0) return false;
        return ulong.TryParse(journalStream.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var device)
            && ulong.TryParse(journalStream.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var inode)
            && device == id.Device && inode == id.Inode;
    }

    /// <summary>st_dev and st_ino of an open descriptor (statx, whose layout is the same on every architecture).</summary>
    internal static unsafe (ulong Device, ulong Inode)? GetFileIdentity(int fd)
    {
        if (!OperatingSystem.IsLinux()) return null;
        const int size = 256;
        var buffer = stackalloc byte[size];
        new Span<byte>(buffer, size).Clear();
        try
        {
            if (LibC.Statx(fd, "", LibC.AT_EMPTY_PATH, LibC.STATX_INO, buffer) != 0) return null;
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
        // struct statx: stx_ino at 32, stx_dev_major at 136, stx_dev_minor at 140 (native byte order)
        var inode = *(ulong*)(buffer + 32);
        var major = *(uint*)(buffer + 136);
        var minor = *(uint*)(buffer + 140);
        return (MakeDevice(major, minor), inode);
    }

    /// <summary>glibc's makedev(3).</summary>
    internal static ulong MakeDevice(uint major, uint minor)
        => ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0x00000fff) << 8)
         | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0x000000ff);
}

using System.Runtime.InteropServices;

namespace Crsc;

internal static partial class NativeMethods
{
    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint Umask(uint mask);

    /// <summary>
    /// The daemon handles process memory (archives) and secrets: everything it creates is private to root
    /// unless it says otherwise (umask 077).
    /// </summary>
    public static void RestrictUmask() => Umask(0b000_111_111);

    /// <summary>Which file a path names, and when that file last changed: another file there, or the same one changed, differs.</summary>
    public readonly record struct FileStamp(ulong Device, ulong Inode, long ChangeSeconds, uint ChangeNanoseconds);

    /// <summary>
    /// The device, inode and change time (ctime) of the file <paramref name="path"/> leads to (links followed, as
    /// connect(2) follows them); null when nothing is there or it cannot be looked at. One statx(2), no open.
    /// </summary>
    public static FileStamp? Stamp(string path)
    {
        // struct statx (the same on every architecture): stx_ino u64 @32, stx_ctime {i64 sec @96, u32 nsec @104},
        // stx_dev_major u32 @136, stx_dev_minor u32 @140
        Span<byte> b = stackalloc byte[256];
        const int AtFdCwd = -100;
        const uint StatxCtime = 0x80, StatxIno = 0x100;
        if (Statx(AtFdCwd, path, 0, StatxCtime | StatxIno, ref MemoryMarshal.GetReference(b)) != 0) return null;
        return new FileStamp(
            ((ulong)BitConverter.ToUInt32(b[136..140]) << 32) | BitConverter.ToUInt32(b[140..144]),
            BitConverter.ToUInt64(b[32..40]),
            BitConverter.ToInt64(b[96..104]),
            BitConverter.ToUInt32(b[104..108]));
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Statx(int dirFd, string path, int flags, uint mask, ref byte buffer);
}

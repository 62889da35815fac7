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
        Span<byte> b = stackalloc byte[StatxSize];
        const uint StatxCtime = 0x80, StatxIno = 0x100;
        if (!Stat(AtFdCwd, path, 0, StatxCtime | StatxIno, b)) return null;
        return new FileStamp(
            ((ulong)BitConverter.ToUInt32(b[136..140]) << 32) | BitConverter.ToUInt32(b[140..144]),
            BitConverter.ToUInt64(b[32..40]),
            BitConverter.ToInt64(b[96..104]),
            BitConverter.ToUInt32(b[104..108]));
    }

    // statx(2): struct statx is 256 bytes, laid out the same on every architecture
    public const int StatxSize = 256, AtFdCwd = -100, AtSymlinkNoFollow = 0x100, AtEmptyPath = 0x1000;

    /// <summary>statx(2) of <paramref name="path"/> relative to <paramref name="dirFd"/> into <paramref name="buffer"/>
    /// (<see cref="StatxSize"/> bytes); false when it failed.</summary>
    public static bool Stat(int dirFd, string path, int flags, uint mask, Span<byte> buffer) =>
        buffer.Length >= StatxSize && Statx(dirFd, path, flags, mask, ref MemoryMarshal.GetReference(buffer)) == 0;

    /// <summary>stx_mode of a statx buffer (file type and permission bits).</summary>
    public static ushort ModeOf(ReadOnlySpan<byte> statx) => BitConverter.ToUInt16(statx[28..30]);

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Statx(int dirFd, string path, int flags, uint mask, ref byte buffer);
}

using System.ComponentModel;
using System.Runtime.InteropServices;
using Crsc.Controllers.Storage;
using Microsoft.Win32.SafeHandles;

namespace Crsc.Controllers.NodeAgent;

/// <summary>
/// The libc calls <see cref="FileStagingArea"/> needs to look at a path the runtime or kubelet named without being
/// led elsewhere: the type and identity of a path itself (a symbolic link is not followed), and an open that refuses
/// a link and does not block on a FIFO.
/// </summary>
internal static partial class NodeFiles
{
    private const string Libc = "libc";

    public const int S_IFMT = 0xF000;
    public const int S_IFDIR = 0x4000;
    public const int S_IFREG = 0x8000;
    public const int S_IFLNK = 0xA000;

    private const int AT_FDCWD = -100;
    private const int AT_SYMLINK_NOFOLLOW = 0x100;
    private const int AT_EMPTY_PATH = 0x1000;
    private const uint STATX_TYPE = 0x1;
    private const uint STATX_INO = 0x100;
    private const uint STATX_SIZE = 0x200;
    private const int ENOENT = 2;
    private const int ELOOP = 40;

    private const int O_RDONLY = 0;
    private const int O_NONBLOCK = 0x800;
    private const int O_CLOEXEC = 0x80000;
    // differs between architectures (asm-generic vs x86)
    private static int O_NOFOLLOW =>
        RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x8000 : 0x20000;

    [LibraryImport(Libc, EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, ref byte buffer);

    [LibraryImport(Libc, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags, int mode);

    /// <summary>The type bits (<see cref="S_IFMT"/>), identity and size of one file.</summary>
    public readonly record struct Status(int Type, FileIdentity Identity, long Size);

    /// <summary>The path itself, not what a symbolic link there points to; null when nothing is there.</summary>
    public static Status? LStat(string path)
    {
        Span<byte> buffer = stackalloc byte[256];
        if (Statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_INO | STATX_SIZE, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ENOENT) return null;
            throw new IOException($"cannot look at '{path}': {new Win32Exception(errno).Message}");
        }
        return Read(buffer);
    }

    /// <summary>The file an open handle refers to.</summary>
    public static Status FStat(SafeFileHandle handle, string path)
    {
        Span<byte> buffer = stackalloc byte[256];
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (Statx((int)handle.DangerousGetHandle(), "", AT_EMPTY_PATH, STATX_TYPE | STATX_INO | STATX_SIZE, ref MemoryMarshal.GetReference(buffer)) != 0)
                throw new IOException($"cannot look at the open file '{path}': {new Win32Exception(Marshal.GetLastPInvokeError()).Message}");
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
        return Read(buffer);
    }

    /// <summary>
    /// Opens a file for reading without following a symbolic link in its last component and without blocking on a
    /// FIFO (the caller checks the type of what it got before reading).
    /// </summary>
    public static SafeFileHandle OpenReadNoFollow(string path)
    {
        var fd = Open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ELOOP) throw new IOException($"'{path}' is a symbolic link");
            if (errno == ENOENT) throw new FileNotFoundException($"'{path}' does not exist", path);
            throw new IOException($"cannot open '{path}': {new Win32Exception(errno).Message}");
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    // struct statx: stx_mode u16 @28, stx_ino u64 @32, stx_size u64 @40, stx_dev_major u32 @136, stx_dev_minor u32 @140
    private static Status Read(ReadOnlySpan<byte> b) => new(
        BitConverter.ToUInt16(b[28..]) & S_IFMT,
        new FileIdentity(((ulong)BitConverter.ToUInt32(b[136..]) << 32) | BitConverter.ToUInt32(b[140..]), BitConverter.ToUInt64(b[32..])),
        (long)BitConverter.ToUInt64(b[40..]));

    /// <summary>A short name for a file type, for messages.</summary>
    public static string TypeName(int type) => type switch
    {
        S_IFREG => "a regular file",
        S_IFDIR => "a directory",
        S_IFLNK => "a symbolic link",
        0x1000 => "a FIFO",
        0xC000 => "a socket",
        0x2000 => "a character device",
        0x6000 => "a block device",
        _ => "not a regular file",
    };
}

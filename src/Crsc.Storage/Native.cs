using System.ComponentModel;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Crsc.Storage;

/// <summary>The few libc calls the BCL does not offer: O_NOFOLLOW opens, directory fsync, flock, the file type.</summary>
internal static partial class Native
{
    private const string Libc = "libc";

    private const int O_RDONLY = 0;
    private const int O_RDWR = 2;
    private const int O_CREAT = 0x40;
    private const int O_CLOEXEC = 0x80000;
    // these two differ between architectures (asm-generic vs x86)
    private static readonly bool GenericFlags =
        RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm;
    private static int O_NOFOLLOW => GenericFlags ? 0x8000 : 0x20000;
    private static int O_DIRECTORY => GenericFlags ? 0x4000 : 0x10000;

    public const int LOCK_EX = 2;
    public const int LOCK_NB = 4;
    public const int EWOULDBLOCK = 11;
    public const int ELOOP = 40;
    public const int EINTR = 4;

    [LibraryImport(Libc, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport(Libc, EntryPoint = "fsync", SetLastError = true)]
    private static partial int FSync(int fd);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport(Libc, EntryPoint = "flock", SetLastError = true)]
    private static partial int FLock(SafeFileHandle fd, int operation);

    [LibraryImport(Libc, EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport(Libc, EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    private const int AT_FDCWD = -100;
    private const int AT_SYMLINK_NOFOLLOW = 0x100;
    private const int AT_EMPTY_PATH = 0x1000;
    private const uint STATX_TYPE = 1;
    private const uint STATX_MODE = 2;
    private const uint STATX_UID = 8;
    private const uint STATX_INO = 0x100;
    private const uint STATX_SIZE = 0x200;
    private const uint STATX_WANTED = STATX_TYPE | STATX_MODE | STATX_UID | STATX_INO | STATX_SIZE;
    private const int ENOENT = 2;
    public const int S_IFMT = 0xF000;
    public const int S_IFDIR = 0x4000;
    public const int S_IFREG = 0x8000;
    public const int S_IFLNK = 0xA000;

    /// <summary>What statx(2) says of one file: <c>st_mode</c> (type and permission bits), owner, identity and size.</summary>
    public readonly record struct FileStatus(int Mode, uint Uid, Crsc.Controllers.Storage.FileIdentity Identity, long Size)
    {
        /// <summary>The type bits (<see cref="S_IFMT"/>).</summary>
        public int Type => Mode & S_IFMT;
    }

    [LibraryImport(Libc, EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int StatxFd(SafeFileHandle dirfd, string path, int flags, uint mask, byte* buffer);

    /// <summary>
    /// <paramref name="path"/> itself (a symbolic link is not followed), or null when nothing is there. statx(2), whose
    /// struct is the same on every architecture (unlike struct stat).
    /// </summary>
    public static unsafe FileStatus? LStat(string path)
    {
        var buffer = stackalloc byte[256];
        if (Statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_WANTED, buffer) == 0) return Read(buffer);
        var errno = Marshal.GetLastPInvokeError();
        if (errno == ENOENT) return null;
        throw new IOException($"cannot stat '{path}': {new Win32Exception(errno).Message}");
    }

    /// <summary>The file an open handle refers to (AT_EMPTY_PATH: whatever its path is now).</summary>
    public static unsafe FileStatus FStat(SafeFileHandle handle, string what = "an open file")
    {
        var buffer = stackalloc byte[256];
        if (StatxFd(handle, "", AT_EMPTY_PATH, STATX_WANTED, buffer) != 0)
            throw new IOException($"cannot stat {what}: {new Win32Exception(Marshal.GetLastPInvokeError()).Message}");
        return Read(buffer);
    }

    // struct statx: stx_uid u32 @20, stx_mode u16 @28, stx_ino u64 @32, stx_size u64 @40, stx_dev_major/minor u32 @136/@140
    private static unsafe FileStatus Read(byte* b) => new(
        *(ushort*)(b + 28), *(uint*)(b + 20),
        new(((ulong)*(uint*)(b + 136) << 32) | *(uint*)(b + 140), *(ulong*)(b + 32)),
        *(long*)(b + 40));

    /// <summary><c>st_mode</c> of <paramref name="path"/> itself: type (<see cref="S_IFMT"/>) and permission bits.</summary>
    public static int LStatMode(string path) => LStatModeAndOwner(path).Mode;

    /// <summary><c>st_mode</c> and <c>st_uid</c> of <paramref name="path"/> itself (a symlink is not followed).</summary>
    public static (int Mode, uint Uid) LStatModeAndOwner(string path) =>
        LStat(path) is { } s ? (s.Mode, s.Uid) : throw new FileNotFoundException($"'{path}' does not exist", path);

    /// <summary>The device and inode of the file an open handle refers to.</summary>
    public static Crsc.Controllers.Storage.FileIdentity Identity(SafeFileHandle handle, string path) =>
        FStat(handle, $"the open file '{path}'").Identity;

    /// <summary>A short name for a file type, for messages.</summary>
    public static string TypeName(int type) => (type & S_IFMT) switch
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

    private const int O_NONBLOCK = 0x800;

    /// <summary>
    /// Opens an existing file for reading without following a symlink in the last component; <paramref name="nonBlocking"/>:
    /// without blocking on a FIFO (for a path someone else named; the caller checks the type of what it got).
    /// </summary>
    public static SafeFileHandle OpenReadNoFollow(string path, bool nonBlocking = false)
    {
        var fd = Open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0), 0);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ELOOP) throw new ErrnoException(errno, $"'{path}' is a symbolic link; crsc does not follow links in its store");
            if (errno == 2) throw new FileNotFoundException($"'{path}' does not exist", path);
            throw new ErrnoException(errno, $"cannot open '{path}': {new Win32Exception(errno).Message}");
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    public const int EACCES = 13;

    /// <summary>An <see cref="IOException"/> that keeps the errno, so callers decide by it rather than by the message.</summary>
    public sealed class ErrnoException(int errno, string message) : IOException(message)
    {
        public int Errno { get; } = errno;
    }

    /// <summary>Opens (creating with 0600) a file for reading and writing, without following a symlink.</summary>
    public static SafeFileHandle OpenOrCreateNoFollow(string path)
    {
        var fd = Open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0b110_000_000);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot open '{path}': {new Win32Exception(errno).Message}");
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>fsync of a directory, so a rename or unlink inside it is durable.</summary>
    public static void FSyncDirectory(string path)
    {
        var fd = Open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
        if (fd < 0)
            throw new IOException($"cannot open directory '{path}' to fsync it: {new Win32Exception(Marshal.GetLastPInvokeError()).Message}");
        try
        {
            if (FSync(fd) != 0)
                throw new IOException($"fsync of directory '{path}' failed: {new Win32Exception(Marshal.GetLastPInvokeError()).Message}");
        }
        finally { _ = Close(fd); }
    }

    /// <summary>flock(2); returns 0 or the errno.</summary>
    public static int TryFLock(SafeFileHandle handle, int operation)
    {
        while (true)
        {
            if (FLock(handle, operation) == 0) return 0;
            var errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR) return errno;
        }
    }
}

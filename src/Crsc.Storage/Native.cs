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
    private const uint STATX_TYPE = 1;
    private const uint STATX_MODE = 2;
    private const uint STATX_UID = 8;
    public const int S_IFMT = 0xF000;
    public const int S_IFDIR = 0x4000;
    public const int S_IFREG = 0x8000;
    public const int S_IFLNK = 0xA000;

    /// <summary>
    /// <c>st_mode</c> of <paramref name="path"/> itself (a symlink is not followed): type (<see cref="S_IFMT"/>) and
    /// permission bits. statx(2), whose struct is the same on every architecture (unlike struct stat).
    /// </summary>
    public static int LStatMode(string path) => LStatModeAndOwner(path).Mode;

    /// <summary><c>st_mode</c> and <c>st_uid</c> of <paramref name="path"/> itself (a symlink is not followed).</summary>
    public static unsafe (int Mode, uint Uid) LStatModeAndOwner(string path)
    {
        var buffer = stackalloc byte[256];
        if (Statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_MODE | STATX_UID, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == 2) throw new FileNotFoundException($"'{path}' does not exist", path);
            throw new IOException($"cannot stat '{path}': {new Win32Exception(errno).Message}");
        }
        return (*(ushort*)(buffer + 28), *(uint*)(buffer + 20)); // stx_mode, stx_uid
    }

    [LibraryImport(Libc, EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int StatxFd(SafeFileHandle dirfd, string path, int flags, uint mask, byte* buffer);

    private const int AT_EMPTY_PATH = 0x1000;
    private const uint STATX_INO = 0x100;
    private const uint STATX_SIZE = 0x200;

    /// <summary>statx(2) of an open file (AT_EMPTY_PATH: the file the handle refers to, whatever its path is now).</summary>
    private static unsafe void StatxOpen(SafeFileHandle handle, uint mask, byte* buffer, string what)
    {
        if (StatxFd(handle, "", AT_EMPTY_PATH, mask, buffer) != 0)
            throw new IOException($"cannot stat {what}: {new Win32Exception(Marshal.GetLastPInvokeError()).Message}");
    }

    /// <summary><c>st_mode</c>, <c>st_uid</c> and <c>st_size</c> of an open file.</summary>
    public static unsafe (int Mode, uint Uid, long Size) FStat(SafeFileHandle handle)
    {
        var buffer = stackalloc byte[256];
        StatxOpen(handle, STATX_TYPE | STATX_MODE | STATX_UID | STATX_SIZE, buffer, "an open file");
        return (*(ushort*)(buffer + 28), *(uint*)(buffer + 20), *(long*)(buffer + 40)); // stx_mode, stx_uid, stx_size
    }

    /// <summary>The device and inode of the file an open handle refers to.</summary>
    public static unsafe Crsc.Controllers.Storage.FileIdentity Identity(SafeFileHandle handle, string path)
    {
        var buffer = stackalloc byte[256];
        StatxOpen(handle, STATX_TYPE | STATX_INO, buffer, $"the open file '{path}'");
        // stx_ino @32, stx_dev_major @136, stx_dev_minor @140
        return new(((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140), *(ulong*)(buffer + 32));
    }

    /// <summary>Opens an existing file for reading without following a symlink in the last component.</summary>
    public static SafeFileHandle OpenReadNoFollow(string path)
    {
        var fd = Open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ELOOP) throw new IOException($"'{path}' is a symbolic link; crsc does not follow links in its store");
            if (errno == 2) throw new FileNotFoundException($"'{path}' does not exist", path);
            throw new IOException($"cannot open '{path}': {new Win32Exception(errno).Message}");
        }
        return new SafeFileHandle(fd, ownsHandle: true);
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

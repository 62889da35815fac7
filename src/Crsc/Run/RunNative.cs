using System.Globalization;
using System.Runtime.InteropServices;

namespace Crsc.Run;

/// <summary>
/// The libc calls <c>crsc run</c> needs that .NET's <see cref="System.Diagnostics.Process"/> cannot give: a child in a
/// new session (setsid) with every inherited descriptor above 2 closed, reaping any child by pid (the restored root
/// CRIU leaves behind is not a <c>Process</c>), the child-subreaper bit, and kill(2).
/// </summary>
internal static unsafe partial class RunNative
{
    // glibc <spawn.h>
    private const short PosixSpawnSetSigDef = 0x04, PosixSpawnSetSigMask = 0x08, PosixSpawnSetSid = 0x80;
    private const int PrSetChildSubreaper = 36;
    private const int FGetFd = 1, FSetFd = 2, FdCloexec = 1;
    public const int Enoent = 2, Esrch = 3, Eintr = 4, Eacces = 13, Echild = 10;

    /// <summary>
    /// Starts <paramref name="argv"/> (searched on PATH) as a child in a new session whose process group and session
    /// id are its pid, with default signal dispositions, an empty signal mask, stdin/stdout/stderr inherited and
    /// every other descriptor closed. Returns the pid, or throws <see cref="SpawnException"/> with the errno.
    /// </summary>
    public static int Spawn(IReadOnlyList<string> argv, bool newSession)
    {
        ArgumentOutOfRangeException.ThrowIfZero(argv.Count);
        MarkInheritedDescriptorsCloseOnExec();
        // glibc's posix_spawnattr_t is 336 bytes and posix_spawn_file_actions_t 80 on 64-bit: room to spare
        var attr = NativeMemory.AllocZeroed(1024);
        var actions = NativeMemory.AllocZeroed(512);
        var sigs = NativeMemory.AllocZeroed(256);
        var strings = new List<nint>();
        try
        {
            Check(PosixSpawnattrInit(attr));
            Check(PosixSpawnFileActionsInit(actions));
            try
            {
                Check(SigFillSet(sigs) == 0 ? 0 : Marshal.GetLastPInvokeError());
                Check(PosixSpawnattrSetSigDefault(attr, sigs));
                Check(SigEmptySet(sigs) == 0 ? 0 : Marshal.GetLastPInvokeError());
                Check(PosixSpawnattrSetSigMask(attr, sigs));
                var flags = (short)(PosixSpawnSetSigDef | PosixSpawnSetSigMask | (newSession ? PosixSpawnSetSid : 0));
                Check(PosixSpawnattrSetFlags(attr, flags));
                TryAddCloseFrom(actions, 3);

                var argvPtr = (nint*)NativeMemory.AllocZeroed((nuint)(argv.Count + 1), (nuint)sizeof(nint));
                var env = Environment.GetEnvironmentVariables();
                var envPtr = (nint*)NativeMemory.AllocZeroed((nuint)(env.Count + 1), (nuint)sizeof(nint));
                try
                {
                    for (var i = 0; i < argv.Count; i++) strings.Add(argvPtr[i] = Marshal.StringToCoTaskMemUTF8(argv[i]));
                    var k = 0;
                    foreach (System.Collections.DictionaryEntry e in env)
                        strings.Add(envPtr[k++] = Marshal.StringToCoTaskMemUTF8($"{e.Key}={e.Value}"));
                    var file = Marshal.StringToCoTaskMemUTF8(argv[0]);
                    strings.Add(file);
                    int pid;
                    var rc = PosixSpawnp(&pid, file, actions, attr, argvPtr, envPtr);
                    if (rc != 0) throw new SpawnException(argv[0], rc);
                    return pid;
                }
                finally
                {
                    NativeMemory.Free(argvPtr);
                    NativeMemory.Free(envPtr);
                }
            }
            finally
            {
                _ = PosixSpawnFileActionsDestroy(actions);
                _ = PosixSpawnattrDestroy(attr);
            }
        }
        finally
        {
            foreach (var s in strings) Marshal.FreeCoTaskMem(s);
            NativeMemory.Free(attr);
            NativeMemory.Free(actions);
            NativeMemory.Free(sigs);
        }

        static void Check(int rc)
        {
            if (rc != 0) throw new SpawnException("posix_spawn setup", rc);
        }
    }

    private static bool s_noCloseFrom;

    /// <summary>posix_spawn_file_actions_addclosefrom_np (glibc 2.34); older libcs rely on the close-on-exec sweep.</summary>
    private static void TryAddCloseFrom(void* actions, int from)
    {
        if (s_noCloseFrom) return;
        try { _ = PosixSpawnFileActionsAddCloseFrom(actions, from); }
        catch (EntryPointNotFoundException) { s_noCloseFrom = true; }
    }

    /// <summary>
    /// Marks every open descriptor above 2 close-on-exec: whatever the container runtime or a parent left open to
    /// <c>crsc run</c> must not reach the workload (CRIU refuses a tree holding a descriptor of a mount it cannot
    /// see: "Can't lookup mount=… for fd=…"). .NET's own descriptors are close-on-exec already.
    /// </summary>
    public static void MarkInheritedDescriptorsCloseOnExec()
    {
        string[] entries;
        try { entries = Directory.GetFileSystemEntries("/proc/self/fd"); }
        catch (IOException) { return; }
        catch (UnauthorizedAccessException) { return; }
        foreach (var entry in entries)
        {
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var fd) || fd <= 2) continue;
            var flags = Fcntl(fd, FGetFd, 0);
            if (flags >= 0 && (flags & FdCloexec) == 0) _ = Fcntl(fd, FSetFd, flags | FdCloexec);
        }
    }

    /// <summary>waitpid(2) blocking; the pid reaped (0 never), or -errno.</summary>
    public static int Wait(int pid, out int status, bool noHang = false)
    {
        int s;
        var r = WaitPid(pid, &s, noHang ? 1 : 0);
        status = s;
        return r >= 0 ? r : -Marshal.GetLastPInvokeError();
    }

    /// <summary>The exit code a shell would give for a wait status: the code, or 128 + signal.</summary>
    public static int ExitCodeOf(int status) =>
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);

    /// <summary>The signal that ended the process, or 0 when it exited.</summary>
    public static int TermSignalOf(int status) => (status & 0x7f) is var s && s != 0 && s != 0x7f ? s : 0;

    /// <summary>kill(2); 0, or the errno.</summary>
    public static int Signal(int pid, int signal) => Kill(pid, signal) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>Orphaned descendants (the root CRIU restores, daemonized grandchildren) are reparented to us.</summary>
    public static bool BecomeSubreaper() => Prctl(PrSetChildSubreaper, 1, 0, 0, 0) == 0;

    public static int GetSid(int pid) => GetSidNative(pid);

    /// <summary>fsync(2) of a directory (its entries: a rename into it, a file created in it).</summary>
    public static void FSyncDirectory(string path)
    {
        const int ORdOnly = 0, ODirectory = 0x10000, ONoFollow = 0x20000, OCloexec = 0x80000;
        var fd = Open(path, ORdOnly | ODirectory | ONoFollow | OCloexec, 0);
        if (fd < 0) throw new IOException($"cannot open directory {path} to fsync it: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        try
        {
            if (FSync(fd) != 0) throw new IOException($"fsync of directory {path} failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        finally { _ = Close(fd); }
    }

    /// <summary>lchown(2); false when it failed (not root, or an id this container does not map).</summary>
    public static bool Chown(string path, int uid, int gid) => LChown(path, uid, gid) == 0;

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "lchown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int LChown(string path, int uid, int gid);

    public static uint EffectiveUid => GetEuid();

    [LibraryImport("libc", EntryPoint = "posix_spawnp")]
    private static partial int PosixSpawnp(int* pid, nint file, void* fileActions, void* attr, nint* argv, nint* envp);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_init")]
    private static partial int PosixSpawnattrInit(void* attr);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_destroy")]
    private static partial int PosixSpawnattrDestroy(void* attr);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setflags")]
    private static partial int PosixSpawnattrSetFlags(void* attr, short flags);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigdefault")]
    private static partial int PosixSpawnattrSetSigDefault(void* attr, void* sigset);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigmask")]
    private static partial int PosixSpawnattrSetSigMask(void* attr, void* sigset);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_init")]
    private static partial int PosixSpawnFileActionsInit(void* actions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_destroy")]
    private static partial int PosixSpawnFileActionsDestroy(void* actions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addclosefrom_np")]
    private static partial int PosixSpawnFileActionsAddCloseFrom(void* actions, int from);

    [LibraryImport("libc", EntryPoint = "sigfillset", SetLastError = true)]
    private static partial int SigFillSet(void* set);

    [LibraryImport("libc", EntryPoint = "sigemptyset", SetLastError = true)]
    private static partial int SigEmptySet(void* set);

    [LibraryImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    private static partial int WaitPid(int pid, int* status, int options);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int command, int arg);

    [LibraryImport("libc", EntryPoint = "getsid")]
    private static partial int GetSidNative(int pid);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();
}

/// <summary>posix_spawn failed: <see cref="Errno"/> says why (ENOENT: not found on PATH, EACCES: not executable).</summary>
internal sealed class SpawnException(string program, int errno)
    : Exception($"cannot start {program}: {Marshal.GetPInvokeErrorMessage(errno)}")
{
    public int Errno { get; } = errno;
}

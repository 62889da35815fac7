using System.Runtime.InteropServices;

namespace Crsc.Systemd.Native;

/// <summary>
/// The few libc calls .NET does not expose: fd passing (sendmsg + SCM_RIGHTS), sealed memfds and statx.
/// Linux, 64-bit only (the layouts below are those of x86-64 and arm64, which agree).
/// </summary>
internal static unsafe partial class LibC
{
    private const string Library = "libc";

    internal const int EINTR = 4;
    internal const int EINVAL = 22;
    internal const int ENOSYS = 38;
    internal const int EMSGSIZE = 90;
    internal const int ENOBUFS = 105;

    internal const int SOL_SOCKET = 1;
    internal const int SCM_RIGHTS = 1;
    internal const int MSG_NOSIGNAL = 0x4000;

    internal const uint MFD_CLOEXEC = 0x1;
    internal const uint MFD_ALLOW_SEALING = 0x2;

    internal const int F_ADD_SEALS = 1024 + 9;
    internal const int F_GET_SEALS = 1024 + 10;
    internal const int F_SEAL_SEAL = 0x1;
    internal const int F_SEAL_SHRINK = 0x2;
    internal const int F_SEAL_GROW = 0x4;
    internal const int F_SEAL_WRITE = 0x8;
    internal const int AllSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

    internal const int AT_EMPTY_PATH = 0x1000;
    internal const uint STATX_INO = 0x100;

    /// <summary>struct msghdr (64-bit Linux).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>struct iovec.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    /// <summary>struct cmsghdr (64-bit Linux): its data starts 16 bytes in.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct CmsgHdr
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    /// <summary>CMSG_ALIGN(sizeof(struct cmsghdr)).</summary>
    internal const int CmsgHeaderSize = 16;

    /// <summary>CMSG_SPACE(n) for 64-bit Linux.</summary>
    internal static int CmsgSpace(int dataLength) => CmsgHeaderSize + ((dataLength + 7) & ~7);

    /// <summary>CMSG_LEN(n) for 64-bit Linux.</summary>
    internal static int CmsgLength(int dataLength) => CmsgHeaderSize + dataLength;

    [LibraryImport(Library, EntryPoint = "sendmsg", SetLastError = true)]
    internal static partial nint SendMsg(int socket, MsgHdr* message, int flags);

    [LibraryImport(Library, EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int MemfdCreate(string name, uint flags);

    /// <summary>fcntl with one int argument (F_ADD_SEALS, F_GET_SEALS).</summary>
    [LibraryImport(Library, EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport(Library, EntryPoint = "write", SetLastError = true)]
    internal static partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport(Library, EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    [LibraryImport(Library, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Statx(int directoryFd, string path, int flags, uint mask, byte* buffer);

    internal static bool IsSupported => OperatingSystem.IsLinux() && Environment.Is64BitProcess;

    /// <summary>Writes all of <paramref name="data"/> to <paramref name="fd"/>; 0 or the errno.</summary>
    internal static int WriteAll(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* start = data)
        {
            var done = 0;
            while (done < data.Length)
            {
                var n = Write(fd, start + done, (nuint)(data.Length - done));
                if (n < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == EINTR) continue;
                    return errno;
                }
                done += (int)n;
            }
        }
        return 0;
    }
}

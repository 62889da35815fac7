using System.Runtime.InteropServices;

namespace Crsc.Systemd.Native;

/// <summary>Sends a datagram that carries one file descriptor (SCM_RIGHTS) and no payload bytes.</summary>
internal static unsafe class FdPassing
{
    /// <summary>Returns 0 when sent, else the errno.</summary>
    public static int SendDescriptor(SafeHandle socket, UnixSocketAddress destination, int fd)
    {
        var controlSpace = LibC.CmsgSpace(sizeof(int));
        var control = stackalloc byte[controlSpace];
        new Span<byte>(control, controlSpace).Clear();
        var header = (LibC.CmsgHdr*)control;
        header->Length = (nuint)LibC.CmsgLength(sizeof(int));
        header->Level = LibC.SOL_SOCKET;
        header->Type = LibC.SCM_RIGHTS;
        *(int*)(control + LibC.CmsgHeaderSize) = fd;

        var added = false;
        try
        {
            socket.DangerousAddRef(ref added);
            var socketFd = (int)socket.DangerousGetHandle();
            fixed (byte* name = destination.SockAddr)
            {
                var message = new LibC.MsgHdr
                {
                    Name = name,
                    NameLength = (uint)destination.SockAddr.Length,
                    Iov = null,
                    IovLength = 0,
                    Control = control,
                    ControlLength = (nuint)controlSpace,
                };
                while (true)
                {
                    if (LibC.SendMsg(socketFd, &message, LibC.MSG_NOSIGNAL) >= 0) return 0;
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno != LibC.EINTR) return errno;
                }
            }
        }
        finally
        {
            if (added) socket.DangerousRelease();
        }
    }
}

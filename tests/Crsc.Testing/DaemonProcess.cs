using System.Diagnostics;
using System.Globalization;

namespace Crsc.Testing;

/// <summary>Stopping a daemon process the way systemd does.</summary>
public static class DaemonProcess
{
    /// <summary>SIGTERM, then SIGKILL after 20 s; disposes the process. Null or already exited: only disposes.</summary>
    public static void Stop(Process? daemon)
    {
        if (daemon is { HasExited: false })
        {
            using (var kill = Process.Start("kill", ["-TERM", daemon.Id.ToString(CultureInfo.InvariantCulture)])) kill.WaitForExit();
            if (!daemon.WaitForExit(20_000)) daemon.Kill();
        }
        daemon?.Dispose();
    }
}

using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Crsc.Testing;

/// <summary>Loopback TCP ports for tests: a free one to listen on, or why a given one cannot be had.</summary>
public static class LoopbackPorts
{
    /// <summary>A port free on 127.0.0.1 now (the kernel's pick; another program may take it before the caller binds).</summary>
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// Null when <paramref name="hostPort"/> (<c>127.0.0.1:5055</c>, <c>[::1]:5055</c>) can be bound now; otherwise why
    /// not (the socket error), for a message that names the port and the cure.
    /// </summary>
    public static string? WhyTaken(string hostPort)
    {
        var colon = hostPort.LastIndexOf(':');
        var host = IPAddress.Parse(hostPort[..colon].Trim('[', ']'));
        var port = int.Parse(hostPort[(colon + 1)..], CultureInfo.InvariantCulture);
        try
        {
            using var probe = new TcpListener(host, port);
            probe.Start();
            return null;
        }
        catch (SocketException e)
        {
            return $"{e.SocketErrorCode}: {e.Message}";
        }
    }
}

using System.ComponentModel;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Crsc.E2E.Tests.Packaging;

/// <summary>
/// A TCP listener on 127.0.0.1:<c>port</c> in another process's network namespace (a booted container's, which
/// systemd-nspawn --private-network gives its own loopback), relaying each connection to 127.0.0.1:<c>targetPort</c> of
/// this process's namespace: a server of the test (a <see cref="Crsc.Testing.Kube.FakeApiServer"/>) reachable from
/// inside the container at the address it has outside, and nothing else of the host. Nothing is configured in either
/// namespace: the listening socket is made by a thread that enters the container's namespace (setns applies to the
/// calling thread only), binds, and comes back; it closes with <see cref="DisposeAsync"/>.
/// </summary>
public sealed class LoopbackRelay : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Socket> _open = [];
    private readonly Task _accepting;

    /// <summary>Connections relayed so far.</summary>
    public int Connections => Volatile.Read(ref _connections);
    private int _connections;

    private LoopbackRelay(Socket listener, int targetPort)
    {
        _listener = listener;
        _targetPort = targetPort;
        _accepting = Task.Run(AcceptAsync);
    }

    /// <param name="pid">a process in the namespace to listen in (the container's init)</param>
    public static LoopbackRelay Open(int pid, int port, int targetPort)
    {
        Socket? listener = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            var own = Open("/proc/thread-self/ns/net");
            try
            {
                var theirs = Open($"/proc/{pid}/ns/net");
                try
                {
                    if (setns(theirs, CloneNewNet) != 0) throw new Win32Exception(Marshal.GetLastPInvokeError(), $"setns into the network namespace of pid {pid}");
                }
                finally
                {
                    close(theirs);
                }
                try
                {
                    listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
                    listener.Listen(64);
                }
                finally
                {
                    // back home before the thread ends, whatever happened
                    if (setns(own, CloneNewNet) != 0) Environment.FailFast($"setns back to the test's network namespace: errno {Marshal.GetLastPInvokeError()}");
                }
            }
            catch (Exception e)
            {
                listener?.Dispose();
                listener = null;
                error = e;
            }
            finally
            {
                close(own);
            }
        }) { IsBackground = true, Name = "netns-listener" };
        thread.Start();
        thread.Join();
        if (listener is null) throw new InvalidOperationException($"cannot listen on 127.0.0.1:{port} in the network namespace of pid {pid}", error);
        return new LoopbackRelay(listener, targetPort);
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            Interlocked.Increment(ref _connections);
            _ = Task.Run(() => RelayAsync(client));
        }
    }

    private async Task RelayAsync(Socket client)
    {
        // made on a thread-pool thread: in the test's own namespace
        var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        lock (_open) { _open.Add(client); _open.Add(server); }
        try
        {
            await server.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _targetPort), _stop.Token);
            await Task.WhenAll(PumpAsync(client, server), PumpAsync(server, client));
        }
        catch (Exception)
        {
            // a connection that breaks (the server stopped, the container powered off) ends; the client sees it closed
        }
        finally
        {
            lock (_open) { _open.Remove(client); _open.Remove(server); }
            client.Dispose();
            server.Dispose();
        }
    }

    private async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int n;
            while ((n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token)) > 0)
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token);
        }
        finally
        {
            // half-close: the other side learns the end of this direction
            try { to.Shutdown(SocketShutdown.Send); } catch (SocketException) { } catch (ObjectDisposedException) { }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        lock (_open) foreach (var s in _open) s.Dispose();
        try { await _accepting; } catch (Exception) { }
        _stop.Dispose();
    }

    private const int CloneNewNet = 0x40000000;
    private const int ORdOnly = 0, OCloExec = 0x80000;

    private static int Open(string path)
    {
        var fd = open(path, ORdOnly | OCloExec);
        return fd >= 0 ? fd : throw new Win32Exception(Marshal.GetLastPInvokeError(), $"open {path}");
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int setns(int fd, int nstype);

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);
}

using System.Diagnostics;
using System.IO.Pipes;
using Crsc.Testing;
using Tmds.DBus.Protocol;

namespace Crsc.Systemd.Tests.Logind;

/// <summary>
/// A real <c>dbus-daemon</c> of its own (a session-type bus on a socket in a temp directory), started for one test and
/// stopped by its PID.
/// </summary>
internal sealed class DBusTestBus : IDisposable
{
    private readonly TempDir _dir = new();

    public DBusTestBus()
    {
        var socket = Path.Combine(_dir.Path, "bus");
        Address = $"unix:path={socket}";
        var start = new ProcessStartInfo("/usr/bin/dbus-daemon", ["--session", $"--address={Address}", "--fork", "--print-pid", "--nopidfile"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(start)!;
        var output = p.StandardOutput.ReadLine();
        p.WaitForExit();
        if (p.ExitCode != 0 || !int.TryParse(output, out var pid))
            throw new InvalidOperationException($"dbus-daemon did not start ({p.ExitCode}): {output} {p.StandardError.ReadToEnd()}");
        Pid = pid;
    }

    public string Address { get; }
    public int Pid { get; }

    /// <summary>Stops the bus (SIGTERM to its PID): every connection on it is closed.</summary>
    public void Stop()
    {
        try { Process.GetProcessById(Pid).Kill(); }
        catch (ArgumentException) { } // gone already
        catch (InvalidOperationException) { }
    }

    public void Dispose()
    {
        Stop();
        _dir.Dispose();
    }
}

/// <summary>
/// A fake logind on the test bus: org.freedesktop.login1 with <c>Inhibit</c> (answering the read end's peer of a pipe,
/// so the test sees when the client closes its fd), the <c>InhibitDelayMaxUSec</c> property, and
/// <c>PrepareForShutdown</c> sent when the test says.
/// </summary>
internal sealed class FakeLogind : IPathMethodHandler, IDisposable
{
    private const string ManagerInterface = "org.freedesktop.login1.Manager";
    private readonly DBusConnection _connection;
    private readonly List<(string What, string Who, string Why, string Mode)> _inhibits = [];
    private readonly List<Task> _released = [];

    private FakeLogind(DBusConnection connection) => _connection = connection;

    public static async Task<FakeLogind> StartAsync(string address)
    {
        var connection = new DBusConnection(address);
        await connection.ConnectAsync();
        var fake = new FakeLogind(connection);
        connection.AddMethodHandler(fake);
        await connection.RequestNameAsync("org.freedesktop.login1", RequestNameOptions.Default);
        return fake;
    }

    public ulong DelayMaxUSec { get; set; } = 5_000_000;

    public string Path => "/org/freedesktop/login1";
    public bool HandlesChildPaths => false;

    public IReadOnlyList<(string What, string Who, string Why, string Mode)> Inhibits { get { lock (_inhibits) return [.. _inhibits]; } }

    /// <summary>Per inhibitor handed out: completes when every copy of its fd is closed (the client released it).</summary>
    public IReadOnlyList<Task> Released { get { lock (_inhibits) return [.. _released]; } }

    public ValueTask HandleMethodAsync(MethodContext context)
    {
        var request = context.Request;
        var reader = request.GetBodyReader();
        switch (request.InterfaceAsString, request.MemberAsString)
        {
            case (ManagerInterface, "Inhibit"):
            {
                var inhibit = (reader.ReadString(), reader.ReadString(), reader.ReadString(), reader.ReadString());
                // logind hands out one end of a FIFO and watches the other for the close; a pipe does the same here
                var pipe = new AnonymousPipeServerStream(PipeDirection.In);
                using (var w = context.CreateReplyWriter("h"))
                {
                    w.WriteHandle(pipe.ClientSafePipeHandle);
                    context.Reply(w.CreateMessage());
                }
                pipe.DisposeLocalCopyOfClientHandle();
                lock (_inhibits)
                {
                    _inhibits.Add(inhibit);
                    _released.Add(Task.Run(async () =>
                    {
                        var buffer = new byte[1];
                        while (await pipe.ReadAsync(buffer) > 0) { }
                        await pipe.DisposeAsync();
                    }));
                }
                break;
            }
            case ("org.freedesktop.DBus.Properties", "Get"):
            {
                var (iface, name) = (reader.ReadString(), reader.ReadString());
                if (iface != ManagerInterface || name != "InhibitDelayMaxUSec")
                {
                    context.ReplyError("org.freedesktop.DBus.Error.UnknownProperty", $"{iface}.{name}");
                    break;
                }
                using var w = context.CreateReplyWriter("v");
                w.WriteVariantUInt64(DelayMaxUSec);
                context.Reply(w.CreateMessage());
                break;
            }
            default:
                context.ReplyUnknownMethodError();
                break;
        }
        return ValueTask.CompletedTask;
    }

    public void PrepareForShutdown(bool start)
    {
        using var w = _connection.GetMessageWriter();
        w.WriteSignalHeader(null, Path, ManagerInterface, "PrepareForShutdown", "b");
        w.WriteBool(start);
        if (!_connection.TrySendMessage(w.CreateMessage())) throw new InvalidOperationException("the signal was not sent");
    }

    public void Dispose() => _connection.Dispose();
}

using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Crsc.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Interceptor.Tests;

public sealed class ControlServerTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ManualTimeProvider _time = new();

    public void Dispose() => _dir.Dispose();

    private static async Task<string> AskAsync(string path, string line)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await s.ConnectAsync(new UnixDomainSocketEndPoint(path));
        await s.SendAsync(Encoding.UTF8.GetBytes(line + "\n"));
        var buffer = new byte[8192];
        var text = new StringBuilder();
        while (!text.ToString().EndsWith('\n'))
        {
            var n = await s.ReceiveAsync(buffer);
            if (n == 0) break;
            text.Append(Encoding.UTF8.GetString(buffer, 0, n));
        }
        return text.ToString().TrimEnd('\n');
    }

    [Fact]
    public async Task Hold_release_and_status_over_the_socket_which_is_0600()
    {
        using var gate = new HoldGate(new HoldOptions(), _time);
        var path = _dir.Combine("control.sock");
        await using var control = new ControlServer(path, gate, NullLogger.Instance);
        control.Start();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Single(Directory.GetFileSystemEntries(_dir.Path)); // no temporary name left behind

        var held = await AskAsync(path, "hold checkpoint of shop/cart");
        Assert.StartsWith("ok ", held);
        Assert.True(gate.Status().Held);
        Assert.Equal("checkpoint of shop/cart", gate.Status().Reason);
        using (var doc = JsonDocument.Parse(held[3..]))
        {
            Assert.True(doc.RootElement.GetProperty("held").GetBoolean());
            Assert.Equal("checkpoint of shop/cart", doc.RootElement.GetProperty("reason").GetString());
        }

        _ = gate.EnterAsync(10, CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(2));
        var status = await AskAsync(path, "status");
        using (var doc = JsonDocument.Parse(status[3..]))
        {
            Assert.Equal(1, doc.RootElement.GetProperty("queued").GetInt32());
            Assert.Equal(10, doc.RootElement.GetProperty("queuedBytes").GetInt64());
            Assert.Equal(2, doc.RootElement.GetProperty("heldForSeconds").GetDouble());
        }

        var released = await AskAsync(path, "release");
        Assert.StartsWith("ok ", released);
        Assert.False(gate.Status().Held);
        using (var doc = JsonDocument.Parse(released[3..]))
        {
            Assert.Equal(1, doc.RootElement.GetProperty("holds").GetInt64());
            Assert.Equal(1, doc.RootElement.GetProperty("releasedRequests").GetInt64());
            Assert.Equal(2, doc.RootElement.GetProperty("totalHoldSeconds").GetDouble());
        }
    }

    [Fact]
    public async Task Unknown_commands_are_errors_that_change_nothing()
    {
        using var gate = new HoldGate(new HoldOptions(), _time);
        var path = _dir.Combine("control.sock");
        await using var control = new ControlServer(path, gate, NullLogger.Instance);
        control.Start();
        Assert.Equal("error unknown command 'freeze' (hold [REASON], release, status)", await AskAsync(path, "freeze"));
        Assert.StartsWith("error", await AskAsync(path, "release now"));
        Assert.False(gate.Status().Held);
    }

    [Fact]
    public async Task A_stale_socket_is_replaced_and_a_regular_file_is_left_alone()
    {
        using var gate = new HoldGate(new HoldOptions(), _time);
        var path = _dir.Combine("control.sock");
        using (var stale = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            stale.Bind(new UnixDomainSocketEndPoint(path));
        await using (var control = new ControlServer(path, gate, NullLogger.Instance))
        {
            control.Start();
            Assert.StartsWith("ok ", await AskAsync(path, "status"));
        }
        Assert.False(File.Exists(path)); // removed on stop

        var file = _dir.Combine("not-a-socket");
        await File.WriteAllTextAsync(file, "keep me");
        await using var refused = new ControlServer(file, gate, NullLogger.Instance);
        var e = Assert.Throws<IOException>(refused.Start);
        Assert.Contains(file, e.Message);
        Assert.Equal("keep me", await File.ReadAllTextAsync(file));
    }
}

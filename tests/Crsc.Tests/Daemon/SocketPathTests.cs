using System.Net.Sockets;
using Crsc.Cli;
using Crsc.Daemon;
using Crsc.Testing;

namespace Crsc.Tests.Daemon;

/// <summary>
/// What the daemon does with what it finds at <c>socket</c>: only a stale socket (a socket nobody answers on) is
/// replaced; a regular file, a directory or a symlink is a configuration error naming the key and the path, and
/// the path is left exactly as it was.
/// </summary>
public sealed class SocketPathTests : IDisposable
{
    private readonly TempDir _dir = new("crsc-socket-path-");
    private readonly List<Socket> _sockets = [];

    public void Dispose()
    {
        foreach (var s in _sockets) s.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task Crsc_daemon_with_socket_on_a_regular_file_exits_78_naming_the_key_and_path_and_keeps_the_file()
    {
        var path = _dir.Combine("precious.txt");
        await File.WriteAllTextAsync(path, "do not delete me\n");

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20)); // a daemon that started anyway stops
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await new CommandLineParser(Commands.Root(), o, e).RunAsync(
        [
            "daemon", "--socket", path, "--node-name", "node-a",
            "--state-dir", _dir.Combine("state"), "--checkpoint-dir", _dir.Combine("checkpoints"), "--staging-dir", _dir.Combine("staging"),
            "--runtime-endpoint", "unix://" + _dir.Combine("no-runtime.sock"), "--log-format", "console",
        ], cts.Token);

        Assert.Equal(ExitCodes.Config, code);
        Assert.Contains("socket", e.ToString());
        Assert.Contains(path, e.ToString());
        Assert.Contains("regular file", e.ToString());
        Assert.Equal("do not delete me\n", await File.ReadAllTextAsync(path));
    }

    [Fact]
    public void A_regular_file_is_refused_and_untouched()
    {
        var path = _dir.Combine("file");
        File.WriteAllText(path, "content");
        var ex = Assert.Throws<SocketPathException>(() => NodeApi.PrepareSocket(path));
        Assert.Contains(path, ex.Message);
        Assert.StartsWith("socket:", ex.Message);
        Assert.Equal("content", File.ReadAllText(path));
    }

    [Fact]
    public void A_directory_is_refused_and_untouched()
    {
        var path = _dir.Combine("dir");
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, "inside"), "x");
        Assert.Throws<SocketPathException>(() => NodeApi.PrepareSocket(path));
        Assert.Equal("x", File.ReadAllText(Path.Combine(path, "inside")));
    }

    [Fact]
    public void A_symlink_is_refused_even_to_a_stale_socket_and_neither_is_touched()
    {
        var target = _dir.Combine("stale.sock");
        MakeStaleSocket(target);
        var link = _dir.Combine("link.sock");
        File.CreateSymbolicLink(link, target);
        Assert.Throws<SocketPathException>(() => NodeApi.PrepareSocket(link));
        Assert.Equal(target, new FileInfo(link).LinkTarget);
        Assert.True(Path.Exists(target));

        var fileTarget = _dir.Combine("file");
        File.WriteAllText(fileTarget, "content");
        var fileLink = _dir.Combine("file-link.sock");
        File.CreateSymbolicLink(fileLink, fileTarget);
        Assert.Throws<SocketPathException>(() => NodeApi.PrepareSocket(fileLink));
        Assert.Equal("content", File.ReadAllText(fileTarget));
    }

    [Fact]
    public void A_stale_socket_is_replaced_and_a_live_one_refused()
    {
        var stale = _dir.Combine("stale.sock");
        MakeStaleSocket(stale);
        NodeApi.PrepareSocket(stale);
        Assert.False(Path.Exists(stale));

        var live = _dir.Combine("live.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(live));
        listener.Listen();
        var ex = Assert.Throws<IOException>(() => NodeApi.PrepareSocket(live));
        Assert.Contains("already answering", ex.Message);
        Assert.True(Path.Exists(live));
    }

    [Fact]
    public void A_missing_path_gets_its_directory()
    {
        var path = _dir.Combine("run/crsc/crsc.sock");
        NodeApi.PrepareSocket(path);
        Assert.True(Directory.Exists(Path.GetDirectoryName(path)));
        Assert.False(Path.Exists(path));
    }

    /// <summary>
    /// A socket file nobody answers on: bound, never listening (connect is refused). Kept open until the test ends,
    /// because .NET removes the file of a socket it bound when that socket is closed.
    /// </summary>
    private void MakeStaleSocket(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _sockets.Add(s);
        s.Bind(new UnixDomainSocketEndPoint(path));
        Assert.True(Path.Exists(path));
    }
}

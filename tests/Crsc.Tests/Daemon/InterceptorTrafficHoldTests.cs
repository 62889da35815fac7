using Crsc.Daemon;
using Crsc.Interceptor;
using Crsc.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Tests.Daemon;

/// <summary>
/// The node agent holds a pod's traffic through the interceptor's control socket in the pod's emptyDir — a real
/// <see cref="ControlServer"/> on a kubelet-like directory tree — and talks to nothing else the pod may have put there.
/// </summary>
public sealed class InterceptorTrafficHoldTests : IAsyncLifetime
{
    private readonly TempDir _kubelet = new();
    private readonly HoldGate _gate = new(new HoldOptions(), TimeProvider.System);
    private readonly string _uid = Guid.NewGuid().ToString();
    private ControlServer? _server;
    private InterceptorTrafficHold _hold = null!;

    public Task InitializeAsync()
    {
        _hold = new InterceptorTrafficHold(_kubelet.Path, NullLogger<InterceptorTrafficHold>.Instance);
        Directory.CreateDirectory(Path.GetDirectoryName(_hold.SocketPath(_uid))!);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        _gate.Dispose();
        _kubelet.Dispose();
        _short.Dispose();
    }

    private readonly TempDir _short = new();

    /// <summary>
    /// An interceptor's control socket at <paramref name="path"/>. The kubelet's path of an emptyDir is longer than a
    /// Unix socket address may be (108 bytes): the sidecar binds it as /run/crsc-interceptor/control.sock inside the
    /// pod. Here it is bound at a short path and moved into place (a socket is its inode: the move keeps it listening),
    /// and the node agent reaches it through its handle, whatever the length of the path.
    /// </summary>
    private void Serve(string path)
    {
        var bound = Path.Join(_short.Path, "c.sock");
        _server = new ControlServer(bound, _gate, NullLogger.Instance);
        _server.Start();
        if (path != bound) File.Move(bound, path);
    }

    [Fact]
    public async Task Holds_and_releases_the_pods_interceptor_through_the_socket_in_its_emptyDir()
    {
        var path = _hold.SocketPath(_uid);
        Assert.Equal(Path.Join(_kubelet.Path, "pods", _uid, "volumes", "kubernetes.io~empty-dir", "crsc-interceptor", "control.sock"), path);
        Serve(path);

        var held = await _hold.HoldAsync("shop", "web-1", _uid, "checkpoint of app", CancellationToken.None);

        Assert.NotNull(held);
        Assert.True(_gate.Status().Held);
        await held.DisposeAsync();
        Assert.False(_gate.Status().Held);
    }

    [Fact]
    public async Task A_pod_without_an_interceptor_is_not_held_and_that_is_no_error()
    {
        Assert.Null(await _hold.HoldAsync("shop", "web-1", _uid, "checkpoint", CancellationToken.None));
    }

    [Theory]
    [InlineData("a link to a socket")]
    [InlineData("a regular file")]
    public async Task Something_else_at_the_socket_path_is_never_talked_to(string what)
    {
        // a real interceptor socket elsewhere: a link to it from the pod's directory must not reach it
        var elsewhere = Path.Join(_short.Path, "c.sock");
        Serve(elsewhere);
        var path = _hold.SocketPath(_uid);
        if (what == "a link to a socket") File.CreateSymbolicLink(path, elsewhere);
        else await File.WriteAllTextAsync(path, "hold\n");

        Assert.Null(await _hold.HoldAsync("shop", "web-1", _uid, "checkpoint", CancellationToken.None));
        Assert.False(_gate.Status().Held);
    }

    [Theory]
    [InlineData("../../etc")]
    [InlineData("not-a-uid")]
    [InlineData("")]
    public async Task A_pod_uid_that_is_not_a_uuid_names_no_path(string uid)
    {
        Serve(_hold.SocketPath(_uid));
        Assert.Null(await _hold.HoldAsync("shop", "web-1", uid, "checkpoint", CancellationToken.None));
        Assert.False(_gate.Status().Held);
    }
}

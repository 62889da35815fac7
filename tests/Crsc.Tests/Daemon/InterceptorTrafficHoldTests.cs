using Crsc.Controllers.NodeAgent;
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
    private void Serve(string path, ReplayLog? replay = null)
    {
        var bound = Path.Join(_short.Path, "c.sock");
        _server = new ControlServer(bound, _gate, NullLogger.Instance, replay);
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

    private ReplayLog NewLog() => ReplayLog.Open(new ReplayOptions
    {
        Methods = ReplayMethods.Parse("all", out _)!,
        LogPath = Path.Join(_short.Path, "replay.log"),
        ConnectAttempts = 1,
    }, NullLogger.Instance);

    private static Task Log(ReplayLog log, string upstream, string target) =>
        log.AppendAsync(upstream, "POST", target, [new("Host", "app")], System.Text.Encoding.ASCII.GetBytes(target));

    [Fact]
    public async Task A_committed_checkpoint_truncates_the_interceptors_log_at_its_holds_position()
    {
        using var log = NewLog();
        Serve(_hold.SocketPath(_uid), log);
        await Log(log, "127.0.0.1:1", "/before-1");
        await Log(log, "127.0.0.1:1", "/before-2");

        var held = await _hold.HoldAsync("shop", "web-1", _uid, "checkpoint of app", CancellationToken.None);
        await held!.DisposeAsync();
        await Log(log, "127.0.0.1:1", "/after"); // the app went on after the runtime's call
        Assert.Equal(3, log.Status().Entries);
        await held.CheckpointCommittedAsync(CancellationToken.None);

        var left = await log.EntriesAsync(CancellationToken.None);
        Assert.Equal(["/after"], left.Select(e => e.Target));
    }

    [Fact]
    public async Task After_a_restore_the_log_is_replayed_to_the_app_while_the_traffic_is_still_held()
    {
        // the restored app: answers 200 to each request and notes whether the interceptor still held the traffic
        using var app = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        app.Start();
        var seen = new List<string>();
        var serving = Task.Run(async () =>
        {
            using var s = await app.AcceptSocketAsync();
            var buffer = new byte[4096];
            var pending = "";
            while (seen.Count < 2)
            {
                var n = await s.ReceiveAsync(buffer);
                if (n == 0) break;
                pending += System.Text.Encoding.ASCII.GetString(buffer, 0, n);
                int end;
                while ((end = pending.IndexOf("\r\n\r\n", StringComparison.Ordinal)) >= 0)
                {
                    var head = pending[..end];
                    var length = int.Parse(head.Split("\r\n").First(l => l.StartsWith("Content-Length:", StringComparison.Ordinal))[15..].Trim(),
                        System.Globalization.CultureInfo.InvariantCulture);
                    if (pending.Length < end + 4 + length) break;
                    pending = pending[(end + 4 + length)..];
                    lock (seen) seen.Add($"{head.Split(' ')[1]} held={_gate.Status().Held}");
                    await s.SendAsync("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"u8.ToArray());
                }
            }
        });
        using var log = NewLog();
        Serve(_hold.SocketPath(_uid), log);
        var upstream = app.LocalEndpoint.ToString()!;
        await Log(log, upstream, "/one");
        await Log(log, upstream, "/two");

        var held = await _hold.HoldAsync("shop", "web-1", _uid, "restore of app", CancellationToken.None);
        var outcome = await held!.ReplayAsync(CancellationToken.None);
        await held.DisposeAsync();
        Assert.Equal(new ReplayOutcome(true, 2), outcome);

        await serving.WaitAsync(Eventually.DefaultTimeout);
        Assert.Equal(["/one held=True", "/two held=True"], seen);
        Assert.False(_gate.Status().Held);
        Assert.True(log.Status().LastReplay!.Succeeded);
        Assert.Equal(2, log.Status().Entries); // kept until a checkpoint completes
    }

    [Fact]
    public async Task A_replay_that_fails_says_why_and_a_pod_without_a_replay_log_replays_nothing()
    {
        using var log = NewLog();
        Serve(_hold.SocketPath(_uid), log);
        await Log(log, "127.0.0.1:1", "/lost"); // nothing listens there

        var held = await _hold.HoldAsync("shop", "web-1", _uid, "restore of app", CancellationToken.None);
        var outcome = await held!.ReplayAsync(CancellationToken.None);
        await held.DisposeAsync();

        Assert.False(outcome!.Succeeded);
        Assert.StartsWith("replay failed: entry 1 of 1 (POST /lost to 127.0.0.1:1): cannot connect", outcome.Error);

        await _server!.DisposeAsync();
        _server = null;
        File.Delete(_hold.SocketPath(_uid));
        Serve(_hold.SocketPath(_uid)); // no replay log
        var plain = await _hold.HoldAsync("shop", "web-1", _uid, "restore of app", CancellationToken.None);
        Assert.Null(await plain!.ReplayAsync(CancellationToken.None));
        await plain.DisposeAsync();
    }

    [Fact]
    public void The_position_is_read_from_a_hold_answer_and_absent_without_a_log()
    {
        Assert.Equal(4294967299L, InterceptorTrafficHold.ReplayPosition("ok {\"held\":true,\"replay\":{\"entries\":3,\"position\":4294967299}}"));
        Assert.Null(InterceptorTrafficHold.ReplayPosition("ok {\"held\":true,\"replay\":null}"));
        Assert.Null(InterceptorTrafficHold.ReplayPosition("ok not json"));
    }
}

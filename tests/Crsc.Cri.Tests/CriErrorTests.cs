using System.Diagnostics;
using System.Net.Sockets;
using Crsc.Controllers.Runtime;
using Crsc.Cri.Grpc;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Runtime.V1;

namespace Crsc.Cri.Tests;

/// <summary>gRPC status, transport failures and broken framing, each mapped to crsc's domain errors.</summary>
public sealed class CriErrorTests : IAsyncLifetime
{
    private FakeCriServer _cri = null!;
    private CriContainerRuntime _runtime = null!;
    private readonly TempDir _tmp = new();

    public async Task InitializeAsync()
    {
        _cri = await FakeCriServer.StartAsync();
        _runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = _cri.Endpoint, DefaultTimeout = TimeSpan.FromSeconds(20) });
    }

    public async Task DisposeAsync()
    {
        _runtime.Dispose();
        await _cri.DisposeAsync();
        _tmp.Dispose();
    }

    [Fact]
    public async Task Unknown_container_is_terminal_not_found()
    {
        var e = await Assert.ThrowsAsync<ContainerNotFoundException>(() => _runtime.ContainerStatusAsync("deadbeef", false, default));
        Assert.Equal(ContainerRuntimeErrorKind.NotFound, e.Kind);
        Assert.False(e.Transient);
        Assert.Equal("NotFound", e.Code);
        Assert.Contains("deadbeef", e.Message);
        Assert.Contains("ContainerStatus", e.Message);
        var grpc = Assert.IsType<GrpcCallException>(e.InnerException);
        Assert.Equal(GrpcStatusCode.NotFound, grpc.Status);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Not_found_in_trailers_or_trailers_only(bool trailersOnly)
    {
        _cri.Inject("ListContainers", CriFault.Error(GrpcStatusCode.NotFound, "no such pod", trailersOnly));
        var e = await Assert.ThrowsAsync<ContainerNotFoundException>(() => _runtime.ListContainersAsync(null, default));
        Assert.Equal("no such pod", e.RuntimeMessage);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Unavailable_is_transient(bool trailersOnly)
    {
        _cri.Inject("Version", CriFault.Error(GrpcStatusCode.Unavailable, "runtime is restarting", trailersOnly));
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => _runtime.VersionAsync(default));
        Assert.Equal(ContainerRuntimeErrorKind.Unavailable, e.Kind);
        Assert.True(e.Transient);
        Assert.Equal("runtime is restarting", e.RuntimeMessage);
    }

    [Fact]
    public async Task Deadline_exceeded_from_the_server_is_transient()
    {
        _cri.Inject("Version", CriFault.Error(GrpcStatusCode.DeadlineExceeded, "context deadline exceeded"));
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => _runtime.VersionAsync(default));
        Assert.Equal(ContainerRuntimeErrorKind.DeadlineExceeded, e.Kind);
        Assert.True(e.Transient);
    }

    [Fact]
    public async Task A_slow_checkpoint_runs_into_our_deadline_and_the_stream_is_reset()
    {
        var (_, id) = _cri.AddRunningContainer("default", "p", "c");
        _cri.Inject("CheckpointContainer", CriFault.Delayed(TimeSpan.FromSeconds(30)));

        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() =>
            _runtime.CheckpointContainerAsync(id, _tmp.Combine("x.tar"), TimeSpan.FromMilliseconds(400), default));
        sw.Stop();

        Assert.Equal(ContainerRuntimeErrorKind.DeadlineExceeded, e.Kind);
        Assert.True(e.Transient);
        Assert.InRange(sw.Elapsed, TimeSpan.FromMilliseconds(350), TimeSpan.FromSeconds(5));
        await Eventually.TrueAsync(() => _cri.AbortedCalls == 1, "the server sees the call aborted");
        Assert.False(File.Exists(_tmp.Combine("x.tar")));
    }

    [Fact]
    public async Task Unimplemented_checkpoint_means_the_runtime_cannot_checkpoint()
    {
        var (_, id) = _cri.AddRunningContainer("default", "p", "c");
        _cri.Inject("CheckpointContainer", CriFault.Error(GrpcStatusCode.Unimplemented, "method CheckpointContainer not implemented", trailersOnly: true));
        var e = await Assert.ThrowsAsync<CheckpointNotSupportedException>(() =>
            _runtime.CheckpointContainerAsync(id, _tmp.Combine("x.tar"), TimeSpan.FromSeconds(5), default));
        Assert.Equal(ContainerRuntimeErrorKind.NotSupported, e.Kind);
        Assert.False(e.Transient);
        Assert.Contains("cannot checkpoint", e.Message);
        Assert.Contains(_cri.SocketPath, e.Message);
    }

    [Fact]
    public async Task Unimplemented_elsewhere_is_a_runtime_error_with_its_code()
    {
        _cri.Inject("Version", CriFault.Error(GrpcStatusCode.Unimplemented, "unknown service runtime.v1.RuntimeService"));
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => _runtime.VersionAsync(default));
        Assert.IsNotType<CheckpointNotSupportedException>(e);
        Assert.Equal(ContainerRuntimeErrorKind.Failed, e.Kind);
        Assert.Equal("Unimplemented", e.Code);
        Assert.Equal("unknown service runtime.v1.RuntimeService", e.RuntimeMessage);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Runtime_messages_are_percent_decoded_and_kept(bool trailersOnly)
    {
        var (_, id) = _cri.AddRunningContainer("default", "p", "c");
        const string criu = "failed to checkpoint: criu failed: type NOTIFY errno 0\nlog file: /var/lib/containers/dump.log — 100% ünïcödé";
        _cri.Inject("CheckpointContainer", CriFault.Error(GrpcStatusCode.Unknown, criu, trailersOnly));

        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() =>
            _runtime.CheckpointContainerAsync(id, _tmp.Combine("x.tar"), TimeSpan.FromSeconds(5), default));
        Assert.Equal(ContainerRuntimeErrorKind.Failed, e.Kind);
        Assert.Equal("Unknown", e.Code);
        Assert.Equal(criu, e.RuntimeMessage);
        Assert.Contains(criu, e.Message);
        Assert.Contains(id, e.Message);
    }

    [Fact]
    public async Task A_real_runtime_error_from_the_fake_goes_through_trailers()
    {
        var (_, id) = _cri.AddRunningContainer("default", "p", "c");
        await _runtime.Client.StopContainerAsync(new StopContainerRequest { ContainerId = id });
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() =>
            _runtime.CheckpointContainerAsync(id, _tmp.Combine("x.tar"), TimeSpan.FromSeconds(5), default));
        Assert.Equal("FailedPrecondition", e.Code);
        Assert.Contains("not running", e.RuntimeMessage);
    }

    [Fact]
    public async Task Missing_socket_is_unavailable_and_named()
    {
        string path = _tmp.Combine("nothing-here.sock");
        using var runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = "unix://" + path });
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => runtime.VersionAsync(default));
        Assert.Equal(ContainerRuntimeErrorKind.Unavailable, e.Kind);
        Assert.True(e.Transient);
        Assert.Contains(path, e.Message);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public async Task Socket_without_a_listener_is_unavailable_and_named()
    {
        string path = _tmp.Combine("dead.sock");
        // bound but never listening: connect() is refused
        using var bound = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        bound.Bind(new UnixDomainSocketEndPoint(path));
        Assert.True(Path.Exists(path));

        using var runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = path });
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => runtime.VersionAsync(default));
        Assert.Equal(ContainerRuntimeErrorKind.Unavailable, e.Kind);
        Assert.Contains(path, e.Message);
        Assert.Contains("ConnectionRefused", e.Message);
    }

    [Theory]
    [InlineData(CriMalformation.CompressedFlag, "compressed")]
    [InlineData(CriMalformation.TruncatedFrame, "ended inside a message")]
    [InlineData(CriMalformation.TwoMessages, "more than one message")]
    [InlineData(CriMalformation.NoMessage, "without a response message")]
    [InlineData(CriMalformation.GarbageMessage, "cannot parse")]
    [InlineData(CriMalformation.NoStatus, "without a grpc-status")]
    [InlineData(CriMalformation.WrongContentType, "content-type")]
    public async Task Malformed_responses_are_internal_errors(CriMalformation malformation, string why)
    {
        _cri.Inject("Version", CriFault.Malformed(malformation));
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => _runtime.VersionAsync(default));
        Assert.Equal(ContainerRuntimeErrorKind.Failed, e.Kind);
        Assert.Equal("Internal", e.Code);
        Assert.Contains(why, e.Message);
        Assert.False(e.Transient);
    }

    [Fact]
    public async Task Http_503_without_grpc_status_is_unavailable()
    {
        _cri.Inject("Version", CriFault.Malformed(CriMalformation.Http503));
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => _runtime.VersionAsync(default));
        Assert.Equal(ContainerRuntimeErrorKind.Unavailable, e.Kind);
        Assert.Contains("503", e.Message);
    }

    [Fact]
    public async Task Faults_last_as_many_calls_as_asked_and_the_connection_survives_them()
    {
        _cri.Inject("Version", CriFault.Error(GrpcStatusCode.Internal, "boom") with { Times = 2 });
        await Assert.ThrowsAsync<ContainerRuntimeException>(() => _runtime.VersionAsync(default));
        await Assert.ThrowsAsync<ContainerRuntimeException>(() => _runtime.VersionAsync(default));
        Assert.Equal("fake-cri", (await _runtime.VersionAsync(default)).RuntimeName);
    }

    [Fact]
    public async Task Cancellation_stops_the_call_promptly_and_resets_the_stream()
    {
        _cri.Inject("Version", CriFault.Delayed(TimeSpan.FromSeconds(30)));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var sw = Stopwatch.StartNew();
        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _runtime.VersionAsync(cts.Token));
        Assert.Equal(cts.Token, e.CancellationToken);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), sw.Elapsed.ToString());
        await Eventually.TrueAsync(() => _cri.AbortedCalls == 1, "the server sees the call aborted");

        // an already cancelled token never reaches the server
        int before = _cri.Calls.Count;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _runtime.VersionAsync(new CancellationToken(true)));
        Assert.Equal(before, _cri.Calls.Count);
    }
}

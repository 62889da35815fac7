using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Crsc.Cri.Grpc;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using Runtime.V1;

namespace Crsc.Testing.Cri;

/// <summary>One call as the server saw it.</summary>
public sealed record CriCall(
    string Method,
    IMessage? Request,
    string? GrpcTimeout,
    string? Te,
    string? ContentType,
    string Protocol,
    DateTimeOffset ReceivedAt);

/// <summary>
/// An in-process CRI runtime for tests: Kestrel on a Unix socket, HTTP/2 only, speaking the gRPC
/// wire format by hand for <c>runtime.v1</c> RuntimeService and ImageService unary methods, with
/// in-memory sandboxes, containers and images, recorded calls, and injectable faults.
/// <code>
/// await using var cri = await FakeCriServer.StartAsync();
/// cri.AddImage("registry.local/busybox:1");
/// using var client = new CriClient(cri.Endpoint);
/// cri.Inject("CheckpointContainer", CriFault.Error(GrpcStatusCode.Unimplemented, "no criu"));
/// </code>
/// </summary>
public sealed class FakeCriServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TempDir? _dir;
    private readonly object _lock = new();
    private readonly Dictionary<string, PodSandbox> _sandboxes = new();
    private readonly Dictionary<string, SandboxExtra> _sandboxExtra = new();
    private readonly Dictionary<string, FakeContainer> _containers = new();
    private readonly Dictionary<string, Image> _images = new();
    private readonly ConcurrentQueue<CriCall> _calls = new();
    private readonly ConcurrentDictionary<string, FaultSlot> _faults = new();
    private long _clock = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000;
    private int _abortedCalls;

    public string SocketPath { get; }
    /// <summary><c>unix://</c> endpoint of the socket, for <c>CriClientOptions.Endpoint</c>.</summary>
    public string Endpoint => "unix://" + SocketPath;

    public string RuntimeName { get; set; } = "fake-cri";
    public string RuntimeVersion { get; set; } = "1.0.0";

    /// <summary>The conditions <c>Status</c> answers; default: RuntimeReady and NetworkReady true.</summary>
    public List<RuntimeCondition> StatusConditions { get; } =
    [
        new() { Type = "RuntimeReady", Status = true },
        new() { Type = "NetworkReady", Status = true },
    ];

    /// <summary>
    /// What <c>Status</c> answers in <c>info</c> when asked with verbose (nothing otherwise, as the CRI says).
    /// containerd puts its CRI configuration there as JSON under <c>config</c> (internal/cri/server/status.go).
    /// </summary>
    public Dictionary<string, string> StatusInfo { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// When set, <c>GET /config</c> over HTTP/1.1 answers this text as <c>application/toml</c>, the way CRI-O serves its
    /// configuration (cri-o server/inspect.go); unset, it answers 404. Served on <see cref="InfoSocketPath"/>: CRI-O
    /// multiplexes HTTP/1.1 and gRPC on one socket, which Kestrel cannot do on a cleartext listener (it picks HTTP/1.1
    /// for <c>Http1AndHttp2</c> without TLS), so the fake has a second socket for it. Needs <c>StartAsync(…, http1: true)</c>.
    /// </summary>
    public string? CrioConfig { get; set; }

    /// <summary>The HTTP/1.1 socket of CRI-O's info endpoints (<see cref="CrioConfig"/>), when started with <c>http1: true</c>.</summary>
    public string? InfoSocketPath { get; private set; }
    /// <summary><c>unix://</c> endpoint of <see cref="InfoSocketPath"/>.</summary>
    public string? InfoEndpoint => InfoSocketPath is null ? null : "unix://" + InfoSocketPath;

    /// <summary>
    /// Where this runtime sees its clients' root directory: a <c>CheckpointContainer</c> location <c>/a/b</c> is written
    /// at <c>{FilesystemRoot}/a/b</c>. Null (the default): the client's paths are this process's. Set for a client in a
    /// container of its own (the install tests' booted root filesystem), whose files the host sees under that directory.
    /// </summary>
    public string? FilesystemRoot { get; set; }

    /// <summary>When set, each response message is written in pieces of this many bytes, each flushed (separate DATA frames).</summary>
    public int? ResponseChunkSize { get; set; }

    /// <summary>Every call received, in order (including failed ones).</summary>
    public IReadOnlyList<CriCall> Calls => _calls.ToArray();
    public IEnumerable<CriCall> CallsTo(string method) => Calls.Where(c => c.Method == method);
    /// <summary>Calls whose client went away (reset the stream) before the server answered.</summary>
    public int AbortedCalls => Volatile.Read(ref _abortedCalls);

    private FakeCriServer(WebApplication app, string socketPath, TempDir? dir)
    {
        _app = app;
        SocketPath = socketPath;
        _dir = dir;
    }

    /// <param name="socketPath">where to listen; a private temporary directory when null</param>
    /// <param name="http1">also serve CRI-O's HTTP/1.1 info endpoints (<see cref="CrioConfig"/>) on <see cref="InfoSocketPath"/></param>
    public static async Task<FakeCriServer> StartAsync(string? socketPath = null, bool http1 = false)
    {
        TempDir? dir = null;
        if (socketPath is null)
        {
            dir = new TempDir("crsc-cri-");
            socketPath = dir.Combine("cri.sock");
        }
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.ListenUnixSocket(socketPath, l => l.Protocols = HttpProtocols.Http2);
            if (http1) k.ListenUnixSocket(InfoSocketFor(socketPath), l => l.Protocols = HttpProtocols.Http1);
            k.Limits.MaxRequestBodySize = 64 * 1024 * 1024;
        });
        var app = builder.Build();
        var server = new FakeCriServer(app, socketPath, dir) { InfoSocketPath = http1 ? InfoSocketFor(socketPath) : null };
        app.Run(server.HandleAsync);
        await app.StartAsync().ConfigureAwait(false);
        return server;
    }

    private static string InfoSocketFor(string socketPath) => socketPath + ".info";

    // --- faults ---

    /// <summary>Makes <paramref name="method"/> (e.g. <c>CheckpointContainer</c>) fail or misbehave.</summary>
    public void Inject(string method, CriFault fault) => _faults[method] = new FaultSlot(fault);

    public void ClearFaults() => _faults.Clear();

    private CriFault? TakeFault(string method)
    {
        if (!_faults.TryGetValue(method, out var slot)) return null;
        if (Interlocked.Decrement(ref slot.Remaining) < 0) return null;
        return slot.Fault;
    }

    private sealed class FaultSlot(CriFault fault)
    {
        public readonly CriFault Fault = fault;
        public int Remaining = fault.Times;
    }

    // --- state ---

    /// <summary>Makes an image present, as if pulled. Returns its ID.</summary>
    public string AddImage(string reference, ulong size = 4 * 1024 * 1024)
    {
        lock (_lock) return EnsureImage(reference, size).Id;
    }

    public IReadOnlyList<PodSandbox> Sandboxes { get { lock (_lock) return _sandboxes.Values.Select(s => s.Clone()).ToList(); } }
    public IReadOnlyList<Container> Containers { get { lock (_lock) return _containers.Values.Select(c => c.Container.Clone()).ToList(); } }
    public IReadOnlyList<Image> Images { get { lock (_lock) return _images.Values.Select(i => i.Clone()).ToList(); } }

    /// <summary>
    /// Adds a running container in a ready sandbox, labelled the way the kubelet labels them. With
    /// <paramref name="podUid"/> (the pod's <c>metadata.uid</c>), the sandbox has that UID and the sandbox and the
    /// container carry it as <c>io.kubernetes.pod.uid</c>, as the kubelet's do; otherwise the sandbox has a random UID.
    /// </summary>
    public (string SandboxId, string ContainerId) AddRunningContainer(string ns, string pod, string container, string image = "registry.local/busybox:1",
        string? podUid = null)
    {
        lock (_lock)
        {
            EnsureImage(image, 4 * 1024 * 1024);
            var sandboxConfig = new PodSandboxConfig
            {
                Metadata = new PodSandboxMetadata { Name = pod, Namespace = ns, Uid = podUid ?? Guid.NewGuid().ToString(), Attempt = 0 },
                Labels = { ["io.kubernetes.pod.name"] = pod, ["io.kubernetes.pod.namespace"] = ns },
            };
            var containerConfig = new ContainerConfig
            {
                Metadata = new ContainerMetadata { Name = container },
                Image = new ImageSpec { Image = image },
                Labels =
                {
                    ["io.kubernetes.pod.name"] = pod,
                    ["io.kubernetes.pod.namespace"] = ns,
                    ["io.kubernetes.container.name"] = container,
                },
            };
            if (podUid is not null)
            {
                sandboxConfig.Labels["io.kubernetes.pod.uid"] = podUid;
                containerConfig.Labels["io.kubernetes.pod.uid"] = podUid;
            }
            var sb = NewSandbox(sandboxConfig, "");
            var c = NewContainer(sb, containerConfig);
            c.Container.State = ContainerState.ContainerRunning;
            c.StartedAt = Now();
            return (sb.Id, c.Container.Id);
        }
    }

    private sealed class FakeContainer(Container container)
    {
        public Container Container { get; } = container;
        public ContainerConfig Config { get; init; } = new();
        public long StartedAt { get; set; }
        public long FinishedAt { get; set; }
        public int ExitCode { get; set; }
    }

    private sealed record SandboxExtra(PodSandboxConfig Config);

    // --- HTTP/2 + gRPC framing ---

    private async Task HandleAsync(HttpContext ctx)
    {
        string path = ctx.Request.Path.Value ?? "";
        if (ctx.Request.Protocol == "HTTP/1.1")
        {
            await HandleHttp1Async(ctx, path).ConfigureAwait(false);
            return;
        }
        string method = path[(path.LastIndexOf('/') + 1)..];
        var call = new CriCall(method, null,
            ctx.Request.Headers["grpc-timeout"].FirstOrDefault(),
            ctx.Request.Headers.TE.FirstOrDefault(),
            ctx.Request.ContentType,
            ctx.Request.Protocol,
            DateTimeOffset.UtcNow);

        if (!Handlers.TryGetValue(path, out var handler))
        {
            _calls.Enqueue(call);
            await WriteStatusAsync(ctx, GrpcStatusCode.Unimplemented, $"unknown method {path}", trailersOnly: true).ConfigureAwait(false);
            return;
        }

        byte[] body;
        using (var ms = new MemoryStream())
        {
            await ctx.Request.Body.CopyToAsync(ms, ctx.RequestAborted).ConfigureAwait(false);
            body = ms.ToArray();
        }
        IMessage request;
        if (body.Length < GrpcWire.FrameHeaderSize || body[0] != 0
            || BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(1)) != body.Length - GrpcWire.FrameHeaderSize)
        {
            _calls.Enqueue(call);
            await WriteStatusAsync(ctx, GrpcStatusCode.Internal, "malformed request frame", trailersOnly: true).ConfigureAwait(false);
            return;
        }
        try
        {
            request = handler.Parser.ParseFrom(body, GrpcWire.FrameHeaderSize, body.Length - GrpcWire.FrameHeaderSize);
        }
        catch (InvalidProtocolBufferException e)
        {
            _calls.Enqueue(call);
            await WriteStatusAsync(ctx, GrpcStatusCode.Internal, "cannot parse request: " + e.Message, trailersOnly: true).ConfigureAwait(false);
            return;
        }
        _calls.Enqueue(call with { Request = request });

        var fault = TakeFault(method);
        if (fault is { Delay.Ticks: > 0 })
        {
            try
            {
                await Task.Delay(fault.Delay, ctx.RequestAborted).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref _abortedCalls);
                return;
            }
        }
        if (fault is { Status: not GrpcStatusCode.OK })
        {
            await WriteStatusAsync(ctx, fault.Status, fault.Message, fault.TrailersOnly).ConfigureAwait(false);
            return;
        }

        IMessage response;
        try
        {
            response = handler.Invoke(this, request);
        }
        catch (RpcError e)
        {
            await WriteStatusAsync(ctx, e.Status, e.Message, trailersOnly: false).ConfigureAwait(false);
            return;
        }
        await WriteResponseAsync(ctx, response.ToByteArray(), fault?.Malformation ?? CriMalformation.None).ConfigureAwait(false);
    }

    /// <summary>CRI-O's <c>GET /config</c>: the configuration as TOML (cri-o server/inspect.go sets <c>application/toml</c>).</summary>
    private async Task HandleHttp1Async(HttpContext ctx, string path)
    {
        _calls.Enqueue(new CriCall(ctx.Request.Method + " " + path, null, null, null, ctx.Request.ContentType, ctx.Request.Protocol, DateTimeOffset.UtcNow));
        if (ctx.Request.Method == "GET" && path == "/config" && CrioConfig is { } toml)
        {
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "application/toml";
            await ctx.Response.WriteAsync(toml).ConfigureAwait(false);
            return;
        }
        ctx.Response.StatusCode = 404;
        ctx.Response.ContentType = "text/plain";
        await ctx.Response.WriteAsync("404 page not found\n").ConfigureAwait(false);
    }

    private static async Task WriteStatusAsync(HttpContext ctx, GrpcStatusCode status, string message, bool trailersOnly)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = GrpcWire.ContentType;
        if (trailersOnly)
        {
            ctx.Response.Headers["grpc-status"] = ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (message.Length > 0) ctx.Response.Headers["grpc-message"] = GrpcWire.EncodeMessage(message);
            return;
        }
        await ctx.Response.StartAsync().ConfigureAwait(false);
        SetStatusTrailers(ctx, status, message);
    }

    private static void SetStatusTrailers(HttpContext ctx, GrpcStatusCode status, string message)
    {
        ctx.Response.AppendTrailer("grpc-status", ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (message.Length > 0) ctx.Response.AppendTrailer("grpc-message", GrpcWire.EncodeMessage(message));
    }

    private async Task WriteResponseAsync(HttpContext ctx, byte[] message, CriMalformation malformation)
    {
        if (malformation == CriMalformation.Http503)
        {
            ctx.Response.StatusCode = 503;
            ctx.Response.ContentType = "text/plain";
            await ctx.Response.WriteAsync("overloaded").ConfigureAwait(false);
            return;
        }
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = malformation == CriMalformation.WrongContentType ? "text/plain" : GrpcWire.ContentType;
        await ctx.Response.StartAsync().ConfigureAwait(false);
        byte[] frame = malformation switch
        {
            CriMalformation.NoMessage => [],
            CriMalformation.GarbageMessage => GrpcWire.Frame([0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]),
            CriMalformation.TwoMessages => [.. GrpcWire.Frame(message), .. GrpcWire.Frame(message)],
            CriMalformation.TruncatedFrame => GrpcWire.Frame(new byte[64])[..20],
            _ => GrpcWire.Frame(message),
        };
        if (malformation == CriMalformation.CompressedFlag && frame.Length > 0) frame[0] = 1;

        int chunk = ResponseChunkSize is int n && n > 0 ? n : Math.Max(frame.Length, 1);
        for (int offset = 0; offset < frame.Length; offset += chunk)
        {
            await ctx.Response.Body.WriteAsync(frame.AsMemory(offset, Math.Min(chunk, frame.Length - offset)), ctx.RequestAborted).ConfigureAwait(false);
            await ctx.Response.Body.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
        }
        if (malformation != CriMalformation.NoStatus) SetStatusTrailers(ctx, GrpcStatusCode.OK, "");
    }

    private sealed class RpcError(GrpcStatusCode status, string message) : Exception(message)
    {
        public GrpcStatusCode Status { get; } = status;
    }

    private sealed record Handler(MessageParser Parser, Func<FakeCriServer, IMessage, IMessage> Invoke);

    private static Handler H<TReq>(MessageParser<TReq> parser, Func<FakeCriServer, TReq, IMessage> f) where TReq : IMessage<TReq> =>
        new(parser, (s, m) => f(s, (TReq)m));

    private static readonly Dictionary<string, Handler> Handlers = new()
    {
        ["/runtime.v1.RuntimeService/Version"] = H(VersionRequest.Parser, (s, r) => s.Version(r)),
        ["/runtime.v1.RuntimeService/Status"] = H(StatusRequest.Parser, (s, r) => s.Status(r)),
        ["/runtime.v1.RuntimeService/RunPodSandbox"] = H(RunPodSandboxRequest.Parser, (s, r) => s.RunPodSandbox(r)),
        ["/runtime.v1.RuntimeService/StopPodSandbox"] = H(StopPodSandboxRequest.Parser, (s, r) => s.StopPodSandbox(r)),
        ["/runtime.v1.RuntimeService/RemovePodSandbox"] = H(RemovePodSandboxRequest.Parser, (s, r) => s.RemovePodSandbox(r)),
        ["/runtime.v1.RuntimeService/PodSandboxStatus"] = H(PodSandboxStatusRequest.Parser, (s, r) => s.PodSandboxStatus(r)),
        ["/runtime.v1.RuntimeService/ListPodSandbox"] = H(ListPodSandboxRequest.Parser, (s, r) => s.ListPodSandbox(r)),
        ["/runtime.v1.RuntimeService/CreateContainer"] = H(CreateContainerRequest.Parser, (s, r) => s.CreateContainer(r)),
        ["/runtime.v1.RuntimeService/StartContainer"] = H(StartContainerRequest.Parser, (s, r) => s.StartContainer(r)),
        ["/runtime.v1.RuntimeService/StopContainer"] = H(StopContainerRequest.Parser, (s, r) => s.StopContainer(r)),
        ["/runtime.v1.RuntimeService/RemoveContainer"] = H(RemoveContainerRequest.Parser, (s, r) => s.RemoveContainer(r)),
        ["/runtime.v1.RuntimeService/ListContainers"] = H(ListContainersRequest.Parser, (s, r) => s.ListContainers(r)),
        ["/runtime.v1.RuntimeService/ContainerStatus"] = H(ContainerStatusRequest.Parser, (s, r) => s.ContainerStatus(r)),
        ["/runtime.v1.RuntimeService/CheckpointContainer"] = H(CheckpointContainerRequest.Parser, (s, r) => s.CheckpointContainer(r)),
        ["/runtime.v1.ImageService/PullImage"] = H(PullImageRequest.Parser, (s, r) => s.PullImage(r)),
        ["/runtime.v1.ImageService/ImageStatus"] = H(ImageStatusRequest.Parser, (s, r) => s.ImageStatus(r)),
        ["/runtime.v1.ImageService/ListImages"] = H(ListImagesRequest.Parser, (s, r) => s.ListImages(r)),
        ["/runtime.v1.ImageService/RemoveImage"] = H(RemoveImageRequest.Parser, (s, r) => s.RemoveImage(r)),
    };

    // --- the runtime ---

    private long Now() => Interlocked.Add(ref _clock, 1_000);

    private static string NewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    private StatusResponse Status(StatusRequest r)
    {
        var response = new StatusResponse { Status = new RuntimeStatus() };
        lock (_lock)
        {
            response.Status.Conditions.AddRange(StatusConditions.Select(c => c.Clone()));
            if (r.Verbose) response.Info.Add(StatusInfo);
        }
        return response;
    }

    private VersionResponse Version(VersionRequest r) => new()
    {
        Version = "0.1.0",
        RuntimeName = RuntimeName,
        RuntimeVersion = RuntimeVersion,
        RuntimeApiVersion = "v1",
    };

    private PodSandbox NewSandbox(PodSandboxConfig config, string handler)
    {
        var sb = new PodSandbox
        {
            Id = NewId(),
            Metadata = config.Metadata ?? new PodSandboxMetadata(),
            State = PodSandboxState.SandboxReady,
            CreatedAt = Now(),
            RuntimeHandler = handler,
        };
        sb.Labels.Add(config.Labels);
        sb.Annotations.Add(config.Annotations);
        _sandboxes[sb.Id] = sb;
        _sandboxExtra[sb.Id] = new SandboxExtra(config);
        return sb;
    }

    private RunPodSandboxResponse RunPodSandbox(RunPodSandboxRequest r)
    {
        if (r.Config?.Metadata is null || r.Config.Metadata.Name.Length == 0)
            throw new RpcError(GrpcStatusCode.InvalidArgument, "sandbox config metadata name is required");
        lock (_lock) return new RunPodSandboxResponse { PodSandboxId = NewSandbox(r.Config, r.RuntimeHandler).Id };
    }

    private StopPodSandboxResponse StopPodSandbox(StopPodSandboxRequest r)
    {
        lock (_lock)
        {
            // idempotent: stopping an unknown or stopped sandbox is not an error
            if (_sandboxes.TryGetValue(r.PodSandboxId, out var sb))
            {
                sb.State = PodSandboxState.SandboxNotready;
                foreach (var c in _containers.Values.Where(c => c.Container.PodSandboxId == sb.Id))
                    Stop(c);
            }
            return new StopPodSandboxResponse();
        }
    }

    private RemovePodSandboxResponse RemovePodSandbox(RemovePodSandboxRequest r)
    {
        lock (_lock)
        {
            if (_sandboxes.Remove(r.PodSandboxId))
            {
                _sandboxExtra.Remove(r.PodSandboxId);
                foreach (var id in _containers.Values.Where(c => c.Container.PodSandboxId == r.PodSandboxId).Select(c => c.Container.Id).ToList())
                    _containers.Remove(id);
            }
            return new RemovePodSandboxResponse();
        }
    }

    private PodSandboxStatusResponse PodSandboxStatus(PodSandboxStatusRequest r)
    {
        lock (_lock)
        {
            if (!_sandboxes.TryGetValue(r.PodSandboxId, out var sb))
                throw new RpcError(GrpcStatusCode.NotFound, $"could not find pod \"{r.PodSandboxId}\": not found");
            var status = new Runtime.V1.PodSandboxStatus
            {
                Id = sb.Id, Metadata = sb.Metadata, State = sb.State, CreatedAt = sb.CreatedAt, RuntimeHandler = sb.RuntimeHandler,
            };
            status.Labels.Add(sb.Labels);
            status.Annotations.Add(sb.Annotations);
            return new PodSandboxStatusResponse { Status = status };
        }
    }

    private ListPodSandboxResponse ListPodSandbox(ListPodSandboxRequest r)
    {
        lock (_lock)
        {
            var resp = new ListPodSandboxResponse();
            var f = r.Filter;
            resp.Items.Add(_sandboxes.Values
                .Where(s => f is null || ((f.Id.Length == 0 || s.Id == f.Id)
                    && (f.State is null || s.State == f.State.State)
                    && LabelsMatch(s.Labels, f.LabelSelector)))
                .OrderBy(s => s.CreatedAt)
                .Select(s => s.Clone()));
            return resp;
        }
    }

    private FakeContainer NewContainer(PodSandbox sb, ContainerConfig config)
    {
        string image = config.Image?.Image ?? "";
        var c = new Container
        {
            Id = NewId(),
            PodSandboxId = sb.Id,
            Metadata = config.Metadata,
            Image = new ImageSpec { Image = image },
            ImageRef = _images.TryGetValue(image, out var img) ? img.Id : image,
            State = ContainerState.ContainerCreated,
            CreatedAt = Now(),
        };
        c.Labels.Add(config.Labels);
        c.Annotations.Add(config.Annotations);
        var fc = new FakeContainer(c) { Config = config };
        _containers[c.Id] = fc;
        return fc;
    }

    private CreateContainerResponse CreateContainer(CreateContainerRequest r)
    {
        lock (_lock)
        {
            if (!_sandboxes.TryGetValue(r.PodSandboxId, out var sb))
                throw new RpcError(GrpcStatusCode.NotFound, $"failed to get sandbox \"{r.PodSandboxId}\": not found");
            if (sb.State != PodSandboxState.SandboxReady)
                throw new RpcError(GrpcStatusCode.FailedPrecondition, $"sandbox \"{sb.Id}\" is not ready");
            if (r.Config?.Metadata is null || r.Config.Metadata.Name.Length == 0)
                throw new RpcError(GrpcStatusCode.InvalidArgument, "container config metadata name is required");
            string image = r.Config.Image?.Image ?? "";
            if (!_images.ContainsKey(image))
                throw new RpcError(GrpcStatusCode.NotFound, $"failed to get image \"{image}\": not found");
            return new CreateContainerResponse { ContainerId = NewContainer(sb, r.Config).Container.Id };
        }
    }

    private FakeContainer GetContainer(string id) =>
        _containers.TryGetValue(id, out var c) ? c
        : throw new RpcError(GrpcStatusCode.NotFound, $"an error occurred when try to find container \"{id}\": not found");

    private StartContainerResponse StartContainer(StartContainerRequest r)
    {
        lock (_lock)
        {
            var c = GetContainer(r.ContainerId);
            if (c.Container.State != ContainerState.ContainerCreated)
                throw new RpcError(GrpcStatusCode.Unknown, $"container {c.Container.Id} is in {c.Container.State} state, not created");
            c.Container.State = ContainerState.ContainerRunning;
            c.StartedAt = Now();
            return new StartContainerResponse();
        }
    }

    private void Stop(FakeContainer c)
    {
        if (c.Container.State is ContainerState.ContainerRunning or ContainerState.ContainerCreated)
        {
            c.Container.State = ContainerState.ContainerExited;
            c.FinishedAt = Now();
            c.ExitCode = 137;
        }
    }

    private StopContainerResponse StopContainer(StopContainerRequest r)
    {
        lock (_lock)
        {
            Stop(GetContainer(r.ContainerId));
            return new StopContainerResponse();
        }
    }

    private RemoveContainerResponse RemoveContainer(RemoveContainerRequest r)
    {
        lock (_lock)
        {
            // idempotent: removing an unknown container is not an error
            _containers.Remove(r.ContainerId);
            return new RemoveContainerResponse();
        }
    }

    private ListContainersResponse ListContainers(ListContainersRequest r)
    {
        lock (_lock)
        {
            var resp = new ListContainersResponse();
            var f = r.Filter;
            resp.Containers.Add(_containers.Values.Select(c => c.Container)
                .Where(c => f is null || ((f.Id.Length == 0 || c.Id == f.Id)
                    && (f.PodSandboxId.Length == 0 || c.PodSandboxId == f.PodSandboxId)
                    && (f.State is null || c.State == f.State.State)
                    && LabelsMatch(c.Labels, f.LabelSelector)))
                .OrderBy(c => c.CreatedAt)
                .Select(c => c.Clone()));
            return resp;
        }
    }

    private ContainerStatusResponse ContainerStatus(ContainerStatusRequest r)
    {
        lock (_lock)
        {
            var fc = GetContainer(r.ContainerId);
            var c = fc.Container;
            var status = new Runtime.V1.ContainerStatus
            {
                Id = c.Id,
                Metadata = c.Metadata,
                State = c.State,
                CreatedAt = c.CreatedAt,
                StartedAt = fc.StartedAt,
                FinishedAt = fc.FinishedAt,
                ExitCode = fc.ExitCode,
                Image = c.Image,
                ImageRef = c.ImageRef,
                Reason = c.State == ContainerState.ContainerExited ? "Error" : "",
                LogPath = $"/var/log/pods/{c.Id}/0.log",
            };
            status.Labels.Add(c.Labels);
            status.Annotations.Add(c.Annotations);
            var resp = new ContainerStatusResponse { Status = status };
            if (r.Verbose) resp.Info["info"] = $"{{\"pid\":{4242},\"sandboxID\":\"{c.PodSandboxId}\"}}";
            return resp;
        }
    }

    private CheckpointContainerResponse CheckpointContainer(CheckpointContainerRequest r)
    {
        FakeContainer fc;
        PodSandbox sb;
        lock (_lock)
        {
            fc = GetContainer(r.ContainerId);
            if (fc.Container.State != ContainerState.ContainerRunning)
                throw new RpcError(GrpcStatusCode.FailedPrecondition, $"container {r.ContainerId} is not running");
            sb = _sandboxes[fc.Container.PodSandboxId].Clone();
        }
        if (r.Location.Length == 0)
            throw new RpcError(GrpcStatusCode.InvalidArgument, "checkpoint location is required");
        var location = FilesystemRoot is { } root
            ? (Path.IsPathRooted(r.Location) ? Path.Join(root, r.Location)
                : throw new RpcError(GrpcStatusCode.InvalidArgument, $"checkpoint location {r.Location} is not an absolute path"))
            : r.Location;
        string? dir = Path.GetDirectoryName(location);
        if (dir is null || !Directory.Exists(dir))
            throw new RpcError(GrpcStatusCode.Unknown, $"failed to create checkpoint archive {r.Location}: no such file or directory");
        CheckpointArchiveWriter.Write(location, fc.Container.Clone(), sb, RuntimeName);
        return new CheckpointContainerResponse();
    }

    private Image EnsureImage(string reference, ulong size)
    {
        if (_images.TryGetValue(reference, out var img)) return img;
        string digest = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(reference)));
        img = new Image { Id = "sha256:" + digest, Size = size };
        if (reference.StartsWith("sha256:", StringComparison.Ordinal)) img.Id = reference;
        else img.RepoTags.Add(reference);
        string repo = reference.Split('@')[0];
        int colon = repo.LastIndexOf(':');
        if (colon > repo.LastIndexOf('/')) repo = repo[..colon];
        img.RepoDigests.Add($"{repo}@sha256:{digest}");
        _images[reference] = img;
        return img;
    }

    private PullImageResponse PullImage(PullImageRequest r)
    {
        string reference = r.Image?.Image ?? "";
        if (reference.Length == 0) throw new RpcError(GrpcStatusCode.InvalidArgument, "image reference is required");
        if (reference.Contains("does-not-exist", StringComparison.Ordinal))
            throw new RpcError(GrpcStatusCode.NotFound, $"failed to pull and unpack image \"{reference}\": not found");
        lock (_lock) return new PullImageResponse { ImageRef = EnsureImage(reference, 4 * 1024 * 1024).Id };
    }

    private ImageStatusResponse ImageStatus(ImageStatusRequest r)
    {
        lock (_lock)
        {
            string reference = r.Image?.Image ?? "";
            var img = _images.TryGetValue(reference, out var i) ? i : _images.Values.FirstOrDefault(x => x.Id == reference);
            // an absent image is an empty response, not an error
            var resp = new ImageStatusResponse { Image = img?.Clone() };
            if (img is not null && r.Verbose) resp.Info["info"] = "{}";
            return resp;
        }
    }

    private ListImagesResponse ListImages(ListImagesRequest r)
    {
        lock (_lock)
        {
            var resp = new ListImagesResponse();
            resp.Images.Add(_images.Values.DistinctBy(i => i.Id).Select(i => i.Clone()));
            return resp;
        }
    }

    private RemoveImageResponse RemoveImage(RemoveImageRequest r)
    {
        lock (_lock)
        {
            _images.Remove(r.Image?.Image ?? "");
            return new RemoveImageResponse();
        }
    }

    private static bool LabelsMatch(IDictionary<string, string> labels, IDictionary<string, string> selector) =>
        selector.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _dir?.Dispose();
    }
}

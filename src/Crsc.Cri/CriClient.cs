using Crsc.Controllers.Runtime;
using Crsc.Cri.Grpc;
using Google.Protobuf;
using Runtime.V1;

namespace Crsc.Cri;

/// <summary>
/// The CRI <c>runtime.v1</c> RuntimeService and ImageService over the runtime's Unix socket,
/// with the generated messages. Each call's gRPC status is mapped to the domain errors of
/// <see cref="ContainerRuntimeException"/> here, once, naming the call and its subject.
/// The product uses <see cref="CriContainerRuntime"/>; tests and the e2e suite use this directly.
/// </summary>
public sealed class CriClient : IDisposable
{
    private const string RuntimeService = "/runtime.v1.RuntimeService/";
    private const string ImageService = "/runtime.v1.ImageService/";

    private readonly UnixGrpcChannel _channel;
    private readonly CriClientOptions _options;

    public CriEndpoint Endpoint { get; }

    /// <exception cref="FormatException">the endpoint is not a Unix socket endpoint</exception>
    public CriClient(CriClientOptions? options = null)
    {
        _options = options ?? new CriClientOptions();
        Endpoint = CriEndpoint.Parse(_options.Endpoint);
        _channel = new UnixGrpcChannel(Endpoint.SocketPath, new GrpcChannelOptions
        {
            MaxReceiveMessageSize = _options.MaxReceiveMessageSize,
            MaxSendMessageSize = _options.MaxSendMessageSize,
            TimeProvider = _options.TimeProvider,
        });
    }

    public CriClient(string endpoint) : this(new CriClientOptions { Endpoint = endpoint }) { }

    // --- RuntimeService ---

    public Task<VersionResponse> VersionAsync(VersionRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(RuntimeService + "Version", request, VersionResponse.Parser, "", timeout, ct);

    /// <summary><c>Status</c>; with <c>Verbose</c> the runtime adds its extra information (containerd: its CRI config as JSON under <c>config</c>).</summary>
    public Task<StatusResponse> StatusAsync(StatusRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(RuntimeService + "Status", request, StatusResponse.Parser, "", timeout, ct);

    public Task<RunPodSandboxResponse> RunPodSandboxAsync(RunPodSandboxRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(RuntimeService + "RunPodSandbox", request, RunPodSandboxResponse.Parser,
            $"pod {request.Config?.Metadata?.Namespace}/{request.Config?.Metadata?.Name}", timeout, ct);

    public Task<StopPodSandboxResponse> StopPodSandboxAsync(StopPodSandboxRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(RuntimeService + "StopPodSandbox", request, StopPodSandboxResponse.Parser, $"sandbox {request.PodSandboxId}", timeout, ct);

    public Task<RemovePodSandboxResponse> RemovePodSandboxAsync(RemovePodSandboxRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(RuntimeService + "RemovePodSandbox", request, RemovePodSandboxResponse.Parser, $"sandbox {request.PodSandboxId}", timeout, ct);

    public Task<PodSandboxStatusResponse> PodSandboxStatusAsync(PodSandboxStatusRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(RuntimeService + "PodSandboxStatus", request, PodSandboxStatusResponse.Parser, $"sandbox {request.PodSandboxId}", timeout, ct);

    public Task<ListPodSandboxResponse> ListPodSandboxAsync(ListPodSandboxRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(RuntimeService + "ListPodSandbox", request, ListPodSandboxResponse.Parser, "", timeout, ct);

    public Task<CreateContainerResponse> CreateContainerAsync(CreateContainerRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(RuntimeService + "CreateContainer", request, CreateContainerResponse.Parser,
            $"container {request.Config?.Metadata?.Name} in sandbox {request.PodSandboxId}", timeout, ct);

    public Task<StartContainerResponse> StartContainerAsync(StartContainerRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(RuntimeService + "StartContainer", request, StartContainerResponse.Parser, $"container {request.ContainerId}", timeout, ct);

    public Task<StopContainerResponse> StopContainerAsync(StopContainerRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        // the runtime waits up to request.Timeout seconds before killing; leave it room
        CallAsync(RuntimeService + "StopContainer", request, StopContainerResponse.Parser, $"container {request.ContainerId}",
            timeout ?? _options.DefaultTimeout + TimeSpan.FromSeconds(Math.Max(0, request.Timeout)), ct);

    public Task<RemoveContainerResponse> RemoveContainerAsync(RemoveContainerRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(RuntimeService + "RemoveContainer", request, RemoveContainerResponse.Parser, $"container {request.ContainerId}", timeout, ct);

    public Task<ListContainersResponse> ListContainersAsync(ListContainersRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(RuntimeService + "ListContainers", request, ListContainersResponse.Parser, "", timeout, ct);

    public Task<ContainerStatusResponse> ContainerStatusAsync(ContainerStatusRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(RuntimeService + "ContainerStatus", request, ContainerStatusResponse.Parser, $"container {request.ContainerId}", timeout, ct);

    /// <summary>
    /// <c>CheckpointContainer</c>. Runtimes ignore <c>request.Timeout</c> for the call itself, so the
    /// gRPC deadline is <paramref name="timeout"/> when given, else the request's timeout (seconds),
    /// else the default.
    /// </summary>
    public Task<CheckpointContainerResponse> CheckpointContainerAsync(CheckpointContainerRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(RuntimeService + "CheckpointContainer", request, CheckpointContainerResponse.Parser, $"container {request.ContainerId}",
            timeout ?? (request.Timeout > 0 ? TimeSpan.FromSeconds(request.Timeout) : null), ct);

    // --- ImageService ---

    public Task<PullImageResponse> PullImageAsync(PullImageRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(ImageService + "PullImage", request, PullImageResponse.Parser, $"image {request.Image?.Image}",
            timeout ?? _options.PullImageTimeout, ct);

    public Task<ImageStatusResponse> ImageStatusAsync(ImageStatusRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(ImageService + "ImageStatus", request, ImageStatusResponse.Parser, $"image {request.Image?.Image}", timeout, ct);

    public Task<ListImagesResponse> ListImagesAsync(ListImagesRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(ImageService + "ListImages", request, ListImagesResponse.Parser, "", timeout, ct);

    public Task<RemoveImageResponse> RemoveImageAsync(RemoveImageRequest request, TimeSpan? timeout = null, CancellationToken ct = default) =>
        CallAsync(ImageService + "RemoveImage", request, RemoveImageResponse.Parser, $"image {request.Image?.Image}", timeout, ct);

    private async Task<TResponse> CallAsync<TResponse>(
        string method, IMessage request, MessageParser<TResponse> parser, string subject, TimeSpan? timeout, CancellationToken ct)
        where TResponse : IMessage<TResponse>
    {
        try
        {
            return await _channel.UnaryAsync(method, request, parser, timeout ?? _options.DefaultTimeout, ct).ConfigureAwait(false);
        }
        catch (GrpcCallException e)
        {
            throw CriErrors.ToDomain(e, method, subject, Endpoint);
        }
    }

    public void Dispose() => _channel.Dispose();
}

/// <summary>gRPC status → domain error, for CRI calls.</summary>
public static class CriErrors
{
    public static ContainerRuntimeException ToDomain(GrpcCallException e, string method, string subject, CriEndpoint endpoint)
    {
        string call = method[(method.LastIndexOf('/') + 1)..];
        string what = subject.Length == 0 ? $"CRI {call}" : $"CRI {call} of {subject}";
        string code = e.Status.ToString();
        string msg = e.StatusMessage;
        return e.Status switch
        {
            GrpcStatusCode.NotFound =>
                new ContainerNotFoundException($"{what}: not found: {msg}", code, msg, e),
            GrpcStatusCode.Unavailable =>
                new ContainerRuntimeException(ContainerRuntimeErrorKind.Unavailable, $"{what}: runtime unavailable: {msg}", code, msg, e),
            GrpcStatusCode.DeadlineExceeded =>
                new ContainerRuntimeException(ContainerRuntimeErrorKind.DeadlineExceeded, $"{what}: deadline exceeded: {msg}", code, msg, e),
            GrpcStatusCode.Unimplemented when call == "CheckpointContainer" =>
                new CheckpointNotSupportedException(
                    $"the container runtime at {endpoint} cannot checkpoint containers (CheckpointContainer is unimplemented): {msg}", code, msg, e),
            _ => new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed, $"{what} failed: {code}: {msg}", code, msg, e),
        };
    }
}

using Crsc.Controllers.Runtime;
using Google.Protobuf.Collections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using V1 = Runtime.V1;
using KubeletLabels = Crsc.Api.Kubernetes.KubeletLabels;

namespace Crsc.Cri;

/// <summary>
/// <see cref="IContainerRuntime"/> over CRI: translates between crsc's records and the
/// <c>runtime.v1</c> messages. Construct it from the configured endpoint:
/// <c>new CriContainerRuntime(new CriClientOptions { Endpoint = "unix:///run/containerd/containerd.sock" })</c>.
/// </summary>
public sealed class CriContainerRuntime : IContainerRuntime, IDisposable
{
    private readonly CriClient _client;
    private readonly bool _ownsClient;
    private readonly ILogger _log;

    public CriContainerRuntime(CriClientOptions options, ILogger<CriContainerRuntime>? logger = null)
        : this(new CriClient(options), ownsClient: true, logger) { }

    public CriContainerRuntime(CriClient client, bool ownsClient = false, ILogger<CriContainerRuntime>? logger = null)
    {
        _client = client;
        _ownsClient = ownsClient;
        _log = (ILogger?)logger ?? NullLogger.Instance;
    }

    public CriClient Client => _client;

    public async Task<RuntimeVersion> VersionAsync(CancellationToken ct)
    {
        var r = await _client.VersionAsync(new V1.VersionRequest { Version = "v1" }, ct: ct).ConfigureAwait(false);
        return new RuntimeVersion(r.Version, r.RuntimeName, r.RuntimeVersion, r.RuntimeApiVersion);
    }

    public async Task<RuntimeStatusInfo> StatusAsync(bool verbose, CancellationToken ct)
    {
        var r = await _client.StatusAsync(new V1.StatusRequest { Verbose = verbose }, ct: ct).ConfigureAwait(false);
        var conditions = r.Status?.Conditions.Select(c => new RuntimeCondition(c.Type, c.Status, c.Reason, c.Message)).ToList() ?? [];
        return new RuntimeStatusInfo(conditions, Copy(r.Info));
    }

    public async Task<IReadOnlyList<PodSandboxInfo>> ListPodSandboxesAsync(PodSandboxFilter? filter, CancellationToken ct)
    {
        var request = new V1.ListPodSandboxRequest();
        if (filter is not null)
        {
            request.Filter = new V1.PodSandboxFilter { Id = filter.Id ?? "" };
            if (filter.State is { } state) request.Filter.State = new V1.PodSandboxStateValue { State = ToCri(state) };
            if (filter.Labels is not null) foreach (var (k, v) in filter.Labels) request.Filter.LabelSelector[k] = v;
        }
        var r = await _client.ListPodSandboxAsync(request, ct: ct).ConfigureAwait(false);
        return r.Items.Select(s => new PodSandboxInfo(
            s.Id,
            FromCri(s.Metadata),
            s.State == V1.PodSandboxState.SandboxReady ? PodSandboxState.Ready : PodSandboxState.NotReady,
            FromNanos(s.CreatedAt) ?? DateTimeOffset.UnixEpoch,
            Copy(s.Labels),
            Copy(s.Annotations),
            s.RuntimeHandler)).ToList();
    }

    public async Task<IReadOnlyList<ContainerInfo>> ListContainersAsync(ContainerFilter? filter, CancellationToken ct)
    {
        var request = new V1.ListContainersRequest();
        if (filter is not null)
        {
            request.Filter = new V1.ContainerFilter { Id = filter.Id ?? "", PodSandboxId = filter.PodSandboxId ?? "" };
            if (filter.State is { } state) request.Filter.State = new V1.ContainerStateValue { State = ToCri(state) };
            if (filter.Labels is not null) foreach (var (k, v) in filter.Labels) request.Filter.LabelSelector[k] = v;
        }
        var r = await _client.ListContainersAsync(request, ct: ct).ConfigureAwait(false);
        return r.Containers.Select(c => new ContainerInfo(
            c.Id,
            c.PodSandboxId,
            c.Metadata?.Name ?? "",
            c.Metadata?.Attempt ?? 0,
            c.Image?.Image ?? "",
            c.ImageRef,
            FromCri(c.State),
            FromNanos(c.CreatedAt) ?? DateTimeOffset.UnixEpoch,
            Copy(c.Labels),
            Copy(c.Annotations))).ToList();
    }

    public async Task<ContainerStatusInfo> ContainerStatusAsync(string containerId, bool verbose, CancellationToken ct)
    {
        var r = await _client.ContainerStatusAsync(
            new V1.ContainerStatusRequest { ContainerId = containerId, Verbose = verbose }, ct: ct).ConfigureAwait(false);
        var s = r.Status ?? throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed,
            $"CRI ContainerStatus of container {containerId}: the runtime returned no status", "Internal");
        return new ContainerStatusInfo(
            s.Id,
            s.Metadata?.Name ?? "",
            s.Metadata?.Attempt ?? 0,
            FromCri(s.State),
            FromNanos(s.CreatedAt) ?? DateTimeOffset.UnixEpoch,
            FromNanos(s.StartedAt),
            FromNanos(s.FinishedAt),
            s.ExitCode,
            s.Image?.Image ?? "",
            s.ImageRef,
            s.Reason,
            s.Message,
            s.LogPath,
            Copy(s.Labels),
            Copy(s.Annotations),
            Copy(r.Info));
    }

    public async Task StopContainerAsync(string containerId, TimeSpan gracePeriod, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(containerId);
        if (gracePeriod < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(gracePeriod), gracePeriod, "must not be negative");
        await _client.StopContainerAsync(new V1.StopContainerRequest
        {
            ContainerId = containerId,
            Timeout = (long)Math.Ceiling(gracePeriod.TotalSeconds),
        }, ct: ct).ConfigureAwait(false);
    }

    public async Task CheckpointContainerAsync(string containerId, string archivePath, TimeSpan timeout, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(containerId);
        ArgumentException.ThrowIfNullOrEmpty(archivePath);
        if (timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "must be positive");
        var request = new V1.CheckpointContainerRequest
        {
            ContainerId = containerId,
            Location = archivePath,
            // informative only: runtimes do not bound the call by it, the gRPC deadline below does
            Timeout = (long)Math.Ceiling(timeout.TotalSeconds),
        };
        Log.Checkpointing(_log, containerId, archivePath, timeout.TotalSeconds);
        await _client.CheckpointContainerAsync(request, timeout, ct).ConfigureAwait(false);
    }

    public async Task<CheckpointArchive> CheckpointAsync(CheckpointTarget target, string archivePath, TimeSpan timeout, CancellationToken ct)
    {
        string id = target.ContainerId ?? await FindContainerIdAsync(target, ct).ConfigureAwait(false);
        await CheckpointContainerAsync(id, archivePath, timeout, ct).ConfigureAwait(false);
        return new CheckpointArchive(archivePath);
    }

    /// <summary>The running container of that pod and name on this node, by the kubelet's labels.</summary>
    private async Task<string> FindContainerIdAsync(CheckpointTarget target, CancellationToken ct)
    {
        var found = await ListContainersAsync(new ContainerFilter(
            State: ContainerState.Running,
            Labels: new Dictionary<string, string>
            {
                [KubeletLabels.PodNamespace] = target.Namespace,
                [KubeletLabels.PodName] = target.Pod,
                [KubeletLabels.ContainerName] = target.Container,
            }), ct).ConfigureAwait(false);
        var latest = found.OrderByDescending(c => c.Attempt).ThenByDescending(c => c.CreatedAt).FirstOrDefault();
        return latest?.Id ?? throw new ContainerNotFoundException(
            $"no running container {target.Container} of pod {target.Namespace}/{target.Pod} in the runtime at {_client.Endpoint}");
    }

    public async Task<string> PullImageAsync(string image, RegistryAuth? auth, PodIdentity? sandbox, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(image);
        var request = new V1.PullImageRequest { Image = new V1.ImageSpec { Image = image } };
        if (auth is not null)
        {
            request.Auth = new V1.AuthConfig
            {
                Username = auth.Username ?? "",
                Password = auth.Password ?? "",
                Auth = auth.Auth ?? "",
                ServerAddress = auth.ServerAddress ?? "",
                IdentityToken = auth.IdentityToken ?? "",
                RegistryToken = auth.RegistryToken ?? "",
            };
        }
        if (sandbox is not null)
        {
            request.SandboxConfig = new V1.PodSandboxConfig
            {
                Metadata = new V1.PodSandboxMetadata
                {
                    Name = sandbox.Name, Namespace = sandbox.Namespace, Uid = sandbox.Uid, Attempt = sandbox.Attempt,
                },
            };
        }
        var r = await _client.PullImageAsync(request, ct: ct).ConfigureAwait(false);
        return r.ImageRef;
    }

    public async Task RemoveImageAsync(string image, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(image);
        await _client.RemoveImageAsync(new V1.RemoveImageRequest { Image = new V1.ImageSpec { Image = image } }, ct: ct).ConfigureAwait(false);
    }

    public async Task<ImageInfo?> ImageStatusAsync(string image, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(image);
        var r = await _client.ImageStatusAsync(
            new V1.ImageStatusRequest { Image = new V1.ImageSpec { Image = image } }, ct: ct).ConfigureAwait(false);
        // CRI answers an absent image with an empty response, not NotFound
        if (r.Image is null || r.Image.Id.Length == 0) return null;
        return new ImageInfo(r.Image.Id, r.Image.RepoTags.ToList(), r.Image.RepoDigests.ToList(), r.Image.Size, r.Image.Pinned);
    }

    private static PodIdentity FromCri(V1.PodSandboxMetadata? m) =>
        new(m?.Namespace ?? "", m?.Name ?? "", m?.Uid ?? "", m?.Attempt ?? 0);

    private static ContainerState FromCri(V1.ContainerState s) => s switch
    {
        V1.ContainerState.ContainerCreated => ContainerState.Created,
        V1.ContainerState.ContainerRunning => ContainerState.Running,
        V1.ContainerState.ContainerExited => ContainerState.Exited,
        _ => ContainerState.Unknown,
    };

    private static V1.ContainerState ToCri(ContainerState s) => s switch
    {
        ContainerState.Created => V1.ContainerState.ContainerCreated,
        ContainerState.Running => V1.ContainerState.ContainerRunning,
        ContainerState.Exited => V1.ContainerState.ContainerExited,
        _ => V1.ContainerState.ContainerUnknown,
    };

    private static V1.PodSandboxState ToCri(PodSandboxState s) =>
        s == PodSandboxState.Ready ? V1.PodSandboxState.SandboxReady : V1.PodSandboxState.SandboxNotready;

    /// <summary>CRI times are nanoseconds since the Unix epoch; 0 means unset.</summary>
    private static DateTimeOffset? FromNanos(long nanos) =>
        nanos <= 0 ? null : DateTimeOffset.UnixEpoch.AddTicks(nanos / 100);

    private static Dictionary<string, string> Copy(MapField<string, string> map) => new(map, StringComparer.Ordinal);

    public void Dispose()
    {
        if (_ownsClient) _client.Dispose();
    }
}

internal static partial class Log
{
    [LoggerMessage(EventId = 30001, Level = LogLevel.Debug,
        Message = "CRI checkpoint of container {ContainerId} to {ArchivePath} (deadline {TimeoutSeconds}s)")]
    public static partial void Checkpointing(ILogger logger, string containerId, string archivePath, double timeoutSeconds);
}

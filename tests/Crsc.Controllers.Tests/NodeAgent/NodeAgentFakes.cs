using System.Collections.Concurrent;
using Crsc.Api.Kubernetes;
using ContainerState = Crsc.Controllers.Runtime.ContainerState;
using Crsc.Controllers.Events;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Storage;

namespace Crsc.Controllers.Tests.NodeAgent;

/// <summary>
/// An in-memory <see cref="IContainerRuntime"/>: containers labelled the way the kubelet labels them, recorded
/// checkpoint calls, and a replaceable checkpoint behaviour (fail, block, take time); images that are there once
/// pulled, with recorded pulls and a replaceable pull behaviour.
/// </summary>
public sealed class FakeContainerRuntime : IContainerRuntime
{
    private readonly ConcurrentQueue<(CheckpointTarget Target, string Path, TimeSpan Timeout)> _checkpoints = new();
    private readonly List<ContainerInfo> _containers = [];
    private int _seq;

    public IReadOnlyList<(CheckpointTarget Target, string Path, TimeSpan Timeout)> CheckpointCalls => [.. _checkpoints];
    public int ListCalls => Volatile.Read(ref _listCalls);
    private int _listCalls;

    /// <summary>What a checkpoint call does after it is recorded; default: succeeds at once, archive at the given path.</summary>
    public Func<CheckpointTarget, string, TimeSpan, CancellationToken, Task<CheckpointArchive>> OnCheckpoint { get; set; } =
        (_, path, _, _) => Task.FromResult(new CheckpointArchive(path));

    public ContainerInfo AddContainer(string ns, string pod, string name, ContainerState state = ContainerState.Running,
        uint attempt = 0, string? podUid = null, string image = "registry.local/app:1")
    {
        var id = $"{++_seq:x4}{Guid.NewGuid():N}";
        var labels = new Dictionary<string, string>
        {
            [KubeletLabels.PodNamespace] = ns,
            [KubeletLabels.PodName] = pod,
            [KubeletLabels.ContainerName] = name,
        };
        if (podUid is not null) labels[KubeletLabels.PodUid] = podUid;
        var c = new ContainerInfo(id, "sandbox-" + pod, name, attempt, image, "sha256:aa", state,
            DateTimeOffset.UnixEpoch.AddSeconds(_seq), labels, new Dictionary<string, string>());
        lock (_containers) _containers.Add(c);
        return c;
    }

    public Task<IReadOnlyList<ContainerInfo>> ListContainersAsync(ContainerFilter? filter, CancellationToken ct)
    {
        Interlocked.Increment(ref _listCalls);
        lock (_containers)
        {
            IReadOnlyList<ContainerInfo> found = [.. _containers.Where(c =>
                (filter?.State is null || c.State == filter.State)
                && (filter?.Labels is null || filter.Labels.All(l => c.Labels.GetValueOrDefault(l.Key) == l.Value)))];
            return Task.FromResult(found);
        }
    }

    public Task<CheckpointArchive> CheckpointAsync(CheckpointTarget target, string archivePath, TimeSpan timeout, CancellationToken ct)
    {
        _checkpoints.Enqueue((target, archivePath, timeout));
        return OnCheckpoint(target, archivePath, timeout, ct);
    }

    public async Task CheckpointContainerAsync(string containerId, string archivePath, TimeSpan timeout, CancellationToken ct)
        => await CheckpointAsync(new CheckpointTarget("", "", "", containerId), archivePath, timeout, ct);

    /// <summary>What <see cref="VersionAsync"/> answers.</summary>
    public RuntimeVersion Version { get; set; } = new("0.1.0", "fake", "1.0", "v1");

    public Task<RuntimeVersion> VersionAsync(CancellationToken ct) => Task.FromResult(Version);

    public Task<IReadOnlyList<PodSandboxInfo>> ListPodSandboxesAsync(PodSandboxFilter? filter, CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<PodSandboxInfo>>([]);

    /// <summary>What <see cref="StatusAsync"/> answers; default: ready, no verbose information.</summary>
    public RuntimeStatusInfo Status { get; set; } = new([new RuntimeCondition("RuntimeReady", true, "", "")], new Dictionary<string, string>());

    /// <summary>Replaces the <see cref="Status"/> answer (e.g. to fail); gets the verbose flag.</summary>
    public Func<bool, RuntimeStatusInfo>? OnStatus { get; set; }

    /// <summary>The verbose flag of every Status call.</summary>
    public IReadOnlyList<bool> StatusCalls => [.. _statusCalls];
    private readonly ConcurrentQueue<bool> _statusCalls = new();

    public Task<RuntimeStatusInfo> StatusAsync(bool verbose, CancellationToken ct)
    {
        _statusCalls.Enqueue(verbose);
        return Task.FromResult(OnStatus is { } f ? f(verbose) : Status);
    }

    public Task<ContainerStatusInfo> ContainerStatusAsync(string containerId, bool verbose, CancellationToken ct)
    {
        lock (_containers)
        {
            var c = _containers.FirstOrDefault(c => c.Id == containerId)
                ?? throw new ContainerNotFoundException($"CRI ContainerStatus of container {containerId}: not found", "NotFound");
            return Task.FromResult(new ContainerStatusInfo(c.Id, c.Name, c.Attempt, c.State, c.CreatedAt,
                c.State == ContainerState.Created ? null : c.CreatedAt, c.State == ContainerState.Exited ? c.CreatedAt : null,
                c.State == ContainerState.Exited ? 137 : 0, c.Image, c.ImageRef, "", "", "", c.Labels, c.Annotations,
                new Dictionary<string, string>()));
        }
    }

    /// <summary>Every StopContainer call: the container and its grace period.</summary>
    public IReadOnlyList<(string Id, TimeSpan GracePeriod)> StopCalls => [.. _stops];
    private readonly ConcurrentQueue<(string, TimeSpan)> _stops = new();

    public Task StopContainerAsync(string containerId, TimeSpan gracePeriod, CancellationToken ct)
    {
        _stops.Enqueue((containerId, gracePeriod));
        lock (_containers)
        {
            var i = _containers.FindIndex(c => c.Id == containerId);
            // like containerd: an unknown container is no error (the CRI's StopContainer is idempotent)
            if (i >= 0) _containers[i] = _containers[i] with { State = ContainerState.Exited };
        }
        return Task.CompletedTask;
    }

    private readonly ConcurrentDictionary<string, ImageInfo> _images = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<(string Image, PodIdentity? Sandbox)> _pulls = new();

    /// <summary>The images the runtime has (by the reference they were pulled or added by).</summary>
    public IReadOnlyCollection<string> Images => [.. _images.Keys];
    public IReadOnlyList<(string Image, PodIdentity? Sandbox)> PullCalls => [.. _pulls];
    /// <summary>The credentials each pull was given, by image.</summary>
    public IReadOnlyList<(string Image, RegistryAuth? Auth)> PullAuths => [.. _pullAuths];
    private readonly System.Collections.Concurrent.ConcurrentQueue<(string, RegistryAuth?)> _pullAuths = new();
    public int ImageStatusCalls => Volatile.Read(ref _imageStatusCalls);
    private int _imageStatusCalls;

    /// <summary>What a pull does after it is recorded; default: succeeds, and the image is there from then on.</summary>
    public Func<string, CancellationToken, Task>? OnPull { get; set; }

    public void AddImage(string image) =>
        _images[image] = new ImageInfo("sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
            System.Text.Encoding.UTF8.GetBytes(image))), [image], [], 1024, false);

    public async Task<string> PullImageAsync(string image, RegistryAuth? auth, PodIdentity? sandbox, CancellationToken ct)
    {
        _pulls.Enqueue((image, sandbox));
        _pullAuths.Enqueue((image, auth));
        if (OnPull is { } onPull) await onPull(image, ct);
        AddImage(image);
        return _images[image].Id;
    }

    /// <summary>Every RemoveImage call, in order.</summary>
    public IReadOnlyList<string> RemoveCalls => [.. _removes];
    private readonly ConcurrentQueue<string> _removes = new();

    public Task RemoveImageAsync(string image, CancellationToken ct)
    {
        _removes.Enqueue(image);
        _images.TryRemove(image, out _);
        return Task.CompletedTask;
    }

    public Task<ImageInfo?> ImageStatusAsync(string image, CancellationToken ct)
    {
        Interlocked.Increment(ref _imageStatusCalls);
        return Task.FromResult(_images.TryGetValue(image, out var info) ? info : null);
    }
}

/// <summary>An in-memory <see cref="ICheckpointStore"/> with recorded calls and an injectable ingestion error.</summary>
public sealed class FakeCheckpointStore(TimeProvider time) : ICheckpointStore
{
    private readonly List<CheckpointInfo> _items = [];
    private int _seq;

    public string StagingDirectory => "/fake/staging";
    public ConcurrentQueue<CheckpointedContainer> StagingRequests { get; } = new();
    public ConcurrentQueue<(string Staged, CheckpointedContainer Source, IngestOptions Options)> Ingests { get; } = new();
    public ConcurrentQueue<string> Deleted { get; } = new();

    /// <summary>Thrown by the next ingestions while set.</summary>
    public Exception? IngestError { get; set; }

    /// <summary>Runs at each ingestion, after it is recorded (e.g. to change the file under the store).</summary>
    public Action<string>? OnIngest { get; set; }

    /// <summary>Thrown by <see cref="List"/> while set (a store directory that cannot be read).</summary>
    public Exception? ListError { get; set; }

    public string NewStagingPath(CheckpointedContainer source)
    {
        StagingRequests.Enqueue(source);
        return $"{StagingDirectory}/{source.Namespace}_{source.Workload}_{source.Container}-{Interlocked.Increment(ref _seq)}.tar";
    }

    public Task<CheckpointInfo> IngestAsync(string stagedArchivePath, CheckpointedContainer source, IngestOptions options,
        IProgress<long>? progress, CancellationToken ct)
    {
        Ingests.Enqueue((stagedArchivePath, source, options));
        OnIngest?.Invoke(stagedArchivePath);
        if (IngestError is { } e) throw e;
        progress?.Report(1000);
        var info = Add(source.Namespace, source.Workload, source.Container, source.PodName, time.GetUtcNow(), source.PodUid, source.Owner);
        return Task.FromResult(info);
    }

    /// <summary>Adds a committed checkpoint, as an earlier daemon would have left it.</summary>
    public CheckpointInfo Add(string ns, string workload, string container, string? pod, DateTimeOffset createdAt, string? podUid = null,
        CheckpointOwner? owner = null, string? reason = null)
    {
        var n = Interlocked.Increment(ref _seq);
        var id = $"20260101T000000Z-{n:x6}";
        var info = new CheckpointInfo
        {
            FormatVersion = reason is not null ? 3 : owner is null ? 1 : 2,
            Reason = reason,
            Id = id,
            Namespace = ns,
            Workload = workload,
            Container = container,
            PodName = pod,
            PodUid = podUid,
            NodeName = "n1",
            Archive = new ArchiveFacts { ImageName = "registry.local/app:1", ImageId = "sha256:aa" },
            Compression = CheckpointCompression.Zstd,
            CompressionLevel = 1,
            Digest = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(n))),
            Size = 4096 + n,
            UncompressedDigest = "sha256:" + new string('0', 64),
            UncompressedSize = 8192,
            CreatedAt = createdAt,
            CrscVersion = "test",
            Owner = owner,
            ArchivePath = $"/fake/checkpoints/{ns}/{workload}/{container}/{id}.tar.zst",
        };
        lock (_items) _items.Add(info);
        return info;
    }

    public IReadOnlyList<CheckpointInfo> List(CheckpointFilter? filter = null)
    {
        if (ListError is { } error) throw error;
        lock (_items)
            return [.. _items.Where(c => (filter?.Namespace is null || c.Namespace == filter.Namespace)
                    && (filter?.Workload is null || c.Workload == filter.Workload)
                    && (filter?.Container is null || c.Container == filter.Container))
                .OrderByDescending(c => c.CreatedAt)];
    }

    public CheckpointInfo? Get(string id)
    {
        lock (_items) return _items.FirstOrDefault(c => c.Id == id);
    }

    public IReadOnlyList<CheckpointInfo> FindByOwner(string @namespace, string name, string? uid) =>
        [.. List(new CheckpointFilter(@namespace)).Where(c => c.Owner?.Is(@namespace, name, uid) == true)];

    public bool Delete(string id)
    {
        Deleted.Enqueue(id);
        lock (_items) return _items.RemoveAll(c => c.Id == id) > 0;
    }

    public Task<Stream> OpenReadAsync(string id, CancellationToken ct) => throw new NotSupportedException();
    public Task<Stream> OpenStoredAsync(string id, CancellationToken ct) => throw new NotSupportedException();
    public Task<VerificationResult> VerifyAsync(string id, CancellationToken ct) => throw new NotSupportedException();
    public Task<CheckpointInfo> SetPinnedAsync(string id, bool pinned, CancellationToken ct) => throw new NotSupportedException();
    public RetentionResult ApplyRetention(RetentionRequest request) => throw new NotSupportedException();
    public RecoveryReport Recover() => new([], []);
}

/// <summary>A recording <see cref="IStagingArea"/>: "files" are entries of a dictionary.</summary>
public sealed class FakeStagingArea : IStagingArea
{
    public ConcurrentQueue<string> Deleted { get; } = new();
    public ConcurrentDictionary<string, string> Logs { get; } = new();
    public ConcurrentDictionary<string, string> ArchiveLogs { get; } = new();
    public Exception? DeleteError { get; set; }

    /// <summary>Files <see cref="CheckFileInDirectory"/> finds (full path → identity); any other path is missing.</summary>
    public ConcurrentDictionary<string, FileIdentity> Files { get; } = new();

    /// <summary>Every log path asked for.</summary>
    public ConcurrentQueue<string> LogReads { get; } = new();

    public void Delete(string path)
    {
        Deleted.Enqueue(path);
        if (DeleteError is { } e) throw e;
    }

    public FileIdentity CheckFileInDirectory(string directory, string name) =>
        Files.TryGetValue(directory + "/" + name, out var id) ? id : throw new FileNotFoundException($"'{directory}/{name}' does not exist");

    public string? DeleteIfSame(string directory, string name, FileIdentity expected)
    {
        var path = directory + "/" + name;
        if (!Files.TryGetValue(path, out var id) || id != expected) return "not the same file";
        Deleted.Enqueue(path);
        Files.TryRemove(path, out _);
        return null;
    }

    public string? ReadLogTail(string path, int maxBytes)
    {
        LogReads.Enqueue(path);
        return Logs.TryGetValue(path, out var log) ? (log.Length > maxBytes ? log[^maxBytes..] : log) : null;
    }

    public string? ReadArchiveLogTail(string archivePath, int maxBytes) =>
        ArchiveLogs.TryGetValue(archivePath, out var log) ? (log.Length > maxBytes ? log[^maxBytes..] : log) : null;
}

/// <summary>An <see cref="IEventRecorder"/> that keeps what it was told.</summary>
public sealed class RecordingEventRecorder : IEventRecorder
{
    public ConcurrentQueue<(string Kind, string? Name, string Type, string Reason, string Message)> Events { get; } = new();

    public void Record(IKubernetesObject regarding, string type, string reason, string message) =>
        Events.Enqueue((regarding.Kind ?? "", regarding.Metadata.Name, type, reason, message));
}

/// <summary>Records progress reports synchronously (Progress&lt;T&gt; would post them to the thread pool).</summary>
public sealed class ProgressLog : IProgress<CheckpointProgress>
{
    public ConcurrentQueue<CheckpointProgress> Reports { get; } = new();
    public void Report(CheckpointProgress value) => Reports.Enqueue(value);
    public IReadOnlyList<string> Stages => [.. Reports.Select(r => r.Stage)];
}

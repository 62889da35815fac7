using System.Text.RegularExpressions;

using Crsc.Api.Archives;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using KubeletLabels = Crsc.Api.Kubernetes.KubeletLabels;

namespace Crsc.Controllers.NodeAgent;

public sealed record CheckpointRunnerOptions
{
    /// <summary><c>nodeName</c>: recorded in outcomes (and so in statuses and Content objects).</summary>
    public required string NodeName { get; init; }

    /// <summary>Checkpoints executed at the same time on this node; more wait (and report <c>queued</c>).</summary>
    public int MaxConcurrent { get; init; } = 1;

    /// <summary>
    /// Checkpoints of a node going away (reason <see cref="CheckpointReasons.NodeDrain"/> or
    /// <see cref="CheckpointReasons.NodeShutdown"/>) executed at the same time: a pool of their own beside
    /// <see cref="MaxConcurrent"/>, so <c>shutdown.parallelism</c> holds within logind's delay, and a scheduled checkpoint
    /// running at that moment does not make them wait.
    /// </summary>
    public int MaxConcurrentNodeAway { get; init; } = 4;

    /// <summary>Bound of the runtime's checkpoint call unless the request sets its own.</summary>
    public TimeSpan DefaultTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long past the timeout crsc waits before giving up on the runtime call itself: the runtime (a gRPC deadline)
    /// or the kubelet (its own timeout plus the client's slack) should answer first, with their own message.
    /// </summary>
    public TimeSpan DeadlineGrace { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Null: the store's default (zstd, except for an archive zstd cannot shrink, which is kept as it is); a value is
    /// passed on as asked.
    /// </summary>
    public CheckpointCompression? Compression { get; init; }

    /// <summary>The pod's interceptor, held during the runtime's checkpoint call; null: no hold.</summary>
    public IPodTrafficHold? TrafficHold { get; init; }

    /// <summary>zstd level (1: fast).</summary>
    public int CompressionLevel { get; init; } = 1;

    /// <summary>
    /// Containers crsc adds to pods itself (its interceptor sidecar): never picked when a request names no container.
    /// A name matches when equal to one of these or starting with <c>crsc-</c>.
    /// </summary>
    public IReadOnlySet<string> CrscContainers { get; init; } = new HashSet<string>(StringComparer.Ordinal) { "crsc", "crsc-interceptor" };

    /// <summary>
    /// <c>kubelet.checkpointDir</c> when the kubelet takes the checkpoints: an archive path the checkpointer answers,
    /// other than the staging path it was given, is accepted only as a regular file directly inside this directory,
    /// reached without a symbolic link. Null (CRI): only the staging path is accepted.
    /// </summary>
    public string? KubeletCheckpointDirectory { get; init; }

    /// <summary>
    /// Where the runtimes leave CRIU's log of a failed checkpoint, <c>{id}</c> standing for the container ID. A log
    /// path in a runtime's error message is read only when it is one of these for the container being checkpointed.
    /// </summary>
    public IReadOnlyList<string> CriuLogLocations { get; init; } = DefaultCriuLogLocations;

    /// <summary>
    /// CRI-O gives runc the container's directory in containers/storage as CRIU's work path (<c>dump.log</c>);
    /// containerd's runc shim copies CRIU's log to <c>criu-dump.log</c> in the task's bundle under its state directory.
    /// </summary>
    public static readonly IReadOnlyList<string> DefaultCriuLogLocations =
    [
        "/var/lib/containers/storage/overlay-containers/{id}/userdata/dump.log",
        "/run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/criu-dump.log",
    ];

    public void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(NodeName, nameof(NodeName));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConcurrent, 1, nameof(MaxConcurrent));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConcurrentNodeAway, 1, nameof(MaxConcurrentNodeAway));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(DefaultTimeout, TimeSpan.Zero, nameof(DefaultTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(DeadlineGrace, TimeSpan.Zero, nameof(DeadlineGrace));
        if (CompressionLevel is < -7 or > 22) throw new ArgumentOutOfRangeException(nameof(CompressionLevel), CompressionLevel, "zstd levels are -7 … 22");
        if (KubeletCheckpointDirectory is { } dir && (!CheckpointRunner.IsAbsoluteClean(dir) || dir == "/"))
            throw new ArgumentException($"'{dir}' must be an absolute path without '.', '..', '//' or a trailing '/'", nameof(KubeletCheckpointDirectory));
        foreach (var location in CriuLogLocations)
            if (!CheckpointRunner.IsAbsoluteClean(location) || !location.Contains("{id}", StringComparison.Ordinal))
                throw new ArgumentException($"'{location}' must be an absolute clean path holding {{id}}", nameof(CriuLogLocations));
    }

    internal bool IsCrscContainer(string name) =>
        CrscContainers.Contains(name) || name.StartsWith("crsc-", StringComparison.Ordinal);
}

/// <summary>Progress stage names (<see cref="CheckpointProgress.Stage"/>).</summary>
public static class CheckpointStages
{
    public const string Queued = "queued";
    public const string Resolving = "resolving";
    public const string Checkpointing = "checkpointing";
    public const string Ingesting = "ingesting";
    public const string Committed = "committed";
}

/// <summary>
/// The node's checkpoint execution path (<see cref="ICheckpointRunner"/>): at most
/// <see cref="CheckpointRunnerOptions.MaxConcurrent"/> at a time; finds the running container through the runtime's
/// kubelet labels, has the runtime (or kubelet) write the archive into the store's staging area within the timeout,
/// ingests it (hash, compress, commit) and removes whatever was staged, whatever happened.
/// </summary>
public sealed partial class CheckpointRunner : ICheckpointRunner, IDisposable
{
    /// <summary>How much of a CRIU log is kept (the end, where the error is, from a line start); twice that is read.</summary>
    public const int CriuLogBytes = Crsc.Api.Crds.ContainerCheckpointStatus.MaxCriuLogLength;

    private readonly IContainerRuntime _runtime;
    private readonly IContainerCheckpointer _checkpointer;
    private readonly ICheckpointStore _store;
    private readonly IStagingArea _staging;
    private readonly IWorkloadNameResolver? _workloads;
    private readonly CheckpointRunnerOptions _options;
    private readonly CheckpointMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _slots, _nodeAwaySlots;

    /// <param name="runtime">finds containers (CRI <c>ListContainers</c>)</param>
    /// <param name="checkpointer">takes the checkpoint: the same CRI runtime, or the kubelet client</param>
    /// <param name="workloads">names the pod's workload for the store; null: the pod's name</param>
    public CheckpointRunner(
        IContainerRuntime runtime,
        IContainerCheckpointer checkpointer,
        ICheckpointStore store,
        CheckpointRunnerOptions options,
        TimeProvider time,
        IStagingArea staging,
        ILogger<CheckpointRunner>? logger = null,
        CheckpointMetrics? metrics = null,
        IWorkloadNameResolver? workloads = null)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(checkpointer);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        options.Validate();
        _runtime = runtime;
        _checkpointer = checkpointer;
        _store = store;
        _options = options;
        _time = time;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _metrics = metrics ?? new CheckpointMetrics(new MetricsRegistry());
        ArgumentNullException.ThrowIfNull(staging);
        _staging = staging;
        _workloads = workloads;
        _slots = new SemaphoreSlim(options.MaxConcurrent, options.MaxConcurrent);
        _nodeAwaySlots = new SemaphoreSlim(options.MaxConcurrentNodeAway, options.MaxConcurrentNodeAway);
    }

    public CheckpointRunnerOptions Options => _options;

    public CheckpointMetrics Metrics => _metrics;

    /// <summary>Checkpoints waiting for a slot or running now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);
    private int _inFlight;

    public async Task<CheckpointOutcome> CheckpointAsync(CheckpointRequest request, IProgress<CheckpointProgress>? progress,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrEmpty(request.Namespace);
        ArgumentException.ThrowIfNullOrEmpty(request.Pod);
        var target = $"{request.Namespace}/{request.Pod}{(request.Container is null ? "" : "/" + request.Container)}";
        Interlocked.Increment(ref _inFlight);
        var nodeAway = request.Reason is CheckpointReasons.NodeDrain or CheckpointReasons.NodeShutdown;
        var slots = nodeAway ? _nodeAwaySlots : _slots;
        var limit = nodeAway ? _options.MaxConcurrentNodeAway : _options.MaxConcurrent;
        try
        {
            if (!slots.Wait(0))
            {
                Log.Queued(_logger, target, limit);
                progress?.Report(new CheckpointProgress(CheckpointStages.Queued,
                    $"waiting: {limit} checkpoint(s) already running on node {_options.NodeName}"));
                try
                {
                    await slots.WaitAsync(ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    _metrics.Checkpoints.Inc(1, CheckpointMetrics.ResultCanceled);
                    throw;
                }
            }
            try
            {
                return await RunAsync(request, target, progress, ct).ConfigureAwait(false);
            }
            finally
            {
                slots.Release();
            }
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private async Task<CheckpointOutcome> RunAsync(CheckpointRequest request, string target,
        IProgress<CheckpointProgress>? progress, CancellationToken ct)
    {
        var started = _time.GetTimestamp();
        var runtimeTime = TimeSpan.Zero;
        string? staged = null;
        string? containerName = null;
        ForeignArchive? foreign = null;
        var result = CheckpointMetrics.ResultFailed;
        try
        {
            progress?.Report(new CheckpointProgress(CheckpointStages.Resolving, $"finding container {target}"));
            var container = await ResolveAsync(request, target, ct).ConfigureAwait(false);
            containerName = container.ContainerName ?? container.Name;
            var source = new CheckpointedContainer(request.Namespace,
                _workloads?.WorkloadOf(request.Namespace, request.Pod) is { Length: > 0 } w ? w : request.Pod,
                containerName)
            {
                PodName = request.Pod,
                PodUid = string.IsNullOrEmpty(container.PodUid) ? null : container.PodUid,
                Owner = request.Owner,
                Reason = request.Reason,
            };
            staged = _store.NewStagingPath(source);
            var timeout = request.Timeout is { } t && t > TimeSpan.Zero ? t : _options.DefaultTimeout;

            progress?.Report(new CheckpointProgress(CheckpointStages.Checkpointing,
                $"checkpointing container {containerName} ({ShortId(container.Id)}) of {request.Namespace}/{request.Pod}"));
            Log.Checkpointing(_logger, target, container.Id, staged, timeout);
            // the interceptor (if the pod has one) holds new requests while CRIU freezes the app, and lets them go after
            // (released as soon as the runtime answers: the ingest that follows does not touch the app)
            var held = _options.TrafficHold is { } hold && !string.IsNullOrEmpty(container.PodUid)
                ? await hold.HoldAsync(request.Namespace, request.Pod, container.PodUid, $"checkpoint of {containerName}", ct).ConfigureAwait(false)
                : null;
            var runtimeStarted = _time.GetTimestamp();
            string written;
            try
            {
                written = await CheckpointWithTimeoutAsync(
                    new CheckpointTarget(request.Namespace, request.Pod, containerName, container.Id), staged, timeout, ct)
                    .ConfigureAwait(false);
            }
            catch (ContainerRuntimeException e)
            {
                runtimeTime = _time.GetElapsedTime(runtimeStarted);
                if (e.Kind == ContainerRuntimeErrorKind.DeadlineExceeded) result = CheckpointMetrics.ResultTimeout;
                throw Failed(e, target, container.Id, staged);
            }
            finally
            {
                if (held is not null) await held.DisposeAsync().ConfigureAwait(false);
            }
            runtimeTime = _time.GetElapsedTime(runtimeStarted);
            // the kubelet picks its own path and says which: a name from over the network, checked before it is used
            if (written != staged) foreign = AcceptForeignArchive(written, target, container.Id);

            progress?.Report(new CheckpointProgress(CheckpointStages.Ingesting, $"storing archive of {target}", 0));
            CheckpointInfo info;
            try
            {
                info = await _store.IngestAsync(written, source,
                    new IngestOptions
                    {
                        Compression = _options.Compression,
                        CompressionLevel = _options.CompressionLevel,
                        // the store reads only the file checked here and leaves the kubelet's file to ReleaseForeign
                        ExpectedFile = foreign?.Identity,
                        RemoveStaged = foreign is null,
                    },
                    progress is null ? null : new SyncProgress(progress, target), ct).ConfigureAwait(false);
            }
            catch (CheckpointStoreException)
            {
                result = CheckpointMetrics.ResultRejected;
                throw;
            }
            var total = _time.GetElapsedTime(started);
            result = CheckpointMetrics.ResultSucceeded;
            _metrics.ArchiveBytes.Set(info.Size);
            _metrics.ArchiveBytesTotal.Inc(info.Size);
            _metrics.Duration.Observe(runtimeTime.TotalSeconds, "runtime");
            _metrics.Duration.Observe(Math.Max(0, (total - runtimeTime).TotalSeconds), "crsc");
            TryUpdateStoreBytes();
            Log.Committed(_logger, target, info.Id, info.Size, info.Digest, runtimeTime, total);
            // committed: the interceptor's replay log drops what this checkpoint holds (only now: a failed ingest keeps it)
            if (held is not null) await held.CheckpointCommittedAsync(ct).ConfigureAwait(false);
            progress?.Report(new CheckpointProgress(CheckpointStages.Committed,
                $"committed {info.Id} ({info.Size} bytes, {info.Digest})", info.Size));
            return new CheckpointOutcome(info, _options.NodeName, container.Id, runtimeTime, total);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            result = CheckpointMetrics.ResultCanceled;
            throw;
        }
        catch (ContainerResolutionException)
        {
            result = CheckpointMetrics.ResultInvalid;
            throw;
        }
        finally
        {
            _metrics.Checkpoints.Inc(1, result);
            Clean(staged, target);
            if (foreign is not null) ReleaseForeign(foreign, request, containerName!, target);
        }
    }

    /// <summary>An archive outside crsc's staging area (the kubelet's), checked: its directory, name and identity.</summary>
    private sealed record ForeignArchive(string Directory, string Name, FileIdentity Identity)
    {
        public string Path => Directory + "/" + Name;
    }

    /// <summary>
    /// The archive path the checkpointer answered, when it is a regular file directly inside
    /// <see cref="CheckpointRunnerOptions.KubeletCheckpointDirectory"/> and no component of it is a symbolic link;
    /// otherwise the checkpoint fails naming the path and the rule, and the file is neither read nor removed.
    /// </summary>
    private ForeignArchive AcceptForeignArchive(string path, string target, string containerId)
    {
        var dir = _options.KubeletCheckpointDirectory;
        string? problem = null;
        string name = "";
        FileIdentity identity = default;
        if (dir is null)
            problem = "the runtime was asked to write the archive into crsc's staging area and named another path";
        else if (!IsAbsoluteClean(path) || path.Any(char.IsControl))
            problem = "an archive path must be absolute, without '.', '..', '//', a trailing '/' or control characters";
        else if (!string.Equals(System.IO.Path.GetDirectoryName(path), dir, StringComparison.Ordinal))
            problem = $"the archive must be a file directly inside the kubelet's checkpoint directory {dir} (kubelet.checkpointDir)";
        else
        {
            name = System.IO.Path.GetFileName(path);
            try { identity = _staging.CheckFileInDirectory(dir, name); }
            catch (IOException e) { problem = $"{e.Message}; the archive must be a regular file directly inside {dir}, reached without a symbolic link"; }
        }
        if (problem is null) return new ForeignArchive(dir!, name, identity);

        var message = $"checkpoint of {target} (container {ShortId(containerId)}): archive '{Shown(path)}' refused: {problem}; crsc neither read nor removed it";
        var inner = new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed, message, "ArchiveRefused");
        Log.ForeignArchiveRefused(_logger, target, Shown(path), problem);
        throw new CheckpointFailedException(inner, message, containerId, null, null);
    }

    /// <summary>
    /// Removes the kubelet's archive of this checkpoint (the kubelet never does, and it holds the process's memory)
    /// when it is still the file that was checked and stored, and is named the way the kubelet names this
    /// container's checkpoints; anything else is left where it is.
    /// </summary>
    private void ReleaseForeign(ForeignArchive foreign, CheckpointRequest request, string container, string target)
    {
        string? kept;
        if (!IsKubeletArchiveName(foreign.Name, request.Namespace, request.Pod, container))
            kept = $"its name is not the kubelet's for a checkpoint of {target} (checkpoint-{request.Pod}_{request.Namespace}-{container}-<time>.tar)";
        else
        {
            try { kept = _staging.DeleteIfSame(foreign.Directory, foreign.Name, foreign.Identity); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { kept = e.Message; }
        }
        if (kept is null) Log.ForeignArchiveRemoved(_logger, foreign.Path, target);
        else Log.ForeignArchiveKept(_logger, foreign.Path, target, kept);
    }

    /// <summary>The kubelet's <c>checkpoint-&lt;pod&gt;_&lt;namespace&gt;-&lt;container&gt;-&lt;RFC 3339 time&gt;.tar</c>.</summary>
    internal static bool IsKubeletArchiveName(string name, string ns, string pod, string container)
    {
        var prefix = $"checkpoint-{pod}_{ns}-{container}-";
        return name.Length > prefix.Length + 4
            && name.StartsWith(prefix, StringComparison.Ordinal)
            && name.EndsWith(".tar", StringComparison.Ordinal)
            && Rfc3339().IsMatch(name.AsSpan(prefix.Length, name.Length - prefix.Length - 4));
    }

    internal static bool IsAbsoluteClean(string path) =>
        path.Length > 1 && path[0] == '/' && !path.Contains('\0')
        && path.Split('/').Skip(1).All(part => part is not ("" or "." or ".."));

    /// <summary>An untrusted path for a message: bounded, control characters replaced.</summary>
    private static string Shown(string path)
    {
        var s = path.Length > 256 ? path[..256] + "…" : path;
        return string.Create(s.Length, s, static (span, src) =>
        {
            for (var i = 0; i < src.Length; i++) span[i] = char.IsControl(src[i]) ? '?' : src[i];
        });
    }

    /// <summary>Reports the store's byte progress as <c>ingesting</c> stages, on the caller's thread.</summary>
    private sealed class SyncProgress(IProgress<CheckpointProgress> inner, string target) : IProgress<long>
    {
        public void Report(long value) => inner.Report(new CheckpointProgress(CheckpointStages.Ingesting, $"storing archive of {target}", value));
    }

    private async Task<string> CheckpointWithTimeoutAsync(CheckpointTarget target, string archivePath, TimeSpan timeout,
        CancellationToken ct)
    {
        // the runtime bounds its call by the timeout (a gRPC deadline); this bounds it on our clock as well, so a
        // runtime or kubelet that ignores its deadline cannot hold a slot for ever
        using var deadline = new CancellationTokenSource(timeout + _options.DeadlineGrace, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
        try
        {
            var archive = await _checkpointer.CheckpointAsync(target, archivePath, timeout, linked.Token).ConfigureAwait(false);
            return string.IsNullOrEmpty(archive.Path) ? archivePath : archive.Path;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            throw new ContainerRuntimeException(ContainerRuntimeErrorKind.DeadlineExceeded,
                $"the runtime did not finish the checkpoint within {timeout}", code: "DeadlineExceeded");
        }
    }

    private async Task<ContainerInfo> ResolveAsync(CheckpointRequest request, string target, CancellationToken ct)
    {
        var all = await _runtime.ListContainersAsync(new ContainerFilter(Labels: new Dictionary<string, string>
        {
            [KubeletLabels.PodNamespace] = request.Namespace,
            [KubeletLabels.PodName] = request.Pod,
        }), ct).ConfigureAwait(false);
        // the runtime may still list earlier attempts of a restarted container: the newest attempt is the container
        var latest = all
            .Where(c => c.PodNamespace == request.Namespace && c.PodName == request.Pod)
            .GroupBy(c => c.ContainerName ?? c.Name, StringComparer.Ordinal)
            .Select(g => g.OrderByDescending(c => c.State == ContainerState.Running)
                .ThenByDescending(c => c.Attempt).ThenByDescending(c => c.CreatedAt).First())
            .OrderBy(c => c.ContainerName ?? c.Name, StringComparer.Ordinal)
            .ToList();
        var names = latest.Select(c => c.ContainerName ?? c.Name).ToList();
        if (latest.Count == 0)
            throw new ContainerResolutionException(
                $"pod {request.Namespace}/{request.Pod} has no containers in the runtime of node {_options.NodeName}", names);

        ContainerInfo chosen;
        if (request.Container is { Length: > 0 } wanted)
        {
            chosen = latest.FirstOrDefault(c => (c.ContainerName ?? c.Name) == wanted)
                ?? throw new ContainerResolutionException(
                    $"pod {request.Namespace}/{request.Pod} has no container '{wanted}' on node {_options.NodeName}; it has: {string.Join(", ", names)}",
                    names);
        }
        else
        {
            var apps = latest.Where(c => !_options.IsCrscContainer(c.ContainerName ?? c.Name)).ToList();
            if (apps.Count != 1)
                throw new ContainerResolutionException(apps.Count == 0
                    ? $"pod {request.Namespace}/{request.Pod} has no container to checkpoint besides crsc's own ({string.Join(", ", names)})"
                    : $"pod {request.Namespace}/{request.Pod} has {apps.Count} containers ({string.Join(", ", apps.Select(c => c.ContainerName ?? c.Name))}); name the one to checkpoint",
                    names);
            chosen = apps[0];
        }
        if (chosen.State != ContainerState.Running)
            throw new ContainerResolutionException(
                $"container {chosen.ContainerName ?? chosen.Name} of pod {request.Namespace}/{request.Pod} is {chosen.State.ToString().ToLowerInvariant()}, not running; only a running container can be checkpointed",
                names, chosen.State);
        return chosen;
    }

    private CheckpointFailedException Failed(ContainerRuntimeException e, string target, string containerId, string staged)
    {
        var (log, where) = FindCriuLog(e, staged, containerId);
        var runtimeText = e.RuntimeMessage ?? e.Message;
        var message = $"checkpoint of {target} (container {ShortId(containerId)}) failed: {runtimeText}";
        Log.RuntimeFailed(_logger, e, target, containerId, where ?? "none");
        return new CheckpointFailedException(e, message, containerId, log, where);
    }

    /// <summary>
    /// A CRIU log: a path in the runtime's message when it is where the runtime keeps this container's log (the
    /// message is not trusted to name a file: the kubelet's answer may come from anyone), else a log inside what the
    /// runtime left in staging.
    /// </summary>
    private (string? Log, string? Where) FindCriuLog(ContainerRuntimeException e, string staged, string containerId)
    {
        try
        {
            foreach (var text in new[] { e.RuntimeMessage, e.Message })
            {
                if (string.IsNullOrEmpty(text)) continue;
                foreach (Match m in LogPathPattern().Matches(text))
                {
                    var path = m.Groups["path"].Value;
                    if (!IsKnownCriuLog(path, containerId))
                    {
                        Log.CriuLogNotRead(_logger, Shown(path), containerId);
                        continue;
                    }
                    if (_staging.ReadLogTail(path, 2 * CriuLogBytes) is { Length: > 0 } tail)
                        return (Crsc.Api.Crds.ContainerCheckpointStatus.CriuLogExcerpt(tail), path);
                }
            }
            if (_staging.ReadArchiveLogTail(staged, 2 * CriuLogBytes) is { Length: > 0 } inArchive)
                return (Crsc.Api.Crds.ContainerCheckpointStatus.CriuLogExcerpt(inArchive), $"{staged}!{CheckpointArchiveLayout.DumpLog}");
        }
        catch (Exception x) when (x is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            Log.CriuLogUnreadable(_logger, x, staged);
        }
        return (null, null);
    }

    private bool IsKnownCriuLog(string path, string containerId) =>
        ContainerIdPattern().IsMatch(containerId)
        && _options.CriuLogLocations.Any(l => string.Equals(l.Replace("{id}", containerId, StringComparison.Ordinal), path, StringComparison.Ordinal));

    private void Clean(string? path, string target)
    {
        if (string.IsNullOrEmpty(path)) return;
        try
        {
            _staging.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // never hides the checkpoint's own outcome; the store's recovery removes staging leftovers at start
            Log.CleanupFailed(_logger, e, path, target);
        }
    }

    private void TryUpdateStoreBytes()
    {
        try
        {
            _metrics.UpdateStoreBytes(_store);
        }
        catch (Exception e) when (e is IOException or CheckpointStoreException or UnauthorizedAccessException)
        {
            Log.StoreBytesFailed(_logger, e);
        }
    }

    private static string ShortId(string id) => id.Length > 13 ? id[..13] : id;

    public void Dispose()
    {
        _slots.Dispose();
        _nodeAwaySlots.Dispose();
    }

    // absolute paths of log files in a runtime message ("log file: /var/lib/…/dump.log", "see /run/…/criu-dump.log")
    [GeneratedRegex(@"(?<path>/[^\s""'(),;:]+\.log)\b", RegexOptions.CultureInvariant)]
    private static partial Regex LogPathPattern();

    // one path segment: a container ID as CRI-O and containerd make them (64 hex), or any other plain name
    [GeneratedRegex(@"^[0-9A-Za-z][0-9A-Za-z_.-]{0,127}\z", RegexOptions.CultureInvariant)]
    private static partial Regex ContainerIdPattern();

    // Go's time.RFC3339 ("2006-01-02T15:04:05Z07:00"), as the kubelet stamps its archive names
    [GeneratedRegex(@"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})\z", RegexOptions.CultureInvariant)]
    private static partial Regex Rfc3339();
}

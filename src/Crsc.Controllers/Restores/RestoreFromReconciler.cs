using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Schedules;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Restores;

public sealed record RestoreFromOptions
{
    /// <summary>This node: only pods scheduled here are restored by it.</summary>
    public required string NodeName { get; init; }

    /// <summary>The wait after a pass that found no source of the checkpoint (doubled after each such pass).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest wait between passes that found no source.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How often, at most, the pod's condition tells how far a fetch got.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// <c>spec.maxAttempts</c> of the Restores made: 1, because a pod's replacement (after a failed attempt) carries the
    /// annotation too and gets its own Restore; a failed attempt falls back to a cold start instead.
    /// </summary>
    public int MaxAttempts { get; init; } = 1;

    public void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(NodeName, nameof(NodeName));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(RetryDelay, TimeSpan.Zero, nameof(RetryDelay));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxRetryDelay, RetryDelay, nameof(MaxRetryDelay));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ProgressInterval, TimeSpan.Zero, nameof(ProgressInterval));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxAttempts, 1, nameof(MaxAttempts));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxAttempts, RestoreSpec.MaxMaxAttempts, nameof(MaxAttempts));
    }
}

/// <summary>
/// <c>crsc.io/restore-from: &lt;ContainerCheckpoint&gt;</c> on a pod, carried out by the node agent of the pod's node
/// (every node agent, not leader-only: it must work while the API server's leader is away after the pod was made). Keys
/// are this node's pods. Once such a pod runs the checkpoint's container and has no Restore yet, the agent checks the
/// annotation (a ContainerCheckpoint of the pod's namespace, Completed, with its Content, of a container of the pod)
/// and that this node's runtime can restore; brings the checkpoint's archive into this node's store through
/// <see cref="ICheckpointTransfer"/> when another node took it (a registry copy first, then the node that took it, then
/// nodes holding a copy; gone nodes are not asked) and records the copy on the Content; then makes a Restore of the pod
/// (<see cref="RestoreName"/>: one per pod UID, so a restart of the agent never makes a second) that the existing restore
/// machinery carries out. Every verdict is the pod's condition <see cref="PodConditions.RestoreFrom"/> (and an Event):
/// False with the reason when the pod keeps running cold, Unknown while fetching, True once the Restore is made. Nothing
/// here throws for a bad annotation; an unreachable checkpoint is tried again later, with a growing wait.
/// </summary>
public sealed partial class RestoreFromReconciler : IReconciler
{
    public const string ControllerName = "restore-from-node";

    // the reasons of the pod condition
    public const string InvalidAnnotation = "InvalidAnnotation";
    public const string CheckpointNotFound = "CheckpointNotFound";
    public const string CheckpointNotCompleted = "CheckpointNotCompleted";
    public const string CheckpointFailed = "CheckpointFailed";
    public const string ContentNotFound = "ContentNotFound";
    public const string NoSuchContainer = "NoSuchContainer";
    public const string ImageMismatch = "ImageMismatch";
    public const string RuntimeCannotRestore = "RuntimeCannotRestore";
    public const string Fetching = "Fetching";
    public const string CheckpointUnreachable = "CheckpointUnreachable";
    public const string CheckpointRefused = "CheckpointRefused";
    public const string RestoreRequested = "RestoreRequested";

    /// <summary>
    /// Sets restore-from up with <paramref name="manager"/> (node work, every instance): this node's pods, every
    /// ContainerCheckpoint and Content (the node agent keeps those informers anyway), the Restores, and the CheckpointNodes
    /// (this node's runtime; whether a source node is gone).
    /// </summary>
    public static ControllerSetup<RestoreFromReconciler> SetUp(ControllerManager manager, ICheckpointTransfer transfer,
        RestoreFromOptions options)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var pods = manager.Informers.PodsOnNode(options.NodeName);
        var checkpoints = manager.Informers.For(CrscResources.ContainerCheckpoints);
        var contents = manager.Informers.For(CrscResources.ContainerCheckpointContents);
        var restores = manager.Informers.For(CrscResources.Restores);
        var nodes = manager.Informers.For(CrscResources.CheckpointNodes);
        var reconciler = new RestoreFromReconciler(manager.Kube, pods, checkpoints, contents, restores, nodes, transfer, manager.Events,
            options, manager.Time, manager.Loggers.CreateLogger<RestoreFromReconciler>());
        var controller = manager.NewController(ControllerName, reconciler, workers: 2);
        controller.Watch(pods, p => AnnotationOf(p) is null ? [] : [EnqueueHandlers.KeyOf(p)]);
        controller.Watch(checkpoints, c => PodsNaming(pods, c.Metadata.Namespace, c.Metadata.Name));
        controller.Watch(contents, c => PodsNaming(pods, c.Spec.CheckpointRef.Namespace, c.Spec.CheckpointRef.Name));
        controller.Watch(restores, r => r.Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFromPod) is { Length: > 0 } pod
            ? [new ObjectKey(r.Metadata.Namespace, pod)] : []);
        // this node's runtime, and source nodes coming back; without the CRD (an older install) restores are tried as before
        controller.WatchWithoutWaiting(nodes, _ => pods.ByIndex(PodsByRestoreFrom, AnyIndexValue).Select(EnqueueHandlers.KeyOf));
        return new(manager.Add(controller, leaderOnly: false), reconciler);
    }

    /// <summary>Pods by <c>&lt;namespace&gt;/&lt;annotation value&gt;</c>, and all of them under <see cref="AnyIndexValue"/> (internal, not API).</summary>
    private const string PodsByRestoreFrom = "crsc.io/restore-from";
    private const string AnyIndexValue = "*";

    private readonly IKubeResourceClient<Pod> _podsApi;
    private readonly IKubeResourceClient<Restore> _restoresApi;
    private readonly IKubeResourceClient<ContainerCheckpointContent> _contentsApi;
    private readonly IKubeResourceClient<Node> _nodesApi;
    private readonly Informer<Pod> _pods;
    private readonly Informer<ContainerCheckpoint> _checkpoints;
    private readonly Informer<ContainerCheckpointContent> _contents;
    private readonly Informer<Restore> _restores;
    private readonly Informer<CheckpointNode> _nodes;
    private readonly ICheckpointTransfer _transfer;
    private readonly IEventRecorder _events;
    private readonly RestoreFromOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    // per pod UID: passes in a row that found no source (the wait before the next grows with it)
    /// <summary>
    /// Per pod UID: the failed fetch passes so far, when the next may run, and the Content's resourceVersion then. Its
    /// own condition writes (and any other change of the pod) enqueue the pod again at once; without this every one of
    /// them was a new pass, so a peer that refused was asked six times within a second and the wait jumped to its maximum.
    /// </summary>
    private readonly ConcurrentDictionary<string, (int Passes, DateTimeOffset NextTry, string? ContentVersion)> _failedPasses = new(StringComparer.Ordinal);
    // per pod UID: the Restore made, until the Restore cache (or the pod's condition) shows it
    private readonly ConcurrentDictionary<string, string> _made = new(StringComparer.Ordinal);

    /// <param name="pods">the pods of this node (<see cref="SharedInformers.PodsOnNode"/>)</param>
    /// <param name="nodes">every CheckpointNode (this node's runtime, and whether a source node is gone)</param>
    public RestoreFromReconciler(
        IKubeApi kube,
        Informer<Pod> pods,
        Informer<ContainerCheckpoint> checkpoints,
        Informer<ContainerCheckpointContent> contents,
        Informer<Restore> restores,
        Informer<CheckpointNode> nodes,
        ICheckpointTransfer transfer,
        IEventRecorder events,
        RestoreFromOptions options,
        TimeProvider time,
        ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentNullException.ThrowIfNull(transfer);
        options.Validate();
        _podsApi = kube.Resource(Resources.Pods);
        _restoresApi = kube.Resource(CrscResources.Restores);
        _contentsApi = kube.Resource(CrscResources.ContainerCheckpointContents);
        _nodesApi = kube.Resource(Resources.Nodes);
        _pods = pods;
        _checkpoints = checkpoints;
        _contents = contents;
        _restores = restores;
        _nodes = nodes;
        _transfer = transfer;
        _events = events;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        pods.TryAddIndexer(PodsByRestoreFrom, p => AnnotationOf(p) is { } value ? [$"{p.Metadata.Namespace}/{value}", AnyIndexValue] : []);
    }

    private static string? AnnotationOf(Pod pod) => pod.Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFrom);

    private static IEnumerable<ObjectKey> PodsNaming(Informer<Pod> pods, string? ns, string? checkpoint) =>
        string.IsNullOrEmpty(ns) || string.IsNullOrEmpty(checkpoint)
            ? []
            : pods.ByIndex(PodsByRestoreFrom, $"{ns}/{checkpoint}").Select(EnqueueHandlers.KeyOf);

    /// <summary>
    /// The Restore made for the pod of <paramref name="podUid"/>: <c>&lt;pod name&gt;-from-&lt;8 hex of the UID's
    /// SHA-256&gt;</c>, the pod's name cut (at a letter or digit) so that it fits 253 characters. A pod made again under
    /// the same name has another UID, so it gets a Restore of its own.
    /// </summary>
    public static string RestoreName(string podName, string podUid)
    {
        ArgumentException.ThrowIfNullOrEmpty(podName);
        var tail = "-from-" + ScheduleNames.ShortHash(podUid);
        var keep = Math.Min(podName.Length, ScheduleNames.MaxNameLength - tail.Length);
        return podName[..keep].TrimEnd('-', '.') + tail;
    }

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", RegexOptions.CultureInvariant)]
    private static partial Regex DnsSubdomain();

    private static bool IsName(string value) =>
        value.Length is > 0 and <= ScheduleNames.MaxNameLength && !value.EndsWith('\n') && DnsSubdomain().IsMatch(value);

    public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var pod = _pods.Get(key);
        if (pod is null || !RestorePods.IsLive(pod) || pod.Spec.NodeName != _options.NodeName || AnnotationOf(pod) is not { } value
            || pod.Metadata.Uid is not { Length: > 0 } uid)
            return ReconcileResult.Done;
        var ns = pod.Metadata.Namespace ?? "";
        var podName = pod.Metadata.Name!;

        // done already: the condition says so, or the Restore is there (made by this agent before a restart, or just now)
        if (Condition(pod) is { Status: "True", Reason: RestoreRequested }) { _made.TryRemove(uid, out _); return ReconcileResult.Done; }
        var restoreName = RestoreName(podName, uid);
        if (_made.ContainsKey(uid) || _restores.Get(new ObjectKey(ns, restoreName)) is { } r
            && r.Metadata.Labels?.GetValueOrDefault(Labels.RestoreFromPodUid) == uid)
        {
            var restore = _restores.Get(new ObjectKey(ns, restoreName));
            await RequestedAsync(pod, restoreName, restore?.Spec.CheckpointName ?? value, ct).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        // what the annotation names: each fault is the pod's condition; a change of the pod or of the checkpoint wakes it
        var check = Check(pod, value);
        if (check.Problem is { } problem)
        {
            await NotRestoredAsync(pod, problem.Reason, problem.Message, ct).ConfigureAwait(false);
            return ReconcileResult.Done;
        }
        var (checkpoint, content, container) = check.Found!.Value;
        if (RestorePods.StatusOf(pod, container)?.State?.Running is null || !RestorePods.IsRunning(pod))
            return ReconcileResult.Done; // not yet: its status change wakes it

        if (_nodes.Get(ObjectKey.Cluster(_options.NodeName)) is { Status: { } self } node
            && self.Restore.State is CapabilityState.DisabledByConfig or CapabilityState.NotSupported)
        {
            var runtime = self.RuntimeSummary ?? "its container runtime";
            var how = self.Restore.State == CapabilityState.DisabledByConfig ? "has restore turned off" : "does not support it";
            var fix = self.Restore.Fix is { Length: > 0 } f ? $"; to enable it: {f}" : "";
            await NotRestoredAsync(pod, RuntimeCannotRestore,
                $"pod {podName} is not restored from checkpoint {value}: node {node.Metadata.Name} cannot restore, {runtime} {how} ({self.Restore.Reason}){fix}; the pod keeps running without the checkpoint's state",
                ct).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        if (!RestoreFromSources.HeldBy(content, _options.NodeName))
        {
            var fetched = await FetchAsync(pod, checkpoint, content, ct).ConfigureAwait(false);
            if (fetched is { } wait) return wait;
        }
        _failedPasses.TryRemove(uid, out _);
        await MakeRestoreAsync(pod, restoreName, checkpoint, container, ct).ConfigureAwait(false);
        return ReconcileResult.Done;
    }

    private readonly record struct Problem(string Reason, string Message);

    private readonly record struct Checked(Problem? Problem, (ContainerCheckpoint, ContainerCheckpointContent, string)? Found);

    /// <summary>The checkpoint the annotation names, its Content and container; or what is wrong with them.</summary>
    private Checked Check(Pod pod, string value)
    {
        var ns = pod.Metadata.Namespace ?? "";
        var subject = $"pod {pod.Metadata.Name} is not restored: its annotation {Annotations.RestoreFrom}: \"{value}\"";
        const string cold = "; the pod keeps running without the checkpoint's state";
        static Checked No(string reason, string message) => new(new Problem(reason, message), null);
        if (!IsName(value))
            return No(InvalidAnnotation,
                $"{subject} is not the name of a ContainerCheckpoint (a lower-case RFC 1123 subdomain of at most {ScheduleNames.MaxNameLength} characters){cold}");
        var checkpoint = _checkpoints.Get(new ObjectKey(ns, value));
        if (checkpoint is null)
            return No(CheckpointNotFound, $"{subject} names no ContainerCheckpoint: there is no {ns}/{value} (a checkpoint is restored only into a pod of its own namespace){cold}");
        switch (checkpoint.Status?.Phase)
        {
            case ContainerCheckpointPhase.Failed:
                return No(CheckpointFailed, $"{subject} names a checkpoint that failed: {checkpoint.Status.Message}{cold}");
            case ContainerCheckpointPhase.Completed when checkpoint.Status.ContentName is { Length: > 0 }:
                break;
            case ContainerCheckpointPhase.Completed:
                return No(CheckpointNotCompleted, $"{subject} names checkpoint {ns}/{value}, which is Completed but records no archive (no status.contentName){cold}");
            default:
                return No(CheckpointNotCompleted,
                    $"{subject} names checkpoint {ns}/{value}, which is not finished (phase {checkpoint.Status?.Phase?.ToString() ?? "Pending"}); waiting for it");
        }
        var container = checkpoint.Spec.Container;
        if (RestorePods.ContainerOf(pod, container) is null)
            return No(NoSuchContainer,
                $"{subject} names a checkpoint of container {container}, and the pod has no container {container} (it has {string.Join(", ", pod.Spec.Containers.Select(c => c.Name))}){cold}");
        var content = _contents.Get(ObjectKey.Cluster(checkpoint.Status.ContentName));
        if (content is null || content.Spec.CheckpointRef.Namespace != ns || content.Spec.CheckpointRef.Name != value
            || (content.Spec.CheckpointRef.Uid is { Length: > 0 } bound && bound != checkpoint.Metadata.Uid))
            return No(ContentNotFound,
                $"{subject} names checkpoint {ns}/{value}, whose ContainerCheckpointContent {checkpoint.Status.ContentName} " +
                $"{(content is null ? "does not exist" : "belongs to another checkpoint")}{cold}");
        if (content.Spec.Source.Image is { Length: > 0 } taken && RestorePods.OriginalImageOf(pod, container) is { } runs && !ImageNames.Same(taken, runs))
            return No(ImageMismatch,
                $"{subject} names a checkpoint taken from image {taken}, and container {container} runs {runs} (a checkpoint is restored only into the image it was taken from){cold}");
        return new(null, (checkpoint, content, container));
    }

    // ---- fetch ----

    /// <summary>
    /// Brings the archive into this node's store, trying each source once; on success records the copy on the Content
    /// and returns null. Otherwise the pod's condition names every source and why it gave nothing, and the result is the
    /// wait before the next pass.
    /// </summary>
    private async Task<ReconcileResult?> FetchAsync(Pod pod, ContainerCheckpoint checkpoint, ContainerCheckpointContent content,
        CancellationToken ct)
    {
        var ns = pod.Metadata.Namespace ?? "";
        var name = checkpoint.Metadata.Name!;
        // a pass failed not long ago and nothing it looked at changed (a new copy, a node's return changes the Content or
        // enqueues through the CheckpointNode): wait out the rest of its delay instead of asking the sources again
        if (_failedPasses.TryGetValue(pod.Metadata.Uid!, out var failed) && failed.ContentVersion == content.Metadata.ResourceVersion
            && failed.NextTry - _time.GetUtcNow() is { } left && left > TimeSpan.Zero)
            return ReconcileResult.RequeueAfter(left);
        var gone = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var node in new[] { content.Spec.Node }.Concat((content.Status?.Copies ?? []).Select(c => c.Node ?? ""))
                     .Where(n => n.Length > 0 && n != _options.NodeName).Distinct(StringComparer.Ordinal))
            gone[node] = await WhyGoneAsync(node, ct).ConfigureAwait(false);
        var plan = RestoreFromSources.For(content, _options.NodeName, n => gone.GetValueOrDefault(n));
        var archiveId = content.Metadata.Annotations?.GetValueOrDefault(Annotations.ArchiveId);

        var outcomes = new List<string>(plan.LeftOut);
        var refused = false;
        foreach (var source in plan.Sources)
        {
            Log.Fetching(_logger, ns, pod.Metadata.Name!, name, source.ImageReference, _options.NodeName);
            await ProgressAsync(pod, name, source, 0, content.Spec.SizeBytes, ct).ConfigureAwait(false);
            try
            {
                var result = await FetchFromAsync(pod, name, source, archiveId, content.Spec.SizeBytes, ct).ConfigureAwait(false);
                Log.Fetched(_logger, ns, pod.Metadata.Name!, name, source.ImageReference, result.LocalImageReference, result.SizeBytes,
                    result.AlreadyPresent);
                _events.Normal(pod, "CheckpointFetched", result.AlreadyPresent
                    ? $"checkpoint {name} is in the store of node {_options.NodeName} already ({result.LocalImageReference})"
                    : string.Create(CultureInfo.InvariantCulture,
                        $"fetched checkpoint {name} ({result.SizeBytes} bytes) from {source.Describe()} into the store of node {_options.NodeName}: {result.LocalImageReference}"));
                await RecordCopyAsync(content, result.LocalImageReference, ct).ConfigureAwait(false);
                return null;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                var wasRefused = e is CheckpointTransferException { Refused: true };
                refused |= wasRefused;
                Log.FetchFailed(_logger, e, ns, pod.Metadata.Name!, name, source.ImageReference, wasRefused);
                outcomes.Add(wasRefused
                    ? $"what {source.Describe()} sent was refused: {e.Message}"
                    : $"{source.Describe()} answered: {e.Message}");
            }
        }

        var passes = (_failedPasses.TryGetValue(pod.Metadata.Uid!, out var before) ? before.Passes : 0) + 1;
        var wait = RetryDelay(passes);
        _failedPasses[pod.Metadata.Uid!] = (passes, _time.GetUtcNow() + wait, content.Metadata.ResourceVersion);
        var holder = content.Spec.Node;
        var reason = refused ? CheckpointRefused : CheckpointUnreachable;
        var message = $"pod {pod.Metadata.Name} is not restored yet: checkpoint {ns}/{name} (held by node {holder}) cannot be fetched to node {_options.NodeName}: "
                      + string.Join("; ", outcomes)
                      + (plan.HasRegistryCopy ? "" : "; it has no registry copy")
                      + $"; the pod keeps running without the checkpoint's state, trying again in {Crsc.Api.GoDuration.Format(wait)}";
        Log.Unreachable(_logger, ns, pod.Metadata.Name!, name, reason, message);
        await NotRestoredAsync(pod, reason, message, ct).ConfigureAwait(false);
        return ReconcileResult.RequeueAfter(wait);
    }

    private TimeSpan RetryDelay(int passes)
    {
        var delay = _options.RetryDelay;
        for (var i = 1; i < passes && delay < _options.MaxRetryDelay; i++) delay *= 2;
        return delay < _options.MaxRetryDelay ? delay : _options.MaxRetryDelay;
    }

    /// <summary>One transfer, the pod's condition told the bytes received at most every progress interval.</summary>
    private async Task<CheckpointTransferResult> FetchFromAsync(Pod pod, string checkpoint, FetchSource source, string? archiveId, long size,
        CancellationToken ct)
    {
        var progress = new LatestValue();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var reporting = ReportProgressAsync(pod, checkpoint, source, progress, size, stop.Token);
        try
        {
            return await _transfer.FetchAsync(new CheckpointTransferRequest(source.ImageReference, source.FromPeer, archiveId), progress, ct)
                .ConfigureAwait(false);
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await reporting.ConfigureAwait(false);
        }
    }

    private async Task ReportProgressAsync(Pod pod, string checkpoint, FetchSource source, LatestValue progress, long size,
        CancellationToken ct)
    {
        var told = 0L;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(_options.ProgressInterval, _time, ct).ConfigureAwait(false);
                var bytes = progress.Value;
                if (bytes == told) continue;
                told = bytes;
                await ProgressAsync(pod, checkpoint, source, bytes, size, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e)
            {
                // the fetch goes on; the condition is told again at the next interval
                Log.ConditionNotWritten(_logger, e, pod.Metadata.Namespace ?? "", pod.Metadata.Name!);
            }
        }
    }

    private Task ProgressAsync(Pod pod, string checkpoint, FetchSource source, long bytes, long size, CancellationToken ct) =>
        SetConditionAsync(pod, "Unknown", Fetching, string.Create(CultureInfo.InvariantCulture,
            $"fetching checkpoint {checkpoint} from {source.Describe()} to node {_options.NodeName}: {bytes} of {size} bytes"), ct);

    /// <summary>The last value reported (Progress&lt;T&gt; would post each report to the thread pool).</summary>
    private sealed class LatestValue : IProgress<long>
    {
        private long _value;
        public long Value => Interlocked.Read(ref _value);
        public void Report(long value) => Interlocked.Exchange(ref _value, value);
    }

    /// <summary>
    /// Why <paramref name="node"/> cannot serve a checkpoint: it has no CheckpointNode (crsc does not run there), its Node
    /// is gone, or its Node is not Ready; null when it is there (or when that cannot be told: then it is asked).
    /// </summary>
    private async Task<string?> WhyGoneAsync(string node, CancellationToken ct)
    {
        if (_nodes.HasSynced && _nodes.Get(ObjectKey.Cluster(node)) is null) return "no CheckpointNode: crsc does not run there";
        try
        {
            var n = await _nodesApi.GetAsync(null, node, ct).ConfigureAwait(false);
            var ready = n.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");
            return ready is null || ready.Status == "True"
                ? null
                : $"its Node is not Ready: {ready.Status}{(ready.Reason is { Length: > 0 } r ? $", {r}" : "")}";
        }
        catch (NotFoundException)
        {
            return "its Node no longer exists";
        }
        catch (Exception e) when (e is KubeApiException or KubeUnavailableException)
        {
            return null; // not known: it is asked
        }
    }

    /// <summary>Adds this node's copy to the Content's <c>status.copies</c> (a 409 reads it again and adds it there).</summary>
    private async Task RecordCopyAsync(ContainerCheckpointContent content, string image, CancellationToken ct)
    {
        var at = KubeTime.Truncate(_time.GetUtcNow());
        await StatusWriter.UpdateStatusAsync(_contentsApi, content, c => RestoreFromSources.RecordCopy(c, _options.NodeName, image, at), ct)
            .ConfigureAwait(false);
    }

    // ---- the Restore ----

    private async Task MakeRestoreAsync(Pod pod, string restoreName, ContainerCheckpoint checkpoint, string container, CancellationToken ct)
    {
        var ns = pod.Metadata.Namespace!;
        var restore = new Restore
        {
            Metadata = new ObjectMeta
            {
                Namespace = ns,
                Name = restoreName,
                Labels = new() { [Labels.RestoreFromPodUid] = pod.Metadata.Uid! },
                Annotations = new() { [Annotations.RestoreFromPod] = pod.Metadata.Name! },
                // goes with the pod; not blocking its deletion (that would need pods/finalizers)
                OwnerReferences = [new OwnerReference { ApiVersion = "v1", Kind = "Pod", Name = pod.Metadata.Name!, Uid = pod.Metadata.Uid! }],
            },
            Spec = new RestoreSpec
            {
                Target = new RestoreTarget { Kind = RestoreTargetKind.Pod, Name = pod.Metadata.Name! },
                Container = container,
                CheckpointName = checkpoint.Metadata.Name,
                Fallback = RestoreFallback.ColdStart,
                MaxAttempts = _options.MaxAttempts,
            },
        };
        try
        {
            await _restoresApi.CreateAsync(restore, ct).ConfigureAwait(false);
            Log.RestoreMade(_logger, ns, pod.Metadata.Name!, restoreName, checkpoint.Metadata.Name!);
        }
        catch (AlreadyExistsException)
        {
            // made before (the cache had not shown it)
        }
        _made[pod.Metadata.Uid!] = restoreName;
        await RequestedAsync(pod, restoreName, checkpoint.Metadata.Name!, ct).ConfigureAwait(false);
    }

    private async Task RequestedAsync(Pod pod, string restoreName, string checkpoint, CancellationToken ct)
    {
        var message = $"Restore {restoreName} restores pod {pod.Metadata.Name} in place from checkpoint {checkpoint} on node {_options.NodeName}";
        if (await SetConditionAsync(pod, "True", RestoreRequested, message, ct).ConfigureAwait(false))
            _events.Normal(pod, RestoreRequested, message);
    }

    // ---- the pod's condition ----

    private static PodCondition? Condition(Pod pod) => pod.Status?.Conditions?.FirstOrDefault(c => c.Type == PodConditions.RestoreFrom);

    /// <summary>The pod keeps running cold (for now): condition False, and a Warning Event when the verdict is new.</summary>
    private async Task NotRestoredAsync(Pod pod, string reason, string message, CancellationToken ct)
    {
        var before = Condition(pod);
        var written = await SetConditionAsync(pod, "False", reason, message, ct).ConfigureAwait(false);
        if (written && (before?.Status != "False" || before.Reason != reason))
        {
            Log.NotRestored(_logger, pod.Metadata.Namespace ?? "", pod.Metadata.Name!, reason, message);
            _events.Warning(pod, reason, message);
        }
    }

    /// <summary>
    /// Writes the pod's <see cref="PodConditions.RestoreFrom"/> condition: a strategic merge patch of the status
    /// subresource, which merges <c>status.conditions</c> by type (the kubelet's own conditions, and its writes in
    /// between, are kept: no resourceVersion needed), on the pod's UID (a pod made again under the name is never
    /// written). False when the condition said so already, or the pod is gone or replaced.
    /// </summary>
    private async Task<bool> SetConditionAsync(Pod pod, string status, string reason, string message, CancellationToken ct)
    {
        var current = _pods.Get(pod.Metadata.Key) is { } cached && cached.Metadata.Uid == pod.Metadata.Uid ? cached : pod;
        var existing = Condition(current);
        if (existing is not null && existing.Status == status && existing.Reason == reason && existing.Message == message) return false;
        var now = KubeTime.Truncate(_time.GetUtcNow());
        var since = existing?.Status == status && existing.LastTransitionTime is { } t ? t : now;
        var patch = new JsonObject
        {
            ["metadata"] = new JsonObject { ["uid"] = pod.Metadata.Uid },
            ["status"] = new JsonObject
            {
                ["conditions"] = new JsonArray(new JsonObject
                {
                    ["type"] = PodConditions.RestoreFrom,
                    ["status"] = status,
                    ["reason"] = reason,
                    ["message"] = message,
                    ["lastTransitionTime"] = KubeTime.FormatTime(since),
                }),
            },
        };
        try
        {
            await _podsApi.PatchAsync(pod.Metadata.Namespace, pod.Metadata.Name!, PatchType.StrategicMerge, patch.ToJsonString(), ct, status: true)
                .ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is NotFoundException or ConflictException or InvalidException)
        {
            return false; // gone, or another pod of that name now (its UID differs)
        }
    }
}

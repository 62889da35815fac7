using System.Collections.Concurrent;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Runtime;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Restores;

public sealed record CheckpointImageWarmerOptions
{
    /// <summary>This node: only checkpoints whose archive is here are pulled.</summary>
    public required string NodeName { get; init; }

    /// <summary>The pull credential of each image (crsc's image endpoint answers only callers with a token); null: none.</summary>
    public IPullCredentials? PullCredentials { get; init; }

    /// <summary>How long one pull may take.</summary>
    public TimeSpan PullTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Wait before a failed pull is tried again.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Pulls each container's newest checkpoint image into this node's runtime as soon as the checkpoint completes, so a
/// restore after a failure finds it there (its node reports <c>ImagesReady</c> at once instead of pulling then). One
/// image per checkpointed container (namespace, pod, container) of this node: when a newer checkpoint's image is in,
/// the one this warmer pulled before for that container is removed from the runtime — never an image it did not pull
/// itself, and never one a pod on this node runs or a Restore still names. Its memory of what it pulled is this
/// process's: after a restart it removes nothing it pulled before (the kubelet's image garbage collection does).
/// </summary>
public sealed partial class CheckpointImageWarmer : IReconciler
{
    public const string ControllerName = "checkpoint-image-warmer";

    /// <summary>This node's Contents with an image, by <c>&lt;namespace&gt;/&lt;pod&gt;/&lt;container&gt;</c> (internal, not API).</summary>
    private const string BySourceIndex = "crsc.io/warm-source";

    private readonly Informer<ContainerCheckpointContent> _contents;
    private readonly Informer<Pod> _pods;
    private readonly Informer<Restore> _restores;
    private readonly IContainerRuntime _runtime;
    private readonly CheckpointImageWarmerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    // per source key: the image this warmer pulled and keeps
    private readonly ConcurrentDictionary<string, string> _pulled = new(StringComparer.Ordinal);
    // images this warmer pulled and no longer keeps, with their source key: removed once nothing uses them
    private readonly ConcurrentDictionary<string, string> _retired = new(StringComparer.Ordinal);

    public static ControllerSetup<CheckpointImageWarmer> SetUp(ControllerManager manager, IContainerRuntime runtime, CheckpointImageWarmerOptions options)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(options);
        var contents = manager.Informers.For(CrscResources.ContainerCheckpointContents);
        var pods = manager.Informers.PodsOnNode(options.NodeName);
        var restores = manager.Informers.For(CrscResources.Restores);
        var warmer = new CheckpointImageWarmer(contents, pods, restores, runtime, options, manager.Time,
            manager.Loggers.CreateLogger<CheckpointImageWarmer>());
        var controller = manager.NewController(ControllerName, warmer, workers: 1);
        controller.Watch(contents, c => warmer.SourceOf(c) is { } key ? [key] : []);
        return new(manager.Add(controller, leaderOnly: false), warmer);
    }

    /// <param name="pods">the pods of this node (<see cref="SharedInformers.PodsOnNode"/>)</param>
    public CheckpointImageWarmer(Informer<ContainerCheckpointContent> contents, Informer<Pod> pods, Informer<Restore> restores,
        IContainerRuntime runtime, CheckpointImageWarmerOptions options, TimeProvider time, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(options.NodeName);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.PullTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.RetryDelay, TimeSpan.Zero);
        _contents = contents;
        _pods = pods;
        _restores = restores;
        _runtime = runtime;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        contents.TryAddIndexer(BySourceIndex, c => SourceOf(c) is { } k ? [$"{k.Namespace}/{k.Name}"] : []);
    }

    /// <summary>The key of the container a Content of this node with an image checkpointed: (namespace, <c>pod/container</c>).</summary>
    private ObjectKey? SourceOf(ContainerCheckpointContent c)
    {
        var s = c.Spec;
        if (s.Node != _options.NodeName || string.IsNullOrEmpty(s.ImageReference) || c.Metadata.DeletionTimestamp is not null) return null;
        if (s.Source is not { Namespace.Length: > 0, Pod.Length: > 0, Container.Length: > 0 } src) return null;
        return new ObjectKey(src.Namespace, $"{src.Pod}/{src.Container}");
    }

    public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var source = $"{key.Namespace}/{key.Name}";
        var newest = _contents.ByIndex(BySourceIndex, source)
            .OrderByDescending(c => c.Metadata.CreationTimestamp ?? DateTimeOffset.MinValue)
            .ThenByDescending(c => c.Metadata.Name, StringComparer.Ordinal)
            .FirstOrDefault();
        var image = newest?.Spec.ImageReference;
        if (image is not null && _pulled.GetValueOrDefault(source) != image)
        {
            try
            {
                if (await _runtime.ImageStatusAsync(image, ct).ConfigureAwait(false) is null)
                {
                    await PullAsync(newest!, image, ct).ConfigureAwait(false);
                    Retire(source);
                    _pulled[source] = image;
                    Log.Pulled(_logger, image, source);
                }
                else
                {
                    // there already (a restore pulled it, or an earlier crsc): not this warmer's to remove, ever
                    Retire(source);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e) when (e is ContainerRuntimeException or TimeoutException)
            {
                Log.PullFailed(_logger, image, source, e.Message);
                return ReconcileResult.RequeueAfter(_options.RetryDelay);
            }
        }
        // every checkpoint of that container gone: so is the reason to keep its image
        if (newest is null) Retire(source);

        // what this warmer pulled and no longer keeps goes, unless something uses it (then it is tried again later)
        var waiting = false;
        foreach (var (old, of) in _retired)
        {
            if (of != source) continue;
            if (await RemoveAsync(source, old, ct).ConfigureAwait(false)) _retired.TryRemove(old, out _);
            else waiting = true;
        }
        return waiting ? ReconcileResult.RequeueAfter(_options.RetryDelay) : ReconcileResult.Done;
    }

    /// <summary>The image this warmer keeps for <paramref name="source"/> becomes one to remove.</summary>
    private void Retire(string source)
    {
        if (_pulled.TryRemove(source, out var old)) _retired[old] = source;
    }

    private Task PullAsync(ContainerCheckpointContent content, string image, CancellationToken ct)
    {
        var src = content.Spec.Source!;
        return ImagePulls.PullAsync(_runtime, image, _options.PullCredentials?.For(image, src.Namespace!),
            new PodIdentity(src.Namespace!, src.Pod!, src.PodUid ?? ""), _options.PullTimeout, _time, ct);
    }

    /// <summary>Removes an image this warmer pulled, unless a pod of this node runs it or a Restore names it; true when removed.</summary>
    private async Task<bool> RemoveAsync(string source, string image, CancellationToken ct)
    {
        if (_pods.List().Any(p => p.Spec.Containers.Any(c => c.Image == image))
            || _restores.List().Any(r => r.Status?.Image == image && !RestoreReconciler.IsTerminal(r)))
        {
            Log.KeptInUse(_logger, image, source);
            return false;
        }
        try
        {
            await _runtime.RemoveImageAsync(image, ct).ConfigureAwait(false);
            Log.Removed(_logger, image, source);
            return true;
        }
        catch (ContainerRuntimeException e)
        {
            Log.RemoveFailed(_logger, image, source, e.Message);
            return false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(21701, LogLevel.Information, "Pulled checkpoint image {Image} of {Source} ahead of any restore")]
        public static partial void Pulled(ILogger logger, string image, string source);

        [LoggerMessage(21702, LogLevel.Warning, "Pulling checkpoint image {Image} of {Source} ahead of a restore failed (tried again later): {Message}")]
        public static partial void PullFailed(ILogger logger, string image, string source, string message);

        [LoggerMessage(21703, LogLevel.Information, "Removed checkpoint image {Image} of {Source}: a newer checkpoint's image replaces it")]
        public static partial void Removed(ILogger logger, string image, string source);

        [LoggerMessage(21704, LogLevel.Information, "Kept checkpoint image {Image} of {Source}: a pod or a Restore uses it")]
        public static partial void KeptInUse(ILogger logger, string image, string source);

        [LoggerMessage(21705, LogLevel.Warning, "Removing checkpoint image {Image} of {Source} failed: {Message}")]
        public static partial void RemoveFailed(ILogger logger, string image, string source, string message);
    }
}

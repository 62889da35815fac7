using System.Collections.Concurrent;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Reconciling;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Crsc.Controllers.Hosting;

namespace Crsc.Controllers.Presence;

public sealed record AbandonedCheckpointOptions
{
    /// <summary>crsc's namespace, where the node agents' presence Leases are (<see cref="NodeLeases"/>).</summary>
    public required string Namespace { get; init; }

    /// <summary>
    /// How long a node's agent may go without renewing its Lease, while the node itself is still there, before its
    /// deleted checkpoints are let go (configuration key <c>nodeAgent.absentAfter</c>).
    /// </summary>
    public TimeSpan AgentAbsentAfter { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// When the Node object is gone: how long its agent's Lease must stay unrenewed first, unless the Lease itself
    /// says (its <c>leaseDurationSeconds</c>). A node deleted from the cluster while crsc still runs there keeps its
    /// finalizers: that agent deletes the archives itself.
    /// </summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How often a deleted checkpoint whose agent is present is looked at again (its node may go meanwhile).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary>
/// Lets go of deleted <see cref="ContainerCheckpoint"/>s whose node agent is gone (leader-only). The
/// <see cref="Finalizers.Archive"/> keeps a checkpoint until the agent of its node
/// (<c>status.node</c>) has deleted its archive; with that agent gone for good, the object, and the namespace it is
/// in, would stay Terminating forever. This reconciler removes the finalizer of a checkpoint being deleted when
/// <list type="bullet">
/// <item>its node no longer exists as a Node object, and its agent's Lease has not been renewed for the Lease's
/// duration (a node object deleted while crsc still runs there is left to that agent), or</item>
/// <item>its agent's Lease has not been renewed for <see cref="AbandonedCheckpointOptions.AgentAbsentAfter"/>
/// (crsc stopped or uninstalled on a node that is still there).</item>
/// </list>
/// and records a Warning Event naming the archive left on that node. It never touches a checkpoint whose agent
/// renews its Lease: that agent deletes the archive and removes the finalizer itself.
/// </summary>
/// <remarks>
/// "Not renewed for" is measured on this process's clock, from when it saw the Lease last change (or saw it
/// missing), never by comparing the agent's timestamps with ours: clocks of different nodes disagree. So a new
/// leader waits the full time once before it lets anything go: it errs on the side of keeping the finalizer.
/// </remarks>
public sealed class AbandonedCheckpointReconciler : IReconciler
{
    public const string ControllerName = "containercheckpoint-abandoned";

    /// <summary>
    /// Sets the release of abandoned checkpoints up with <paramref name="manager"/> (leader-only): a ContainerCheckpoint
    /// is reconciled when it changes. Nodes and Leases are read with a GET when a deleted checkpoint is looked at,
    /// which is rare: no cluster-wide cache of them.
    /// </summary>
    public static ControllerSetup<AbandonedCheckpointReconciler> SetUp(ControllerManager manager, AbandonedCheckpointOptions options)
    {
        ArgumentNullException.ThrowIfNull(manager);
        var checkpoints = manager.Informers.For(CrscResources.ContainerCheckpoints);
        var reconciler = new AbandonedCheckpointReconciler(manager.Kube, checkpoints, manager.Events, options, manager.Time,
            manager.Loggers.CreateLogger<AbandonedCheckpointReconciler>());
        var controller = manager.NewController(ControllerName, reconciler).Watch(checkpoints);
        return new(manager.Add(controller, leaderOnly: true), reconciler);
    }

    /// <summary>The Event reason on a checkpoint let go without deleting its archive.</summary>
    public const string ArchiveAbandonedReason = "ArchiveAbandoned";

    private readonly IKubeResourceClient<ContainerCheckpoint> _checkpointsApi;
    private readonly IKubeResourceClient<ContainerCheckpointContent> _contentsApi;
    private readonly IKubeResourceClient<Node> _nodesApi;
    private readonly IKubeResourceClient<Lease> _leasesApi;
    private readonly Informer<ContainerCheckpoint> _checkpoints;
    private readonly IEventRecorder _events;
    private readonly AbandonedCheckpointOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    // per node: the resourceVersion of its Lease as last seen (null: no Lease) and when it was first seen so
    private readonly ConcurrentDictionary<string, (string? Version, DateTimeOffset Since)> _seen = new(StringComparer.Ordinal);

    public AbandonedCheckpointReconciler(
        IKubeApi kube,
        Informer<ContainerCheckpoint> checkpoints,
        IEventRecorder events,
        AbandonedCheckpointOptions options,
        TimeProvider time,
        ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Namespace);
        _checkpointsApi = kube.Resource(CrscResources.ContainerCheckpoints);
        _contentsApi = kube.Resource(CrscResources.ContainerCheckpointContents);
        _nodesApi = kube.Resource(Resources.Nodes);
        _leasesApi = kube.Resource(Resources.Leases);
        _checkpoints = checkpoints;
        _events = events;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
    }

    public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var ckpt = _checkpoints.Get(key);
        if (ckpt?.Metadata.DeletionTimestamp is null || !HasFinalizer(ckpt)) return ReconcileResult.Done;
        // never claimed by a node: every node agent lets those go at once
        if (ckpt.Status?.Node is not { Length: > 0 } node) return ReconcileResult.Done;

        var nodeExists = await NodeExistsAsync(node, ct).ConfigureAwait(false);
        var lease = await GetLeaseAsync(node, ct).ConfigureAwait(false);
        var unrenewedFor = Observe(node, lease);
        var limit = nodeExists
            ? _options.AgentAbsentAfter
            : lease?.Spec.LeaseDurationSeconds is > 0 and var seconds ? TimeSpan.FromSeconds(seconds) : _options.LeaseDuration;
        if (unrenewedFor < limit)
            return ReconcileResult.RequeueAfter(Min(_options.PollInterval, limit - unrenewedFor));

        var content = await GetContentAsync(ckpt, ct).ConfigureAwait(false);
        if (!await RemoveFinalizerAsync(ckpt, ct).ConfigureAwait(false)) return ReconcileResult.Done;

        var why = nodeExists
            ? $"crsc on node {node} has not renewed its Lease {_options.Namespace}/{NodeLeases.NameFor(node)} for {Duration(unrenewedFor)} " +
              $"(nodeAgent.absentAfter is {Duration(_options.AgentAbsentAfter)})"
            : $"node {node} no longer exists";
        var archive = content is null
            ? $"no ContainerCheckpointContent records an archive of it; if node {node} stored one, it is left there"
            : $"its archive {content.Spec.Path} ({content.Spec.SizeBytes} bytes, {content.Spec.Digest}; ContainerCheckpointContent {content.Metadata.Name}) " +
              $"is left on node {node}: delete it there by hand";
        _events.Warning(ckpt, ArchiveAbandonedReason, $"{why}: removed finalizer {Finalizers.Archive} so that the deletion can finish; {archive}");
        Log.Abandoned(_logger, key.Namespace ?? "", key.Name, node, why, content?.Spec.Path ?? "(unknown)");
        return ReconcileResult.Done;
    }

    /// <summary>
    /// How long the Lease of <paramref name="node"/> has stayed as it is (or missing), by this process's clock: zero when
    /// it changed since the last look, or on the first look.
    /// </summary>
    private TimeSpan Observe(string node, Lease? lease)
    {
        var now = _time.GetUtcNow();
        var version = lease?.Metadata.ResourceVersion;
        var seen = _seen.AddOrUpdate(node, _ => (version, now), (_, old) => old.Version == version ? old : (version, now));
        return now - seen.Since;
    }

    private async Task<bool> NodeExistsAsync(string node, CancellationToken ct)
    {
        try
        {
            await _nodesApi.GetAsync(null, node, ct).ConfigureAwait(false);
            return true;
        }
        catch (NotFoundException)
        {
            return false;
        }
    }

    private async Task<Lease?> GetLeaseAsync(string node, CancellationToken ct)
    {
        try
        {
            return await _leasesApi.GetAsync(_options.Namespace, NodeLeases.NameFor(node), ct).ConfigureAwait(false);
        }
        catch (NotFoundException)
        {
            return null;
        }
    }

    /// <summary>The checkpoint's Content (from its status, else by its UID's name), for the Event; null when there is none.</summary>
    private async Task<ContainerCheckpointContent?> GetContentAsync(ContainerCheckpoint ckpt, CancellationToken ct)
    {
        var uid = ckpt.Metadata.Uid ?? "";
        var name = ckpt.Status?.ContentName is { Length: > 0 } n ? n : ContainerCheckpointReconciler.ContentNameFor(uid);
        try
        {
            var content = await _contentsApi.GetAsync(null, name, ct).ConfigureAwait(false);
            return content.Spec.CheckpointRef.Uid == uid ? content : null;
        }
        catch (NotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// Removes the finalizer; after a 409, only while the object read again is the same one, still being deleted and
    /// still of the same node. False when nothing was removed (gone, or no longer abandoned as decided).
    /// </summary>
    private async Task<bool> RemoveFinalizerAsync(ContainerCheckpoint ckpt, CancellationToken ct)
    {
        var uid = ckpt.Metadata.Uid;
        var node = ckpt.Status?.Node;
        var written = await StatusWriter.UpdateAsync(_checkpointsApi, ckpt, current =>
        {
            if (current.Metadata.Uid != uid || current.Metadata.DeletionTimestamp is null || current.Status?.Node != node
                || !HasFinalizer(current))
                return false;
            current.Metadata.Finalizers!.RemoveAll(f => f == Finalizers.Archive);
            if (current.Metadata.Finalizers is { Count: 0 }) current.Metadata.Finalizers = null;
            return true;
        }, ct).ConfigureAwait(false);
        return written is not null;
    }

    private static bool HasFinalizer(ContainerCheckpoint ckpt) =>
        ckpt.Metadata.Finalizers?.Contains(Finalizers.Archive) == true;

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>1h2m, 10m, 61s: whole seconds, the way durations are written in crsc's configuration.</summary>
    private static string Duration(TimeSpan d) => GoDuration.Format(TimeSpan.FromSeconds(Math.Floor(d.TotalSeconds)));
}

using System.Globalization;
using System.Collections.Concurrent;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Crsc.Controllers.Hosting;

namespace Crsc.Controllers.Restores;

public sealed record RestorePreparerOptions
{
    /// <summary>This node: only Restores whose pod runs here are prepared.</summary>
    public required string NodeName { get; init; }

    /// <summary>How long one image pull may take.</summary>
    public TimeSpan PullTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Failed pulls of a Restore's images before it is told they cannot be pulled (ImagesReady=False).</summary>
    public int MaxPullAttempts { get; init; } = 3;

    /// <summary>Wait between failed pulls.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The pull credential of each image (crsc's image endpoint answers only callers with a token); null: none.</summary>
    public IPullCredentials? PullCredentials { get; init; }

    /// <summary>
    /// This node's checkpoint store seen through image names: a checkpoint image of it is checked (its manifest MAC, its
    /// namespace and workload) before anything is pulled. Null: no check (a node without a store).
    /// </summary>
    public ICheckpointImageLookup? LocalCheckpoints { get; init; }

    /// <summary>
    /// Told when the runtime of this node refused a restore the node's probe had allowed (the leader's
    /// <c>RuntimeCannotRestore</c>, reason <c>RefusedByRuntime</c>), so the probe runs again now and this node's
    /// CheckpointNode stops offering restores. Null: nothing to tell.
    /// </summary>
    public IRuntimeProbeTrigger? RuntimeProbe { get; init; }

    /// <summary>
    /// The pod's interceptor, held from the moment the API server holds the restore's patch until the Restore is no
    /// longer restoring that attempt (restored, fallen back, failed, or the attempt given up): requests wait instead of
    /// meeting a closed port. Null: no hold.
    /// </summary>
    public Crsc.Controllers.NodeAgent.IPodTrafficHold? TrafficHold { get; init; }
}

/// <summary>
/// The node side of a restore (every node agent, not leader-only). The leader cannot reach other nodes' runtimes, so
/// the node running the pod of a <c>Restoring</c> Restore pulls the base image and the checkpoint image through its
/// runtime (skipping those it has) and reports the condition <c>ImagesReady</c> on the Restore: True when both are
/// there, Unknown while pulls fail and are retried, False with the runtime's message after
/// <see cref="RestorePreparerOptions.MaxPullAttempts"/>. It writes only that condition, from a fresh read on a 409 and
/// only while the Restore still names the same pod here and has not patched it, so it and the leader never lose each
/// other's fields.
/// </summary>
public sealed class RestorePreparer : IReconciler
{
    public const string ControllerName = "restore-images-node";

    /// <summary>
    /// Sets the node side of restores up with <paramref name="manager"/> (node work, every instance): Restores of
    /// every namespace and the pods of <see cref="RestorePreparerOptions.NodeName"/>.
    /// </summary>
    public static ControllerSetup<RestorePreparer> SetUp(ControllerManager manager, IContainerRuntime runtime,
        RestorePreparerOptions options)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(options);
        var pods = manager.Informers.PodsOnNode(options.NodeName);
        var restores = manager.Informers.For(CrscResources.Restores);
        var preparer = new RestorePreparer(manager.Kube, restores, pods, runtime, manager.Events, options, manager.Time,
            manager.Loggers.CreateLogger<RestorePreparer>());
        var controller = manager.NewController(ControllerName, preparer, workers: 2);
        controller.Watch(restores);
        controller.Watch(pods, pod => RestoresOfPod(restores, pod));
        return new(manager.Add(controller, leaderOnly: false), preparer);
    }

    private readonly IKubeResourceClient<Restore> _restoresApi;
    private readonly Informer<Restore> _restores;
    private readonly Informer<Pod> _pods;
    private readonly IContainerRuntime _runtime;
    private readonly PodPullSecrets _pullSecrets;
    private readonly IEventRecorder _events;
    private readonly RestorePreparerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    // failed pulls per (restore UID, pod UID); a new pod or a new Restore starts again
    private readonly ConcurrentDictionary<string, int> _failures = new(StringComparer.Ordinal);
    // replaced containers stopped (or looked at) per (restore UID, attempt, container ID): once each
    private readonly ConcurrentDictionary<string, byte> _stopped = new(StringComparer.Ordinal);
    // the pod traffic held for a Restore's attempt, by <namespace>/<name>
    private readonly ConcurrentDictionary<string, RestoreHold> _restoreHolds = new(StringComparer.Ordinal);
    // Restores whose runtime refusal asked for a probe (once each)
    private readonly ConcurrentDictionary<string, byte> _reprobed = new(StringComparer.Ordinal);

    /// <param name="pods">the pods of this node (<see cref="SharedInformers.PodsOnNode"/>)</param>
    public RestorePreparer(
        IKubeApi kube,
        Informer<Restore> restores,
        Informer<Pod> pods,
        IContainerRuntime runtime,
        IEventRecorder events,
        RestorePreparerOptions options,
        TimeProvider time,
        ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.NodeName);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxPullAttempts, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.PullTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.RetryDelay, TimeSpan.Zero);
        _restoresApi = kube.Resource(CrscResources.Restores);
        _restores = restores;
        _pods = pods;
        _runtime = runtime;
        _pullSecrets = new PodPullSecrets(kube, logger);
        _events = events;
        _options = options;
        _time = time;
        _logger = logger ?? NullLogger.Instance;
        try
        {
            restores.AddIndexer(RestoresByPodIndex, r => r.Status?.PodName is { Length: > 0 } p ? [$"{r.Metadata.Namespace}/{p}"] : []);
        }
        catch (InvalidOperationException)
        {
            // shared informer: the index is there already
        }
    }

    /// <summary>Restores by <c>&lt;namespace&gt;/&lt;status.podName&gt;</c> (an informer index: internal, not API).</summary>
    private const string RestoresByPodIndex = "crsc.io/restore-pod";

    /// <summary>The Restores naming <paramref name="pod"/> (a pod arriving on this node starts their preparation).</summary>
    public static IEnumerable<ObjectKey> RestoresOfPod(Informer<Restore> restores, Pod pod) =>
        restores.ByIndex(RestoresByPodIndex, $"{pod.Metadata.Namespace}/{pod.Metadata.Name}")
            .Where(r => r.Status?.Phase == RestorePhase.Restoring).Select(EnqueueHandlers.KeyOf);

    public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
    {
        var restore = _restores.Get(key);
        if (restore?.Status?.Node == _options.NodeName
            && restore.Status.FindCondition(RestoreConditions.RuntimeCannotRestore)?.Reason == RestoreReconciler.RefusedByRuntime
            && _reprobed.TryAdd(restore.Metadata.Uid ?? key.ToString(), 0))
            _options.RuntimeProbe?.ProbeNow($"the runtime refused Restore {key.Namespace}/{key.Name}");
        var restoring = restore?.Status is { Phase: RestorePhase.Restoring, PatchedAt: not null };
        // the attempt that held the pod's traffic is over (or the Restore is gone): the traffic goes on
        var holdKey = $"{key.Namespace}/{key.Name}";
        if (_restoreHolds.TryGetValue(holdKey, out var held) && (!restoring || held.Attempt != restore!.Status!.Attempts))
        {
            if (_restoreHolds.TryRemove(holdKey, out held) && held.Release is not null)
            {
                // restored: the requests since the checkpoint go to the restored app before the held ones do (a failed or
                // fallen-back attempt replays nothing: its app is not the checkpoint's)
                if (restore?.Status?.Phase == RestorePhase.Restored && restore.Status.Attempts == held.Attempt
                    && await held.Release.ReplayAsync(ct).ConfigureAwait(false) is { } replay)
                {
                    if (replay.Succeeded)
                        _events.Normal(held.Pod, TrafficReplayed, string.Create(CultureInfo.InvariantCulture,
                            $"The interceptor replayed {replay.Replayed} request(s) logged since the checkpoint to the restored app, before releasing the held traffic"));
                    else
                        _events.Warning(held.Pod, ReplayFailed, string.Create(CultureInfo.InvariantCulture,
                            $"The interceptor's replay to the restored app failed: {replay.Error}; the app lacks the requests since the checkpoint"));
                }
                await held.Release.DisposeAsync().ConfigureAwait(false);
            }
        }
        if (restoring)
        {
            if (PatchedHere(restore!) is not var (patched, container)) return ReconcileResult.Done;
            await HoldTrafficAsync(restore!, patched, container, ct).ConfigureAwait(false);
            return await StopColdInstanceAsync(restore!, patched, container, ct).ConfigureAwait(false);
        }
        if (restore is null || !NeedsImages(restore, out var pod)) return ReconcileResult.Done;
        var s = restore.Status!;
        if (RefuseArchive(restore, pod) is var (refusal, why))
        {
            Log.ArchiveRefused(_logger, key.Namespace ?? "", key.Name, s.Image!, refusal, why);
            var refused = await ReportAsync(restore, pod, ConditionStatus.False, refusal, why, ct).ConfigureAwait(false);
            if (refused is not null) _events.Warning(refused, refusal, why);
            return ReconcileResult.Done;
        }
        var images = new[] { s.OriginalImage!, s.Image! }.Distinct(StringComparer.Ordinal).ToList();
        var attemptKey = $"{restore.Metadata.Uid}/{pod.Metadata.Uid}";
        var identity = new PodIdentity(pod.Metadata.Namespace ?? "", pod.Metadata.Name ?? "", pod.Metadata.Uid ?? "");

        var pulled = new List<string>();
        PullSecretKeyring? keyring = null; // the pod's imagePullSecrets, read once when an image needs them
        foreach (var image in images)
        {
            var secrets = "";
            try
            {
                if (await _runtime.ImageStatusAsync(image, ct).ConfigureAwait(false) is not null) continue;
                Log.Pulling(_logger, key.Namespace ?? "", key.Name, image, _options.NodeName);
                // crsc's own credential (its image endpoint's token) first; else the pod's imagePullSecrets, as the
                // kubelet would use them, each matching one tried in turn; else none
                IReadOnlyList<RegistryAuth?> auths = [_options.PullCredentials?.For(image, key.Namespace ?? "")];
                if (auths[0] is null && pod.Spec.ImagePullSecrets is { Count: > 0 })
                {
                    keyring ??= await _pullSecrets.ReadAsync(pod, ct).ConfigureAwait(false);
                    var lookup = keyring.Lookup(image);
                    secrets = lookup.Describe();
                    if (lookup.Candidates.Count > 0) auths = lookup.Candidates.Select(c => (RegistryAuth?)c.Auth).ToList();
                }
                await PullWithAnyAsync(image, auths, identity, ct).ConfigureAwait(false);
                pulled.Add(image);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e) when (e is ContainerRuntimeException or TimeoutException or PullsFailedException)
            {
                var failures = _failures.AddOrUpdate(attemptKey, 1, (_, n) => n + 1);
                var final = failures >= _options.MaxPullAttempts;
                var message = $"pulling {image} on node {_options.NodeName} failed ({failures} of {_options.MaxPullAttempts}): {e.Message}"
                    + (secrets.Length > 0 ? $" ({secrets})" : "");
                Log.PullFailed(_logger, e, key.Namespace ?? "", key.Name, image, _options.NodeName, failures, _options.MaxPullAttempts);
                var written = await ReportAsync(restore, pod, final ? ConditionStatus.False : ConditionStatus.Unknown,
                    final ? "PullFailed" : "Pulling", message, ct).ConfigureAwait(false);
                if (written is not null) _events.Warning(written, "ImagePullFailed", message);
                return final ? ReconcileResult.Done : ReconcileResult.RequeueAfter(_options.RetryDelay);
            }
        }

        _failures.TryRemove(attemptKey, out _);
        var ready = pulled.Count == 0
            ? $"images present on node {_options.NodeName}: {string.Join(", ", images)}"
            : $"images ready on node {_options.NodeName}: pulled {string.Join(", ", pulled)}";
        var done = await ReportAsync(restore, pod, ConditionStatus.True, "Pulled", ready, ct).ConfigureAwait(false);
        if (done is not null)
        {
            Log.Ready(_logger, key.Namespace ?? "", key.Name, _options.NodeName);
            _events.Normal(done, "ImagesReady", ready);
        }
        return ReconcileResult.Done;
    }

    /// <summary>
    /// Pulls <paramref name="image"/> with each of <paramref name="auths"/> in turn until one succeeds (the kubelet's way
    /// with several matching pull secrets).
    /// </summary>
    /// <exception cref="ContainerRuntimeException">the only pull failed</exception>
    /// <exception cref="TimeoutException">the only pull took too long</exception>
    /// <exception cref="PullsFailedException">every one of several pulls failed</exception>
    private async Task PullWithAnyAsync(string image, IReadOnlyList<RegistryAuth?> auths, PodIdentity identity, CancellationToken ct)
    {
        if (auths.Count == 1)
        {
            await ImagePulls.PullAsync(_runtime, image, auths[0], identity, _options.PullTimeout, _time, ct).ConfigureAwait(false);
            return;
        }
        var errors = new List<string>();
        foreach (var auth in auths)
        {
            try
            {
                await ImagePulls.PullAsync(_runtime, image, auth, identity, _options.PullTimeout, _time, ct).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is ContainerRuntimeException or TimeoutException)
            {
                errors.Add($"as {auth}: {e.Message}");
            }
        }
        throw new PullsFailedException(string.Join("; ", errors));
    }

    /// <summary>Every credential's pull of one image failed; the message has each one's error (never a secret).</summary>
    private sealed class PullsFailedException(string message) : Exception(message);

    /// <summary>
    /// After the leader's patch, the container it replaced — typically the instance the kubelet cold-started after the
    /// failure, which holds nothing worth keeping (the checkpoint is the state) — would be stopped by the kubelet with the
    /// pod's whole termination grace period (30 s by default, all of it for an app that ignores SIGTERM) before the
    /// restored container is created. The node stops it at once (CRI StopContainer, no grace) when, and only when: the pod
    /// here shows the patch (its spec has this Restore's checkpoint image: the API server accepted it), the container is
    /// the one the patch recorded as replaced (<see cref="Annotations.ReplacedContainer"/>), the runtime's container of
    /// that ID is this pod's (kubelet labels: pod UID, container name), still running, and runs the original image — never
    /// the checkpoint image, never another pod's or another container's process. Once per attempt.
    /// </summary>
    private async Task<ReconcileResult> StopColdInstanceAsync(Restore r, Pod pod, string container, CancellationToken ct)
    {
        var s = r.Status!;
        if (ReplacedContainer.Read(pod, container)?.ContainerId is not { Length: > 0 } recorded) return ReconcileResult.Done;
        var id = recorded.Contains("://", StringComparison.Ordinal) ? recorded[(recorded.IndexOf("://", StringComparison.Ordinal) + 3)..] : recorded;
        var once = $"{r.Metadata.Uid}/{s.Attempts}/{id}";
        if (!_stopped.TryAdd(once, 0)) return ReconcileResult.Done;

        ContainerStatusInfo found;
        try
        {
            found = await _runtime.ContainerStatusAsync(id, verbose: false, ct).ConfigureAwait(false);
        }
        catch (ContainerNotFoundException)
        {
            return ReconcileResult.Done; // gone already: the kubelet is ahead
        }
        catch (ContainerRuntimeException e)
        {
            _stopped.TryRemove(once, out _);
            Log.ColdInstanceNotStopped(_logger, r.Metadata.Namespace ?? "", r.Metadata.Name ?? "", id, $"its status could not be read: {e.Message}");
            return ReconcileResult.Done; // the kubelet stops it, with the grace period
        }
        var refusal = found.Labels.GetValueOrDefault(KubeletLabels.PodUid) != pod.Metadata.Uid
            ? $"it is not a container of pod {pod.Metadata.Name} (pod UID {found.Labels.GetValueOrDefault(KubeletLabels.PodUid) ?? "none"})"
            : found.Labels.GetValueOrDefault(KubeletLabels.ContainerName) != container
                ? $"it is container {found.Labels.GetValueOrDefault(KubeletLabels.ContainerName) ?? found.Name}, not {container}"
                : found.State != Runtime.ContainerState.Running
                    ? null
                    : found.Image == s.Image
                        ? $"it runs the checkpoint image {s.Image}"
                        : found.Image != s.OriginalImage
                            ? $"it runs image {found.Image}, not the original image {s.OriginalImage}"
                            : null;
        if (refusal is not null)
        {
            Log.ColdInstanceNotStopped(_logger, r.Metadata.Namespace ?? "", r.Metadata.Name ?? "", id, refusal);
            return ReconcileResult.Done;
        }
        if (found.State != Runtime.ContainerState.Running) return ReconcileResult.Done; // nothing to stop

        try
        {
            await _runtime.StopContainerAsync(id, TimeSpan.Zero, ct).ConfigureAwait(false);
        }
        catch (ContainerRuntimeException e)
        {
            Log.ColdInstanceNotStopped(_logger, r.Metadata.Namespace ?? "", r.Metadata.Name ?? "", id, $"StopContainer failed: {e.Message}");
            return ReconcileResult.Done;
        }
        var message = $"stopped container {container} ({id[..Math.Min(12, id.Length)]}, image {s.OriginalImage}) at once: the restored container "
                      + $"from checkpoint {s.CheckpointName} replaces it without waiting out the termination grace period";
        Log.ColdInstanceStopped(_logger, r.Metadata.Namespace ?? "", r.Metadata.Name ?? "", id, pod.Metadata.Name ?? "");
        _events.Normal(pod, "StoppedReplacedContainer", message);
        return ReconcileResult.Done;
    }

    /// <summary>
    /// The pod of a patched Restore and the container, when the pod runs here and shows the patch — the API server
    /// accepted it: the stored pod asks for this Restore's checkpoint image — else null.
    /// </summary>
    private (Pod Pod, string Container)? PatchedHere(Restore r)
    {
        var s = r.Status!;
        if (string.IsNullOrEmpty(s.PodName) || string.IsNullOrEmpty(s.Image) || string.IsNullOrEmpty(s.OriginalImage)) return null;
        var pod = _pods.Get(new ObjectKey(r.Metadata.Namespace, s.PodName));
        if (pod is null || pod.Spec.NodeName != _options.NodeName || (s.PodUid is not null && pod.Metadata.Uid != s.PodUid)) return null;
        var container = RestoreStages.ResolveContainer(r, pod, out _);
        if (container is null || RestorePods.ContainerOf(pod, container)?.Image != s.Image
            || pod.Metadata.Annotations?.GetValueOrDefault(Annotations.Restore) != r.Metadata.Name)
            return null;
        return (pod, container);
    }

    /// <summary>
    /// Holds the pod's traffic in its interceptor for this attempt, asked once per attempt (a pod without an interceptor is
    /// remembered as such, so the pod's status changes during the restore do not ask again).
    /// </summary>
    private async Task HoldTrafficAsync(Restore r, Pod pod, string container, CancellationToken ct)
    {
        if (_options.TrafficHold is not { } hold || string.IsNullOrEmpty(pod.Metadata.Uid)) return;
        var key = $"{r.Metadata.Namespace}/{r.Metadata.Name}";
        if (_restoreHolds.ContainsKey(key)) return;
        var release = await hold.HoldAsync(pod.Metadata.Namespace ?? "", pod.Metadata.Name ?? "", pod.Metadata.Uid,
            $"restore of {container} from checkpoint {r.Status!.CheckpointName}", ct).ConfigureAwait(false);
        if (!_restoreHolds.TryAdd(key, new RestoreHold(r.Status.Attempts, release, pod)))
        {
            if (release is not null) await release.DisposeAsync().ConfigureAwait(false);
        }
        else if (release is not null)
        {
            _events.Normal(pod, TrafficHeld,
                $"The interceptor holds the pod's traffic for the restore of {container} from checkpoint {r.Status.CheckpointName}");
        }
    }

    /// <summary>Event reasons on the pod: its interceptor holds its traffic for a restore, and replayed its log (or not).</summary>
    public const string TrafficHeld = "TrafficHeld", TrafficReplayed = "TrafficReplayed", ReplayFailed = "ReplayFailed";

    /// <summary>The hold asked for an attempt; <see cref="Release"/> null when the pod has no interceptor.</summary>
    private sealed record RestoreHold(int? Attempt, Crsc.Controllers.NodeAgent.IHeldTraffic? Release, Pod Pod);

    /// <summary>
    /// When the checkpoint image is one of this node's store: a reason and message when it must not be restored from —
    /// <c>ArchiveNotAuthentic</c> (its manifest MAC is missing, wrong or of another key) or <c>CheckpointOfAnotherWorkload</c>
    /// (its namespace or workload is not the Restore's target's; for a Pod target, the workload the pod belongs to — unless
    /// the pod names that checkpoint in its own <see cref="Annotations.RestoreFrom"/>, then only its namespace must match).
    /// The annotation <see cref="Annotations.AllowUnauthenticated"/> lets a missing or foreign MAC pass, never a
    /// wrong one and never another workload's checkpoint.
    /// </summary>
    private (string Reason, string Message)? RefuseArchive(Restore restore, Pod pod)
    {
        var image = restore.Status!.Image!;
        if (_options.LocalCheckpoints?.FindByImage(image) is not { } c) return null;
        var allowed = restore.Metadata.Annotations?.GetValueOrDefault(Annotations.AllowUnauthenticated) == "true"
            && c.Authenticity is CheckpointAuthenticity.Unsigned or CheckpointAuthenticity.OtherKey;
        if (c.AuthenticityProblem is { } problem)
        {
            var hint = c.Authenticity is CheckpointAuthenticity.Unsigned or CheckpointAuthenticity.OtherKey
                ? $" (annotation {Annotations.AllowUnauthenticated}=\"true\", or crsc restore --allow-unauthenticated, accepts it)"
                : "";
            if (!allowed) return ("ArchiveNotAuthentic", $"checkpoint image {image} on node {_options.NodeName} is refused: {problem}{hint}");
            var note = $"checkpoint image {image} is not authenticated ({problem}); restoring from it because {Annotations.AllowUnauthenticated} is \"true\"";
            Log.ArchiveAllowed(_logger, restore.Metadata.Namespace ?? "", restore.Metadata.Name ?? "", note);
            _events.Warning(restore, "UnauthenticatedArchive", note);
        }
        var ns = restore.Metadata.Namespace ?? "";
        var workload = restore.Spec.Target.Kind == RestoreTargetKind.Pod ? PodOwnerWorkloadResolver.WorkloadOf(pod) : restore.Spec.Target.Name;
        // a pod that names this very checkpoint in its own crsc.io/restore-from asked for it (a copy of another
        // workload's process, e.g. a pod made to take over from another one): its namespace is the boundary
        var named = restore.Status.CheckpointName ?? restore.Spec.CheckpointName;
        var askedFor = named is { Length: > 0 } && pod.Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFrom) == named;
        if (c.Namespace != ns || (c.Workload != workload && !askedFor))
            return ("CheckpointOfAnotherWorkload",
                $"checkpoint image {image} on node {_options.NodeName} holds checkpoint {c.Id} of {c.Namespace}/{c.Workload}, " +
                $"not of {ns}/{workload}, the Restore's target ({restore.Spec.Target.Kind} {restore.Spec.Target.Name})");
        return null;
    }

    /// <summary>
    /// A <c>Restoring</c> Restore whose pod runs on this node, has images chosen, is not patched yet and has no final
    /// answer from this node yet.
    /// </summary>
    private bool NeedsImages(Restore r, out Pod pod)
    {
        pod = null!;
        var s = r.Status;
        if (s?.Phase != RestorePhase.Restoring || s.PatchedAt is not null) return false;
        if (string.IsNullOrEmpty(s.PodName) || string.IsNullOrEmpty(s.Image) || string.IsNullOrEmpty(s.OriginalImage)) return false;
        if (s.FindCondition(RestoreConditions.ImagesReady)?.Status is ConditionStatus.True or ConditionStatus.False) return false;
        var p = _pods.Get(new ObjectKey(r.Metadata.Namespace, s.PodName));
        if (p is null || p.Spec.NodeName != _options.NodeName) return false;
        if (s.PodUid is not null && p.Metadata.Uid != s.PodUid) return false;
        pod = p;
        return true;
    }

    /// <summary>
    /// Sets the ImagesReady condition, nothing else. On a 409 reads the Restore again and writes only while it is
    /// still about the same pod and unpatched; null when nothing was written.
    /// </summary>
    private Task<Restore?> ReportAsync(Restore restore, Pod pod, ConditionStatus value, string reason, string message,
        CancellationToken ct) =>
        StatusWriter.UpdateStatusAsync(_restoresApi, restore, current =>
        {
            var s = current.Status;
            if (s?.Phase != RestorePhase.Restoring || s.PatchedAt is not null || s.PodName != pod.Metadata.Name
                || (s.PodUid is not null && s.PodUid != pod.Metadata.Uid) || current.Metadata.Uid != restore.Metadata.Uid
                || s.Image != restore.Status!.Image)
                return false;
            // false: already said
            return s.SetCondition(RestoreConditions.ImagesReady, value, reason, message, current.Metadata.Generation, _time.GetUtcNow());
        }, ct, attempts: 6);
}

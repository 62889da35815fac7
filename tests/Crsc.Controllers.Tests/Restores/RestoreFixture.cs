using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Restores;
using Crsc.Controllers.Tests.Fakes;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Restores;

/// <summary>
/// A namespace with a Deployment's pods, checkpoints and their Contents on <see cref="FakeKube"/>, the informers a
/// leader (or a node) keeps, and a kubelet's view of the pods written by hand. Informers run on the real clock (their
/// reconnect backoff); the reconcilers get <see cref="Time"/>, which only the test moves.
/// </summary>
public sealed class RestoreFixture : IAsyncDisposable
{
    public const string Ns = "shop";
    public const string Deployment = "counter";
    public const string ReplicaSet = "counter-7d9f8c6b5";
    public const string Hash = "7d9f8c6b5";
    public const string Container = "app";
    public const string ImageV1 = "registry.local/counter:1";
    public const string ImageV2 = "registry.local/counter:2";

    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _running = [];

    public RestoreFixture()
    {
        Kube = new FakeKube(Time);
        PodsApi = Kube.For(Resources.Pods);
        PodsApi.FieldReader = (p, field) => field == "spec.nodeName" ? p.Spec.NodeName : null;
        RestoresApi = Kube.For(CrscResources.Restores);
        CheckpointsApi = Kube.For(CrscResources.ContainerCheckpoints);
        ContentsApi = Kube.For(CrscResources.ContainerCheckpointContents);
        NodesApi = Kube.For(CrscResources.CheckpointNodes);
    }

    public ManualTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    public FakeKube Kube { get; }
    public FakeResourceClient<Pod> PodsApi { get; }
    public FakeResourceClient<Restore> RestoresApi { get; }
    public FakeResourceClient<ContainerCheckpoint> CheckpointsApi { get; }
    public FakeResourceClient<ContainerCheckpointContent> ContentsApi { get; }
    public FakeResourceClient<CheckpointNode> NodesApi { get; }
    public RecordingEventRecorder Events { get; } = new();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running);
        _stop.Dispose();
    }

    // ---- leaders and nodes ----

    /// <summary>
    /// A leader: its own informers and reconciler, as a freshly started daemon would have. Its Restore and pod caches
    /// watch through <paramref name="restoreWatch"/> and <paramref name="podWatch"/> when given (to hold their events back).
    /// </summary>
    public async Task<Leader> StartLeaderAsync(RestoreReconcilerOptions? options = null, HeldWatchClient<Restore>? restoreWatch = null,
        HeldWatchClient<Pod>? podWatch = null, IRestoreBackend? backend = null)
    {
        var restores = Run(new Informer<Restore>(restoreWatch ?? (IKubeResourceClient<Restore>)RestoresApi, new InformerOptions(),
            TimeProvider.System, NullLogger.Instance));
        var pods = Run(new Informer<Pod>(podWatch ?? (IKubeResourceClient<Pod>)PodsApi, new InformerOptions(), TimeProvider.System,
            NullLogger.Instance));
        var checkpoints = Run(new Informer<ContainerCheckpoint>(CheckpointsApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance));
        var contents = Run(new Informer<ContainerCheckpointContent>(ContentsApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance));
        var nodes = Run(new Informer<CheckpointNode>(NodesApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance));
        var reconciler = new RestoreReconciler(Kube, restores, pods, checkpoints, contents, Events,
            options ?? new RestoreReconcilerOptions(), Time, NullLogger.Instance, nodes, backend);
        await Task.WhenAll(restores.WaitForSyncAsync(_stop.Token), pods.WaitForSyncAsync(_stop.Token),
            checkpoints.WaitForSyncAsync(_stop.Token), contents.WaitForSyncAsync(_stop.Token), nodes.WaitForSyncAsync(_stop.Token));
        return new Leader(this, reconciler, restores, pods, checkpoints, contents, nodes);
    }

    public sealed record Leader(RestoreFixture F, RestoreReconciler Reconciler, Informer<Restore> Restores, Informer<Pod> Pods,
        Informer<ContainerCheckpoint> Checkpoints, Informer<ContainerCheckpointContent> Contents, Informer<CheckpointNode> Nodes)
    {
        /// <summary>Reconciles once every cache shows the store as it is now (level-triggered, from the caches).</summary>
        public async Task<ReconcileResult> ReconcileAsync(string name)
        {
            await Eventually.TrueAsync(() => InSync(Restores, F.RestoresApi) && InSync(Pods, F.PodsApi)
                && InSync(Checkpoints, F.CheckpointsApi) && InSync(Contents, F.ContentsApi) && InSync(Nodes, F.NodesApi), "caches as stored");
            return await Reconciler.ReconcileAsync(new ObjectKey(Ns, name), CancellationToken.None);
        }

        /// <summary>Reconciles from the caches as they are, however far behind the store (a watch event woke it).</summary>
        public async Task<ReconcileResult> ReconcileNowAsync(string name) =>
            await Reconciler.ReconcileAsync(new ObjectKey(Ns, name), CancellationToken.None);
    }

    public async Task<Node> StartNodeAsync(string node, FakeContainerRuntime runtime, RestorePreparerOptions? options = null)
    {
        var restores = Run(new Informer<Restore>(RestoresApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance));
        var pods = Run(new Informer<Pod>(PodsApi, new InformerOptions { FieldSelector = $"spec.nodeName={node}" },
            TimeProvider.System, NullLogger.Instance));
        var preparer = new RestorePreparer(Kube, restores, pods, runtime, Events,
            options ?? new RestorePreparerOptions { NodeName = node }, Time, NullLogger.Instance);
        await Task.WhenAll(restores.WaitForSyncAsync(_stop.Token), pods.WaitForSyncAsync(_stop.Token));
        return new Node(this, node, preparer, restores, pods);
    }

    public sealed record Node(RestoreFixture F, string Name, RestorePreparer Preparer, Informer<Restore> Restores, Informer<Pod> Pods)
    {
        public async Task<ReconcileResult> ReconcileAsync(string restore)
        {
            await Eventually.TrueAsync(() => InSync(Restores, F.RestoresApi)
                && Pods.List().Count == F.PodsApi.AllStored().Count(p => p.Spec.NodeName == Name)
                && Pods.List().All(p => F.PodsApi.Stored(p.Metadata.Namespace, p.Metadata.Name!)?.Metadata.ResourceVersion == p.Metadata.ResourceVersion),
                "node caches as stored");
            return await Preparer.ReconcileAsync(new ObjectKey(Ns, restore), CancellationToken.None);
        }
    }

    private Informer<T> Run<T>(Informer<T> informer) where T : class, IKubernetesObject
    {
        _running.Add(informer.RunAsync(_stop.Token));
        return informer;
    }

    public static bool InSync<T>(Informer<T> informer, FakeResourceClient<T> api) where T : class, IKubernetesObject
    {
        var stored = api.AllStored();
        if (informer.Count != stored.Count) return false;
        return stored.All(o => informer.Get(EnqueueHandlers.KeyOf(o))?.Metadata.ResourceVersion == o.Metadata.ResourceVersion);
    }

    // ---- objects ----

    /// <summary>A running pod of the Deployment (or of <paramref name="replicaSet"/>), its container running <paramref name="image"/>.</summary>
    public async Task<Pod> CreatePodAsync(string name, string node = "n1", string image = ImageV1, string? replicaSet = ReplicaSet,
        string? hash = Hash, bool readinessProbe = false)
    {
        var pod = new Pod();
        pod.Metadata.Namespace = Ns;
        pod.Metadata.Name = name;
        if (replicaSet is not null)
        {
            pod.Metadata.Labels = new() { ["app"] = Deployment, ["pod-template-hash"] = hash! };
            pod.Metadata.OwnerReferences =
            [
                new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = replicaSet, Uid = "rs-" + replicaSet, Controller = true },
            ];
        }
        pod.Spec.NodeName = node;
        var container = new Container { Name = Container, Image = image };
        if (readinessProbe)
            container.Extra = new() { ["readinessProbe"] = JsonSerializer.SerializeToElement(new Dictionary<string, int> { ["periodSeconds"] = 1 }) };
        pod.Spec.Containers = [container];
        pod.Status = new PodStatus
        {
            Phase = "Running",
            ContainerStatuses =
            [
                new ContainerStatus
                {
                    Name = Container, Image = image, Ready = true, RestartCount = 0,
                    State = new ContainerState { Running = new ContainerStateRunning { StartedAt = Time.GetUtcNow() } },
                },
            ],
        };
        var created = await PodsApi.SeedAsync(pod, CancellationToken.None);
        Time.Advance(TimeSpan.FromSeconds(1)); // creation times in order
        return created;
    }

    /// <summary>What the kubelet reports about the container.</summary>
    public async Task SetContainerStateAsync(string pod, ContainerState state, string? image = null, bool ready = false, int? restartCount = null)
    {
        var p = PodsApi.Stored(Ns, pod)!;
        var cs = p.Status!.ContainerStatuses!.Single(c => c.Name == Container);
        cs.State = state;
        cs.Ready = ready;
        if (image is not null) cs.Image = image;
        if (restartCount is { } n) cs.RestartCount = n;
        await PodsApi.UpdateStatusAsync(p, CancellationToken.None);
    }

    public static ContainerState Running(DateTimeOffset startedAt) => new() { Running = new ContainerStateRunning { StartedAt = startedAt } };

    public static ContainerState Waiting(string reason, string? message = null) =>
        new() { Waiting = new ContainerStateWaiting { Reason = reason, Message = message } };

    /// <summary>A Completed checkpoint of the Deployment's container and its Content (base image, image reference).</summary>
    public async Task<ContainerCheckpoint> CreateCheckpointAsync(string name, DateTimeOffset completedAt, string baseImage = ImageV1,
        string? imageReference = "auto", string? workload = Deployment, string pod = "counter-7d9f8c6b5-abcde",
        ContainerCheckpointPhase phase = ContainerCheckpointPhase.Completed, string container = Container, string? failure = null)
    {
        var contentName = "ckpt-" + name;
        var ckpt = new ContainerCheckpoint
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns, Name = name,
                Labels = workload is null ? null : new() { [Labels.Workload] = workload, [Labels.Container] = container },
            },
            Spec = new ContainerCheckpointSpec { PodName = pod, Container = container },
            Status = new ContainerCheckpointStatus
            {
                Phase = phase,
                Node = "n1",
                ContentName = phase == ContainerCheckpointPhase.Completed ? contentName : null,
                // a failure is stamped when it ends too (what the node agent writes)
                CompletedAt = phase is ContainerCheckpointPhase.Completed or ContainerCheckpointPhase.Failed ? completedAt : null,
                Message = phase == ContainerCheckpointPhase.Failed ? failure ?? "criu dump failed" : null,
            },
        };
        var created = await CheckpointsApi.SeedAsync(ckpt, CancellationToken.None);
        if (phase == ContainerCheckpointPhase.Completed)
        {
            await ContentsApi.SeedAsync(new ContainerCheckpointContent
            {
                Metadata = new ObjectMeta { Name = contentName },
                Spec = new ContainerCheckpointContentSpec
                {
                    Node = "n1",
                    Path = $"/var/lib/crsc/checkpoints/{Ns}/{Deployment}/{Container}/{name}.tar",
                    Digest = "sha256:" + new string('1', 64),
                    SizeBytes = 4096,
                    ImageReference = imageReference == "auto" ? ImageOf(name) : imageReference,
                    Source = new CheckpointSource { Namespace = Ns, Pod = pod, Container = container, Image = baseImage },
                    CheckpointRef = new NamespacedObjectReference { Namespace = Ns, Name = name, Uid = created.Metadata.Uid },
                },
            }, CancellationToken.None);
        }
        return created;
    }

    public static string ImageOf(string checkpoint) =>
        $"10.0.0.1:5055/{Ns}/{Deployment}-{Container}@sha256:{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(checkpoint)))}";

    public Task<Restore> CreateRestoreAsync(string name, RestoreTargetKind kind = RestoreTargetKind.Deployment, string target = Deployment,
        string? failedPod = null, string? checkpoint = null, RestoreFallback fallback = RestoreFallback.ColdStart, int maxAttempts = 3,
        RestoreStatus? status = null, string? container = Container, DateTimeOffset? failedAt = null)
    {
        var r = new Restore
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns, Name = name,
                Labels = new() { [Labels.Workload] = target },
                Annotations = failedPod is null ? null : failedAt is { } at
                    ? new() { [Annotations.FailedPod] = failedPod, [Annotations.FailedAt] = KubeTime.FormatTime(at) }
                    : new() { [Annotations.FailedPod] = failedPod },
            },
            Spec = new RestoreSpec
            {
                Target = new RestoreTarget { Kind = kind, Name = target },
                Container = container, CheckpointName = checkpoint, Fallback = fallback, MaxAttempts = maxAttempts,
            },
            Status = status,
        };
        return RestoresApi.SeedAsync(r, CancellationToken.None);
    }

    public Restore Restore(string name) => RestoresApi.Stored(Ns, name)!;
    public Pod? Pod(string name) => PodsApi.Stored(Ns, name);
    public string? ImageOfPod(string name) => Pod(name)?.Spec.Containers.Single(c => c.Name == Container).Image;

    /// <summary>What a node's agent writes about its runtime: the CheckpointNode named after the node.</summary>
    public async Task SetNodeRestoreAsync(string node, CapabilityState state, string reason, string? fix = null)
    {
        var existing = NodesApi.AllStored().SingleOrDefault(n => n.Metadata.Name == node)
            ?? await NodesApi.CreateAsync(new CheckpointNode { Metadata = new ObjectMeta { Name = node } }, CancellationToken.None);
        existing.Status = new CheckpointNodeStatus
        {
            Runtime = new NodeRuntime { Name = "containerd", Version = "v2.3.4" },
            RuntimeSummary = "containerd v2.3.4",
            Checkpoint = new NodeCapability { State = CapabilityState.Supported, Reason = "checkpoints" },
            Restore = new NodeCapability { State = state, Reason = reason, Fix = fix },
        };
        await NodesApi.UpdateStatusAsync(existing, CancellationToken.None);
    }

    /// <summary>What the node's preparer writes: the ImagesReady condition.</summary>
    public async Task SetImagesReadyAsync(string restore, ConditionStatus value, string message = "images present")
    {
        var r = Restore(restore);
        r.Status!.SetCondition(RestoreConditions.ImagesReady, value, value == ConditionStatus.False ? "PullFailed" : "Pulled", message,
            r.Metadata.Generation, Time.GetUtcNow());
        await RestoresApi.UpdateStatusAsync(r, CancellationToken.None);
    }

    public IReadOnlyList<string> EventReasons(string kind, string name) =>
        [.. Events.Events.Where(e => e.Kind == kind && e.Name == name).Select(e => e.Reason)];
}

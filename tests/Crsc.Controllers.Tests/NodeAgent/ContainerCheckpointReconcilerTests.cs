using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Storage;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.NodeAgent;

public sealed class ContainerCheckpointReconcilerTests : IAsyncLifetime
{
    private const string Ns = "shop";
    private readonly FakeKube _kube = new();
    private readonly FakeResourceClient<Pod> _podsApi;
    private readonly FakeResourceClient<ContainerCheckpoint> _ckptApi;
    private readonly FakeResourceClient<ContainerCheckpointContent> _contentApi;
    private readonly FakeContainerRuntime _runtime = new();
    private readonly FakeCheckpointStore _store = new(TimeProvider.System);
    private readonly FakeStagingArea _staging = new();
    private readonly RecordingEventRecorder _events = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _running = [];
    private readonly List<CheckpointRunner> _runners = [];

    public ContainerCheckpointReconcilerTests()
    {
        _podsApi = _kube.For(Resources.Pods);
        _podsApi.FieldReader = (p, field) => field == "spec.nodeName" ? p.Spec.NodeName : null;
        _ckptApi = _kube.For(CrscResources.ContainerCheckpoints);
        _contentApi = _kube.For(CrscResources.ContainerCheckpointContents);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit 2 runs IAsyncLifetime.DisposeAsync on a test class, never IAsyncDisposable's: cleanup must be here
    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running);
        foreach (var r in _runners) r.Dispose();
        _stop.Dispose();
    }

    /// <summary>A node agent (informers + reconciler) for <paramref name="node"/>; a new one is a daemon restart.</summary>
    private async Task<Agent> StartAgentAsync(string node = "n1", ICheckpointImagePublisher? images = null)
    {
        var pods = new Informer<Pod>(_kube.For(Resources.Pods), new InformerOptions { FieldSelector = $"spec.nodeName={node}" },
            TimeProvider.System, NullLogger.Instance);
        var ckpts = new Informer<ContainerCheckpoint>(_ckptApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance);
        var runner = new CheckpointRunner(_runtime, _runtime, _store, new CheckpointRunnerOptions { NodeName = node },
            TimeProvider.System, staging: _staging, workloads: new PodOwnerWorkloadResolver(pods));
        _runners.Add(runner);
        var reconciler = new ContainerCheckpointReconciler(_kube, pods, ckpts, runner, _store, _events,
            new ContainerCheckpointReconcilerOptions { NodeName = node }, TimeProvider.System, NullLogger.Instance,
            new CheckpointMetrics(new MetricsRegistry()), images);
        _running.Add(pods.RunAsync(_stop.Token));
        _running.Add(ckpts.RunAsync(_stop.Token));
        await pods.WaitForSyncAsync(_stop.Token);
        await ckpts.WaitForSyncAsync(_stop.Token);
        return new Agent(this, reconciler, ckpts, pods);
    }

    private sealed record Agent(ContainerCheckpointReconcilerTests T, ContainerCheckpointReconciler Reconciler,
        Informer<ContainerCheckpoint> Checkpoints, Informer<Pod> Pods)
    {
        /// <summary>Reconciles once the cache shows the stored object as it is now (level-triggered, from the cache).</summary>
        public async Task<ReconcileResult> ReconcileAsync(string name)
        {
            var key = new ObjectKey(Ns, name);
            await Eventually.TrueAsync(() =>
                Checkpoints.Get(key)?.Metadata.ResourceVersion == T._ckptApi.Stored(Ns, name)?.Metadata.ResourceVersion,
                $"cache has {name} as stored");
            return await Reconciler.ReconcileAsync(key, CancellationToken.None);
        }
    }

    private async Task<Pod> SeedPodAsync(string name, string node, params string[] containers)
    {
        var pod = new Pod();
        pod.Metadata.Namespace = Ns;
        pod.Metadata.Name = name;
        pod.Metadata.OwnerReferences = [new OwnerReference { Kind = "StatefulSet", Name = "db", Controller = true, ApiVersion = "apps/v1", Uid = "ss-1" }];
        pod.Spec.NodeName = node;
        pod.Spec.Containers = [.. containers.Select(c => new Container { Name = c, Image = "registry.local/app:1" })];
        var created = await _podsApi.SeedAsync(pod, CancellationToken.None);
        foreach (var c in containers) _runtime.AddContainer(Ns, name, c, podUid: created.Metadata.Uid);
        return created;
    }

    private Task<ContainerCheckpoint> CreateCheckpointAsync(string name, string pod, string container,
        DeletionPolicy policy = DeletionPolicy.Delete, ContainerCheckpointStatus? status = null)
    {
        var c = new ContainerCheckpoint
        {
            Metadata = new ObjectMeta { Namespace = Ns, Name = name },
            Spec = new ContainerCheckpointSpec { PodName = pod, Container = container, DeletionPolicy = policy },
            Status = status,
        };
        return _ckptApi.SeedAsync(c, CancellationToken.None);
    }

    private ContainerCheckpoint Stored(string name) => _ckptApi.Stored(Ns, name)!;

    /// <summary>
    /// A checkpoint the outbox published (taken while the API server was away) names its archive: the node finishes it
    /// from that archive and never checkpoints the container again; a node whose store lacks it leaves it alone.
    /// </summary>
    [Fact]
    public async Task A_checkpoint_published_by_the_outbox_is_finished_from_its_archive_and_never_executed_again()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var agent = await StartAgentAsync();
        var archive = _store.Add(Ns, "db", "postgres", "db-0", DateTimeOffset.UtcNow);
        var c = new ContainerCheckpoint
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns, Name = "db-postgres-20260301100100",
                Annotations = new()
                {
                    [Annotations.ArchiveId] = archive.Id,
                    [Annotations.TakenOfflineOn] = "n1",
                },
            },
            Spec = new ContainerCheckpointSpec { PodName = "db-0", Container = "postgres", DeletionPolicy = DeletionPolicy.Delete },
        };
        var created = await _ckptApi.SeedAsync(c, CancellationToken.None);

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync(c.Metadata.Name!));

        Assert.Empty(_runtime.CheckpointCalls);
        var s = Stored(c.Metadata.Name!);
        Assert.Equal(ContainerCheckpointPhase.Completed, s.Status!.Phase);
        Assert.Equal(archive.Digest, s.Status.Digest);
        Assert.Contains(Finalizers.Archive, s.Metadata.Finalizers!);
        var content = _contentApi.Stored(null, ContainerCheckpointReconciler.ContentNameFor(created.Metadata.Uid!))!;
        Assert.Equal(archive.Id, content.Metadata.Annotations![Annotations.ArchiveId]);
        Assert.Single(_store.List());

        // an archive this node does not have: not executed, not failed (its node's outbox finishes it)
        var elsewhere = await _ckptApi.SeedAsync(new ContainerCheckpoint
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns, Name = "db-postgres-20260301100200",
                Annotations = new() { [Annotations.ArchiveId] = "20260301T100200Z-other" },
            },
            Spec = new ContainerCheckpointSpec { PodName = "db-0", Container = "postgres" },
        }, CancellationToken.None);
        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync(elsewhere.Metadata.Name!));
        Assert.Empty(_runtime.CheckpointCalls);
        Assert.Null(Stored(elsewhere.Metadata.Name!).Status);
    }

    [Fact]
    public async Task Executes_a_checkpoint_of_a_pod_on_this_node_and_records_the_content()
    {
        var pod = await SeedPodAsync("db-0", "n1", "postgres");
        var agent = await StartAgentAsync();
        var ckpt = await CreateCheckpointAsync("db-0-manual", "db-0", "postgres");

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("db-0-manual"));

        var s = Stored("db-0-manual");
        Assert.Equal(ContainerCheckpointPhase.Completed, s.Status!.Phase);
        Assert.Equal("n1", s.Status.Node);
        Assert.Equal(pod.Metadata.Uid, s.Status.PodUid);
        Assert.NotNull(s.Status.StartedAt);
        Assert.NotNull(s.Status.CompletedAt);
        var archive = Assert.Single(_store.List());
        Assert.Equal("db", archive.Workload); // the StatefulSet, from the pod informer
        Assert.Equal(archive.Digest, s.Status.Digest);
        Assert.Equal(archive.Size, s.Status.SizeBytes);
        Assert.Equal(ContainerCheckpointReconciler.ContentNameFor(ckpt.Metadata.Uid!), s.Status.ContentName);
        Assert.True(s.Status.IsConditionTrue(ConditionTypes.Ready));
        Assert.Contains(Finalizers.Archive, s.Metadata.Finalizers!);

        var content = _contentApi.Stored(null, s.Status.ContentName!)!;
        Assert.Equal("n1", content.Spec.Node);
        Assert.Equal(archive.ArchivePath, content.Spec.Path);
        Assert.Equal(archive.Digest, content.Spec.Digest);
        Assert.Equal(archive.Size, content.Spec.SizeBytes);
        Assert.Equal(ArchiveCompression.Zstd, content.Spec.Compression);
        Assert.Equal((Ns, "db-0", "postgres"), (content.Spec.Source.Namespace, content.Spec.Source.Pod, content.Spec.Source.Container));
        Assert.Equal(pod.Metadata.Uid, content.Spec.Source.PodUid);
        Assert.Equal((Ns, "db-0-manual", ckpt.Metadata.Uid), (content.Spec.CheckpointRef.Namespace, content.Spec.CheckpointRef.Name, content.Spec.CheckpointRef.Uid));
        Assert.Equal(DeletionPolicy.Delete, content.Spec.DeletionPolicy);
        Assert.Null(content.Spec.ImageReference); // no image publisher on this node
        Assert.Empty(content.Spec.Validate());
        var owner = Assert.Single(content.Metadata.OwnerReferences!);
        Assert.Equal((ContainerCheckpoint.KindName, "db-0-manual", ckpt.Metadata.Uid), (owner.Kind, owner.Name, owner.Uid));
        Assert.Equal(archive.Id, content.Metadata.Annotations![Annotations.ArchiveId]);
        Assert.Contains(_events.Events, e => e.Reason == "CheckpointCompleted" && e.Type == "Normal" && e.Name == "db-0-manual");

        // completed objects are never run again
        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("db-0-manual"));
        Assert.Single(_runtime.CheckpointCalls);
        Assert.Single(_contentApi.AllStored());
    }

    [Fact]
    public async Task The_content_gets_the_image_reference_the_publisher_gives_for_the_committed_archive()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var images = new RecordingImagePublisher("127.0.0.1:5055");
        var agent = await StartAgentAsync(images: images);
        await CreateCheckpointAsync("c1", "db-0", "postgres");

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c1"));

        var archive = Assert.Single(_store.List());
        var published = Assert.Single(images.Published);
        Assert.Equal(archive.Id, published.Id);
        var s = Stored("c1");
        Assert.Equal(ContainerCheckpointPhase.Completed, s.Status!.Phase);
        var content = _contentApi.Stored(null, s.Status.ContentName!)!;
        Assert.Equal($"127.0.0.1:5055/crsc/shop/db/postgres@{RecordingImagePublisher.ManifestDigestOf(archive)}", content.Spec.ImageReference);
        Assert.Empty(content.Spec.Validate());
    }

    [Fact]
    public async Task A_publisher_failure_leaves_a_completed_checkpoint_without_image_and_a_Warning_event()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var images = new RecordingImagePublisher("127.0.0.1:5055")
        {
            Failure = new CheckpointImageException("x", "checkpoint x records no base image (rootfsImageName of config.dump)"),
        };
        var agent = await StartAgentAsync(images: images);
        await CreateCheckpointAsync("c1", "db-0", "postgres");

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c1"));

        var s = Stored("c1");
        Assert.Equal(ContainerCheckpointPhase.Completed, s.Status!.Phase);
        Assert.Null(_contentApi.Stored(null, s.Status.ContentName!)!.Spec.ImageReference);
        Assert.Contains(_events.Events, e => e.Type == "Warning" && e.Reason == "ImagePublishFailed" && e.Message.Contains("rootfsImageName"));
        Assert.Single(_store.List());
    }

    /// <summary>Names images as the embedded endpoint does (by the archive's store coordinates and a digest derived from it).</summary>
    private sealed class RecordingImagePublisher(string advertise) : ICheckpointImagePublisher
    {
        public List<CheckpointInfo> Published { get; } = [];
        public Exception? Failure { get; init; }

        public static string ManifestDigestOf(CheckpointInfo c) =>
            "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(c.Id + c.Digest)));

        public Task<string?> PublishAsync(CheckpointInfo checkpoint, CancellationToken ct)
        {
            ct.ThrowIfCancellationRequested();
            if (Failure is not null) throw Failure;
            Published.Add(checkpoint);
            return Task.FromResult<string?>($"{advertise}/crsc/{checkpoint.Namespace}/{checkpoint.Workload}/{checkpoint.Container}@{ManifestDigestOf(checkpoint)}");
        }
    }

    [Fact]
    public async Task A_result_that_could_not_be_recorded_is_recorded_on_the_retry_without_checkpointing_again()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var agent = await StartAgentAsync();
        await CreateCheckpointAsync("c1", "db-0", "postgres", DeletionPolicy.Retain);
        var fail = true;
        _ckptApi.BeforeCall = (verb, obj) =>
        {
            if (fail && verb == "updateStatus" && obj?.Status?.Phase == ContainerCheckpointPhase.Completed)
                throw new KubeUnavailableException("connection refused (fake)");
        };

        await Assert.ThrowsAsync<KubeUnavailableException>(async () => await agent.ReconcileAsync("c1"));
        Assert.Equal(ContainerCheckpointPhase.Running, Stored("c1").Status!.Phase);
        fail = false;

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c1"));
        Assert.Equal(ContainerCheckpointPhase.Completed, Stored("c1").Status!.Phase);
        Assert.Single(_runtime.CheckpointCalls);
        Assert.Single(_store.List());
        Assert.Single(_contentApi.AllStored());
    }

    [Fact]
    public async Task Ignores_checkpoints_of_pods_on_other_nodes()
    {
        await SeedPodAsync("web-0", "n2", "app");
        var agent = await StartAgentAsync("n1");
        await CreateCheckpointAsync("web-0-ckpt", "web-0", "app");

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("web-0-ckpt"));

        Assert.Null(Stored("web-0-ckpt").Status);
        Assert.Null(Stored("web-0-ckpt").Metadata.Finalizers);
        Assert.Empty(_runtime.CheckpointCalls);
        Assert.Equal(0, _ckptApi.CallCount("updateStatus"));
    }

    [Fact]
    public async Task A_conflict_on_the_running_transition_means_someone_else_has_it_and_nothing_runs()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var agent = await StartAgentAsync();
        await CreateCheckpointAsync("c1", "db-0", "postgres", DeletionPolicy.Retain);
        _ckptApi.BeforeCall = (verb, obj) =>
        {
            if (verb == "updateStatus" && obj?.Status?.Phase == ContainerCheckpointPhase.Running)
                throw new ConflictException("Conflict", "the object has been modified");
        };

        Assert.Equal(ReconcileResult.Requeue, await agent.ReconcileAsync("c1"));

        Assert.Empty(_runtime.CheckpointCalls);
        Assert.Null(Stored("c1").Status);
    }

    [Fact]
    public async Task A_stale_cache_cannot_start_an_object_twice()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var agent = await StartAgentAsync();
        var created = await CreateCheckpointAsync("c1", "db-0", "postgres", DeletionPolicy.Retain);
        await agent.ReconcileAsync("c1");
        Assert.Single(_runtime.CheckpointCalls);

        // another daemon instance whose cache still shows the object as created: its claim is a 409
        var other = await StartAgentAsync();
        var staleCache = new Informer<ContainerCheckpoint>(new StaleClient(created), new InformerOptions(), TimeProvider.System, NullLogger.Instance);
        _running.Add(staleCache.RunAsync(_stop.Token));
        await staleCache.WaitForSyncAsync(_stop.Token);
        var runner = new CheckpointRunner(_runtime, _runtime, _store, new CheckpointRunnerOptions { NodeName = "n1" }, TimeProvider.System, staging: _staging);
        _runners.Add(runner);
        var stale = new ContainerCheckpointReconciler(_kube, other.Pods, staleCache, runner, _store, _events,
            new ContainerCheckpointReconcilerOptions { NodeName = "n1" }, TimeProvider.System);

        Assert.Equal(ReconcileResult.Requeue, await stale.ReconcileAsync(new ObjectKey(Ns, "c1"), CancellationToken.None));
        Assert.Single(_runtime.CheckpointCalls);
        Assert.Equal(ContainerCheckpointPhase.Completed, Stored("c1").Status!.Phase);
    }

    [Fact]
    public async Task After_a_restart_an_object_left_running_is_finished_from_the_archive_already_stored()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var startedAt = Crsc.Api.Kubernetes.KubeTime.Truncate(DateTimeOffset.UtcNow.AddSeconds(-20));
        var ckpt = await CreateCheckpointAsync("c1", "db-0", "postgres", DeletionPolicy.Retain,
            new ContainerCheckpointStatus { Phase = ContainerCheckpointPhase.Running, Node = "n1", StartedAt = startedAt });
        // older archives of the same container are not it; the one whose manifest names the object as owner is
        _store.Add(Ns, "db", "postgres", "db-0", startedAt.AddMinutes(-10));
        var orphan = _store.Add(Ns, "db", "postgres", "db-0", startedAt.AddSeconds(7),
            owner: new CheckpointOwner(Ns, "c1", ckpt.Metadata.Uid, CheckpointOrigin.Online));
        var agent = await StartAgentAsync();

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c1"));

        Assert.Empty(_runtime.CheckpointCalls);
        var s = Stored("c1").Status!;
        Assert.Equal(ContainerCheckpointPhase.Completed, s.Phase);
        Assert.Equal(orphan.Digest, s.Digest);
        var content = _contentApi.Stored(null, ContainerCheckpointReconciler.ContentNameFor(ckpt.Metadata.Uid!))!;
        Assert.Equal(orphan.ArchivePath, content.Spec.Path);
    }

    /// <summary>
    /// Two objects of the same container, both left Running by a daemon that stopped after storing their archives: each
    /// is finished from the archive its manifest names it the owner of — not the oldest unrecorded archive of the
    /// container after its start (c2's, here), nor nothing when its own was stored later than a time window allows.
    /// An archive of an object of the same name but another UID (deleted and created again) is nobody's here.
    /// </summary>
    [Fact]
    public async Task After_a_restart_each_object_left_running_is_finished_from_the_archive_it_owns_not_one_of_the_same_container()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var startedAt = Crsc.Api.Kubernetes.KubeTime.Truncate(DateTimeOffset.UtcNow.AddHours(-1));
        var running = new ContainerCheckpointStatus { Phase = ContainerCheckpointPhase.Running, Node = "n1", StartedAt = startedAt };
        var c1 = await CreateCheckpointAsync("c1", "db-0", "postgres", DeletionPolicy.Retain, running);
        var c2 = await CreateCheckpointAsync("c2", "db-0", "postgres", DeletionPolicy.Retain, running);
        var c3 = await CreateCheckpointAsync("c3", "db-0", "postgres", DeletionPolicy.Retain, running);
        var ofC2 = _store.Add(Ns, "db", "postgres", "db-0", startedAt.AddSeconds(3),
            owner: new CheckpointOwner(Ns, "c2", c2.Metadata.Uid, CheckpointOrigin.Online));
        var ofC1 = _store.Add(Ns, "db", "postgres", "db-0", startedAt.AddMinutes(40),
            owner: new CheckpointOwner(Ns, "c1", c1.Metadata.Uid, CheckpointOrigin.Online));
        _store.Add(Ns, "db", "postgres", "db-0", startedAt.AddSeconds(5),
            owner: new CheckpointOwner(Ns, "c3", Guid.NewGuid().ToString(), CheckpointOrigin.Online));
        var agent = await StartAgentAsync();

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c1"));
        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c2"));
        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c3"));

        Assert.Empty(_runtime.CheckpointCalls);
        Assert.Equal((ContainerCheckpointPhase.Completed, ofC1.Digest), (Stored("c1").Status!.Phase, Stored("c1").Status!.Digest));
        Assert.Equal((ContainerCheckpointPhase.Completed, ofC2.Digest), (Stored("c2").Status!.Phase, Stored("c2").Status!.Digest));
        Assert.Equal(ofC1.ArchivePath, _contentApi.Stored(null, ContainerCheckpointReconciler.ContentNameFor(c1.Metadata.Uid!))!.Spec.Path);
        Assert.Equal(ofC2.ArchivePath, _contentApi.Stored(null, ContainerCheckpointReconciler.ContentNameFor(c2.Metadata.Uid!))!.Spec.Path);
        Assert.Equal(ContainerCheckpointPhase.Failed, Stored("c3").Status!.Phase);
        Assert.Contains("interrupted by daemon restart", Stored("c3").Status!.Message);
    }

    /// <summary>
    /// A daemon that stored the archive and stopped before recording it (here: the Content could not be created): the
    /// next daemon finishes the object from that archive, found by its owner, and checkpoints nothing again — though a
    /// later archive of the same container, of a checkpoint taken outside crsc, was stored meanwhile.
    /// </summary>
    [Fact]
    public async Task After_a_crash_between_ingest_and_recording_the_next_daemon_adopts_the_archive_by_its_owner()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var first = await StartAgentAsync();
        var ckpt = await CreateCheckpointAsync("c1", "db-0", "postgres", DeletionPolicy.Retain);
        _contentApi.BeforeCall = (verb, _) =>
        {
            if (verb == "create") throw new KubeUnavailableException("connection refused (fake)");
        };
        await Assert.ThrowsAsync<KubeUnavailableException>(async () => await first.ReconcileAsync("c1"));
        Assert.Equal(ContainerCheckpointPhase.Running, Stored("c1").Status!.Phase);
        var stored = Assert.Single(_store.List());
        _contentApi.BeforeCall = null;
        _store.Add(Ns, "db", "postgres", "db-0", DateTimeOffset.UtcNow.AddSeconds(1));

        var second = await StartAgentAsync();
        Assert.Equal(ReconcileResult.Done, await second.ReconcileAsync("c1"));

        Assert.Single(_runtime.CheckpointCalls);
        Assert.Equal(ContainerCheckpointPhase.Completed, Stored("c1").Status!.Phase);
        Assert.Equal(stored.Digest, Stored("c1").Status!.Digest);
        Assert.Equal(stored.ArchivePath, _contentApi.Stored(null, ContainerCheckpointReconciler.ContentNameFor(ckpt.Metadata.Uid!))!.Spec.Path);
    }

    /// <summary>The runner records the object as the archive's owner, with its UID and origin online.</summary>
    [Fact]
    public async Task An_executed_checkpoint_records_its_object_as_the_archives_owner()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var ckpt = await CreateCheckpointAsync("c1", "db-0", "postgres", DeletionPolicy.Retain);
        var agent = await StartAgentAsync();

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c1"));

        var (_, source, _) = Assert.Single(_store.Ingests);
        Assert.Equal(new CheckpointOwner(Ns, "c1", ckpt.Metadata.Uid, CheckpointOrigin.Online), source.Owner);
        Assert.Equal(_store.List().Single().Id, Assert.Single(_store.FindByOwner(Ns, "c1", ckpt.Metadata.Uid)).Id);
    }

    [Fact]
    public async Task After_a_restart_an_object_left_running_with_its_content_created_is_completed_from_the_content()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var ckpt = await CreateCheckpointAsync("c1", "db-0", "postgres", DeletionPolicy.Retain,
            new ContainerCheckpointStatus { Phase = ContainerCheckpointPhase.Running, Node = "n1", StartedAt = DateTimeOffset.UtcNow });
        var content = new ContainerCheckpointContent
        {
            Metadata = new ObjectMeta { Name = ContainerCheckpointReconciler.ContentNameFor(ckpt.Metadata.Uid!) },
            Spec = new ContainerCheckpointContentSpec
            {
                Node = "n1", Path = "/var/lib/crsc/checkpoints/x.tar.zst", Digest = "sha256:" + new string('a', 64), SizeBytes = 77,
                CheckpointRef = new NamespacedObjectReference { Namespace = Ns, Name = "c1", Uid = ckpt.Metadata.Uid },
            },
        };
        await _contentApi.SeedAsync(content, CancellationToken.None);
        var agent = await StartAgentAsync();

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c1"));

        Assert.Empty(_runtime.CheckpointCalls);
        Assert.Equal(ContainerCheckpointPhase.Completed, Stored("c1").Status!.Phase);
        Assert.Equal(77, Stored("c1").Status!.SizeBytes);
        Assert.Single(_contentApi.AllStored());
    }

    [Fact]
    public async Task After_a_restart_an_object_left_running_without_an_archive_fails_as_interrupted_and_is_not_run_again()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        await CreateCheckpointAsync("c1", "db-0", "postgres", DeletionPolicy.Retain,
            new ContainerCheckpointStatus { Phase = ContainerCheckpointPhase.Running, Node = "n1", StartedAt = DateTimeOffset.UtcNow.AddSeconds(-5) });
        var agent = await StartAgentAsync();

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c1"));

        Assert.Empty(_runtime.CheckpointCalls);
        var s = Stored("c1").Status!;
        Assert.Equal(ContainerCheckpointPhase.Failed, s.Phase);
        Assert.Contains("interrupted by daemon restart", s.Message);
        Assert.Equal("Interrupted", s.FindCondition(ConditionTypes.Ready)!.Reason);
        Assert.Contains(_events.Events, e => e.Type == "Warning" && e.Reason == "CheckpointFailed");
        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c1"));
        Assert.Empty(_runtime.CheckpointCalls);
    }

    [Fact]
    public async Task A_running_object_of_another_node_is_left_alone()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        await CreateCheckpointAsync("c1", "db-0", "postgres", DeletionPolicy.Retain,
            new ContainerCheckpointStatus { Phase = ContainerCheckpointPhase.Running, Node = "n2", StartedAt = DateTimeOffset.UtcNow });
        var agent = await StartAgentAsync();

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c1"));

        Assert.Equal(ContainerCheckpointPhase.Running, Stored("c1").Status!.Phase);
        Assert.Equal(0, _ckptApi.CallCount("updateStatus"));
    }

    [Fact]
    public async Task A_runtime_failure_fails_the_object_with_the_criu_log_and_a_warning_and_is_not_retried()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var id = (await _runtime.ListContainersAsync(null, CancellationToken.None)).Single().Id;
        var logPath = $"/run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/criu-dump.log";
        _staging.Logs[logPath] = "Error (criu/sk-inet.c:191): inet: Connected TCP socket, consider using --tcp-established option.\n";
        _runtime.OnCheckpoint = (_, _, _, _) => throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed,
            "checkpoint failed", "Unknown", $"criu failed: type NOTIFY errno 0 path= {logPath}");
        var agent = await StartAgentAsync();
        await CreateCheckpointAsync("c1", "db-0", "postgres");

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c1"));

        var s = Stored("c1").Status!;
        Assert.Equal(ContainerCheckpointPhase.Failed, s.Phase);
        Assert.Contains("criu failed", s.Message);
        Assert.Contains("--tcp-established", s.CriuLog);
        Assert.Equal("RuntimeFailed", s.FindCondition(ConditionTypes.Ready)!.Reason);
        Assert.Contains(_events.Events, e => e.Type == "Warning" && e.Reason == "CheckpointFailed" && e.Message.Contains("criu failed"));
        Assert.Empty(_contentApi.AllStored());
        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c1"));
        Assert.Single(_runtime.CheckpointCalls);
    }

    [Fact]
    public async Task A_container_the_pod_does_not_have_fails_without_touching_the_runtime()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var agent = await StartAgentAsync();
        await CreateCheckpointAsync("c1", "db-0", "redis");

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c1"));

        var s = Stored("c1").Status!;
        Assert.Equal(ContainerCheckpointPhase.Failed, s.Phase);
        Assert.Contains("no container 'redis'", s.Message);
        Assert.Contains("postgres", s.Message);
        Assert.Empty(_runtime.CheckpointCalls);
        Assert.Equal(0, _runtime.ListCalls);
    }

    [Fact]
    public async Task A_store_rejection_fails_the_object()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        _store.IngestError = new Crsc.Controllers.Storage.ArchiveRejectedException("archive refused: no config.dump");
        var agent = await StartAgentAsync();
        await CreateCheckpointAsync("c1", "db-0", "postgres");

        await agent.ReconcileAsync("c1");

        var s = Stored("c1").Status!;
        Assert.Equal(ContainerCheckpointPhase.Failed, s.Phase);
        Assert.Equal("ArchiveRejected", s.FindCondition(ConditionTypes.Ready)!.Reason);
        Assert.Contains("no config.dump", s.Message);
        Assert.Contains(_runtime.CheckpointCalls[0].Path, _staging.Deleted);
    }

    [Fact]
    public async Task Deleting_an_object_with_deletion_policy_delete_removes_the_archive_and_the_content_then_the_finalizer()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var agent = await StartAgentAsync();
        await CreateCheckpointAsync("c1", "db-0", "postgres");
        await agent.ReconcileAsync("c1");
        var archive = Assert.Single(_store.List());
        var contentName = Stored("c1").Status!.ContentName!;

        // the fake, as the API server, only sets deletionTimestamp on DELETE of an object with finalizers
        await _ckptApi.DeleteAsync(Ns, "c1", null, CancellationToken.None);
        Assert.NotNull(Stored("c1").Metadata.DeletionTimestamp);

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("c1"));

        Assert.Contains(archive.Id, _store.Deleted);
        Assert.Empty(_store.List());
        Assert.Null(_contentApi.Stored(null, contentName));
        Assert.Null(_ckptApi.Stored(Ns, "c1")); // its last finalizer removed, the object is gone
    }

    [Fact]
    public async Task Deletion_policy_retain_adds_no_finalizer_and_keeps_the_archive()
    {
        await SeedPodAsync("db-0", "n1", "postgres");
        var agent = await StartAgentAsync();
        await CreateCheckpointAsync("c1", "db-0", "postgres", DeletionPolicy.Retain);
        await agent.ReconcileAsync("c1");

        Assert.Equal(ContainerCheckpointPhase.Completed, Stored("c1").Status!.Phase);
        Assert.Null(Stored("c1").Metadata.Finalizers);
        Assert.Equal(DeletionPolicy.Retain, Assert.Single(_contentApi.AllStored()).Spec.DeletionPolicy);
    }

    [Fact]
    public async Task The_controller_starts_checkpoints_when_their_pod_arrives_on_the_node()
    {
        var manager = new ControllerManager(new ControllerManagerOptions
        {
            Kube = _kube, Events = _events, Time = TimeProvider.System, Loggers = NullLoggerFactory.Instance,
        });
        var runner = new CheckpointRunner(_runtime, _runtime, _store, new CheckpointRunnerOptions { NodeName = "n1" },
            TimeProvider.System, staging: _staging);
        _runners.Add(runner);
        ContainerCheckpointReconciler.SetUp(manager, "n1", runner, _store);
        _running.Add(manager.RunAsync(_stop.Token));
        await CreateCheckpointAsync("early", "db-0", "postgres");
        await Task.Delay(200);
        Assert.Null(Stored("early").Status); // its pod is not here (yet)

        await SeedPodAsync("db-0", "n1", "postgres");

        await Eventually.TrueAsync(() => Stored("early").Status?.Phase == ContainerCheckpointPhase.Completed, "checkpoint completed");
        Assert.Single(_runtime.CheckpointCalls);
    }

    /// <summary>A client whose list always answers with one old copy of an object (a cache behind the server).</summary>
    private sealed class StaleClient(ContainerCheckpoint old) : IKubeResourceClient<ContainerCheckpoint>
    {
        public ResourceType<ContainerCheckpoint> Type => CrscResources.ContainerCheckpoints;
        public Task<KubeList<ContainerCheckpoint>> ListAsync(string? ns, ListOptions options, CancellationToken ct)
        {
            var list = new KubeList<ContainerCheckpoint> { Items = [old] };
            list.Metadata.ResourceVersion = old.Metadata.ResourceVersion;
            return Task.FromResult(list);
        }
        public async IAsyncEnumerable<WatchEvent<ContainerCheckpoint>> WatchAsync(string? ns, WatchOptions options,
            [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
        {
            await Task.Delay(Timeout.Infinite, ct);
            yield break;
        }
        public Task<ContainerCheckpoint> GetAsync(string? ns, string name, CancellationToken ct) => throw new NotSupportedException();
        public Task<ContainerCheckpoint> CreateAsync(ContainerCheckpoint obj, CancellationToken ct) => throw new NotSupportedException();
        public Task<ContainerCheckpoint> UpdateAsync(ContainerCheckpoint obj, CancellationToken ct) => throw new NotSupportedException();
        public Task<ContainerCheckpoint> UpdateStatusAsync(ContainerCheckpoint obj, CancellationToken ct) => throw new NotSupportedException();
        public Task<ContainerCheckpoint> PatchAsync(string? ns, string name, PatchType type, string body, CancellationToken ct,
            bool status = false, string? fieldManager = null, bool force = false) => throw new NotSupportedException();
        public Task DeleteAsync(string? ns, string name, DeleteOptions? options, CancellationToken ct) => throw new NotSupportedException();
    }
}

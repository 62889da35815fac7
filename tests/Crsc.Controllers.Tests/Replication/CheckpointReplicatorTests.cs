using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Replication;
using Crsc.Controllers.Schedules;
using Crsc.Controllers.Storage;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Storage;
using Crsc.Storage.Oci;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Crsc.Testing.Registry;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Replication;

/// <summary>
/// The node agent copies the checkpoints of <c>replicate: Registry</c> schedules to the registry in the background:
/// against an in-process registry and API server, with a real store.
/// </summary>
public sealed class CheckpointReplicatorTests : IAsyncLifetime
{
    private const string Ns = "shop";
    private readonly TempDir _dir = new("crsc-replicator-");
    private readonly FakeKube _kube = new();
    private readonly FakeResourceClient<CheckpointSchedule> _schedulesApi;
    private readonly FakeResourceClient<ContainerCheckpoint> _ckptApi;
    private readonly FakeResourceClient<ContainerCheckpointContent> _contentsApi;
    private readonly RecordingEventRecorder _events = new();
    private readonly ReplicationMetrics _metrics = new(new MetricsRegistry());
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _running = [];
    private DiskCheckpointStore _store = null!;
    private FakeRegistry _registry = null!;
    private RegistryClient _client = null!;
    private RegistryReplicaTarget _target = null!;

    public CheckpointReplicatorTests()
    {
        _schedulesApi = _kube.For(CrscResources.CheckpointSchedules);
        _ckptApi = _kube.For(CrscResources.ContainerCheckpoints);
        _contentsApi = _kube.For(CrscResources.ContainerCheckpointContents);
    }

    public async Task InitializeAsync()
    {
        _store = new DiskCheckpointStore(new DiskCheckpointStoreOptions
        {
            CheckpointDirectory = _dir.Combine("checkpoints"), StagingDirectory = _dir.Combine("staging"), NodeName = "n1",
        });
        _registry = await FakeRegistry.StartAsync(new FakeRegistryOptions { DeletesEnabled = true });
        // one attempt per push: the replicator's own backoff is what tries again
        _client = new RegistryClient(new RegistryClientOptions { Registry = _registry.Host, Insecure = true, MaxAttempts = 1 },
            TimeProvider.System, NullLogger<RegistryClient>.Instance);
        var location = RegistryLocation.Parse(_registry.Host);
        _target = new RegistryReplicaTarget(new RegistryPushPublisher(_store, _client, location), _client, location);
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running);
        _stop.Dispose();
        _client.Dispose();
        await _registry.DisposeAsync();
        _store.Dispose();
        _dir.Dispose();
    }

    /// <summary>A node agent's replicator as the daemon sets it up; a new one is a daemon (re)start.</summary>
    private Agent StartReplicator(string node = "n1")
    {
        var manager = new ControllerManager(new ControllerManagerOptions
        {
            Kube = _kube, Events = _events, Time = TimeProvider.System, Loggers = NullLoggerFactory.Instance,
        });
        var setup = CheckpointReplicator.SetUp(manager, _store, _target, new CheckpointReplicatorOptions
        {
            NodeName = node, RetryInitialDelay = TimeSpan.FromMilliseconds(20), RetryMaxDelay = TimeSpan.FromMilliseconds(100),
        }, _metrics);
        _running.Add(manager.RunAsync(_stop.Token));
        return new Agent(this, setup.Reconciler, manager.Informers.For(CrscResources.ContainerCheckpointContents));
    }

    private sealed record Agent(CheckpointReplicatorTests T, CheckpointReplicator Replicator,
        Informer<ContainerCheckpointContent> Contents)
    {
        /// <summary>Reconciles <paramref name="content"/> once the cache shows every Content as stored.</summary>
        public async Task<ReconcileResult> ReconcileAsync(string content)
        {
            await Eventually.TrueAsync(() => T._contentsApi.AllStored().All(c =>
                Contents.Get(new ObjectKey(null, c.Metadata.Name!))?.Metadata.ResourceVersion == c.Metadata.ResourceVersion),
                "the Content cache as stored");
            return await Replicator.ReconcileAsync(new ObjectKey(null, content), CancellationToken.None);
        }
    }

    private sealed record Seeded(CheckpointInfo Archive, ContainerCheckpoint Checkpoint, string Content)
    {
        public string Repository => $"crsc/{Archive.Namespace}/{Archive.Workload}/{Archive.Container}";
    }

    /// <summary>
    /// A completed ContainerCheckpoint of schedule <paramref name="workload"/> (replicating as asked), its archive in
    /// the store and its Content on <paramref name="node"/>, as the node agent leaves them.
    /// </summary>
    private async Task<Seeded> SeedCompletedAsync(string workload, CheckpointReplication replicate, string node = "n1",
        List<CheckpointCopy>? copies = null)
    {
        var archive = await StoreSeed.AddAsync(_store, Ns, workload, workload);
        var schedule = _schedulesApi.Stored(Ns, workload) ?? await _schedulesApi.SeedAsync(new CheckpointSchedule
        {
            Metadata = new ObjectMeta { Namespace = Ns, Name = workload },
            Spec = new CheckpointScheduleSpec
            {
                Target = new ScheduleTarget { Kind = ScheduleTargetKind.Deployment, Name = workload },
                Interval = "1h",
                Replicate = replicate,
            },
        });
        var name = $"{workload}-{workload}-{archive.Id.ToLowerInvariant().Replace('_', '-')}";
        var checkpoint = ScheduleReconciler.NewCheckpoint(schedule, name, workload + "-0", workload, archive.CreatedAt);
        var contentName = "ckpt-" + name;
        checkpoint.Status = new ContainerCheckpointStatus
        {
            Phase = ContainerCheckpointPhase.Completed, Node = node, ContentName = contentName, Digest = archive.Digest,
        };
        checkpoint = await _ckptApi.SeedAsync(checkpoint);
        await _contentsApi.SeedAsync(new ContainerCheckpointContent
        {
            Metadata = new ObjectMeta { Name = contentName, Annotations = new() { [Annotations.ArchiveId] = archive.Id } },
            Spec = new ContainerCheckpointContentSpec
            {
                Node = node, Path = archive.ArchivePath, Digest = archive.Digest, SizeBytes = archive.Size,
                Source = new CheckpointSource { Namespace = Ns, Pod = workload + "-0", Container = workload },
                CheckpointRef = new NamespacedObjectReference { Namespace = Ns, Name = name, Uid = checkpoint.Metadata.Uid },
            },
            Status = copies is null ? null : new ContainerCheckpointContentStatus { Copies = copies },
        });
        return new Seeded(archive, checkpoint, contentName);
    }

    private List<CheckpointCopy> RegistryCopies(string content) =>
        _contentsApi.Stored(null, content)?.Status?.Copies?.Where(c => c.Kind == CheckpointCopyKind.Registry).ToList() ?? [];

    private int ManifestPuts(Seeded s) =>
        _registry.Requests.Count(r => r.Method == "PUT" && r.Path == $"/v2/{s.Repository}/manifests/{s.Archive.Id}");

    [Fact]
    public async Task A_completed_checkpoint_of_a_Registry_schedule_is_pushed_and_its_copy_recorded_once()
    {
        var seeded = await SeedCompletedAsync("cart", CheckpointReplication.Registry);
        // another writer (a node recording a copy it fetched) gets in first: the replicator's write meets a 409
        var raced = false;
        _contentsApi.BeforeCall = (verb, obj) =>
        {
            if (verb != "updateStatus" || raced) return;
            raced = true;
            var current = _contentsApi.Stored(null, seeded.Content)!;
            current.Status = new ContainerCheckpointContentStatus
            {
                Copies = [new CheckpointCopy { Kind = CheckpointCopyKind.Node, Node = "n2", ImageReference = "n2.example:5055/x@sha256:" + new string('b', 64) }],
            };
            _contentsApi.SeedAsync(current).GetAwaiter().GetResult();
        };
        var agent = StartReplicator();

        await Eventually.TrueAsync(() => RegistryCopies(seeded.Content).Count > 0, "the registry copy recorded");

        var copy = Assert.Single(RegistryCopies(seeded.Content));
        var manifest = _registry.Manifest(seeded.Repository, seeded.Archive.Id);
        Assert.NotNull(manifest);
        Assert.Equal($"{_registry.Host}/{seeded.Repository}@{manifest.Value.Digest}", copy.ImageReference);
        Assert.Equal("n1", copy.Node);
        Assert.NotNull(copy.CopiedAt);
        Assert.True(raced);
        Assert.Contains(_contentsApi.Stored(null, seeded.Content)!.Status!.Copies!, c => c.Kind == CheckpointCopyKind.Node && c.Node == "n2");
        Assert.Contains(_events.Events, e => e.Reason == CheckpointReplicator.ReasonReplicated && e.Name == seeded.Checkpoint.Metadata.Name);

        // reconciled again (any later change of the Content or its checkpoint): nothing more is pushed or recorded
        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync(seeded.Content));
        Assert.Equal(1, ManifestPuts(seeded));
        Assert.Single(RegistryCopies(seeded.Content));
        Assert.Equal(1, _metrics.Pushes.Value(ReplicationMetrics.ResultSucceeded));
    }

    [Fact]
    public async Task Checkpoints_of_a_None_schedule_and_of_other_nodes_are_not_pushed()
    {
        var none = await SeedCompletedAsync("cart", CheckpointReplication.None);
        var elsewhere = await SeedCompletedAsync("orders", CheckpointReplication.Registry, node: "n2");
        var agent = StartReplicator();

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync(none.Content));
        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync(elsewhere.Content));

        Assert.DoesNotContain(_registry.Requests, r => r.Method is "PUT" or "POST" or "HEAD");
        Assert.Empty(RegistryCopies(none.Content));
        Assert.Empty(RegistryCopies(elsewhere.Content));
    }

    [Fact]
    public async Task A_push_that_fails_is_tried_again_with_backoff_until_it_succeeds()
    {
        // the registry fails twice (its first answer to each try): both tries fail, the third gets through
        _registry.FailNext(2, 500);
        var seeded = await SeedCompletedAsync("cart", CheckpointReplication.Registry);
        StartReplicator();

        await Eventually.TrueAsync(() => RegistryCopies(seeded.Content).Count > 0, "the registry copy recorded after the failures");

        Assert.Equal(2, _metrics.Pushes.Value(ReplicationMetrics.ResultFailed));
        Assert.Equal(1, _metrics.Pushes.Value(ReplicationMetrics.ResultSucceeded));
        Assert.NotNull(_registry.Manifest(seeded.Repository, seeded.Archive.Id));
        // said once, not at every try
        var warning = Assert.Single(_events.Events, e => e.Reason == CheckpointReplicator.ReasonReplicationFailed);
        Assert.Equal(seeded.Checkpoint.Metadata.Name, warning.Name);
        Assert.Contains(_registry.Host, warning.Message);
    }

    [Fact]
    public async Task On_start_a_checkpoint_still_lacking_its_replica_is_pushed_and_one_that_has_it_is_not()
    {
        // completed while the daemon was down (or before a push could finish): nothing will change them again
        var missing = await SeedCompletedAsync("cart", CheckpointReplication.Registry);
        var done = await SeedCompletedAsync("orders", CheckpointReplication.Registry, copies:
        [
            new CheckpointCopy
            {
                Kind = CheckpointCopyKind.Registry, Node = "n1", CopiedAt = DateTimeOffset.UtcNow,
                ImageReference = $"{_registry.Host}/crsc/{Ns}/orders/orders@sha256:{new string('c', 64)}",
            },
        ]);

        StartReplicator();

        await Eventually.TrueAsync(() => RegistryCopies(missing.Content).Count > 0, "the missing replica pushed after the start");
        Assert.NotNull(_registry.Manifest(missing.Repository, missing.Archive.Id));
        Assert.Equal(0, ManifestPuts(done));
        Assert.DoesNotContain(_registry.Requests, r => r.Path.Contains("/orders/", StringComparison.Ordinal));
        Assert.Single(RegistryCopies(done.Content));
    }
}

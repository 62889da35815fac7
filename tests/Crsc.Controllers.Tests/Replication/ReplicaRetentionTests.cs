using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Storage;
using Crsc.Controllers.Replication;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Controllers.Tests.Support;
using Crsc.Storage;
using Crsc.Storage.Oci;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Crsc.Testing.Registry;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Replication;

/// <summary>
/// Retention applies in the registry too: when a checkpoint goes (retention deletes the ContainerCheckpoint, its
/// finalizer deletes the archive), the registry copy crsc pushed goes with it — and a registry that does not delete
/// holds up nothing.
/// </summary>
public sealed class ReplicaRetentionTests : IAsyncLifetime
{
    private const string Ns = "shop";
    private readonly TempDir _dir = new("crsc-replica-retention-");
    private readonly FakeKube _kube = new();
    private readonly FakeResourceClient<ContainerCheckpoint> _ckptApi;
    private readonly FakeResourceClient<ContainerCheckpointContent> _contentsApi;
    private readonly RecordingEventRecorder _events = new();
    private readonly RecordingLogger _log = new();
    private readonly ReplicationMetrics _metrics = new(new MetricsRegistry());
    private readonly FakeContainerRuntime _runtime = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _running = [];
    private DiskCheckpointStore _store = null!;
    private FakeRegistry _registry = null!;
    private RegistryClient _client = null!;
    private RegistryReplicaTarget _target = null!;
    private CheckpointRunner? _runner;

    public ReplicaRetentionTests()
    {
        _ckptApi = _kube.For(CrscResources.ContainerCheckpoints);
        _contentsApi = _kube.For(CrscResources.ContainerCheckpointContents);
        _kube.For(Resources.Pods).FieldReader = (p, field) => field == "spec.nodeName" ? p.Spec.NodeName : null;
    }

    public Task InitializeAsync()
    {
        _store = new DiskCheckpointStore(new DiskCheckpointStoreOptions
        {
            CheckpointDirectory = _dir.Combine("checkpoints"), StagingDirectory = _dir.Combine("staging"), NodeName = "n1",
        });
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running);
        _stop.Dispose();
        _runner?.Dispose();
        _client?.Dispose();
        if (_registry is not null) await _registry.DisposeAsync();
        _store.Dispose();
        _dir.Dispose();
    }

    private async Task StartRegistryAsync(bool deletesEnabled)
    {
        _registry = await FakeRegistry.StartAsync(new FakeRegistryOptions { DeletesEnabled = deletesEnabled });
        _client = new RegistryClient(new RegistryClientOptions { Registry = _registry.Host, Insecure = true, MaxAttempts = 1 },
            TimeProvider.System, NullLogger<RegistryClient>.Instance);
        var location = RegistryLocation.Parse(_registry.Host);
        _target = new RegistryReplicaTarget(new RegistryPushPublisher(_store, _client, location), _client, location);
    }

    /// <summary>The node agent's checkpoint reconciler with the registry's remover, as the daemon wires it in replicate mode.</summary>
    private async Task<Func<string, Task<ReconcileResult>>> StartAgentAsync()
    {
        var pods = new Informer<Pod>(_kube.For(Resources.Pods), new InformerOptions { FieldSelector = "spec.nodeName=n1" },
            TimeProvider.System, NullLogger.Instance);
        var ckpts = new Informer<ContainerCheckpoint>(_ckptApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance);
        _runner = new CheckpointRunner(_runtime, _runtime, _store, new CheckpointRunnerOptions { NodeName = "n1" },
            TimeProvider.System, staging: new FakeStagingArea());
        var reconciler = new ContainerCheckpointReconciler(_kube, pods, ckpts, _runner, _store, _events,
            new ContainerCheckpointReconcilerOptions { NodeName = "n1" }, TimeProvider.System, NullLogger.Instance,
            new CheckpointMetrics(new MetricsRegistry()), imagePublisher: null,
            replicas: new ReplicaRemover(_target, _events, _log, _metrics));
        _running.Add(pods.RunAsync(_stop.Token));
        _running.Add(ckpts.RunAsync(_stop.Token));
        await pods.WaitForSyncAsync(_stop.Token);
        await ckpts.WaitForSyncAsync(_stop.Token);
        return async name =>
        {
            await Eventually.TrueAsync(() => ckpts.Get(new ObjectKey(Ns, name))?.Metadata.ResourceVersion
                == _ckptApi.Stored(Ns, name)?.Metadata.ResourceVersion, $"cache has {name} as stored");
            return await reconciler.ReconcileAsync(new ObjectKey(Ns, name), CancellationToken.None);
        };
    }

    private sealed record Replicated(string Checkpoint, string Content, CheckpointInfo Archive, string Reference)
    {
        public string Repository => $"crsc/{Archive.Namespace}/{Archive.Workload}/{Archive.Container}";
        public string Digest => Reference[(Reference.IndexOf('@') + 1)..];
    }

    /// <summary>
    /// A completed checkpoint of this node whose image the replicator pushed (its Content lists the copy), which
    /// retention has just deleted: deletionTimestamp set, the archive finalizer still on.
    /// </summary>
    private async Task<Replicated> SeedDeletedReplicatedAsync(string workload)
    {
        var archive = await StoreSeed.AddAsync(_store, Ns, workload, workload);
        var reference = await _target.PushAsync(archive, CancellationToken.None);
        var name = $"{workload}-{workload}-20260301100000";
        var ckpt = await _ckptApi.SeedAsync(new ContainerCheckpoint
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns, Name = name, Finalizers = [Finalizers.Archive], DeletionTimestamp = DateTimeOffset.UtcNow,
            },
            Spec = new ContainerCheckpointSpec { PodName = workload + "-0", Container = workload, DeletionPolicy = DeletionPolicy.Delete },
            Status = new ContainerCheckpointStatus { Phase = ContainerCheckpointPhase.Completed, Node = "n1" },
        });
        var content = ContainerCheckpointReconciler.ContentNameFor(ckpt.Metadata.Uid!);
        await _contentsApi.SeedAsync(new ContainerCheckpointContent
        {
            Metadata = new ObjectMeta { Name = content, Annotations = new() { [Annotations.ArchiveId] = archive.Id } },
            Spec = new ContainerCheckpointContentSpec
            {
                Node = "n1", Path = archive.ArchivePath, Digest = archive.Digest, SizeBytes = archive.Size,
                DeletionPolicy = DeletionPolicy.Delete,
                Source = new CheckpointSource { Namespace = Ns, Pod = workload + "-0", Container = workload },
                CheckpointRef = new NamespacedObjectReference { Namespace = Ns, Name = name, Uid = ckpt.Metadata.Uid },
            },
            Status = new ContainerCheckpointContentStatus
            {
                Copies = [new CheckpointCopy { Kind = CheckpointCopyKind.Registry, Node = "n1", ImageReference = reference, CopiedAt = DateTimeOffset.UtcNow }],
            },
        });
        return new Replicated(name, content, archive, reference);
    }

    [Fact]
    public async Task Deleting_a_replicated_checkpoint_deletes_its_manifest_from_the_registry_with_the_archive()
    {
        await StartRegistryAsync(deletesEnabled: true);
        var r = await SeedDeletedReplicatedAsync("cart");
        Assert.NotNull(_registry.Manifest(r.Repository, r.Digest));
        var reconcile = await StartAgentAsync();

        Assert.Equal(ReconcileResult.Done, await reconcile(r.Checkpoint));

        Assert.Contains(_registry.Requests, q => q.Method == "DELETE" && q.Path == $"/v2/{r.Repository}/manifests/{r.Digest}");
        Assert.Null(_registry.Manifest(r.Repository, r.Digest));
        Assert.Null(_registry.Manifest(r.Repository, r.Archive.Id)); // its tag went with it
        Assert.Null(_store.Get(r.Archive.Id));
        Assert.Null(_contentsApi.Stored(null, r.Content));
        Assert.Null(_ckptApi.Stored(Ns, r.Checkpoint)); // the finalizer let go
        Assert.Equal(1, _metrics.Deletions.Value(ReplicationMetrics.ResultDeleted));
    }

    [Fact]
    public async Task A_manifest_gone_already_is_fine()
    {
        await StartRegistryAsync(deletesEnabled: true);
        var r = await SeedDeletedReplicatedAsync("cart");
        Assert.Equal(ReplicaDeletion.Deleted, await _target.DeleteAsync(r.Reference, CancellationToken.None)); // someone pruned it
        var reconcile = await StartAgentAsync();

        Assert.Equal(ReconcileResult.Done, await reconcile(r.Checkpoint));

        Assert.Null(_store.Get(r.Archive.Id));
        Assert.Null(_contentsApi.Stored(null, r.Content));
        Assert.Equal(1, _metrics.Deletions.Value(ReplicationMetrics.ResultGone));
        Assert.DoesNotContain(_events.Events, e => e.Reason == ReplicaRemover.ReasonReplicaNotDeleted);
    }

    [Fact]
    public async Task A_registry_that_does_not_delete_is_said_once_and_holds_up_no_local_deletion()
    {
        await StartRegistryAsync(deletesEnabled: false);
        var first = await SeedDeletedReplicatedAsync("cart");
        var second = await SeedDeletedReplicatedAsync("orders");
        var reconcile = await StartAgentAsync();

        Assert.Equal(ReconcileResult.Done, await reconcile(first.Checkpoint));
        Assert.Equal(ReconcileResult.Done, await reconcile(second.Checkpoint));

        foreach (var r in new[] { first, second })
        {
            Assert.Contains(_registry.Requests, q => q.Method == "DELETE" && q.Path == $"/v2/{r.Repository}/manifests/{r.Digest}");
            Assert.NotNull(_registry.Manifest(r.Repository, r.Digest)); // 405: it stays
            Assert.Null(_store.Get(r.Archive.Id));
            Assert.Null(_contentsApi.Stored(null, r.Content));
            Assert.Null(_ckptApi.Stored(Ns, r.Checkpoint));
        }
        var warning = Assert.Single(_log.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains("does not delete manifests", warning.Message);
        Assert.Contains(_registry.Host, warning.Message);
        Assert.Equal(2, _metrics.Deletions.Value(ReplicationMetrics.ResultRefused));
    }

    [Fact]
    public async Task A_registry_that_cannot_be_reached_leaves_a_warning_and_the_archive_is_deleted_all_the_same()
    {
        await StartRegistryAsync(deletesEnabled: true);
        var r = await SeedDeletedReplicatedAsync("cart");
        _registry.FailNext(1, 503);
        var reconcile = await StartAgentAsync();

        Assert.Equal(ReconcileResult.Done, await reconcile(r.Checkpoint));

        Assert.NotNull(_registry.Manifest(r.Repository, r.Digest));
        Assert.Null(_store.Get(r.Archive.Id));
        Assert.Null(_contentsApi.Stored(null, r.Content));
        var warning = Assert.Single(_events.Events, e => e.Reason == ReplicaRemover.ReasonReplicaNotDeleted);
        Assert.Contains(r.Reference, warning.Message);
        Assert.Equal(1, _metrics.Deletions.Value(ReplicationMetrics.ResultFailed));
    }
}

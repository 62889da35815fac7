using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Presence;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Presence;

/// <summary>
/// The leader lets go of a deleted checkpoint's archive finalizer only when the agent of its node is gone: the node
/// deleted (and its Lease unrenewed for the Lease's duration), or its Lease unrenewed for longer than the limit.
/// </summary>
public sealed class AbandonedCheckpointReconcilerTests : IAsyncLifetime
{
    private const string Ns = "shop";
    private const string CrscNs = "crsc-system";
    private const string NodeB = "node-b";
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(10);

    private readonly ManualTimeProvider _time = new();
    private readonly FakeKube _kube;
    private readonly FakeResourceClient<ContainerCheckpoint> _checkpointsApi;
    private readonly FakeResourceClient<ContainerCheckpointContent> _contentsApi;
    private readonly FakeResourceClient<Node> _nodesApi;
    private readonly FakeResourceClient<Lease> _leasesApi;
    private readonly RecordingEventRecorder _events = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;
    private readonly Informer<ContainerCheckpoint> _checkpoints;
    private readonly AbandonedCheckpointReconciler _reconciler;

    public AbandonedCheckpointReconcilerTests()
    {
        _kube = new FakeKube(_time);
        _checkpointsApi = _kube.For(CrscResources.ContainerCheckpoints);
        _contentsApi = _kube.For(CrscResources.ContainerCheckpointContents);
        _nodesApi = _kube.For(Resources.Nodes);
        _leasesApi = _kube.For(Resources.Leases);
        _checkpoints = new Informer<ContainerCheckpoint>(_checkpointsApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance);
        _reconciler = new AbandonedCheckpointReconciler(_kube, _checkpoints, _events,
            new AbandonedCheckpointOptions { Namespace = CrscNs, AgentAbsentAfter = Limit }, _time, NullLogger.Instance);
        _running = _checkpoints.RunAsync(_stop.Token);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit 2 runs IAsyncLifetime.DisposeAsync on a test class, never IAsyncDisposable's: cleanup must be here
    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _running;
        _stop.Dispose();
    }

    private async Task<ReconcileResult> ReconcileAsync(string name = "ckpt-1")
    {
        await Eventually.TrueAsync(() =>
            _checkpoints.List().Select(c => c.Metadata.ResourceVersion).Order()
                .SequenceEqual(_checkpointsApi.AllStored().Select(c => c.Metadata.ResourceVersion).Order()), "the cache shows what is stored");
        return await _reconciler.ReconcileAsync(new ObjectKey(Ns, name), CancellationToken.None);
    }

    /// <summary>A checkpoint node-b executed and stored, with its Content; being deleted unless <paramref name="deleting"/> is false.</summary>
    private async Task<ContainerCheckpoint> CheckpointAsync(string name = "ckpt-1", bool deleting = true, string node = NodeB)
    {
        var created = await _checkpointsApi.SeedAsync(new ContainerCheckpoint
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns,
                Name = name,
                Finalizers = [Crsc.Api.Finalizers.Archive],
                DeletionTimestamp = deleting ? _time.GetUtcNow() : null,
            },
            Spec = new ContainerCheckpointSpec { PodName = "cart-0", Container = "app" },
        }, CancellationToken.None);
        var contentName = ContainerCheckpointReconciler.ContentNameFor(created.Metadata.Uid!);
        created.Status = new ContainerCheckpointStatus { Phase = ContainerCheckpointPhase.Completed, Node = node, ContentName = contentName };
        created = await _checkpointsApi.UpdateStatusAsync(created, CancellationToken.None);
        await _contentsApi.SeedAsync(new ContainerCheckpointContent
        {
            Metadata = new ObjectMeta { Name = contentName },
            Spec = new ContainerCheckpointContentSpec
            {
                Node = node,
                Path = $"/var/lib/crsc/checkpoints/{Ns}/cart/app/{name}.tar.zst",
                Digest = "sha256:" + new string('a', 64),
                SizeBytes = 4096,
                CheckpointRef = new NamespacedObjectReference { Namespace = Ns, Name = name, Uid = created.Metadata.Uid! },
            },
        }, CancellationToken.None);
        return created;
    }

    private Task NodeAsync(string name = NodeB) =>
        _nodesApi.SeedAsync(new Node { Metadata = new ObjectMeta { Name = name } }, CancellationToken.None);

    /// <summary>What the agent of <paramref name="node"/> does every 20 s.</summary>
    private async Task RenewAsync(string node = NodeB)
    {
        var lease = _leasesApi.Stored(CrscNs, NodeLeases.NameFor(node));
        if (lease is null)
        {
            await _leasesApi.SeedAsync(new Lease
            {
                Metadata = new ObjectMeta { Namespace = CrscNs, Name = NodeLeases.NameFor(node) },
                Spec = new LeaseSpec { HolderIdentity = node, LeaseDurationSeconds = 60, RenewTime = _time.GetUtcNow() },
            }, CancellationToken.None);
            return;
        }
        lease.Spec.RenewTime = _time.GetUtcNow();
        await _leasesApi.UpdateAsync(lease, CancellationToken.None);
    }

    // null also when the object is gone: a deleting object whose last finalizer is removed is deleted
    private List<string>? Finalizers(string name = "ckpt-1") => _checkpointsApi.Stored(Ns, name)?.Metadata.Finalizers;

    private void AssertKept(string name = "ckpt-1")
    {
        Assert.Equal([Crsc.Api.Finalizers.Archive], Finalizers(name));
        Assert.Empty(_events.Events);
    }

    private (string Kind, string? Name, string Type, string Reason, string Message) AbandonedEvent() =>
        Assert.Single(_events.Events, e => e.Reason == AbandonedCheckpointReconciler.ArchiveAbandonedReason);

    [Fact]
    public async Task Node_deleted_the_finalizer_is_removed_with_a_warning_naming_the_archive_left_there()
    {
        await RenewAsync(); // the agent ran once, then its node went away with it
        await CheckpointAsync();

        // the first look cannot tell a dead agent from a live one: wait one lease duration for a renewal
        var first = await ReconcileAsync();
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(60)), first);
        AssertKept();

        _time.Advance(TimeSpan.FromSeconds(60));
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        Assert.Null(Finalizers());
        var e = AbandonedEvent();
        Assert.Equal(("ContainerCheckpoint", "ckpt-1", "Warning"), (e.Kind, e.Name, e.Type));
        Assert.Contains("node node-b no longer exists", e.Message);
        Assert.Contains("removed finalizer crsc.io/archive", e.Message);
        Assert.Contains($"its archive /var/lib/crsc/checkpoints/{Ns}/cart/app/ckpt-1.tar.zst", e.Message);
        Assert.Contains("is left on node node-b", e.Message);
        Assert.Contains("ContainerCheckpointContent ckpt-", e.Message);

        // done: the object is the API server's to delete now
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());
        Assert.Equal(1, _checkpointsApi.CallCount("update"));
    }

    [Fact]
    public async Task Node_deleted_without_any_lease_is_let_go_after_the_default_lease_duration()
    {
        var ckpt = await CheckpointAsync();
        await _contentsApi.DeleteAsync(null, ckpt.Status!.ContentName!, null, CancellationToken.None);

        Assert.Equal(ReconcileOutcome.RequeueAfter, (await ReconcileAsync()).Outcome);
        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(ReconcileOutcome.RequeueAfter, (await ReconcileAsync()).Outcome);
        AssertKept();
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        Assert.Null(Finalizers());
        Assert.Contains("no ContainerCheckpointContent records an archive of it; if node node-b stored one, it is left there", AbandonedEvent().Message);
    }

    [Theory]
    [InlineData(true)]  // crsc stopped or uninstalled: its Lease stays, unrenewed
    [InlineData(false)] // no Lease at all (an agent that never wrote one)
    public async Task Agent_absent_beyond_the_limit_the_finalizer_is_removed(bool hadLease)
    {
        await NodeAsync();
        if (hadLease) await RenewAsync();
        await CheckpointAsync();

        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromMinutes(1)), await ReconcileAsync());
        for (var minute = 1; minute < 10; minute++)
        {
            _time.Advance(TimeSpan.FromMinutes(1));
            Assert.Equal(ReconcileOutcome.RequeueAfter, (await ReconcileAsync()).Outcome);
        }
        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(1)), await ReconcileAsync());
        AssertKept();

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());
        Assert.Null(Finalizers());
        var e = AbandonedEvent();
        Assert.Equal("Warning", e.Type);
        Assert.Contains("crsc on node node-b has not renewed its Lease crsc-system/crsc-node-node-b for 10m (nodeAgent.absentAfter is 10m)", e.Message);
        Assert.Contains($"its archive /var/lib/crsc/checkpoints/{Ns}/cart/app/ckpt-1.tar.zst (4096 bytes, sha256:aaaa", e.Message);
        Assert.Contains("is left on node node-b", e.Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)] // the Node object deleted while crsc still runs there: that agent deletes the archive itself
    public async Task Agent_present_the_finalizer_is_untouched(bool nodeExists)
    {
        if (nodeExists) await NodeAsync();
        await RenewAsync();
        await CheckpointAsync();

        for (var i = 0; i < 90; i++) // half an hour, the agent renewing every 20 s, the leader looking every 20 s
        {
            var result = await ReconcileAsync();
            Assert.Equal(ReconcileOutcome.RequeueAfter, result.Outcome);
            _time.Advance(TimeSpan.FromSeconds(20));
            await RenewAsync();
        }
        AssertKept();
        Assert.Equal(0, _checkpointsApi.CallCount("update"));
    }

    [Fact]
    public async Task Agent_back_before_the_limit_restarts_the_count()
    {
        await NodeAsync();
        await RenewAsync();
        await CheckpointAsync();

        await ReconcileAsync();
        _time.Advance(TimeSpan.FromMinutes(9));
        await ReconcileAsync();
        await RenewAsync(); // the daemon restarted
        _time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(ReconcileOutcome.RequeueAfter, (await ReconcileAsync()).Outcome);
        AssertKept();
    }

    [Fact]
    public async Task Checkpoints_not_being_deleted_are_untouched()
    {
        await CheckpointAsync(deleting: false); // node-b: no Node object, no Lease
        await ReconcileAsync();
        _time.Advance(TimeSpan.FromHours(1));

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());
        AssertKept();
        Assert.Equal(0, _checkpointsApi.CallCount("update"));
        Assert.Equal(0, _nodesApi.CallCount("get"));
        Assert.Equal(0, _leasesApi.CallCount("get"));
    }

    [Fact]
    public async Task A_deleted_checkpoint_no_node_claimed_is_left_to_the_node_agents()
    {
        var ckpt = await CheckpointAsync();
        ckpt.Status!.Node = null;
        await _checkpointsApi.UpdateStatusAsync(ckpt, CancellationToken.None);
        _time.Advance(TimeSpan.FromHours(1));

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());
        AssertKept();
        Assert.Equal(0, _nodesApi.CallCount("get"));
    }

    [Fact]
    public async Task A_write_by_someone_else_just_before_the_removal_is_kept_and_the_finalizer_still_goes()
    {
        await CheckpointAsync();
        await ReconcileAsync();
        _time.Advance(TimeSpan.FromMinutes(1));
        var once = true;
        ContainerCheckpoint? removal = null;
        _checkpointsApi.BeforeCall = (verb, obj) =>
        {
            if (verb != "update") return;
            if (!once)
            {
                removal = obj; // the retried write, which removes the finalizer
                return;
            }
            once = false;
            // a real 409: the stored object moves on after the reconciler read its cached copy
            _checkpointsApi.PatchAsync(Ns, "ckpt-1", Crsc.Controllers.Kubernetes.PatchType.Merge,
                """{"metadata":{"labels":{"team":"cart"}}}""", CancellationToken.None).GetAwaiter().GetResult();
        };

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        Assert.Null(Finalizers()); // the last finalizer of a deleted object: it is gone
        Assert.Equal("cart", removal!.Metadata.Labels!["team"]); // the retry was made from the fresh object
        Assert.Equal(2, _checkpointsApi.CallCount("update"));
        AbandonedEvent();
    }

    [Fact]
    public async Task A_conflicting_write_is_retried_from_the_fresh_object()
    {
        await CheckpointAsync();
        await ReconcileAsync();
        _time.Advance(TimeSpan.FromMinutes(1));
        _checkpointsApi.BeforeCall = (verb, _) =>
        {
            if (verb == "update") throw new Crsc.Controllers.Kubernetes.ConflictException("Conflict", "the object has been modified");
        };
        await Assert.ThrowsAsync<Crsc.Controllers.Kubernetes.ConflictException>(() => ReconcileAsync());
        Assert.Empty(_events.Events); // no Event for a removal that did not happen

        _checkpointsApi.BeforeCall = null;
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());
        Assert.Null(Finalizers());
        AbandonedEvent();
    }
}

using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Restores;
using Crsc.Controllers.Tests.Fakes;
using Crsc.Controllers.Workloads;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;
using F = Crsc.Controllers.Tests.Restores.RestoreFixture;

namespace Crsc.Controllers.Tests.Restores;

/// <summary>
/// The failure-reaction benchmark's invariant as a test: one container failure of a managed Deployment's pod makes
/// exactly one Restore, exactly one patch of the pod's image, and no pod deletion — the pod is restored in place —
/// whatever order the caches see the writes in and whatever the kubelet still reports about the container the patch
/// replaced. The failure detector and the Restore reconciler run as the leader runs them, each on its own informers;
/// the leader's Restore and pod caches can be held behind the API server.
/// </summary>
public sealed class FailureReactionInvariantTests : IAsyncLifetime
{
    private const string P1 = "counter-7d9f8c6b5-abcde";
    /// <summary>How far the node's clock is ahead of crsc's in the interleavings that say so.</summary>
    private static readonly TimeSpan NodeClockAhead = TimeSpan.FromSeconds(3);

    private readonly RestoreFixture _f = new();
    private readonly RestoreReconcilerOptions _options = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _running = [];

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit 2 runs IAsyncLifetime.DisposeAsync on a test class, never IAsyncDisposable's: cleanup must be here
    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running);
        _stop.Dispose();
        await _f.DisposeAsync();
    }

    private DateTimeOffset Now => _f.Time.GetUtcNow();

    public enum Interleaving
    {
        /// <summary>Every cache sees every write before the next reconcile.</summary>
        InOrder,
        /// <summary>The pod cache sees the patch while the Restore cache does not yet show the attempt counted before it.</summary>
        RestoreCacheBehindThePatch,
        /// <summary>The Restore cache shows the attempt counted while the pod cache does not show the patch yet.</summary>
        PodCacheBehindThePatch,
        /// <summary>
        /// The container the patch replaced crashes again and the kubelet reports CrashLoopBackOff for it (with its own
        /// image) for longer than the status grace — it is busy pulling the checkpoint image.
        /// </summary>
        OldCrashLoopOutlivesTheStatusGrace,
        /// <summary>
        /// The kubelet stops the replaced container to apply the new image; the node's clock is ahead of crsc's, so the
        /// terminated state it reports for the old container is stamped after the patch.
        /// </summary>
        OldContainerStoppedUnderANodeClockAhead,
        /// <summary>
        /// The Restore reconciler re-reads the pod right after the patch: the status is still the one the kubelet wrote
        /// before it (restart count, last terminated state, the old container running), stamped by a node clock ahead.
        /// </summary>
        PrePatchStatusReReadUnderANodeClockAhead,
    }

    [Theory]
    [InlineData(Interleaving.InOrder)]
    [InlineData(Interleaving.RestoreCacheBehindThePatch)]
    [InlineData(Interleaving.PodCacheBehindThePatch)]
    [InlineData(Interleaving.OldCrashLoopOutlivesTheStatusGrace)]
    [InlineData(Interleaving.OldContainerStoppedUnderANodeClockAhead)]
    [InlineData(Interleaving.PrePatchStatusReReadUnderANodeClockAhead)]
    public async Task One_failure_makes_one_Restore_one_image_patch_and_no_pod_deletion(Interleaving interleaving)
    {
        var skew = interleaving is Interleaving.OldContainerStoppedUnderANodeClockAhead or Interleaving.PrePatchStatusReReadUnderANodeClockAhead
            ? NodeClockAhead
            : TimeSpan.Zero;
        DateTimeOffset NodeNow() => Now + skew;

        await SeedDeploymentAsync();
        var pod = await _f.CreatePodAsync(P1);
        await _f.CreateCheckpointAsync("c1", Now.AddMinutes(-5));
        var checkpointImage = F.ImageOf("c1");
        await KubeletReportsAsync(cs =>
        {
            cs.ContainerID = "containerd://app-0";
            cs.ImageID = "registry.local/counter@sha256:" + new string('a', 64);
            cs.State = F.Running(NodeNow());
        });
        var restoreWatch = new HeldWatchClient<Restore>(_f.RestoresApi);
        var podWatch = new HeldWatchClient<Pod>(_f.PodsApi);
        var leader = await _f.StartLeaderAsync(_options, restoreWatch, podWatch);
        var detector = await StartDetectorAsync();
        await detector.ReconcileAsync(); // the baseline: restart counts as they are
        Assert.Empty(_f.RestoresApi.AllStored());

        // the incident: the app exits with 1 and the kubelet starts it again
        _f.Time.Advance(TimeSpan.FromSeconds(30));
        await KubeletReportsAsync(cs =>
        {
            cs.LastState = new ContainerState
            {
                Terminated = new ContainerStateTerminated
                {
                    ExitCode = 1, Reason = "Error", ContainerID = "containerd://app-0", StartedAt = NodeNow().AddSeconds(-30), FinishedAt = NodeNow(),
                },
            };
            cs.ContainerID = "containerd://app-1";
            cs.RestartCount = 1;
            cs.State = F.Running(NodeNow());
        });
        await detector.ReconcileAsync();
        var name = Assert.Single(_f.RestoresApi.AllStored()).Metadata.Name!;

        await leader.ReconcileAsync(name); // pod and checkpoint chosen
        await _f.SetImagesReadyAsync(name, ConditionStatus.True);
        await Eventually.TrueAsync(() => F.InSync(leader.Restores, _f.RestoresApi) && F.InSync(leader.Pods, _f.PodsApi), "the leader's caches as stored");
        if (interleaving == Interleaving.RestoreCacheBehindThePatch) restoreWatch.Hold();
        if (interleaving == Interleaving.PodCacheBehindThePatch) podWatch.Hold();
        await leader.ReconcileAsync(name); // the attempt counted, then the patch
        Assert.Equal(checkpointImage, _f.ImageOfPod(P1));

        switch (interleaving)
        {
            case Interleaving.RestoreCacheBehindThePatch:
                // the pod's MODIFIED event wakes the Restore before the Restore's own event arrived
                await Eventually.TrueAsync(() => ContainerImage(leader.Pods.Get(new(F.Ns, P1))) == checkpointImage, "the pod cache shows the patch");
                Assert.Null(leader.Restores.Get(new(F.Ns, name))!.Status!.PatchedAt);
                await leader.ReconcileNowAsync(name);
                restoreWatch.Release();
                break;
            case Interleaving.PodCacheBehindThePatch:
                // the Restore's MODIFIED event wakes it before the pod's event arrived
                await Eventually.TrueAsync(() => leader.Restores.Get(new(F.Ns, name))?.Status?.PatchedAt is not null, "the Restore cache shows the attempt");
                Assert.Equal(F.ImageV1, ContainerImage(leader.Pods.Get(new(F.Ns, P1))));
                await leader.ReconcileNowAsync(name);
                podWatch.Release();
                break;
            case Interleaving.OldCrashLoopOutlivesTheStatusGrace:
                await KubeletReportsAsync(cs =>
                {
                    cs.LastState = new ContainerState
                    {
                        Terminated = new ContainerStateTerminated
                        {
                            ExitCode = 1, Reason = "Error", ContainerID = "containerd://app-1", StartedAt = NodeNow().AddSeconds(-1), FinishedAt = NodeNow(),
                        },
                    };
                    cs.State = F.Waiting("CrashLoopBackOff", "back-off 10s restarting failed container=app");
                });
                await leader.ReconcileAsync(name);
                _f.Time.Advance(_options.StatusGrace + TimeSpan.FromSeconds(5));
                await leader.ReconcileAsync(name);
                break;
            case Interleaving.OldContainerStoppedUnderANodeClockAhead:
                await KubeletReportsAsync(cs =>
                {
                    var started = cs.State!.Running!.StartedAt;
                    cs.State = new ContainerState
                    {
                        Terminated = new ContainerStateTerminated
                        {
                            ExitCode = 137, Reason = "Error", ContainerID = "containerd://app-1", StartedAt = started, FinishedAt = NodeNow(),
                        },
                    };
                });
                await leader.ReconcileAsync(name);
                break;
            case Interleaving.PrePatchStatusReReadUnderANodeClockAhead:
                await leader.ReconcileAsync(name);
                break;
        }

        await detector.ReconcileAsync(); // the restore is active: no second one

        // whatever came first, the attempt stands: counted once, patched once, the pod kept
        Assert.Equal(0, _f.PodsApi.CallCount("delete"));
        Assert.Equal(1, _f.PodsApi.CallCount("patch"));
        var s = _f.Restore(name).Status!;
        Assert.Equal((RestorePhase.Restoring, 1), (s.Phase, s.Attempts));
        Assert.NotNull(s.PatchedAt);

        // the kubelet restarts the container from the checkpoint image
        _f.Time.Advance(TimeSpan.FromSeconds(2));
        await KubeletReportsAsync(cs =>
        {
            cs.LastState = new ContainerState
            {
                Terminated = new ContainerStateTerminated
                {
                    ExitCode = 137, Reason = "Error", ContainerID = "containerd://app-1", StartedAt = NodeNow().AddSeconds(-30), FinishedAt = NodeNow(),
                },
            };
            cs.ContainerID = "containerd://app-2";
            cs.Image = checkpointImage;
            cs.ImageID = checkpointImage;
            cs.RestartCount = 2;
            cs.Ready = true;
            cs.State = F.Running(NodeNow());
        });
        await leader.ReconcileAsync(name);
        await detector.ReconcileAsync();

        s = _f.Restore(name).Status!;
        Assert.Equal(RestorePhase.Restored, s.Phase);
        Assert.Equal(1, s.Attempts);
        Assert.Single(_f.RestoresApi.AllStored());
        Assert.Equal(1, _f.PodsApi.CallCount("patch"));
        Assert.Equal(0, _f.PodsApi.CallCount("delete"));
        Assert.Equal(pod.Metadata.Uid, _f.Pod(P1)!.Metadata.Uid);
        Assert.Equal(checkpointImage, _f.ImageOfPod(P1));
    }

    // ---- the world around the fixture's pods: their Deployment and ReplicaSet, the kubelet's reports ----

    private async Task SeedDeploymentAsync()
    {
        var d = await _f.Kube.For(Resources.Deployments).SeedAsync(new Deployment
        {
            Metadata = new ObjectMeta
            {
                Namespace = F.Ns, Name = F.Deployment, Annotations = new() { [Annotations.CheckpointRestore] = "true" },
            },
        }, CancellationToken.None);
        await _f.Kube.For(Resources.ReplicaSets).SeedAsync(new ReplicaSet
        {
            Metadata = new ObjectMeta
            {
                Namespace = F.Ns, Name = F.ReplicaSet,
                OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = F.Deployment, Uid = d.Metadata.Uid!, Controller = true }],
            },
        }, CancellationToken.None);
    }

    /// <summary>A status write of the kubelet about the app container of <see cref="P1"/>.</summary>
    private async Task KubeletReportsAsync(Action<ContainerStatus> change)
    {
        var p = _f.PodsApi.Stored(F.Ns, P1)!;
        change(p.Status!.ContainerStatuses!.Single(c => c.Name == F.Container));
        await _f.PodsApi.UpdateStatusAsync(p, CancellationToken.None);
    }

    private static string? ContainerImage(Pod? pod) => pod?.Spec.Containers.Single(c => c.Name == F.Container).Image;

    // ---- the failure detector, with its own informers ----

    private sealed record Detector(FailureReactionInvariantTests T, PodFailureReconciler Reconciler, Informer<Pod> Pods,
        Informer<ReplicaSet> ReplicaSets, Informer<Deployment> Deployments, Informer<Restore> Restores)
    {
        public async Task ReconcileAsync()
        {
            var kube = T._f.Kube;
            await Eventually.TrueAsync(() => F.InSync(Pods, kube.For(Resources.Pods)) && F.InSync(ReplicaSets, kube.For(Resources.ReplicaSets))
                                             && F.InSync(Deployments, kube.For(Resources.Deployments)) && F.InSync(Restores, kube.For(CrscResources.Restores)),
                "detector caches as stored");
            await Reconciler.ReconcileAsync(new ObjectKey(F.Ns, F.Deployment), CancellationToken.None);
        }
    }

    private async Task<Detector> StartDetectorAsync()
    {
        Informer<T> Run<T>(FakeResourceClient<T> api) where T : class, IKubernetesObject
        {
            var i = new Informer<T>(api, new InformerOptions(), TimeProvider.System, NullLogger.Instance);
            _running.Add(i.RunAsync(_stop.Token));
            return i;
        }
        var pods = Run(_f.Kube.For(Resources.Pods));
        var replicaSets = Run(_f.Kube.For(Resources.ReplicaSets));
        var deployments = Run(_f.Kube.For(Resources.Deployments));
        var restores = Run(_f.Kube.For(CrscResources.Restores));
        foreach (var i in new IInformer[] { pods, replicaSets, deployments, restores }) await i.WaitForSyncAsync(_stop.Token);
        var reconciler = new PodFailureReconciler(_f.Kube, pods, replicaSets, deployments, restores, _f.Events, new PodFailureOptions(),
            _f.Time, NullLogger.Instance);
        return new Detector(this, reconciler, pods, replicaSets, deployments, restores);
    }
}

using System.Collections.Concurrent;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Restores;
using Crsc.Testing.Kube;

namespace Crsc.Controllers.Tests.Fakes;

/// <summary>
/// The cluster around the failure detector and the Restore state manager in the failure-reaction tests, on one
/// <see cref="FakeKube"/>: managed Deployments with one running pod each and a Completed checkpoint each; a kubelet that
/// reports a container's failure and restarts a container patched to its checkpoint image (unless a test holds its pod
/// back, <see cref="KubeletHolds"/>); and the pods' node agents, whose preparers make every Restore's images ready at once.
/// </summary>
internal sealed class FailureWorld(FakeKube kube)
{
    public const string Ns = "shop";
    public const string Container = "app";
    public const string Image = "registry.local/counter:1";
    public const string Hash = "7d9f8c6b5";
    public const string CheckpointRegistry = "10.0.0.1:5055/";

    private int _rounds;

    /// <summary>Pods whose patched container the kubelet does not restart yet (names).</summary>
    public ConcurrentDictionary<string, byte> KubeletHolds { get; } = new(StringComparer.Ordinal);

    /// <summary>Rounds the kubelet and the node agents have made (for a test's state line).</summary>
    public int Rounds => Volatile.Read(ref _rounds);

    public static string Deployment(int i) => $"svc-{i:00}";
    public static string ReplicaSet(int i) => $"{Deployment(i)}-{Hash}";
    public static string PodName(int i) => $"{ReplicaSet(i)}-abcde";

    public Restore? RestoreOf(int i) =>
        kube.For(CrscResources.Restores).AllStored().SingleOrDefault(r => r.Spec.Target.Name == Deployment(i));

    public string? ImageOfPod(int i) =>
        kube.For(Resources.Pods).Stored(Ns, PodName(i))?.Spec.Containers.Single(c => c.Name == Container).Image;

    /// <summary>Workload <paramref name="i"/>: its annotated Deployment, ReplicaSet, running pod on <paramref name="node"/>, and a Completed checkpoint taken there.</summary>
    public async Task SeedWorkloadAsync(int i, string node)
    {
        var d = await kube.For(Resources.Deployments).SeedAsync(new Deployment
        {
            Metadata = new ObjectMeta { Namespace = Ns, Name = Deployment(i), Annotations = new() { [Annotations.CheckpointRestore] = "true" } },
        });
        var rs = await kube.For(Resources.ReplicaSets).SeedAsync(new ReplicaSet
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns, Name = ReplicaSet(i),
                OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = Deployment(i), Uid = d.Metadata.Uid!, Controller = true }],
            },
        });
        var pod = new Pod();
        pod.Metadata.Namespace = Ns;
        pod.Metadata.Name = PodName(i);
        pod.Metadata.Uid = "uid-" + PodName(i);
        pod.Metadata.Labels = new() { ["app"] = Deployment(i), ["pod-template-hash"] = Hash };
        pod.Metadata.OwnerReferences =
            [new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = ReplicaSet(i), Uid = rs.Metadata.Uid!, Controller = true }];
        pod.Spec.NodeName = node;
        pod.Spec.Containers = [new Container { Name = Container, Image = Image }];
        pod.Status = new PodStatus
        {
            Phase = "Running",
            ContainerStatuses =
            [
                new ContainerStatus
                {
                    Name = Container, Image = Image, ImageID = "registry.local/counter@sha256:" + new string('a', 64), Ready = true,
                    ContainerID = $"containerd://{PodName(i)}-0", State = Running(),
                },
            ],
        };
        await kube.For(Resources.Pods).SeedAsync(pod);

        var checkpoint = $"{Deployment(i)}-{Container}-20260101000000";
        var content = "ckpt-" + Deployment(i);
        var created = await kube.For(CrscResources.ContainerCheckpoints).SeedAsync(new ContainerCheckpoint
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns, Name = checkpoint, Labels = new() { [Labels.Workload] = Deployment(i), [Labels.Container] = Container },
            },
            Spec = new ContainerCheckpointSpec { PodName = PodName(i), Container = Container },
            Status = new ContainerCheckpointStatus
            {
                Phase = ContainerCheckpointPhase.Completed, Node = node, ContentName = content, CompletedAt = DateTimeOffset.UtcNow.AddMinutes(-5),
            },
        });
        await kube.For(CrscResources.ContainerCheckpointContents).SeedAsync(new ContainerCheckpointContent
        {
            Metadata = new ObjectMeta { Name = content },
            Spec = new ContainerCheckpointContentSpec
            {
                Node = node,
                Path = $"/var/lib/crsc/checkpoints/{Ns}/{Deployment(i)}/{Container}/{checkpoint}.tar",
                Digest = "sha256:" + new string('1', 64),
                SizeBytes = 4096,
                ImageReference = $"{CheckpointRegistry}{Ns}/{Deployment(i)}-{Container}@sha256:{i:x64}",
                Source = new CheckpointSource { Namespace = Ns, Pod = PodName(i), Container = Container, Image = Image },
                CheckpointRef = new NamespacedObjectReference { Namespace = Ns, Name = checkpoint, Uid = created.Metadata.Uid },
            },
        });
    }

    private static ContainerState Running() => new() { Running = new ContainerStateRunning { StartedAt = DateTimeOffset.UtcNow } };

    /// <summary>The kubelet's report of incident <paramref name="i"/>: the app exited with <paramref name="exitCode"/> and was started again.</summary>
    public Task FailAsync(int i, int exitCode = 1) => KubeletWritesAsync(PodName(i), cs =>
    {
        var now = DateTimeOffset.UtcNow;
        cs.LastState = new ContainerState
        {
            Terminated = new ContainerStateTerminated
            {
                ExitCode = exitCode, Reason = "Error", ContainerID = cs.ContainerID, StartedAt = now.AddSeconds(-30), FinishedAt = now,
            },
        };
        cs.RestartCount++;
        cs.ContainerID = $"containerd://{PodName(i)}-{cs.RestartCount}";
        cs.State = Running();
    });

    /// <summary>A status write of the kubelet about the app container, retried when the pod changed in between.</summary>
    private async Task KubeletWritesAsync(string pod, Action<ContainerStatus> change)
    {
        var pods = kube.For(Resources.Pods);
        for (var attempt = 0; ; attempt++)
        {
            var p = pods.Stored(Ns, pod)!;
            change(p.Status!.ContainerStatuses!.Single(c => c.Name == Container));
            try
            {
                await pods.UpdateStatusAsync(p, CancellationToken.None);
                return;
            }
            catch (ConflictException) when (attempt < 10)
            {
            }
        }
    }

    /// <summary>
    /// The kubelet: a pod whose container was patched to a checkpoint image gets its container restarted from it (the
    /// replaced one killed: exit 137), unless the test holds that pod back.
    /// </summary>
    public async Task KubeletAsync(CancellationToken ct)
    {
        var pods = kube.For(Resources.Pods);
        while (!ct.IsCancellationRequested)
        {
            foreach (var p in pods.AllStored())
            {
                var spec = p.Spec.Containers.Single(c => c.Name == Container).Image;
                var cs = p.Status!.ContainerStatuses!.Single(c => c.Name == Container);
                if (spec == cs.Image || KubeletHolds.ContainsKey(p.Metadata.Name!)) continue;
                await KubeletWritesAsync(p.Metadata.Name!, s =>
                {
                    var now = DateTimeOffset.UtcNow;
                    s.LastState = new ContainerState
                    {
                        Terminated = new ContainerStateTerminated
                        {
                            ExitCode = 137, Reason = "Error", ContainerID = s.ContainerID, StartedAt = s.State?.Running?.StartedAt, FinishedAt = now,
                        },
                    };
                    s.RestartCount++;
                    s.ContainerID = $"containerd://{p.Metadata.Name}-{s.RestartCount}";
                    s.Image = spec;
                    s.ImageID = spec;
                    s.Ready = true;
                    s.State = Running();
                });
            }
            Interlocked.Increment(ref _rounds);
            try { await Task.Delay(10, ct); } catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>The pods' node agents' preparers: the images of every Restore that chose its checkpoint are ready at once.</summary>
    public async Task NodeAgentAsync(CancellationToken ct)
    {
        var restores = kube.For(CrscResources.Restores);
        while (!ct.IsCancellationRequested)
        {
            foreach (var r in restores.AllStored())
            {
                if (r.Status is not { Image: not null } s || RestoreReconciler.IsTerminal(r) || s.FindCondition(RestoreConditions.ImagesReady) is not null)
                    continue;
                s.SetCondition(RestoreConditions.ImagesReady, ConditionStatus.True, "Pulled", "images present", r.Metadata.Generation, DateTimeOffset.UtcNow);
                try
                {
                    await restores.UpdateStatusAsync(r, CancellationToken.None);
                }
                catch (ConflictException)
                {
                    // the leader wrote in between: looked at again on the next round
                }
            }
            Interlocked.Increment(ref _rounds);
            try { await Task.Delay(10, ct); } catch (OperationCanceledException) { return; }
        }
    }
}

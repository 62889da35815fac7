using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;

namespace Crsc.Testing.Scenarios;

/// <summary>What the drain scenario saw.</summary>
public sealed record DrainRestoreResult(
    string CheckpointName,
    string? CheckpointReason,
    /// <summary>The counter just before the cordon and once the drain checkpoint had completed: the memory it holds.</summary>
    long CounterAtCordon,
    long CounterAtCheckpointDone,
    /// <summary>The pod's containers when the pod was deleted (the checkpoint was taken before the kill).</summary>
    bool CheckpointCompletedBeforeEviction,
    string EvictedPodUid,
    string ReplacementPodUid,
    string RestoreName,
    RestorePhase? RestorePhase,
    /// <summary>The first value the restored process wrote in the replacement pod.</summary>
    long FirstCounterAfterRestore,
    bool RestoredIncarnationIsTheEvictedOne,
    /// <summary>The node the replacement ran on.</summary>
    string ReplacementNode,
    /// <summary>The image the replacement was restored from.</summary>
    string? RestoredImage);

public sealed partial class CheckpointRestoreScenario
{
    private const string ReplacementPodName = "counter-5d8f7b9c4-r2d2x";

    /// <summary>
    /// Issue 18, "a drained node's pods come back with their memory", on the real runtime: the Deployment's pod runs its
    /// counter (no scheduled checkpoint comes before the end: the interval is long); the node is cordoned for a drain and
    /// crsc checkpoints the managed container at once (reason NodeDrain, published as a ContainerCheckpoint); the pod is
    /// evicted as the Eviction API does it (its DisruptionTarget condition, then its deletion) and the kubelet stops it;
    /// the node comes back (uncordoned, as after maintenance) and the ReplicaSet's replacement pod is scheduled to it —
    /// crsc restores that new pod from the drain checkpoint and the counter goes on from where the drain took it.
    /// With <paramref name="targetNode"/>, issue 19's drain integration: a second node with its own daemon and kubelet;
    /// the drained node stays cordoned and the scheduler puts the replacement on the other node, whose agent (asked by
    /// the leader through <c>crsc.io/restore-from</c>) fetches the drain checkpoint from the drained node's endpoint and
    /// restores it there.
    /// </summary>
    public async Task<DrainRestoreResult> RunDrainAsync(CancellationToken cancel, string? targetNode = null, string? targetImagesListen = null)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(options.Timeout);
        var ct = timeout.Token;
        var work = options.WorkDirectory;
        var data = Directory.CreateDirectory(Path.Combine(work, "data")).FullName;
        var counterFile = Path.Combine(data, "counter");
        await using var rig = await Rig.StartAsync(options, say, ct);
        var (api, kubelet) = (rig.Api, rig.Kubelet);
        var targetWork = targetNode is null ? null : Directory.CreateDirectory(Path.Combine(work, "target")).FullName;
        await using var second = targetNode is null ? null : await SecondNodeAsync(rig, targetNode, targetWork!, ct);

        if (targetNode is null)
            api.Seed(Resources.Nodes, new Node { Metadata = new ObjectMeta { Name = options.NodeName }, Spec = new NodeSpec() });
        var replicaSet = SeedDeployment(api, data, DeploymentName, ReplicaSetName);
        SeedPod(api, PodName, data, replicaSet);
        say($"node {options.NodeName}; Deployment {Namespace}/{DeploymentName} annotated for checkpoints every {options.Interval}; its pod {PodName} counts in memory");

        Process? daemon = null, target = null;
        var daemonLog = Path.Combine(work, "daemon.log");
        var targetLog = targetWork is null ? null : Path.Combine(targetWork, "daemon.log");
        try
        {
            await WaitAsync(() => Counter(counterFile) >= 3, "the counter is running", TimeSpan.FromSeconds(60), ct);
            var incarnation = Incarnation(counterFile);
            var evictedUid = Pod(api)!.Metadata.Uid!;
            if (targetNode is null)
            {
                EnsureImagesPortFree(options.ImagesListen);
                daemon = StartDaemon(work, rig.Kubeconfig, daemonLog);
            }
            else (daemon, target) = StartTwoDaemons(rig, work, daemonLog, targetWork!, targetLog!, targetNode, targetImagesListen!);
            say($"crsc daemon started (pid {daemon.Id}, log {daemonLog})");
            if (target is not null) say($"crsc daemon of node {targetNode} started (pid {target.Id}, images {targetImagesListen})");
            await WaitForAsync(() => api.Get(CrscResources.CheckpointSchedules, Namespace, DeploymentName), daemon,
                "crsc creates the CheckpointSchedule for the Deployment", TimeSpan.FromSeconds(60), daemonLog, ct);
            // the node agent knows the pod as managed once its node state has the schedule and the pod (its drain list)
            await WaitAsync(() =>
            {
                CheckDaemon(daemon, daemonLog);
                return NodeStateHasPod(work);
            }, "the node agent's node state has the managed pod", TimeSpan.FromSeconds(60), ct);

            var atCordon = Counter(counterFile);
            api.Mutate(api.ResourceOf(Resources.Nodes), null, options.NodeName, node =>
            {
                node["spec"] = new JsonObject { ["unschedulable"] = true };
                return true;
            });
            say($"node {options.NodeName} cordoned for a drain (counter at {atCordon})");

            ContainerCheckpoint? drained = null;
            await WaitAsync(() =>
            {
                CheckDaemon(daemon, daemonLog);
                var all = Checkpoints(api);
                drained = all.FirstOrDefault(c => c.Metadata.Annotations?.GetValueOrDefault(Annotations.CheckpointReason) == "NodeDrain"
                    && c.Status?.Phase == ContainerCheckpointPhase.Completed);
                if (all.FirstOrDefault(c => c.Status?.Phase == ContainerCheckpointPhase.Failed) is { } failed)
                    throw new InvalidOperationException($"checkpoint {failed.Metadata.Name} failed: {failed.Status!.Message}");
                return drained is not null;
            }, "crsc's drain checkpoint is published Completed", TimeSpan.FromMinutes(2), ct, TimeSpan.FromMilliseconds(50));
            var atDone = Counter(counterFile);
            say($"ContainerCheckpoint {drained!.Metadata.Name}: {drained.Metadata.Annotations![Annotations.CheckpointReason]}, " +
                $"{drained.Status!.SizeBytes} bytes; the counter was between {atCordon} and {atDone}");

            // evicted as the Eviction API does it: the DisruptionTarget condition first, then the deletion; the kubelet stops it
            api.Mutate(api.ResourceOf(Resources.Pods), Namespace, PodName, pod =>
            {
                var status = pod["status"]!.AsObject();
                var conditions = status["conditions"] as JsonArray ?? [];
                conditions.Add(new JsonObject
                {
                    ["type"] = "DisruptionTarget", ["status"] = "True", ["reason"] = "EvictionByEvictionAPI",
                    ["message"] = "Eviction API: evicting", ["lastTransitionTime"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ"),
                });
                status["conditions"] = conditions;
                return true;
            });
            var beforeEviction = Checkpoints(api).Any(c => c.Metadata.Uid == drained.Metadata.Uid && c.Status?.Phase == ContainerCheckpointPhase.Completed);
            api.Remove(api.ResourceOf(Resources.Pods), Namespace, PodName);
            say($"pod {PodName} evicted (DisruptionTarget, then deleted)");
            await WaitAsync(() => kubelet.ContainerIdOf(Namespace, PodName, ContainerName) is null, "the kubelet stops the evicted pod",
                TimeSpan.FromSeconds(60), ct);
            Pod replacement;
            if (targetNode is null)
            {
                // the node comes back (uncordoned after its maintenance); the ReplicaSet's replacement is scheduled to it
                api.Mutate(api.ResourceOf(Resources.Nodes), null, options.NodeName, node =>
                {
                    node["spec"] = new JsonObject();
                    return true;
                });
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
                replacement = SeedPod(api, ReplacementPodName, data, replicaSet);
                say($"node uncordoned; replacement pod {ReplacementPodName} (uid {replacement.Metadata.Uid}) scheduled to it");
            }
            else
            {
                // the drained node stays cordoned: the scheduler puts the ReplicaSet's replacement on the other node
                replacement = SeedPod(api, ReplacementPodName, data, replicaSet, p => p.Spec.NodeName = targetNode);
                say($"replacement pod {ReplacementPodName} (uid {replacement.Metadata.Uid}) scheduled to node {targetNode}");
            }

            var restore = await WaitForAsync(() => api.All(api.ResourceOf(CrscResources.Restores)).Select(o => o.Deserialize(CrscJsonContext.Default.Restore))
                    .FirstOrDefault(r => r?.Spec.CheckpointName == drained.Metadata.Name),
                daemon, "crsc creates a Restore of the replacement pod from the drain checkpoint", TimeSpan.FromSeconds(90), daemonLog, ct);
            say($"Restore {Namespace}/{restore.Metadata.Name} from {restore.Spec.CheckpointName}");
            Restore? done = null;
            RestorePhase? lastPhase = null;
            await WaitAsync(() =>
            {
                CheckDaemon(daemon, daemonLog);
                if (target is not null) CheckDaemon(target, targetLog!);
                done = api.Get(CrscResources.Restores, Namespace, restore.Metadata.Name!);
                if (done?.Status?.Phase != lastPhase)
                {
                    lastPhase = done?.Status?.Phase;
                    say($"Restore phase {lastPhase}{(done?.Status?.Message is { } m ? ": " + m : "")}");
                }
                return done?.Status?.Phase is RestorePhase.Restored or RestorePhase.Failed or RestorePhase.FellBack;
            }, "the Restore finishes", TimeSpan.FromMinutes(3), ct, TimeSpan.FromMilliseconds(100));

            long first = -1;
            if (done!.Status!.Phase == RestorePhase.Restored)
            {
                await WaitAsync(() =>
                {
                    var value = Counter(counterFile);
                    if (value >= 0 && Incarnation(counterFile) == incarnation) first = value;
                    return first >= 0;
                }, "the restored counter continues from the drain checkpoint", TimeSpan.FromSeconds(60), ct, TimeSpan.FromMilliseconds(20));
                say($"the replacement pod's counter reads {first} (the drain took it between {atCordon} and {atDone})");
            }
            return new DrainRestoreResult(drained.Metadata.Name!, drained.Metadata.Annotations[Annotations.CheckpointReason], atCordon, atDone,
                beforeEviction, evictedUid, replacement.Metadata.Uid!, restore.Metadata.Name!, done.Status.Phase, first,
                first >= 0 && Incarnation(counterFile) == incarnation, replacement.Spec.NodeName!, done.Status.Image);
        }
        catch when (targetLog is not null)
        {
            var kept = KeepLogs("drain", (daemonLog, "source.log"), (targetLog, "target.log"));
            say($"both daemons' logs are kept in {kept}");
            throw;
        }
        finally
        {
            DaemonProcess.Stop(target);
            DaemonProcess.Stop(daemon);
        }
    }

    /// <summary>Whether the daemon's node state on disk (under its state directory) names the counter's pod.</summary>
    private static bool NodeStateHasPod(string work)
    {
        try
        {
            return Directory.Exists(Path.Combine(work, "state"))
                && Directory.EnumerateFiles(Path.Combine(work, "state"), "*", SearchOption.AllDirectories)
                    .Any(f => new FileInfo(f).Length < (1 << 20) && File.ReadAllText(f).Contains(PodName, StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return false;
        }
    }
}

using System.Diagnostics;
using System.Text.Json;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Testing.Kube;
using V1 = Runtime.V1;

namespace Crsc.Testing.Scenarios;

/// <summary>
/// One incident of <see cref="CheckpointRestoreScenario.MeasureIncidentsAsync"/>, every instant read on this process's
/// clock (the Restore's timeline keeps whole seconds only): the container was killed, the kubelet reported it in the pod's
/// status, crsc's patch to the checkpoint image was seen in the pod spec, the kubelet called the runtime to create the
/// restored container (<see cref="RuntimeRestore"/>: its CreateContainer and StartContainer calls, the runtime's restore),
/// and the restored process wrote its counter again — serving (<see cref="StartToServing"/> is negative when the process
/// wrote before the runtime's StartContainer call returned).
/// </summary>
public sealed record IncidentMeasurement(
    int Index,
    string Pod,
    TimeSpan KillToServing,
    TimeSpan KillToStatus,
    TimeSpan StatusToPatch,
    TimeSpan PatchToCreate,
    TimeSpan RuntimeRestore,
    TimeSpan StartToServing,
    bool ColdStartSeen,
    RestorePhase? Phase,
    string CheckpointImage)
{
    /// <summary>
    /// crsc's share: from the failure showing in the pod's status to the runtime being asked to restore — crsc's detection,
    /// Restore, checkpoint choice, image check and patch, then its stop of the cold-started instance and the kubelet
    /// noticing the patch (the sandbox kubelet syncs every 250 ms; counted in, so the figure overstates crsc's own time).
    /// The kubelet's report of the death and the runtime's restore are not in it.
    /// </summary>
    public TimeSpan CrscShare => StatusToPatch + PatchToCreate;

    /// <summary>Everything but the runtime's restore and the process resuming, the kubelet's report of the death included.</summary>
    public TimeSpan AllButRuntime => KillToServing - RuntimeRestore - (StartToServing > TimeSpan.Zero ? StartToServing : TimeSpan.Zero);
}

public sealed partial class CheckpointRestoreScenario
{
    /// <summary>
    /// Kill → restored-and-serving, measured <paramref name="incidents"/> times. Each incident runs its own annotated
    /// Deployment and pod (a workload's first failure: crsc backs off restores of a workload that keeps failing), waits for crsc's scheduled checkpoint of that pod to complete and its
    /// image to be on the node (crsc pulls it when the checkpoint completes), kills the container (CRI StopContainer with
    /// no grace) and measures until the restored process writes its counter again; then the Restore must turn Restored,
    /// and the workload is deleted. One daemon serves every incident.
    /// </summary>
    public async Task<IReadOnlyList<IncidentMeasurement>> MeasureIncidentsAsync(int incidents, Action<IncidentMeasurement>? each,
        CancellationToken cancel)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(incidents, 1);
        var ct = cancel;
        var work = options.WorkDirectory;
        await using var rig = await Rig.StartAsync(options, _ => { }, ct);
        var api = rig.Api;
        var daemonLog = Path.Combine(work, "daemon.log");
        EnsureImagesPortFree(options.ImagesListen);
        var daemon = StartDaemon(work, rig.Kubeconfig, daemonLog);
        var results = new List<IncidentMeasurement>();
        try
        {
            for (var i = 0; i < incidents; i++)
            {
                using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
                limit.CancelAfter(options.Timeout);
                var m = await IncidentAsync(rig, daemon, daemonLog, i, limit.Token);
                results.Add(m);
                each?.Invoke(m);
            }
            return results;
        }
        finally
        {
            DaemonProcess.Stop(daemon);
        }
    }

    private async Task<IncidentMeasurement> IncidentAsync(Rig rig, Process daemon, string daemonLog, int index, CancellationToken ct)
    {
        var api = rig.Api;
        var deployment = $"{DeploymentName}-i{index:00}";
        var replicaSetName = $"{deployment}-5d8f7b9c4";
        var podName = $"{replicaSetName}-x7k2p";
        var data = Directory.CreateDirectory(Path.Combine(options.WorkDirectory, $"data-{index:00}")).FullName;
        var counterFile = Path.Combine(data, "counter");
        SeedPod(api, podName, data, SeedDeployment(api, data, deployment, replicaSetName));
        try
        {
            await WaitAsync(() => { CheckDaemon(daemon, daemonLog); return Counter(counterFile) >= 2; },
                $"the counter of {podName} is running", TimeSpan.FromMinutes(2), ct);
            var incarnation = Incarnation(counterFile);

            // crsc's scheduled checkpoint of this pod, complete, published, and its image on the node
            string? image = null;
            await WaitAsync(() =>
            {
                CheckDaemon(daemon, daemonLog);
                var done = Checkpoints(api).LastOrDefault(c => c.Spec.PodName == podName && c.Status?.Phase == ContainerCheckpointPhase.Completed);
                image = done?.Status?.ContentName is { } n ? api.Get(CrscResources.ContainerCheckpointContents, null, n)?.Spec.ImageReference : null;
                return image is not null;
            }, $"a checkpoint of {podName} completes and is published", TimeSpan.FromMinutes(3), ct, TimeSpan.FromMilliseconds(100));
            // not while a later checkpoint of the pod is being taken: a kill in the middle of a dump is another incident
            // (measured once: a 256 MiB container killed during its dump, the restore from the previous checkpoint failed
            // in runc's restore); this one measures the restore path
            var present = Stopwatch.StartNew();
            while (present.Elapsed < TimeSpan.FromSeconds(90))
            {
                var busy = Checkpoints(api).Any(c => c.Spec.PodName == podName
                    && c.Status?.Phase is not (ContainerCheckpointPhase.Completed or ContainerCheckpointPhase.Failed));
                if (!busy)
                {
                    var done = Checkpoints(api).LastOrDefault(c => c.Spec.PodName == podName && c.Status?.Phase == ContainerCheckpointPhase.Completed);
                    image = done?.Status?.ContentName is { } n ? api.Get(CrscResources.ContainerCheckpointContents, null, n)?.Spec.ImageReference ?? image : image;
                    if (await ImagePresentAsync(rig, image!, ct)
                        && !Checkpoints(api).Any(c => c.Spec.PodName == podName && c.Status?.Phase is not (ContainerCheckpointPhase.Completed or ContainerCheckpointPhase.Failed)))
                        break;
                }
                await Task.Delay(50, ct);
            }

            var containerId = rig.Kubelet.ContainerIdOf(Namespace, podName, ContainerName)
                              ?? throw new InvalidOperationException($"the kubelet has no container for {podName}");
            var clock = Stopwatch.StartNew();
            await rig.Cri.StopContainerAsync(new V1.StopContainerRequest { ContainerId = containerId, Timeout = 0 }, ct: ct);
            // the killed process is gone: from here on a counter file is written by a new process only
            File.Delete(counterFile);

            TimeSpan? status = null, patch = null, serving = null;
            var cold = false;
            var originalImage = options.Image;
            await WaitAsync(() =>
            {
                CheckDaemon(daemon, daemonLog);
                var now = clock.Elapsed;
                var current = api.Get(Resources.Pods, Namespace, podName);
                var cs = current?.Status?.ContainerStatuses?.FirstOrDefault(c => c.Name == ContainerName);
                if (status is null && cs?.LastState?.Terminated?.ContainerID is { } gone && gone.EndsWith(containerId, StringComparison.Ordinal))
                    status = now;
                if (patch is null && current?.Spec.Containers.FirstOrDefault(c => c.Name == ContainerName)?.Image is { } img && img != originalImage)
                    patch = now;
                if (Incarnation(counterFile) is { } inc)
                {
                    if (inc == incarnation) serving = now;
                    else cold = true;
                }
                return serving is not null;
            }, $"the restored counter of {podName} writes again", TimeSpan.FromMinutes(2), ct, TimeSpan.FromMilliseconds(5));

            Restore? restore = null;
            await WaitAsync(() =>
            {
                CheckDaemon(daemon, daemonLog);
                restore = api.All(api.ResourceOf(CrscResources.Restores))
                    .Select(o => o.Deserialize(CrscJsonContext.Default.Restore)!)
                    .FirstOrDefault(r => r.Status?.PodName == podName);
                return restore?.Status?.Phase is RestorePhase.Restored or RestorePhase.Failed or RestorePhase.FellBack;
            }, $"the Restore of {podName} finishes", TimeSpan.FromMinutes(1), ct, TimeSpan.FromMilliseconds(50));

            var start = rig.Kubelet.Starts.LastOrDefault(s => s.Pod == podName && s.Image == restore!.Status!.Image)
                        ?? throw new InvalidOperationException($"the kubelet never started {podName} from {restore!.Status!.Image}");
            var killedAt = DateTimeOffset.UtcNow - clock.Elapsed;
            var createAt = start.CreateCalledAt - killedAt;
            return new IncidentMeasurement(index, podName, serving!.Value,
                status ?? TimeSpan.Zero, (patch ?? createAt) - (status ?? TimeSpan.Zero), createAt - (patch ?? createAt),
                start.Runtime, serving.Value - createAt - start.Runtime, cold, restore!.Status!.Phase, image!);
        }
        finally
        {
            // crsc deletes the pod itself when a restore attempt fails (its replacement is restored): gone is fine here
            foreach (var (resource, name) in new[]
                     {
                         (api.ResourceOf(Resources.Pods), podName), (api.ResourceOf(Resources.ReplicaSets), replicaSetName),
                         (api.ResourceOf(Resources.Deployments), deployment),
                     })
            {
                try { api.Remove(resource, Namespace, name); }
                catch (FakeStatusException e) when (e.Code == 404) { }
            }
        }
    }

    private static async Task<bool> ImagePresentAsync(Rig rig, string image, CancellationToken ct)
    {
        var status = await rig.Cri.ImageStatusAsync(new V1.ImageStatusRequest { Image = new V1.ImageSpec { Image = image } }, ct: ct);
        return status.Image is { Id.Length: > 0 };
    }
}

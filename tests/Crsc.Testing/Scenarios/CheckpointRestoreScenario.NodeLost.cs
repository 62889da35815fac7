using System.Diagnostics;
using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Testing.Kube;

namespace Crsc.Testing.Scenarios;

/// <summary>What the lost-node scenario saw.</summary>
public sealed record NodeLostResult(
    string CheckpointName,
    /// <summary>The checkpoint's registry copy (replicate: Registry), before the node was lost.</summary>
    string? RegistryCopy,
    long CounterAtCheckpointEnd,
    string ReplacementPod,
    /// <summary>What the leader annotated the replacement with (<c>crsc.io/restore-from</c>).</summary>
    string? AskedFor,
    RestorePhase? RestorePhase,
    string? RestoredImage,
    /// <summary>The replacement's <c>crsc.io/RestoreFrom</c> condition at the end (status reason: message).</summary>
    string? Condition,
    /// <summary>The replacement's CheckpointFetched Event (where its node got the archive from).</summary>
    string? Fetched,
    long FirstCounterAfter,
    bool SameProcess);

public sealed partial class CheckpointRestoreScenario
{
    /// <summary>
    /// Issue 19, "a lost node's workloads restore elsewhere from their replicas", on the real runtime: two nodes with a
    /// daemon and a kubelet each, one API server, the sandbox's containerd and registry. The Deployment asks for registry
    /// replication (<c>crsc.io/checkpoint-replicate: registry</c>, daemons in <c>images.registryMode: replicate</c>); once a
    /// scheduled checkpoint of its pod on node-a has its registry copy, node-a is lost: its daemon is killed (SIGKILL, its
    /// image endpoint gone with it), its Node object deleted and its pod with it (as the pod garbage collector does; the
    /// kubelet stops the container). The ReplicaSet's replacement (played here) runs on node-b; the leader annotates it
    /// <c>crsc.io/restore-from</c>, node-b's agent fetches the archive from the registry copy and the replacement is
    /// restored there: the counter goes on with the lost pod's memory.
    /// </summary>
    public async Task<NodeLostResult> RunNodeLostAsync(string targetNode, string targetImagesListen, string registry, CancellationToken cancel)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(options.Timeout);
        var ct = timeout.Token;
        var work = options.WorkDirectory;
        var data = Directory.CreateDirectory(Path.Combine(work, "data")).FullName;
        var counterFile = Path.Combine(data, "counter");
        await using var rig = await Rig.StartAsync(options, say, ct);
        var api = rig.Api;
        var targetWork = Directory.CreateDirectory(Path.Combine(work, "target")).FullName;
        await using var second = await SecondNodeAsync(rig, targetNode, targetWork, ct);

        var replicaSet = SeedDeployment(api, data, DeploymentName, ReplicaSetName,
            new() { [Annotations.CheckpointReplicate] = "registry" });
        SeedPod(api, PodName, data, replicaSet);
        say($"nodes {options.NodeName} and {targetNode}; Deployment {Namespace}/{DeploymentName} on {options.NodeName}, checkpointed every {options.Interval}, each checkpoint copied to registry {registry}");

        Process? source = null, target = null;
        var sourceLog = Path.Combine(work, "daemon.log");
        var targetLog = Path.Combine(targetWork, "daemon.log");
        try
        {
            await WaitAsync(() => Counter(counterFile) >= 3, "the counter is running", TimeSpan.FromSeconds(60), ct);
            var incarnation = Incarnation(counterFile);
            (source, target) = StartTwoDaemons(rig, work, sourceLog, targetWork, targetLog, targetNode, targetImagesListen, registry);
            say($"crsc daemons started: {options.NodeName} pid {source.Id}, {targetNode} pid {target.Id} (images.registryMode replicate)");

            ContainerCheckpoint? replicated = null;
            CheckpointCopy? copy = null;
            await WaitAsync(() =>
            {
                CheckDaemon(source, sourceLog);
                CheckDaemon(target, targetLog);
                foreach (var c in Checkpoints(api).Where(c => c.Status?.Phase == ContainerCheckpointPhase.Completed && c.Status.ContentName is not null))
                {
                    var content = api.Get(CrscResources.ContainerCheckpointContents, null, c.Status!.ContentName!);
                    copy = content?.Status?.Copies?.FirstOrDefault(x => x.Kind == CheckpointCopyKind.Registry);
                    if (copy is null) continue;
                    replicated = c;
                    return true;
                }
                return false;
            }, $"a scheduled checkpoint on {options.NodeName} completes and is copied to the registry", TimeSpan.FromMinutes(2), ct, TimeSpan.FromMilliseconds(50));
            var atEnd = Counter(counterFile);
            say($"ContainerCheckpoint {replicated!.Metadata.Name}: {replicated.Status!.SizeBytes} bytes, registry copy {copy!.ImageReference}; counter <= {atEnd}");

            // node-a is lost: crsc there dies with it (no endpoint to fetch from), the node controller's and the pod
            // garbage collector's part: the Node object goes, and its pod with it; node-a's kubelet stops the container
            source.Kill(entireProcessTree: true);
            await source.WaitForExitAsync(ct);
            api.Remove(api.ResourceOf(Resources.Nodes), null, options.NodeName);
            api.Remove(api.ResourceOf(Resources.Pods), Namespace, PodName);
            say($"node {options.NodeName} lost: its crsc killed, its Node deleted, its pod {PodName} deleted");
            await WaitAsync(() => rig.Kubelet.ContainerIdOf(Namespace, PodName, ContainerName) is null,
                "the lost pod's container is stopped", TimeSpan.FromSeconds(60), ct);
            // the memory to bring back: the lost pod's newest checkpoint with a registry copy (a later one may have
            // completed and not been copied before the node was lost)
            var newest = Checkpoints(api)
                .Where(c => c.Status?.Phase == ContainerCheckpointPhase.Completed && c.Spec.PodName == PodName
                            && api.Get(CrscResources.ContainerCheckpointContents, null, c.Status.ContentName ?? "")?.Status?.Copies?
                                .Any(x => x.Kind == CheckpointCopyKind.Registry) == true)
                .OrderByDescending(c => c.Status!.StartedAt).First();
            copy = api.Get(CrscResources.ContainerCheckpointContents, null, newest.Status!.ContentName!)!.Status!.Copies!
                .First(x => x.Kind == CheckpointCopyKind.Registry);

            // the ReplicaSet controller: a replacement, which the scheduler puts on the node that is left
            const string replacementName = "counter-5d8f7b9c4-l0st1";
            SeedPod(api, replacementName, data, replicaSet, p => p.Spec.NodeName = targetNode);
            say($"ReplicaSet controller: replacement {replacementName} on {targetNode}");

            Restore? restore = null;
            string? lastCondition = null, asked = null;
            await WaitAsync(() =>
            {
                CheckDaemon(target, targetLog);
                var pod = api.Get(Resources.Pods, Namespace, replacementName);
                if (asked is null && pod?.Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFrom) is { } a)
                    say($"the leader annotated {replacementName} {Annotations.RestoreFrom}: {asked = a}");
                var condition = RestoreFromCondition(api, replacementName);
                if (condition != lastCondition) say($"pod condition {PodConditions.RestoreFrom}: {lastCondition = condition}");
                if (condition?.StartsWith("False", StringComparison.Ordinal) == true)
                    throw new InvalidOperationException($"node {targetNode}'s agent did not restore the replacement: {condition}\n{Tail(targetLog)}");
                restore = api.All(api.ResourceOf(CrscResources.Restores)).Select(o => o.Deserialize(CrscJsonContext.Default.Restore)!)
                    .FirstOrDefault(r => r.Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFromPod) == replacementName);
                return restore?.Status?.Phase is RestorePhase.Restored or RestorePhase.Failed or RestorePhase.FellBack;
            }, "the replacement is restored from the lost pod's checkpoint", TimeSpan.FromMinutes(3), ct, TimeSpan.FromMilliseconds(100));
            say($"Restore {restore!.Metadata.Name}: {restore.Status!.Phase}, image {restore.Status.Image}{(restore.Status.Message is { } m ? ": " + m : "")}");

            long first = -1;
            if (restore.Status.Phase == RestorePhase.Restored)
            {
                await WaitAsync(() =>
                {
                    var value = Counter(counterFile);
                    if (value >= 0 && Incarnation(counterFile) == incarnation) first = value;
                    return first >= 0;
                }, "the replacement's counter continues the lost pod's process", TimeSpan.FromSeconds(60), ct, TimeSpan.FromMilliseconds(20));
                say($"the replacement's counter reads {first}, incarnation {incarnation} (the lost pod's checkpoint took it at most at {atEnd})");
            }
            // the node's Event of the fetch (Events are written in the background: a moment after the Restore)
            string? fetched = null;
            await WaitAsync(() => (fetched = api.All(api.ResourceOf(Resources.CoreEvents))
                    .Select(o => (string?)o["message"])
                    .FirstOrDefault(msg => msg is not null && msg.Contains($"fetched checkpoint {newest.Metadata.Name}", StringComparison.Ordinal))) is not null,
                $"node {targetNode}'s Event of the fetch", TimeSpan.FromSeconds(20), ct);
            say($"Event: {fetched}");
            return new NodeLostResult(newest.Metadata.Name!, copy.ImageReference, atEnd, replacementName, asked, restore.Status.Phase,
                restore.Status.Image, RestoreFromCondition(api, replacementName), fetched, first,
                first >= 0 && Incarnation(counterFile) == incarnation);
        }
        catch
        {
            var kept = KeepLogs("node-lost", (sourceLog, "source.log"), (targetLog, "target.log"));
            say($"target daemon log (tail):\n{Tail(targetLog)}");
            say($"both daemons' logs are kept in {kept}");
            throw;
        }
        finally
        {
            DaemonProcess.Stop(target);
            DaemonProcess.Stop(source);
        }
    }
}

using System.Diagnostics;
using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Testing.Kube;
using Crsc.Testing.Kubelet;

namespace Crsc.Testing.Scenarios;

/// <summary>What the restore-from scenario saw.</summary>
public sealed record RestoreFromResult(
    string CheckpointName,
    string SourceNode,
    string SourceImage,
    long CounterAtCheckpointEnd,
    string TargetNode,
    string? RestoreName,
    RestorePhase? RestorePhase,
    /// <summary>The image the target pod's container was restored from (the target node's own copy).</summary>
    string? RestoredImage,
    /// <summary>The Content's copies once restored (the target node's, recorded by its agent).</summary>
    IReadOnlyList<CheckpointCopy> Copies,
    /// <summary>The target pod's <c>crsc.io/RestoreFrom</c> condition at the end (reason: message).</summary>
    string? Condition,
    /// <summary>The first count the target pod wrote from the restored process, -1 when none.</summary>
    long FirstCounterOnTarget,
    /// <summary>The target pod's counter is the checkpointed process (same incarnation), not a fresh start.</summary>
    bool SameProcess)
{
    /// <summary>How long each part took, on this process's clock (polled every 20 ms).</summary>
    public RestoreFromTimings? Timings { get; init; }
}

/// <summary>The restore-from scenario's figures (<c>make bench</c>: restore-from).</summary>
/// <param name="Fetch">from the first <c>Fetching</c> seen (else the pod's creation) to <c>RestoreRequested</c>: the
/// fetch, its checks, the commit into the target's store, the copy recorded and the Restore made</param>
/// <param name="Restore">from <c>RestoreRequested</c> to the restored process's first counter write: the Restore, the
/// image pull from the target's own endpoint and the runtime's restore</param>
/// <param name="Total">from the target pod's creation (it starts cold) to the restored process's first write</param>
/// <param name="ArchiveBytes">the checkpoint archive's size (the Content's)</param>
/// <param name="ArchivePath">the archive in the source node's store</param>
/// <param name="TargetPeakRssKiB">the target daemon's VmHWM just before it was stopped</param>
public sealed record RestoreFromTimings(TimeSpan Fetch, TimeSpan Restore, TimeSpan Total, long ArchiveBytes, string ArchivePath,
    long TargetPeakRssKiB);

public sealed partial class CheckpointRestoreScenario
{
    /// <summary>
    /// Issue 19, "a pod annotated crsc.io/restore-from on another node comes back with the memory of the checkpoint",
    /// on the real runtime: two nodes, each with its own crsc daemon (own store, own image endpoint, own node name) and
    /// its own kubelet, against one API server and the sandbox's containerd. The Deployment's pod on the source node is
    /// checkpointed by its schedule; a bare pod on the target node, annotated <c>crsc.io/restore-from</c> with that
    /// checkpoint, starts cold; the target's agent fetches the checkpoint from the source node's endpoint into its own
    /// store (digest and MAC checked), records the copy, and asks for a Restore; the restored process counts on from
    /// where the checkpoint took it, in the target pod.
    /// </summary>
    public async Task<RestoreFromResult> RunRestoreFromAsync(string targetNode, string targetImagesListen, CancellationToken cancel)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(options.Timeout);
        var ct = timeout.Token;
        var work = options.WorkDirectory;
        var sourceData = Directory.CreateDirectory(Path.Combine(work, "data")).FullName;
        var targetData = Directory.CreateDirectory(Path.Combine(work, "data-target")).FullName;
        var sourceCounter = Path.Combine(sourceData, "counter");
        var targetCounter = Path.Combine(targetData, "counter");
        await using var rig = await Rig.StartAsync(options, say, ct);
        var api = rig.Api;

        var targetWork = Directory.CreateDirectory(Path.Combine(work, "target")).FullName;
        await using var second = await SecondNodeAsync(rig, targetNode, targetWork, ct);

        var replicaSet = SeedDeployment(api, sourceData, DeploymentName, ReplicaSetName);
        SeedPod(api, PodName, sourceData, replicaSet);
        say($"nodes {options.NodeName} (source) and {targetNode} (target); Deployment {Namespace}/{DeploymentName} on {options.NodeName}, checkpointed every {options.Interval}");

        Process? source = null, target = null;
        var sourceLog = Path.Combine(work, "daemon.log");
        var targetLog = Path.Combine(targetWork, "daemon.log");
        try
        {
            await WaitAsync(() => Counter(sourceCounter) >= 3, "the source pod's counter is running", TimeSpan.FromSeconds(60), ct);
            var incarnation = Incarnation(sourceCounter);
            (source, target) = StartTwoDaemons(rig, work, sourceLog, targetWork, targetLog, targetNode, targetImagesListen);
            say($"crsc daemons started: {options.NodeName} pid {source.Id} (images {options.ImagesListen}), {targetNode} pid {target.Id} (images {targetImagesListen})");

            ContainerCheckpoint? completed = null;
            await WaitAsync(() =>
            {
                CheckDaemon(source, sourceLog);
                CheckDaemon(target, targetLog);
                completed = Checkpoints(api).FirstOrDefault(c => c.Status?.Phase == ContainerCheckpointPhase.Completed
                    && c.Status.ContentName is { } n && api.Get(CrscResources.ContainerCheckpointContents, null, n)?.Spec.ImageReference is not null);
                return completed is not null;
            }, $"a scheduled checkpoint on {options.NodeName} completes and its image is published", TimeSpan.FromMinutes(2), ct, TimeSpan.FromMilliseconds(50));
            var atEnd = Counter(sourceCounter);
            var content = api.Get(CrscResources.ContainerCheckpointContents, null, completed!.Status!.ContentName!)!;
            say($"ContainerCheckpoint {completed.Metadata.Name} on {content.Spec.Node}: {completed.Status.SizeBytes} bytes, image {content.Spec.ImageReference}; counter <= {atEnd}");

            // the target pod: a bare pod on the other node, the same container, its own data directory, the annotation
            const string targetPod = "counter-moved";
            api.Seed(Resources.Pods, new Pod
            {
                Metadata = new ObjectMeta
                {
                    Name = targetPod, Namespace = Namespace,
                    Annotations = new() { [Annotations.RestoreFrom] = completed.Metadata.Name! },
                },
                Spec = new PodSpec { NodeName = targetNode, Containers = [CounterContainer()], Volumes = DataVolume(targetData), RestartPolicy = "Always" },
                Status = new PodStatus { Phase = "Pending" },
            });
            say($"pod {Namespace}/{targetPod} on {targetNode}, annotated {Annotations.RestoreFrom}: {completed.Metadata.Name}");
            // the figures of the bench, on this process's clock from the pod's creation
            var clock = Stopwatch.StartNew();
            TimeSpan? fetching = null, requested = null;
            string? lastCondition = null;
            string? Observe()
            {
                var condition = RestoreFromCondition(api, targetPod);
                if (condition != lastCondition) say($"pod condition {PodConditions.RestoreFrom}: {lastCondition = condition}");
                if (condition?.StartsWith("Unknown Fetching", StringComparison.Ordinal) == true) fetching ??= clock.Elapsed;
                if (condition?.StartsWith("True RestoreRequested", StringComparison.Ordinal) == true) requested ??= clock.Elapsed;
                return condition;
            }
            await WaitAsync(() => Observe() is var _ && Counter(targetCounter) >= 0, "the target pod runs (cold, its own counter)",
                TimeSpan.FromSeconds(60), ct, TimeSpan.FromMilliseconds(20));
            say($"target pod runs cold (incarnation {Incarnation(targetCounter)}, counter {Counter(targetCounter)})");

            Restore? restore = null;
            await WaitAsync(() =>
            {
                CheckDaemon(source, sourceLog);
                CheckDaemon(target, targetLog);
                var condition = Observe();
                restore = api.All(api.ResourceOf(CrscResources.Restores)).Select(o => o.Deserialize(CrscJsonContext.Default.Restore)!)
                    .FirstOrDefault(r => r.Metadata.Annotations?.GetValueOrDefault(Annotations.RestoreFromPod) == targetPod);
                // CheckpointUnreachable is tried again by the node (a peer may not serve yet); any other False is final
                if (condition?.StartsWith("False", StringComparison.Ordinal) == true && !condition.StartsWith("False CheckpointUnreachable", StringComparison.Ordinal))
                    throw new InvalidOperationException($"the target node's agent gave up: {condition}\n{Tail(targetLog)}");
                return restore?.Status?.Phase is RestorePhase.Restored or RestorePhase.Failed or RestorePhase.FellBack;
            }, "the checkpoint is fetched to the target node and the Restore finishes", TimeSpan.FromMinutes(3), ct, TimeSpan.FromMilliseconds(20));
            say($"Restore {restore!.Metadata.Name}: {restore.Status!.Phase}, image {restore.Status.Image}{(restore.Status.Message is { } m ? ": " + m : "")}");

            long first = -1;
            var serving = TimeSpan.Zero;
            if (restore.Status.Phase == RestorePhase.Restored)
            {
                await WaitAsync(() =>
                {
                    var value = Counter(targetCounter);
                    if (value >= 0 && Incarnation(targetCounter) == incarnation) first = value;
                    return first >= 0;
                }, "the target pod's counter continues the checkpointed process", TimeSpan.FromSeconds(60), ct, TimeSpan.FromMilliseconds(20));
                serving = clock.Elapsed;
                say($"the target pod's counter reads {first}, incarnation {incarnation} (the checkpoint took it at most at {atEnd})");
            }
            var copies = api.Get(CrscResources.ContainerCheckpointContents, null, content.Metadata.Name!)?.Status?.Copies ?? [];
            var asked = requested ?? serving;
            return new RestoreFromResult(completed.Metadata.Name!, content.Spec.Node, content.Spec.ImageReference!, atEnd, targetNode,
                restore.Metadata.Name, restore.Status.Phase, restore.Status.Image, copies, RestoreFromCondition(api, targetPod), first,
                first >= 0 && Incarnation(targetCounter) == incarnation)
            {
                Timings = new RestoreFromTimings(asked - (fetching ?? TimeSpan.Zero), serving - asked, serving, content.Spec.SizeBytes,
                    content.Spec.Path, PeakRssKiB(target)),
            };
        }
        catch
        {
            var kept = KeepLogs("restore-from", (sourceLog, "source.log"), (targetLog, "target.log"));
            say($"source daemon log (tail):\n{Tail(sourceLog)}");
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

    /// <summary>A running process's VmHWM (its peak resident set) in KiB, or -1.</summary>
    private static long PeakRssKiB(Process process)
    {
        try
        {
            var line = File.ReadLines($"/proc/{process.Id}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is not null && long.TryParse(line["VmHWM:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture, out var kib)
                ? kib : -1;
        }
        catch (IOException)
        {
            return -1;
        }
    }

    private static string? RestoreFromCondition(FakeApiServer api, string pod) =>
        api.Get(Resources.Pods, Namespace, pod)?.Status?.Conditions?.FirstOrDefault(c => c.Type == PodConditions.RestoreFrom) is { } c
            ? $"{c.Status} {c.Reason}: {c.Message}"
            : null;
}

using System.Diagnostics;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Leadership;
using Crsc.Controllers.Restores;
using Crsc.Controllers.Workloads;
using Crsc.Cri;
using Crsc.Kube;
using Crsc.Testing.Cri;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Benchmarks;

/// <summary>
/// Step 4: reaction time from a pod status change that shows a failure (a container restarted after exit code 1,
/// written to the pod's status subresource as the kubelet does) to the Restore the failure detector creates for it, and
/// on to the patch of the pod's container image to the checkpoint image (the issue's "failure → patch" figure).
/// FakeApiServer over HTTP with the real client and the real components the leader and the pod's node run: informers
/// (pods in all namespaces, ReplicaSets, Deployments, Restores, checkpoints and their Contents), the
/// <see cref="PodFailureReconciler"/>, the <see cref="RestoreReconciler"/> (checkpoint choice, status writes, patch), the
/// node's <see cref="RestorePreparer"/> checking the images through the real CRI client against FakeCriServer, and the
/// event recorder writing Events. 200 incidents, one after the other, each in its own managed Deployment with a
/// Completed checkpoint (so the per-workload backoff does not apply); 200 unmanaged Deployments with pods add load.
/// Each is measured from just before the status write is sent to the moment the request reaches the server. What a
/// restore in place promises is checked at the end: one Restore and one image patch per incident, no pod deleted.
/// <para>
/// The leader changes in the middle: two daemons' leader halves (each its own manager, informers and Lease elector)
/// campaign for the Lease and the node's half (the preparer) runs beside them; right after the status write of the middle
/// incident the leader's daemon stops (its work cancelled and drained, the Lease released) and the other takes over, with
/// the middle incident and every Restore before it in flight. The invariant holds across it; how long the change took and
/// the reaction times of the incidents it held up are printed besides the overall figures.
/// </para>
/// <para>
/// Then the same again with a leader <em>crash</em> (issue 16): the daemons are set up as the daemon sets them up — each
/// also runs its node's standby failure detector and Restore state manager (<see cref="NodeFailureStandby"/>); the pods'
/// node is the second daemon's — on production's Lease timings (15 s lease, 10 s renew deadline, 2 s retry, leader absent
/// after 3 s without a renewal), and at the middle incident the leader stops renewing without releasing the Lease (its
/// process is gone). The incidents reported from then until the second daemon holds the Lease are restored by the pods'
/// node agent; their status → patch figures are printed beside the others, with the invariant checked again.
/// </para>
/// </summary>
public sealed class FailureReactionBench : IBenchmark
{
    public string Name => "failure-reaction";
    public string Description => "pod status showing a failure → Restore created → pod image patched, p50/p99 over 200 incidents, the leader changing in the middle";

    private const int Incidents = 200;
    private const int Unmanaged = 200;
    private const string Ns = "apps";
    private const string Node = "node-0";
    private const string ImageHost = "127.0.0.1:5055/";
    /// <summary>The incident at which the leader's daemon stops.</summary>
    private const int Handover = Incidents / 2;

    public async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        await RunScenarioAsync(ctx, crash: false, ct);
        await RunScenarioAsync(ctx, crash: true, ct);
    }

    /// <param name="crash">
    /// false: the leader's daemon stops (work drained, Lease released) and no node standby runs, as before issue 16;
    /// true: the leader crashes (stops renewing, keeps the Lease) with the daemons' node standby running, production timings
    /// </param>
    private async Task RunScenarioAsync(BenchContext ctx, bool crash, CancellationToken ct)
    {
        await using var server = await FakeApiServer.StartAsync();
        server.Register(CrscResources.Restores, hasStatusSubresource: true);
        server.Register(CrscResources.ContainerCheckpoints, hasStatusSubresource: true);
        server.Register(CrscResources.ContainerCheckpointContents, hasStatusSubresource: false);
        server.Register(CrscResources.CheckpointNodes, hasStatusSubresource: true);
        for (var i = 0; i < Incidents; i++) Seed(server, $"svc-{i:000}", managed: true);
        for (var i = 0; i < Unmanaged; i++) Seed(server, $"other-{i:000}", managed: false);
        await using var cri = await FakeCriServer.StartAsync(Path.Combine(ctx.WorkDir, "cri.sock"));
        using var runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = cri.Endpoint });

        using var api = new KubeApi(new KubeClientConfig { Server = server.Url, Source = "bench" });
        var time = TimeProvider.System;
        var loggers = NullLoggerFactory.Instance;
        var events = new EventRecorder(new ApiEventSink(api.Resource(Resources.CoreEvents)), new EventRecorderOptions { Host = Node },
            time, NullLogger.Instance);
        // as the daemons set them up: the pod's node runs the preparer; two daemons' managers campaign for the Lease and
        // run the failure detector and the Restore reconciler while they lead
        var node = new ControllerManager(new ControllerManagerOptions { Kube = api, Events = events, Time = time, Loggers = loggers });
        RestorePreparer.SetUp(node, runtime, new RestorePreparerOptions { NodeName = Node });
        node.AddRunnable("event recorder", events.RunAsync);
        NodeFailureStandby? standby = null;
        ControllerManager Leader(string identity, string nodeName)
        {
            var elector = new LeaderElector(api.Resource(Resources.Leases), crash
                ? new LeaderElectionOptions
                {
                    // production's (ClusterConnectionOptions); a crashed leader does not release
                    Namespace = "crsc-system", Identity = identity, ReleaseOnCancel = false,
                }
                : new LeaderElectionOptions
                {
                    Namespace = "crsc-system",
                    Identity = identity,
                    LeaseDuration = TimeSpan.FromSeconds(5),
                    RenewDeadline = TimeSpan.FromSeconds(3),
                    RetryPeriod = TimeSpan.FromMilliseconds(250),
                }, time, NullLogger.Instance);
            var m = new ControllerManager(new ControllerManagerOptions { Kube = api, Events = events, Time = time, Loggers = loggers, Elector = elector });
            RestoreReconciler.SetUp(m);
            PodFailureReconciler.SetUp(m);
            if (crash)
            {
                var s = NodeFailureStandby.SetUp(m, new NodeFailureStandbyOptions { NodeName = nodeName, Namespace = "crsc-system" });
                if (nodeName == Node) standby = s;
            }
            return m;
        }
        // the leader runs elsewhere; the second daemon is the pods' node agent
        var first = Leader("first", "node-leader");
        var second = Leader("second", Node);
        long takeover = 0, handoverStart = 0;
        var takeovers = 0;
        if (standby is not null)
            standby.Liveness.Changed += present =>
            {
                if (present) return;
                Interlocked.Increment(ref takeovers);
                if (Interlocked.Read(ref handoverStart) != 0) Interlocked.CompareExchange(ref takeover, Stopwatch.GetTimestamp(), 0);
            };
        using var stop = new CancellationTokenSource();
        using var stopFirst = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
        var runs = new List<Task> { node.RunAsync(stop.Token), first.RunAsync(stopFirst.Token) };
        await WaitAsync(() => first.IsLeading, ct);
        runs.Add(second.RunAsync(stop.Token));
        await WaitAsync(() => second.Elector!.CurrentLeader == "first" && node.Informers.All.All(i => i.HasSynced), ct);

        // the first Restore POST and the first pod PATCH of each incident, as they reach the server
        Incident? current = null;
        server.BeforeRequest = (req, _) =>
        {
            var now = Stopwatch.GetTimestamp();
            if (Volatile.Read(ref current) is { } incident)
            {
                if (req.Method == "POST" && req.Path.EndsWith("/restores", StringComparison.Ordinal)) incident.Posted.TrySetResult(now);
                else if (req.Method == "PATCH" && req.Path.EndsWith("/pods/" + incident.Pod, StringComparison.Ordinal)) incident.Patched.TrySetResult(now);
            }
            return Task.CompletedTask;
        };
        var failures = first.Controller(PodFailureReconciler.ControllerName);
        await WaitAsync(() => failures.Queue is { Count: 0, InFlight: 0 } && first.Informers.All.All(i => i.HasSynced), ct);
        await Task.Delay(500, ct); // the first reconciles have seen every pod: restart counts are known

        var pods = api.Resource(Resources.Pods);
        var toPost = new List<double>(Incidents);
        var toPatch = new List<double>(Incidents);
        var afterHandover = new List<double>();
        var starts = new List<long>(Incidents);
        long handoverEnd = 0;
        for (var i = 0; i < Incidents; i++)
        {
            var podName = $"svc-{i:000}-5d8f7c9b6-abcde";
            var pod = await pods.GetAsync(Ns, podName, ct);
            Crash(pod);
            var incident = new Incident(podName);
            Volatile.Write(ref current, incident);
            var start = Stopwatch.GetTimestamp();
            starts.Add(start);
            await pods.UpdateStatusAsync(pod, ct);
            if (i == Handover)
            {
                // the leader's daemon stops with this incident just reported and the earlier Restores in flight
                Interlocked.Exchange(ref handoverStart, Stopwatch.GetTimestamp());
                await stopFirst.CancelAsync();
                _ = Task.Run(async () =>
                {
                    await WaitAsync(() => second.IsLeading, ct, pollMs: 1);
                    Interlocked.Exchange(ref handoverEnd, Stopwatch.GetTimestamp());
                }, ct);
            }
            var posted = await incident.Posted.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);
            if (crash && i > Handover && Interlocked.Read(ref handoverEnd) == 0) await Task.Delay(50, ct); // spread over the window
            var patched = await incident.Patched.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);
            toPost.Add(Stopwatch.GetElapsedTime(start, posted).TotalMilliseconds);
            toPatch.Add(Stopwatch.GetElapsedTime(start, patched).TotalMilliseconds);
            // the incidents the change held up: from the stop until the new leader's controllers had caught up
            if (i >= Handover && afterHandover.Count < 10) afterHandover.Add(Stopwatch.GetElapsedTime(start, patched).TotalMilliseconds);
        }
        // a crashed leader's Lease expires on its own: the window ends when the second daemon holds it
        if (crash) await WaitAsync(() => Interlocked.Read(ref handoverEnd) != 0, ct, timeout: TimeSpan.FromSeconds(30));
        if (first.IsLeading || !second.IsLeading) throw new InvalidOperationException("the leadership did not move to the second daemon");
        if (crash) await Task.Delay(TimeSpan.FromSeconds(2), ct); // the new leader has looked at every Restore: a second patch would show
        int Patched() => server.All(server.ResourceOf(Resources.Pods))
            .Count(p => ((string?)p["spec"]?["containers"]?[0]?["image"])?.StartsWith(ImageHost, StringComparison.Ordinal) == true);
        try
        {
            await WaitAsync(() => Patched() == Incidents, ct, timeout: TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
        }
        var restores = server.All(server.ResourceOf(CrscResources.Restores)).Count;
        var patchedPods = Patched();
        // restored in place: one patch per pod, and crsc never deletes the pod it has just patched
        var podWrites = server.Requests.Where(r => r.Path.Contains("/pods/", StringComparison.Ordinal)).ToList();
        var patches = podWrites.Count(r => r.Method == "PATCH");
        var deleted = podWrites.Where(r => r.Method == "DELETE").Select(r => r.Path[(r.Path.LastIndexOf('/') + 1)..]).ToList();
        var patchedTwice = podWrites.Where(r => r.Method == "PATCH").GroupBy(r => r.Path).Count(g => g.Count() > 1);
        await stop.CancelAsync();
        await Task.WhenAll(runs);
        if (restores != Incidents) throw new InvalidOperationException($"{restores} Restores for {Incidents} incidents");
        if (deleted.Count > 0)
            throw new InvalidOperationException($"{deleted.Count} pods deleted while being restored in place: {string.Join(", ", deleted.Take(5))}");
        if (patchedPods != Incidents)
            throw new InvalidOperationException($"{patchedPods} pods patched to their checkpoint image for {Incidents} incidents ({patches} pod PATCH requests)");
        if (patchedTwice > 0 || patches != Incidents)
            throw new InvalidOperationException($"{patches} pod PATCH requests for {Incidents} incidents ({patchedTwice} pods patched more than once)");

        if (crash)
        {
            // the incidents whose failure was reported after the crash and before the new leader held the Lease
            var end = Interlocked.Read(ref handoverEnd);
            var window = Enumerable.Range(Handover, Incidents - Handover).Where(i => starts[i] < end).Select(i => toPatch[i]).ToList();
            ctx.Report(Name, "leader crash: crash → node agent takes over", Stopwatch.GetElapsedTime(handoverStart, Interlocked.Read(ref takeover)).TotalMilliseconds, "ms", "≤ 3000 ms + renew phase");
            ctx.Report(Name, "leader crash: crash → new leader leads (Lease expired)", Stopwatch.GetElapsedTime(handoverStart, end).TotalMilliseconds, "ms");
            ctx.Report(Name, "leader crash: the incident at the crash → pod image patched", toPatch[Handover], "ms", "≤ 5000 ms");
            ctx.Report(Name, "leader crash: incidents before the new leader", window.Count, "count");
            // a leader present but seen absent (a renewal more than 3 s apart) would count more than one
            ctx.Report(Name, "leader crash: node agent takeovers", Volatile.Read(ref takeovers), "count", "1");
            Report(ctx, "leader crash: status change → pod image patched, before the new leader", window, "≤ 5000 ms");
        }
        else
        {
            Report(ctx, "status change → Restore created (POST)", [.. toPost]);
            Report(ctx, "status change → pod image patched", [.. toPatch]);
            ctx.Report(Name, "leader change: stop → new leader leads", Stopwatch.GetElapsedTime(handoverStart, Interlocked.Read(ref handoverEnd)).TotalMilliseconds, "ms");
            Report(ctx, "10 incidents from the leader change → patched", afterHandover);
        }
        var prefix = crash ? "leader crash: " : "";
        ctx.Report(Name, prefix + "Restores created (one per incident)", restores, "count", Incidents.ToString(System.Globalization.CultureInfo.InvariantCulture));
        ctx.Report(Name, prefix + "pod image patches (one per incident)", patches, "count", Incidents.ToString(System.Globalization.CultureInfo.InvariantCulture));
        ctx.Report(Name, prefix + "pods deleted (restored in place: none)", deleted.Count, "count", "0");
        ctx.Report(Name, prefix + "pods patched more than once (none)", patchedTwice, "count", "0");
    }

    private sealed record Incident(string Pod)
    {
        public TaskCompletionSource<long> Posted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource<long> Patched { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private void Report(BenchContext ctx, string what, List<double> ms, string target = "≤ 1000 ms")
    {
        ms.Sort();
        ctx.Report(Name, $"{what}: p50", Percentile(ms, 0.50), "ms");
        ctx.Report(Name, $"{what}: p99", Percentile(ms, 0.99), "ms", target);
        ctx.Report(Name, $"{what}: max", ms[^1], "ms");
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];

    /// <summary>A Deployment, its ReplicaSet and one running pod (the pod of <see cref="InformerBench.Pod"/>'s size).</summary>
    private static void Seed(FakeApiServer server, string name, bool managed)
    {
        var d = server.Seed(Resources.Deployments, new Deployment
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns,
                Name = name,
                Annotations = managed ? new() { [Annotations.CheckpointRestore] = "true" } : null,
            },
        });
        var rs = server.Seed(Resources.ReplicaSets, new ReplicaSet
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns,
                Name = name + "-5d8f7c9b6",
                OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = name, Uid = d.Metadata.Uid!, Controller = true }],
            },
        });
        var pod = InformerBench.Pod(name + "-5d8f7c9b6-abcde", Node);
        pod.Metadata.Namespace = Ns;
        pod.Metadata.OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = rs.Metadata.Name!, Uid = rs.Metadata.Uid!, Controller = true }];
        pod.Status = new PodStatus
        {
            Phase = "Running",
            ContainerStatuses =
            [
                new ContainerStatus { Name = "app", Ready = true, Started = true, State = new ContainerState { Running = new ContainerStateRunning { StartedAt = DateTimeOffset.UtcNow } } },
                new ContainerStatus { Name = "crsc-interceptor", Ready = true, Started = true, State = new ContainerState { Running = new ContainerStateRunning { StartedAt = DateTimeOffset.UtcNow } } },
            ],
        };
        server.Seed(Resources.Pods, pod);
        if (!managed) return;

        // a Completed checkpoint of the app container, taken from the pod's image, published as an image
        var checkpoint = server.Seed(CrscResources.ContainerCheckpoints, new ContainerCheckpoint
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns,
                Name = name + "-app-20260101000000",
                Labels = new() { [Labels.Workload] = name, [Labels.Container] = "app" },
            },
            Spec = new ContainerCheckpointSpec { PodName = pod.Metadata.Name!, Container = "app" },
            Status = new ContainerCheckpointStatus
            {
                Phase = ContainerCheckpointPhase.Completed,
                Node = Node,
                ContentName = "ckpt-" + name,
                CompletedAt = DateTimeOffset.UtcNow.AddMinutes(-5),
            },
        });
        server.Seed(CrscResources.ContainerCheckpointContents, new ContainerCheckpointContent
        {
            Metadata = new ObjectMeta { Name = "ckpt-" + name },
            Spec = new ContainerCheckpointContentSpec
            {
                Node = Node,
                Path = $"/var/lib/crsc/checkpoints/{Ns}/{name}/app/20260101T000000Z-0000.tar.zst",
                Digest = "sha256:" + new string('1', 64),
                SizeBytes = 4096,
                ImageReference = $"{ImageHost}{Ns}/{name}-app@sha256:{new string('2', 64)}",
                Source = new CheckpointSource { Namespace = Ns, Pod = pod.Metadata.Name!, Container = "app", Image = pod.Spec.Containers[0].Image },
                CheckpointRef = new NamespacedObjectReference { Namespace = Ns, Name = checkpoint.Metadata.Name!, Uid = checkpoint.Metadata.Uid },
            },
        });
    }

    /// <summary>What the kubelet writes after the app container exited with 1 and was started again.</summary>
    private static void Crash(Pod pod)
    {
        var app = pod.Status!.ContainerStatuses!.Single(c => c.Name == "app");
        var now = DateTimeOffset.UtcNow;
        app.LastState = new ContainerState { Terminated = new ContainerStateTerminated { ExitCode = 1, Reason = "Error", FinishedAt = now } };
        app.State = new ContainerState { Running = new ContainerStateRunning { StartedAt = now } };
        app.RestartCount++;
    }

    private static async Task WaitAsync(Func<bool> condition, CancellationToken ct, int pollMs = 5, TimeSpan? timeout = null)
    {
        var sw = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromMinutes(2);
        while (!condition())
        {
            if (sw.Elapsed > limit) throw new TimeoutException($"not reached within {limit}");
            await Task.Delay(pollMs, ct);
        }
    }
}

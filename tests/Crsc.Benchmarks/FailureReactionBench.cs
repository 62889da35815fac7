using System.Diagnostics;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Workloads;
using Crsc.Kube;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Benchmarks;

/// <summary>
/// Step 4: reaction time from a pod status change that shows a failure (a container restarted after exit code 1,
/// written to the pod's status subresource as the kubelet does) to the Restore the failure detector creates for it.
/// FakeApiServer over HTTP, the real client, the real informers (pods in all namespaces, ReplicaSets, Deployments,
/// Restores), controller and <see cref="PodFailureReconciler"/>, and the real event recorder writing Events. 200
/// incidents, one after the other, each in its own managed Deployment (so the per-workload backoff does not apply);
/// 200 more unmanaged Deployments with pods make the informers carry some load. Measured from just before the status
/// write is sent to the moment the Restore's POST reaches the server (and, apart, until it is stored).
/// </summary>
public sealed class FailureReactionBench : IBenchmark
{
    public string Name => "failure-reaction";
    public string Description => "pod status showing a failure → Restore created by the failure detector, p50/p99 over 200 incidents";

    private const int Incidents = 200;
    private const int Unmanaged = 200;
    private const string Ns = "apps";

    public async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        await using var server = await FakeApiServer.StartAsync();
        server.Register(CrscResources.Restores, hasStatusSubresource: true);
        for (var i = 0; i < Incidents; i++) Seed(server, $"svc-{i:000}", managed: true);
        for (var i = 0; i < Unmanaged; i++) Seed(server, $"other-{i:000}", managed: false);

        using var api = new KubeApi(new KubeClientConfig { Server = server.Url, Source = "bench" });
        var events = new EventRecorder(new ApiEventSink(api.Resource(Resources.CoreEvents)), new EventRecorderOptions { Host = "bench" },
            TimeProvider.System, NullLogger.Instance);
        var components = PodFailureComponents.Create(api, events, TimeProvider.System, NullLoggerFactory.Instance);
        using var stop = new CancellationTokenSource();
        var runs = new[] { components.RunAsync(stop.Token), events.RunAsync(stop.Token) };

        // every POST of a Restore, as it reaches the server
        TaskCompletionSource<long>? posted = null;
        server.BeforeRequest = (req, _) =>
        {
            if (req.Method == "POST" && req.Path.EndsWith("/restores", StringComparison.Ordinal))
                Volatile.Read(ref posted)?.TrySetResult(Stopwatch.GetTimestamp());
            return Task.CompletedTask;
        };
        await WaitAsync(() => components.Controller.Queue is { Count: 0, InFlight: 0 } && components.Pods.HasSynced
                              && components.Restores.HasSynced, ct);
        await Task.Delay(500, ct); // the first reconciles have seen every pod: restart counts are known

        var pods = api.Resource(Resources.Pods);
        var toPost = new List<double>(Incidents);
        var toStored = new List<double>(Incidents);
        for (var i = 0; i < Incidents; i++)
        {
            var name = $"svc-{i:000}";
            var pod = await pods.GetAsync(Ns, name + "-5d8f7c9b6-abcde", ct);
            Crash(pod);
            var tcs = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref posted, tcs);
            var start = Stopwatch.GetTimestamp();
            await pods.UpdateStatusAsync(pod, ct);
            var arrived = await tcs.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);
            toPost.Add(Stopwatch.GetElapsedTime(start, arrived).TotalMilliseconds);
            await WaitAsync(() => server.All(server.ResourceOf(CrscResources.Restores)).Count == i + 1, ct, pollMs: 1);
            toStored.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        var restores = server.All(server.ResourceOf(CrscResources.Restores)).Count;
        await stop.CancelAsync();
        await Task.WhenAll(runs);
        if (restores != Incidents) throw new InvalidOperationException($"{restores} Restores for {Incidents} incidents");

        Report(ctx, "status change → Restore POST", toPost);
        Report(ctx, "status change → Restore stored", toStored);
        ctx.Report(Name, "Restores created (one per incident)", restores, "count", Incidents.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private void Report(BenchContext ctx, string what, List<double> ms)
    {
        ms.Sort();
        ctx.Report(Name, $"{what}: p50", Percentile(ms, 0.50), "ms");
        ctx.Report(Name, $"{what}: p99", Percentile(ms, 0.99), "ms", "≤ 1000 ms");
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
                Annotations = managed ? new() { [CrscAnnotations.CheckpointRestore] = "true" } : null,
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
        var pod = InformerBench.Pod(name + "-5d8f7c9b6-abcde", "node-0");
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

    private static async Task WaitAsync(Func<bool> condition, CancellationToken ct, int pollMs = 5)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > TimeSpan.FromMinutes(2)) throw new TimeoutException("not reached within 2 minutes");
            await Task.Delay(pollMs, ct);
        }
    }
}

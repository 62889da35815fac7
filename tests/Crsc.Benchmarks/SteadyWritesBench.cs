using System.Diagnostics;
using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Reconciling;
using Crsc.Kube;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Benchmarks;

/// <summary>
/// Step 2: API writes per minute in the steady state, for 1,000 objects that do not change, with an informer (resync
/// every 5 s, so every object is reconciled again and again) and a reconciler that writes only when the object is not
/// yet as it wants it. The convergence writes are counted apart; the steady-state figure must be 0. Requests are
/// counted by FakeApiServer; the figure is extrapolated from the measured window.
/// </summary>
public sealed class SteadyWritesBench : IBenchmark
{
    public string Name => "steady-writes";
    public string Description => "API writes per minute for 1,000 unchanged objects, informer + no-op-when-unchanged reconciler (must be 0)";

    private const int Objects = 1_000;
    private const string Annotation = "bench.crsc.io/reconciled";
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan Resync = TimeSpan.FromSeconds(5);

    private sealed class EnsureAnnotation(Informer<Pod> cache, IKubeResourceClient<Pod> pods) : IReconciler
    {
        private long _reconciles;
        public long Reconciles => Interlocked.Read(ref _reconciles);

        public async ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
        {
            Interlocked.Increment(ref _reconciles);
            if (cache.Get(key) is not { } pod) return ReconcileResult.Done;
            if (pod.Metadata.Annotations?.GetValueOrDefault(Annotation) == "true") return ReconcileResult.Done; // as wanted: no write
            await pods.PatchAsync(key.Namespace, key.Name, PatchType.Merge,
                "{\"metadata\":{\"annotations\":{\"" + Annotation + "\":\"true\"}}}", ct);
            return ReconcileResult.Done;
        }
    }

    public async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        await using var server = await FakeApiServer.StartAsync();
        for (var i = 0; i < Objects; i++) server.Seed(Resources.Pods, InformerBench.Pod($"pod-{i:0000}", "node-0"));
        using var api = new KubeApi(new KubeClientConfig { Server = server.Url, Source = "bench" });
        var client = api.Resource(Resources.Pods);
        var informer = new Informer<Pod>(client, new InformerOptions { ResyncPeriod = Resync }, TimeProvider.System, NullLogger.Instance);
        var reconciler = new EnsureAnnotation(informer, client);
        var controller = new Controller("bench", reconciler, TimeProvider.System, NullLogger.Instance,
            new ControllerOptions { Workers = 2 }).Watch(informer);

        using var stop = new CancellationTokenSource();
        var runs = new[] { informer.RunAsync(stop.Token), controller.RunAsync(stop.Token) };
        server.ClearRequests();
        var sw = Stopwatch.StartNew();
        while (informer.List().Count(p => p.Metadata.Annotations?.GetValueOrDefault(Annotation) == "true") < Objects)
        {
            if (sw.Elapsed > TimeSpan.FromMinutes(2)) throw new TimeoutException("the reconciler did not converge within 2 minutes");
            await Task.Delay(20, ct);
        }
        ctx.Report(Name, "convergence: writes to annotate 1,000 objects", server.Requests.Count(r => r.IsWrite), "writes");
        ctx.Report(Name, "convergence time", sw.Elapsed.TotalMilliseconds, "ms");

        // let the queue drain the reconciles that the writes' own watch events caused, then measure
        await Task.Delay(TimeSpan.FromSeconds(2), ct);
        server.ClearRequests();
        var reconcilesBefore = reconciler.Reconciles;
        await Task.Delay(Window, ct);
        var requests = server.Requests;
        var perMinute = TimeSpan.FromMinutes(1) / Window;
        var writes = requests.Count(r => r.IsWrite);
        ctx.Report(Name, $"steady state: reconciles in {Window.TotalSeconds:0} s", reconciler.Reconciles - reconcilesBefore, "count");
        ctx.Report(Name, "steady state: API writes per minute", writes * perMinute, "1/min", "0");
        ctx.Report(Name, "steady state: API reads per minute (no watch)", requests.Count(r => !r.IsWrite && !r.IsWatch) * perMinute, "1/min");
        ctx.Report(Name, "steady state: watch (re)connects per minute", requests.Count(r => r.IsWatch) * perMinute, "1/min");

        await stop.CancelAsync();
        await Task.WhenAll(runs);
        if (writes != 0) throw new InvalidOperationException($"{writes} writes in the steady state: {string.Join(", ", requests.Where(r => r.IsWrite).Take(5))}");
    }
}

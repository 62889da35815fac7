using System.Diagnostics;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Kube;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Benchmarks;

/// <summary>
/// Step 2: an informer's initial list + watch of 10,000 pods served by FakeApiServer over HTTP (time to sync, managed
/// heap per cached pod after a full GC), against the raw paged list through the same client in the same run, then
/// the rate at which watch events reach the cache.
/// </summary>
public sealed class InformerBench : IBenchmark
{
    public string Name => "informer";
    public string Description => "informer list + watch of 10,000 pods: time to sync, memory per cached object, vs a raw list";

    private const int Pods = 10_000;
    private const int WatchEvents = 2_000;
    private const int PageSize = 500;

    public async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        await using var server = await FakeApiServer.StartAsync();
        for (var i = 0; i < Pods; i++) server.Seed(Resources.Pods, Pod($"pod-{i:00000}", $"node-{i % 50}"));
        using var api = new KubeApi(new KubeClientConfig { Server = server.Url, Source = "bench" });
        var client = api.Resource(Resources.Pods);

        // baseline: the same pages through the same client, nothing kept (warm-up run first, then the best of 3)
        await RawListAsync(client, ct);
        var raw = TimeSpan.MaxValue;
        for (var i = 0; i < 3; i++)
        {
            var t = await BenchContext.TimeAsync(() => RawListAsync(client, ct));
            if (t < raw) raw = t;
        }
        ctx.Report(Name, $"raw paged list of {Pods} pods (baseline)", raw.TotalMilliseconds, "ms");

        var before = Heap();
        using var stop = new CancellationTokenSource();
        var informer = new Informer<Pod>(client, new InformerOptions { PageSize = PageSize }, TimeProvider.System, NullLogger.Instance);
        var sw = Stopwatch.StartNew();
        var run = informer.RunAsync(stop.Token);
        await informer.WaitForSyncAsync(ct);
        var sync = sw.Elapsed;
        if (informer.Count != Pods) throw new InvalidOperationException($"informer holds {informer.Count} pods, expected {Pods}");
        var after = Heap();
        GC.KeepAlive(informer);
        ctx.Report(Name, $"informer list → synced ({Pods} pods)", sync.TotalMilliseconds, "ms");
        ctx.Ratio(Name, "informer sync / raw list", sync.TotalMilliseconds, raw.TotalMilliseconds);
        ctx.Report(Name, "managed heap per cached pod", (after - before) / (double)Pods, "bytes");
        ctx.Report(Name, "managed heap for the cache", (after - before) / 1e6, "MB");

        // watch: changes made on the server reach the cache
        await WaitAsync(() => server.WatchCount > 0, ct);
        sw.Restart();
        for (var i = 0; i < WatchEvents; i++) server.Seed(Resources.Pods, Pod($"new-{i:00000}", "node-0"));
        await WaitAsync(() => informer.Count == Pods + WatchEvents, ct);
        var watch = sw.Elapsed;
        ctx.Report(Name, $"watch: {WatchEvents} ADDED → cache", watch.TotalMilliseconds, "ms");
        ctx.Report(Name, "watch events applied per second", WatchEvents / watch.TotalSeconds, "1/s");

        await stop.CancelAsync();
        await run;
    }

    private static async Task RawListAsync(IKubeResourceClient<Pod> client, CancellationToken ct)
    {
        string? cont = null;
        var n = 0;
        do
        {
            var page = await client.ListAsync(null, new ListOptions(Limit: PageSize, Continue: cont), ct);
            n += page.Items.Count;
            cont = string.IsNullOrEmpty(page.Metadata.Continue) ? null : page.Metadata.Continue;
        } while (cont is not null);
        if (n != Pods) throw new InvalidOperationException($"listed {n} pods, expected {Pods}");
    }

    private static long Heap()
    {
        for (var i = 0; i < 3; i++)
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static async Task WaitAsync(Func<bool> condition, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > TimeSpan.FromMinutes(2)) throw new TimeoutException("the informer did not catch up within 2 minutes");
            await Task.Delay(5, ct);
        }
    }

    /// <summary>A pod of realistic size: labels, an owner, two containers with env and mounts, a status.</summary>
    internal static Pod Pod(string name, string node) => new()
    {
        Metadata = new ObjectMeta
        {
            Name = name,
            Namespace = "apps",
            Labels = new() { ["app"] = "web", ["pod-template-hash"] = "5d8f7c9b6" },
            Annotations = new() { ["crsc.io/checkpoint-restore"] = "true" },
            OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = "web-5d8f7c9b6", Uid = Guid.NewGuid().ToString(), Controller = true }],
        },
        Spec = new PodSpec
        {
            NodeName = node,
            ServiceAccountName = "default",
            RestartPolicy = "Always",
            Containers =
            [
                new Container
                {
                    Name = "app", Image = "registry.example.com/web:1.2.3", Args = ["--port=8080"],
                    Env = [new EnvVar { Name = "MODE", Value = "production" }],
                    VolumeMounts = [new VolumeMount { Name = "data", MountPath = "/data" }],
                },
                new Container { Name = "crsc-interceptor", Image = "ghcr.io/crsc/crsc:0.1.0", Args = ["interceptor"] },
            ],
        },
    };
}

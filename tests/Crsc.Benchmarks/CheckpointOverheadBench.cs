using Crsc.Controllers.NodeAgent;
using Crsc.Cri;
using Crsc.Storage;
using Crsc.Testing.Cri;

namespace Crsc.Benchmarks;

/// <summary>
/// The time crsc adds around a runtime checkpoint: the whole <see cref="CheckpointRunner"/> path (resolve the container,
/// the CRI call, validate + hash + zstd + durable commit, staging cleanup) minus the runtime's CheckpointContainer call,
/// measured in the same run on the same checkpoints (FakeCriServer writes a realistic archive; the real runtime's own
/// time is measured by the real-component suite).
/// </summary>
public sealed class CheckpointOverheadBench : IBenchmark
{
    public string Name => "checkpoint-overhead";
    public string Description => "what crsc adds around a runtime checkpoint (everything but the runtime call), p50/p90 over 40";

    private const int Runs = 40;

    public async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        await using var cri = await FakeCriServer.StartAsync(Path.Combine(ctx.WorkDir, "cri.sock"));
        cri.AddRunningContainer("bench", "app-0", "main");
        using var runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = cri.Endpoint });
        using var store = new DiskCheckpointStore(new DiskCheckpointStoreOptions
        {
            CheckpointDirectory = Path.Combine(ctx.WorkDir, "overhead", "checkpoints"),
            StagingDirectory = Path.Combine(ctx.WorkDir, "overhead", "staging"),
            NodeName = "bench",
        });
        using var runner = new CheckpointRunner(runtime, runtime, store, new CheckpointRunnerOptions { NodeName = "bench" }, TimeProvider.System,
            new Crsc.Storage.FileStagingArea());

        var runtimeMs = new List<double>();
        var crscMs = new List<double>();
        for (var i = 0; i < Runs + 3; i++)
        {
            var outcome = await runner.CheckpointAsync(new CheckpointRequest("bench", "app-0", "main"), null, ct);
            if (i < 3) continue; // warm-up: JIT, first connection
            runtimeMs.Add(outcome.RuntimeTime.TotalMilliseconds);
            crscMs.Add((outcome.TotalTime - outcome.RuntimeTime).TotalMilliseconds);
        }
        var size = store.List().First().UncompressedSize;
        ctx.Report(Name, "archive size (uncompressed)", size / 1024.0, "KiB");
        ctx.Report(Name, "runtime call p50 (baseline)", Percentile(runtimeMs, 0.5), "ms");
        ctx.Report(Name, "crsc adds p50", Percentile(crscMs, 0.5), "ms");
        ctx.Report(Name, "crsc adds p90", Percentile(crscMs, 0.9), "ms");
        ctx.Ratio(Name, "crsc added / runtime call (p50)", Percentile(crscMs, 0.5), Percentile(runtimeMs, 0.5));
    }

    internal static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
    }
}

using System.Diagnostics;
using System.Globalization;
using Crsc.Controllers.Storage;
using Crsc.Storage;
using Crsc.Storage.Oci;

namespace Crsc.Benchmarks;

/// <summary>
/// Making the checkpoint image of a committed checkpoint (the store's ingestion is done first and not timed): crsc
/// writes a config and a manifest whose one layer is the stored archive, against plain <c>tar -cf</c> of the same files
/// (the least any image builder that copies the files into a layer must do; buildah needs ~25 s for 1 GiB).
/// 256 MiB by default; <c>CRSC_BENCH_IMAGE_MIB=1024</c> for the 1 GiB figure of the issue.
/// </summary>
public sealed class ImageBench : IBenchmark
{
    public string Name => "image";
    public string Description => "checkpoint image from a committed archive vs tar -cf of the same files (256 MiB; CRSC_BENCH_IMAGE_MIB=1024 for 1 GiB)";

    private const long MiB = 1 << 20;

    public async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        var mib = int.TryParse(Environment.GetEnvironmentVariable("CRSC_BENCH_IMAGE_MIB"), NumberStyles.None, CultureInfo.InvariantCulture, out var m) && m > 0
            ? m : 256;
        var archive = Path.Combine(ctx.WorkDir, $"image-{mib}m.tar");
        IngestBench.WriteArchive(archive, mib * MiB);
        var size = new FileInfo(archive).Length;
        ctx.Report(Name, "archive size", size / (double)MiB, "MiB");

        // the same files on disk, for tar (not timed)
        var files = Directory.CreateDirectory(Path.Combine(ctx.WorkDir, "image-files")).FullName;
        await IngestBench.RunToolAsync("tar", "-xf", archive, "-C", files);

        // the committed checkpoint (not timed: the store's ingestion has its own benchmark)
        using var store = new DiskCheckpointStore(new DiskCheckpointStoreOptions
        {
            CheckpointDirectory = Path.Combine(ctx.WorkDir, "image-store", "checkpoints"),
            CompressionLevel = 1,
            CompressionWorkers = 2,
            Key = Crsc.Storage.Security.NodeKey.Generate(), // the endpoint serves only checkpoints its key vouches for
        });
        var info = await store.IngestAsync(archive, new CheckpointedContainer("bench", "app", "app"), new IngestOptions { RemoveStaged = false }, null, ct);
        ctx.Report(Name, "stored (zstd -1)", info.Size / (double)MiB, "MiB");

        // crsc: the image of the committed checkpoint as the node publishes it (a fresh registry and publisher, the
        // manifest resolved from the store as a pull would); the first run also pays this process's JIT (the daemon
        // is AOT), the second is what the daemon pays; then the writer alone (median of many: it is microseconds)
        var cold = await PublishAsync(store, info, ct);
        var (publish, image) = await PublishAsync(store, info, ct);
        var runs = new double[201];
        for (var i = 0; i < runs.Length; i++)
        {
            var sw = Stopwatch.StartNew();
            CheckpointImageWriter.Write(info);
            runs[i] = sw.Elapsed.TotalMilliseconds;
        }
        Array.Sort(runs);
        var writer = runs[runs.Length / 2];
        ctx.Report(Name, "crsc image: publish + resolve, first (JIT)", cold.Elapsed.TotalMilliseconds, "ms");
        ctx.Report(Name, "crsc image: publish + resolve", publish.TotalMilliseconds, "ms");
        ctx.Report(Name, "crsc image: writer (median of 201)", writer, "ms");
        ctx.Report(Name, "crsc image: bytes written (config+manifest)", image.ConfigBytes.Length + image.ManifestBytes.Length, "B");

        // the baseline: tar of the same files into a layer file
        var layer = Path.Combine(ctx.WorkDir, "image-layer.tar");
        var tar = await BenchContext.TimeAsync(() => IngestBench.RunToolAsync("tar", "-cf", layer, "-C", files, "."));
        ctx.Report(Name, "tar -cf of the same files", tar.TotalSeconds * 1000, "ms");
        ctx.Report(Name, "tar output", new FileInfo(layer).Length / (double)MiB, "MiB");
        ctx.Ratio(Name, "crsc publish / tar -cf", publish.TotalMilliseconds, tar.TotalMilliseconds, "< 0.01");
        ctx.Ratio(Name, "tar -cf / crsc publish (how many times faster)", tar.TotalMilliseconds, publish.TotalMilliseconds, "> 100");
        File.Delete(layer);
        Directory.Delete(files, recursive: true);
    }

    private static async Task<(TimeSpan Elapsed, CheckpointImage Image)> PublishAsync(DiskCheckpointStore store, CheckpointInfo info, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        var registry = new StoreImageRegistry(store);
        var reference = await new EmbeddedImagePublisher(registry, "127.0.0.1:5055").PublishAsync(info, ct);
        var served = registry.FindManifest(CheckpointImageNames.Repository(info), info.Id);
        sw.Stop();
        if (reference is null || served.Error is not null) throw new InvalidOperationException("the image was not published: " + served.Error?.Message);
        return (sw.Elapsed, served.Value!);
    }
}

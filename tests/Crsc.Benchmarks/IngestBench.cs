using System.Diagnostics;
using System.Formats.Tar;
using System.Globalization;
using System.Text;
using Crsc.Controllers.Storage;
using Crsc.Storage;

namespace Crsc.Benchmarks;

/// <summary>
/// Ingestion of a 1 GiB checkpoint archive (validate + sha256 + zstd -1 + sha256 of the stored bytes + durable write)
/// against <c>sha256sum</c> and <c>zstd -1</c> run one after the other on the same file; peak RSS at 256 MiB and 1 GiB.
/// </summary>
public sealed class IngestBench : IBenchmark
{
    public string Name => "ingest";
    public string Description => "store ingestion of a 1 GiB archive vs sha256sum + zstd -1; peak RSS vs archive size";

    private const long MiB = 1 << 20;

    public async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        var small = Path.Combine(ctx.WorkDir, "ckpt-256m.tar");
        var large = Path.Combine(ctx.WorkDir, "ckpt-1g.tar");
        WriteArchive(small, 256 * MiB);
        WriteArchive(large, 1024 * MiB);
        var size = new FileInfo(large).Length;
        ctx.Report(Name, "archive size", size / (double)MiB, "MiB");

        // peak RSS of ingestion alone: the high-water mark is reset before each run (/proc/self/clear_refs)
        var rssSmall = await MeasurePeakAsync(ctx, small, "rss-small", ct);
        var rssLarge = await MeasurePeakAsync(ctx, large, "rss-large", ct);
        ctx.Report(Name, "peak RSS, 256 MiB archive", rssSmall / (double)MiB, "MiB");
        ctx.Report(Name, "peak RSS, 1 GiB archive", rssLarge / (double)MiB, "MiB");
        ctx.Ratio(Name, "peak RSS 1 GiB / 256 MiB", rssLarge, rssSmall, "≈ 1.0");

        // the baseline: the two tools one after the other on the same file (no fsync: they get the benefit of the doubt)
        var sha = await BenchContext.TimeAsync(() => RunToolAsync("sha256sum", large));
        var zst = await BenchContext.TimeAsync(() => RunToolAsync("zstd", "-1", "-q", "-f", large, "-o", large + ".zst"));
        var zstSize = new FileInfo(large + ".zst").Length;
        File.Delete(large + ".zst");
        ctx.Report(Name, "sha256sum", sha.TotalSeconds, "s");
        ctx.Report(Name, "zstd -1", zst.TotalSeconds, "s");
        var baseline = sha + zst;

        foreach (var workers in new[] { 0, 2 })
        {
            var (elapsed, info) = await IngestAsync(ctx, large, $"w{workers}", workers, ct);
            ctx.Report(Name, $"crsc ingest (zstd workers {workers})", elapsed.TotalSeconds, "s");
            ctx.Report(Name, $"crsc throughput (workers {workers})", size / (double)MiB / elapsed.TotalSeconds, "MiB/s");
            ctx.Ratio(Name, $"crsc / (sha256sum + zstd -1), workers {workers}", elapsed.TotalSeconds, baseline.TotalSeconds, "<= 1.0");
            ctx.Ratio(Name, $"stored size vs zstd -1 output, workers {workers}", info.Size, zstSize, "≈ 1.0");
        }
    }

    private static async Task<long> MeasurePeakAsync(BenchContext ctx, string archive, string tag, CancellationToken ct)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        ResetPeak();
        await IngestAsync(ctx, archive, tag, workers: 0, ct);
        return ReadStatus("VmHWM:");
    }

    private static async Task<(TimeSpan, CheckpointInfo)> IngestAsync(BenchContext ctx, string archive, string tag, int workers, CancellationToken ct)
    {
        var root = Path.Combine(ctx.WorkDir, "store-" + tag);
        CheckpointInfo? info = null;
        TimeSpan elapsed;
        using (var store = new DiskCheckpointStore(new DiskCheckpointStoreOptions
        {
            CheckpointDirectory = Path.Combine(root, "checkpoints"),
            CompressionLevel = 1,
            CompressionWorkers = workers,
        }))
        {
            elapsed = await BenchContext.TimeAsync(async () =>
                info = await store.IngestAsync(archive, new CheckpointedContainer("bench", "app", "app"),
                    new IngestOptions { RemoveStaged = false }, null, ct));
        }
        Directory.Delete(root, recursive: true);
        return (elapsed, info!);
    }

    private static void ResetPeak()
    {
        // "5" resets the peak resident set size (VmHWM) to the current RSS (Linux ≥ 4.0)
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static long ReadStatus(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (!line.StartsWith(field, StringComparison.Ordinal)) continue;
            var kb = line[field.Length..].Trim().Split(' ')[0];
            return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
        }
        return 0;
    }

    internal static async Task RunToolAsync(string tool, params string[] args)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {tool}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        await stdout;
        if (p.ExitCode != 0) throw new InvalidOperationException($"{tool} failed: {await stderr}");
    }

    /// <summary>A CRI checkpoint archive of about <paramref name="size"/> bytes: metadata plus CRIU page images in 64 MiB files.</summary>
    /// <param name="pages">the content of one page image file of the given length and seed; null: <see cref="PagesStream"/>
    /// (a process dump's mix of zero, text-like and random pages)</param>
    internal static void WriteArchive(string path, long size, Func<long, ulong, Stream>? pages = null)
    {
        pages ??= (length, seed) => new PagesStream(length, seed);
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var tar = new TarWriter(file, TarEntryFormat.Pax, leaveOpen: true);
        tar.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "checkpoint/"));
        Small(tar, "config.dump", """
            {"id":"4b1f","name":"app","rootfsImage":"sha256:00","rootfsImageRef":"registry.example/app@sha256:00",
             "rootfsImageName":"registry.example/app:1","runtime":"runc","createdTime":"2026-01-01T00:00:00Z","checkpointedTime":"2026-01-01T00:10:00Z"}
            """);
        Small(tar, "spec.dump", """
            {"ociVersion":"1.0.2","annotations":{"io.kubernetes.pod.name":"app-0","io.kubernetes.pod.namespace":"bench","io.kubernetes.container.name":"app"}}
            """);
        Small(tar, "checkpoint/inventory.img", "inventory");
        const long part = 64 * MiB;
        var index = 0;
        for (long written = 0; written < size; written += part, index++)
        {
            var length = Math.Min(part, size - written);
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"checkpoint/pages-{index + 1}.img")
            {
                DataStream = pages(length, (ulong)index + 1),
            });
        }
    }

    private static void Small(TarWriter tar, string name, string text) =>
        tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)) });

    /// <summary>
    /// Memory pages as a process dump has them, generated on the fly: ~35 % zero pages, ~35 % text-like (heap strings,
    /// compressible), ~30 % random (already compressed or encrypted data).
    /// </summary>
    private sealed class PagesStream(long length, ulong seed) : Stream
    {
        private const int Page = 4096;
        private static readonly byte[] Text = Encoding.ASCII.GetBytes(
            "{\"user\":\"alice\",\"cart\":[{\"sku\":\"A-1042\",\"qty\":2}],\"session\":\"9f8e7d6c\"} GET /api/v1/items HTTP/1.1\r\n");
        private long _position;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, length - _position);
            for (var i = 0; i < n;)
            {
                var pos = _position + i;
                var page = (ulong)(pos / Page);
                var inPage = (int)(pos % Page);
                var take = Math.Min(n - i, Page - inPage);
                var dst = buffer.Slice(i, take);
                var kind = Mix(page ^ seed) % 100;
                if (kind < 35) dst.Clear();
                else if (kind < 70)
                {
                    for (var j = 0; j < take; j++) dst[j] = Text[(inPage + j + (int)(page % 7)) % Text.Length];
                }
                else
                {
                    var state = Mix(page * 0x9E3779B97F4A7C15UL + seed) | 1;
                    for (var j = 0; j < inPage / 8; j++) state = Next(state); // resume inside the page
                    var k = 0;
                    var skip = inPage % 8;
                    while (k < take)
                    {
                        state = Next(state);
                        var v = state;
                        for (var b = 0; b < 8 && k < take; b++, v >>= 8)
                        {
                            if (skip > 0) { skip--; continue; }
                            dst[k++] = (byte)v;
                        }
                    }
                }
                i += take;
            }
            _position += n;
            return n;
        }

        private static ulong Next(ulong x)
        {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            return x;
        }

        private static ulong Mix(ulong x)
        {
            x ^= x >> 33;
            x *= 0xff51afd7ed558ccdUL;
            x ^= x >> 33;
            return x;
        }

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _position; set => _position = value; }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => _position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => length + offset,
        };
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

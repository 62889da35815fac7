using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Crsc.Controllers.Health;
using Crsc.Controllers.Storage;
using Crsc.Daemon;
using Crsc.Storage;
using Crsc.Storage.Oci;
using Crsc.Storage.Security;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Benchmarks;

/// <summary>
/// Issue 19's transfer figures: a checkpoint moved from one node's store to another's over loopback, for archives of
/// 64 MiB, 512 MiB and 1 GiB of incompressible content (random memory pages: the store keeps them uncompressed, as it
/// would keep such a checkpoint). The source store is served by the daemon's own image endpoint (<see cref="ImageEndpoint"/>,
/// pull tokens of the shared key) on 127.0.0.1; crsc fetches the image into a fresh target store with
/// <see cref="CheckpointImageFetcher"/> (manifest and its MAC checked, the blob streamed through the store's validation
/// and its digest and size checks, fsync, committed: the whole <c>FetchAsync</c> is timed). The baseline, in the same run and alternating
/// with it: <c>curl -s -o FILE</c> of the same layer blob from the same endpoint with the same token, onto the same disk
/// (curl's own <c>time_total</c>; no sync for either side, crsc's fsync of its archive is part of its commit, so "curl +
/// fsync" is printed too). Median of <see cref="Runs"/> runs per size, after one warm-up of each (JIT).
/// <para>
/// Memory: the fetch runs in this process (the project has no child process for its own code), which also runs the
/// serving endpoint; before each run the GC is collected, the RSS read and the peak reset (<c>/proc/self/clear_refs</c>),
/// after it VmHWM is read. Peak growth = VmHWM − RSS before. The same is measured during the curl runs, where it is
/// the endpoint's share alone. The target is flat memory: growth at 1 GiB ≤ 2 × growth at 64 MiB + 16 MiB (see
/// <see cref="FlatBound"/>). CPU seconds per GiB are printed too (this process's, and curl's): on 2 shared cores the
/// wall times swing with the machine's load, the CPU spent much less. <c>CRSC_BENCH_TRANSFER_MIB=64,512</c> moves other
/// sizes. Restore time is not part of this benchmark: it needs the real runtime (<c>restore-from</c> measures a fetch and a restore
/// there, <c>kill-to-serving</c> restores in place).
/// </para>
/// </summary>
public sealed class TransferBench : IBenchmark
{
    public string Name => "transfer";
    public string Description => "a checkpoint fetched from another node's image endpoint over loopback (64 MiB, 512 MiB, 1 GiB) vs curl of the same blob; peak RSS growth (the restore: restore-from)";

    private const long MiB = 1 << 20;
    private const int Runs = 3;
    private const string Namespace = "bench";
    private const string Workload = "app";
    private static readonly int[] DefaultSizesMiB = [64, 512, 1024];

    /// <summary>One crsc fetch: wall time, this process's CPU time (fetch and endpoint), peak RSS growth and peak (MiB).</summary>
    private sealed record FetchRun(double Seconds, double Cpu, double Growth, double Peak);

    /// <summary>One curl run: curl's time_total, the fsync of its file after it, this process's CPU time (the endpoint's),
    /// curl's CPU time, and this process's peak RSS growth (the endpoint's, MiB).</summary>
    private sealed record CurlRun(double Seconds, double FsyncSeconds, double EndpointCpu, double CurlCpu, double Growth);

    /// <summary>Figures of one size: medians of the runs, and the largest peak growth seen.</summary>
    private sealed record SizeResult(int MiBs, long BlobBytes, List<FetchRun> Crsc, List<CurlRun> Curl)
    {
        public double CrscSeconds => Median(Crsc.Select(r => r.Seconds));
        public double CurlSeconds => Median(Curl.Select(r => r.Seconds));
        public double CrscGrowth => Median(Crsc.Select(r => r.Growth));
        public double CrscGrowthMax => Crsc.Max(r => r.Growth);
        public double EndpointGrowth => Median(Curl.Select(r => r.Growth));
    }

    public async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        if (!await CurlAvailableAsync(ct)) throw new InvalidOperationException("curl is not installed: the baseline cannot be measured");
        ctx.Report(Name, "runs per size (median), after one warm-up", Runs, "");
        Console.WriteLine($"{Name}: peak RSS is measured in-process (clear_refs, then VmHWM): the fetching side and the serving endpoint together");
        var key = NodeKey.Generate(); // the nodes share the key (security.keySecret)
        var results = new List<SizeResult>();
        var warm = false;
        foreach (var mib in SizesMiB())
        {
            results.Add(await MeasureSizeAsync(ctx, key, mib, warmUp: !warm, ct));
            warm = true;
        }

        if (results.Count > 1)
        {
            var small = results[0];
            var large = results[^1];
            var bound = FlatBound(small.CrscGrowth);
            ctx.Report(Name, $"flat memory: {Label(large.MiBs)} peak growth, worst", large.CrscGrowthMax, "MiB",
                string.Create(CultureInfo.InvariantCulture,
                    $"<= 2 x {Label(small.MiBs)}'s {small.CrscGrowth:0.#} + 16 = {bound:0.#} MiB: {(large.CrscGrowthMax <= bound ? "PASS" : "FAIL")}"));
        }
        foreach (var r in results)
        {
            var ratio = r.CurlSeconds / r.CrscSeconds;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{Name}: {Label(r.MiBs),8}  crsc {Mbps(r.BlobBytes, r.CrscSeconds),5:0} MB/s (runs {Each(r.Crsc.Select(c => c.Seconds))} s)  curl {Mbps(r.BlobBytes, r.CurlSeconds),5:0} MB/s (runs {Each(r.Curl.Select(c => c.Seconds))} s)  crsc/curl {ratio:0.00}{(ratio < 0.5 ? " (< 0.5)" : "")}  peak growth {r.CrscGrowth:0.0} MiB (endpoint alone {r.EndpointGrowth:0.0})"));
        }
    }

    /// <summary>The sizes to move (MiB): <c>CRSC_BENCH_TRANSFER_MIB</c> (e.g. <c>64,512</c>), else 64, 512 and 1024.</summary>
    private static int[] SizesMiB()
    {
        var given = Environment.GetEnvironmentVariable("CRSC_BENCH_TRANSFER_MIB");
        if (string.IsNullOrWhiteSpace(given)) return DefaultSizesMiB;
        var sizes = new List<int>();
        foreach (var part in given.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            sizes.Add(int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var m) && m > 0
                ? m : throw new InvalidOperationException($"CRSC_BENCH_TRANSFER_MIB: '{part}' is not a size in MiB"));
        return [.. sizes.Order()];
    }

    /// <summary>
    /// Flat memory: what a fetch adds is a fixed set of buffers (the HTTP client's and Kestrel's, the store's 1 MiB chunk,
    /// the endpoint's two 1 MiB copy buffers), a few thread-pool threads and the GC's allocation budget, whatever the
    /// archive's size. The allowance (twice the 64 MiB growth, plus 16 MiB for when the GC happens to run) is for that
    /// noise; anything that keeps a share of the archive fails it: the 1 GiB archive is 16 times the 64 MiB one, so
    /// keeping more than ~3 % of what went through (≥ 30 MiB at 1 GiB) is over the bound.
    /// </summary>
    private static double FlatBound(double growthAtSmallest) => 2 * growthAtSmallest + 16;

    private async Task<SizeResult> MeasureSizeAsync(BenchContext ctx, NodeKey key, int mib, bool warmUp, CancellationToken ct)
    {
        var dir = Directory.CreateDirectory(Path.Combine(ctx.WorkDir, $"transfer-{mib}m")).FullName;
        try
        {
            // the source node's checkpoint (not timed)
            var archive = Path.Combine(dir, "archive.tar");
            IngestBench.WriteArchive(archive, mib * MiB, (length, seed) => new RandomPagesStream(length, seed));
            using var source = OpenStore(Path.Combine(dir, "source"), key);
            var info = await source.IngestAsync(archive, new CheckpointedContainer(Namespace, Workload, Workload),
                new IngestOptions { RemoveStaged = false }, null, ct);
            File.Delete(archive);
            if (info.Compression != CheckpointCompression.None)
                throw new InvalidOperationException($"the store compressed the random archive ({info.Compression}); the figures would not be of {mib} MiB");

            // its endpoint, as the daemon serves it
            var registry = new StoreImageRegistry(source, new CheckpointImagePlatform("linux", "amd64"));
            var tokens = new PullTokens(key);
            await using var endpoint = new ImageEndpoint("127.0.0.1:0", registry, tokens, null, new HealthRegistry(TimeProvider.System),
                NullLogger<ImageEndpoint>.Instance);
            await endpoint.StartAsync(ct);
            if (!endpoint.Serving) throw new InvalidOperationException("the image endpoint did not start");
            try
            {
                var authority = new Uri(endpoint.Addresses.Single()).Authority;
                var reference = await new EmbeddedImagePublisher(registry, authority).PublishAsync(info, ct)
                                ?? throw new InvalidOperationException($"checkpoint {info.Id} was not published");
                var repository = CheckpointImageNames.Repository(info);
                var blobUrl = $"http://{authority}/v2/{repository}/blobs/{info.Digest}";
                var header = Path.Combine(dir, "curl-header");
                File.WriteAllText(header, $"Authorization: Bearer {tokens.Mint(repository, TimeSpan.FromHours(1))}\n");
                File.SetUnixFileMode(header, UnixFileMode.UserRead | UnixFileMode.UserWrite);

                if (warmUp)
                {
                    await FetchAsync(dir, key, reference, tokens, repository, info, ct);
                    await CurlAsync(dir, blobUrl, header, info, ct);
                }
                var crsc = new List<FetchRun>();
                var curl = new List<CurlRun>();
                for (var run = 0; run < Runs; run++)
                {
                    crsc.Add(await FetchAsync(dir, key, reference, tokens, repository, info, ct));
                    curl.Add(await CurlAsync(dir, blobUrl, header, info, ct));
                }

                var result = new SizeResult(mib, info.Size, crsc, curl);
                var curlFsync = Median(curl.Select(r => r.Seconds + r.FsyncSeconds));
                // CPU per GiB: the machine's load (2 shared cores) moves these less than the wall times
                var gib = info.Size / (double)(1L << 30);
                var crscCpu = Median(crsc.Select(r => r.Cpu)) / gib;
                var endpointCpu = Median(curl.Select(r => r.EndpointCpu)) / gib;
                var curlCpu = Median(curl.Select(r => r.CurlCpu)) / gib;
                var label = Label(mib);
                ctx.Report(Name, $"{label}: blob size", info.Size / (double)MiB, "MiB");
                ctx.Report(Name, $"{label}: crsc fetch", result.CrscSeconds, "s");
                ctx.Report(Name, $"{label}: crsc throughput", Mbps(info.Size, result.CrscSeconds), "MB/s");
                ctx.Report(Name, $"{label}: curl -o", result.CurlSeconds, "s");
                ctx.Report(Name, $"{label}: curl throughput", Mbps(info.Size, result.CurlSeconds), "MB/s");
                ctx.Ratio(Name, $"{label}: crsc/curl throughput", result.CurlSeconds, result.CrscSeconds, ">= 0.5");
                ctx.Report(Name, $"{label}: curl + fsync of its file", curlFsync, "s");
                ctx.Ratio(Name, $"{label}: crsc/(curl + fsync) throughput", curlFsync, result.CrscSeconds);
                ctx.Report(Name, $"{label}: CPU/GiB, crsc run (fetch+endpoint)", crscCpu, "s");
                ctx.Report(Name, $"{label}: CPU/GiB, curl run: endpoint", endpointCpu, "s");
                ctx.Report(Name, $"{label}: CPU/GiB, curl run: curl", curlCpu, "s");
                ctx.Report(Name, $"{label}: CPU/GiB, crsc fetching side (est.)", crscCpu - endpointCpu, "s");
                ctx.Report(Name, $"{label}: crsc peak RSS (VmHWM)", Median(crsc.Select(r => r.Peak)), "MiB");
                ctx.Report(Name, $"{label}: crsc peak growth (median)", result.CrscGrowth, "MiB");
                ctx.Report(Name, $"{label}: crsc peak growth (worst run)", result.CrscGrowthMax, "MiB");
                ctx.Report(Name, $"{label}: endpoint alone peak growth", result.EndpointGrowth, "MiB");
                return result;
            }
            finally
            {
                await endpoint.StopAsync(ct);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>One fetch into a fresh target store.</summary>
    private static async Task<FetchRun> FetchAsync(string dir, NodeKey key, string reference,
        PullTokens tokens, string repository, CheckpointInfo expected, CancellationToken ct)
    {
        var root = Path.Combine(dir, "target");
        try
        {
            using var target = OpenStore(root, key);
            using var fetcher = new CheckpointImageFetcher(target, new CheckpointFetchOptions { Insecure = true });
            var credentials = CheckpointImageFetcher.PeerCredentials(tokens, repository);
            var before = SettleAndResetPeak();
            var cpu = Environment.CpuUsage.TotalTime;
            var sw = Stopwatch.StartNew();
            var fetched = await fetcher.FetchAsync(reference, credentials, null, ct);
            var seconds = sw.Elapsed.TotalSeconds;
            var peak = Status("VmHWM:");
            var cpuSeconds = (Environment.CpuUsage.TotalTime - cpu).TotalSeconds;
            if (fetched.Digest != expected.Digest || fetched.Size != expected.Size || fetched.Authenticity != CheckpointAuthenticity.Verified
                || target.Get(expected.Id) is null)
                throw new InvalidOperationException($"the fetched checkpoint is not the one served: {fetched.Digest} ({fetched.Authenticity}), expected {expected.Digest}");
            return new FetchRun(seconds, cpuSeconds, (peak - before) / (double)MiB, peak / (double)MiB);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>curl of the blob into a file on the same disk.</summary>
    private static async Task<CurlRun> CurlAsync(string dir, string url, string header,
        CheckpointInfo expected, CancellationToken ct)
    {
        var output = Path.Combine(dir, "curl.out");
        try
        {
            var psi = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "-s", "-f", "-o", output, "-H", "@" + header, "-w", "%{time_total} %{size_download}", url })
                psi.ArgumentList.Add(a);
            var before = SettleAndResetPeak();
            var cpu = Environment.CpuUsage.TotalTime;
            var childCpu = ChildrenCpuSeconds();
            using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start curl");
            var stdout = p.StandardOutput.ReadToEndAsync(ct);
            var stderr = p.StandardError.ReadToEndAsync(ct);
            await p.WaitForExitAsync(ct);
            var peak = Status("VmHWM:");
            var endpointCpu = (Environment.CpuUsage.TotalTime - cpu).TotalSeconds;
            var curlCpu = ChildrenCpuSeconds() - childCpu;
            var said = (await stdout).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (p.ExitCode != 0 || said.Length != 2)
                throw new InvalidOperationException($"curl {url} failed (exit {p.ExitCode}): {await stderr}{string.Join(' ', said)}");
            var seconds = double.Parse(said[0], CultureInfo.InvariantCulture);
            if (long.Parse(said[1], CultureInfo.InvariantCulture) != expected.Size || new FileInfo(output).Length != expected.Size)
                throw new InvalidOperationException($"curl got {said[1]} bytes, the blob has {expected.Size}");
            var sw = Stopwatch.StartNew();
            using (var file = new FileStream(output, FileMode.Open, FileAccess.ReadWrite)) file.Flush(flushToDisk: true);
            return new CurlRun(seconds, sw.Elapsed.TotalSeconds, endpointCpu, curlCpu, (peak - before) / (double)MiB);
        }
        finally
        {
            File.Delete(output);
        }
    }

    private static DiskCheckpointStore OpenStore(string root, NodeKey key) => new(new DiskCheckpointStoreOptions
    {
        CheckpointDirectory = Path.Combine(root, "checkpoints"),
        NodeName = "node-" + Path.GetFileName(root),
        Key = key,
    });

    /// <summary>Collects what the GC can, then resets the peak RSS to the current RSS; returns the RSS (bytes).</summary>
    private static long SettleAndResetPeak()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        // "5" resets VmHWM to the current RSS (Linux ≥ 4.0); writable by the process's owner, no root needed
        File.WriteAllText("/proc/self/clear_refs", "5");
        return Status("VmRSS:");
    }

    private static long Status(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field, StringComparison.Ordinal))
                return long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        throw new InvalidOperationException($"/proc/self/status has no {field}");
    }

    /// <summary>User + system CPU seconds of this process's children that have ended (getrusage RUSAGE_CHILDREN).</summary>
    private static double ChildrenCpuSeconds()
    {
        if (GetRUsage(-1, out var usage) != 0) throw new InvalidOperationException($"getrusage failed: errno {Marshal.GetLastPInvokeError()}");
        return usage.UserSeconds + usage.UserMicroseconds / 1e6 + usage.SystemSeconds + usage.SystemMicroseconds / 1e6;
    }

    /// <summary>The start of <c>struct rusage</c> (x86-64/arm64 Linux: two timevals, then 14 longs).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct RUsage
    {
        public long UserSeconds, UserMicroseconds, SystemSeconds, SystemMicroseconds;
        private readonly long _r0, _r1, _r2, _r3, _r4, _r5, _r6, _r7, _r8, _r9, _r10, _r11, _r12, _r13;
    }

    [DllImport("libc", EntryPoint = "getrusage", SetLastError = true)]
    private static extern int GetRUsage(int who, out RUsage usage);

    private static string Each(IEnumerable<double> seconds) =>
        string.Join("/", seconds.Select(s => s.ToString("0.00", CultureInfo.InvariantCulture)));

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static string Label(int mib) => mib % 1024 == 0 ? $"{mib / 1024} GiB" : $"{mib} MiB";

    private static double Mbps(long bytes, double seconds) => bytes / 1e6 / seconds;

    private static async Task<bool> CurlAvailableAsync(CancellationToken ct)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("curl", "--version") { RedirectStandardOutput = true, RedirectStandardError = true })!;
            await p.StandardOutput.ReadToEndAsync(ct);
            await p.WaitForExitAsync(ct);
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }
    }

    /// <summary>Memory pages of random content (xorshift, seeded): what zstd cannot shrink, as in an encrypted or
    /// compressed heap; generated on the fly.</summary>
    private sealed class RandomPagesStream(long length, ulong seed) : Stream
    {
        private long _position;
        private ulong _state = (seed * 0x9E3779B97F4A7C15UL) | 1;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Min(buffer.Length, length - _position);
            var words = MemoryMarshal.Cast<byte, ulong>(buffer[..n]);
            for (var i = 0; i < words.Length; i++) words[i] = Next();
            for (var i = words.Length * 8; i < n; i++) buffer[i] = (byte)Next();
            _position += n;
            return n;
        }

        private ulong Next()
        {
            var x = _state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            return _state = x;
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

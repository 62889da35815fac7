using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Testing.Scenarios;

namespace Crsc.Benchmarks;

/// <summary>
/// Issue 19's transfer + restore on the real runtime: the restore-from scenario (two published AOT daemons, one per
/// node, two kubelets on the sandbox's containerd + runc + CRIU) with a counter holding 64 MiB, 512 MiB and 1 GiB of
/// incompressible memory. The checkpoint is taken on node-a; a pod on node-b annotated <c>crsc.io/restore-from</c> is
/// timed from running cold to its restored process's first write, in two parts: the fetch (first <c>Fetching</c> →
/// <c>RestoreRequested</c>: node-b's agent pulls the archive from node-a's endpoint, checks digest and MAC, commits it,
/// records the copy, makes the Restore) and the restore (→ the restored process writes). The baseline, in the same
/// run: <c>curl -o</c> of the same archive file over loopback from a plain HTTP server in this process (median of 3).
/// node-b's daemon's peak RSS (VmHWM) is read before it stops: it must not grow with the archive. Root, on tests/sandbox;
/// skipped with the reason where the sandbox cannot run. <c>CRSC_BENCH_SIZES</c> (e.g. <c>64,512</c>) picks sizes in MiB.
/// </summary>
public sealed class RestoreFromBench : IBenchmark
{
    public string Name => "restore-from";
    public string Description => "transfer + restore of a 64 MiB / 512 MiB / 1 GiB checkpoint to another node on the real runtime (sandbox), vs curl of the same archive; target daemon's peak RSS";

    private static readonly int[] DefaultSizes = [64, 512, 1024];

    public async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        var sandbox = new RealRuntimeFixture(new CheckpointOverheadRealBench.BenchMessageSink());
        if (CheckpointOverheadRealBench.SkipReason(sandbox) is { } why)
        {
            Console.WriteLine($"{Name}: SKIPPED: {why}");
            return;
        }
        var binary = Environment.GetEnvironmentVariable("CRSC_BINARY") is { Length: > 0 } b ? b : ctx.AotBinary;
        if (!File.Exists(binary)) throw new FileNotFoundException($"no crsc binary at {binary}: run `make publish` or set CRSC_BINARY");
        var sizes = Environment.GetEnvironmentVariable("CRSC_BENCH_SIZES") is { Length: > 0 } only
            ? only.Split(',').Select(s => int.Parse(s.Trim().TrimEnd('M', 'i', 'B'), CultureInfo.InvariantCulture)).ToArray()
            : DefaultSizes;
        var peaks = new List<(int MiB, double PeakMiB)>();
        try
        {
            await sandbox.InitializeAsync();
            foreach (var mib in sizes) peaks.Add((mib, await MeasureAsync(ctx, sandbox, binary, mib, ct)));
        }
        finally
        {
            await sandbox.DisposeAsync();
        }
        if (peaks.Count > 1)
        {
            // flat memory: the fetch streams into the store, so the largest archive's peak stays near the smallest's
            var (small, large) = (peaks[0], peaks[^1]);
            var bound = small.PeakMiB * 1.5 + 32;
            ctx.Report(Name, $"flat memory: target daemon peak RSS at {large.MiB} MiB", large.PeakMiB, "MiB",
                string.Create(CultureInfo.InvariantCulture, $"<= 1.5 x {small.MiB} MiB's {small.PeakMiB:0} + 32 = {bound:0} MiB: {(large.PeakMiB <= bound ? "PASS" : "FAIL")}"));
        }
    }

    private async Task<double> MeasureAsync(BenchContext ctx, RealRuntimeFixture sandbox, string binary, int mib, CancellationToken ct)
    {
        var work = sandbox.CreateSharedDirectory($"restore-from-bench-{mib}-");
        var scenario = new CheckpointRestoreScenario(new CheckpointRestoreScenarioOptions
        {
            Binary = binary,
            RuntimeEndpoint = sandbox.CriEndpoint,
            Image = sandbox.BusyboxImage,
            CgroupParent = sandbox.CgroupParent,
            WorkDirectory = work,
            NodeName = "node-a",
            ImagesListen = "127.0.0.1:5055",
            // long enough that node-a's next scheduled dump does not overlap the fetch and the restore it times
            Interval = "45s",
            MemoryMiB = mib,
            Timeout = TimeSpan.FromMinutes(8),
        }, line => Console.WriteLine($"  {mib} MiB: {line}"));
        var label = $"{mib} MiB";
        try
        {
            var result = await scenario.RunRestoreFromAsync("node-b", sandbox.CheckpointImagesAddress, ct);
            var t = result.Timings ?? throw new InvalidOperationException("the scenario measured no timings");
            if (!result.SameProcess) throw new InvalidOperationException($"{label}: the target pod did not continue the checkpointed process ({result.RestorePhase})");
            var curl = new List<double>();
            for (var i = 0; i < 3; i++) curl.Add(await CurlSecondsAsync(t.ArchivePath, t.ArchiveBytes, work, ct));
            curl.Sort();
            var curlSeconds = curl[1];
            var peakMiB = t.TargetPeakRssKiB / 1024.0;
            ctx.Report(Name, $"{label}: archive", t.ArchiveBytes / 1048576.0, "MiB");
            ctx.Report(Name, $"{label}: fetch (verify, commit, Restore made)", t.Fetch.TotalSeconds, "s");
            ctx.Report(Name, $"{label}: curl -o of the same archive (median of 3)", curlSeconds, "s");
            ctx.Ratio(Name, $"{label}: crsc fetch / curl time", t.Fetch.TotalSeconds, curlSeconds);
            ctx.Report(Name, $"{label}: restore (Restore -> restored process writes)", t.Restore.TotalSeconds, "s");
            ctx.Report(Name, $"{label}: running cold -> restored and writing", t.Total.TotalSeconds, "s");
            ctx.Report(Name, $"{label}: target daemon peak RSS (VmHWM)", peakMiB, "MiB");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{Name,-22} {label}: archive {t.ArchiveBytes / 1048576.0:0} MiB, fetch {t.Fetch.TotalSeconds:0.00} s (curl {curlSeconds:0.00} s, x{t.Fetch.TotalSeconds / curlSeconds:0.0}), restore {t.Restore.TotalSeconds:0.00} s, total {t.Total.TotalSeconds:0.00} s, target peak RSS {peakMiB:0} MiB"));
            return peakMiB;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new InvalidOperationException($"{label}: {e.Message}", e);
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Console.WriteLine($"cleanup of {work}: {e.Message}"); }
        }
    }

    /// <summary>curl's <c>time_total</c> for the archive served over loopback by a plain HTTP server in this process.</summary>
    private static async Task<double> CurlSecondsAsync(string archive, long size, string work, CancellationToken ct)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var serve = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync(ct);
            await using var net = client.GetStream();
            var buffer = new byte[4096];
            var seen = "";
            while (!seen.Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                var n = await net.ReadAsync(buffer, ct);
                if (n == 0) return;
                seen += System.Text.Encoding.ASCII.GetString(buffer, 0, n);
            }
            var header = System.Text.Encoding.ASCII.GetBytes(
                $"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n");
            await net.WriteAsync(header, ct);
            await using var file = new FileStream(archive, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
            await file.CopyToAsync(net, 1 << 20, ct);
        }, ct);
        var output = Path.Combine(work, "curl.out");
        try
        {
            var psi = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "-s", "-f", "-o", output, "-w", "%{time_total} %{size_download}", $"http://127.0.0.1:{port}/archive" })
                psi.ArgumentList.Add(a);
            using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start curl");
            var stdout = await p.StandardOutput.ReadToEndAsync(ct);
            var stderr = await p.StandardError.ReadToEndAsync(ct);
            await p.WaitForExitAsync(ct);
            await serve;
            var said = stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (p.ExitCode != 0 || said.Length != 2 || long.Parse(said[1], CultureInfo.InvariantCulture) != size)
                throw new InvalidOperationException($"curl of {archive} failed (exit {p.ExitCode}): {stderr}{stdout}");
            return double.Parse(said[0], CultureInfo.InvariantCulture);
        }
        finally
        {
            listener.Stop();
            File.Delete(output);
        }
    }
}

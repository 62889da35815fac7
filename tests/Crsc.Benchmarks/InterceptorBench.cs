using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Crsc.Interceptor;
using Crsc.Testing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Benchmarks;

/// <summary>
/// Issue 17's overhead figures: p50/p99 latency of 1,000 req/s (open loop, one kept-alive connection, latency counted
/// from each request's scheduled time so a stall is not hidden) to a tiny HTTP app on loopback, direct and through the
/// interceptor, in alternating rounds of the same run. The interceptor runs in this process on the thread pool; the load
/// generator is one dedicated thread with blocking sockets. The published AOT binaries are measured too, each in its own
/// process as a sidecar runs: <c>crsc-interceptor</c> (CRSC_INTERCEPTOR_BINARY, or beside the crsc binary), what the
/// injected sidecar runs, and for comparison <c>crsc interceptor</c> (CRSC_BINARY or bin/crsc), the same code in the big
/// binary; each with its RSS idle (started, nothing proxied yet), after the load and at its peak (VmHWM), and its size.
/// Targets: added p99 ≤ 1 ms, the sidecar's (crsc-interceptor's) RSS ≤ 15 MB idle and at its peak, PASS or FAIL.
/// </summary>
public sealed class InterceptorBench : IBenchmark
{
    public string Name => "interceptor";
    public string Description => "p50/p99 latency at 1,000 req/s on loopback: direct vs through the interceptor; the sidecar's RSS";

    private const int Rate = 1000;
    private const int Rounds = 5;
    private const int RequestsPerRound = 2000;
    private const double RssTargetMb = 15;
    private const string Sidecar = "crsc-interceptor";

    /// <summary>A published binary run as a sidecar: its process, where it listens, its RSS before any request.</summary>
    private sealed record SidecarProcess(string Name, string Binary, Process Process, IPEndPoint EndPoint, double IdleRss);

    public async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        using var app = new FixedAnswerHttpApp();
        var hold = new HoldOptions();
        using var gate = new HoldGate(hold, TimeProvider.System);
        await using var proxy = new InterceptorProxy(new InterceptorOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            Upstream = app.EndPoint,
        }, gate, TimeProvider.System, NullLogger.Instance);
        proxy.Start();

        var targets = new List<(string Name, EndPoint EndPoint)> { ("direct", app.EndPoint), ("in-process", proxy.LocalEndPoint) };
        var main = Environment.GetEnvironmentVariable("CRSC_BINARY") is { Length: > 0 } b ? b : ctx.AotBinary;
        var small = Environment.GetEnvironmentVariable("CRSC_INTERCEPTOR_BINARY") is { Length: > 0 } i ? i
            : Path.Join(Path.GetDirectoryName(Path.GetFullPath(main)), Sidecar);
        var sidecars = new List<SidecarProcess>();
        try
        {
            foreach (var (name, binary, verb) in new[] { (Sidecar, small, Array.Empty<string>()), ("crsc interceptor", main, new[] { "interceptor" }) })
            {
                if (!File.Exists(binary) || !await HasCommandAsync(binary, verb, ct))
                {
                    Console.WriteLine($"interceptor: {binary} is missing or is not {name}: its RSS is not measured " +
                                      "(build both with `make publish`, or set CRSC_INTERCEPTOR_BINARY and CRSC_BINARY)");
                    continue;
                }
                var port = FreePort();
                var process = Process.Start(new ProcessStartInfo(binary, [.. verb, "--listen", $"127.0.0.1:{port}", "--upstream", app.EndPoint.ToString()])
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                })!;
                var endPoint = new IPEndPoint(IPAddress.Loopback, port);
                sidecars.Add(new SidecarProcess(name, binary, process, endPoint, 0));
                await WaitListeningAsync(endPoint, ct);
                await Task.Delay(TimeSpan.FromSeconds(1), ct); // settled: started, listening, nothing proxied
                sidecars[^1] = sidecars[^1] with { IdleRss = Rss(process.Id).Rss };
                targets.Add((name, endPoint));
            }

            var samples = targets.ToDictionary(t => t.Name, _ => new List<double>());
            await Task.Factory.StartNew(() =>
            {
                foreach (var t in targets) Measure(t.EndPoint, 500); // warm-up: JIT, connections, pools
                for (var round = 0; round < Rounds; round++)
                    foreach (var t in targets)
                        samples[t.Name].AddRange(Measure(t.EndPoint, RequestsPerRound));
            }, ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);

            var direct = samples["direct"];
            var d50 = Percentile(direct, 0.50);
            var d99 = Percentile(direct, 0.99);
            ctx.Report(Name, $"direct p50 ({direct.Count} req at {Rate}/s)", d50, "ms");
            ctx.Report(Name, "direct p99", d99, "ms");
            foreach (var t in targets.Skip(1))
            {
                var s = samples[t.Name];
                var p50 = Percentile(s, 0.50);
                var p99 = Percentile(s, 0.99);
                ctx.Report(Name, $"{t.Name} p50", p50, "ms");
                ctx.Report(Name, $"{t.Name} p99", p99, "ms");
                ctx.Report(Name, $"{t.Name} added p50", p50 - d50, "ms");
                ctx.Report(Name, $"{t.Name} added p99", p99 - d99, "ms", "<= 1 ms");
                ctx.Ratio(Name, $"{t.Name}/direct p99", p99, d99);
            }
            foreach (var sidecar in sidecars)
            {
                var (rss, peak) = Rss(sidecar.Process.Id);
                // the target is the sidecar's; the big binary's figures are there to compare
                string? Target(double mb) => sidecar.Name == Sidecar
                    ? string.Create(CultureInfo.InvariantCulture, $"<= {RssTargetMb} MB: {(mb <= RssTargetMb ? "PASS" : "FAIL")}") : null;
                ctx.Report(Name, $"{sidecar.Name} binary size", new FileInfo(sidecar.Binary).Length / 1048576.0, "MB");
                ctx.Report(Name, $"{sidecar.Name} RSS idle", sidecar.IdleRss, "MB", Target(sidecar.IdleRss));
                ctx.Report(Name, $"{sidecar.Name} RSS after the load", rss, "MB");
                ctx.Report(Name, $"{sidecar.Name} peak RSS (VmHWM)", peak, "MB", Target(peak));
            }
            ctx.Report(Name, "requests forwarded in-process", proxy.Forwarded, "req");
        }
        finally
        {
            foreach (var sidecar in sidecars)
            {
                if (!sidecar.Process.HasExited) { sidecar.Process.Kill(); await sidecar.Process.WaitForExitAsync(ct); }
                sidecar.Process.Dispose();
            }
        }
    }

    /// <summary>Sends <paramref name="count"/> GETs at <see cref="Rate"/>/s on one connection; the latency of each, in ms, from its scheduled time.</summary>
    private static List<double> Measure(EndPoint target, int count)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        s.Connect(target);
        var request = "GET /ping HTTP/1.1\r\nHost: bench\r\n\r\n"u8.ToArray();
        var expected = FixedAnswerHttpApp.Response.Length;
        var buffer = new byte[4096];
        var latencies = new List<double>(count);
        var tick = Stopwatch.Frequency / (double)Rate;
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            var due = start + (long)(i * tick);
            while (true)
            {
                var left = due - Stopwatch.GetTimestamp();
                if (left <= 0) break;
                if (left > Stopwatch.Frequency / 500) Thread.Sleep(1); // > 2 ms away: sleep; closer: spin
                else Thread.SpinWait(20);
            }
            s.Send(request);
            var got = 0;
            while (got < expected)
            {
                var n = s.Receive(buffer, got, buffer.Length - got, SocketFlags.None);
                if (n == 0) throw new IOException($"{target} closed the connection");
                got += n;
            }
            latencies.Add(Stopwatch.GetElapsedTime(due).TotalMilliseconds);
        }
        return latencies;
    }

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
    }

    private static (double Rss, double Peak) Rss(int pid)
    {
        double Field(string name) => File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith(name + ":", StringComparison.Ordinal))
            .Select(l => double.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024).First();
        return (Field("VmRSS"), Field("VmHWM"));
    }

    private static async Task<bool> HasCommandAsync(string binary, string[] verb, CancellationToken ct)
    {
        using var p = Process.Start(new ProcessStartInfo(binary, [.. verb, "--help"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        await p.WaitForExitAsync(ct);
        return p.ExitCode == 0;
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static async Task WaitListeningAsync(EndPoint endPoint, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await s.ConnectAsync(endPoint, ct);
                return;
            }
            catch (SocketException) when (sw.Elapsed < TimeSpan.FromSeconds(10)) { await Task.Delay(20, ct); }
        }
    }
}

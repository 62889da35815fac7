using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Crsc.Interceptor;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Benchmarks;

/// <summary>
/// Issue 17's overhead figures: p50/p99 latency of 1,000 req/s (open loop, one kept-alive connection, latency counted
/// from each request's scheduled time so a stall is not hidden) to a tiny HTTP app on loopback, direct and through the
/// interceptor, in alternating rounds of the same run. The interceptor runs in this process on the thread pool; the load
/// generator is one dedicated thread with blocking sockets. When the published AOT binary has
/// the verb (CRSC_BINARY or bin/crsc), it is measured too as the sidecar runs — its own process — with its RSS.
/// Targets: added p99 ≤ 1 ms, sidecar RSS ≤ 15 MB.
/// </summary>
public sealed class InterceptorBench : IBenchmark
{
    public string Name => "interceptor";
    public string Description => "p50/p99 latency at 1,000 req/s on loopback: direct vs through the interceptor; the sidecar's RSS";

    private const int Rate = 1000;
    private const int Rounds = 5;
    private const int RequestsPerRound = 2000;

    public async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        using var app = new TinyHttpApp();
        var hold = new HoldOptions();
        using var gate = new HoldGate(hold, TimeProvider.System);
        await using var proxy = new InterceptorProxy(new InterceptorOptions
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0),
            Upstream = app.EndPoint,
        }, gate, TimeProvider.System, NullLogger.Instance);
        proxy.Start();

        var targets = new List<(string Name, EndPoint EndPoint)> { ("direct", app.EndPoint), ("in-process", proxy.LocalEndPoint) };
        Process? sidecar = null;
        var binary = Environment.GetEnvironmentVariable("CRSC_BINARY") is { Length: > 0 } b ? b : ctx.AotBinary;
        if (File.Exists(binary) && await HasVerbAsync(binary, ct))
        {
            var port = FreePort();
            sidecar = Process.Start(new ProcessStartInfo(binary, ["interceptor", "--listen", $"127.0.0.1:{port}", "--upstream", app.EndPoint.ToString()])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            })!;
            var sidecarEndPoint = new IPEndPoint(IPAddress.Loopback, port);
            await WaitListeningAsync(sidecarEndPoint, ct);
            targets.Add(("aot sidecar", sidecarEndPoint));
        }
        else
            Console.WriteLine($"interceptor: {binary} is missing or has no interceptor verb: the sidecar's RSS is not measured " +
                              "(build it with `make publish`, or set CRSC_BINARY)");
        try
        {
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
            if (sidecar is not null)
            {
                var (rss, peak) = Rss(sidecar.Id);
                ctx.Report(Name, "aot sidecar RSS after the load", rss, "MB", "<= 15 MB");
                ctx.Report(Name, "aot sidecar peak RSS (VmHWM)", peak, "MB");
            }
            ctx.Report(Name, "requests forwarded in-process", proxy.Forwarded, "req");
        }
        finally
        {
            if (sidecar is { HasExited: false }) { sidecar.Kill(); await sidecar.WaitForExitAsync(ct); }
            sidecar?.Dispose();
        }
    }

    /// <summary>Sends <paramref name="count"/> GETs at <see cref="Rate"/>/s on one connection; the latency of each, in ms, from its scheduled time.</summary>
    private static List<double> Measure(EndPoint target, int count)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        s.Connect(target);
        var request = "GET /ping HTTP/1.1\r\nHost: bench\r\n\r\n"u8.ToArray();
        var expected = TinyHttpApp.Response.Length;
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

    private static async Task<bool> HasVerbAsync(string binary, CancellationToken ct)
    {
        using var p = Process.Start(new ProcessStartInfo(binary, ["interceptor", "--help"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
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

    /// <summary>The app: answers every request head on a kept-alive connection with a fixed 2-byte 200, on raw sockets (the same cost on both paths).</summary>
    private sealed class TinyHttpApp : IDisposable
    {
        public static readonly byte[] Response = Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

        public TinyHttpApp()
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(64);
            _ = AcceptAsync();
        }

        public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

        private async Task AcceptAsync()
        {
            while (true)
            {
                Socket s;
                try { s = await _listener.AcceptAsync(); }
                catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
                s.NoDelay = true;
                _ = Task.Run(() => Serve(s));
            }
        }

        private static async Task Serve(Socket s)
        {
            using var _ = s;
            var buffer = new byte[8192];
            var have = 0;
            try
            {
                while (true)
                {
                    var n = await s.ReceiveAsync(buffer.AsMemory(have));
                    if (n == 0) return;
                    have += n;
                    int end;
                    while ((end = buffer.AsSpan(0, have).IndexOf("\r\n\r\n"u8)) >= 0)
                    {
                        await s.SendAsync(Response);
                        Buffer.BlockCopy(buffer, end + 4, buffer, 0, have - end - 4);
                        have -= end + 4;
                    }
                }
            }
            catch (SocketException) { }
        }

        public void Dispose() => _listener.Dispose();
    }
}

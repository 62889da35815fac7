using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Crsc.Benchmarks;

/// <summary>
/// Step 1 figures: size of bin/crsc, start → READY=1 and idle RSS after 10 s of the Native AOT daemon, beside
/// the same daemon on the JIT, measured in the same run. Targets: binary ≤ 25 MB, READY ≤ 100 ms, RSS ≤ 25 MB.
/// </summary>
public sealed class StartupBench : IBenchmark
{
    public string Name => "startup";
    public string Description => "binary size, start → READY and idle RSS: AOT daemon vs the JIT daemon";

    private const int Runs = 7;

    public async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        var aot = Environment.GetEnvironmentVariable("CRSC_BINARY") is { Length: > 0 } b ? b : ctx.AotBinary;
        if (!File.Exists(aot)) throw new FileNotFoundException($"{aot} missing: run `make publish` first");
        var size = new FileInfo(aot).Length;
        ctx.Report(Name, "aot binary size", size / 1e6, "MB", "<= 25 MB");

        var jitDir = Path.Combine(ctx.WorkDir, "jit");
        await RunToEndAsync("dotnet", ["build", Path.Combine(ctx.RepoRoot, "src/Crsc/Crsc.csproj"), "-f", "net10.0", "-c", "Release",
            "-o", jitDir, "-nodeReuse:false", "--artifacts-path", Path.Combine(ctx.WorkDir, "jit-artifacts"), "-v:q"], ct);
        var jitDll = Path.Combine(jitDir, "crsc.dll");

        var aotReady = new List<double>();
        var jitReady = new List<double>();
        for (var i = 0; i < Runs; i++)
        {
            aotReady.Add((await StartDaemonAsync(ctx, aot, [], TimeSpan.Zero, ct)).ReadyMs);
            jitReady.Add((await StartDaemonAsync(ctx, "dotnet", [jitDll], TimeSpan.Zero, ct)).ReadyMs);
        }
        var aotMedian = Median(aotReady);
        var jitMedian = Median(jitReady);
        ctx.Report(Name, $"aot start → READY (median of {Runs})", aotMedian, "ms", "<= 100 ms");
        ctx.Report(Name, $"jit start → READY (median of {Runs})", jitMedian, "ms");
        ctx.Ratio(Name, "aot/jit READY time", aotMedian, jitMedian);

        var idle = TimeSpan.FromSeconds(10);
        var aot1 = await StartDaemonAsync(ctx, aot, [], idle, ct, probe: true);
        var jit1 = await StartDaemonAsync(ctx, "dotnet", [jitDll], idle, ct, probe: true);
        ctx.Report(Name, "aot idle RSS after 10 s", aot1.RssMb, "MB", "<= 25 MB");
        ctx.Report(Name, "jit idle RSS after 10 s", jit1.RssMb, "MB");
        ctx.Ratio(Name, "aot/jit idle RSS", aot1.RssMb, jit1.RssMb);
        // the daemon pages out the executable's startup pages once READY; serving a request reads some back in:
        // the figure after one /readyz shows what an idle daemon that is probed costs
        ctx.Report(Name, "aot RSS after one /readyz", aot1.ProbedRssMb, "MB", "<= 25 MB");
        ctx.Report(Name, "jit RSS after one /readyz", jit1.ProbedRssMb, "MB");
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    /// <summary>Starts the daemon, waits for READY=1 on a private notify socket, optionally idles, reads VmRSS, stops it.</summary>
    private static async Task<(double ReadyMs, double RssMb, double ProbedRssMb)> StartDaemonAsync(BenchContext ctx, string exe, string[] prefix,
        TimeSpan idle, CancellationToken ct, bool probe = false)
    {
        var dir = Directory.CreateTempSubdirectory("crsc-bench-daemon-").FullName;
        try
        {
            var notifyPath = Path.Combine(dir, "notify.sock");
            using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            notify.Bind(new UnixDomainSocketEndPoint(notifyPath));
            var psi = new ProcessStartInfo(exe, [.. prefix, "daemon"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.Environment["NOTIFY_SOCKET"] = notifyPath;
            psi.Environment["CRSC_SOCKET"] = Path.Combine(dir, "crsc.sock");
            psi.Environment["CRSC_STATE_DIR"] = Path.Combine(dir, "state");
            psi.Environment["CRSC_NODE_STATE_DIRECTORY"] = Path.Combine(dir, "node-state");
            psi.Environment["CRSC_CHECKPOINT_DIR"] = Path.Combine(dir, "checkpoints");
            psi.Environment["CRSC_STAGING_DIR"] = Path.Combine(dir, "staging");
            psi.Environment["CRSC_CONFIG"] = Path.Combine(dir, "none.yaml");
            File.WriteAllText(Path.Combine(dir, "none.yaml"), "");
            psi.Environment["CRSC_LOG_FORMAT"] = "json";
            psi.Environment["NODE_NAME"] = "bench";
            psi.Environment.Remove("KUBECONFIG");
            psi.Environment.Remove("KUBERNETES_SERVICE_HOST");

            var sw = Stopwatch.StartNew();
            using var p = Process.Start(psi)!;
            _ = p.StandardOutput.ReadToEndAsync(ct);
            var err = p.StandardError.ReadToEndAsync(ct);
            var buffer = new byte[4096];
            double readyMs;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                timeout.CancelAfter(TimeSpan.FromSeconds(30));
                while (true)
                {
                    var n = await notify.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
                    if (Encoding.UTF8.GetString(buffer, 0, n).Split('\n').Contains("READY=1")) { readyMs = sw.Elapsed.TotalMilliseconds; break; }
                }
            }
            if (idle > TimeSpan.Zero) await Task.Delay(idle, ct);
            var rss = ReadRssMb(p.Id);
            var probed = double.NaN;
            if (probe)
            {
                await ReadyzAsync(Path.Combine(dir, "crsc.sock"), ct);
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
                probed = ReadRssMb(p.Id);
            }
            p.Kill();
            await p.WaitForExitAsync(ct);
            return (readyMs, rss, probed);
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    /// <summary>One GET /readyz on the node socket (the answer may be 200 or 503: only the work of serving counts).</summary>
    private static async Task ReadyzAsync(string socketPath, CancellationToken ct)
    {
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, c) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), c);
                return new NetworkStream(s, ownsSocket: true);
            },
        };
        using var http = new HttpClient(handler);
        using var response = await http.GetAsync("http://localhost/readyz", ct);
        await response.Content.ReadAsStringAsync(ct);
    }

    private static double ReadRssMb(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return double.Parse(line["VmRSS:".Length..].Trim().Replace(" kB", ""), System.Globalization.CultureInfo.InvariantCulture) / 1024.0;
        return double.NaN;
    }

    private static async Task RunToEndAsync(string exe, string[] args, CancellationToken ct)
    {
        using var p = Process.Start(new ProcessStartInfo(exe, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var o = p.StandardOutput.ReadToEndAsync(ct);
        var e = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        if (p.ExitCode != 0) throw new InvalidOperationException($"{exe} {string.Join(' ', args)} failed:\n{await o}\n{await e}");
    }
}

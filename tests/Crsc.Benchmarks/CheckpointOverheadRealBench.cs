using System.Diagnostics;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Runtime;
using Crsc.Cri;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Storage;
using Crsc.Testing;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Crsc.Benchmarks;

/// <summary>
/// crsc's share of a checkpoint on the real runtime (containerd 2.1 + runc + CRIU 4 of tests/sandbox, brought up the
/// way the E2E suite's <see cref="RealRuntimeFixture"/> does): the product's checkpoint path (<see cref="CheckpointRunner"/>
/// with the CRI adapter: find the container by its kubelet labels, CheckpointContainer into the store's staging
/// directory, ingest into a <see cref="DiskCheckpointStore"/>: validate, hash, zstd, durable commit) around a small
/// container (the busybox counter) and one holding 256 MiB of touched, incompressible memory. The baseline, the
/// runtime's CheckpointContainer call, is timed in the same run around the same checkpoints; crsc's share is the total
/// minus that call. The store's verification (re-reading and hashing the stored archive) is not part of the checkpoint
/// path and is reported beside it.
/// Skipped, with the reason, where the sandbox cannot run: not root, <c>CRSC_E2E=0</c>, or no sandbox rootfs yet.
/// </summary>
public sealed class CheckpointOverheadRealBench : IBenchmark
{
    public string Name => "checkpoint-overhead-real";
    public string Description => "crsc's share of a checkpoint on the real runtime (sandbox containerd + CRIU), small and 256 MiB containers; target <= 5 %";

    private const string PodNamespace = "crsc-bench";
    private const int SmallRuns = 10;
    private const int LargeRuns = 5;
    private const int LargeMiB = 256;
    private const double TargetShare = 0.05;

    public async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        var sink = new BenchMessageSink();
        var sandbox = new RealRuntimeFixture(sink);
        if (SkipReason(sandbox) is { } why)
        {
            Console.WriteLine($"{Name}: SKIPPED: {why}");
            return;
        }
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(TimeSpan.FromMinutes(15));
        try
        {
            await sandbox.InitializeAsync();
            Console.WriteLine($"{Name}: sandbox up in {sandbox.Timings.Sum(t => t.Took.TotalSeconds):0.0} s (log {sandbox.LogPath})");
            using var client = new CriClient(new CriClientOptions { Endpoint = sandbox.CriEndpoint });
            using var runtime = new CriContainerRuntime(client);

            await MeasureAsync(ctx, sandbox, client, runtime, "small", "counter", SmallRuns,
                ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /data/counter; echo $i; sleep 0.2; done"],
                data => File.Exists(Path.Combine(data, "counter")), limit.Token);
            // dd reads 256 MiB of random bytes into one buffer, then blocks writing it into a pipe nobody drains: the
            // buffer stays resident (and incompressible) for as long as the container runs. The reader takes one byte
            // first, so /data/ready appears only once the buffer is full. The reader sleeps in a loop: busybox's sleep
            // ends (exit 0) when a dump interrupts it, and with it the container.
            await MeasureAsync(ctx, sandbox, client, runtime, $"{LargeMiB}MiB", "memory", LargeRuns,
                ["/bin/sh", "-c",
                    $"dd if=/dev/urandom bs={LargeMiB}M count=1 iflag=fullblock 2>/dev/null | {{ head -c 1 >/dev/null; echo ready > /data/ready; while :; do sleep 3600; done; }}"],
                data => File.Exists(Path.Combine(data, "ready")), limit.Token);
        }
        finally
        {
            await sandbox.DisposeAsync();
        }
    }

    /// <summary>Null when the sandbox can run here; else why the benchmark is skipped.</summary>
    internal static string? SkipReason(RealRuntimeFixture sandbox)
    {
        if (!RealComponents.IsRoot)
            return "needs root (the sandbox builds and enters a mount namespace and runs containerd); run `sudo make bench BENCH=checkpoint-overhead-real`";
        if (Environment.GetEnvironmentVariable("CRSC_E2E") == "0")
            return "real components disabled by CRSC_E2E=0";
        var stamp = Path.Combine(sandbox.RootfsPath, "etc", "crsc-sandbox", "rootfs.stamp");
        if (!File.Exists(stamp))
            return $"no sandbox rootfs at {sandbox.RootfsPath} (no {stamp}); build it once with `sudo tests/sandbox/setup-rootfs.sh` "
                + "(~90 s, ~900 MB of Debian packages) or `sudo make e2e`";
        return null;
    }

    private async Task MeasureAsync(BenchContext ctx, RealRuntimeFixture sandbox, CriClient client, CriContainerRuntime runtime,
        string size, string containerName, int runs, string[] command, Func<string, bool> ready, CancellationToken ct)
    {
        var bench = $"{Name}";
        var work = sandbox.CreateSharedDirectory($"bench-{size.ToLowerInvariant()}-");
        var data = Directory.CreateDirectory(Path.Combine(work, "data")).FullName;
        var logs = Directory.CreateDirectory(Path.Combine(work, "pod-logs")).FullName;
        var podName = $"bench-{size.ToLowerInvariant()}-{Guid.NewGuid().ToString("N")[..6]}";
        var podUid = Guid.NewGuid().ToString();
        string? podId = null, containerId = null;
        try
        {
            var pod = SandboxPods.PodConfig(sandbox, PodNamespace, podName, podUid, logs);
            (podId, containerId) = await SandboxPods.RunAsync(client, pod,
                SandboxPods.BusyboxConfig(sandbox, PodNamespace, podName, podUid, containerName, data, command), ct);
            await Eventually.TrueAsync(() => ready(data), $"the {size} container is ready", TimeSpan.FromMinutes(1));

            // everything the runtime writes is under the shared directory: the same path on the host and for containerd
            using var store = new DiskCheckpointStore(new DiskCheckpointStoreOptions
            {
                CheckpointDirectory = Path.Combine(work, "store", "checkpoints"),
                StagingDirectory = Path.Combine(work, "store", "staging"),
                NodeName = "sandbox",
            });
            var timed = new TimedCheckpointer(runtime);
            using var runner = new CheckpointRunner(runtime, timed, store, new CheckpointRunnerOptions { NodeName = "sandbox" },
                TimeProvider.System, new FileStagingArea());

            var samples = new List<Sample>();
            for (var i = 0; i < runs + 1; i++)
            {
                var stages = new StageClock();
                var started = Stopwatch.GetTimestamp();
                var outcome = await runner.CheckpointAsync(new CheckpointRequest(PodNamespace, podName, containerName), stages, ct);
                var total = Stopwatch.GetElapsedTime(started);
                if (outcome.ContainerId != containerId)
                    throw new InvalidOperationException($"checkpointed container {outcome.ContainerId}, expected {containerId}");
                var verifyStarted = Stopwatch.GetTimestamp();
                var verification = await store.VerifyAsync(outcome.Checkpoint.Id, ct);
                var verify = Stopwatch.GetElapsedTime(verifyStarted);
                if (!verification.Valid) throw new InvalidOperationException($"checkpoint {outcome.Checkpoint.Id} does not verify: {verification.Problem}");
                if (i > 0) // the first one warms up: JIT, first connection, containerd's first checkpoint of the container
                    samples.Add(new Sample(total, timed.Last, verify,
                        stages.Between(CheckpointStages.Resolving, CheckpointStages.Checkpointing),
                        stages.Between(CheckpointStages.Ingesting, CheckpointStages.Committed),
                        outcome.Checkpoint.UncompressedSize, outcome.Checkpoint.Size));
                store.Delete(outcome.Checkpoint.Id);
            }
            Report(ctx, bench, size, samples);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // what the container said is the first thing to look at (e.g. a workload that exited)
            var log = Path.Combine(logs, containerName + ".log");
            var tail = File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(20)) : "(no container log)";
            var state = "";
            if (containerId is not null)
            {
                try
                {
                    var status = await runtime.ContainerStatusAsync(containerId, verbose: false, CancellationToken.None);
                    state = $" (container {status.State}, exit code {status.ExitCode}, reason '{status.Reason}', '{status.Message}', "
                        + $"started {status.StartedAt:HH:mm:ss.fff}, finished {status.FinishedAt:HH:mm:ss.fff})";
                }
                catch (ContainerRuntimeException se) { state = $" (no status: {se.Message})"; }
            }
            throw new InvalidOperationException($"{size} container {containerName} of pod {PodNamespace}/{podName}{state}: {e.Message}\n"
                + $"--- {log} ---\n{tail}", e);
        }
        finally
        {
            if (podId is not null) await SandboxPods.RemovePodAsync(client, podId, Console.WriteLine);
            try { Directory.Delete(work, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Console.WriteLine($"cleanup of {work}: {e.Message}"); }
        }
    }

    private static void Report(BenchContext ctx, string bench, string size, List<Sample> samples)
    {
        static double P(IEnumerable<double> v, double p) => CheckpointOverheadBench.Percentile([.. v], p);
        var total = samples.Select(s => s.Total.TotalMilliseconds).ToList();
        var call = samples.Select(s => s.RuntimeCall.TotalMilliseconds).ToList();
        var crsc = samples.Select(s => s.Crsc.TotalMilliseconds).ToList();
        var share = samples.Select(s => s.Crsc / s.Total * 100).ToList();
        var n = samples.Count;
        ctx.Report(bench, $"{size}: archive, uncompressed", samples[^1].RawBytes / 1048576.0, "MiB");
        ctx.Report(bench, $"{size}: archive, stored ({(samples[^1].StoredBytes == samples[^1].RawBytes ? "uncompressed" : "zstd")})", samples[^1].StoredBytes / 1048576.0, "MiB");
        ctx.Report(bench, $"{size}: total p50 (n={n})", P(total, 0.5), "ms");
        ctx.Report(bench, $"{size}: total p99", P(total, 0.99), "ms");
        ctx.Report(bench, $"{size}: runtime call p50 (baseline)", P(call, 0.5), "ms");
        ctx.Report(bench, $"{size}: runtime call p99 (baseline)", P(call, 0.99), "ms");
        ctx.Report(bench, $"{size}: crsc share p50", P(crsc, 0.5), "ms");
        ctx.Report(bench, $"{size}: crsc share p99", P(crsc, 0.99), "ms");
        ctx.Report(bench, $"{size}:   of which resolve p50", P(samples.Select(s => s.Resolve.TotalMilliseconds), 0.5), "ms");
        ctx.Report(bench, $"{size}:   of which ingest p50", P(samples.Select(s => s.Ingest.TotalMilliseconds), 0.5), "ms");
        ctx.Report(bench, $"{size}: crsc share % of total p50", P(share, 0.5), "%", "<= 5 %");
        ctx.Report(bench, $"{size}: crsc share % of total p99", P(share, 0.99), "%");
        ctx.Report(bench, $"{size}: verify p50 (not in the path)", P(samples.Select(s => s.Verify.TotalMilliseconds), 0.5), "ms");
        var verdict = P(share, 0.5) <= TargetShare * 100 ? "PASS" : "FAIL";
        Console.WriteLine($"{bench,-22} {size}: {verdict}: crsc's share p50 {P(share, 0.5):0.0} % of the checkpoint (target <= {TargetShare * 100:0} %)");
    }

    private sealed record Sample(TimeSpan Total, TimeSpan RuntimeCall, TimeSpan Verify, TimeSpan Resolve, TimeSpan Ingest,
        long RawBytes, long StoredBytes)
    {
        public TimeSpan Crsc => Total - RuntimeCall;
    }

    /// <summary>Times the runtime's CheckpointContainer call (the CRI adapter given the resolved container ID).</summary>
    private sealed class TimedCheckpointer(IContainerCheckpointer inner) : IContainerCheckpointer
    {
        public TimeSpan Last { get; private set; }

        public async Task<CheckpointArchive> CheckpointAsync(CheckpointTarget target, string archivePath, TimeSpan timeout, CancellationToken ct)
        {
            var started = Stopwatch.GetTimestamp();
            try { return await inner.CheckpointAsync(target, archivePath, timeout, ct); }
            finally { Last = Stopwatch.GetElapsedTime(started); }
        }
    }

    /// <summary>When each stage of the runner was first reported (synchronously, on the runner's own thread).</summary>
    private sealed class StageClock : IProgress<CheckpointProgress>
    {
        private readonly Dictionary<string, long> _first = [];

        public void Report(CheckpointProgress value)
        {
            lock (_first) _first.TryAdd(value.Stage, Stopwatch.GetTimestamp());
        }

        public TimeSpan Between(string from, string to)
        {
            lock (_first)
                return _first.TryGetValue(from, out var a) && _first.TryGetValue(to, out var b)
                    ? Stopwatch.GetElapsedTime(a, b) : TimeSpan.Zero;
        }
    }

    /// <summary>The fixture's messages: its own steps are printed, the scripts' lines go only to its log file.</summary>
    internal sealed class BenchMessageSink : LongLivedMarshalByRefObject, IMessageSink
    {
        public bool OnMessage(IMessageSinkMessage message)
        {
            if (message is IDiagnosticMessage { Message: { } m } && !m.StartsWith("[sandbox]   ", StringComparison.Ordinal)
                && !m.StartsWith("[sandbox] $ ", StringComparison.Ordinal))
                Console.WriteLine("  " + m);
            return true;
        }
    }
}

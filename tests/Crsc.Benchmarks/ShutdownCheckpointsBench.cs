using System.Diagnostics;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Nodes;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Storage;
using Crsc.Cri;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Storage;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Benchmarks;

/// <summary>
/// Issue 18: from logind's PrepareForShutdown to every managed container's checkpoint recorded — the work the shutdown
/// monitor starts (<see cref="NodeAwayCheckpointer.CheckpointAllAsync"/> with the shutdown reason, the default
/// parallelism, a deadline) over crsc's real checkpoint path (<see cref="CheckpointRunner"/>: CRI call, validation,
/// hashing, zstd, durable commit into a <see cref="DiskCheckpointStore"/>). For 1, 10 and 50 containers against a fake
/// runtime whose CheckpointContainer takes a realistic 250 ms (the sandbox's small dumps: 0.13–0.26 s), beside the floor
/// measured in the same run (the runtime's time alone, spread over the parallel slots); and for 1 against the sandbox's
/// real containerd + CRIU when it can run here (root, its rootfs built).
/// </summary>
public sealed class ShutdownCheckpointsBench : IBenchmark
{
    public string Name => "shutdown-checkpoints";
    public string Description => "PrepareForShutdown -> all managed containers checkpointed, for 1, 10 and 50 (fake runtime, 250 ms dumps) and 1 real";

    private static readonly TimeSpan Dump = TimeSpan.FromMilliseconds(250);
    private const int Parallelism = 4; // shutdown.parallelism's default

    public async Task RunAsync(BenchContext ctx, CancellationToken ct)
    {
        // the first round warms up (JIT: the daemon is an AOT binary, this benchmark is not) and is not reported
        foreach (var (n, round) in new[] { 1, 1, 10, 50 }.Select((n, i) => (n, i)))
        {
            var dir = Path.Combine(ctx.WorkDir, $"shutdown-{round}-{n}");
            await using var cri = await FakeCriServer.StartAsync(Path.Combine(dir + "-cri.sock"));
            var containers = Enumerable.Range(0, n).Select(i => new ManagedContainer("bench", $"app-{i:00}", "main")).ToList();
            foreach (var c in containers) cri.AddRunningContainer(c.Namespace, c.Pod, c.Container);
            cri.Inject("CheckpointContainer", CriFault.Delayed(Dump));
            using var runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = cri.Endpoint });
            var (elapsed, run) = await RunAsync(runtime, dir, containers, ct);
            if (run.Stored != n) throw new InvalidOperationException($"{n} containers: {run.Stored} stored, {run.Failed} failed");
            if (round == 0) continue;
            var floor = Dump * Math.Ceiling(n / (double)Math.Min(Parallelism, n));
            ctx.Report(Name, $"{n} containers: announced -> all recorded", elapsed.TotalMilliseconds, "ms");
            ctx.Report(Name, $"{n} containers: runtime floor ({Parallelism} at a time)", floor.TotalMilliseconds, "ms");
            ctx.Ratio(Name, $"{n} containers: recorded / floor", elapsed.TotalMilliseconds, floor.TotalMilliseconds);
        }
        await RealOneAsync(ctx, ct);
    }

    private static async Task<(TimeSpan, NodeAwayRun)> RunAsync(IContainerRuntime runtime, string dir, IReadOnlyList<ManagedContainer> containers,
        CancellationToken ct)
    {
        using var store = new DiskCheckpointStore(new DiskCheckpointStoreOptions
        {
            CheckpointDirectory = Path.Combine(dir, "checkpoints"), StagingDirectory = Path.Combine(dir, "staging"), NodeName = "bench",
        });
        // the node-away pool sized as the daemon sizes it (shutdown.parallelism); the ordinary one as the daemon's (1)
        using var runner = new CheckpointRunner(runtime, (IContainerCheckpointer)runtime, store,
            new CheckpointRunnerOptions { NodeName = "bench", MaxConcurrentNodeAway = Parallelism }, TimeProvider.System, new FileStagingArea());
        var away = new NodeAwayCheckpointer(runner, () => containers, TimeProvider.System, NullLogger.Instance);
        var clock = Stopwatch.StartNew();
        // logind's default InhibitDelayMaxSec is 5 s; the README asks for more on nodes with many containers
        var run = await away.CheckpointAllAsync(CheckpointReasons.NodeShutdown, Parallelism, DateTimeOffset.UtcNow.AddMinutes(2), ct);
        return (clock.Elapsed, run);
    }

    /// <summary>One busybox counter in the sandbox's containerd, checkpointed the same way.</summary>
    private async Task RealOneAsync(BenchContext ctx, CancellationToken ct)
    {
        var sandbox = new RealRuntimeFixture(new CheckpointOverheadRealBench.BenchMessageSink());
        if (CheckpointOverheadRealBench.SkipReason(sandbox) is { } why)
        {
            Console.WriteLine($"{Name}: real runtime part SKIPPED: {why}");
            return;
        }
        try
        {
            await sandbox.InitializeAsync();
            using var client = new CriClient(new CriClientOptions { Endpoint = sandbox.CriEndpoint });
            using var runtime = new CriContainerRuntime(client);
            var work = sandbox.CreateSharedDirectory("bench-shutdown-");
            var data = Directory.CreateDirectory(Path.Combine(work, "data")).FullName;
            var logs = Directory.CreateDirectory(Path.Combine(work, "pod-logs")).FullName;
            var uid = Guid.NewGuid().ToString();
            const string pod = "bench-shutdown";
            var (podId, _) = await SandboxPods.RunAsync(client, SandboxPods.PodConfig(sandbox, "crsc-bench", pod, uid, logs),
                SandboxPods.BusyboxConfig(sandbox, "crsc-bench", pod, uid, "counter", data,
                    ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /data/counter; sleep 0.2; done"]), ct);
            try
            {
                await Eventually.TrueAsync(() => File.Exists(Path.Combine(data, "counter")), "the counter runs", TimeSpan.FromMinutes(1));
                var (elapsed, run) = await RunAsync(runtime, Path.Combine(work, "store"), [new ManagedContainer("crsc-bench", pod, "counter")], ct);
                if (run.Stored != 1) throw new InvalidOperationException($"the real checkpoint failed: {run.Checkpoints[0].Error}");
                ctx.Report(Name, "1 container, real containerd + CRIU: announced -> recorded", elapsed.TotalMilliseconds, "ms");
            }
            finally
            {
                await SandboxPods.RemovePodAsync(client, podId, Console.WriteLine);
            }
        }
        finally
        {
            await sandbox.DisposeAsync();
        }
    }
}

using System.Diagnostics;
using Crsc.Testing.Scenarios;

// crsc demo: see tests/demo/demo.sh, which prepares the sandbox and passes these settings.
static string Setting(string name, string? fallback = null) =>
    Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v
    : fallback ?? throw new ArgumentException($"the demo needs {name} (tests/demo/demo.sh sets it)");

var clock = Stopwatch.StartNew();
void Say(string line) => Console.WriteLine($"[{clock.Elapsed.TotalSeconds,6:0.0}s] {line}");

var options = new CheckpointRestoreScenarioOptions
{
    Binary = Setting("CRSC_BINARY"),
    RuntimeEndpoint = Setting("CRSC_DEMO_RUNTIME_ENDPOINT"),
    Image = Setting("CRSC_DEMO_IMAGE"),
    CgroupParent = Setting("CRSC_DEMO_CGROUP_PARENT"),
    WorkDirectory = Setting("CRSC_DEMO_WORK"),
    Interval = Setting("CRSC_DEMO_INTERVAL", "15s"),
    ImagesListen = Setting("CRSC_DEMO_IMAGES_LISTEN", "127.0.0.1:5055"),
};

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
try
{
    var result = await new CheckpointRestoreScenario(options, Say).RunAsync(cancel.Token);
    Console.WriteLine();
    Console.WriteLine($"checkpoint {result.CheckpointName}: the counter was between {result.CounterAtCheckpointStart} and {result.CounterAtCheckpointEnd}");
    Console.WriteLine($"before the crash {result.CounterBeforeCrash}, after the cold start {result.CounterAfterColdStart}, after the restore {result.FirstCounterAfterRestore}");
    Console.WriteLine(result.PodUidBefore == result.PodUidAfter ? "same pod (uid " + result.PodUidAfter + ")" : "a replacement pod");
    var ok = result.RestorePhase == Crsc.Api.Crds.RestorePhase.Restored
             && result.FirstCounterAfterRestore >= result.CounterAtCheckpointStart;
    Console.WriteLine(ok ? "the process came back with its memory: the counter went on from the checkpoint."
                         : $"the restore did not bring the counter back (Restore {result.RestorePhase})");
    if (!ok) return 1;

    // scene 2: the same, under load, behind the interceptor
    Console.WriteLine();
    Say("scene 2: an HTTP counter under load behind crsc's interceptor, killed and restored in place");
    var rate = int.Parse(Setting("CRSC_DEMO_RATE", "100"), System.Globalization.CultureInfo.InvariantCulture);
    var second = await new CheckpointRestoreScenario(options with { WorkDirectory = Directory.CreateDirectory(Path.Combine(options.WorkDirectory, "interceptor")).FullName },
        Say).RunInterceptorAsync(rate, cancel.Token);
    Console.WriteLine();
    Console.WriteLine($"requests sent {second.Sent}, failed {second.Failed}; POSTs acknowledged {second.PostsAcknowledged}");
    Console.WriteLine($"the app's count before the kill {second.CounterBeforeKill}, after the restore and the load {second.FinalCounter}");
    Console.WriteLine($"latency p50 {second.LatencyP50.TotalMilliseconds:0.0} ms, p99 {second.LatencyP99.TotalMilliseconds:0.0} ms, longest {second.LongestRequest.TotalMilliseconds:0} ms (held through the checkpoint and the restore)");
    foreach (var f in second.Failures) Console.WriteLine("  failed: " + f);
    var lossless = second.RestorePhase == Crsc.Api.Crds.RestorePhase.Restored && second.Failed == 0 && second.FinalCounter == second.PostsAcknowledged;
    Console.WriteLine(lossless ? "no request failed and the count holds every acknowledged POST: the restore lost nothing."
                               : $"the interceptor did not make it lossless (Restore {second.RestorePhase}, {second.Failed} failed, count {second.FinalCounter} for {second.PostsAcknowledged} POSTs)");
    return lossless ? 0 : 1;
}
catch (Exception e)
{
    // the first error is the one that counts (cleanup failures are warnings, printed as they happen)
    Console.Error.WriteLine($"demo failed: {e.GetType().Name}: {e.Message}");
    if (e is not (TimeoutException or InvalidOperationException or OperationCanceledException)) Console.Error.WriteLine(e.StackTrace);
    return 1;
}

using System.Diagnostics;
using Crsc.E2E.Tests.Sandbox;
using Xunit;
using Xunit.Abstractions;

namespace Crsc.E2E.Tests.RealRuntime;

/// <summary>
/// Issue 18: <c>crsc run</c> with the real CRIU 4.2 of the sandbox, in its namespace (the rootfs's criu; the published AOT
/// binary and every file of the workload under the shared directory, the same path on both sides). A counter under
/// <c>crsc run</c> gets SIGTERM while the node-state file says the node is going away → CRIU dumps it into imageDir;
/// a new <c>crsc run</c> with the same imageDir restores it and the counter goes on from where it was; SIGTERM
/// without the node going away is a plain stop with no checkpoint; a corrupted checkpoint is refused with a log line
/// and the next start is a cold one.
/// </summary>
[Collection(RealRuntimeCollection.Name)]
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed class CrscRunTests(RealRuntimeFixture sandbox, ITestOutputHelper output)
{
    [RealComponentsFact]
    public async Task A_counter_under_crsc_run_keeps_its_memory_across_a_node_going_away_and_only_then()
    {
        var work = sandbox.CreateSharedDirectory("crsc-run-");
        var binary = Path.Combine(work, "crsc");
        File.Copy(Binary.PublishedBinary.Path, binary);
        File.SetUnixFileMode(binary, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var images = Path.Combine(work, "images");
        var state = Path.Combine(work, "node-state.json");
        var config = Path.Combine(work, "run.yaml");
        File.WriteAllText(config, $"imageDir: {images}\nnodeStateFile: {state}\n");
        var counter = Path.Combine(work, "counter");
        // the count lives in the shell's memory; the file only shows it
        string[] command = ["/bin/sh", "-c", $"i=0; while :; do i=$((i+1)); echo $i > {counter}; sleep 0.1; done"];

        // 1. the node is going away: SIGTERM checkpoints
        NodeState(state, goingAway: true);
        var first = Start(binary, config, command);
        await WaitForAsync(() => Read(counter) >= 20, "the counter reaches 20", first);
        var (code, log) = await TerminateAsync(first);
        var atDump = Read(counter);
        output.WriteLine(log);
        Assert.True(code == 0, $"crsc run exited with {code} after a checkpoint:\n{log}");
        Assert.True(File.Exists(Path.Combine(images, "checkpoint", "manifest.json")), $"no checkpoint in {images}:\n{log}");

        // 2. a new crsc run with the same imageDir restores it: the count goes on from the dump, not from 1
        NodeState(state, goingAway: false);
        var second = Start(binary, config, command);
        long resumed = -1;
        await WaitForAsync(() => (resumed = Read(counter)) > atDump, $"the counter goes past {atDump}", second);
        Assert.InRange(resumed, atDump + 1, atDump + 40);
        await WaitForAsync(() => !Directory.Exists(Path.Combine(images, "checkpoint")), "the restored checkpoint is removed", second);

        // 3. SIGTERM while the node stays: a plain stop, no checkpoint
        (code, log) = await TerminateAsync(second);
        output.WriteLine(log);
        Assert.Equal(128 + 15, code);
        Assert.False(Directory.Exists(Path.Combine(images, "checkpoint")), "a checkpoint was taken though the node is not going away");
        Assert.Contains("not going away", log, StringComparison.OrdinalIgnoreCase);

        // 4. a corrupted checkpoint: refused with a clear line, and the next start is cold (the count starts over)
        NodeState(state, goingAway: true);
        File.Delete(counter);
        var third = Start(binary, config, command);
        await WaitForAsync(() => Read(counter) >= 10, "the cold-started counter reaches 10", third);
        (code, _) = await TerminateAsync(third);
        Assert.Equal(0, code);
        var pages = Directory.GetFiles(Path.Combine(images, "checkpoint", "images"), "pages-*.img").First();
        await using (var f = new FileStream(pages, FileMode.Open, FileAccess.Write)) { f.Write(Enumerable.Repeat((byte)0xA5, 64).ToArray()); }
        NodeState(state, goingAway: false);
        File.Delete(counter);
        var fourth = Start(binary, config, command);
        await WaitForAsync(() => Read(counter) is >= 1 and < 10, "the counter starts over", fourth);
        (_, log) = await TerminateAsync(fourth);
        output.WriteLine(log);
        Assert.Contains("crsc run:", log);
        Assert.Contains("not restoring the checkpoint", log);
        Assert.Contains("starting fresh", log);
    }

    private static void NodeState(string path, bool goingAway) => File.WriteAllText(path,
        goingAway
            ? $"{{\"node\":\"sandbox\",\"goingAway\":true,\"reason\":\"Drain\",\"detail\":\"test\",\"since\":\"{DateTime.UtcNow:O}\",\"updated\":\"{DateTime.UtcNow:O}\"}}"
            : $"{{\"node\":\"sandbox\",\"goingAway\":false,\"reason\":null,\"detail\":null,\"since\":null,\"updated\":\"{DateTime.UtcNow:O}\"}}");

    private sealed record Run(Process Process, System.Text.StringBuilder Log);

    /// <summary>
    /// <c>crsc run</c> in the sandbox namespace: in-ns.sh execs nsenter, which execs sh, which execs it (same pid: signals
    /// reach it). Its stdin is the namespace's /dev/null, as a container's is its own: a descriptor opened in the host's
    /// mount namespace is one CRIU cannot find a mount for ("Can't lookup mount=… for fd=0"). stdout and stderr are pipes
    /// to this test, which CRIU dumps as external pipes and crsc run hands back at restore.
    /// </summary>
    private Run Start(string binary, string config, string[] command)
    {
        var psi = new ProcessStartInfo("bash", [Path.Combine(sandbox.ScriptsDirectory, "in-ns.sh"), "/bin/sh", "-c", "exec \"$0\" \"$@\" </dev/null",
            binary, "run", "--config", config, "--", .. command])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        var p = Process.Start(psi)!;
        var log = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return new Run(p, log);
    }

    private static async Task<(int Code, string Log)> TerminateAsync(Run run)
    {
        Process.Start("kill", ["-TERM", run.Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try { await run.Process.WaitForExitAsync(limit.Token); }
        catch (OperationCanceledException)
        {
            run.Process.Kill(entireProcessTree: true);
            throw new TimeoutException($"crsc run did not exit within 90 s of SIGTERM:\n{Text(run)}");
        }
        run.Process.WaitForExit(); // the output's end
        return (run.Process.ExitCode, Text(run));
    }

    private static string Text(Run run) { lock (run.Log) return run.Log.ToString(); }

    private static async Task WaitForAsync(Func<bool> condition, string what, Run run)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (run.Process.HasExited) throw new InvalidOperationException($"crsc run exited ({run.Process.ExitCode}) before {what}:\n{Text(run)}");
            if (clock.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException($"timed out waiting until {what}:\n{Text(run)}");
            await Task.Delay(50);
        }
    }

    private static long Read(string file)
    {
        try { return long.TryParse(File.ReadAllText(file).Trim(), out var v) ? v : -1; }
        catch (IOException) { return -1; }
    }
}

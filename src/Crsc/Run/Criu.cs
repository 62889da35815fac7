namespace Crsc.Run;

/// <summary>The outcome of one criu run: its exit code (null: killed at the timeout) and what it was.</summary>
internal sealed record CriuResult(int? ExitCode, string Argv)
{
    public bool Ok => ExitCode == 0;
}

/// <summary>
/// Every criu invocation of <c>crsc run</c>, with its exact argument vector in one place.
/// <list type="bullet">
/// <item>no <c>--shell-job</c>: the workload runs in its own session (setsid), which CRIU dumps as a whole;</item>
/// <item><c>--tcp-established</c>, <c>--file-locks</c>, <c>--ext-unix-sk</c>: a server with connections, lock files
/// and a Unix socket to something outside the container (a log collector) is the common case;</item>
/// <item>dump kills the tree once it is saved (no <c>--leave-running</c>): the pod is going away;</item>
/// <item>restore is detached with the root restored as our child (<c>--restore-sibling</c>) and its pid written to a
/// file; our descriptors 0-2 are handed in for the pipes the workload's 0-2 were (<c>--inherit-fd</c>), so its
/// output goes on to the new container's log;</item>
/// <item><c>--unprivileged</c> when not root (CAP_CHECKPOINT_RESTORE instead of root; criu 3.16+).</item>
/// </list>
/// stdout/stderr of criu go to ours; its log is <c>-o</c> at verbosity 4.
/// </summary>
internal sealed class Criu(string criuPath, ChildReaper reaper)
{
    public static IReadOnlyList<string> DumpArguments(string criuPath, int pid, string imagesDir, string logFile, bool unprivileged) =>
    [
        criuPath, "dump",
        "--tree", pid.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "--images-dir", imagesDir,
        "--log-file", logFile, "-v4",
        "--tcp-established", "--file-locks", "--ext-unix-sk",
        .. unprivileged ? (string[])["--unprivileged"] : [],
    ];

    public static IReadOnlyList<string> RestoreArguments(string criuPath, string imagesDir, string logFile, string pidFile, IReadOnlyList<string> stdio, bool unprivileged)
    {
        List<string> argv =
        [
            criuPath, "restore",
            "--images-dir", imagesDir,
            "--log-file", logFile, "-v4",
            "--restore-detached", "--restore-sibling",
            "--pidfile", pidFile,
            "--tcp-established", "--file-locks", "--ext-unix-sk",
        ];
        // a pipe the workload had as stdin/stdout/stderr: ours of the same number stands in for it
        for (var fd = 0; fd < stdio.Count && fd <= 2; fd++)
            if (stdio[fd].StartsWith("pipe:[", StringComparison.Ordinal))
                argv.AddRange(["--inherit-fd", $"fd[{fd}]:{stdio[fd]}"]);
        if (unprivileged) argv.Add("--unprivileged");
        return argv;
    }

    public Task<CriuResult> DumpAsync(int pid, string imagesDir, string logFile, TimeSpan timeout) =>
        RunAsync(DumpArguments(criuPath, pid, imagesDir, logFile, RunNative.EffectiveUid != 0), timeout);

    public Task<CriuResult> RestoreAsync(string imagesDir, string logFile, string pidFile, IReadOnlyList<string> stdio, TimeSpan timeout) =>
        RunAsync(RestoreArguments(criuPath, imagesDir, logFile, pidFile, stdio, RunNative.EffectiveUid != 0), timeout);

    private async Task<CriuResult> RunAsync(IReadOnlyList<string> argv, TimeSpan timeout)
    {
        var text = string.Join(" ", argv);
        // its own session: a signal we forward to our child's group never reaches criu, and criu's to ours neither
        var pid = reaper.Spawn(argv, newSession: true);
        var exit = reaper.WaitAsync(pid);
        if (await Task.WhenAny(exit, Task.Delay(timeout)) != exit)
        {
            RunNative.Signal(pid, 9);
            await exit;
            return new CriuResult(null, text);
        }
        return new CriuResult(RunNative.ExitCodeOf(await exit), text);
    }
}

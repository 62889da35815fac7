using System.Runtime.InteropServices;
using Crsc.Preflight;
using Crsc.Run;

namespace Crsc.Cli;

/// <summary>
/// <c>crsc run [--config FILE] [--check] -- CMD ARGS…</c>: the wrapper in the app's container that checkpoints CMD when
/// the node goes away and restores it in the next pod (<see cref="RunSupervisor"/>, <see cref="RunCheck"/>). This only
/// reads the flags and the configuration and wires the signals.
/// </summary>
internal static class RunCommand
{
    public static CommandSpec Spec() => new("run", "Run CMD in this container; checkpoint it with CRIU when the node goes away, restore it on the next start.")
    {
        Description = "Starts CMD as a child in its own session with no inherited descriptors above 2, passes SIGINT, SIGHUP,\n" +
                      "SIGQUIT, SIGUSR1 and SIGUSR2 on to it and exits with its code (128 + signal when a signal ended it).\n" +
                      "On SIGTERM it reads the node agent's state file (nodeStateFile): when the node is going away (shutdown,\n" +
                      "drain, termination taint, eviction) CMD's process tree is dumped with criu into imageDir/checkpoint\n" +
                      "(written to a temp directory, fsynced, with a manifest of sizes and SHA-256, renamed into place) and\n" +
                      "crsc run exits 0; otherwise the SIGTERM is passed on. At start, a verified checkpoint of the same\n" +
                      "command line in imageDir is restored with criu instead of starting CMD, then removed; a damaged,\n" +
                      "partial or foreign one is logged, moved to imageDir/checkpoint.rejected and CMD starts fresh.\n" +
                      "\n" +
                      "Configuration (YAML or JSON; --config, else $" + RunConfigLoader.EnvironmentVariable + ", else " + RunConfigLoader.DefaultPath + "):\n" +
                      "  imageDir                  directory on a volume that follows the pod (required)\n" +
                      "  additionalPaths           files/directories copied into the checkpoint and back before a restore\n" +
                      "  inotifyIncompatiblePaths  paths removed before a dump\n" +
                      "  criuPath                  criu executable (default: criu on PATH)\n" +
                      "  nodeStateFile             default " + RunOptions.DefaultNodeStateFile + "\n" +
                      "  dumpTimeoutSeconds        default " + RunOptions.DefaultDumpTimeoutSeconds + " (keep it below terminationGracePeriodSeconds)\n" +
                      "\n" +
                      "Exit codes: CMD's; 0 after a checkpoint; 1 a checkpoint or restore failed (see the log line);\n" +
                      "2 usage or configuration error; 126/127 CMD cannot be run / was not found.\n" +
                      "--check: 0 when CRIU can work in this container, 1 otherwise (each failure says what to add to the pod spec).",
        Options =
        [
            new OptionSpec("--config", "FILE", $"crsc run configuration (default ${RunConfigLoader.EnvironmentVariable}, else {RunConfigLoader.DefaultPath})"),
            new OptionSpec("--check", null, "check whether CRIU can work in this container and exit"),
        ],
        Arguments = [new ArgumentSpec("CMD", "the command and its arguments (after --)", Required: false, Variadic: true)],
        Handler = RunAsync,
        Examples =
        [
            "crsc run --config /etc/crsc/run.yaml -- /app/server --port 8080",
            "crsc run --check --config /etc/crsc/run.yaml",
        ],
    };

    public static async Task<int> RunAsync(ParsedCommand p, CancellationToken ct)
    {
        var configPath = p.Value("--config") is { Length: > 0 } c ? c
            : Environment.GetEnvironmentVariable(RunConfigLoader.EnvironmentVariable) is { Length: > 0 } e ? e
            : RunConfigLoader.DefaultPath;
        if (!p.Has("--check") && p.Arguments.Count == 0)
            return CliOutput.Usage(p, "'crsc run' needs the command to run after --, e.g. crsc run --config run.yaml -- /app/server");
        if (p.Has("--check") && p.Arguments.Count > 0)
            return CliOutput.Usage(p, "'crsc run --check' takes no command");
        var (options, errors) = RunConfigLoader.Load(configPath);
        if (options is null)
        {
            foreach (var error in errors) p.Error.WriteLine("crsc run: " + error);
            return ExitCodes.Usage;
        }

        if (p.Has("--check"))
        {
            var rows = await new RunCheck(new SystemPreflightHost(), new SystemProgramRunner(), RunCheck.TryWrite).RunAsync(options, ct);
            PreflightCommand.WriteTable(p.Out, rows);
            return PreflightCommand.ExitCode(rows);
        }

        using var supervisor = new RunSupervisor(options, [.. p.Arguments], new RunLog(p.Error));
        var registrations = new List<PosixSignalRegistration>();
        try
        {
            foreach (var signal in (int[])[RunSupervisor.SigTerm, RunSupervisor.SigInt, RunSupervisor.SigHup, RunSupervisor.SigQuit, RunSupervisor.SigUsr1, RunSupervisor.SigUsr2])
            {
                var number = signal;
                registrations.Add(PosixSignalRegistration.Create(ToPosixSignal(number), context =>
                {
                    context.Cancel = true;
                    supervisor.Signal(number);
                }));
            }
            return await supervisor.RunAsync();
        }
        finally
        {
            foreach (var r in registrations) r.Dispose();
        }
    }

    /// <summary>.NET's names for the signals it has one for; a raw number (SIGUSR1/2) otherwise, which it accepts on Unix.</summary>
    private static PosixSignal ToPosixSignal(int signal) => signal switch
    {
        RunSupervisor.SigTerm => PosixSignal.SIGTERM,
        RunSupervisor.SigInt => PosixSignal.SIGINT,
        RunSupervisor.SigHup => PosixSignal.SIGHUP,
        RunSupervisor.SigQuit => PosixSignal.SIGQUIT,
        _ => (PosixSignal)signal,
    };
}

using Crsc.Configuration;
using Crsc.Interceptor;
using Crsc.Logging;
using Microsoft.Extensions.Logging;
using Serilog.Extensions.Logging;

namespace Crsc.Cli;

/// <summary>The crsc command tree. Each verb's work lives in its own class; this only describes and wires.</summary>
public static class Commands
{
    /// <summary>
    /// The configuration file. Accepted before the verb too (<c>crsc -c FILE daemon</c>), but only by the verbs that
    /// read configuration: they list it among their options; any other verb refuses it rather than ignore it.
    /// </summary>
    public static readonly OptionSpec Config = new("--config", "FILE", $"configuration file (default {ConfigLoader.DefaultPath}, or ${ConfigLoader.ConfigEnvironmentVariable})", "-c");

    /// <summary><c>--config</c> and the option flags of the configuration table, accepted by the verbs that load configuration.</summary>
    public static List<OptionSpec> ConfigFlags() =>
        [Config, .. ConfigKeys.All.Select(k => new OptionSpec(k.Flag, "VALUE", $"{k.Description} [{k.YamlPath}, ${string.Join("/$", k.EnvironmentVariables)}]"))];

    public static CommandSpec Root() => new("crsc", "crsc: checkpoint/restore for stateful containers on Kubernetes.")
    {
        Description = "One binary: the node daemon (`crsc daemon`) and the operator CLI.",
        Options = [Config],
        Subcommands =
        [
            new CommandSpec("daemon", "Run the node daemon (node agent; cluster reconcilers when elected).")
            {
                Description = "Runs in the foreground until SIGTERM/SIGINT. Under systemd (Type=notify) it reports READY=1,\n" +
                              "STATUS= and WATCHDOG=1; logs go to journald under systemd, to the console on a terminal and\n" +
                              "as JSON lines otherwise. Invalid configuration: exit 78. Flags override environment variables,\n" +
                              "which override the configuration file.",
                Options = ConfigFlags(),
                Handler = DaemonCommand.RunAsync,
                Examples = ["crsc daemon", "crsc daemon --config ./config.yaml --socket /tmp/crsc.sock --log-format console"],
            },
            new CommandSpec("version", "Print version, git commit and build flavour (aot/jit).")
            {
                Options = [new OptionSpec("--short", null, "print only the version number")],
                Handler = VersionCommand.RunAsync,
            },
            new CommandSpec("config", "Work with the configuration.")
            {
                Subcommands =
                [
                    new CommandSpec("check", "Validate the configuration and print the effective values with their sources.")
                    {
                        Description = "Reads FILE (or --config, $CRSC_CONFIG, /etc/crsc/config.yaml), applies the environment and\n" +
                                      "flags, and prints every key with the value in effect and where it came from.\n" +
                                      "Exit 0 when valid, 78 when not (each error names the key and the value) or when FILE is not there.",
                        Arguments = [new ArgumentSpec("FILE", "configuration file to check", Required: false)],
                        Options = ConfigFlags(),
                        Handler = ConfigCommand.CheckAsync,
                        Examples = ["crsc config check", "crsc config check /etc/crsc/config.yaml", "CRSC_SOCKET=/tmp/x.sock crsc config check ./config.yaml"],
                    },
                ],
            },
            ManifestsCommand.Spec(),
            PreflightCommand.Spec(),
            StatusCommand.Spec(),
            CheckpointCommand.Spec(),
            RestoreCommand.Spec(),
            MigrateCommand.Spec(),
            ListCommand.Spec(),
            InspectCommand.Spec(),
            GcCommand.Spec(),
            ImageTokenCommand.Spec(),
            BuildImageCommand.Spec(),
            InterceptorCommand.Spec("interceptor", "crsc interceptor", InterceptorLoggers),
            RunCommand.Spec(),
            CommandLineParser.HelpCommand(),
        ],
    };

    /// <summary>
    /// <c>crsc interceptor</c>'s logs: Serilog as the daemon's, on the console on a terminal and as JSON lines otherwise
    /// (the small <c>crsc-interceptor</c> writes its own, without Serilog).
    /// </summary>
    private static ILoggerFactory InterceptorLoggers()
    {
        var target = LoggingSetup.Choose("auto", startedBySystemd: false, journalAvailable: false, stdoutIsTerminal: !Console.IsOutputRedirected);
        return new SerilogLoggerFactory(LoggingSetup.Create(new CrscOptions(), target), dispose: true);
    }

    /// <summary>The configuration flags given on this command line, by flag name.</summary>
    public static Dictionary<string, string> ConfigFlagValues(ParsedCommand p) =>
        ConfigKeys.All.Where(k => p.Values.ContainsKey(k.Flag)).ToDictionary(k => k.Flag, k => p.Values[k.Flag]);

    public static IReadOnlyDictionary<string, string> ProcessEnvironment()
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
            env[(string)e.Key] = (string?)e.Value ?? "";
        return env;
    }
}

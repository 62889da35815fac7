using Crsc.Configuration;
using Crsc.Daemon;
using Crsc.Logging;
using Crsc.Systemd;

namespace Crsc.Cli;

internal static class DaemonCommand
{
    public static async Task<int> RunAsync(ParsedCommand p, CancellationToken ct)
    {
        var config = ConfigLoader.Load(p.Value("--config"), Commands.ProcessEnvironment(), Commands.ConfigFlagValues(p));
        if (!config.IsValid)
        {
            foreach (var e in config.Errors) p.Error.WriteLine($"crsc: invalid configuration: {e}");
            p.Error.WriteLine("crsc: refusing to start; fix the configuration (check it with 'crsc config check').");
            return ExitCodes.Config;
        }
        var options = config.Options;
        NativeMethods.RestrictUmask();

        var target = LoggingSetup.Choose(options.LogFormat, SystemdEnvironment.IsStartedBySystemd,
            SystemdEnvironment.IsJournalSocketPresent(), stdoutIsTerminal: !Console.IsOutputRedirected);
        using var logger = LoggingSetup.Create(options, target);
        try
        {
            return await DaemonHost.RunAsync(options, logger, ct);
        }
        catch (SocketPathException e)
        {
            var error = new ConfigError(SocketPathException.Key, e.SocketPath, e.Problem,
                config.Sources.GetValueOrDefault(SocketPathException.Key) ?? "default");
            logger.Fatal("crsc daemon cannot start: invalid configuration: {Error}", error.ToString());
            p.Error.WriteLine($"crsc: invalid configuration: {error}");
            p.Error.WriteLine("crsc: refusing to start; fix the configuration (check it with 'crsc config check').");
            return ExitCodes.Config;
        }
        catch (Crsc.Storage.UnsafeDirectoryException e)
        {
            // a configured directory that is not private to crsc: a configuration problem, so no restart loop
            var key = DirectoryKey(options, e.Path);
            logger.Fatal("crsc daemon cannot start: {Key}: {Reason}", key, e.Message);
            p.Error.WriteLine($"crsc: invalid configuration: {key}: {e.Message}");
            return ExitCodes.Config;
        }
        catch (Crsc.Storage.Security.SecretFileException e)
        {
            // the node key is there but not private to crsc (or not a key): refuse, never repair a file crsc did not make
            logger.Fatal("crsc daemon cannot start: stateDir: the node key {Reason}", e.Message);
            p.Error.WriteLine($"crsc: invalid configuration: stateDir: the node key {e.Message}");
            return ExitCodes.Config;
        }
        catch (SharedKeyException e)
        {
            // the shared key's Secret is unusable, or adopting it would orphan this node's checkpoints: a person decides
            logger.Fatal("crsc daemon cannot start: invalid configuration: {Reason}", e.Message);
            p.Error.WriteLine($"crsc: invalid configuration: {e.Message}");
            return ExitCodes.Config;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException
                                   or Crsc.Controllers.Storage.CheckpointStoreException)
        {
            // startup failures that a person can fix: name them plainly, no stack trace
            logger.Fatal("crsc daemon cannot start: {Reason}", e.Message);
            p.Error.WriteLine($"crsc: daemon cannot start: {e.Message}");
            return ExitCodes.Failure;
        }
        catch (Exception e)
        {
            logger.Fatal(e, "crsc daemon failed");
            return ExitCodes.Failure;
        }
    }

    /// <summary>The configuration key whose directory <paramref name="path"/> is (or lies under).</summary>
    private static string DirectoryKey(CrscOptions options, string path)
    {
        foreach (var (key, dir) in (ReadOnlySpan<(string, string)>)[("stagingDir", options.StagingDir), ("stateDir", options.StateDir), ("checkpointDir", options.CheckpointDir)])
        {
            if (string.IsNullOrEmpty(dir)) continue;
            var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir));
            if (path == full || path.StartsWith(full + "/", StringComparison.Ordinal)) return key;
        }
        return "checkpointDir";
    }
}

using Crsc.Configuration;

namespace Crsc.Cli;

/// <summary>
/// The operator verbs' view of the node, which the shared <see cref="CliOutput"/> knows nothing of: crsc's configuration
/// (loaded as the daemon loads it, with the flags a verb honours), the node key, and the authenticity verdicts it gives.
/// </summary>
internal static class CliNode
{
    /// <summary>
    /// <c>--config</c> and the configuration flags (of <see cref="Commands.ConfigFlags"/>) a verb actually uses, e.g. <c>--socket</c>:
    /// a verb that reads configuration with <see cref="LoadOptions"/> honours its file.
    /// </summary>
    public static IEnumerable<OptionSpec> ConfigFlags(params string[] flags) =>
        Commands.ConfigFlags().Where(o => o == Commands.Config || flags.Contains(o.Name));

    /// <summary>Loads the configuration the way <c>crsc daemon</c> does; on invalid configuration writes the errors and returns null (exit 78).</summary>
    public static CrscOptions? LoadOptions(ParsedCommand p)
    {
        var result = ConfigLoader.Load(p.Value("--config"), Commands.ProcessEnvironment(), Commands.ConfigFlagValues(p));
        if (result.IsValid) return result.Options;
        foreach (var e in result.Errors) p.Error.WriteLine($"crsc: invalid configuration: {e}");
        return null;
    }

    /// <summary>
    /// The node key, to check manifest MACs: loaded when its file (under <c>stateDir</c>) can be read — as root — and never
    /// created here. Null without one (the verdicts are then <see cref="Controllers.Storage.CheckpointAuthenticity.Unchecked"/>),
    /// with a note on stderr when the file is there but unusable.
    /// </summary>
    public static Storage.Security.NodeKey? LoadNodeKey(ParsedCommand p, Configuration.CrscOptions options)
    {
        var path = Storage.Security.NodeKey.PathIn(options.StateDir);
        try
        {
            return Storage.Security.NodeKey.Load(path);
        }
        catch (Storage.Security.SecretFileException e) when (e.Problem == "does not exist")
        {
            return null;
        }
        catch (Storage.Security.SecretFileException e)
        {
            p.Error.WriteLine($"crsc: note: manifest MACs are not checked: the node key {e.Message}");
            return null;
        }
    }

    /// <summary>A checkpoint's authenticity verdict as the CLI shows it.</summary>
    public static string Authenticity(Controllers.Storage.CheckpointAuthenticity a) => a switch
    {
        Controllers.Storage.CheckpointAuthenticity.Verified => "verified",
        Controllers.Storage.CheckpointAuthenticity.Unsigned => "unsigned",
        Controllers.Storage.CheckpointAuthenticity.Invalid => "INVALID-MAC",
        Controllers.Storage.CheckpointAuthenticity.OtherKey => "other-key",
        _ => "unchecked",
    };
}

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

    /// <summary>
    /// Runs <paramref name="action"/> against the API server the configuration names (kubeconfig or in-cluster): a
    /// configuration that names none, or a kubeconfig that cannot be used, is exit 78 with what to give; an unreachable
    /// or refusing API server is exit 1 naming <paramref name="what"/>.
    /// </summary>
    public static async Task<int> WithApiServerAsync(ParsedCommand p, string what, Func<Crsc.Kube.KubeApi, Task<int>> action)
    {
        var options = LoadOptions(p);
        if (options is null) return ExitCodes.Config;
        if (!Crsc.Daemon.ClusterServices.IsConfigured(options))
        {
            p.Error.WriteLine("crsc: no API server configured: give a kubeconfig (--kubeconfig, $CRSC_KUBECONFIG or $KUBECONFIG, " +
                              "or `kubeconfig` in the configuration file), or run inside the cluster");
            return ExitCodes.Config;
        }
        Crsc.Kube.KubeApi api;
        try
        {
            api = new Crsc.Kube.KubeApi(Crsc.Kube.KubeConfigLoader.Load(options.Kubeconfig));
        }
        catch (Crsc.Kube.KubeConfigException e)
        {
            p.Error.WriteLine($"crsc: cannot use the kubeconfig{(options.Kubeconfig.Length > 0 ? " " + options.Kubeconfig : "")}: {e.Message}");
            return ExitCodes.Config;
        }
        using (api)
        {
            try
            {
                return await action(api);
            }
            catch (Crsc.Controllers.Kubernetes.KubeUnavailableException e)
            {
                return CliOutput.Fail(p, $"{what}: the API server {api.Config.Server} is unreachable: {e.Message}");
            }
            catch (Crsc.Controllers.Kubernetes.KubeApiException e)
            {
                return CliOutput.Fail(p, $"{what}: the API server refused ({e.Code} {e.Reason}): {e.Message}");
            }
        }
    }

    /// <summary>
    /// <c>--timeout</c>: a duration from 1s to 24h, or <paramref name="fallback"/> when not given; otherwise the usage
    /// error naming the value.
    /// </summary>
    public static string? ParseTimeout(ParsedCommand p, TimeSpan fallback, out TimeSpan timeout)
    {
        timeout = fallback;
        return p.Value("--timeout") is { } t && (!CliOutput.TryParseDuration(t, out timeout) || timeout > TimeSpan.FromDays(1))
            ? CliOutput.DurationProblem("--timeout", t, "a duration between 1s and 24h (e.g. 90s, 5m, 1h)")
            : null;
    }

    /// <summary><c>--container</c> when given and not a DNS-1123 label: the usage error naming it; else null.</summary>
    public static string? ContainerProblem(ParsedCommand p) =>
        p.Value("--container") is { } c && !Crsc.Daemon.TargetNames.IsLabel(c)
            ? $"--container '{c}' is not a valid DNS-1123 label (lower-case letters, digits and '-', at most 63)"
            : null;

    /// <summary>
    /// <paramref name="target"/> as NS/NAME of a <paramref name="kind"/> (lower-case, e.g. "pod"): the namespace a DNS-1123
    /// label, the name a DNS-1123 subdomain; otherwise the usage error naming what is wrong.
    /// </summary>
    public static string? ParseNamespacedName(string target, string kind, out string ns, out string name)
    {
        (ns, name) = ("", "");
        var parts = target.Split('/');
        if (parts.Length != 2) return $"'{target}' is not NS/{kind.ToUpperInvariant()}";
        (ns, name) = (parts[0], parts[1]);
        if (!Crsc.Daemon.TargetNames.IsLabel(ns))
            return $"namespace '{ns}' is not a valid DNS-1123 label (lower-case letters, digits and '-', at most 63)";
        if (!Crsc.Daemon.TargetNames.IsSubdomain(name))
            return $"{kind} '{name}' is not a valid DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253)";
        return null;
    }
}

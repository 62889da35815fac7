using Crsc.Kube;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Crsc.Configuration;

/// <summary>A problem with one configuration value, named by its key, value and where it came from.</summary>
public sealed record ConfigError(string Key, string? Value, string Problem, string Source)
{
    public override string ToString() => Value is null
        ? $"{Key}: {Problem} ({Source})"
        : $"{Key}: \"{Value}\" {Problem} ({Source})";
}

/// <summary>The outcome of loading: the options, where each value came from, and every error found.</summary>
public sealed record ConfigResult(
    CrscOptions Options,
    string? File,
    IReadOnlyDictionary<string, string> Sources,
    IReadOnlyList<ConfigError> Errors)
{
    public bool IsValid => Errors.Count == 0;
}

/// <summary>
/// Builds <see cref="CrscOptions"/> from defaults, then the YAML file, then the environment, then flags.
/// Uses YamlDotNet's representation model only (its reflection deserializer does not work under AOT).
/// </summary>
public static class ConfigLoader
{
    public const string DefaultPath = "/etc/crsc/config.yaml";
    public const string ConfigEnvironmentVariable = "CRSC_CONFIG";

    /// <param name="configFlag">the value of <c>--config</c>, if given</param>
    /// <param name="environment">the process environment (tests pass their own)</param>
    /// <param name="flags">option flags given on the command line, by flag name (<c>--node-name</c>)</param>
    /// <param name="defaultPath">the file read when neither --config nor CRSC_CONFIG names one; it may be absent</param>
    public static ConfigResult Load(
        string? configFlag,
        IReadOnlyDictionary<string, string> environment,
        IReadOnlyDictionary<string, string> flags,
        string defaultPath = DefaultPath)
    {
        var errors = new List<ConfigError>();
        var sources = ConfigKeys.All.ToDictionary(k => k.YamlPath, _ => "default");
        var options = new CrscOptions();

        string? path = null;
        var explicitFile = true;
        if (!string.IsNullOrEmpty(configFlag)) path = configFlag;
        else if (environment.TryGetValue(ConfigEnvironmentVariable, out var fromEnv) && fromEnv.Length > 0) path = fromEnv;
        else { path = defaultPath; explicitFile = false; }

        string? usedFile = null;
        if (File.Exists(path))
        {
            usedFile = Path.GetFullPath(path);
            foreach (var (key, value, line) in ReadYaml(usedFile, errors))
            {
                var k = ConfigKeys.ByYamlPath(key);
                if (k is null)
                {
                    errors.Add(new ConfigError(key, null, $"is not a known key (line {line}); known keys: {string.Join(", ", ConfigKeys.All.Select(x => x.YamlPath))}", usedFile));
                    continue;
                }
                options = k.Set(options, value);
                sources[k.YamlPath] = $"{usedFile}:{line}";
            }
        }
        else if (explicitFile)
        {
            errors.Add(new ConfigError("config", path, Directory.Exists(path) ? "is a directory, not a file" : "does not exist",
                configFlag is not null ? "--config" : ConfigEnvironmentVariable));
        }

        foreach (var k in ConfigKeys.All)
        {
            foreach (var variable in k.EnvironmentVariables)
            {
                if (environment.TryGetValue(variable, out var value) && value.Length > 0)
                {
                    options = k.Set(options, value);
                    sources[k.YamlPath] = "env " + variable;
                    break;
                }
            }
        }

        foreach (var (flag, value) in flags)
        {
            var k = ConfigKeys.ByFlag(flag) ?? throw new ArgumentException($"unknown configuration flag {flag}", nameof(flags));
            options = k.Set(options, value);
            sources[k.YamlPath] = "flag " + flag;
        }

        errors.AddRange(ConfigValidator.Validate(options, sources));
        return new ConfigResult(options, usedFile, sources, errors);
    }

    /// <summary>Flattens the YAML mapping into dotted keys with scalar values.</summary>
    private static IEnumerable<(string Key, string Value, long Line)> ReadYaml(string file, List<ConfigError> errors)
    {
        YamlStream stream;
        try
        {
            using var reader = new StreamReader(file);
            stream = AliasFreeYaml.Load(reader);
        }
        catch (YamlAliasException e)
        {
            errors.Add(new ConfigError("config", file, e.Reason, file));
            return [];
        }
        catch (YamlException e)
        {
            errors.Add(new ConfigError("config", file, $"is not valid YAML at line {e.Start.Line}, column {e.Start.Column}: {e.InnerException?.Message ?? e.Message}", file));
            return [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            errors.Add(new ConfigError("config", file, "cannot be read: " + e.Message, file));
            return [];
        }

        if (stream.Documents.Count == 0) return [];
        if (stream.Documents.Count > 1)
        {
            errors.Add(new ConfigError("config", file, "holds more than one YAML document", file));
            return [];
        }
        var root = stream.Documents[0].RootNode;
        if (root is YamlScalarNode { Value: null or "" or "~" or "null" }) return [];
        if (root is not YamlMappingNode map)
        {
            errors.Add(new ConfigError("config", file, $"must be a mapping of keys to values (line {root.Start.Line})", file));
            return [];
        }
        var result = new List<(string, string, long)>();
        Flatten(map, "", result, errors, file);
        return result;
    }

    private static void Flatten(YamlMappingNode map, string prefix, List<(string, string, long)> into, List<ConfigError> errors, string file)
    {
        foreach (var (keyNode, valueNode) in map.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } name })
            {
                errors.Add(new ConfigError(prefix.Length == 0 ? "(root)" : prefix, null, $"has a key that is not a plain name (line {keyNode.Start.Line})", file));
                continue;
            }
            var key = prefix.Length == 0 ? name : prefix + "." + name;
            switch (valueNode)
            {
                case YamlMappingNode child:
                    Flatten(child, key, into, errors, file);
                    break;
                case YamlScalarNode scalar:
                    var text = scalar.Value ?? "";
                    // a plain `~`/`null` means "unset": keep the default (an empty string is a value: e.g. kubeconfig "")
                    if (scalar.Style == YamlDotNet.Core.ScalarStyle.Plain && text is "~" or "null") continue;
                    into.Add((key, text, valueNode.Start.Line));
                    break;
                default:
                    errors.Add(new ConfigError(key, null, $"must be a single value, not a list (line {valueNode.Start.Line})", file));
                    break;
            }
        }
    }
}

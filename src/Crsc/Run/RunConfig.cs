using System.Globalization;
using Crsc.Kube;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Crsc.Run;

/// <summary>The configuration of <c>crsc run</c> (keys as crik's, so its configuration files carry over).</summary>
internal sealed record RunOptions
{
    public const string DefaultNodeStateFile = "/run/crsc/node-state/state.json";
    public const int DefaultDumpTimeoutSeconds = 25;

    /// <summary>Where checkpoints live: a volume that follows the pod (a PVC). Required.</summary>
    public required string ImageDir { get; init; }
    /// <summary>Files and directories copied into the checkpoint and back before a restore (absolute paths).</summary>
    public IReadOnlyList<string> AdditionalPaths { get; init; } = [];
    /// <summary>Paths removed before a dump (inotify watches on them make CRIU fail).</summary>
    public IReadOnlyList<string> InotifyIncompatiblePaths { get; init; } = [];
    /// <summary>The criu executable: a name looked up on PATH, or a path.</summary>
    public string CriuPath { get; init; } = "criu";
    /// <summary>The node agent's answer to "is this node going away" (a read-only hostPath mount).</summary>
    public string NodeStateFile { get; init; } = DefaultNodeStateFile;
    /// <summary>How long a dump may take before it is given up (keep it under the pod's terminationGracePeriodSeconds).</summary>
    public int DumpTimeoutSeconds { get; init; } = DefaultDumpTimeoutSeconds;
}

/// <summary>
/// Reads the <c>crsc run</c> configuration: YAML or JSON (JSON is YAML), through YamlDotNet's representation model
/// (AOT-safe) with anchors and aliases refused. Every problem names its key.
/// </summary>
internal static class RunConfigLoader
{
    public const string DefaultPath = "/etc/crsc/run.yaml";
    public const string EnvironmentVariable = "CRSC_RUN_CONFIG";

    public static readonly IReadOnlyList<string> Keys =
        ["imageDir", "additionalPaths", "inotifyIncompatiblePaths", "criuPath", "nodeStateFile", "dumpTimeoutSeconds"];

    /// <summary>The options, or the errors (each naming the key and the file).</summary>
    public static (RunOptions? Options, IReadOnlyList<string> Errors) Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var why = File.Exists(path) || Directory.Exists(path) ? e.Message : "does not exist";
            return (null, [$"configuration file {path}: {why}"]);
        }
        return Parse(text, path);
    }

    public static (RunOptions? Options, IReadOnlyList<string> Errors) Parse(string text, string source)
    {
        var errors = new List<string>();
        YamlStream stream;
        try { stream = AliasFreeYaml.Load(new StringReader(text)); }
        catch (YamlAliasException e) { return (null, [$"{source}: {e.Reason}"]); }
        catch (YamlException e)
        {
            return (null, [$"{source}: not valid YAML or JSON at line {e.Start.Line}, column {e.Start.Column}: {e.InnerException?.Message ?? e.Message}"]);
        }
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode map)
            return (null, [$"{source}: must hold one mapping of keys to values (imageDir: /var/lib/crsc-run …)"]);

        string? imageDir = null, criuPath = null, nodeStateFile = null;
        List<string>? additional = null, inotify = null;
        int? timeout = null;
        foreach (var (keyNode, value) in map.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? "?";
            var where = $"{key} (line {keyNode.Start.Line})";
            switch (key)
            {
                case "imageDir":
                    imageDir = AbsolutePath(value, where, errors);
                    break;
                case "criuPath":
                    criuPath = Scalar(value, where, errors);
                    if (criuPath is { Length: 0 }) { errors.Add($"{where}: must not be empty (a name on PATH or a path)"); criuPath = null; }
                    break;
                case "nodeStateFile":
                    nodeStateFile = AbsolutePath(value, where, errors);
                    break;
                case "dumpTimeoutSeconds":
                    if (Scalar(value, where, errors) is { } t)
                    {
                        if (int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is > 0 and <= 3600) timeout = n;
                        else errors.Add($"{where}: \"{t}\" is not a whole number of seconds from 1 to 3600");
                    }
                    break;
                case "additionalPaths":
                    additional = PathList(value, where, errors);
                    break;
                case "inotifyIncompatiblePaths":
                    inotify = PathList(value, where, errors);
                    break;
                default:
                    errors.Add($"{where}: is not a known key; known keys: {string.Join(", ", Keys)}");
                    break;
            }
        }
        if (imageDir is null && !errors.Any(e => e.StartsWith("imageDir", StringComparison.Ordinal)))
            errors.Add("imageDir: is required (the directory on a volume that follows the pod, e.g. a PVC mount)");
        if (errors.Count > 0) return (null, errors.Select(e => $"{source}: {e}").ToList());

        var options = new RunOptions
        {
            ImageDir = imageDir!,
            AdditionalPaths = additional ?? [],
            InotifyIncompatiblePaths = inotify ?? [],
            CriuPath = criuPath ?? "criu",
            NodeStateFile = nodeStateFile ?? RunOptions.DefaultNodeStateFile,
            DumpTimeoutSeconds = timeout ?? RunOptions.DefaultDumpTimeoutSeconds,
        };
        foreach (var p in options.AdditionalPaths)
            if (IsInside(p, options.ImageDir) || IsInside(options.ImageDir, p))
                errors.Add($"{source}: additionalPaths: \"{p}\" overlaps imageDir {options.ImageDir}");
        return errors.Count > 0 ? (null, errors) : (options, []);
    }

    private static bool IsInside(string path, string dir)
    {
        var d = Path.TrimEndingDirectorySeparator(dir);
        var p = Path.TrimEndingDirectorySeparator(path);
        return p == d || p.StartsWith(d + "/", StringComparison.Ordinal);
    }

    private static string? Scalar(YamlNode node, string where, List<string> errors)
    {
        if (node is YamlScalarNode s) return s.Value ?? "";
        errors.Add($"{where}: must be a single value, not a list or mapping");
        return null;
    }

    private static string? AbsolutePath(YamlNode node, string where, List<string> errors)
    {
        if (Scalar(node, where, errors) is not { } v) return null;
        if (v.Length == 0 || !Path.IsPathFullyQualified(v) || v.Contains('\0'))
        {
            errors.Add($"{where}: \"{v}\" is not an absolute path");
            return null;
        }
        return Path.GetFullPath(v);
    }

    private static List<string>? PathList(YamlNode node, string where, List<string> errors)
    {
        if (node is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" }) return [];
        if (node is not YamlSequenceNode seq)
        {
            errors.Add($"{where}: must be a list of absolute paths");
            return null;
        }
        var list = new List<string>();
        foreach (var item in seq.Children)
        {
            if (AbsolutePath(item, where, errors) is not { } p) continue;
            if (p == "/") { errors.Add($"{where}: \"/\" is not allowed"); continue; }
            list.Add(p);
        }
        return list;
    }
}

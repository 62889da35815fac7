using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Crsc.Api.Tests.Crds;

/// <summary>
/// Loads YAML (YamlDotNet's RepresentationModel) into <see cref="JsonNode"/> trees, resolving plain
/// scalars the way Kubernetes' YAML reader does (bool, int, float, null, else string). Plain scalars
/// that YAML 1.1 would read as booleans (yes, no, on, off, y, n) are refused: the API server's reader
/// and a YAML 1.2 reader disagree about them, so a manifest must quote them.
/// </summary>
public static partial class YamlTree
{
    public static List<JsonNode?> LoadAll(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        return stream.Documents.Select(d => Convert(d.RootNode, "")).ToList();
    }

    public static JsonNode? LoadSingle(string yaml)
    {
        var docs = LoadAll(yaml);
        Assert.Single(docs);
        return docs[0];
    }

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex Int();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex Float();

    [GeneratedRegex(@"^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$")]
    private static partial Regex Yaml11Bool();

    private static JsonNode? Convert(YamlNode node, string path)
    {
        switch (node)
        {
            case YamlMappingNode map:
                var obj = new JsonObject();
                foreach (var (k, v) in map.Children)
                {
                    var key = ((YamlScalarNode)k).Value ?? "";
                    if (obj.ContainsKey(key)) throw new FormatException($"{path}: duplicate key '{key}'");
                    obj[key] = Convert(v, path + "." + key);
                }
                return obj;
            case YamlSequenceNode seq:
                var arr = new JsonArray();
                var i = 0;
                foreach (var child in seq.Children) arr.Add(Convert(child, $"{path}[{i++}]"));
                return arr;
            case YamlScalarNode scalar:
                var text = scalar.Value ?? "";
                if (scalar.Style != ScalarStyle.Plain) return JsonValue.Create(text);
                if (text is "" or "~" or "null" or "Null" or "NULL") return null;
                if (text is "true" or "True" or "TRUE") return JsonValue.Create(true);
                if (text is "false" or "False" or "FALSE") return JsonValue.Create(false);
                if (Yaml11Bool().IsMatch(text))
                    throw new FormatException($"{path}: plain '{text}' is a boolean to YAML 1.1 readers and a string to others; quote it");
                if (Int().IsMatch(text)) return JsonValue.Create(long.Parse(text, CultureInfo.InvariantCulture));
                if (Float().IsMatch(text)) return JsonValue.Create(double.Parse(text, CultureInfo.InvariantCulture));
                return JsonValue.Create(text);
            default:
                throw new FormatException($"{path}: unsupported YAML node {node.NodeType}");
        }
    }
}

/// <summary>The repository's files, found from the test's working directory upwards.</summary>
public static class RepoFiles
{
    public static string Root { get; } = FindRoot();

    public static string KubernetesDir => Path.Combine(Root, "packaging", "kubernetes");
    public static string CrdDir => Path.Combine(KubernetesDir, "crds");

    public static IReadOnlyList<string> CrdFiles =>
        Directory.GetFiles(CrdDir, "*.yaml").Order(StringComparer.Ordinal).ToList();

    public static JsonObject LoadCrd(string kind) =>
        CrdFiles.Select(f => (JsonObject)YamlTree.LoadSingle(File.ReadAllText(f))!)
            .Single(c => (string?)c["spec"]?["names"]?["kind"] == kind);

    private static string FindRoot()
    {
        var built = typeof(RepoFiles).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
            .Cast<System.Reflection.AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "RepositoryRoot")?.Value;
        if (built is not null && Directory.Exists(Path.Combine(built, "packaging"))) return built;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "crsc.sln")) && Directory.Exists(Path.Combine(dir.FullName, "packaging")))
                return dir.FullName;
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "crsc.sln")) && Directory.Exists(Path.Combine(dir.FullName, "packaging")))
                return dir.FullName;
        throw new InvalidOperationException("repository root (crsc.sln + packaging/) not found above " + AppContext.BaseDirectory);
    }
}

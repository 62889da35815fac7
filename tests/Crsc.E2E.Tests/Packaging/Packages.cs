using System.Reflection;
using Crsc.E2E.Tests.Sandbox;
using YamlDotNet.RepresentationModel;

namespace Crsc.E2E.Tests.Packaging;

/// <summary>One path nfpm.yaml puts in the packages (directories expanded to their files).</summary>
public sealed record PackagedPath(string Destination, string? Source, string Type, string Mode)
{
    public bool IsDirectory => Type == "dir";
    public bool IsConfig => Type.StartsWith("config", StringComparison.Ordinal);
}

/// <summary>
/// The packages `make package` built (<c>$CRSC_PACKAGES</c>, else the repository's obj/packages) and what
/// nfpm.yaml says they hold, read here with YamlDotNet, independently of packaging/build-packages.py.
/// </summary>
public static class Packages
{
    public static string RepositoryRoot { get; } =
        typeof(Packages).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().First(a => a.Key == "CrscRepositoryRoot").Value!;

    public static string PackagesDirectory =>
        Environment.GetEnvironmentVariable("CRSC_PACKAGES") is { Length: > 0 } d ? d : Path.Combine(RepositoryRoot, "obj", "packages");

    public static string ScriptsDirectory => Path.Combine(RepositoryRoot, "tests", "packaging");

    public static string Deb => Single("crsc_*_amd64.deb");
    public static string Rpm => Single("crsc-*-1.x86_64.rpm");

    /// <summary>The version in the .deb's name (crsc_VERSION_amd64.deb).</summary>
    public static string Version => Path.GetFileName(Deb)["crsc_".Length..^"_amd64.deb".Length];

    private static string Single(string pattern)
    {
        var dir = PackagesDirectory;
        var found = Directory.Exists(dir) ? Directory.GetFiles(dir, pattern) : [];
        return found.Length switch
        {
            1 => found[0],
            0 => throw new InvalidOperationException($"no {pattern} in {dir}: run `make package` first (make e2e does), or set CRSC_PACKAGES"),
            _ => throw new InvalidOperationException($"several {pattern} in {dir}: {string.Join(", ", found)}"),
        };
    }

    public static YamlMappingNode Nfpm { get; } = LoadNfpm();

    private static YamlMappingNode LoadNfpm()
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(Path.Combine(RepositoryRoot, "nfpm.yaml"))));
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    public static string Scalar(YamlNode node, params string[] path)
    {
        foreach (var p in path) node = ((YamlMappingNode)node)[p];
        return ((YamlScalarNode)node).Value!;
    }

    public static IReadOnlyList<string> List(params string[] path)
    {
        YamlNode node = Nfpm;
        foreach (var p in path) node = ((YamlMappingNode)node)[p];
        return ((YamlSequenceNode)node).Children.Select(c => ((YamlScalarNode)c).Value!).ToList();
    }

    /// <summary>Every path of nfpm.yaml's contents; a directory source becomes one entry per file below it.</summary>
    public static IReadOnlyList<PackagedPath> Contents()
    {
        var result = new List<PackagedPath>();
        foreach (var c in ((YamlSequenceNode)Nfpm["contents"]).Children.Cast<YamlMappingNode>())
        {
            var dst = Scalar(c, "dst");
            var type = c.Children.ContainsKey("type") ? Scalar(c, "type") : "file";
            var mode = c.Children.ContainsKey("file_info") ? Scalar(c, "file_info", "mode") : "";
            if (type == "dir") { result.Add(new PackagedPath(dst.TrimEnd('/'), null, type, mode)); continue; }
            var src = Path.Combine(RepositoryRoot, Scalar(c, "src"));
            if (Directory.Exists(src))
                foreach (var f in Directory.GetFiles(src, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                    result.Add(new PackagedPath(Path.Combine(dst, Path.GetRelativePath(src, f)), f, type, mode));
            else result.Add(new PackagedPath(dst, src, type, mode));
        }
        return result;
    }

    /// <summary>nfpm.yaml's scripts (postinstall, preremove, postremove…) and their text.</summary>
    public static IReadOnlyDictionary<string, string> Scripts() =>
        ((YamlMappingNode)Nfpm["scripts"]).Children.ToDictionary(
            kv => ((YamlScalarNode)kv.Key).Value!,
            kv => File.ReadAllText(Path.Combine(RepositoryRoot, ((YamlScalarNode)kv.Value).Value!)));

    /// <summary>"0755" → "rwxr-xr-x" (the permission part of ls -l).</summary>
    public static string Permissions(string octal)
    {
        var bits = Convert.ToInt32(octal, 8);
        var chars = "rwxrwxrwx".Select((ch, i) => (bits & (1 << (8 - i))) != 0 ? ch : '-');
        return new string(chars.ToArray());
    }

    public static async Task<CommandResult> RunAsync(string program, params string[] args)
    {
        var r = await CommandRunner.RunAsync(program, args, timeout: TimeSpan.FromMinutes(2));
        return r;
    }

    public static async Task<string> OutputOfAsync(string program, params string[] args)
    {
        var r = await RunAsync(program, args);
        Assert.True(r.Succeeded, $"{program} {string.Join(' ', args)} failed: {r}");
        return r.Stdout;
    }
}

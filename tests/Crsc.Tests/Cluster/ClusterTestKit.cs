using System.Runtime.CompilerServices;
using Crsc.Api.Kubernetes;
using Crsc.Kube;
using Crsc.Testing.Kube;
using YamlDotNet.RepresentationModel;

namespace Crsc.Tests.Cluster;

/// <summary>The real HTTP client pointed at a <see cref="FakeApiServer"/>, and the crsc CRDs as the fake serves them.</summary>
internal static class ClusterTestKit
{
    public static readonly string CrdDir = Path.Combine(FindRoot(), "packaging", "kubernetes", "crds");

    public static KubeApi Api(FakeApiServer server, string? token = null) => new(new KubeClientConfig
    {
        Server = server.Url,
        Token = token is null ? null : new StaticTokenSource(token),
        RequestTimeout = TimeSpan.FromSeconds(10),
        Source = "test",
    });

    /// <summary>A token that times out a test that hangs instead of hanging the run.</summary>
    public static CancellationToken Timeout(int seconds = 60) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    /// <summary>Each CRD of packaging/kubernetes/crds as the fake API server serves it (served storage version).</summary>
    public static IReadOnlyList<(FakeResource Resource, YamlMappingNode Crd)> Crds()
    {
        var result = new List<(FakeResource, YamlMappingNode)>();
        foreach (var file in Directory.GetFiles(CrdDir, "*.yaml").Order(StringComparer.Ordinal))
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(File.ReadAllText(file)));
            var crd = (YamlMappingNode)stream.Documents.Single().RootNode;
            var spec = (YamlMappingNode)crd["spec"];
            var names = (YamlMappingNode)spec["names"];
            var version = ((YamlSequenceNode)spec["versions"]).Cast<YamlMappingNode>()
                .Single(v => Scalar(v, "storage") == "true");
            var hasStatus = version.Children.TryGetValue(new YamlScalarNode("subresources"), out var sub)
                            && ((YamlMappingNode)sub).Children.ContainsKey(new YamlScalarNode("status"));
            result.Add((new FakeResource(Scalar(spec, "group"), Scalar(version, "name"), Scalar(names, "plural"),
                Scalar(names, "kind"), Scalar(spec, "scope") == "Namespaced", hasStatus), crd));
        }
        return result;
    }

    /// <summary>Registers every crsc CRD with the fake.</summary>
    public static void RegisterCrds(FakeApiServer server)
    {
        foreach (var (resource, _) in Crds()) server.Register(resource);
    }

    public static string Scalar(YamlMappingNode node, string key) => ((YamlScalarNode)node[key]).Value ?? "";

    public static Pod Pod(string name, string node, string ns = "default", string image = "registry.k8s.io/pause:3.10") => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = ns, Labels = new() { ["app"] = "bench" } },
        Spec = new PodSpec { NodeName = node, Containers = [new Container { Name = "main", Image = image }] },
    };

    private static string FindRoot([CallerFilePath] string thisFile = "")
    {
        // this source file (tests/Crsc.Tests/Cluster/ClusterTestKit.cs) at compile time, then the output directory upwards
        var candidates = new List<string?> { Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile) ?? "", "..", "..", "..")) };
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent) candidates.Add(d.FullName);
        return candidates.FirstOrDefault(c => c is not null && Directory.Exists(Path.Combine(c, "packaging", "kubernetes", "crds")))
               ?? throw new InvalidOperationException("packaging/kubernetes/crds not found from " + thisFile);
    }
}

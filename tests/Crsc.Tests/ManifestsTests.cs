using System.Runtime.CompilerServices;
using Crsc.Manifests;
using YamlDotNet.RepresentationModel;

namespace Crsc.Tests;

/// <summary>`crsc manifests` prints exactly the files under packaging/kubernetes, embedded at build time.</summary>
public sealed class ManifestsTests
{
    private static readonly string KubernetesDir = Path.Combine(FindRoot(), "packaging", "kubernetes");
    private static readonly string StaticPodFile = Path.Combine(KubernetesDir, "static-pod.yaml");

    private static IEnumerable<string> CrdFiles =>
        Directory.GetFiles(Path.Combine(KubernetesDir, "crds"), "*.yaml").Order(StringComparer.Ordinal);

    private static string Read(string path) => File.ReadAllText(path);

    [Fact]
    public void Kinds_are_those_whose_files_exist()
    {
        var expected = new List<string> { "crds", "rbac" };
        if (File.Exists(StaticPodFile)) expected.Add("static-pod");
        expected.Add("all");
        Assert.Equal(expected, EmbeddedManifests.Kinds);
    }

    [Fact]
    public void Crds_are_the_crd_files_joined()
    {
        Assert.True(EmbeddedManifests.TryGet("crds", out var yaml));
        Assert.Equal(EmbeddedManifests.Join(CrdFiles.Select(Read)), yaml);
        Assert.Equal(5, CrdFiles.Count());
        foreach (var file in CrdFiles) Assert.Contains(Read(file), yaml);
    }

    [Fact]
    public void Rbac_is_the_rbac_file()
    {
        Assert.True(EmbeddedManifests.TryGet("rbac", out var yaml));
        Assert.Equal(Read(Path.Combine(KubernetesDir, "rbac.yaml")), yaml);
    }

    [Fact]
    public void All_is_crds_then_rbac_and_not_the_static_pod()
    {
        // `crsc manifests all | kubectl apply -f -` must not create a plain Pod crsc-system/crsc:
        // the static pod goes to a node's manifests directory, through `crsc manifests static-pod`.
        var files = CrdFiles.Append(Path.Combine(KubernetesDir, "rbac.yaml")).ToList();
        Assert.True(EmbeddedManifests.TryGet("all", out var yaml));
        Assert.Equal(EmbeddedManifests.Join(files.Select(Read)), yaml);
        Assert.True(File.Exists(StaticPodFile));
        Assert.DoesNotContain(Read(StaticPodFile), yaml);
    }

    [Fact]
    public void Static_pod_is_printed_only_when_its_file_exists()
    {
        var found = EmbeddedManifests.TryGet("static-pod", out var yaml);
        Assert.Equal(File.Exists(StaticPodFile), found);
        if (found) Assert.Equal(Read(StaticPodFile), yaml);
        else Assert.Equal("", yaml);
    }

    [Theory]
    [InlineData("CRDs", true)]
    [InlineData("RBAC", true)]
    [InlineData("crd", false)]
    [InlineData("", false)]
    [InlineData("../rbac", false)]
    public void Kind_names_are_case_insensitive_and_exact(string kind, bool found) =>
        Assert.Equal(found, EmbeddedManifests.TryGet(kind, out _));

    [Fact]
    public void Output_is_one_yaml_stream_kubectl_can_apply()
    {
        Assert.True(EmbeddedManifests.TryGet("all", out var yaml));
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var kinds = stream.Documents.Select(d => ((YamlScalarNode)((YamlMappingNode)d.RootNode)["kind"]).Value).ToList();
        Assert.Equal(5, kinds.Count(k => k == "CustomResourceDefinition"));
        Assert.Equal(["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Role", "RoleBinding",
            "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"], kinds.Skip(5));
        // The CRDs come before anything else: the API must exist before it is used.
        Assert.All(kinds.Take(5), k => Assert.Equal("CustomResourceDefinition", k));
        Assert.DoesNotContain("Pod", kinds);
        Assert.Equal(15, kinds.Count);
    }

    [Fact]
    public void Join_separates_documents_and_ends_each_with_a_newline()
    {
        Assert.Equal("a: 1\n---\nb: 2\n", EmbeddedManifests.Join(["a: 1", "b: 2\n"]));
        Assert.Equal("", EmbeddedManifests.Join([]));
    }

    private static string FindRoot([CallerFilePath] string thisFile = "")
    {
        // This source file's path at compile time (tests/Crsc.Tests/ManifestsTests.cs), then the usual walk up.
        var candidates = new List<string?> { Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(thisFile))) };
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent) candidates.Add(d.FullName);
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d is not null; d = d.Parent) candidates.Add(d.FullName);
        return candidates.FirstOrDefault(c => c is not null && Directory.Exists(Path.Combine(c, "packaging", "kubernetes", "crds")))
            ?? throw new InvalidOperationException("repository root with packaging/kubernetes not found");
    }
}

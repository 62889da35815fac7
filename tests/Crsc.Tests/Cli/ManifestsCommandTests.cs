using Crsc.Cli;
using Crsc.Manifests;
using YamlDotNet.RepresentationModel;

namespace Crsc.Tests.Cli;

/// <summary>
/// <c>crsc manifests static-pod --image REF</c>: the static pod names the image a node actually has (none is published
/// at the default), checked as an image reference before anything is printed.
/// </summary>
public sealed class ManifestsCommandTests
{
    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await new CommandLineParser(Commands.Root(), o, e).RunAsync(args, CancellationToken.None);
        return (code, o.ToString(), e.ToString());
    }

    private static string StaticPodFile => File.ReadAllText(Packaging.Repository.File("packaging", "kubernetes", "static-pod.yaml"));

    private static string ImageOf(string yaml)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        var pod = (YamlMappingNode)stream.Documents.Single(d => ((YamlScalarNode)((YamlMappingNode)d.RootNode)["kind"]).Value == "Pod").RootNode;
        var container = (YamlMappingNode)((YamlSequenceNode)((YamlMappingNode)pod["spec"])["containers"]).Children.Single();
        return ((YamlScalarNode)container["image"]).Value!;
    }

    [Fact]
    public async Task Without_image_the_static_pod_is_the_file_as_it_is()
    {
        var (code, stdout, _) = await Run("manifests", "static-pod");
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Equal(StaticPodFile, stdout);
        Assert.Equal("ghcr.io/crsc-io/crsc:" + BuildInfo.Version, ImageOf(stdout));
    }

    [Theory]
    [InlineData("localhost/crsc:0.1.0")]
    [InlineData("registry.example:5000/ops/crsc:0.1.0-rc.1")]
    [InlineData("localhost/crsc@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    [InlineData("[::1]:5000/crsc:1")]
    public async Task Image_replaces_the_static_pods_image_and_nothing_else(string image)
    {
        var (code, stdout, err) = await Run("manifests", "static-pod", "--image", image);
        Assert.True(code == ExitCodes.Ok, err);
        Assert.Equal(image, ImageOf(stdout));
        // every other line (comments too) is the file's
        var printed = stdout.Split('\n');
        var original = StaticPodFile.Split('\n');
        Assert.Equal(original.Length, printed.Length);
        var changed = Enumerable.Range(0, original.Length).Where(i => original[i] != printed[i]).ToList();
        Assert.Equal("      image: ghcr.io/crsc-io/crsc:" + BuildInfo.Version, original[Assert.Single(changed)]);
    }

    [Theory]
    [InlineData("https://ghcr.io/crsc-io/crsc:0.1.0", "URL scheme")]
    [InlineData("Crsc:0.1.0", "must be lower-case")]
    [InlineData("localhost/crsc:", "tag ''")]
    [InlineData("localhost/crsc:0.1.0 ", "white space")]
    [InlineData("", "empty")]
    public async Task An_image_that_is_no_image_reference_is_a_usage_error_naming_it(string image, string problem)
    {
        var (code, stdout, err) = await Run("manifests", "static-pod", "--image", image);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("", stdout);
        Assert.Contains($"--image '{image}' is not an image reference", err);
        Assert.Contains(problem, err);
    }

    [Theory]
    [InlineData("crds")]
    [InlineData("rbac")]
    [InlineData("all")] // all is what kubectl applies: CRDs and RBAC, no static pod
    public async Task Image_with_a_kind_without_the_static_pod_is_a_usage_error(string kind)
    {
        var (code, stdout, err) = await Run("manifests", kind, "--image", "localhost/crsc:0.1.0");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("", stdout);
        Assert.Contains($"'{kind}' has no static pod", err);
    }

    [Fact]
    public async Task An_unknown_kind_is_reported_as_such_even_with_image()
    {
        var (code, _, err) = await Run("manifests", "daemonset", "--image", "localhost/crsc:0.1.0");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("unknown manifest kind 'daemonset'", err);
    }

    [Fact]
    public void The_static_pod_has_exactly_one_image_line_to_replace()
    {
        Assert.Equal(StaticPodFile.Replace("ghcr.io/crsc-io/crsc:", "x/y:"), EmbeddedManifests.WithImage(StaticPodFile, "x/y:" + BuildInfo.Version));
        var twice = StaticPodFile + "    - name: second\n      image: busybox\n";
        var e = Assert.Throws<InvalidOperationException>(() => EmbeddedManifests.WithImage(twice, "x/y:1"));
        Assert.Contains("2 'image:' lines", e.Message);
    }

    [Fact]
    public async Task Help_says_no_image_is_published_and_shows_image()
    {
        var (code, stdout, _) = await Run("manifests", "--help");
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("--image REF", stdout);
        Assert.Contains("make image", stdout);
    }
}

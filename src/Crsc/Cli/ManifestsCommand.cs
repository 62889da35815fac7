using Crsc.Manifests;
using Crsc.Storage.Oci;

namespace Crsc.Cli;

internal static class ManifestsCommand
{
    public static CommandSpec Spec() => new("manifests", "Print the Kubernetes manifests embedded in the binary, for `kubectl apply -f -`.")
    {
        Description = "The static pod names the image ghcr.io/crsc-io/crsc:<version> unless --image says otherwise; no image is\n" +
                      "published there: build one with `make image`, import it on each node, and pass its name with --image.",
        Arguments = [new ArgumentSpec("KIND", "crds, rbac, static-pod or all (default all)", Required: false)],
        Options = [new OptionSpec("--image", "REF", "the static pod's image, e.g. localhost/crsc:" + BuildInfo.Version + " (static-pod and all only)")],
        Handler = RunAsync,
        Examples =
        [
            "crsc manifests crds | kubectl apply -f -",
            "crsc manifests all > crsc.yaml",
            "crsc manifests static-pod --image localhost/crsc:" + BuildInfo.Version + " > /etc/kubernetes/manifests/crsc.yaml",
        ],
    };

    public static Task<int> RunAsync(ParsedCommand p, CancellationToken ct)
    {
        var kind = p.Arguments.FirstOrDefault() ?? EmbeddedManifests.All;
        if (!EmbeddedManifests.TryGet(kind, out var yaml))
        {
            p.Error.WriteLine($"crsc: unknown manifest kind '{kind}'; this binary embeds: {string.Join(", ", EmbeddedManifests.Kinds)}");
            return Task.FromResult(ExitCodes.Usage);
        }
        if (p.Value("--image") is { } image)
        {
            if (!ImageReference.TryParse(image, out _, out var problem))
                return Task.FromResult(CliOutput.Usage(p, $"--image '{image}' {problem}"));
            if (!EmbeddedManifests.HasStaticPod(kind))
                return Task.FromResult(CliOutput.Usage(p, $"--image sets the static pod's image, and '{kind}' has no static pod (use static-pod or all)"));
            EmbeddedManifests.TryGet(kind, out yaml, staticPodImage: image);
        }
        p.Out.Write(yaml);
        if (!yaml.EndsWith('\n')) p.Out.WriteLine();
        return Task.FromResult(ExitCodes.Ok);
    }
}

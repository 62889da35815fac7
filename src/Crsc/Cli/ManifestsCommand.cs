using Crsc.Manifests;
using Crsc.Storage.Oci;

namespace Crsc.Cli;

internal static class ManifestsCommand
{
    public static CommandSpec Spec() => new("manifests", "Print the Kubernetes manifests embedded in the binary (CRDs and RBAC for `kubectl apply -f -`).")
    {
        Description = "all (the default) is what one applies to the cluster: the CRDs, then the namespace and RBAC.\n" +
                      "The static pod is not part of it: it runs crsc on a node from the kubelet's manifests directory,\n" +
                      "and `kubectl apply` would only make it a plain Pod; print it with `crsc manifests static-pod`.\n" +
                      "The static pod names the image ghcr.io/crsc-io/crsc:<version> unless --image says otherwise; no image is\n" +
                      "published there: build one with `make image`, import it on each node, and pass its name with --image.",
        Arguments = [new ArgumentSpec("KIND", "all (CRDs and RBAC; the default), crds, rbac or static-pod", Required: false)],
        Options = [new OptionSpec("--image", "REF", "the static pod's image, e.g. localhost/crsc:" + BuildInfo.Version + " (static-pod only)")],
        Handler = RunAsync,
        Examples =
        [
            "crsc manifests | kubectl apply -f -",
            "crsc manifests crds | kubectl apply -f -",
            "crsc manifests static-pod --image localhost/crsc:" + BuildInfo.Version + " > /etc/kubernetes/manifests/crsc.yaml",
        ],
    };

    public static Task<int> RunAsync(ParsedCommand p, CancellationToken ct)
    {
        var kind = p.Arguments.FirstOrDefault() ?? EmbeddedManifests.All;
        if (!EmbeddedManifests.TryGet(kind, out var yaml))
        {
            p.Error.WriteLine($"crsc: unknown manifest kind '{kind}'{Suggestions.DidYouMean(kind, EmbeddedManifests.Kinds)}; this binary embeds: {string.Join(", ", EmbeddedManifests.Kinds)}");
            return Task.FromResult(ExitCodes.Usage);
        }
        if (p.Value("--image") is { } image)
        {
            if (!ImageReference.TryParse(image, out _, out var problem))
                return Task.FromResult(CliOutput.Usage(p, $"--image '{image}' {problem}"));
            if (!EmbeddedManifests.HasStaticPod(kind))
                return Task.FromResult(CliOutput.Usage(p, $"--image sets the static pod's image, and '{kind}' has no static pod (use static-pod)"));
            EmbeddedManifests.TryGet(kind, out yaml, staticPodImage: image);
        }
        p.Out.Write(yaml);
        if (!yaml.EndsWith('\n')) p.Out.WriteLine();
        return Task.FromResult(ExitCodes.Ok);
    }
}

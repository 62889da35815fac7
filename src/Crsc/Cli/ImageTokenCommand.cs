using Crsc.Storage.Oci;
using Crsc.Storage.Security;

namespace Crsc.Cli;

/// <summary>
/// <c>crsc image-token REPOSITORY</c>: a pull token for one repository of crsc's image endpoint, made with this node's
/// key (root: the key is 0600 under <c>stateDir</c>). For an admin who pulls a checkpoint image by hand (e.g.
/// <c>crictl pull --creds crsc-restore:TOKEN …</c>) and for tests; node agents mint their own for restores.
/// </summary>
internal static class ImageTokenCommand
{
    public static CommandSpec Spec() => new("image-token", "Print a short-lived pull token for one checkpoint image repository.")
    {
        Description = "crsc's image endpoint (images.listen) serves a repository only to a caller with a token for it.\n" +
                      "The token is made with the node key (<stateDir>/keys/node.key, so this needs crsc's user, root)\n" +
                      "and opens REPOSITORY (crsc/<namespace>/<workload>/<container>) until it expires, nothing else.\n" +
                      $"Send it as the password of Basic auth (user {PullTokens.UserName}) or as a Bearer token.",
        Arguments = [new ArgumentSpec("REPOSITORY", "crsc/<namespace>/<workload>/<container>, or a whole image reference")],
        Options =
        [
            new OptionSpec("--ttl", "DURATION", $"how long the token lives (default {(int)PullTokens.DefaultLifetime.TotalMinutes}m, at most 24h)"),
            .. CliNode.ConfigFlags("--state-dir"),
        ],
        Handler = RunAsync,
        Examples =
        [
            "crsc image-token crsc/shop/cart/cart",
            "crictl pull --creds crsc-restore:$(crsc image-token crsc/shop/cart/cart --ttl 5m) 127.0.0.1:5055/crsc/shop/cart/cart:<id>",
        ],
    };

    public static Task<int> RunAsync(ParsedCommand p, CancellationToken ct)
    {
        var argument = p.Arguments[0];
        var repository = argument;
        if (!CheckpointImageNames.TryParseRepository(repository, out _)
            && ImageReference.TryParse(argument, out var reference, out _) && reference.Domain is not null)
            repository = reference.Path;
        if (!CheckpointImageNames.TryParseRepository(repository, out _))
            return Task.FromResult(CliOutput.Usage(p, $"'{argument}' is not a checkpoint image repository (crsc/<namespace>/<workload>/<container>)"));
        var ttl = PullTokens.DefaultLifetime;
        if (p.Value("--ttl") is { } t && (!CliOutput.TryParseDuration(t, out ttl) || ttl <= TimeSpan.Zero || ttl > PullTokens.MaxLifetime))
            return Task.FromResult(CliOutput.Usage(p, CliOutput.DurationProblem("--ttl", t, "a duration from 1s to 24h (e.g. 10m)")));
        var options = CliNode.LoadOptions(p);
        if (options is null) return Task.FromResult(ExitCodes.Config);
        NodeKey key;
        try { key = NodeKey.Load(NodeKey.PathIn(options.StateDir)); }
        catch (SecretFileException e)
        {
            return Task.FromResult(CliOutput.Fail(p, $"cannot use the node key: {e.Message}" +
                (e.Problem.Contains("permission denied", StringComparison.Ordinal) ? "; it is root's only (try sudo)" : "")));
        }
        p.Out.WriteLine(new PullTokens(key).Mint(repository, ttl));
        return Task.FromResult(ExitCodes.Ok);
    }
}

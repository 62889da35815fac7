using Crsc.Manifests;

namespace Crsc.Cli;

internal static class ManifestsCommand
{
    public static Task<int> RunAsync(ParsedCommand p, CancellationToken ct)
    {
        var kind = p.Arguments.FirstOrDefault() ?? EmbeddedManifests.All;
        if (!EmbeddedManifests.TryGet(kind, out var yaml))
        {
            p.Error.WriteLine($"crsc: unknown manifest kind '{kind}'{Suggestions.DidYouMean(kind, EmbeddedManifests.Kinds)}; this binary embeds: {string.Join(", ", EmbeddedManifests.Kinds)}");
            return Task.FromResult(ExitCodes.Usage);
        }
        p.Out.Write(yaml);
        if (!yaml.EndsWith('\n')) p.Out.WriteLine();
        return Task.FromResult(ExitCodes.Ok);
    }
}

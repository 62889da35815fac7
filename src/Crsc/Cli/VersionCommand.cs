namespace Crsc.Cli;

internal static class VersionCommand
{
    public static Task<int> RunAsync(ParsedCommand p, CancellationToken ct)
    {
        if (p.Has("--short")) p.Out.WriteLine(BuildInfo.Version);
        else p.Out.WriteLine($"crsc {BuildInfo.Version} (commit {BuildInfo.Commit}, {BuildInfo.Flavour}, {BuildInfo.Framework})");
        return Task.FromResult(ExitCodes.Ok);
    }
}

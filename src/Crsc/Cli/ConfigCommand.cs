using Crsc.Configuration;

namespace Crsc.Cli;

internal static class ConfigCommand
{
    public static Task<int> CheckAsync(ParsedCommand p, CancellationToken ct)
    {
        // a FILE the user named and that is not there: nothing to check, and no table of defaults that looks like a result
        if (p.Arguments.FirstOrDefault() is { } named && !File.Exists(named))
        {
            p.Error.WriteLine($"crsc: cannot check {named}: {(Directory.Exists(named) ? "it is a directory, not a file" : "no such file")}");
            return Task.FromResult(ExitCodes.Config);
        }
        var file = p.Arguments.FirstOrDefault() ?? p.Value("--config");
        var result = ConfigLoader.Load(file, Commands.ProcessEnvironment(), Commands.ConfigFlagValues(p));
        p.Out.WriteLine($"# configuration file: {result.File ?? "(none; defaults)"}");
        var width = ConfigKeys.All.Max(k => k.YamlPath.Length) + 1;
        foreach (var key in ConfigKeys.All)
        {
            var value = key.Get(result.Options);
            p.Out.WriteLine($"{(key.YamlPath + ":").PadRight(width)} {Quote(value),-40} # {result.Sources[key.YamlPath]}");
        }
        if (result.IsValid)
        {
            p.Out.WriteLine("# configuration is valid");
            return Task.FromResult(ExitCodes.Ok);
        }
        foreach (var e in result.Errors) p.Error.WriteLine($"crsc: invalid configuration: {e}");
        return Task.FromResult(ExitCodes.Config);
    }

    private static string Quote(string v) => v.Length == 0 || v.Any(c => char.IsWhiteSpace(c) || c is ':' or '#' or '"' or '\'')
        ? "\"" + v.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\""
        : v;
}

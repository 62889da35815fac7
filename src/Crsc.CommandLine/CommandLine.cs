using System.Text;

namespace Crsc.Cli;

/// <summary>Process exit codes crsc uses (sysexits where one fits).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    /// <summary>Bad usage: unknown verb or flag, missing or extra argument.</summary>
    public const int Usage = 2;
    /// <summary>EX_CONFIG: the configuration is invalid.</summary>
    public const int Config = 78;
}

/// <summary>An option of a command: <c>--name VALUE</c>, <c>--name=VALUE</c>, or a switch without a value.</summary>
public sealed record OptionSpec(string Name, string? ValueName, string Help, string? Short = null)
{
    public bool TakesValue => ValueName is not null;
}

/// <summary>A positional argument; a <paramref name="Variadic"/> one (the last) takes every word left (<c>crsc run -- CMD ARGS…</c>).</summary>
public sealed record ArgumentSpec(string Name, string Help, bool Required = true, bool Variadic = false);

/// <summary>A verb (or a group of verbs) of the crsc command line; the root's name is the executable's.</summary>
public sealed class CommandSpec(string name, string summary)
{
    public string Name { get; } = name;
    public string Summary { get; } = summary;
    public string? Description { get; init; }
    public List<OptionSpec> Options { get; init; } = [];
    public List<ArgumentSpec> Arguments { get; init; } = [];
    public List<CommandSpec> Subcommands { get; init; } = [];
    public Func<ParsedCommand, CancellationToken, Task<int>>? Handler { get; init; }
    public List<string> Examples { get; init; } = [];
    /// <summary>Runs when named but is left out of help and of the list of commands (build tooling, not for operators).</summary>
    public bool Hidden { get; init; }
}

/// <summary>What the parser found for one invocation.</summary>
public sealed class ParsedCommand(CommandSpec command, string path, TextWriter stdout, TextWriter stderr)
{
    public CommandSpec Command { get; } = command;
    /// <summary>"crsc config check"</summary>
    public string Path { get; } = path;
    /// <summary>The executable's name, which starts every message: "crsc" (or "crsc-interceptor").</summary>
    public string Program => Path.Split(' ')[0];
    public Dictionary<string, string> Values { get; } = new(StringComparer.Ordinal);
    public HashSet<string> Switches { get; } = new(StringComparer.Ordinal);
    public List<string> Arguments { get; } = [];
    public TextWriter Out { get; } = stdout;
    public TextWriter Error { get; } = stderr;

    public string? Value(string option) => Values.GetValueOrDefault(option);
    public bool Has(string option) => Switches.Contains(option) || Values.ContainsKey(option);
}

/// <summary>
/// A small, strict, AOT-clean command-line parser: verbs and sub-verbs, long options with values,
/// switches, positional arguments, <c>--help</c> everywhere. Anything unknown is a usage error (exit 2)
/// with a message that names it, suggests the closest known name, and says where help is.
/// </summary>
public sealed class CommandLineParser(CommandSpec root, TextWriter stdout, TextWriter stderr)
{
    public static readonly OptionSpec Help = new("--help", null, "show help for this command", "-h");

    /// <summary>The verb <c>crsc help [COMMAND [SUBCOMMAND]]</c>: the same help as <c>crsc COMMAND --help</c>.</summary>
    public const string HelpVerb = "help";

    /// <summary>The spec of <see cref="HelpVerb"/>, for the root's list of commands; the parser answers it itself.</summary>
    public static CommandSpec HelpCommand() => new(HelpVerb, "Show help for a command (the same as COMMAND --help).")
    {
        Arguments = [new ArgumentSpec("COMMAND", "a command, or a command and its sub-command (e.g. config check)", Required: false)],
        Examples = ["crsc help", "crsc help gc", "crsc help config check"],
    };

    public async Task<int> RunAsync(string[] args, CancellationToken ct)
    {
        var command = root;
        var path = root.Name;
        var parsed = new ParsedCommand(command, path, stdout, stderr);
        var options = new List<OptionSpec>(root.Options);
        var i = 0;
        var onlyArguments = false;
        for (; i < args.Length; i++)
        {
            var arg = args[i];
            if (!onlyArguments && arg == "--") { onlyArguments = true; continue; }
            if (!onlyArguments && arg.StartsWith('-') && arg.Length > 1)
            {
                var eq = arg.IndexOf('=');
                var name = eq > 0 ? arg[..eq] : arg;
                if (name is "--help" or "-h")
                {
                    stdout.Write(HelpText(command, path));
                    return ExitCodes.Ok;
                }
                var spec = options.FirstOrDefault(o => o.Name == name || o.Short == name);
                if (spec is null)
                    return Usage($"unknown option '{name}' for '{path}'{Suggestions.DidYouMean(name, command.Options.Append(Help).Select(o => o.Name))}", path);
                if (spec.TakesValue)
                {
                    string value;
                    if (eq > 0) value = arg[(eq + 1)..];
                    else if (i + 1 < args.Length) value = args[++i];
                    else return Usage($"option '{spec.Name}' of '{path}' needs a value ({spec.ValueName})", path);
                    parsed.Values[spec.Name] = value;
                }
                else
                {
                    if (eq > 0) return Usage($"option '{spec.Name}' of '{path}' takes no value", path);
                    parsed.Switches.Add(spec.Name);
                }
                continue;
            }
            // a word: a sub-verb while the command has sub-verbs and no argument was taken yet
            if (!onlyArguments && command.Subcommands.Count > 0 && parsed.Arguments.Count == 0)
            {
                var sub = command.Subcommands.FirstOrDefault(c => c.Name == arg);
                if (sub is null) return UnknownCommand(arg, command, path);
                if (command == root && sub.Name == HelpVerb) return ShowHelp(sub, args[(i + 1)..]);
                command = sub;
                path += " " + sub.Name;
                var carried = parsed;
                parsed = new ParsedCommand(command, path, stdout, stderr);
                foreach (var (k, v) in carried.Values) parsed.Values[k] = v;
                foreach (var s in carried.Switches) parsed.Switches.Add(s);
                options.AddRange(sub.Options);
                continue;
            }
            parsed.Arguments.Add(arg);
        }

        if (command.Handler is null)
        {
            // a group of verbs given without one
            stderr.Write(HelpText(command, path));
            return ExitCodes.Usage;
        }
        // an option given before the verb (the root's --config) that this verb does not read is refused, not ignored
        foreach (var name in parsed.Values.Keys.Concat(parsed.Switches))
            if (!command.Options.Any(o => o.Name == name))
                return Usage($"option '{name}' does not apply to '{path}'", path);
        var required = command.Arguments.Count(a => a.Required);
        if (parsed.Arguments.Count < required)
            return Usage($"'{path}' needs {string.Join(" ", command.Arguments.Where(a => a.Required).Skip(parsed.Arguments.Count).Select(a => a.Name))}", path);
        if (parsed.Arguments.Count > command.Arguments.Count && command.Arguments is not [.., { Variadic: true }])
            return Usage($"'{path}' takes {(command.Arguments.Count == 0 ? "no arguments" : "at most " + command.Arguments.Count + " argument(s)")}, got '{string.Join(" ", parsed.Arguments.Skip(command.Arguments.Count))}'", path);
        return await command.Handler(parsed, ct);
    }

    /// <summary><c>crsc help WORD...</c>: the help of the command the words name, on stdout, exit 0.</summary>
    private int ShowHelp(CommandSpec helpVerb, string[] words)
    {
        var command = root;
        var path = root.Name;
        foreach (var word in words)
        {
            if (word is "--help" or "-h") return ShowHelp(helpVerb, [HelpVerb]);
            if (word.StartsWith('-'))
                return Usage($"'{root.Name} {HelpVerb}' takes command names, not options ('{word}')", $"{root.Name} {HelpVerb}");
            var sub = command.Subcommands.FirstOrDefault(c => c.Name == word);
            if (sub is null)
            {
                if (command.Subcommands.Count > 0) return UnknownCommand(word, command, path);
                return Usage($"'{path}' has no sub-commands; '{word}' is not one", $"{root.Name} {HelpVerb}");
            }
            command = sub;
            path += " " + sub.Name;
        }
        stdout.Write(HelpText(command, path));
        return ExitCodes.Ok;
    }

    private int UnknownCommand(string word, CommandSpec command, string path)
    {
        var names = command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name).ToList();
        return Usage($"unknown command '{word}' for '{path}'{Suggestions.DidYouMean(word, names)}; commands: {string.Join(", ", names)}", path);
    }

    private int Usage(string message, string path)
    {
        stderr.WriteLine($"{root.Name}: {message}");
        stderr.WriteLine($"Run '{path} --help' for usage.");
        return ExitCodes.Usage;
    }

    public string HelpText(CommandSpec command, string path)
    {
        var sb = new StringBuilder();
        sb.AppendLine(command.Summary);
        if (command.Description is { } d) sb.AppendLine().AppendLine(d);
        sb.AppendLine().Append("Usage: ").Append(path);
        if (command.Subcommands.Count > 0) sb.Append(" COMMAND");
        if (command.Options.Count > 0 || command == root) sb.Append(" [options]");
        foreach (var a in command.Arguments)
            sb.Append(a.Variadic ? (a.Required ? $" -- {a.Name}..." : $" [-- {a.Name}...]") : a.Required ? $" {a.Name}" : $" [{a.Name}]");
        sb.AppendLine();
        var listed = command.Subcommands.Where(c => !c.Hidden).ToList();
        if (listed.Count > 0)
        {
            sb.AppendLine().AppendLine("Commands:");
            var w = listed.Max(c => c.Name.Length) + 2;
            foreach (var c in listed) sb.Append("  ").Append(c.Name.PadRight(w)).AppendLine(c.Summary);
        }
        if (command.Arguments.Count > 0)
        {
            sb.AppendLine().AppendLine("Arguments:");
            var w = command.Arguments.Max(a => a.Name.Length) + 2;
            foreach (var a in command.Arguments) sb.Append("  ").Append(a.Name.PadRight(w)).AppendLine(a.Help);
        }
        // a verb lists only the options it honours (it repeats the root's --config when it reads configuration)
        var opts = command.Options.Append(Help).ToList();
        sb.AppendLine().AppendLine("Options:");
        var names = opts.Select(o => (o.Short is null ? "" : o.Short + ", ") + o.Name + (o.ValueName is null ? "" : " " + o.ValueName)).ToList();
        var width = names.Max(n => n.Length) + 2;
        for (var k = 0; k < opts.Count; k++) sb.Append("  ").Append(names[k].PadRight(width)).AppendLine(opts[k].Help);
        if (command.Examples.Count > 0)
        {
            sb.AppendLine().AppendLine("Examples:");
            foreach (var e in command.Examples) sb.Append("  ").AppendLine(e);
        }
        return sb.ToString();
    }
}

using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Crsc.Kube;

/// <summary>A YAML document used an anchor (<c>&amp;a</c>) or an alias (<c>*a</c>), which crsc refuses in
/// its configuration and in kubeconfigs.</summary>
public sealed class YamlAliasException(Mark start, string message) : YamlException(start, start, message)
{
    /// <summary>The refusal without YamlDotNet's position prefix.</summary>
    public string Reason { get; } = message;
}

/// <summary>
/// Loads YAML into the representation model, refusing anchors and aliases at the parser event level,
/// before the representation model can expand them: a recursive alias builds a cyclic graph that
/// overflows the stack when walked (SIGSEGV under AOT) and a few hundred bytes of nested aliases
/// expand into gigabytes. Neither crsc's configuration nor a kubeconfig needs them.
/// </summary>
public static class AliasFreeYaml
{
    /// <exception cref="YamlAliasException">the text holds an anchor or an alias</exception>
    /// <exception cref="YamlException">the text is not valid YAML</exception>
    public static YamlStream Load(TextReader reader)
    {
        var stream = new YamlStream();
        stream.Load(new RefusingParser(new Parser(reader)));
        return stream;
    }

    private sealed class RefusingParser(IParser inner) : IParser
    {
        public ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            if (!inner.MoveNext()) return false;
            switch (inner.Current)
            {
                case AnchorAlias alias:
                    throw new YamlAliasException(alias.Start,
                        $"uses the YAML alias *{alias.Value} at line {alias.Start.Line}, column {alias.Start.Column}; anchors and aliases are not accepted, write the value out");
                case NodeEvent { Anchor.IsEmpty: false } node:
                    throw new YamlAliasException(node.Start,
                        $"uses the YAML anchor &{node.Anchor} at line {node.Start.Line}, column {node.Start.Column}; anchors and aliases are not accepted, write the value out");
            }
            return true;
        }
    }
}

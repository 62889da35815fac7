using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace Crsc.Storage.Oci;

/// <summary>
/// An image reference as runtimes parse it (the grammar of distribution/reference, which containerd, CRI-O and the
/// kubelet use): <c>[domain[:port]/]path[:tag][@digest]</c>. The first component is the domain when it contains a
/// <c>.</c> or a <c>:</c>, or is <c>localhost</c>; otherwise the whole name is the path (Docker Hub's).
/// </summary>
public sealed partial record ImageReference(string? Domain, string Path, string? Tag, string? Digest)
{
    /// <summary>The longest name (domain and path) the grammar allows.</summary>
    public const int MaxNameLength = 255;

    /// <exception cref="FormatException">not an image reference (the message names the value and what is wrong)</exception>
    public static ImageReference Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return TryParse(value, out var reference, out var problem) ? reference : throw new FormatException($"'{value}' {problem}");
    }

    /// <param name="problem">why <paramref name="value"/> is not an image reference (without the value itself)</param>
    public static bool TryParse(string? value, [NotNullWhen(true)] out ImageReference? reference, [NotNullWhen(false)] out string? problem)
    {
        reference = null;
        problem = Problem(value, out var domain, out var path, out var tag, out var digest);
        if (problem is not null) return false;
        reference = new ImageReference(domain, path!, tag, digest);
        return true;
    }

    private static string? Problem(string? value, out string? domain, out string? path, out string? tag, out string? digest)
    {
        domain = path = tag = digest = null;
        if (string.IsNullOrEmpty(value)) return "is not an image reference: it is empty";
        if (value.Contains("://", StringComparison.Ordinal))
            return "is not an image reference: it has a URL scheme (write registry.example/crsc:0.1.0, not https://…)";
        if (value.Any(char.IsWhiteSpace)) return "is not an image reference: it contains white space";
        var name = value;
        var at = name.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            digest = name[(at + 1)..];
            name = name[..at];
            if (!DigestPattern().IsMatch(digest)) return $"is not an image reference: '{digest}' is not a digest (algorithm:hex, e.g. sha256:…)";
        }
        var slash = name.LastIndexOf('/');
        var colon = name.LastIndexOf(':');
        if (colon > slash)
        {
            tag = name[(colon + 1)..];
            name = name[..colon];
            if (!RegistryNames.IsTag(tag))
                return $"is not an image reference: tag '{tag}' must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'";
        }
        if (name.Length == 0) return "is not an image reference: it has no repository name";
        if (name.Length > MaxNameLength) return $"is not an image reference: its name is longer than {MaxNameLength} characters";
        var first = name.IndexOf('/');
        if (first > 0 && name[..first] is var head && (head.Contains('.') || head.Contains(':') || head == "localhost" || head.Any(char.IsUpper)))
        {
            domain = head;
            name = name[(first + 1)..];
            if (!RegistryNames.IsHost(domain)) return $"is not an image reference: '{domain}' is not a registry host[:port]";
        }
        if (!RegistryNames.IsRepository(name))
            return $"is not an image reference: repository '{name}' must be lower-case letters and digits, separated by '.', '_', '__', '-' or '/'";
        path = name;
        return null;
    }

    public override string ToString() =>
        (Domain is null ? "" : Domain + "/") + Path + (Tag is null ? "" : ":" + Tag) + (Digest is null ? "" : "@" + Digest);

    [GeneratedRegex(@"^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}\z", RegexOptions.CultureInvariant)]
    private static partial Regex DigestPattern();
}

namespace Crsc.Controllers.Restores;

/// <summary>
/// Compares image references the way a runtime resolves them: <c>nginx</c>, <c>docker.io/library/nginx</c> and
/// <c>docker.io/library/nginx:latest</c> name the same image. The kubelet keeps the spelling of the pod spec, the
/// runtime records the normalized one in a checkpoint, so a plain string comparison would call them different.
/// </summary>
public static class ImageNames
{
    private const string DefaultDomain = "docker.io";

    /// <summary>The fully qualified form: <c>domain/path[:tag][@digest]</c>, <c>:latest</c> when neither is given.</summary>
    public static string Normalize(string image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var text = image.Trim();
        string? digest = null;
        var at = text.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            digest = text[(at + 1)..];
            text = text[..at];
        }

        string domain, path;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var first = slash < 0 ? "" : text[..slash];
        if (slash >= 0 && (first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal)
            || first == "localhost" || first.Any(char.IsUpper)))
        {
            domain = first;
            path = text[(slash + 1)..];
        }
        else
        {
            domain = DefaultDomain;
            path = text;
        }
        if (domain == "index.docker.io") domain = DefaultDomain;
        if (domain == DefaultDomain && !path.Contains('/', StringComparison.Ordinal)) path = "library/" + path;

        var lastSlash = path.LastIndexOf('/');
        var hasTag = path.IndexOf(':', lastSlash + 1) >= 0;
        if (!hasTag && digest is null) path += ":latest";
        return digest is null ? $"{domain}/{path}" : $"{domain}/{path}@{digest}";
    }

    /// <summary>
    /// Whether <paramref name="a"/> and <paramref name="b"/> name the same image: equal once normalized, or the same
    /// repository pinned to the same digest (a tag beside a digest does not matter, the digest wins).
    /// </summary>
    public static bool Same(string? a, string? b)
    {
        if (string.IsNullOrWhiteSpace(a) || string.IsNullOrWhiteSpace(b)) return false;
        var x = Normalize(a);
        var y = Normalize(b);
        if (string.Equals(x, y, StringComparison.Ordinal)) return true;
        var (repoX, digestX) = RepositoryAndDigest(x);
        var (repoY, digestY) = RepositoryAndDigest(y);
        return digestX is not null && digestX == digestY && repoX == repoY;
    }

    private static (string Repository, string? Digest) RepositoryAndDigest(string normalized)
    {
        var at = normalized.IndexOf('@', StringComparison.Ordinal);
        var name = at < 0 ? normalized : normalized[..at];
        var digest = at < 0 ? null : normalized[(at + 1)..];
        var lastSlash = name.LastIndexOf('/');
        var colon = name.IndexOf(':', lastSlash + 1);
        return (colon < 0 ? name : name[..colon], digest);
    }
}

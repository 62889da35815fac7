using System.Text.RegularExpressions;

namespace Crsc.Storage.Oci;

public enum OciRouteKind
{
    /// <summary><c>/v2/</c>: the API version check.</summary>
    Base,
    /// <summary><c>/v2/&lt;name&gt;/manifests/&lt;reference&gt;</c></summary>
    Manifest,
    /// <summary><c>/v2/&lt;name&gt;/blobs/&lt;digest&gt;</c></summary>
    Blob,
    /// <summary><c>/v2/&lt;name&gt;/tags/list</c></summary>
    Tags,
    /// <summary>Anything else.</summary>
    Unknown,
}

/// <summary>A request path of the OCI distribution API, taken apart (the name may contain '/', the reference never).</summary>
public readonly partial record struct OciRoute(OciRouteKind Kind, string Name = "", string Reference = "")
{
    private const string Root = "/v2";

    public static OciRoute Parse(string? path)
    {
        if (path is null || !path.StartsWith(Root, StringComparison.Ordinal)) return new(OciRouteKind.Unknown);
        if (path is Root or Root + "/") return new(OciRouteKind.Base);
        if (path[Root.Length] != '/') return new(OciRouteKind.Unknown);
        var parts = path[(Root.Length + 1)..].Split('/');
        if (parts.Length < 3) return new(OciRouteKind.Unknown);
        var name = string.Join('/', parts[..^2]);
        return parts[^2] switch
        {
            "manifests" => new(OciRouteKind.Manifest, name, parts[^1]),
            "blobs" => new(OciRouteKind.Blob, name, parts[^1]),
            "tags" when parts[^1] == "list" => new(OciRouteKind.Tags, name),
            _ => new(OciRouteKind.Unknown, name),
        };
    }

    /// <summary>The repository name grammar of the distribution spec (path components of lower-case alphanumerics and separators).</summary>
    public static bool IsValidName(string name) => name.Length is > 0 and <= CheckpointImageNames.MaxNameLength && NameGrammar().IsMatch(name);

    [GeneratedRegex("^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*\\z", RegexOptions.CultureInvariant)]
    private static partial Regex NameGrammar();
}

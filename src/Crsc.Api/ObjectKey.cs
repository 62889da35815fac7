namespace Crsc.Api;

/// <summary>The identity of a Kubernetes object: namespace (null for cluster-scoped) and name.</summary>
public readonly record struct ObjectKey(string? Namespace, string Name)
{
    public static ObjectKey Cluster(string name) => new(null, name);

    /// <summary>Parses <c>ns/name</c> or <c>name</c> (cluster-scoped).</summary>
    public static ObjectKey Parse(string text)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        var slash = text.IndexOf('/');
        if (slash < 0) return new ObjectKey(null, text);
        if (slash == 0 || slash == text.Length - 1 || text.IndexOf('/', slash + 1) >= 0)
            throw new FormatException($"'{text}' is not an object key (expected NAMESPACE/NAME or NAME)");
        return new ObjectKey(text[..slash], text[(slash + 1)..]);
    }

    public override string ToString() => Namespace is null ? Name : $"{Namespace}/{Name}";
}

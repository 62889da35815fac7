using Crsc.Api.Crds;

namespace Crsc.Controllers.Restores;

/// <summary>One place a checkpoint image can be fetched from, for <see cref="Storage.ICheckpointTransfer"/>.</summary>
/// <param name="Node">the node whose endpoint serves it (a peer); null for the registry</param>
internal sealed record FetchSource(string ImageReference, bool FromPeer, string? Node)
{
    public string Describe() => Node is null ? $"the registry copy {ImageReference}" : $"node {Node} ({ImageReference})";
}

/// <summary>Where a checkpoint can come from, in the order to try, and the places left out with why.</summary>
internal sealed record FetchSources(IReadOnlyList<FetchSource> Sources, IReadOnlyList<string> LeftOut, bool HasRegistryCopy);

/// <summary>
/// Where a node finds a checkpoint taken elsewhere (the archive of a ContainerCheckpointContent and its
/// <c>status.copies</c>), and which image a node restores from.
/// </summary>
internal static class RestoreFromSources
{
    /// <summary>
    /// Whether <paramref name="node"/>'s store holds the archive already: the Content's own node, or a Node copy recorded
    /// there.
    /// </summary>
    public static bool HeldBy(ContainerCheckpointContent content, string node) =>
        content.Spec.Node == node || LocalCopy(content, node) is not null;

    /// <summary>The Node copy on <paramref name="node"/> recorded on the Content (the newest), if any.</summary>
    public static CheckpointCopy? LocalCopy(ContainerCheckpointContent content, string node) =>
        content.Status?.Copies?.LastOrDefault(c => c.Kind == CheckpointCopyKind.Node && c.Node == node && c.ImageReference.Length > 0);

    /// <summary>The registry copies recorded on the Content, oldest first.</summary>
    public static IEnumerable<CheckpointCopy> RegistryCopies(ContainerCheckpointContent content) =>
        content.Status?.Copies?.Where(c => c.Kind == CheckpointCopyKind.Registry && c.ImageReference.Length > 0) ?? [];

    /// <summary>
    /// The sources to fetch the archive from for <paramref name="here"/>: the registry copies first (they outlive any
    /// node), then the node that took it (unless it is gone, <paramref name="whyGone"/>), then the other nodes that hold a
    /// copy, the newest copy first (unless gone). The places left out say why.
    /// </summary>
    /// <param name="whyGone">why a node is gone (it cannot serve), or null when it is there</param>
    public static FetchSources For(ContainerCheckpointContent content, string here, Func<string, string?> whyGone)
    {
        var sources = new List<FetchSource>();
        var leftOut = new List<string>();
        var registry = RegistryCopies(content).Select(c => c.ImageReference).Distinct(StringComparer.Ordinal).ToList();
        sources.AddRange(registry.Select(r => new FetchSource(r, FromPeer: false, Node: null)));

        var origin = content.Spec.Node;
        if (string.IsNullOrWhiteSpace(content.Spec.ImageReference))
            leftOut.Add($"node {origin} holds it but has not published it as an image (ContainerCheckpointContent {content.Metadata.Name} has no spec.imageReference)");
        else if (whyGone(origin) is { } gone)
            leftOut.Add($"node {origin}, which took it, is gone ({gone})");
        else
            sources.Add(new FetchSource(content.Spec.ImageReference, FromPeer: true, origin));

        var seen = new HashSet<string>(StringComparer.Ordinal) { origin, here };
        foreach (var copy in (content.Status?.Copies ?? []).Where(c => c.Kind == CheckpointCopyKind.Node && c.ImageReference.Length > 0)
                     .Reverse())
        {
            if (copy.Node is not { Length: > 0 } node || !seen.Add(node)) continue;
            if (whyGone(node) is { } gone) leftOut.Add($"node {node}, which holds a copy, is gone ({gone})");
            else sources.Add(new FetchSource(copy.ImageReference, FromPeer: true, node));
        }
        return new FetchSources(sources, leftOut, registry.Count > 0);
    }

    /// <summary>
    /// The checkpoint image a pod on <paramref name="node"/> restores from: the copy in that node's own store, else the
    /// image of the node that took it, else — when that node is gone (<paramref name="isGone"/>) or never published an
    /// image — a registry copy; null when there is none of these.
    /// </summary>
    public static (string Image, string From)? ImageFor(ContainerCheckpointContent content, string? node, Func<string, bool>? isGone)
    {
        var origin = content.Spec.Node;
        if (node is { Length: > 0 } && node != origin && LocalCopy(content, node) is { } local)
            return (local.ImageReference, $"its copy on node {node}");
        var published = !string.IsNullOrWhiteSpace(content.Spec.ImageReference);
        if ((!published || (node != origin && isGone?.Invoke(origin) == true))
            && RegistryCopies(content).LastOrDefault() is { } registry)
            return (registry.ImageReference, published ? $"its registry copy (node {origin}, which took it, is gone)" : "its registry copy");
        return published ? (content.Spec.ImageReference!, $"node {origin}") : null;
    }

    /// <summary>
    /// Adds (or renews) the Node copy of <paramref name="node"/>: one per node, at most
    /// <see cref="ContainerCheckpointContentStatus.MaxCopies"/> (the oldest Node copies of other nodes go first; registry
    /// copies stay). False when the Content records that copy already.
    /// </summary>
    public static bool RecordCopy(ContainerCheckpointContent content, string node, string image, DateTimeOffset at)
    {
        var status = content.Status ??= new ContainerCheckpointContentStatus();
        var copies = status.Copies ??= [];
        if (copies.Count(c => c.Kind == CheckpointCopyKind.Node && c.Node == node) == 1
            && copies.Single(c => c.Kind == CheckpointCopyKind.Node && c.Node == node).ImageReference == image)
            return false;
        copies.RemoveAll(c => c.Kind == CheckpointCopyKind.Node && c.Node == node);
        copies.Add(new CheckpointCopy { Kind = CheckpointCopyKind.Node, Node = node, ImageReference = image, CopiedAt = at });
        while (copies.Count > ContainerCheckpointContentStatus.MaxCopies)
        {
            var oldest = copies.Where(c => c.Kind == CheckpointCopyKind.Node && c.Node != node)
                .OrderBy(c => c.CopiedAt ?? DateTimeOffset.MinValue).FirstOrDefault();
            if (oldest is null) break;
            copies.Remove(oldest);
        }
        return true;
    }
}

using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;

namespace Crsc.Manifests;

/// <summary>
/// The Kubernetes manifests the binary carries (packaging/kubernetes/**.yaml, embedded at build time)
/// for <c>crsc manifests crds|rbac|static-pod|all</c>; <c>all</c> (CRDs and RBAC) → <c>kubectl apply -f -</c>,
/// <c>static-pod</c> → a node's <c>/etc/kubernetes/manifests/</c>.
/// </summary>
/// <remarks>
/// Resources are named <c>manifests/&lt;path under packaging/kubernetes&gt;</c> (see Crsc.csproj).
/// Reading them is <see cref="Assembly.GetManifestResourceStream(string)"/>, which is AOT-safe.
/// Several files are joined as one multi-document YAML stream, each file's text unchanged.
/// </remarks>
internal static partial class EmbeddedManifests
{
    public const string Crds = "crds";
    public const string Rbac = "rbac";
    public const string StaticPod = "static-pod";
    public const string All = "all";

    private const string Prefix = "manifests/";
    private const string CrdPrefix = Prefix + "crds/";
    private const string RbacResource = Prefix + "rbac.yaml";
    private const string StaticPodResource = Prefix + "static-pod.yaml";

    private static readonly Assembly Assembly = typeof(EmbeddedManifests).Assembly;

    private static readonly Lazy<string[]> ResourceNames = new(() =>
    {
        var names = Assembly.GetManifestResourceNames()
            .Select(n => n.Replace('\\', '/'))
            .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal))
            .ToArray();
        Array.Sort(names, StringComparer.Ordinal);
        return names;
    });

    /// <summary>The kinds this binary can print: only those whose files were embedded.</summary>
    public static IReadOnlyList<string> Kinds { get; } = ComputeKinds();

    /// <summary>The manifests of <paramref name="kind"/> (case-insensitive), or false when there are none.</summary>
    /// <param name="staticPodImage">the static pod's image instead of the one in its file (a valid image reference)</param>
    public static bool TryGet(string kind, out string yaml, string? staticPodImage = null)
    {
        ArgumentNullException.ThrowIfNull(kind);
        var files = kind.ToLowerInvariant() switch
        {
            Crds => CrdResources(),
            Rbac => Existing(RbacResource),
            StaticPod => Existing(StaticPodResource),
            // What one applies to the cluster: CRDs first (the API must exist before anything uses it),
            // then the namespace and RBAC. Not the static pod: it belongs in a node's manifests directory,
            // and `kubectl apply` would make it a plain Pod crsc-system/crsc.
            All => [.. CrdResources(), .. Existing(RbacResource)],
            _ => [],
        };
        if (files.Count == 0)
        {
            yaml = "";
            return false;
        }
        yaml = Join(files.Select(f => f == StaticPodResource && staticPodImage is not null ? WithImage(Read(f), staticPodImage) : Read(f)));
        return true;
    }

    /// <summary>Whether <paramref name="kind"/> includes the static pod (what <c>--image</c> applies to).</summary>
    public static bool HasStaticPod(string kind) =>
        kind.ToLowerInvariant() is StaticPod && Existing(StaticPodResource).Count > 0;

    /// <summary>
    /// The static pod's text with its container's <c>image:</c> value replaced, everything else (comments included)
    /// unchanged. The file has exactly one <c>image:</c> line (a test holds it to that).
    /// </summary>
    internal static string WithImage(string staticPod, string image)
    {
        var lines = ImageLine().Matches(staticPod);
        if (lines.Count != 1)
            throw new InvalidOperationException($"the embedded static-pod manifest has {lines.Count} 'image:' lines; expected one");
        var value = lines[0].Groups["value"];
        // a reference never needs quoting in YAML but one with an IPv6 registry ("[::1]:5000/crsc") starts a flow sequence
        var scalar = image.StartsWith('[') ? $"\"{image}\"" : image;
        return string.Concat(staticPod.AsSpan(0, value.Index), scalar, staticPod.AsSpan(value.Index + value.Length));
    }

    [GeneratedRegex(@"^[ \t]+(- )?image:[ \t]*(?<value>\S+)[ \t]*$", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex ImageLine();

    /// <summary>Joins YAML files into one stream: each text as it is, separated by <c>---</c> lines.</summary>
    internal static string Join(IEnumerable<string> documents)
    {
        var sb = new StringBuilder();
        foreach (var text in documents)
        {
            if (sb.Length > 0) sb.Append("---\n");
            sb.Append(text);
            if (text.Length > 0 && text[^1] != '\n') sb.Append('\n');
        }
        return sb.ToString();
    }

    private static List<string> ComputeKinds()
    {
        var kinds = new List<string>();
        if (CrdResources().Count > 0) kinds.Add(Crds);
        if (Existing(RbacResource).Count > 0) kinds.Add(Rbac);
        if (Existing(StaticPodResource).Count > 0) kinds.Add(StaticPod);
        if (kinds.Contains(Crds) || kinds.Contains(Rbac)) kinds.Add(All);
        return kinds;
    }

    private static List<string> CrdResources() =>
        ResourceNames.Value.Where(n => n.StartsWith(CrdPrefix, StringComparison.Ordinal)
                                       && n.EndsWith(".yaml", StringComparison.Ordinal)).ToList();

    private static List<string> Existing(string name) =>
        Array.BinarySearch(ResourceNames.Value, name, StringComparer.Ordinal) >= 0 ? [name] : [];

    private static string Read(string name)
    {
        using var stream = Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"embedded manifest '{name}' is missing");
        using var reader = new StreamReader(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        return reader.ReadToEnd();
    }
}

using System.Reflection;
using System.Text;

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
internal static class EmbeddedManifests
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
    public static bool TryGet(string kind, out string yaml)
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
        yaml = Join(files.Select(Read));
        return true;
    }

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

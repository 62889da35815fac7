using System.Globalization;
using System.Text.RegularExpressions;

namespace Crsc.Preflight;

/// <summary>
/// A release version as runtimes and distributions print it: <c>1.2.3</c>, <c>v2.1.9</c>, <c>1.28</c>,
/// <c>1.4.0-rc.3</c> (a pre-release: older than <c>1.4.0</c>), and distribution packages such as
/// <c>4.2.1-1</c>, <c>2.1.4~ds1-1</c>, <c>1.1.12-0ubuntu3.1</c> or <c>1.28-1.fc43</c>, whose suffix is a
/// packaging revision and does not change the upstream version. Missing components are zero
/// (<c>1.28</c> equals <c>1.28.0</c>). The branch is the first two components (<c>1.3</c> for <c>1.3.6</c>).
/// </summary>
internal sealed partial class PackageVersion : IComparable<PackageVersion>
{
    private readonly int[] _numbers;

    private PackageVersion(string text, int[] numbers, string? preTag, int preNumber)
    {
        Text = text;
        _numbers = numbers;
        PreTag = preTag;
        PreNumber = preNumber;
    }

    /// <summary>The text it was parsed from.</summary>
    public string Text { get; }

    /// <summary>The pre-release tag in lower case (<c>rc</c>, <c>alpha</c>, <c>beta</c>, <c>pre</c>, <c>dev</c>), or null for a release.</summary>
    public string? PreTag { get; }

    /// <summary>The pre-release number (<c>3</c> in <c>rc.3</c>), 0 when there is none.</summary>
    public int PreNumber { get; }

    private int Component(int i) => i < _numbers.Length ? _numbers[i] : 0;

    /// <summary>Whether both are on the same major.minor branch.</summary>
    public bool SameBranch(PackageVersion other) => Component(0) == other.Component(0) && Component(1) == other.Component(1);

    /// <summary>The version in <paramref name="text"/>, or null when it does not start with a number.</summary>
    public static PackageVersion? Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var trimmed = text.Trim();
        var m = VersionRegex().Match(trimmed);
        if (!m.Success) return null;
        var parts = m.Groups["numbers"].Value.Split('.');
        var numbers = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out numbers[i])) return null;

        var rest = m.Groups["rest"].Value;
        var pre = PreReleaseRegex().Match(rest);
        if (pre.Success)
        {
            var number = 0;
            if (pre.Groups["n"].Success && !int.TryParse(pre.Groups["n"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out number))
                return null;
            return new PackageVersion(trimmed, numbers, pre.Groups["tag"].Value.ToLowerInvariant(), number);
        }
        // anything else after the numbers is a packaging revision or build label ("-1", "~ds1", "+dfsg", "-0ubuntu1")
        return rest.Length == 0 || rest[0] is '-' or '+' or '~' or '_' ? new PackageVersion(trimmed, numbers, null, 0) : null;
    }

    public int CompareTo(PackageVersion? other)
    {
        if (other is null) return 1;
        for (var i = 0; i < Math.Max(_numbers.Length, other._numbers.Length); i++)
        {
            var c = Component(i).CompareTo(other.Component(i));
            if (c != 0) return c;
        }
        if (PreTag is null || other.PreTag is null)
            return (PreTag is null ? 1 : 0) - (other.PreTag is null ? 1 : 0); // a release is newer than its pre-releases
        var t = string.CompareOrdinal(PreTag, other.PreTag);
        return t != 0 ? Math.Sign(t) : PreNumber.CompareTo(other.PreNumber);
    }

    public static bool operator <(PackageVersion a, PackageVersion b) => a.CompareTo(b) < 0;
    public static bool operator >(PackageVersion a, PackageVersion b) => a.CompareTo(b) > 0;
    public static bool operator <=(PackageVersion a, PackageVersion b) => a.CompareTo(b) <= 0;
    public static bool operator >=(PackageVersion a, PackageVersion b) => a.CompareTo(b) >= 0;

    public override bool Equals(object? obj) => obj is PackageVersion v && CompareTo(v) == 0;

    public override int GetHashCode()
    {
        var hash = new HashCode();
        var length = _numbers.Length;
        while (length > 0 && _numbers[length - 1] == 0) length--; // 1.28 and 1.28.0 are equal
        for (var i = 0; i < length; i++) hash.Add(_numbers[i]);
        hash.Add(PreTag);
        hash.Add(PreNumber);
        return hash.ToHashCode();
    }

    public override string ToString() => Text;

    [GeneratedRegex(@"\A[vV]?(?<numbers>[0-9]{1,9}(?:\.[0-9]{1,9}){0,3})(?<rest>.*)\z", RegexOptions.Singleline)]
    private static partial Regex VersionRegex();

    // "-rc.3", "-rc3", "~rc3" (Debian), "rc1" right after the numbers, "-beta.2", "-dev"
    [GeneratedRegex(@"\A[-~.]?(?<tag>rc|alpha|beta|pre|dev)(?:[.-]?(?<n>[0-9]{1,9}))?(?![a-zA-Z])", RegexOptions.IgnoreCase)]
    private static partial Regex PreReleaseRegex();
}

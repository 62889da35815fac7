using Crsc.Preflight;

namespace Crsc.Tests.Preflight;

public sealed class PackageVersionTests
{
    private static PackageVersion P(string text) => PackageVersion.Parse(text) ?? throw new Xunit.Sdk.XunitException($"'{text}' did not parse");

    [Theory]
    [InlineData("1.2.3", "1.2.4", -1)]
    [InlineData("1.2.10", "1.2.9", 1)]
    [InlineData("1.10.0", "1.9.9", 1)]
    [InlineData("1.28", "1.28.0", 0)]
    [InlineData("v2.1.9", "2.1.9", 0)]
    [InlineData("1.4.0-rc.3", "1.4.0", -1)]
    [InlineData("1.4.0-rc.3", "1.4.0-rc.2", 1)]
    [InlineData("1.4.0-rc.10", "1.4.0-rc.9", 1)]
    [InlineData("1.4.0-rc3", "1.4.0-rc.3", 0)]
    [InlineData("1.0.0-rc93", "1.0.0-rc.92", 1)]
    [InlineData("1.4.0-beta.1", "1.4.0-rc.1", -1)]
    [InlineData("1.4.0~rc3-1", "1.4.0-rc.3", 0)]        // Debian spells pre-releases with ~
    [InlineData("1.4.0-rc.3", "1.3.9", 1)]
    [InlineData("4.2.1-1", "4.2.1", 0)]                 // packaging revision, not a pre-release
    [InlineData("2.1.4~ds1-1", "2.1.4", 0)]            // Debian repack marker
    [InlineData("1.1.12-0ubuntu3.1", "1.1.12", 0)]
    [InlineData("1.28-1.fc43", "1.28", 0)]
    [InlineData("1.1.15+ds1", "1.1.15", 0)]
    [InlineData("1.2.3-devel", "1.2.3", 0)]            // "devel" is not the "dev" tag
    [InlineData("1.2.3-dev", "1.2.3", -1)]
    [InlineData("1.2.3.4", "1.2.3", 1)]
    public void Versions_compare_by_number_then_pre_release(string a, string b, int expected)
    {
        Assert.Equal(expected, Math.Sign(P(a).CompareTo(P(b))));
        Assert.Equal(-expected, Math.Sign(P(b).CompareTo(P(a))));
        Assert.Equal(expected == 0, P(a).Equals(P(b)));
        if (expected == 0) Assert.Equal(P(a).GetHashCode(), P(b).GetHashCode());
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("main")]
    [InlineData("unknown")]
    [InlineData("v")]
    [InlineData("1.2.3abc")]
    [InlineData("1.2.3 (gitid 123)")]
    [InlineData("99999999999.1")]
    [InlineData("-1.2")]
    public void Odd_strings_are_not_versions(string text) => Assert.Null(PackageVersion.Parse(text));

    [Fact]
    public void Null_is_not_a_version() => Assert.Null(PackageVersion.Parse(null));

    [Theory]
    [InlineData("1.3.6", "1.3.0", true)]
    [InlineData("1.3.6", "1.3.6-rc.1", true)]
    [InlineData("1.28", "1.28.2", true)]
    [InlineData("1.3.6", "1.4.3", false)]
    [InlineData("2.1.9", "1.1.9", false)]
    public void The_branch_is_major_and_minor(string a, string b, bool same) => Assert.Equal(same, P(a).SameBranch(P(b)));

    [Fact]
    public void Text_and_pre_release_parts_are_kept()
    {
        var v = P(" v1.5.0-RC.3 ");
        Assert.Equal("v1.5.0-RC.3", v.ToString());
        Assert.Equal("rc", v.PreTag);
        Assert.Equal(3, v.PreNumber);
        Assert.Null(P("1.5.0").PreTag);
    }
}

using Crsc.Preflight;

namespace Crsc.Tests.Preflight;

public sealed class RestoreAdvisoriesTests
{
    private static PackageVersion P(string text) => PackageVersion.Parse(text)!;

    private static RestoreAdvisory Advisory(string[] fixedIn, string? introducedIn = null) =>
        new("x", "CVE-TEST", "test", fixedIn.Select(P).ToArray(), introducedIn is null ? null : P(introducedIn));

    [Theory]
    [InlineData("1.2.7", "1.2.8")]      // its branch's fix
    [InlineData("1.2.8", null)]
    [InlineData("1.2.9", null)]
    [InlineData("1.3.2", "1.3.3")]
    [InlineData("1.3.3", null)]
    [InlineData("1.3.0-rc.1", "1.3.3")]
    [InlineData("1.4.0", null)]         // a branch newer than every fix
    [InlineData("2.0.0", null)]
    [InlineData("1.1.9", "1.2.8")]      // an older branch that got no fix: the oldest fix above it
    [InlineData("0.9", "1.2.8")]
    [InlineData("1.2.8-1", null)]       // distribution revision of the fixed release
    [InlineData("1.2.7-5ubuntu1", "1.2.8")]
    public void Fixed_in_1_2_8_and_1_3_3(string version, string? upgradeTo) =>
        Assert.Equal(upgradeTo, Advisory(["1.2.8", "1.3.3"]).UpgradeTarget(P(version))?.ToString());

    [Theory]
    [InlineData("1.0.0", "1.1.6")]
    [InlineData("1.2.0", "1.3.6")]      // a branch between fixed branches that got no fix
    [InlineData("1.3.6", null)]
    [InlineData("1.4.0-rc.1", "1.4.3")]
    [InlineData("1.5.0-rc.2", "1.5.0-rc.3")]
    [InlineData("1.5.0", null)]
    public void Branches_without_a_fix_move_up(string version, string? upgradeTo) =>
        Assert.Equal(upgradeTo, Advisory(["1.1.6", "1.3.6", "1.4.3", "1.5.0-rc.3"]).UpgradeTarget(P(version))?.ToString());

    [Theory]
    [InlineData("2.0.9", null)]
    [InlineData("2.1.0", "2.1.9")]
    [InlineData("2.1.9", null)]
    public void Versions_before_the_flaw_are_not_affected(string version, string? upgradeTo) =>
        Assert.Equal(upgradeTo, Advisory(["2.1.9", "2.2.5"], introducedIn: "2.1.0").UpgradeTarget(P(version))?.ToString());

    [Theory]
    [InlineData("runc", "1.2.7", "1.3.6", "CVE-2025-31133,CVE-2025-52565,CVE-2025-52881,CVE-2026-41579")]
    [InlineData("runc", "1.2.8", "1.3.6", "CVE-2026-41579")]             // fixed on its branch for 2025, but 1.2 got no 2026 fix
    [InlineData("runc", "1.1.12", "1.3.6", "CVE-2025-31133,CVE-2025-52565,CVE-2025-52881,CVE-2026-41579")]
    [InlineData("runc", "1.3.2", "1.3.6", "CVE-2025-31133,CVE-2025-52565,CVE-2025-52881,CVE-2026-41579")]
    [InlineData("runc", "1.3.5", "1.3.6", "CVE-2026-41579")]
    [InlineData("runc", "1.3.6", null, "")]
    [InlineData("runc", "1.4.0-rc.2", "1.4.3", "CVE-2025-31133,CVE-2025-52565,CVE-2025-52881,CVE-2026-41579")]
    [InlineData("runc", "1.4.2", "1.4.3", "CVE-2026-41579")]
    [InlineData("runc", "1.4.3", null, "")]
    [InlineData("runc", "1.5.0-rc.2", "1.5.0-rc.3", "CVE-2026-41579")]
    [InlineData("runc", "1.5.2", null, "")]
    [InlineData("crun", "1.27", "1.28", "CVE-2026-47766")]
    [InlineData("crun", "1.14.1", "1.28", "CVE-2026-47766")]
    [InlineData("crun", "1.28-1.fc43", null, "")]
    [InlineData("crun", "1.30.1", null, "")]
    [InlineData("containerd", "1.7.24", "2.1.9", "CVE-2026-50195,CVE-2026-53492")]
    [InlineData("containerd", "v2.0.5", "2.1.9", "CVE-2026-50195,CVE-2026-53492")]
    [InlineData("containerd", "v2.1.4", "2.1.9", "CVE-2026-50195,CVE-2026-53492,CVE-2026-53489")]
    [InlineData("containerd", "2.1.9", null, "")]
    [InlineData("containerd", "2.2.4", "2.2.5", "CVE-2026-50195,CVE-2026-53492,CVE-2026-53489")]
    [InlineData("containerd", "2.3.1", "2.3.2", "CVE-2026-50195,CVE-2026-53492,CVE-2026-53489")]
    [InlineData("containerd", "2.4.0", null, "")]
    [InlineData("cri-o", "1.28.4", "1.29.8", "CVE-2024-8676")]
    [InlineData("cri-o", "1.30.5", "1.30.6", "CVE-2024-8676")]
    [InlineData("cri-o", "1.31.1", null, "")]
    [InlineData("cri-o", "1.34.0", null, "")]
    public void The_table_names_the_missing_fixes_and_one_release_with_all_of_them(string component, string version, string? upgradeTo, string missing)
    {
        var verdict = RestoreAdvisories.Check(component, P(version));
        Assert.Equal(upgradeTo, verdict.UpgradeTo?.ToString());
        Assert.Equal(missing, string.Join(',', verdict.Missing.Select(a => a.Id.Split(' ')[0])));
        if (verdict.UpgradeTo is { } target) Assert.Empty(RestoreAdvisories.Check(component, target).Missing);
    }

    [Fact]
    public void Every_advisory_has_an_id_a_summary_and_fixed_releases()
    {
        Assert.Equal(["containerd", "cri-o", "crun", "runc"], RestoreAdvisories.All.Select(a => a.Component).Distinct().Order(StringComparer.Ordinal));
        Assert.All(RestoreAdvisories.All, a =>
        {
            Assert.Matches(@"\ACVE-20[0-9]{2}-[0-9]+ \(GHSA(-[23456789cfghjmpqrvwx]{4}){3}\)\z", a.Id);
            Assert.NotEmpty(a.Summary);
            Assert.NotEmpty(a.FixedIn);
            Assert.Equal(a.FixedIn.Count, a.FixedIn.DistinctBy(f => (f.ToString().Split('.')[0], f.ToString().Split('.')[1])).Count()); // one fix per branch
        });
        Assert.False(RestoreAdvisories.Covers("criu"));
    }
}

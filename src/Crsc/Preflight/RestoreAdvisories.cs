namespace Crsc.Preflight;

/// <summary>
/// One published security advisory of a node component that matters when containers are restored
/// from checkpoints: the first fixed release of each maintained branch, and optionally the first
/// release that has the flaw (older ones are not affected).
/// </summary>
internal sealed record RestoreAdvisory(string Component, string Id, string Summary, IReadOnlyList<PackageVersion> FixedIn, PackageVersion? IntroducedIn = null)
{
    /// <summary>
    /// Null when <paramref name="version"/> has the fix or never had the flaw; otherwise the release to
    /// upgrade to: the fix on its own branch, or — on a branch that got no fix (older, or between fixed
    /// branches) — the oldest fix newer than it. A branch newer than every fix is taken as fixed.
    /// </summary>
    public PackageVersion? UpgradeTarget(PackageVersion version)
    {
        if (IntroducedIn is not null && version < IntroducedIn) return null;
        var sameBranch = FixedIn.FirstOrDefault(f => f.SameBranch(version));
        if (sameBranch is not null) return version < sameBranch ? sameBranch : null;
        return FixedIn.Where(f => f > version).Order().FirstOrDefault();
    }
}

/// <summary>What <see cref="RestoreAdvisories.Check"/> found for one component version.</summary>
internal sealed record AdvisoryVerdict(IReadOnlyList<RestoreAdvisory> Missing, IReadOnlyList<RestoreAdvisory> Known, PackageVersion? UpgradeTo);

/// <summary>
/// The security fixes a node that restores checkpoints should have, by component, and the check of a
/// found version against them.
/// </summary>
internal static class RestoreAdvisories
{
    private static PackageVersion V(string text) => PackageVersion.Parse(text) ?? throw new InvalidOperationException("bad version in the advisory table: " + text);

    private static RestoreAdvisory A(string component, string id, string summary, string[] fixedIn, string? introducedIn = null) =>
        new(component, id, summary, fixedIn.Select(V).ToArray(), introducedIn is null ? null : V(introducedIn));

    // Sources (fixed releases as the advisories list them):
    //
    // runc — the OCI runtime sets up a container's root file system from an image. A node that restores
    // checkpoints pulls checkpoint images (and the base images they name) from elsewhere and creates
    // containers from them, so image- and config-driven escapes in the runtime matter here.
    //   CVE-2025-31133  https://github.com/opencontainers/runc/security/advisories/GHSA-9493-h29p-rfm2
    //                   (masked-path mount race, container escape) fixed in 1.2.8, 1.3.3, 1.4.0-rc.3
    //   CVE-2025-52565  https://github.com/opencontainers/runc/security/advisories/GHSA-qw9x-cqr3-wc7r
    //                   (/dev/console mount races) fixed in 1.2.8, 1.3.3, 1.4.0-rc.3
    //   CVE-2025-52881  https://github.com/opencontainers/runc/security/advisories/GHSA-cgrx-mc8f-2prm
    //                   (procfs write redirection, LSM bypass) fixed in 1.2.8, 1.3.3, 1.4.0-rc.3
    //   CVE-2026-41579  https://github.com/opencontainers/runc/security/advisories/GHSA-xjvp-4fhw-gc47
    //                   (image with a /dev symlink writes to the host; affected <1.3.6, 1.4.0–1.4.2,
    //                   1.5.0-rc.1–rc.2) fixed in 1.3.6, 1.4.3, 1.5.0-rc.3 (oss-security 2026-06-13)
    // crun
    //   CVE-2026-47766  https://github.com/containers/crun/security/advisories/GHSA-7vwr-4279-7gq5
    //                   (rootfs /dev symlinks followed, the crun twin of CVE-2026-41579) fixed in 1.28
    //   (CVE-2026-88264/88265 are left out: only reachable without a /dev mount, which CRI-O and
    //   containerd always provide, and no fixed release was established.)
    // containerd — its CRI plugin's checkpoint import and restore (oss-security 2026-06-19)
    //   CVE-2026-50195  https://github.com/containerd/containerd/security/advisories/GHSA-cvxm-645q-p574
    //                   (checkpoint import poisons a local image tag) fixed in 2.1.9, 2.2.5, 2.3.2
    //   CVE-2026-53492  https://github.com/containerd/containerd/security/advisories/GHSA-33vj-92qq-66hc
    //                   (CDI annotations from the checkpoint smuggled into the restored container) fixed in 2.1.9, 2.2.5, 2.3.2
    //   CVE-2026-53489  https://github.com/containerd/containerd/security/advisories/GHSA-rgh6-rfwx-v388
    //                   (restored container.log symlink reads host files; affected from 2.1.0) fixed in 2.1.9, 2.2.5, 2.3.2
    // CRI-O
    //   CVE-2024-8676   https://github.com/cri-o/cri-o/security/advisories/GHSA-7p9f-6x8j-gxxp
    //                   (restore takes mounts from the archive, bypassing the pod's mount checks) fixed in 1.29.8, 1.30.6, 1.31.1
    // CRIU: no advisory with a fixed release was found; CRIU documents that it trusts its image files,
    // which is why crsc verifies archives before a restore. It has no row here.
    public static readonly IReadOnlyList<RestoreAdvisory> All =
    [
        A("runc", "CVE-2025-31133 (GHSA-9493-h29p-rfm2)", "masked-path mount race", ["1.2.8", "1.3.3", "1.4.0-rc.3"]),
        A("runc", "CVE-2025-52565 (GHSA-qw9x-cqr3-wc7r)", "/dev/console mount race", ["1.2.8", "1.3.3", "1.4.0-rc.3"]),
        A("runc", "CVE-2025-52881 (GHSA-cgrx-mc8f-2prm)", "procfs write redirection", ["1.2.8", "1.3.3", "1.4.0-rc.3"]),
        A("runc", "CVE-2026-41579 (GHSA-xjvp-4fhw-gc47)", "image /dev symlink writes to the host", ["1.3.6", "1.4.3", "1.5.0-rc.3"]),
        A("crun", "CVE-2026-47766 (GHSA-7vwr-4279-7gq5)", "image /dev symlinks followed to the host", ["1.28"]),
        A("containerd", "CVE-2026-50195 (GHSA-cvxm-645q-p574)", "checkpoint import poisons an image tag", ["2.1.9", "2.2.5", "2.3.2"]),
        A("containerd", "CVE-2026-53492 (GHSA-33vj-92qq-66hc)", "CDI annotations smuggled in by a restore", ["2.1.9", "2.2.5", "2.3.2"]),
        A("containerd", "CVE-2026-53489 (GHSA-rgh6-rfwx-v388)", "restored container.log reads host files", ["2.1.9", "2.2.5", "2.3.2"], introducedIn: "2.1.0"),
        A("cri-o", "CVE-2024-8676 (GHSA-7p9f-6x8j-gxxp)", "restore bypasses the pod's mount checks", ["1.29.8", "1.30.6", "1.31.1"]),
    ];

    /// <summary>Whether any advisory is known for <paramref name="component"/> (runc, crun, containerd, cri-o).</summary>
    public static bool Covers(string component) => All.Any(a => a.Component == component);

    /// <summary>
    /// The advisories <paramref name="version"/> of <paramref name="component"/> predates, and one release
    /// that has every one of their fixes (the newest of the per-advisory targets, moved up until none applies).
    /// </summary>
    public static AdvisoryVerdict Check(string component, PackageVersion version, IReadOnlyList<RestoreAdvisory>? table = null)
    {
        var known = (table ?? All).Where(a => a.Component == component).ToList();
        var missing = known.Where(a => a.UpgradeTarget(version) is not null).ToList();
        if (missing.Count == 0) return new AdvisoryVerdict(missing, known, null);
        var target = missing.Select(a => a.UpgradeTarget(version)!).Max()!;
        // a target on one advisory's branch can still predate another advisory's fix (1.2.8 vs CVE-2026-41579)
        for (var next = Next(known, target); next is not null; next = Next(known, target)) target = next;
        return new AdvisoryVerdict(missing, known, target);
    }

    private static PackageVersion? Next(IEnumerable<RestoreAdvisory> advisories, PackageVersion target) =>
        advisories.Select(a => a.UpgradeTarget(target)).Where(t => t is not null).Max();
}

using Crsc.Api.Crds;
using System.Globalization;
using System.Text.RegularExpressions;
using Crsc.Configuration;
using Crsc.Controllers.Runtime;
using Crsc.Cri;

namespace Crsc.Preflight;

/// <summary>
/// The checks of <c>crsc preflight</c>: can crsc checkpoint and restore containers on this node?
/// The container runtime (its CRI socket and version), CRIU (≥ 4 and <c>criu check</c>), the cgroup
/// layout, the kernel's checkpoint/restore features, crsc's own directories, and whether the runtime and
/// its OCI runtime (runc, crun) predate security fixes that matter for restores
/// (<see cref="RestoreAdvisories"/>). Every row that is not OK says how to fix it. Reads the node only through <see cref="IPreflightHost"/>,
/// <see cref="IProgramRunner"/> and <see cref="IRuntimeVersionProbe"/>; the checkpoint and restore rows come from the
/// runtime capability probe (<see cref="IRuntimeCapabilitySource"/>), when one is given.
/// </summary>
internal sealed partial class NodePreflight(IPreflightHost host, IProgramRunner programs, IRuntimeVersionProbe runtime,
    IRuntimeCapabilitySource? capabilities = null)
{
    public const int MinimumCriuMajor = 4;
    private static readonly TimeSpan RuntimeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a runtime that answers "unavailable" is asked again before the row fails. A runtime that was just
    /// started says so for a moment (containerd's CRI plugin answers "server is not initialized yet" while it recovers
    /// its state), and `systemctl start containerd &amp;&amp; crsc preflight` must not fail on that.
    /// </summary>
    internal TimeSpan RuntimeStartupGrace { get; init; } = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan RuntimeRetryDelay = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan CriuVersionTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan CriuCheckTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan OciRuntimeVersionTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Where CRI-O and containerd name the OCI runtime binaries they run (<c>runtime_path</c>, <c>BinaryName</c>).</summary>
    internal static readonly string[] RuntimeConfigFiles = ["/etc/crio/crio.conf", "/etc/containerd/config.toml"];
    internal static readonly (string Directory, string Suffix)[] RuntimeConfigDirectories =
        [("/etc/crio/crio.conf.d", ".conf"), ("/etc/containerd/conf.d", ".toml")];

    /// <summary>The OCI runtimes looked up on the search path when the configuration names none (or as well).</summary>
    internal static readonly string[] OciRuntimeNames = ["runc", "crun"];

    /// <summary>Kernel options CRIU needs (missing = FAIL) and those that only enable extras (missing = WARN).</summary>
    internal static readonly string[] RequiredKernelOptions =
        ["CONFIG_CHECKPOINT_RESTORE", "CONFIG_NAMESPACES", "CONFIG_UNIX_DIAG", "CONFIG_INET_DIAG", "CONFIG_NETLINK_DIAG", "CONFIG_PACKET_DIAG"];
    internal static readonly string[] OptionalKernelOptions = ["CONFIG_MEM_SOFT_DIRTY", "CONFIG_USERFAULTFD"];

    public async Task<IReadOnlyList<PreflightRow>> RunAsync(CrscOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        var rows = new List<PreflightRow>();
        if (host.EffectiveUid != 0)
            rows.Add(PreflightRow.Warn("user", $"running as uid {host.EffectiveUid}, not root: some checks cannot see everything",
                "run `sudo crsc preflight` (the daemon runs as root)"));
        var (runtimeRows, runtimeVersion) = await CheckRuntimeAsync(options.RuntimeEndpoint, ct).ConfigureAwait(false);
        rows.AddRange(runtimeRows);
        if (runtimeVersion is not null && capabilities is not null)
            rows.AddRange(await CheckCapabilitiesAsync(options.RuntimeEndpoint, ct).ConfigureAwait(false));
        rows.AddRange(await CheckCriuAsync(ct).ConfigureAwait(false));
        rows.AddRange(await CheckRestoreAdvisoriesAsync(runtimeVersion, ct).ConfigureAwait(false));
        rows.Add(CheckCgroups());
        rows.AddRange(CheckKernel());
        rows.Add(CheckPrivateDirectory("checkpointDir", options.CheckpointDir));
        rows.Add(CheckPrivateDirectory("stagingDir", options.StagingDir));
        rows.Add(CheckPrivateDirectory("stateDir", options.StateDir));
        rows.Add(CheckPrivateDirectory("socket dir", Path.GetDirectoryName(options.Socket) ?? "/"));
        if (options.ShutdownCheckpointEnabled && CheckKubeletShutdown(KubeletConfigFile) is { } shutdown) rows.Add(shutdown);
        return rows;
    }

    // --- node shutdown --------------------------------------------------------------------------

    public const string KubeletConfigFile = "/var/lib/kubelet/config.yaml";
    public const string KubeletShutdownCheck = "kubelet shutdown";

    /// <summary>
    /// The kubelet's graceful node shutdown (<c>shutdownGracePeriod</c> in its config file). Off (0 or absent), the kubelet
    /// takes no logind inhibitor and leaves logind's <c>InhibitDelayMaxSec</c> at its default (5 s): crsc's shutdown
    /// checkpoints get only that, and may race the kill of the containers. On, the kubelet raises the delay to the grace
    /// period (its logind drop-in) and marks the node and pods as shutting down. Null when there is no kubelet config
    /// file at the default path (nothing to say).
    /// </summary>
    internal PreflightRow? CheckKubeletShutdown(string path)
    {
        if (host.ReadText(path) is not { } text) return null;
        const string fix = "set shutdownGracePeriod (e.g. 60s, longer than the checkpoints of this node's managed containers take) and " +
            "shutdownGracePeriodCriticalPods (e.g. 10s) in " + KubeletConfigFile + ", then restart the kubelet (it raises logind's InhibitDelayMaxSec to match)";
        string? value;
        try
        {
            using var reader = new StringReader(text);
            var stream = Crsc.Kube.AliasFreeYaml.Load(reader);
            value = stream.Documents.Count > 0 && stream.Documents[0].RootNode is YamlDotNet.RepresentationModel.YamlMappingNode map
                && map.Children.TryGetValue(new YamlDotNet.RepresentationModel.YamlScalarNode("shutdownGracePeriod"), out var node)
                && node is YamlDotNet.RepresentationModel.YamlScalarNode scalar ? scalar.Value : null;
        }
        catch (Exception e) when (e is YamlDotNet.Core.YamlException or InvalidDataException)
        {
            return PreflightRow.Warn(KubeletShutdownCheck, $"{path} could not be read as YAML: {e.Message}", fix);
        }
        if (string.IsNullOrWhiteSpace(value))
            return PreflightRow.Warn(KubeletShutdownCheck,
                $"shutdownGracePeriod is not set in {path}: the kubelet's graceful node shutdown is off, logind's delay stays at its default (5 s) and crsc's shutdown checkpoints may race the kill",
                fix);
        if (!Crsc.Api.GoDuration.TryParse(value, out var grace))
            return PreflightRow.Warn(KubeletShutdownCheck, $"shutdownGracePeriod '{value}' in {path} is not a duration", fix);
        if (grace <= TimeSpan.Zero)
            return PreflightRow.Warn(KubeletShutdownCheck,
                $"shutdownGracePeriod is {value} in {path}: the kubelet's graceful node shutdown is off, logind's delay stays at its default (5 s) and crsc's shutdown checkpoints may race the kill",
                fix);
        return PreflightRow.Ok(KubeletShutdownCheck, $"shutdownGracePeriod {value}: logind lets crsc's delay inhibitor hold a shutdown up to that long");
    }

    // --- container runtime -----------------------------------------------------------------------

    private async Task<(IEnumerable<PreflightRow> Rows, RuntimeVersion? Version)> CheckRuntimeAsync(string endpoint, CancellationToken ct)
    {
        string socket;
        try { socket = CriEndpoint.Parse(endpoint).SocketPath; }
        catch (FormatException e)
        {
            return ([PreflightRow.Fail("runtime socket", e.Message, "set runtime.endpoint to unix:///PATH of the runtime's CRI socket")], null);
        }
        var info = host.Stat(socket);
        if (info is null)
            return ([PreflightRow.Fail("runtime socket", $"{socket} does not exist",
                "start the container runtime (systemctl start crio or containerd), or set runtime.endpoint (containerd: unix:///run/containerd/containerd.sock)")], null);
        if (info.Kind != PathKind.Socket)
            return ([PreflightRow.Fail("runtime socket", $"{socket} is a {info.Kind.ToString().ToLowerInvariant()}, not a socket",
                "set runtime.endpoint to the runtime's CRI socket")], null);
        try
        {
            var v = await VersionAllowingStartupAsync(endpoint, ct).ConfigureAwait(false);
            return ([PreflightRow.Ok("runtime socket", $"{socket} answers (CRI {v.RuntimeApiVersion})"), RuntimeVersionRow(v.RuntimeName, v.RuntimeVersionString)], v);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return ([PreflightRow.Fail("runtime socket", $"{socket} exists but CRI Version failed: {e.Message}",
                "check the runtime's logs (journalctl -u crio / -u containerd) and that its CRI plugin is enabled")], null);
        }
    }

    /// <summary>CRI Version, asked again while the runtime says it is unavailable, for up to <see cref="RuntimeStartupGrace"/>.</summary>
    private async Task<RuntimeVersion> VersionAllowingStartupAsync(string endpoint, CancellationToken ct)
    {
        var since = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try { return await runtime.VersionAsync(endpoint, RuntimeTimeout, ct).ConfigureAwait(false); }
            catch (ContainerRuntimeException e) when (e.Kind == ContainerRuntimeErrorKind.Unavailable && since.Elapsed + RuntimeRetryDelay < RuntimeStartupGrace)
            {
                await Task.Delay(RuntimeRetryDelay, ct).ConfigureAwait(false);
            }
        }
    }

    // --- checkpoint and restore capability ---------------------------------------------------------

    private async Task<IEnumerable<PreflightRow>> CheckCapabilitiesAsync(string endpoint, CancellationToken ct)
    {
        RuntimeCapabilities caps;
        try
        {
            caps = await capabilities!.ProbeAsync(endpoint, RuntimeTimeout, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            var why = $"the runtime's checkpoint and restore support could not be probed: {e.Message}";
            return [PreflightRow.Warn(CheckpointCheck, why, "run `sudo crsc preflight` again; check the runtime's logs"),
                    PreflightRow.Warn(RestoreCheck, why, "run `sudo crsc preflight` again; check the runtime's logs")];
        }
        return CapabilityRows(caps);
    }

    public const string CheckpointCheck = "checkpoint support";
    public const string RestoreCheck = "restore support";

    /// <summary>
    /// The rows for the probe's verdicts. Checkpointing is crsc's core: a checkpoint that is disabled or not supported
    /// FAILs. Restore from a checkpoint image WARNs when it is not possible: crsc still checkpoints, and a Restore on this
    /// node follows its fallback. Unknown is a WARN that says what could not be read. Every row that is not OK names the
    /// cause and the exact change.
    /// </summary>
    internal static IReadOnlyList<PreflightRow> CapabilityRows(RuntimeCapabilities caps)
    {
        var checkpoint = caps.Checkpoint;
        var restore = caps.Restore;
        return
        [
            checkpoint.State switch
            {
                CapabilityState.Supported => PreflightRow.Ok(CheckpointCheck, checkpoint.Reason),
                CapabilityState.Unknown => PreflightRow.Warn(CheckpointCheck, "unknown: " + checkpoint.Reason, checkpoint.Fix ?? "check the runtime's checkpoint configuration"),
                CapabilityState.DisabledByConfig => PreflightRow.Fail(CheckpointCheck, "disabled by the runtime's configuration: " + checkpoint.Reason, checkpoint.Fix ?? "enable checkpointing in the runtime"),
                _ => PreflightRow.Fail(CheckpointCheck, "not supported: " + checkpoint.Reason, checkpoint.Fix ?? "use a runtime that can checkpoint (CRI-O >= 1.26, containerd 2.1 to 2.3)"),
            },
            restore.State switch
            {
                CapabilityState.Supported => PreflightRow.Ok(RestoreCheck, restore.Reason),
                CapabilityState.Unknown => PreflightRow.Warn(RestoreCheck, "unknown: " + restore.Reason, restore.Fix ?? "check the runtime's restore configuration"),
                CapabilityState.DisabledByConfig => PreflightRow.Warn(RestoreCheck,
                    "disabled by the runtime's configuration: " + restore.Reason + " (crsc still checkpoints; a Restore on this node follows its fallback)",
                    restore.Fix ?? "enable restore in the runtime"),
                _ => PreflightRow.Warn(RestoreCheck,
                    "not supported: " + restore.Reason + " (crsc still checkpoints; a Restore on this node follows its fallback)",
                    restore.Fix ?? "use a runtime that restores from checkpoint images (CRI-O >= 1.26, containerd 2.1 to 2.3)"),
            },
        ];
    }

    /// <summary>Restore in place needs CRI-O ≥ 1.26 (CRIU enabled) or containerd 2.1–2.3; others are reported, not refused.</summary>
    internal static PreflightRow RuntimeVersionRow(string name, string version)
    {
        var detail = $"{name} {version}";
        var parsed = ParseVersion(version);
        switch (name.ToLowerInvariant())
        {
            case "cri-o":
                if (parsed is null) return PreflightRow.Warn("runtime version", detail + " (version not understood)", "crsc needs CRI-O >= 1.26 with CRIU enabled");
                return parsed >= new Version(1, 26)
                    ? PreflightRow.Ok("runtime version", detail + " (checkpoint and restore from images when its configuration allows: see the checkpoint and restore rows)")
                    : PreflightRow.Fail("runtime version", detail + " cannot checkpoint containers", "upgrade CRI-O to >= 1.26 and set enable_criu_support = true");
            case "containerd":
                if (parsed is null) return PreflightRow.Warn("runtime version", detail + " (version not understood)", "crsc needs containerd 2.1 to 2.3");
                if (parsed < new Version(2, 0))
                    return PreflightRow.Fail("runtime version", detail + " cannot checkpoint containers over CRI", "upgrade containerd to 2.1 to 2.3");
                if (parsed < new Version(2, 1))
                    return PreflightRow.Warn("runtime version", detail + " checkpoints, but cannot restore from checkpoint images", "upgrade containerd to 2.1 to 2.3");
                if (RuntimeCapabilityProbe.RestoreOffByDefault(parsed))
                    return PreflightRow.Ok("runtime version", detail + $" (checkpoint; restore from images only with {RuntimeCapabilityProbe.ContainerdRestoreKey} = true: see the restore row)");
                return parsed < new Version(2, 4)
                    ? PreflightRow.Ok("runtime version", detail + " (checkpoint and restore from images)")
                    : PreflightRow.Warn("runtime version", detail + " is newer than the versions crsc was tested with (2.1 to 2.3)", "report problems with the runtime version; restore may differ");
            default:
                return PreflightRow.Warn("runtime version", detail + " is not a runtime crsc knows", "use CRI-O >= 1.26 or containerd 2.1 to 2.3");
        }
    }

    // --- CRIU ------------------------------------------------------------------------------------

    private async Task<IEnumerable<PreflightRow>> CheckCriuAsync(CancellationToken ct)
    {
        var (version, v) = await CriuVersionAsync(programs, ct).ConfigureAwait(false);
        if (!version.Started)
            return [PreflightRow.Fail("criu", "criu is not installed (not on PATH)",
                $"install CRIU >= {MinimumCriuMajor} where the runtime finds it (Debian trixie: apt install criu)")];
        if (version.ExitCode != 0 || v is null)
            return [PreflightRow.Fail("criu", $"criu --version failed (exit {version.ExitCode}): {FirstLine(version.Output)}",
                $"reinstall CRIU >= {MinimumCriuMajor}")];
        var rows = new List<PreflightRow>();
        rows.Add(v.Major >= MinimumCriuMajor
            ? PreflightRow.Ok("criu", $"CRIU {v}")
            : PreflightRow.Fail("criu", $"CRIU {v} is older than {MinimumCriuMajor}.0 (older releases fail on current kernels)",
                $"install CRIU >= {MinimumCriuMajor} (Debian: from trixie or newer)"));

        var check = await programs.RunAsync("criu", ["check"], CriuCheckTimeout, ct).ConfigureAwait(false);
        if (check.ExitCode == 0 && check.Output.Contains("Looks good", StringComparison.OrdinalIgnoreCase))
            rows.Add(PreflightRow.Ok("criu check", "Looks good"));
        else
        {
            var errors = check.Output.Split('\n').Select(l => l.Trim())
                .Where(l => l.Contains("Error", StringComparison.OrdinalIgnoreCase) && !l.Contains("RLIMIT_NOFILE", StringComparison.Ordinal))
                .ToList();
            rows.Add(PreflightRow.Fail("criu check", $"exit {check.ExitCode}: {(errors.Count > 0 ? errors[0] : FirstLine(check.Output))}",
                "run `criu check --all` as root and fix what it names (usually kernel options, see the kernel rows)"));
        }
        return rows;
    }

    /// <summary><c>criu --version</c> from the search path: what it said, and the version in it (null when none).</summary>
    internal static async Task<(ProgramOutput Output, Version? Version)> CriuVersionAsync(IProgramRunner programs, CancellationToken ct)
    {
        var output = await programs.RunAsync("criu", ["--version"], CriuVersionTimeout, ct).ConfigureAwait(false);
        return (output, ParseCriuVersion(output.Output));
    }

    /// <summary>
    /// <c>criu --version</c> as the capability probe's CRIU fact: found with its version, not checked when it answers
    /// without one, and <paramref name="notFound"/> when it is not on the search path (preflight, run on the node, says
    /// missing; the daemon, which may not see the runtime's search path, says not checked).
    /// </summary>
    internal static async Task<(CriuFact Fact, Version? Version)> CriuFactAsync(IProgramRunner programs, CriuFact notFound, CancellationToken ct)
    {
        var (output, version) = await CriuVersionAsync(programs, ct).ConfigureAwait(false);
        var fact = !output.Started ? notFound
            : output.ExitCode == 0 && version is not null ? CriuFact.Found($"criu {version}")
            : CriuFact.NotChecked($"criu --version exited {output.ExitCode} without a version");
        return (fact, version);
    }

    /// <summary>The version in <c>criu --version</c>'s output (<c>Version: 4.1.1</c>), or null.</summary>
    internal static Version? ParseCriuVersion(string output)
    {
        var m = CriuVersionRegex().Match(output);
        return m.Success ? ParseVersion(m.Groups[1].Value) : null;
    }

    // --- restore security fixes ------------------------------------------------------------------

    /// <summary>
    /// One row per component with known restore-relevant advisories: the runtime (from its CRI Version
    /// answer) and each runc/crun binary the runtime's configuration names or the search path has.
    /// A component that predates a fix is a warning (never a failure): distributions backport fixes
    /// under older version numbers, so the version alone cannot prove a node vulnerable.
    /// </summary>
    internal async Task<IReadOnlyList<PreflightRow>> CheckRestoreAdvisoriesAsync(RuntimeVersion? runtime, CancellationToken ct)
    {
        var rows = new List<PreflightRow>();
        if (runtime is not null && RestoreAdvisories.Covers(runtime.RuntimeName.ToLowerInvariant()))
            rows.Add(AdvisoryRow(runtime.RuntimeName.ToLowerInvariant(), runtime.RuntimeVersionString, null));

        var checkedAny = false;
        void AddBinaryRow(PreflightRow row, string binary) =>
            // two runc binaries (the configured one and the one on the path) get distinct check names: tools key rows by name
            rows.Add(rows.Any(r => r.Check == row.Check) ? row with { Check = $"{row.Check} {binary}" } : row);
        foreach (var binary in OciRuntimeBinaries())
        {
            var output = await programs.RunAsync(binary, ["--version"], OciRuntimeVersionTimeout, ct).ConfigureAwait(false);
            if (!output.Started) continue; // named in a configuration but not installed: the runtime cannot run it either
            var m = OciRuntimeVersionRegex().Match(output.Output);
            var fileName = Path.GetFileName(binary);
            if (output.ExitCode == 0 && m.Success)
            {
                AddBinaryRow(AdvisoryRow(m.Groups["name"].Value, m.Groups["version"].Value, binary), binary);
                checkedAny = true;
            }
            else if (fileName is "runc" or "crun")
            {
                AddBinaryRow(PreflightRow.Warn($"{fileName} security", $"{binary} --version (exit {output.ExitCode}) did not say its version: {FirstLine(output.Output)}; its restore security fixes were not checked",
                    $"make sure {fileName} has the fixes for {string.Join(", ", RestoreAdvisories.All.Where(a => a.Component == fileName).Select(a => a.Id))}"), binary);
                checkedAny = true;
            }
            // another OCI runtime (runsc, kata, youki…): no advisories are tracked for it
        }
        if (!checkedAny)
            rows.Add(PreflightRow.Warn("oci runtime security", "neither runc nor crun was found (search path and the runtime's configuration): their restore security fixes were not checked",
                "make sure the OCI runtime the container runtime uses is current (runc >= 1.3.6, crun >= 1.28)"));
        return rows;
    }

    /// <summary>The row for <paramref name="component"/> at <paramref name="versionText"/>, found at <paramref name="path"/> (null: from the CRI).</summary>
    internal static PreflightRow AdvisoryRow(string component, string versionText, string? path)
    {
        var check = $"{component} security";
        var label = path is null ? $"{component} {versionText}" : $"{component} {versionText} ({path})";
        var version = PackageVersion.Parse(versionText);
        if (version is null)
            return PreflightRow.Warn(check, $"{label}: version not understood, its restore security fixes were not checked",
                $"make sure {component} has the fixes for {string.Join(", ", RestoreAdvisories.All.Where(a => a.Component == component).Select(a => a.Id))}");
        var verdict = RestoreAdvisories.Check(component, version);
        if (verdict.UpgradeTo is null)
            return PreflightRow.Ok(check, $"{label} is not affected by {string.Join(", ", verdict.Known.Select(a => a.Id))}");
        return PreflightRow.Warn(check,
            $"{label} predates the fix for {string.Join("; ", verdict.Missing.Select(a => $"{a.Id}: {a.Summary}"))}",
            $"upgrade {component} to {verdict.UpgradeTo} or later (a distribution package may carry the fix under an older version: check its changelog for the CVE)");
    }

    /// <summary>
    /// The OCI runtime binaries to check: absolute paths named by <c>runtime_path</c> (CRI-O) and
    /// <c>BinaryName</c> (containerd) in the runtime's configuration, then runc and crun on the search path.
    /// </summary>
    internal IReadOnlyList<string> OciRuntimeBinaries()
    {
        var files = new List<string>(RuntimeConfigFiles);
        foreach (var (directory, suffix) in RuntimeConfigDirectories)
            files.AddRange(host.ListFiles(directory).Where(f => f.EndsWith(suffix, StringComparison.Ordinal)));
        var binaries = new List<string>();
        foreach (var file in files)
            if (host.ReadText(file) is { } text)
                binaries.AddRange(ConfiguredRuntimeBinaries(text));
        foreach (var name in OciRuntimeNames)
            if (host.FindExecutable(name) is { } found)
                binaries.Add(found);
        return binaries.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>The absolute paths set by <c>runtime_path = "…"</c> or <c>BinaryName = '…'</c> lines of a TOML file.</summary>
    internal static IEnumerable<string> ConfiguredRuntimeBinaries(string toml) =>
        ConfiguredBinaryRegex().Matches(toml).Select(m => m.Groups["path"].Value).Where(p => p.StartsWith('/'));

    // --- cgroups ---------------------------------------------------------------------------------

    internal enum CgroupLayout { Unknown, V1, V2, Hybrid }

    /// <summary>From /proc/self/mountinfo: v2 (cgroup2 at /sys/fs/cgroup), hybrid (v1 controllers plus a cgroup2 mount), or v1.</summary>
    internal static CgroupLayout DetectCgroups(string mountinfo)
    {
        bool v2Root = false, v2Elsewhere = false, v1 = false;
        foreach (var line in mountinfo.Split('\n'))
        {
            // "36 25 0:31 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw": fs type after " - "
            var dash = line.IndexOf(" - ", StringComparison.Ordinal);
            if (dash < 0) continue;
            var fields = line[..dash].Split(' ');
            var type = line[(dash + 3)..].Split(' ')[0];
            if (fields.Length < 5) continue;
            var mountPoint = fields[4];
            if (type == "cgroup2")
            {
                if (mountPoint == "/sys/fs/cgroup") v2Root = true;
                else v2Elsewhere = true;
            }
            else if (type == "cgroup") v1 = true;
        }
        if (v2Root && !v1) return CgroupLayout.V2;
        if (v1 && (v2Elsewhere || v2Root)) return CgroupLayout.Hybrid;
        if (v1) return CgroupLayout.V1;
        return CgroupLayout.Unknown;
    }

    private PreflightRow CheckCgroups()
    {
        var mountinfo = host.ReadText("/proc/self/mountinfo");
        return (mountinfo is null ? CgroupLayout.Unknown : DetectCgroups(mountinfo)) switch
        {
            CgroupLayout.V2 => PreflightRow.Ok("cgroups", "v2 (unified)"),
            CgroupLayout.V1 => PreflightRow.Ok("cgroups", "v1"),
            CgroupLayout.Hybrid => PreflightRow.Warn("cgroups", "hybrid (v1 controllers plus a v2 mount)",
                "use runc as the OCI runtime (crun refuses hybrid), or boot with systemd.unified_cgroup_hierarchy=1"),
            _ => PreflightRow.Fail("cgroups", "no cgroup file system is mounted", "mount cgroup2 at /sys/fs/cgroup (the runtime needs cgroups)"),
        };
    }

    // --- kernel ----------------------------------------------------------------------------------

    private IEnumerable<PreflightRow> CheckKernel()
    {
        var release = host.KernelRelease;
        // ns_last_pid exists only with CONFIG_CHECKPOINT_RESTORE: CRIU restores PIDs through it
        yield return host.Stat("/proc/sys/kernel/ns_last_pid") is not null
            ? PreflightRow.Ok("kernel", $"{release}, checkpoint/restore support (/proc/sys/kernel/ns_last_pid)")
            : PreflightRow.Fail("kernel", $"{release} has no /proc/sys/kernel/ns_last_pid (built without CONFIG_CHECKPOINT_RESTORE)",
                "use a kernel built with CONFIG_CHECKPOINT_RESTORE=y (every major distribution's is)");

        var config = host.ReadText($"/boot/config-{release}") ?? host.ReadText("/proc/config.gz");
        if (config is null)
        {
            yield return PreflightRow.Warn("kernel config", $"neither /boot/config-{release} nor /proc/config.gz: options not checked",
                "install the kernel's config file, or rely on `criu check`");
        }
        else
        {
            var options = ParseKernelConfig(config);
            var missing = RequiredKernelOptions.Where(o => !options.Contains(o)).ToList();
            yield return missing.Count == 0
                ? PreflightRow.Ok("kernel config", string.Join(", ", RequiredKernelOptions.Select(o => o["CONFIG_".Length..])))
                : PreflightRow.Fail("kernel config", "missing " + string.Join(", ", missing), "rebuild the kernel with " + string.Join("=y, ", missing) + "=y");
            var optionalMissing = OptionalKernelOptions.Where(o => !options.Contains(o)).ToList();
            if (optionalMissing.Count > 0)
                yield return PreflightRow.Warn("kernel extras", "missing " + string.Join(", ", optionalMissing) + " (optional)",
                    "only for incremental (soft-dirty) dumps and lazy (userfaultfd) restores; crsc works without them");
        }

        yield return host.Stat("/proc/sys/vm/unprivileged_userfaultfd") is not null || host.Stat("/dev/userfaultfd") is not null
            ? PreflightRow.Ok("userfaultfd", "available (lazy restore possible)")
            : PreflightRow.Warn("userfaultfd", "not available (optional)", "only lazy restores need CONFIG_USERFAULTFD; crsc works without it");
    }

    /// <summary>The options set to y or m in a kernel .config.</summary>
    internal static HashSet<string> ParseKernelConfig(string config)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in config.Split('\n'))
        {
            var line = raw.Trim();
            var eq = line.IndexOf('=');
            if (line.StartsWith('#') || eq <= 0) continue;
            if (line[(eq + 1)..] is "y" or "m") set.Add(line[..eq]);
        }
        return set;
    }

    // --- directories -----------------------------------------------------------------------------

    /// <summary>
    /// A directory that holds archives (process memory), state or the node API: root-owned and 0700.
    /// Absent is fine when its nearest existing parent is a root-owned directory (the daemon creates it).
    /// </summary>
    internal PreflightRow CheckPrivateDirectory(string name, string path)
    {
        var check = $"{name}";
        var info = host.Stat(path);
        if (info is null)
        {
            var parent = Path.GetDirectoryName(path.TrimEnd('/'));
            while (parent is not null && host.Stat(parent) is null) parent = Path.GetDirectoryName(parent);
            var p = parent is null ? null : host.Stat(parent);
            if (p is { Kind: PathKind.Directory, OwnerUid: 0 })
                return PreflightRow.Ok(check, $"{path} absent; the daemon creates it (0700) under {parent}");
            return PreflightRow.Fail(check, $"{path} absent and {parent ?? "/"} is not a root-owned directory",
                $"create it: install -d -m 0700 -o root -g root {path}");
        }
        if (info.Kind == PathKind.Symlink)
            return PreflightRow.Fail(check, $"{path} is a symbolic link (crsc does not follow links for its directories)",
                $"point the {name} option at the real directory");
        if (info.Kind != PathKind.Directory)
            return PreflightRow.Fail(check, $"{path} is not a directory", $"remove it or point the {name} option elsewhere");
        var mode = Convert.ToString((int)info.Mode & 0x1FF, 8).PadLeft(4, '0');
        if (info.OwnerUid != 0)
            return PreflightRow.Fail(check, $"{path} is owned by uid {info.OwnerUid.ToString(CultureInfo.InvariantCulture)}, not root",
                $"chown root:root {path} if it is crsc's own, else point {name} at a dedicated directory (the daemon refuses this one)");
        var open = info.Mode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute);
        if (open != 0)
            return PreflightRow.Fail(check, $"{path} is mode {mode}: others can read checkpoint data (process memory, secrets)",
                $"chmod 0700 {path} if it is crsc's own, else point {name} at a dedicated directory (the daemon refuses this one and does not change its mode)");
        return PreflightRow.Ok(check, $"{path} root {mode}");
    }

    private static Version? ParseVersion(string text)
    {
        var m = VersionRegex().Match(text);
        if (!m.Success) return null;
        var major = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        var minor = m.Groups[2].Success ? int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) : 0;
        var patch = m.Groups[3].Success ? int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) : 0;
        return new Version(major, minor, patch);
    }

    private static string FirstLine(string text)
    {
        var line = text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0) ?? "(no output)";
        return line.Length > 200 ? line[..200] + "…" : line;
    }

    [GeneratedRegex(@"Version:\s*v?([0-9]+(?:\.[0-9]+){0,2})")]
    private static partial Regex CriuVersionRegex();

    [GeneratedRegex(@"^v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?")]
    private static partial Regex VersionRegex();

    // "runc version 1.3.3" / "crun version 1.28" on their own line (runc also prints "spec: 1.2.1")
    [GeneratedRegex(@"^(?<name>runc|crun) version (?<version>[^\s]+)", RegexOptions.Multiline)]
    private static partial Regex OciRuntimeVersionRegex();

    [GeneratedRegex(@"^[ \t]*(?:runtime_path|BinaryName)[ \t]*=[ \t]*(?:""(?<path>[^""\n]*)""|'(?<path>[^'\n]*)')", RegexOptions.Multiline)]
    private static partial Regex ConfiguredBinaryRegex();
}

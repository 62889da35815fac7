using Crsc.Api.Crds;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Crsc.Controllers.Runtime;

/// <summary>
/// Finds out what this node's container runtime can do for crsc: checkpoint containers, and restore them from a
/// checkpoint image inside CRI <c>CreateContainer</c> (the in-place restore). Asks the runtime itself — CRI
/// <c>Version</c>, CRI <c>Status</c> with verbose (containerd reports its CRI configuration there), CRI-O's own
/// <c>GET /config</c> — and whether CRIU is installed; then <see cref="Classify"/> decides, from those facts only.
/// Whatever could not be read makes the verdict <see cref="CapabilityState.Unknown"/> and says what was missing.
/// </summary>
/// <param name="criu">whether CRIU is installed (e.g. <c>criu --version</c> from the search path); tests give the answer</param>
/// <param name="crioConfig">reads CRI-O's configuration; null: not read (a CRI-O verdict is then Unknown)</param>
public sealed partial class RuntimeCapabilityProbe(
    IContainerRuntime runtime,
    Func<CancellationToken, Task<CriuFact>> criu,
    ICrioConfigReader? crioConfig = null)
{
    /// <param name="known">the runtime's CRI <c>Version</c> answer when the caller has just had it (not asked again)</param>
    public async Task<RuntimeCapabilities> ProbeAsync(CancellationToken ct, RuntimeVersion? known = null)
    {
        var version = known;
        string? versionError = null;
        if (version is null)
        {
            try { version = await runtime.VersionAsync(ct).ConfigureAwait(false); }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested) { versionError = e.Message; }
        }

        RuntimeStatusInfo? status = null;
        string? statusError = null;
        if (version is not null)
        {
            try { status = await runtime.StatusAsync(verbose: true, ct).ConfigureAwait(false); }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested) { statusError = e.Message; }
        }

        string? crio = null, crioError = null;
        if (version is not null && IsCrio(version.RuntimeName))
        {
            if (crioConfig is null) crioError = "no reader for CRI-O's configuration was given";
            else
            {
                try { crio = await crioConfig.ReadConfigAsync(ct).ConfigureAwait(false); }
                catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested) { crioError = e.Message; }
            }
        }

        CriuFact fact;
        try { fact = await criu(ct).ConfigureAwait(false); }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested) { fact = CriuFact.NotChecked(e.Message); }

        return Classify(new RuntimeProbeInputs(version, versionError, status, statusError, crio, crioError, fact));
    }

    // ---------------------------------------------------------------------------------------------
    // The facts the verdicts rest on, with where each was read (repository + pull request or file).
    //
    // containerd, restore from a checkpoint image inside CRI CreateContainer:
    //   < 2.1        no: added in 2.1.0 (containerd PR 10365, listed in the v2.1.0 release notes, PR 11819).
    //   2.1.x, 2.2.0–2.2.6, 2.3.0–2.3.3   yes, always on.
    //   2.2.7+, 2.3.4+  off unless enable_experimental_restore_via_create = true (PRs 13937 and 13913; release notes
    //                of v2.2.7 and v2.3.4, PRs 13946 and 13942). The option is a RuntimeConfig field, i.e. the
    //                [plugins."io.containerd.cri.v1.runtime"] table of a version = 3 config.toml (see
    //                contrib/checkpoint/checkpoint-restore-cri-disable-test.sh); a version = 2 file's
    //                [plugins."io.containerd.grpc.v1.cri"] keys are migrated into it (plugins/cri/runtime/plugin.go,
    //                configMigration). JSON name enableExperimentalRestoreViaCreate, default false
    //                (internal/cri/config/enable_criu_linux_test.go). Refusal text: "checkpoint restore via
    //                CreateContainer is disabled by configuration" (checkpoint-restore-cri-disable-test.sh).
    //   2.4+         no: removed (PR 13871) for the pod-level RestorePod CRI call (PR 13822).
    // containerd, checkpoint:
    //   < 2.0        no CRI CheckpointContainer (crsc's existing preflight rule; not re-verified here).
    //   2.2.7+, 2.3.4+  enable_criu (JSON enableCRIU, default true) turns checkpoint and restore off when false
    //                (PRs 13795 and 13734); later renamed enable_checkpoint_restore (JSON enableCheckpointRestore),
    //                enable_criu a deprecated alias that wins (internal/cri/config/enable_checkpoint_restore_linux_test.go).
    //                Refusal text: "criu support is disabled by configuration"; without CRIU: "criu binary not found".
    // containerd's CRI Status with verbose returns json.Marshal(config) under info["config"], RuntimeConfig's fields
    //   flattened at the top level (internal/cri/server/status.go; Config embeds RuntimeConfig in
    //   internal/cri/config/config.go).
    //
    // CRI-O:
    //   [crio.checkpoint_restore] container_level_enabled = "none" | "checkpoint_only" | "checkpoint_restore"
    //     (cri-o PR 10248, docs/crio.conf.5.md); default "checkpoint_only" on main (PR 10251) and in the 1.30–1.34
    //     backports (PRs 10339, 10338, 10337, 10336, 10327; 1.29's PR 10340 was closed unmerged).
    //   [crio.runtime] enable_criu_support: the older switch, deprecated by PR 10248.
    //   Disabled CRIU support answers CheckpointContainer with "checkpoint/restore support not available"
    //     (server/container_checkpoint.go).
    //   GET /config on CRI-O's socket returns its configuration as TOML, Content-Type application/toml
    //     (server/inspect.go, InspectConfigEndpoint; what `crio status config` prints).
    //   CRI-O >= 1.26 for checkpoint and restore from images: crsc's existing rule (not re-verified here).
    // ---------------------------------------------------------------------------------------------

    /// <summary>The config.toml table containerd 2.x reads the CRI runtime options from (config version 3).</summary>
    public const string ContainerdRuntimeTable = "[plugins.\"io.containerd.cri.v1.runtime\"]";
    /// <summary>The same options in a version = 2 config.toml (containerd migrates them).</summary>
    public const string ContainerdV2Table = "[plugins.\"io.containerd.grpc.v1.cri\"]";
    public const string ContainerdRestoreKey = "enable_experimental_restore_via_create";
    public const string CrioCheckpointTable = "[crio.checkpoint_restore]";
    public const string CrioLevelKey = "container_level_enabled";
    public const string CriuInstallFix = "install CRIU >= 4 where the runtime finds it (Debian: apt install criu), then restart the runtime";

    internal static string ContainerdFix(string keyAndValue) =>
        $"in /etc/containerd/config.toml set {keyAndValue} under {ContainerdRuntimeTable} ({ContainerdV2Table} in a version = 2 file), then systemctl restart containerd";

    internal static string CrioFix(string keyAndValue, string table = CrioCheckpointTable) =>
        $"set {keyAndValue} under {table} in /etc/crio/crio.conf (or a drop-in under /etc/crio/crio.conf.d/), then systemctl restart crio";

    /// <summary>The verdicts from the facts alone: no I/O, the same inputs always give the same answer.</summary>
    public static RuntimeCapabilities Classify(RuntimeProbeInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var read = DescribeInputs(inputs);
        var name = inputs.Version?.RuntimeName ?? "";
        var versionText = inputs.Version?.RuntimeVersionString ?? "";
        var fingerprint = RuntimeCapabilities.FingerprintOf(name, versionText,
            inputs.Status?.Info.GetValueOrDefault("config"), inputs.CrioConfig,
            inputs.Criu?.Present?.ToString(), inputs.Criu is { Present: true } ? inputs.Criu.Detail : null);

        (Capability Checkpoint, Capability Restore) verdict;
        if (inputs.Version is null)
        {
            var why = $"the runtime's CRI Version could not be read: {inputs.VersionError ?? "no answer"}";
            verdict = (Capability.Unknown(why), Capability.Unknown(why));
        }
        else if (ParseVersion(versionText) is not { } version)
        {
            var why = $"{name} version \"{versionText}\" is not understood";
            verdict = (Capability.Unknown(why), Capability.Unknown(why));
        }
        else if (IsContainerd(name)) verdict = Containerd(version, versionText, inputs);
        else if (IsCrio(name)) verdict = Crio(version, versionText, inputs);
        else
        {
            var why = $"runtime \"{name}\" {versionText} is not one crsc knows (containerd, CRI-O): its checkpoint and restore support cannot be judged";
            verdict = (Capability.Unknown(why, "run crsc on CRI-O >= 1.26 or containerd 2.1 to 2.3"), Capability.Unknown(why, "run crsc on CRI-O >= 1.26 or containerd 2.1 to 2.3"));
        }

        var (checkpoint, restore) = verdict;
        checkpoint = WithCriu(checkpoint, inputs.Criu);
        restore = WithCriu(restore, inputs.Criu);
        return new RuntimeCapabilities(name, versionText, checkpoint, restore, read) { Fingerprint = fingerprint };
    }

    // --- containerd ------------------------------------------------------------------------------

    private sealed record ContainerdConfig(bool? RestoreViaCreate, bool? CheckpointRestore, bool? Criu);

    private static (Capability, Capability) Containerd(Version v, string text, RuntimeProbeInputs inputs)
    {
        var label = $"containerd {text}";
        var config = ReadContainerdConfig(inputs, out var configProblem);

        Capability checkpoint;
        if (v < new Version(2, 0))
            checkpoint = Capability.NotSupported($"{label} has no CRI CheckpointContainer (containerd 2.0 added it)", "upgrade containerd to 2.1 to 2.3");
        else if (config is { CheckpointRestore: false } || config is { Criu: false })
        {
            var key = config.CheckpointRestore is null ? "enable_criu" : "enable_checkpoint_restore";
            checkpoint = Capability.Disabled($"{label} has {key} = false: CRIU support is off (\"criu support is disabled by configuration\")",
                ContainerdFix($"{key} = true"));
        }
        else checkpoint = Capability.Supported($"{label} checkpoints containers over CRI");

        Capability restore;
        if (v < new Version(2, 1))
            restore = Capability.NotSupported($"{label} cannot restore from checkpoint images in CreateContainer (added in containerd 2.1, PR 10365)",
                $"upgrade containerd to 2.1 to 2.3 (2.2.7+ and 2.3.4+ also need {ContainerdRestoreKey} = true)");
        else if (v >= new Version(2, 4))
            restore = Capability.NotSupported(
                $"{label} removed restore from checkpoint images in CreateContainer (containerd PR 13871) in favour of the pod-level RestorePod CRI call, which crsc does not use yet",
                $"run containerd 2.3 with {ContainerdRestoreKey} = true, or CRI-O with {CrioLevelKey} = \"checkpoint_restore\"");
        else if (checkpoint.State == CapabilityState.DisabledByConfig)
            restore = Capability.Disabled(checkpoint.Reason + "; restore needs it too", checkpoint.Fix!);
        else if (config?.RestoreViaCreate is { } enabled)
            // the option is in the runtime's own configuration: that is the fact, whatever the version says
            restore = enabled
                ? Capability.Supported($"{label} restores from checkpoint images ({ContainerdRestoreKey} = true)")
                : Capability.Disabled($"{label} has {ContainerdRestoreKey} = false: restore from checkpoint images is off (\"checkpoint restore via CreateContainer is disabled by configuration\")",
                    ContainerdFix($"{ContainerdRestoreKey} = true"));
        else if (RestoreOffByDefault(v))
            restore = config is not null
                ? Capability.Disabled($"{label} turns restore from checkpoint images off unless {ContainerdRestoreKey} = true (containerd PRs 13913/13937), and its configuration does not set it",
                    ContainerdFix($"{ContainerdRestoreKey} = true"))
                : Capability.Unknown($"{label} restores from checkpoint images only with {ContainerdRestoreKey} = true, and its configuration could not be read ({configProblem})",
                    $"check `containerd config dump | grep {ContainerdRestoreKey}`; if it is not true: " + ContainerdFix($"{ContainerdRestoreKey} = true"));
        else
            restore = Capability.Supported($"{label} restores from checkpoint images in CreateContainer");
        return (checkpoint, restore);
    }

    /// <summary>2.2.7+ and 2.3.4+ (containerd PRs 13937 and 13913): restore in CreateContainer is off unless enabled.</summary>
    public static bool RestoreOffByDefault(Version v) =>
        v.Major == 2 && ((v.Minor == 2 && v.Build >= 7) || (v.Minor == 3 && v.Build >= 4));

    /// <summary>containerd's CRI configuration from Status verbose <c>info["config"]</c>, or null with the reason.</summary>
    private static ContainerdConfig? ReadContainerdConfig(RuntimeProbeInputs inputs, out string problem)
    {
        problem = "";
        if (inputs.Status is null)
        {
            problem = $"CRI Status failed: {inputs.StatusError ?? "no answer"}";
            return null;
        }
        if (!inputs.Status.Info.TryGetValue("config", out var json) || string.IsNullOrWhiteSpace(json))
        {
            problem = "CRI Status with verbose returned no info[\"config\"]";
            return null;
        }
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                problem = "info[\"config\"] is not a JSON object";
                return null;
            }
            return new ContainerdConfig(
                Bool(doc.RootElement, "enableExperimentalRestoreViaCreate"),
                Bool(doc.RootElement, "enableCheckpointRestore"),
                Bool(doc.RootElement, "enableCRIU"));
        }
        catch (JsonException e)
        {
            problem = $"info[\"config\"] is not JSON: {e.Message}";
            return null;
        }

        static bool? Bool(JsonElement o, string name) =>
            o.TryGetProperty(name, out var p) && p.ValueKind is JsonValueKind.True or JsonValueKind.False ? p.GetBoolean() : null;
    }

    // --- CRI-O -----------------------------------------------------------------------------------

    private static (Capability, Capability) Crio(Version v, string text, RuntimeProbeInputs inputs)
    {
        var label = $"CRI-O {text}";
        const string levelFix = CrioLevelKey + " = \"checkpoint_restore\"";
        if (v < new Version(1, 26))
        {
            var no = Capability.NotSupported($"{label} predates checkpoint and restore from images (crsc needs CRI-O >= 1.26)", "upgrade CRI-O to 1.26 or later");
            return (no, no);
        }
        if (inputs.CrioConfig is null)
        {
            var why = $"{label}: its configuration could not be read from GET /config on its socket ({inputs.CrioConfigError ?? "not read"})";
            var fix = $"check `crio status config | grep -E '{CrioLevelKey}|enable_criu_support'`; crsc needs {levelFix} under {CrioCheckpointTable} (older CRI-O: enable_criu_support = true under [crio.runtime])";
            return (Capability.Unknown(why, fix), Capability.Unknown(why, fix));
        }
        var toml = ScanToml(inputs.CrioConfig);
        var level = toml.GetValueOrDefault("crio.checkpoint_restore." + CrioLevelKey);
        var criuSupport = toml.GetValueOrDefault("crio.runtime.enable_criu_support");

        if (level is null)
        {
            // an older CRI-O: the one switch is [crio.runtime] enable_criu_support
            return criuSupport switch
            {
                "true" => (Capability.Supported($"{label} has enable_criu_support = true"), Capability.Supported($"{label} has enable_criu_support = true: restores from checkpoint images")),
                "false" => Both(Capability.Disabled($"{label} has enable_criu_support = false: CRIU support is off (CheckpointContainer answers \"checkpoint/restore support not available\")",
                    CrioFix("enable_criu_support = true", "[crio.runtime]"))),
                _ => Both(Capability.Unknown($"{label}'s configuration sets neither {CrioLevelKey} nor enable_criu_support",
                    CrioFix(levelFix))),
            };
        }
        if (criuSupport == "false" && level != "none")
        {
            // both switches, contradicting each other; which one this CRI-O honours was not verified
            var why = $"{label}'s configuration has {CrioLevelKey} = \"{level}\" and the deprecated enable_criu_support = false; which one wins was not verified";
            var fix = $"remove enable_criu_support = false from [crio.runtime] and keep {levelFix} under {CrioCheckpointTable}, then systemctl restart crio";
            return Both(Capability.Unknown(why, fix));
        }
        return level switch
        {
            "checkpoint_restore" => (Capability.Supported($"{label} has {CrioLevelKey} = \"checkpoint_restore\""),
                Capability.Supported($"{label} has {CrioLevelKey} = \"checkpoint_restore\": restores from checkpoint images")),
            "checkpoint_only" => (Capability.Supported($"{label} has {CrioLevelKey} = \"checkpoint_only\": checkpoints containers"),
                Capability.Disabled($"{label} has {CrioLevelKey} = \"checkpoint_only\" (the default since cri-o PR 10251): restore from checkpoint images is off",
                    CrioFix(levelFix))),
            "none" => Both(Capability.Disabled($"{label} has {CrioLevelKey} = \"none\": checkpoint and restore are off", CrioFix(levelFix))),
            _ => Both(Capability.Unknown($"{label} has {CrioLevelKey} = \"{level}\", a value crsc does not know", CrioFix(levelFix))),
        };

        static (Capability, Capability) Both(Capability c) => (c, c);
    }

    /// <summary>
    /// The scalar keys of a TOML text as <c>table.key</c> → value (strings unquoted, other values as written).
    /// Enough for CRI-O's rendered configuration; arrays, inline tables and multi-line strings are skipped.
    /// </summary>
    internal static Dictionary<string, string> ScanToml(string toml)
    {
        var keys = new Dictionary<string, string>(StringComparer.Ordinal);
        var table = "";
        foreach (var raw in toml.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var header = TomlTableRegex().Match(line);
            if (header.Success)
            {
                table = string.Join('.', header.Groups["name"].Value.Split('.').Select(p => p.Trim().Trim('"', '\'')));
                continue;
            }
            var kv = TomlKeyValueRegex().Match(line);
            if (!kv.Success) continue;
            string value;
            if (kv.Groups["dq"].Success) value = kv.Groups["dq"].Value;
            else if (kv.Groups["sq"].Success) value = kv.Groups["sq"].Value;
            else if (kv.Groups["bare"].Success) value = kv.Groups["bare"].Value;
            else continue;
            keys[(table.Length == 0 ? "" : table + ".") + kv.Groups["key"].Value] = value;
        }
        return keys;
    }

    // --- shared ----------------------------------------------------------------------------------

    /// <summary>No CRIU, no checkpoint and no restore, whatever the configuration says; an unchecked CRIU makes a yes unknown.</summary>
    private static Capability WithCriu(Capability c, CriuFact? criu)
    {
        if (c.State == CapabilityState.NotSupported) return c;
        if (criu is { Present: false })
            return Capability.NotSupported(
                $"criu is not installed on this node ({criu.Detail}); the runtime needs it (containerd: \"criu binary not found\")"
                + (c.State == CapabilityState.DisabledByConfig ? "; also " + c.Reason : ""),
                c.State == CapabilityState.DisabledByConfig ? CriuInstallFix + "; and " + c.Fix : CriuInstallFix);
        if (c.State == CapabilityState.Supported && criu is not { Present: true })
            return Capability.Unknown($"{c.Reason}, but whether CRIU is installed could not be checked ({criu?.Detail ?? "not checked"})", CriuInstallFix);
        return c;
    }

    private static List<string> DescribeInputs(RuntimeProbeInputs i)
    {
        var lines = new List<string>
        {
            i.Version is { } v ? $"CRI Version: {v.RuntimeName} {v.RuntimeVersionString}" : $"CRI Version: failed: {i.VersionError}",
        };
        if (i.Status is { } s) lines.Add(s.Info.ContainsKey("config") ? "CRI Status verbose: info[\"config\"] read" : $"CRI Status verbose: keys [{string.Join(", ", s.Info.Keys.Order(StringComparer.Ordinal))}], no \"config\"");
        else if (i.StatusError is not null) lines.Add($"CRI Status verbose: failed: {i.StatusError}");
        if (i.CrioConfig is not null) lines.Add("CRI-O GET /config: read");
        else if (i.CrioConfigError is not null) lines.Add($"CRI-O GET /config: failed: {i.CrioConfigError}");
        if (i.Criu is { } c) lines.Add(c.Present switch { true => $"criu: {c.Detail}", false => $"criu: missing: {c.Detail}", _ => $"criu: not checked: {c.Detail}" });
        return lines;
    }

    internal static bool IsContainerd(string name) => string.Equals(name, "containerd", StringComparison.OrdinalIgnoreCase);
    internal static bool IsCrio(string name) => string.Equals(name, "cri-o", StringComparison.OrdinalIgnoreCase);

    /// <summary>Major.minor.patch at the start of a version text (<c>v2.2.7</c>, <c>2.1.4~ds1-1</c>, <c>1.34.2</c>), or null.</summary>
    internal static Version? ParseVersion(string text)
    {
        var m = VersionRegex().Match(text.Trim());
        if (!m.Success) return null;
        static int N(Group g) => g.Success ? int.Parse(g.Value, CultureInfo.InvariantCulture) : 0;
        return new Version(N(m.Groups[1]), N(m.Groups[2]), N(m.Groups[3]));
    }

    [GeneratedRegex(@"^v?([0-9]{1,6})\.([0-9]{1,6})(?:\.([0-9]{1,6}))?")]
    private static partial Regex VersionRegex();

    [GeneratedRegex(@"^\[(?!\[)(?<name>[^\]]+)\]\s*(?:#.*)?$")]
    private static partial Regex TomlTableRegex();

    [GeneratedRegex(@"^(?<key>[A-Za-z0-9_-]+)\s*=\s*(?:""(?<dq>[^""\\]*)""|'(?<sq>[^']*)'|(?<bare>[A-Za-z0-9_.+-]+))\s*(?:#.*)?$")]
    private static partial Regex TomlKeyValueRegex();
}

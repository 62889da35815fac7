using System.Globalization;
using Crsc.Preflight;

namespace Crsc.Run;

/// <summary>
/// <c>crsc run --check</c>: whether CRIU can work in this container, one row per check with what to add to the pod
/// spec when it cannot: criu and its version, <c>criu check</c>, the capabilities, the seccomp mode, a writable
/// <c>imageDir</c> and a readable node-state file.
/// </summary>
internal sealed class RunCheck(IPreflightHost host, IProgramRunner programs, Func<string, string?> tryWrite)
{
    // capability bits (linux/capability.h)
    private const int CapNetAdmin = 12, CapSysPtrace = 19, CapSysAdmin = 21, CapCheckpointRestore = 40;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public async Task<IReadOnlyList<PreflightRow>> RunAsync(RunOptions options, CancellationToken ct)
    {
        var rows = new List<PreflightRow>();
        var criu = options.CriuPath.Contains('/', StringComparison.Ordinal) ? (File.Exists(options.CriuPath) ? options.CriuPath : null) : host.FindExecutable(options.CriuPath);
        if (criu is null)
        {
            rows.Add(PreflightRow.Fail("criu", $"{options.CriuPath} is not installed (not found{(options.CriuPath.Contains('/', StringComparison.Ordinal) ? "" : " on PATH")})",
                "install criu >= 4 in the image (Debian/Ubuntu: apt-get install criu) or set criuPath in the crsc run configuration"));
        }
        else
        {
            var version = await programs.RunAsync(criu, ["--version"], Timeout, ct).ConfigureAwait(false);
            var line = version.Output.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("Version:", StringComparison.Ordinal));
            rows.Add(version.ExitCode == 0 && line is not null
                ? PreflightRow.Ok("criu", $"{criu}, {line}")
                : PreflightRow.Fail("criu", $"{criu} --version failed: {FirstLine(version.Output)}", "install a working criu >= 4 in the image"));
            var check = await programs.RunAsync(criu, ["check"], Timeout, ct).ConfigureAwait(false);
            rows.Add(check.ExitCode == 0
                ? PreflightRow.Ok("criu check", FirstLine(check.Output) is { Length: > 0 } l ? l : "passed")
                : PreflightRow.Fail("criu check", $"exit {check.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "?"}: {LastLine(check.Output)}",
                    "see the capability and seccomp rows; the kernel needs CONFIG_CHECKPOINT_RESTORE"));
        }

        var status = host.ReadText("/proc/self/status") ?? "";
        var capEff = Field(status, "CapEff") is { } hex && ulong.TryParse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var c) ? c : 0UL;
        bool Has(int cap) => (capEff & (1UL << cap)) != 0;
        var missing = new List<string>();
        if (!Has(CapSysAdmin) && !Has(CapCheckpointRestore)) missing.Add("CHECKPOINT_RESTORE");
        if (!Has(CapSysPtrace)) missing.Add("SYS_PTRACE");
        if (!Has(CapNetAdmin)) missing.Add("NET_ADMIN");
        rows.Add(missing.Count == 0
            ? PreflightRow.Ok("capabilities", $"CapEff {capEff:x16}: {(Has(CapSysAdmin) ? "SYS_ADMIN" : "CHECKPOINT_RESTORE")}, SYS_PTRACE, NET_ADMIN")
            : PreflightRow.Fail("capabilities", $"CapEff {capEff:x16}: missing {string.Join(", ", missing)}",
                $"add to the container: securityContext.capabilities.add: [{string.Join(", ", missing)}]" +
                (missing.Contains("CHECKPOINT_RESTORE") ? " (SYS_ADMIN instead of CHECKPOINT_RESTORE on kernels before 5.9)" : "") +
                (missing.Contains("NET_ADMIN") ? "; NET_ADMIN is for open TCP connections (--tcp-established)" : "")));

        var seccomp = Field(status, "Seccomp");
        rows.Add(seccomp switch
        {
            "0" => PreflightRow.Ok("seccomp", "no seccomp filter"),
            "2" => PreflightRow.Warn("seccomp", "a seccomp filter is active (e.g. RuntimeDefault): criu may be refused the system calls it needs",
                "if criu check or a dump fails with EPERM, set securityContext.seccompProfile.type: Unconfined (or a Localhost profile that allows ptrace, process_vm_readv, kcmp, clone3 and the checkpoint system calls)"),
            "1" => PreflightRow.Fail("seccomp", "strict seccomp mode: criu cannot run", "run the container without strict seccomp"),
            _ => PreflightRow.Warn("seccomp", "the seccomp mode cannot be read from /proc/self/status", "none needed when criu check passes"),
        });

        var writeProblem = tryWrite(options.ImageDir);
        rows.Add(writeProblem is null
            ? PreflightRow.Ok("imageDir", $"{options.ImageDir} is writable")
            : PreflightRow.Fail("imageDir", $"{options.ImageDir}: {writeProblem}",
                "mount a writable volume that follows the pod at imageDir (a PersistentVolumeClaim, not emptyDir)"));

        var verdict = NodeStateReader.Read(options.NodeStateFile);
        rows.Add(verdict.State is not null
            ? PreflightRow.Ok("node state", $"{options.NodeStateFile}: {verdict.Why}")
            : PreflightRow.Fail("node state", verdict.Why,
                "mount the node's /run/crsc/node-state read-only: a hostPath volume (path /run/crsc/node-state, type Directory) with readOnly: true; without it every SIGTERM is a plain stop"));
        return rows;
    }

    /// <summary>Creates and removes a file in the directory; null when that worked, else why not.</summary>
    public static string? TryWrite(string dir)
    {
        try
        {
            if (!Directory.Exists(dir)) return "does not exist";
            var probe = Path.Combine(dir, ".crsc-run-check-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
            File.WriteAllText(probe, "");
            File.Delete(probe);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return "is not writable: " + e.Message; }
    }

    private static string? Field(string status, string name) =>
        status.Split('\n').Select(l => l.Split(':', 2)).Where(p => p.Length == 2 && p[0] == name).Select(p => p[1].Trim()).FirstOrDefault();

    private static string FirstLine(string text) => text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0) ?? "";

    private static string LastLine(string text) => text.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.Length > 0) ?? "(no output)";
}

using System.Text;
using System.Text.Json;
using Crsc.Configuration;
using Crsc.Preflight;

namespace Crsc.Cli;

/// <summary><c>crsc preflight</c>: checks the node crsc runs on and prints what to fix.</summary>
internal static class PreflightCommand
{
    public static CommandSpec Spec() => new("preflight", "Check this node: container runtime, CRIU, cgroups, kernel, directories.")
    {
        Description = "Checks what crsc needs on a node and prints one row per check (OK, WARN or FAIL) with a\n" +
                      "\"fix:\" line for each row that is not OK: the runtime's CRI socket answers and its version\n" +
                      "can checkpoint and restore (CRI-O >= 1.26, containerd 2.1-2.3), what its configuration allows\n" +
                      "(checkpoint: FAIL when off; restore from checkpoint images: WARN when off, with the exact\n" +
                      "setting, e.g. CRI-O's container_level_enabled or containerd's\n" +
                      "enable_experimental_restore_via_create), CRIU >= 4 is installed and\n" +
                      "`criu check` passes, the cgroup layout, the kernel's checkpoint/restore support, that\n" +
                      "crsc's directories are root-owned and 0700 (or can be created), and whether the runtime and\n" +
                      "its runc/crun predate security fixes that matter for restores (a WARN names the advisory and\n" +
                      "the release to upgrade to). Reads the configuration like `crsc daemon`. Exit 0 when nothing\n" +
                      "FAILs (warnings included), 1 otherwise. Run it as root.",
        Options = [new OptionSpec("--json", null, "print the rows as JSON"), .. Commands.ConfigFlags()],
        Handler = RunAsync,
        Examples = ["sudo crsc preflight", "sudo crsc preflight --runtime-endpoint unix:///run/containerd/containerd.sock", "crsc preflight --json"],
    };

    public static Task<int> RunAsync(ParsedCommand p, CancellationToken ct) =>
        RunAsync(p, Preflight(new SystemProgramRunner()), ct);

    private static NodePreflight Preflight(SystemProgramRunner programs) =>
        new(new SystemPreflightHost(), programs, new CriRuntimeVersionProbe(), new CriRuntimeCapabilitySource(programs));

    internal static async Task<int> RunAsync(ParsedCommand p, NodePreflight preflight, CancellationToken ct)
    {
        var config = ConfigLoader.Load(p.Value("--config"), Commands.ProcessEnvironment(), Commands.ConfigFlagValues(p));
        var rows = new List<PreflightRow>
        {
            config.IsValid
                ? PreflightRow.Ok("configuration", config.File is null ? "defaults (no configuration file)" : config.File + " is valid")
                : PreflightRow.Fail("configuration", string.Join("; ", config.Errors), "crsc config check shows every value and where it came from"),
        };
        rows.AddRange(await preflight.RunAsync(config.Options, ct).ConfigureAwait(false));
        if (p.Has("--json")) WriteJson(p.Out, rows);
        else WriteTable(p.Out, rows);
        return ExitCode(rows);
    }

    internal static int ExitCode(IEnumerable<PreflightRow> rows) =>
        rows.Any(r => r.Status == PreflightStatus.Fail) ? ExitCodes.Failure : ExitCodes.Ok;

    internal static void WriteTable(TextWriter output, IReadOnlyList<PreflightRow> rows)
    {
        var lines = new List<IReadOnlyList<string>>();
        foreach (var r in rows)
        {
            lines.Add([r.Check, Label(r.Status), r.Detail]);
            if (r.Status != PreflightStatus.Ok && r.Fix is not null) lines.Add(["", "", "fix: " + r.Fix]);
        }
        CliOutput.Table(output, ["CHECK", "STATUS", "DETAIL"], lines);
        int ok = rows.Count(r => r.Status == PreflightStatus.Ok), warn = rows.Count(r => r.Status == PreflightStatus.Warn),
            fail = rows.Count(r => r.Status == PreflightStatus.Fail);
        output.WriteLine();
        output.WriteLine(fail == 0
            ? $"{ok} ok, {warn} warning(s): this node can run crsc{(warn > 0 ? " (see the warnings)" : "")}"
            : $"{ok} ok, {warn} warning(s), {fail} failed: fix the FAIL rows before starting crsc");
    }

    internal static void WriteJson(TextWriter output, IReadOnlyList<PreflightRow> rows)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteBoolean("ok", ExitCode(rows) == ExitCodes.Ok);
            w.WriteStartArray("checks");
            foreach (var r in rows)
            {
                w.WriteStartObject();
                w.WriteString("check", r.Check);
                w.WriteString("status", Label(r.Status));
                w.WriteString("detail", r.Detail);
                if (r.Fix is not null && r.Status != PreflightStatus.Ok) w.WriteString("fix", r.Fix);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        output.WriteLine(Encoding.UTF8.GetString(stream.ToArray()));
    }

    private static string Label(PreflightStatus s) => s switch
    {
        PreflightStatus.Ok => "OK",
        PreflightStatus.Warn => "WARN",
        _ => "FAIL",
    };
}

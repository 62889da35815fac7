using System.Diagnostics;
using System.Text;

namespace Crsc.E2E.Tests.Sandbox;

/// <summary>The outcome of a finished command.</summary>
public sealed record CommandResult(int ExitCode, string Stdout, string Stderr)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Stdout and stderr together (CRIU and friends write their verdicts to either).</summary>
    public string Output => Stdout + Stderr;

    public override string ToString() =>
        $"exit {ExitCode}\n--- stdout ---\n{Tail(Stdout)}\n--- stderr ---\n{Tail(Stderr)}";

    private static string Tail(string s) => s.Length <= 4000 ? s : "…" + s[^4000..];
}

/// <summary>
/// Runs a program with an argument vector (no shell), streams each output line to a callback,
/// and kills the whole process tree when the timeout or the token fires.
/// </summary>
public static class CommandRunner
{
    public static async Task<CommandResult> RunAsync(
        string fileName, IEnumerable<string> args, Action<string>? onLine = null,
        TimeSpan? timeout = null, IDictionary<string, string>? environment = null, CancellationToken ct = default)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (environment is not null)
            foreach (var (k, v) in environment) psi.Environment[k] = v;

        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => { if (e.Data is { } l) { lock (stdout) stdout.AppendLine(l); onLine?.Invoke(l); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is { } l) { lock (stderr) stderr.AppendLine(l); onLine?.Invoke(l); } };
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout ?? TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            await process.WaitForExitAsync(CancellationToken.None);
            ct.ThrowIfCancellationRequested();
            throw new TimeoutException(
                $"{fileName} {string.Join(' ', psi.ArgumentList)} did not finish within {(timeout ?? TimeSpan.FromMinutes(2)).TotalSeconds:0} s; "
                + $"output so far:\n{stdout}{stderr}");
        }
        process.WaitForExit(); // drains the asynchronous readers
        string o, e2;
        lock (stdout) o = stdout.ToString();
        lock (stderr) e2 = stderr.ToString();
        return new CommandResult(process.ExitCode, o, e2);
    }
}

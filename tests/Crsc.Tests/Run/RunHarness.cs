using System.Diagnostics;
using System.Globalization;
using Crsc.Testing;

namespace Crsc.Tests.Run;

/// <summary>What the fake criu does for a dump or a restore.</summary>
public enum FakeMode { Ok, Fail, Hang }

/// <summary>
/// A <c>crsc run</c> under test: the real <c>crsc</c> binary started with a configuration whose criuPath is a fake
/// criu (a shell script) that records its argument vector per verb (<c>argv.dump</c>, <c>argv.restore</c>, one
/// argument per line), writes image files and kills the tree on dump, and starts a stand-in "restored" process on
/// restore (detached, reparented to crsc run like CRIU's), writing its pid to the --pidfile.
/// </summary>
public sealed class RunHarness : IDisposable
{
    private readonly TempDir _dir = new("crsc-run-test-");

    public string Root => _dir.Path;
    public string ImageDir => _dir.Combine("images");
    public string StateFile => _dir.Combine("state.json");
    public string ConfigFile => _dir.Combine("run.yaml");
    public string CriuDir => _dir.Combine("criu");
    public string CheckpointDir => Path.Combine(ImageDir, "checkpoint");

    public RunHarness(FakeMode dump = FakeMode.Ok, FakeMode restore = FakeMode.Ok, string restored = "echo restored-process; sleep 0.3; exit 5", string extraConfig = "")
    {
        Directory.CreateDirectory(ImageDir);
        Directory.CreateDirectory(CriuDir);
        WriteFakeCriu(dump, restore, restored);
        File.WriteAllText(ConfigFile, $"""
            imageDir: {ImageDir}
            criuPath: {Path.Combine(CriuDir, "criu")}
            nodeStateFile: {StateFile}
            dumpTimeoutSeconds: 2
            {extraConfig}
            """);
    }

    public static string Binary => Path.Combine(AppContext.BaseDirectory, "crsc");

    public void NodeGoingAway(bool goingAway, string reason = "Drain") =>
        File.WriteAllText(StateFile, $$"""{"node":"node-a","goingAway":{{(goingAway ? "true" : "false")}},"reason":{{(goingAway ? $"\"{reason}\"" : "null")}},"detail":"cordoned","since":"2026-12-07T06:00:00Z","updated":"2026-12-07T06:00:01Z"}""");

    /// <summary>The argument vector criu got for <paramref name="verb"/>, or null when it was not run for it.</summary>
    public string[]? CriuArgv(string verb)
    {
        var f = Path.Combine(CriuDir, "argv." + verb);
        return File.Exists(f) ? File.ReadAllLines(f) : null;
    }

    private void WriteFakeCriu(FakeMode dump, FakeMode restore, string restored)
    {
        var script = $$"""
            #!/bin/sh
            d=$(dirname "$0")
            verb=$1
            printf '%s\n' "$@" > "$d/argv.$verb"
            shift
            images=""; pid=""; pidfile=""
            while [ $# -gt 0 ]; do
              case "$1" in
                --images-dir) images=$2; shift ;;
                --tree) pid=$2; shift ;;
                --pidfile) pidfile=$2; shift ;;
              esac
              shift
            done
            case "$verb" in
              --version) echo "Version: 4.2"; exit 0 ;;
              check) echo "Looks good."; exit 0 ;;
              dump)
                case "{{dump}}" in
                  Fail) echo "Error (criu/cr-dump.c:2100): fake dump failure" >&2; echo partial > "$images/pages-1.img"; exit 1 ;;
                  Hang) echo partial > "$images/pages-1.img"; exec sleep 600 ;;
                esac
                echo "core of $pid" > "$images/core-$pid.img"
                head -c 70000 /dev/urandom > "$images/pages-1.img"
                mkdir "$images/sub" && echo x > "$images/sub/inventory.img"
                kill -9 "$pid"
                exit 0 ;;
              restore)
                case "{{restore}}" in
                  Fail) echo "Error (criu/cr-restore.c:1500): fake restore failure" >&2; exit 1 ;;
                esac
                setsid sh -c '{{restored}}' &
                echo $! > "$pidfile"
                exit 0 ;;
            esac
            exit 3
            """;
        var path = Path.Combine(CriuDir, "criu");
        File.WriteAllText(path, script);
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
    }

    /// <summary>Starts <c>crsc run --config … -- CMD</c> through sh (so it inherits descriptor 9, opened without close-on-exec).</summary>
    public RunningCrsc Start(params string[] command)
    {
        var psi = new ProcessStartInfo("sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Root,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec 9</dev/null; exec \"$0\" \"$@\"");
        psi.ArgumentList.Add(Binary);
        foreach (var a in (string[])["run", "--config", ConfigFile, "--", .. command]) psi.ArgumentList.Add(a);
        return new RunningCrsc(Process.Start(psi)!);
    }

    public void Dispose() => _dir.Dispose();
}

public sealed class RunningCrsc : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _stdout;
    private readonly Task<string> _stderr;

    public RunningCrsc(Process process)
    {
        _process = process;
        _stdout = process.StandardOutput.ReadToEndAsync();
        _stderr = process.StandardError.ReadToEndAsync();
    }

    public int Pid => _process.Id;

    public void Signal(string name)
    {
        using var kill = Process.Start("kill", ["-" + name, _process.Id.ToString(CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }

    /// <summary>Exit code, stdout and stderr once it ended (fails the test after 30 s).</summary>
    public async Task<(int Code, string Out, string Err)> ExitAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try { await _process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException("crsc run did not exit within 30 s; stderr: " + await _stderr);
        }
        return (_process.ExitCode, await _stdout, await _stderr);
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}

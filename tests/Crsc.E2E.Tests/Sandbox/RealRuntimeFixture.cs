using System.Diagnostics;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Crsc.E2E.Tests.Sandbox;

/// <summary>The tests that share one <see cref="RealRuntimeFixture"/> (and so one containerd).</summary>
[CollectionDefinition(Name)]
public sealed class RealRuntimeCollection : ICollectionFixture<RealRuntimeFixture>
{
    public const string Name = "Real runtime (tests/sandbox)";
}

/// <summary>
/// Brings up the real components of <c>tests/sandbox</c> once for a test collection:
/// setup-rootfs.sh → ns-up.sh → setup-containerd.sh → start-containerd.sh (each idempotent, so a
/// machine that already built the rootfs starts in seconds). Their output goes to the xunit
/// diagnostic messages and to <see cref="LogPath"/>. On dispose containerd, the registry and the
/// namespace are stopped and the directories the tests made under <see cref="SharedDirectory"/> removed; the rootfs stays for the next run (<c>CRSC_E2E_KEEP=1</c> leaves
/// everything running, for poking at it by hand).
/// When <see cref="RealComponents.SkipReason"/> is set nothing is started (the tests are skipped).
/// </summary>
public sealed class RealRuntimeFixture : IAsyncLifetime
{
    private readonly IMessageSink _sink;
    private readonly object _logLock = new();
    private StreamWriter? _log;
    private bool _started;
    private readonly List<(string Step, TimeSpan Took)> _timings = [];
    private readonly List<string> _sharedDirectories = [];
    private FileStream? _sessionLock;
    private static readonly TimeSpan SessionLockWait = TimeSpan.FromMinutes(30);

    public RealRuntimeFixture(IMessageSink sink)
    {
        _sink = sink;
        SandboxDirectory = Env("CRSC_SANDBOX_DIR", "/var/lib/crsc-sandbox");
        RootfsPath = Env("CRSC_SANDBOX_ROOTFS", Path.Combine(SandboxDirectory, "rootfs"));
        RunDirectory = Env("CRSC_SANDBOX_RUN", "/run/crsc-sandbox");
        SharedDirectory = Env("CRSC_SANDBOX_SHARED", Path.Combine(SandboxDirectory, "shared"));
        RegistryAddress = Env("CRSC_SANDBOX_REGISTRY", "127.0.0.1:5000");
        LogPath = Path.Combine(SandboxDirectory, "e2e-fixture.log");
    }

    /// <summary>False when the real-component tests are skipped here (nothing was started).</summary>
    public bool Available => RealComponents.SkipReason is null;

    public string ScriptsDirectory => RealComponents.ScriptsDirectory;
    public string SandboxDirectory { get; }
    /// <summary>The trixie root filesystem (the namespace's <c>/</c>).</summary>
    public string RootfsPath { get; }
    /// <summary>Pid files and the CRI socket; the same path on the host and in the namespace.</summary>
    public string RunDirectory { get; }
    /// <summary>Scratch directory at the same path on the host and in the namespace: give the runtime paths under it.</summary>
    public string SharedDirectory { get; }

    /// <summary>containerd's CRI socket, usable from the host (and at the same path inside).</summary>
    public string CriSocketPath => Path.Combine(RunDirectory, "containerd.sock");
    /// <summary><see cref="CriSocketPath"/> as a CRI endpoint (<c>unix:///run/crsc-sandbox/containerd.sock</c>).</summary>
    public string CriEndpoint => "unix://" + CriSocketPath;

    /// <summary>The loopback registry (plain HTTP, no auth), e.g. <c>127.0.0.1:5000</c>.</summary>
    public string RegistryAddress { get; }
    /// <summary>
    /// Where the E2E tests' daemons serve checkpoint images (<c>images.listen</c>): setup-containerd.sh gives containerd a
    /// plain-HTTP hosts.toml for it (and for the default 127.0.0.1:5055, which other daemons on the machine may hold).
    /// </summary>
    public string CheckpointImagesAddress => "127.0.0.1:5056";
    /// <summary>busybox-static image, entrypoint <c>/bin/sh</c>, applets in <c>/bin</c>.</summary>
    public string BusyboxImage => $"{RegistryAddress}/crsc-sandbox/busybox:1";
    /// <summary>The pod-sandbox image containerd is configured with (<c>sleep infinity</c>).</summary>
    public string PauseImage => $"{RegistryAddress}/crsc-sandbox/pause:1";
    /// <summary>cgroupfs parent for test pods (<c>/crsc-sandbox/…</c>); stop-containerd.sh removes it.</summary>
    public string CgroupParent => "/crsc-sandbox";

    /// <summary>Host pid of the process holding the namespace.</summary>
    public int HolderPid => int.Parse(File.ReadAllText(Path.Combine(RunDirectory, "ns-holder.pid")).Trim());

    /// <summary>Held (flock) while a test run or the demo uses the sandbox.</summary>
    public string SessionLockPath => Path.Combine(SandboxDirectory, "session.lock");

    /// <summary>Where the scripts' output of this run is written.</summary>
    public string LogPath { get; }

    /// <summary>How long each setup step took in this run.</summary>
    public IReadOnlyList<(string Step, TimeSpan Took)> Timings => _timings;

    /// <summary>The host path of a path inside the namespace (through the holder's root).</summary>
    public string HostPath(string pathInNamespace) =>
        $"/proc/{HolderPid}/root/{pathInNamespace.TrimStart('/')}";

    /// <summary>A new empty directory under <see cref="SharedDirectory"/> (same path on both sides).</summary>
    public string CreateSharedDirectory(string prefix)
    {
        var dir = Path.Combine(SharedDirectory, $"{prefix}{DateTime.UtcNow:HHmmss}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(dir);
        lock (_sharedDirectories) _sharedDirectories.Add(dir);
        return dir;
    }

    /// <summary>Runs <paramref name="argv"/> inside the namespace (root = the trixie rootfs, clean environment).</summary>
    public Task<CommandResult> InNamespaceAsync(params string[] argv) => InNamespaceAsync(argv, null, default);

    public Task<CommandResult> InNamespaceAsync(IReadOnlyList<string> argv, TimeSpan? timeout, CancellationToken ct = default)
    {
        if (argv.Count == 0) throw new ArgumentException("no command", nameof(argv));
        return CommandRunner.RunAsync("bash", [Path.Combine(ScriptsDirectory, "in-ns.sh"), .. argv],
            timeout: timeout ?? TimeSpan.FromMinutes(2), ct: ct);
    }

    /// <summary>Runs one of the sandbox scripts (e.g. <c>start-containerd.sh</c>), its output going to the fixture's log.</summary>
    public Task<CommandResult> RunSandboxScriptAsync(string script, TimeSpan? timeout = null) =>
        RunScriptAsync(script, timeout ?? TimeSpan.FromMinutes(10));

    public async Task InitializeAsync()
    {
        if (!Available) return;
        if (!RealComponents.IsRoot)
            throw new InvalidOperationException("the real-component tests must run as root (CI=true forbids skipping them)");
        Directory.CreateDirectory(SandboxDirectory);
        await AcquireSessionLockAsync();
        _log = new StreamWriter(LogPath, append: false) { AutoFlush = true };
        Log($"sandbox scripts: {ScriptsDirectory}");
        _started = true;
        var total = Stopwatch.StartNew();
        await StepAsync("setup-rootfs.sh", TimeSpan.FromMinutes(30));
        await StepAsync("ns-up.sh", TimeSpan.FromMinutes(1));
        await StepAsync("setup-containerd.sh", TimeSpan.FromMinutes(15));
        await StepAsync("start-containerd.sh", TimeSpan.FromMinutes(10));
        Log($"sandbox ready in {total.Elapsed.TotalSeconds:0.0} s ({string.Join(", ", _timings.Select(t => $"{t.Step} {t.Took.TotalSeconds:0.0} s"))})");
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (!_started) return;
            if (Environment.GetEnvironmentVariable("CRSC_E2E_KEEP") == "1")
            {
                Log($"CRSC_E2E_KEEP=1: leaving containerd, the registry and the namespace running (stop: {ScriptsDirectory}/stop-containerd.sh && {ScriptsDirectory}/ns-down.sh)");
                return;
            }
            // both always run: a failed stop must not leave the namespace holder behind
            var stop = await RunScriptAsync("stop-containerd.sh", TimeSpan.FromMinutes(2));
            var down = await RunScriptAsync("ns-down.sh", TimeSpan.FromMinutes(1));
            if (!stop.Succeeded || !down.Succeeded)
                Log($"WARNING: teardown incomplete (stop-containerd.sh exit {stop.ExitCode}, ns-down.sh exit {down.ExitCode})");
            // the tests' directories hold checkpoint archives (process memory) and logs: gone with the run, whatever
            // a test left in them (a failing test's are kept in its own output, not here)
            else RemoveSharedDirectories();
        }
        finally
        {
            _log?.Dispose();
            _sessionLock?.Dispose();
        }
    }

    /// <summary>
    /// One user of the sandbox at a time (a second test run or <c>make demo</c> would stop this one's containerd when it
    /// tears down): an exclusive flock on <see cref="SessionLockPath"/>, taken by demo.sh too, held until dispose.
    /// .NET opens it close-on-exec, so the scripts and daemons started meanwhile never hold it.
    /// </summary>
    private async Task AcquireSessionLockAsync()
    {
        var waited = Stopwatch.StartNew();
        var told = false;
        while (true)
        {
            try
            {
                // FileShare.None is an exclusive, non-blocking flock(2) on Unix
                _sessionLock = new FileStream(SessionLockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                if (told) _sink.OnMessage(new DiagnosticMessage($"[sandbox] got {SessionLockPath} after {waited.Elapsed.TotalSeconds:0} s"));
                return;
            }
            catch (IOException) when (waited.Elapsed < SessionLockWait)
            {
                if (!told)
                    _sink.OnMessage(new DiagnosticMessage($"[sandbox] waiting for {SessionLockPath}: another test run or make demo is using the sandbox"));
                told = true;
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
        }
    }

    private void RemoveSharedDirectories()
    {
        string[] dirs;
        lock (_sharedDirectories) dirs = [.. _sharedDirectories];
        foreach (var dir in dirs)
        {
            try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Log($"WARNING: could not remove {dir}: {e.Message}"); }
        }
        Log($"removed {dirs.Length} test director{(dirs.Length == 1 ? "y" : "ies")} under {SharedDirectory}");
    }

    private async Task StepAsync(string script, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        var result = await RunScriptAsync(script, timeout);
        _timings.Add((script, sw.Elapsed));
        if (!result.Succeeded)
            throw new InvalidOperationException(
                $"sandbox step {script} failed (exit {result.ExitCode}) after {sw.Elapsed.TotalSeconds:0} s; full log: {LogPath}\n{result}");
    }

    private async Task<CommandResult> RunScriptAsync(string script, TimeSpan timeout)
    {
        Log($"$ {script}");
        var sw = Stopwatch.StartNew();
        var result = await CommandRunner.RunAsync("bash", [Path.Combine(ScriptsDirectory, script)],
            onLine: line => Log("  " + line), timeout: timeout);
        Log($"{script}: exit {result.ExitCode} in {sw.Elapsed.TotalSeconds:0.0} s");
        return result;
    }

    private void Log(string line)
    {
        lock (_logLock) _log?.WriteLine($"{DateTime.Now:HH:mm:ss.fff} {line}");
        _sink.OnMessage(new DiagnosticMessage("[sandbox] " + line));
    }

    private static string Env(string name, string fallback) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : fallback;
}

using System.Diagnostics;
using System.Globalization;

namespace Crsc.Run;

/// <summary>
/// <c>crsc run -- CMD</c>: restores CMD from a verified checkpoint in <c>imageDir</c> or starts it (a child in its own
/// session, no inherited descriptors above 2), forwards signals to it, and on SIGTERM either checkpoints it (the node
/// agent says the node is going away) or passes the SIGTERM on. Exit code: the child's (128 + signal when a signal
/// ended it), 0 after a checkpoint, 1 when the checkpoint failed, 127/126 when CMD cannot be started.
/// </summary>
internal sealed class RunSupervisor : IDisposable
{
    public const int SigHup = 1, SigInt = 2, SigQuit = 3, SigKill = 9, SigUsr1 = 10, SigUsr2 = 12, SigTerm = 15;
    private static readonly TimeSpan RestoreTimeout = TimeSpan.FromMinutes(5);

    private readonly RunOptions _options;
    private readonly IReadOnlyList<string> _command;
    private readonly RunLog _log;
    private readonly ChildReaper _reaper = new();
    private readonly CheckpointDirectory _dir;
    private readonly Criu _criu;
    private readonly Lock _lock = new();
    private readonly List<int> _pending = [];
    private int _child;
    private bool _exited;
    private Task? _termination;
    private bool _checkpointed;
    private bool _checkpointFailed;

    public RunSupervisor(RunOptions options, IReadOnlyList<string> command, RunLog log)
    {
        _options = options;
        _command = command;
        _log = log;
        _dir = new CheckpointDirectory(options.ImageDir);
        _criu = new Criu(options.CriuPath, _reaper);
    }

    private string CommandText => string.Join(" ", _command);

    public async Task<int> RunAsync()
    {
        if (!RunNative.BecomeSubreaper()) _log.Line("cannot become a child subreaper (prctl); a restored process may not be waited for");
        var pid = await StartAsync();
        if (pid < 0) return -pid;

        lock (_lock)
        {
            _child = pid;
            foreach (var s in _pending) Deliver(s);
            _pending.Clear();
        }
        var status = await _reaper.WaitAsync(pid);
        Task? termination;
        lock (_lock)
        {
            _exited = true;
            termination = _termination;
        }
        if (termination is not null) await termination;

        if (_checkpointed) return 0;
        var code = RunNative.ExitCodeOf(status);
        var signal = RunNative.TermSignalOf(status);
        if (_checkpointFailed)
        {
            _log.Line($"exiting 1: the checkpoint failed ({CommandText} ended with {Describe(status)})");
            return 1;
        }
        if (signal != 0) _log.Line($"{CommandText} was ended by signal {signal}; exiting {code}");
        else if (code != 0) _log.Line($"{CommandText} exited with code {code}");
        return code;
    }

    /// <summary>The pid of the restored or started child, or -exitcode when neither could be done.</summary>
    private async Task<int> StartAsync()
    {
        try
        {
            foreach (var name in _dir.RemoveLeftovers())
                _log.Line($"removed {Path.Combine(_options.ImageDir, name)}: a checkpoint that was not finished (the dump was interrupted)");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Line($"cannot remove an unfinished checkpoint in {_options.ImageDir}: {e.Message}");
        }

        CheckpointFound found;
        try { found = _dir.Find(_command); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            found = new CheckpointFound(null, "it cannot be read: " + e.Message);
        }
        if (found.Manifest is { } manifest)
        {
            if (await RestoreAsync(manifest) is { } restored) return restored;
        }
        else if (found.Problem is { } problem)
        {
            _log.Line($"not restoring the checkpoint in {_dir.CheckpointPath}: {problem}; starting fresh (it is moved to {_dir.RejectedPath})");
            TryReject();
        }

        if (PidFloor.Raise(PidFloor.CurrentPidNamespace()) is { } warning) _log.Line(warning);
        try
        {
            return _reaper.Spawn(_command, newSession: true);
        }
        catch (SpawnException e)
        {
            var code = e.Errno == RunNative.Enoent ? 127 : 126;
            _log.Line($"{e.Message}; exiting {code}");
            return -code;
        }
    }

    private async Task<int?> RestoreAsync(RunManifest manifest)
    {
        _log.Line($"restoring {CommandText} from the checkpoint of {manifest.Created:yyyy-MM-dd'T'HH:mm:ss'Z'}" +
                  $" (node {manifest.Node ?? "?"}, reason {manifest.Reason ?? "?"}) in {_dir.CheckpointPath}");
        var pidFile = Path.Combine(_options.ImageDir, "criu-restore.pid");
        var sw = Stopwatch.StartNew();
        try
        {
            File.Delete(pidFile);
            _dir.RestoreAdditionalPaths(manifest);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Line($"cannot copy the checkpoint's additionalPaths back: {e.Message}; starting fresh (the checkpoint is moved to {_dir.RejectedPath})");
            TryReject();
            return null;
        }
        CriuResult result;
        try
        {
            result = await _criu.RestoreAsync(Path.Combine(_dir.CheckpointPath, CheckpointDirectory.ImagesEntry), _dir.RestoreLog, pidFile, manifest.Stdio, RestoreTimeout);
        }
        catch (SpawnException e)
        {
            _log.Line($"{e.Message} (criuPath {_options.CriuPath}); starting fresh without the checkpoint (it is kept for the next start)");
            return null;
        }
        if (!result.Ok)
        {
            _log.Line($"criu restore failed ({(result.ExitCode is { } c ? "exit " + c : "no answer in " + RestoreTimeout.TotalSeconds + " s")}); " +
                      $"see {_dir.RestoreLog}; starting fresh (the checkpoint is moved to {_dir.RejectedPath})");
            TryReject();
            return null;
        }
        int pid;
        try
        {
            pid = int.Parse(File.ReadAllText(pidFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or FormatException or OverflowException or UnauthorizedAccessException)
        {
            _log.Line($"criu restore succeeded but its pidfile {pidFile} cannot be read ({e.Message}); exiting 1");
            return -1;
        }
        _log.Line($"restored {CommandText} as pid {pid} in {sw.ElapsedMilliseconds} ms");
        try
        {
            File.Delete(pidFile);
            _dir.Remove();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Line($"warning: cannot remove the restored checkpoint {_dir.CheckpointPath}: {e.Message}");
        }
        return pid;
    }

    private void TryReject()
    {
        try { _dir.Reject(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Line($"warning: cannot move {_dir.CheckpointPath} aside: {e.Message}");
        }
    }

    /// <summary>A signal delivered to <c>crsc run</c>. SIGTERM decides checkpoint or stop; the others are passed on.</summary>
    public void Signal(int signal)
    {
        lock (_lock)
        {
            if (_child == 0)
            {
                // still restoring or starting: delivered once the child exists
                if (!_pending.Contains(signal)) _pending.Add(signal);
                return;
            }
            Deliver(signal);
        }
    }

    private void Deliver(int signal)
    {
        if (_exited) return;
        if (signal != SigTerm)
        {
            RunNative.Signal(_child, signal);
            return;
        }
        if (_termination is not null)
        {
            _log.Line("another SIGTERM while stopping: ignored (the first one is being handled)");
            return;
        }
        var pid = _child;
        _termination = Task.Run(() => TerminateAsync(pid));
    }

    private async Task TerminateAsync(int pid)
    {
        var verdict = NodeStateReader.Read(_options.NodeStateFile);
        if (!verdict.Checkpoint)
        {
            _log.Line($"SIGTERM: {verdict.Why}: stopping {CommandText} without a checkpoint");
            RunNative.Signal(pid, SigTerm);
            return;
        }
        _log.Line($"SIGTERM: {verdict.Why}: checkpointing {CommandText} (pid {pid}) to {_dir.CheckpointPath}");
        var sw = Stopwatch.StartNew();
        var problem = await CheckpointAsync(pid, verdict.State);
        if (problem is null)
        {
            _checkpointed = true;
            _log.Line($"checkpoint written to {_dir.CheckpointPath} in {sw.ElapsedMilliseconds} ms; the next start in this imageDir restores it");
            // criu ended the tree once it was saved; should anything be left, it goes now
            RunNative.Signal(pid, SigKill);
            return;
        }
        _checkpointFailed = true;
        _log.Line($"checkpoint failed: {problem}; stopping {CommandText} without a checkpoint (SIGTERM)");
        RunNative.Signal(pid, SigTerm);
    }

    /// <summary>Dumps the tree into a temp directory and seals it as the checkpoint; null, or what went wrong.</summary>
    private async Task<string?> CheckpointAsync(int pid, NodeState? state)
    {
        foreach (var path in _options.InotifyIncompatiblePaths)
        {
            try
            {
                if (Directory.Exists(path) && new DirectoryInfo(path).LinkTarget is null) CheckpointDirectory.DeleteTree(path);
                else if (File.Exists(path) || new FileInfo(path).LinkTarget is not null) File.Delete(path);
                else continue;
                _log.Line($"removed {path} before the dump (inotifyIncompatiblePaths)");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log.Line($"warning: cannot remove {path} (inotifyIncompatiblePaths): {e.Message}");
            }
        }
        var stdio = new List<string>();
        for (var fd = 0; fd <= 2; fd++)
        {
            try { stdio.Add(new FileInfo($"/proc/{pid}/fd/{fd}").LinkTarget ?? ""); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { stdio.Add(""); }
        }

        string temp;
        try { temp = _dir.CreateTemp(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot create a directory in imageDir {_options.ImageDir}: {e.Message}";
        }
        try
        {
            CriuResult result;
            try
            {
                result = await _criu.DumpAsync(pid, Path.Combine(temp, CheckpointDirectory.ImagesEntry), _dir.DumpLog, TimeSpan.FromSeconds(_options.DumpTimeoutSeconds));
            }
            catch (SpawnException e)
            {
                return $"{e.Message} (criuPath {_options.CriuPath})";
            }
            if (result.ExitCode is null)
                return $"criu dump did not finish in {_options.DumpTimeoutSeconds} s (dumpTimeoutSeconds) and was killed; see {_dir.DumpLog}";
            if (!result.Ok) return $"criu dump exited with code {result.ExitCode}; see {_dir.DumpLog}";

            var skipped = new List<string>();
            var originals = new Dictionary<string, (int, int, int)>(StringComparer.Ordinal);
            var paths = CheckpointDirectory.CopyAdditionalPaths(temp, _options.AdditionalPaths, skipped, originals);
            foreach (var s in skipped) _log.Line($"warning: {s} (additionalPaths) is not there or is not a regular file or directory: not copied");
            _dir.Seal(temp, new RunManifest
            {
                CommandLine = _command,
                Created = DateTimeOffset.UtcNow,
                Node = state?.Node,
                Reason = state?.Reason,
                RootPid = pid,
                Stdio = stdio,
                Paths = paths,
                Files = [],
            }, originals);
            temp = "";
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot write the checkpoint in {_options.ImageDir}: {e.Message}";
        }
        finally
        {
            if (temp.Length > 0)
            {
                try { CheckpointDirectory.DeleteTree(temp); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    _log.Line($"warning: cannot remove the unfinished checkpoint {temp}: {e.Message} (the next start removes it)");
                }
            }
        }
    }

    private static string Describe(int status) =>
        RunNative.TermSignalOf(status) is var s && s != 0 ? $"signal {s}" : $"exit code {RunNative.ExitCodeOf(status)}";

    public void Dispose() => _reaper.Dispose();
}

/// <summary><c>crsc run</c>'s log: one line per event on stderr, prefixed <c>crsc run:</c>, for a person to act on.</summary>
internal sealed class RunLog(TextWriter writer)
{
    private readonly Lock _lock = new();

    public void Line(string message)
    {
        lock (_lock)
        {
            writer.WriteLine("crsc run: " + message);
            writer.Flush();
        }
    }
}

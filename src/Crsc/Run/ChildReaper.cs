namespace Crsc.Run;

/// <summary>
/// Reaps every child of this process (as PID 1 of a container, or a child subreaper, orphans land here) on one
/// thread with waitpid(-1), and completes the wait of the pids someone asked for. A child that exits before it is
/// asked for keeps its status until it is. Everything <c>crsc run</c> starts goes through <see cref="RunNative.Spawn"/>,
/// never <see cref="System.Diagnostics.Process"/>, whose own reaping would race with this one.
/// </summary>
internal sealed class ChildReaper : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, TaskCompletionSource<int>> _waiting = [];
    private readonly Dictionary<int, int> _exited = [];
    private readonly AutoResetEvent _spawned = new(false);
    private volatile bool _stopped;

    public ChildReaper()
    {
        var thread = new Thread(Loop) { IsBackground = true, Name = "crsc run reaper" };
        thread.Start();
    }

    /// <summary>Starts <paramref name="argv"/> (see <see cref="RunNative.Spawn"/>); the pid.</summary>
    public int Spawn(IReadOnlyList<string> argv, bool newSession)
    {
        var pid = RunNative.Spawn(argv, newSession);
        _spawned.Set();
        return pid;
    }

    /// <summary>The wait status of child <paramref name="pid"/> once it has ended (a grandchild reparented to us counts).</summary>
    public Task<int> WaitAsync(int pid)
    {
        lock (_lock)
        {
            if (_exited.Remove(pid, out var status)) return Task.FromResult(status);
            if (!_waiting.TryGetValue(pid, out var tcs))
                _waiting[pid] = tcs = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            _spawned.Set();
            return tcs.Task;
        }
    }

    private void Loop()
    {
        while (!_stopped)
        {
            var pid = RunNative.Wait(-1, out var status);
            if (pid > 0)
            {
                lock (_lock)
                {
                    if (_waiting.Remove(pid, out var tcs)) tcs.TrySetResult(status);
                    else if (_exited.Count < 4096) _exited[pid] = status;
                }
                continue;
            }
            if (pid == -RunNative.Eintr) continue;
            // no children now: a pid waited for that is gone was reaped by someone else (SIGCHLD ignored by our
            // parent makes .NET reap everything itself); report it rather than wait forever
            lock (_lock)
            {
                foreach (var gone in _waiting.Keys.Where(p => RunNative.Signal(p, 0) == RunNative.Esrch).ToList())
                {
                    _waiting.Remove(gone, out var tcs);
                    tcs!.TrySetResult(UnknownStatus);
                }
            }
            _spawned.WaitOne(200);
        }
    }

    /// <summary>The status reported for a child whose status was lost: exit code 1.</summary>
    public const int UnknownStatus = 1 << 8;

    public void Dispose()
    {
        _stopped = true;
        _spawned.Set();
    }
}

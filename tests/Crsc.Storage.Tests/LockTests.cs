using System.Diagnostics;
using Crsc.Controllers.Storage;
using Crsc.Testing;

namespace Crsc.Storage.Tests;

public sealed class LockTests : IDisposable
{
    private readonly StoreFixture _f = new();
    public void Dispose() => _f.Dispose();

    [Fact]
    public void A_second_store_instance_on_the_same_directory_is_refused_naming_the_holder()
    {
        using (var first = _f.Open())
        {
            var e = Assert.Throws<StoreLockedException>(() => _f.Open());
            Assert.Equal(Environment.ProcessId, e.HolderPid);
            Assert.Contains($"process {Environment.ProcessId}", e.Message);
            Assert.Contains(DiskCheckpointStore.LockFileName, e.Message);
        }
        using var again = _f.Open(); // released on dispose
    }

    [Fact]
    public async Task A_lock_held_by_another_process_is_refused_and_released_when_that_process_dies()
    {
        Directory.CreateDirectory(_f.Checkpoints, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute); // crsc refuses a pre-existing store directory that is not 0700
        var lockFile = Path.Combine(_f.Checkpoints, DiskCheckpointStore.LockFileName);
        var psi = new ProcessStartInfo("flock") { RedirectStandardOutput = true };
        foreach (var a in new[] { "-n", lockFile, "sh", "-c", $"echo $$ > '{lockFile}'; exec sleep 600" }) psi.ArgumentList.Add(a);
        using var holder = Process.Start(psi)!;
        try
        {
            await Eventually.TrueAsync(() => File.Exists(lockFile) && ReadUnlocked(lockFile).Length > 0, "the other process holds the lock");
            var pid = int.Parse(ReadUnlocked(lockFile));
            var e = Assert.Throws<StoreLockedException>(() => _f.Open());
            Assert.Equal(pid, e.HolderPid);
            Assert.Contains($"locked by process {pid}", e.Message);
        }
        finally
        {
            holder.Kill(entireProcessTree: true); // SIGKILL: no cleanup, the kernel drops the flock
            await holder.WaitForExitAsync();
        }
        await Eventually.TrueAsync(() =>
        {
            try { _f.Open().Dispose(); return true; }
            catch (StoreLockedException) { return false; }
        }, "the lock is free once its holder is dead");
        using var store = _f.Open();
        Assert.Equal(Environment.ProcessId.ToString(), ReadUnlocked(lockFile));
    }

    /// <summary>Reads without the shared flock .NET's FileStream takes (it would conflict with the holder's exclusive one).</summary>
    private static string ReadUnlocked(string path)
    {
        using var file = new FileStream(Native.OpenReadNoFollow(path), FileAccess.Read, bufferSize: 0);
        using var reader = new StreamReader(file);
        return reader.ReadToEnd().Trim();
    }
}

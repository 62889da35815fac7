using System.Globalization;
using System.Text;
using Crsc.Controllers.Storage;

namespace Crsc.Storage;

/// <summary>
/// An exclusive <c>flock(LOCK_EX|LOCK_NB)</c> on the store's lock file, with the holder's pid inside. The kernel drops it
/// when the holder dies, so a crashed daemon never leaves the store locked.
/// </summary>
internal sealed class StoreLock : IDisposable
{
    private readonly FileStream _file;

    private StoreLock(FileStream file, string path)
    {
        _file = file;
        Path = path;
    }

    public string Path { get; }

    /// <exception cref="StoreLockedException">another process or store instance holds it</exception>
    public static StoreLock Acquire(string path)
    {
        var handle = Native.OpenOrCreateNoFollow(path);
        var errno = Native.TryFLock(handle, Native.LOCK_EX | Native.LOCK_NB);
        if (errno != 0)
        {
            handle.Dispose();
            if (errno == Native.EWOULDBLOCK) throw new StoreLockedException(path, ReadHolderPid(path));
            throw new IOException($"cannot lock '{path}' (errno {errno})");
        }
        var file = new FileStream(handle, FileAccess.ReadWrite, bufferSize: 0);
        try
        {
            file.SetLength(0);
            file.Write(Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n"));
            file.Flush(flushToDisk: true);
        }
        catch
        {
            file.Dispose();
            throw;
        }
        return new StoreLock(file, path);
    }

    private static int? ReadHolderPid(string path)
    {
        try
        {
            using var file = new FileStream(Native.OpenReadNoFollow(path), FileAccess.Read, bufferSize: 0);
            var buffer = new byte[32];
            var n = file.Read(buffer);
            return int.TryParse(Encoding.ASCII.GetString(buffer, 0, n).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0
                ? pid
                : null;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    public void Dispose() => _file.Dispose(); // closing the descriptor releases the flock
}

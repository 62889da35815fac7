using System.Security.Cryptography;

namespace Crsc.Storage;

/// <summary>
/// Small files replaced whole and crash-safely: a new temp file (0600, unique name beside the target) → fsync →
/// rename → fsync(dir) (0600 unless a mode is given). A symlink at the target is replaced by the rename, never followed; a failed write leaves
/// no temp file behind. Used for the node state, the outbox's files and static-pod checkpoints. (The archive store
/// keeps its own manifest writer: it has fault-injection points between the steps.)
/// </summary>
internal static class AtomicFile
{
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Creates <paramref name="path"/> (0700) when missing; refuses an existing one that is not private to crsc.</summary>
    public static void EnsureDirectory(string path) => PrivateDirectory.Ensure(path);

    public static void Write(string path, ReadOnlySpan<byte> content) => Write(path, content, FileMode);

    /// <summary>As <see cref="Write(string, ReadOnlySpan{byte})"/>, the file made with <paramref name="mode"/> (e.g. one pods may read).</summary>
    public static void Write(string path, ReadOnlySpan<byte> content, UnixFileMode mode)
    {
        var dir = Path.GetDirectoryName(path)!;
        var temp = Path.Join(dir, $".{Path.GetFileName(path)}.tmp-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}");
        try
        {
            using (var stream = new FileStream(temp, new FileStreamOptions
            {
                Mode = System.IO.FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = mode,
            }))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }
            File.SetUnixFileMode(temp, mode);
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
        Native.FSyncDirectory(dir);
    }
}

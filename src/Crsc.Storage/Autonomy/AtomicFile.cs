namespace Crsc.Storage.Autonomy;

/// <summary>Small files replaced whole and crash-safely: temp file (0600) → fsync → rename → fsync(dir).</summary>
internal static class AtomicFile
{
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Creates <paramref name="path"/> (0700) when missing, and makes an existing one 0700.</summary>
    public static void EnsureDirectory(string path)
    {
        Directory.CreateDirectory(path, DirectoryMode);
        File.SetUnixFileMode(path, DirectoryMode);
    }

    public static void Write(string path, ReadOnlySpan<byte> content)
    {
        var dir = Path.GetDirectoryName(path)!;
        var temp = Path.Combine(dir, "." + Path.GetFileName(path) + ".tmp");
        using (var stream = new FileStream(temp, new FileStreamOptions
        {
            Mode = System.IO.FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = FileMode,
        }))
        {
            stream.Write(content);
            stream.Flush(flushToDisk: true);
        }
        File.SetUnixFileMode(temp, FileMode);
        File.Move(temp, path, overwrite: true);
        Native.FSyncDirectory(dir);
    }
}

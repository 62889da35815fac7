namespace Crsc.Storage.Security;

/// <summary>A file that should hold a secret is unusable: the message names the file and what is wrong with it.</summary>
public sealed class SecretFileException(string path, string problem) : IOException($"{path} {problem}")
{
    public string Path { get; } = path;
    public string Problem { get; } = problem;
}

/// <summary>
/// Reads files that hold secrets (the node key, registry credentials). Such a file is only believed when nobody but
/// crsc's own user could have written or read it: a regular file (a symbolic link is refused, not followed), owned by
/// crsc's effective user, with no group or other permission bits. The checks are made on the opened file, so a swap
/// between check and read cannot slip another file in.
/// </summary>
public static class SecretFile
{
    /// <summary>The bytes of <paramref name="path"/>, at most <paramref name="maxBytes"/>.</summary>
    /// <exception cref="SecretFileException">missing, a link, not a regular file, foreign, too open, or too large</exception>
    public static byte[] Read(string path, int maxBytes, string holds)
    {
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        try { handle = Native.OpenReadNoFollow(path); }
        catch (FileNotFoundException) { throw new SecretFileException(path, "does not exist"); }
        catch (Native.ErrnoException e) when (e.Errno == Native.ELOOP)
        {
            throw new SecretFileException(path, $"is a symbolic link; it holds {holds}, so crsc reads only a regular file at that path");
        }
        catch (Native.ErrnoException e) when (e.Errno == Native.EACCES)
        {
            throw new SecretFileException(path, "cannot be read (permission denied)");
        }
        catch (IOException e) { throw new SecretFileException(path, $"cannot be opened: {e.Message}"); }
        using (handle)
        {
            var (mode, uid, _, size) = Native.FStat(handle);
            if ((mode & Native.S_IFMT) != Native.S_IFREG)
                throw new SecretFileException(path, (mode & Native.S_IFMT) == Native.S_IFDIR ? "is a directory, not a file" : "is not a regular file");
            var euid = Native.GetEffectiveUserId();
            if (uid != euid)
                throw new SecretFileException(path, $"is owned by uid {uid}, not by crsc's user (uid {euid}); it holds {holds}, so only a file crsc's user owns is trusted");
            if ((mode & 0b000_111_111) != 0)
                throw new SecretFileException(path,
                    $"is accessible by group or others (mode {Convert.ToString(mode & 0xFFF, 8).PadLeft(4, '0')}); it holds {holds} and must be 0600 (chmod 600 {path})");
            if (size > maxBytes) throw new SecretFileException(path, $"has {size} bytes, more than the {maxBytes} a file holding {holds} may have");
            using var stream = new FileStream(handle, FileAccess.Read, bufferSize: 0);
            var bytes = new byte[(int)size];
            stream.ReadExactly(bytes);
            return bytes;
        }
    }
}

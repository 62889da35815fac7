using Crsc.Controllers.Storage;

namespace Crsc.Storage;

/// <summary>A pre-existing directory crsc was told to use is not private to it (another owner, or group/other
/// access). crsc refuses it rather than changing the mode of whatever path it was given.</summary>
public sealed class UnsafeDirectoryException(string path, string message) : CheckpointStoreException(message)
{
    public string Path { get; } = path;
}

/// <summary>crsc's own directories: created 0700 when missing; an existing one must already be private to crsc.</summary>
public static class PrivateDirectory
{
    public const UnixFileMode Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Creates <paramref name="path"/> (and missing parents) 0700, or checks an existing one; never changes a mode.</summary>
    /// <exception cref="UnsafeDirectoryException">it exists and is not owned by this euid, or is group/world-accessible</exception>
    /// <exception cref="IOException">it is a symbolic link or not a directory</exception>
    public static void Ensure(string path)
    {
        if (!Check(path)) Directory.CreateDirectory(path, Mode);
    }

    /// <summary>Checks <paramref name="path"/> without creating or changing anything; false when it does not exist.</summary>
    public static bool Check(string path)
    {
        int mode; uint uid;
        try { (mode, uid) = Native.LStatModeAndOwner(path); }
        catch (FileNotFoundException) { return false; }
        if ((mode & Native.S_IFMT) == Native.S_IFLNK)
            throw new IOException($"'{path}' is a symbolic link; crsc's directories must be real directories");
        if ((mode & Native.S_IFMT) != Native.S_IFDIR)
            throw new IOException($"'{path}' is not a directory");
        if (Problem(mode, uid) is { } problem)
            throw new UnsafeDirectoryException(path, $"'{path}' {problem}; crsc does not change the mode or owner of a directory it did not create: use a dedicated directory (crsc creates it 0700), or make this one root-owned 0700 yourself");
        return true;
    }

    /// <summary>Why an existing directory with this mode and owner is not private to crsc, or null.</summary>
    public static string? Problem(int mode, uint uid)
    {
        var euid = Native.GetEffectiveUserId();
        if (uid != euid) return $"is owned by uid {uid}, not by crsc's user (uid {euid})";
        if ((mode & 0b000_111_111) != 0) return $"is accessible to group or others (mode {Convert.ToString(mode & 0xFFF, 8).PadLeft(4, '0')})";
        return null;
    }
}

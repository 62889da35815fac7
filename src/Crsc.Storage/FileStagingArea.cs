using System.Formats.Tar;
using System.Text;
using Crsc.Api.Archives;
using Crsc.Controllers.Storage;
using Microsoft.Win32.SafeHandles;

using Crsc.Controllers.NodeAgent;

namespace Crsc.Storage;

/// <summary>
/// <see cref="IStagingArea"/> on the node's file system. Reads are bounded (only the tail of a log is read), never
/// follow a symbolic link in the given path's own entry and open only regular files (a FIFO would block). A (partial)
/// archive is read only through the <see cref="BoundedTarReader"/>, as every archive crsc opens.
/// </summary>
public sealed class FileStagingArea(ArchiveLimits? limits = null) : IStagingArea
{
    private readonly ArchiveLimits _limits = limits ?? new ArchiveLimits();

    public void Delete(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var info = new FileInfo(path);
        if (info.Exists || info.LinkTarget is not null) info.Delete();
    }

    public FileIdentity CheckFileInDirectory(string directory, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Contains('/') || name is "." or "..") throw new ArgumentException($"'{name}' is not a file name", nameof(name));
        CheckDirectory(directory);
        var path = Path.Join(directory, name);
        var status = Native.LStat(path) ?? throw new FileNotFoundException($"'{path}' does not exist", path);
        if (status.Type != Native.S_IFREG) throw new IOException($"'{path}' is {Native.TypeName(status.Type)}, not a regular file");
        return status.Identity;
    }

    public string? DeleteIfSame(string directory, string name, FileIdentity expected)
    {
        FileIdentity now;
        try { now = CheckFileInDirectory(directory, name); }
        catch (IOException e) { return e.Message; }
        if (now != expected) return $"'{Path.Join(directory, name)}' is no longer the file that was stored (was {expected}, now {now})";
        File.Delete(Path.Join(directory, name));
        return null;
    }

    /// <summary>Every component of an absolute directory is a directory, none a symbolic link.</summary>
    private static void CheckDirectory(string directory)
    {
        if (!directory.StartsWith('/')) throw new ArgumentException($"'{directory}' is not an absolute path", nameof(directory));
        var prefix = "";
        foreach (var part in directory.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            prefix += "/" + part;
            var status = Native.LStat(prefix) ?? throw new DirectoryNotFoundException($"'{prefix}' does not exist");
            if (status.Type != Native.S_IFDIR)
                throw new IOException($"'{prefix}' is {Native.TypeName(status.Type)}, not a directory; crsc follows no link on this path");
        }
    }

    public string? ReadLogTail(string path, int maxBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Native.LStat(path) is not { Type: Native.S_IFREG }) return null;
        using var stream = OpenRegular(path);
        return stream is null ? null : ReadTail(stream, stream.Length, maxBytes);
    }

    /// <summary>The file at <paramref name="path"/> when it is a regular file (a link is not followed); null otherwise.</summary>
    private static FileStream? OpenRegular(string path)
    {
        SafeFileHandle handle;
        try { handle = Native.OpenReadNoFollow(path, nonBlocking: true); }
        catch (FileNotFoundException) { return null; }
        if (Native.FStat(handle, path).Type != Native.S_IFREG)
        {
            handle.Dispose();
            return null;
        }
        return new FileStream(handle, FileAccess.Read, bufferSize: 0);
    }

    public string? ReadArchiveLogTail(string archivePath, int maxBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(archivePath);
        if (Native.LStat(archivePath) is not { Type: Native.S_IFREG, Size: > 0 }) return null;
        try
        {
            using var stream = OpenRegular(archivePath);
            if (stream is null) return null;
            string? found = null;
            // the archive holds what the container wrote: read with bounded memory, like every archive
            using var reader = new BoundedTarReader(stream, _limits);
            string? previous = null;
            while (reader.GetNextEntry(previous) is { } entry)
            {
                previous = entry.Name;
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
                // CRIU's dump log, by any of the runtimes' names
                if (!CheckpointArchiveLayout.IsDumpLog(entry.Name) || entry.DataStream is null) continue;
                // the archive may hold more than one log (pre-dump, dump): the last one is the failing step
                found = ReadTail(entry.DataStream, entry.Length, maxBytes);
            }
            return found;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException or ArgumentException or IOException
                                       or ArchiveRejectedException)
        {
            // a partial archive: whatever was found before the cut is not worth more than nothing
            return null;
        }
    }

    private static string ReadTail(Stream stream, long length, int maxBytes)
    {
        var take = (int)Math.Min(length, maxBytes);
        var buffer = new byte[take];
        if (stream.CanSeek)
        {
            stream.Seek(length - take, SeekOrigin.Begin);
            stream.ReadExactly(buffer);
            return Encoding.UTF8.GetString(buffer);
        }
        // a tar entry stream: skip to the tail
        var skip = length - take;
        var scratch = new byte[81920];
        while (skip > 0)
        {
            var n = stream.Read(scratch, 0, (int)Math.Min(scratch.Length, skip));
            if (n == 0) break;
            skip -= n;
        }
        var read = 0;
        while (read < take)
        {
            var n = stream.Read(buffer, read, take - read);
            if (n == 0) break;
            read += n;
        }
        return Encoding.UTF8.GetString(buffer, 0, read);
    }
}

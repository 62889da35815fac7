using System.Formats.Tar;
using System.Text;

namespace Crsc.Controllers.NodeAgent;

/// <summary>
/// <see cref="IStagingArea"/> on the node's file system. Reads are bounded (only the tail of a log is read) and
/// never follow a symbolic link out of the given path's own entry.
/// </summary>
public sealed class FileStagingArea : IStagingArea
{
    /// <summary>Archive entries that hold CRIU's dump log, by the runtimes' naming.</summary>
    private static readonly string[] LogNames = ["dump.log", "criu-dump.log", "dump-criu.log"];

    public void Delete(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var info = new FileInfo(path);
        if (info.Exists || info.LinkTarget is not null) info.Delete();
    }

    public string? ReadLogTail(string path, int maxBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var info = new FileInfo(path);
        if (!info.Exists || info.LinkTarget is not null) return null;
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        return ReadTail(stream, stream.Length, maxBytes);
    }

    public string? ReadArchiveLogTail(string archivePath, int maxBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(archivePath);
        var info = new FileInfo(archivePath);
        if (!info.Exists || info.LinkTarget is not null || info.Length == 0) return null;
        try
        {
            using var stream = new FileStream(archivePath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new TarReader(stream);
            string? found = null;
            while (reader.GetNextEntry(copyData: false) is { } entry)
            {
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile)) continue;
                var name = Path.GetFileName(entry.Name.TrimEnd('/'));
                if (!LogNames.Contains(name, StringComparer.Ordinal) || entry.DataStream is null) continue;
                // the archive may hold more than one log (pre-dump, dump): the last one is the failing step
                found = ReadTail(entry.DataStream, entry.Length, maxBytes);
            }
            return found;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException or ArgumentException or IOException)
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

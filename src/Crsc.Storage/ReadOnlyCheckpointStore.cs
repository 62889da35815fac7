using Crsc.Controllers.Storage;

namespace Crsc.Storage;

/// <summary>
/// A read-only view of a checkpoint store for the operator CLI (<c>crsc list</c>, <c>crsc inspect</c>) while the daemon
/// holds the store's exclusive lock. It takes no lock, creates nothing and writes nothing: it lists committed
/// checkpoints (a parseable manifest whose archive is a regular file, the same rule <see cref="DiskCheckpointStore"/>
/// uses) and opens archives with both digests checked while streaming. A manifest is only visible once renamed into
/// place, so reading beside a writing daemon never sees a half-written checkpoint; a checkpoint deleted while it is
/// being read shows up as a missing file. With the node key each checkpoint's manifest MAC is checked
/// (<see cref="CheckpointInfo.Authenticity"/>); without it the verdict is <see cref="CheckpointAuthenticity.Unchecked"/>.
/// </summary>
public sealed class ReadOnlyCheckpointStore(string checkpointDirectory, Security.NodeKey? key = null)
{
    private readonly string _root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(checkpointDirectory));

    public string CheckpointDirectory => _root;

    /// <summary>False when the checkpoint directory does not exist (no checkpoint was ever stored).</summary>
    public bool Exists => Directory.Exists(_root);

    /// <summary>Manifests that could not be read during the last listing, with the reason (for a warning).</summary>
    public List<string> Skipped { get; } = [];

    /// <summary>Committed checkpoints matching <paramref name="filter"/>, newest first.</summary>
    /// <exception cref="InvalidCheckpointNameException">a name of the filter is not valid</exception>
    public IReadOnlyList<CheckpointInfo> List(CheckpointFilter? filter = null)
    {
        if (filter is not null)
        {
            if (filter.Namespace is not null) StoreNames.Namespace(filter.Namespace);
            if (filter.Workload is not null) StoreNames.Workload(filter.Workload);
            if (filter.Container is not null) StoreNames.Container(filter.Container);
        }
        var result = Scan(filter, null).ToList();
        result.Sort((a, b) => b.CreatedAt != a.CreatedAt ? b.CreatedAt.CompareTo(a.CreatedAt) : string.CompareOrdinal(b.Id, a.Id));
        return result;
    }

    /// <summary>True when <paramref name="value"/> has the shape of a checkpoint id.</summary>
    public static bool IsId(string value) => StoreNames.IsId(value);

    public CheckpointInfo? Get(string id)
    {
        StoreNames.Id(id);
        return Scan(null, id).FirstOrDefault();
    }

    /// <summary>The archive as the runtime wrote it (uncompressed tar); reading to the end checks sizes and digests.</summary>
    /// <exception cref="CheckpointNotFoundException">no committed checkpoint has that id</exception>
    public Stream OpenRead(string id)
    {
        var info = Get(id) ?? throw new CheckpointNotFoundException(id);
        var file = new FileStream(Native.OpenReadNoFollow(info.ArchivePath), FileAccess.Read, bufferSize: 1 << 16);
        Stream stored = new VerifyingReadStream(file, info.Id, "the stored archive", info.Digest, info.Size);
        if (info.Compression == CheckpointCompression.None) return stored;
        try
        {
            return new VerifyingReadStream(new ZstdDecompressStream(stored), info.Id, "the uncompressed archive", info.UncompressedDigest, info.UncompressedSize);
        }
        catch
        {
            stored.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens an archive file that is not (necessarily) in a store: a tar, or a zstd-compressed tar (recognised by its
    /// magic number, not its name). Nothing is verified: there is no manifest to verify against.
    /// </summary>
    public static Stream OpenArchiveFile(string path, out bool zstdCompressed)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        try
        {
            Span<byte> magic = stackalloc byte[4];
            var n = file.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
            file.Position = 0;
            zstdCompressed = n == 4 && magic.SequenceEqual((ReadOnlySpan<byte>)[0x28, 0xB5, 0x2F, 0xFD]);
            return zstdCompressed ? new ZstdDecompressStream(file) : file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private IEnumerable<CheckpointInfo> Scan(CheckpointFilter? filter, string? onlyId)
    {
        foreach (var nsDir in Subdirectories(_root, StoreNames.IsLabel))
        {
            if (filter?.Namespace is { } ns && nsDir.Name != ns) continue;
            foreach (var wlDir in Subdirectories(nsDir.FullName, StoreNames.IsSubdomain))
            {
                if (filter?.Workload is { } wl && wlDir.Name != wl) continue;
                foreach (var ctrDir in Subdirectories(wlDir.FullName, StoreNames.IsLabel))
                {
                    if (filter?.Container is { } ctr && ctrDir.Name != ctr) continue;
                    FileInfo[] files;
                    try { files = new DirectoryInfo(ctrDir.FullName).GetFiles("*" + DiskCheckpointStore.ManifestExtension); }
                    catch (DirectoryNotFoundException) { continue; }
                    foreach (var file in files)
                    {
                        if (file.LinkTarget is not null) continue;
                        var id = file.Name[..^DiskCheckpointStore.ManifestExtension.Length];
                        if (!StoreNames.IsId(id) || (onlyId is not null && id != onlyId)) continue;
                        var info = TryLoad(ctrDir.FullName, nsDir.Name, wlDir.Name, ctrDir.Name, id);
                        if (info is not null) yield return info;
                    }
                }
            }
        }
    }

    private CheckpointInfo? TryLoad(string dir, string ns, string workload, string container, string id)
    {
        var manifestPath = Path.Join(dir, id + DiskCheckpointStore.ManifestExtension);
        ManifestDocument doc;
        try
        {
            using var file = new FileStream(Native.OpenReadNoFollow(manifestPath), FileAccess.Read, bufferSize: 0);
            if (file.Length > 1 << 20) throw new InvalidDataException("larger than a manifest can be");
            var bytes = new byte[file.Length];
            file.ReadExactly(bytes);
            doc = Manifests.Parse(bytes, ns, workload, container, id);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException or UnauthorizedAccessException)
        {
            Skipped.Add($"{manifestPath}: {e.Message}");
            return null;
        }
        var archive = Path.Join(dir, id + Manifests.ArchiveExtension(Manifests.Compression(doc)));
        var a = new FileInfo(archive);
        if (a.LinkTarget is not null || !a.Exists) return null; // deleted meanwhile, or not committed: not a checkpoint
        return Manifests.ToInfo(doc, archive, key);
    }

    private static IEnumerable<DirectoryInfo> Subdirectories(string path, Func<string, bool> validName)
    {
        DirectoryInfo[] dirs;
        try { dirs = new DirectoryInfo(path).GetDirectories(); }
        catch (DirectoryNotFoundException) { yield break; }
        Array.Sort(dirs, (a, b) => string.CompareOrdinal(a.Name, b.Name));
        foreach (var d in dirs)
            if (d.LinkTarget is null && (d.Attributes & FileAttributes.ReparsePoint) == 0 && validName(d.Name))
                yield return d;
    }
}

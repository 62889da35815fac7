using System.Formats.Tar;
using System.Security.Cryptography;

namespace Crsc.Storage.Oci;

public enum LayerEntryType
{
    Directory,
    File,
    SymbolicLink,
}

/// <summary>
/// One entry of a layer: a directory, a regular file whose content is read from <paramref name="Source"/>, or a
/// symbolic link to <paramref name="LinkTarget"/>. <paramref name="Path"/> is relative (<c>usr/bin/crsc</c>), without
/// a leading <c>/</c> or <c>./</c>.
/// </summary>
public sealed record LayerEntry(string Path, LayerEntryType Type, UnixFileMode Mode, string? Source = null, string? LinkTarget = null);

/// <summary>A written layer: its descriptor (the compressed blob) and the digest and size of the tar inside.</summary>
public sealed record OciLayer(OciDescriptor Descriptor, string DiffId, long UncompressedSize, int Entries);

/// <summary>
/// Writes image layers reproducibly: the same entries and contents give the same bytes. Entries are written in the
/// order given (<see cref="FromDirectory"/> and <see cref="FromFile"/> give parents before children, siblings in ordinal
/// order), all owned by 0:0 with no user or group names, every time set to one given instant, GNU tar headers (long
/// names without the PAX headers whose names .NET derives from the process id), compressed with zstd on one thread
/// (<see cref="OciMediaTypes.LayerTarZstd"/>: containerd ≥ 1.5, CRI-O and podman read it; it is the store's compressor).
/// </summary>
public static class OciLayerWriter
{
    private const UnixFileMode DirectoryMode = (UnixFileMode)0b111_101_101; // 0755

    /// <summary>
    /// Every directory, regular file and symbolic link below <paramref name="root"/> (not the root itself), parents
    /// before children and siblings in ordinal order of their names, with their permission bits. Symbolic links are
    /// kept as links, never followed. A hard link becomes a second regular file with the same content.
    /// </summary>
    /// <exception cref="InvalidDataException">the tree holds another kind of file (device, FIFO, socket)</exception>
    public static IReadOnlyList<LayerEntry> FromDirectory(string root)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"layer directory '{root}' does not exist");
        var entries = new List<LayerEntry>();
        Walk(Path.GetFullPath(root), "", entries);
        return entries;
    }

    private static void Walk(string directory, string prefix, List<LayerEntry> entries)
    {
        var names = Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).ToArray();
        Array.Sort(names, StringComparer.Ordinal);
        foreach (var name in names)
        {
            var full = Path.Join(directory, name);
            var path = prefix + name;
            var mode = Native.LStatMode(full);
            var permissions = (UnixFileMode)(mode & 0xFFF);
            switch (mode & Native.S_IFMT)
            {
                case Native.S_IFDIR:
                    entries.Add(new LayerEntry(path, LayerEntryType.Directory, permissions));
                    Walk(full, path + "/", entries);
                    break;
                case Native.S_IFREG:
                    entries.Add(new LayerEntry(path, LayerEntryType.File, permissions, Source: full));
                    break;
                case Native.S_IFLNK:
                    entries.Add(new LayerEntry(path, LayerEntryType.SymbolicLink, (UnixFileMode)0b111_111_111,
                        LinkTarget: new FileInfo(full).LinkTarget));
                    break;
                default:
                    throw new InvalidDataException($"'{full}' is neither a directory, a regular file nor a symbolic link (mode {Convert.ToString(mode, 8)}); a layer holds only those");
            }
        }
    }

    /// <summary><paramref name="source"/> as the file <paramref name="path"/>, after its parent directories (0755).</summary>
    public static IReadOnlyList<LayerEntry> FromFile(string source, string path, UnixFileMode mode)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(source)) throw new FileNotFoundException($"'{source}' does not exist", source);
        var parts = path.Split('/');
        var entries = new List<LayerEntry>();
        for (var i = 1; i < parts.Length; i++)
            entries.Add(new LayerEntry(string.Join('/', parts[..i]), LayerEntryType.Directory, DirectoryMode));
        entries.Add(new LayerEntry(path, LayerEntryType.File, mode, Source: source));
        return entries;
    }

    /// <summary>Writes the compressed layer of <paramref name="entries"/> to <paramref name="output"/>.</summary>
    /// <param name="modified">every entry's modification time</param>
    /// <param name="level">zstd level (1–19)</param>
    public static async Task<OciLayer> WriteAsync(IReadOnlyList<LayerEntry> entries, Stream output, DateTimeOffset modified,
        int level, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(output);
        using var sink = new LayerSink(output, level);
        await using (var tar = new TarWriter(sink, TarEntryFormat.Gnu, leaveOpen: true))
        {
            foreach (var e in entries)
            {
                ct.ThrowIfCancellationRequested();
                await WriteEntryAsync(tar, e, modified, ct);
            }
        }
        sink.Finish();
        return new OciLayer(new OciDescriptor(OciMediaTypes.LayerTarZstd, sink.StoredDigest, sink.StoredBytes),
            sink.RawDigest, sink.RawBytes, entries.Count);
    }

    /// <summary>One archive entry with everything but its name, type, mode and content fixed.</summary>
    internal static GnuTarEntry Entry(TarEntryType type, string name, UnixFileMode mode, DateTimeOffset modified) => new(type, name)
    {
        Mode = mode,
        Uid = 0,
        Gid = 0,
        UserName = "",
        GroupName = "",
        // access and change times stay unset: GNU headers then leave those fields empty, as GNU tar does (readers that
        // know only ustar take them for the name prefix)
        ModificationTime = modified,
    };

    private static async Task WriteEntryAsync(TarWriter tar, LayerEntry e, DateTimeOffset modified, CancellationToken ct)
    {
        if (e.Path.Length == 0 || e.Path.StartsWith('/') || e.Path.Split('/').Any(p => p is "" or "." or ".."))
            throw new ArgumentException($"layer path '{e.Path}' is not a clean relative path", nameof(e));
        switch (e.Type)
        {
            case LayerEntryType.Directory:
                await tar.WriteEntryAsync(Entry(TarEntryType.Directory, e.Path + "/", e.Mode, modified), ct);
                break;
            case LayerEntryType.SymbolicLink:
                var link = Entry(TarEntryType.SymbolicLink, e.Path, e.Mode, modified);
                link.LinkName = e.LinkTarget ?? throw new ArgumentException($"symbolic link '{e.Path}' has no target", nameof(e));
                await tar.WriteEntryAsync(link, ct);
                break;
            case LayerEntryType.File:
                var source = e.Source ?? throw new ArgumentException($"file '{e.Path}' has no source", nameof(e));
                await using (var content = new FileStream(Native.OpenReadNoFollow(source), FileAccess.Read))
                {
                    var file = Entry(TarEntryType.RegularFile, e.Path, e.Mode, modified);
                    file.DataStream = content;
                    await tar.WriteEntryAsync(file, ct);
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(e), e.Type, "unknown layer entry type");
        }
    }

    /// <summary>What the tar writer writes: hashed (diff_id), compressed, hashed again (digest) and written out.</summary>
    private sealed class LayerSink : Stream
    {
        private readonly Stream _output;
        private readonly IncrementalHash _raw = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly IncrementalHash _stored = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly ZstdCompressor _zstd;

        public LayerSink(Stream output, int level)
        {
            _output = output;
            // no worker threads: the frame is then the same whatever the machine
            _zstd = new ZstdCompressor(level, workers: 0, WriteStored);
        }

        public long RawBytes { get; private set; }
        public long StoredBytes { get; private set; }
        public string RawDigest { get; private set; } = "";
        public string StoredDigest { get; private set; } = "";

        public void Finish()
        {
            _zstd.Finish();
            RawDigest = OciDigest.Sha256Prefix + Convert.ToHexStringLower(_raw.GetHashAndReset());
            StoredDigest = OciDigest.Sha256Prefix + Convert.ToHexStringLower(_stored.GetHashAndReset());
        }

        private void WriteStored(ReadOnlySpan<byte> block)
        {
            _stored.AppendData(block);
            _output.Write(block);
            StoredBytes += block.Length;
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _raw.AppendData(buffer);
            RawBytes += buffer.Length;
            _zstd.Write(buffer);
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct)
        {
            Write(buffer.AsSpan(offset, count));
            return Task.CompletedTask;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _zstd.Dispose();
                _raw.Dispose();
                _stored.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}

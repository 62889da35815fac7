using System.Formats.Tar;
using System.Text.Json;
using Crsc.Api.Archives;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Storage;

namespace Crsc.Storage;

/// <summary>Limits that keep a hostile or broken archive from exhausting the node.</summary>
public sealed record ArchiveLimits
{
    /// <summary>Largest archive (uncompressed bytes) accepted.</summary>
    public long MaxArchiveBytes { get; init; } = 256L << 30;
    /// <summary>Largest single entry accepted.</summary>
    public long MaxEntryBytes { get; init; } = 64L << 30;
    /// <summary>Most entries accepted (a CRIU checkpoint has tens to hundreds).</summary>
    public int MaxEntries { get; init; } = 100_000;
    /// <summary>Longest entry name or link target, in bytes (PATH_MAX).</summary>
    public int MaxNameBytes { get; init; } = 4096;
    /// <summary>Most components of an entry's name.</summary>
    public int MaxPathDepth { get; init; } = 128;
    /// <summary>Largest extended header (PAX, GNU long name) accepted; it is read into memory.</summary>
    public int MaxExtendedHeaderBytes { get; init; } = 64 << 10;
    /// <summary>Most bytes of names (entries, their parent directories, link targets) a reader keeps for an archive.</summary>
    public long MaxNameBytesTotal { get; init; } = 64L << 20;
    /// <summary>Largest <c>config.dump</c> / <c>spec.dump</c> read into memory.</summary>
    public int MaxMetadataBytes { get; init; } = 16 << 20;
}

/// <summary>
/// Checks a CRI checkpoint archive (the layout CRI-O and containerd write: <c>checkpoint/</c>, <c>config.dump</c>,
/// <c>spec.dump</c>, optionally <c>rootfs-diff.tar</c>, <c>network.status</c>, <c>stats-dump</c>, …) while it streams
/// past, and reads the container's facts from its metadata files. Every refusal names the entry.
/// </summary>
internal static class ArchiveInspector
{
    private const int Block = 512;

    /// <summary>Reads <paramref name="tar"/> to its very end (so every byte passes the caller's sinks) and returns the facts.</summary>
    /// <exception cref="ArchiveRejectedException">the archive is not acceptable</exception>
    public static ArchiveFacts Inspect(CountingReadStream tar, ArchiveLimits limits)
    {
        var tree = new ArchiveTree(limits);
        var metadata = new CheckpointMetadata(limits);
        var entries = 0;
        long total = 0;
        long dataEnd = 0;
        string? last = null;

        using (var reader = new BoundedTarReader(tar, limits))
        {
            while (true)
            {
                TarEntry? entry;
                try { entry = reader.GetNextEntry(last); }
                catch (EndOfStreamException e)
                {
                    throw new ArchiveRejectedException(last is null
                        ? "the archive is truncated (not a complete tar)"
                        : $"the archive is truncated after entry '{last}'", last, e);
                }
                catch (Exception e) when (e is InvalidDataException or FormatException or ArgumentException or OverflowException)
                {
                    throw new ArchiveRejectedException(last is null
                        ? $"not a tar archive: {e.Message}"
                        : $"bad tar header after entry '{last}': {e.Message}", last, e);
                }
                if (entry is null) break;
                if (entry.EntryType == TarEntryType.GlobalExtendedAttributes) continue;
                entries++;
                var raw = BoundedTarReader.Shorten(entry.Name);
                var dataStart = reader.Position;
                if (tree.Add(entry, out var name) is { } finding) throw new ArchiveRejectedException(finding.Message, finding.Entry);
                last = raw;
                if (entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile)
                {
                    if (entry.Length < 0 || entry.Length > limits.MaxEntryBytes)
                        throw new ArchiveRejectedException($"entry '{raw}' is {entry.Length} bytes, over the limit of {limits.MaxEntryBytes}", raw);
                    total += entry.Length;
                    if (total > limits.MaxArchiveBytes)
                        throw new ArchiveRejectedException($"the archive's content exceeds the limit of {limits.MaxArchiveBytes} bytes at entry '{raw}'", raw);
                    MetadataEntry read;
                    try { read = metadata.Read(name, entry); }
                    catch (EndOfStreamException e) { throw new ArchiveRejectedException($"the archive is truncated inside entry '{entry.Name}'", entry.Name, e); }
                    if (read == MetadataEntry.TooLarge)
                        throw new ArchiveRejectedException($"entry '{entry.Name}' is {entry.Length} bytes; metadata over {limits.MaxMetadataBytes} bytes is refused", entry.Name);
                }
                dataEnd = dataStart + (entry.Length + Block - 1) / Block * Block;
            }
        }
        if (tree.ResolveLinks().FirstOrDefault() is { } escape) throw new ArchiveRejectedException(escape.Message, escape.Entry);

        // after the last entry: the end-of-archive marker (two zero blocks) and only zero padding
        DrainTrailing(tar, out var nonZeroAt);
        var afterData = tar.Delivered - dataEnd;
        if (nonZeroAt >= 0)
            throw new ArchiveRejectedException($"unexpected data after the end of the tar archive (at byte {nonZeroAt})", last);
        if (afterData < 2 * Block && entries > 0)
            throw new ArchiveRejectedException(last is null ? "the archive is truncated" : $"the archive is truncated after entry '{last}' (no end-of-archive marker)", last);

        if (!tree.HasDirectory(CheckpointArchiveLayout.CheckpointDirectory))
            throw new ArchiveRejectedException($"not a container checkpoint: no '{CheckpointArchiveLayout.CheckpointDirectory}/' directory", CheckpointArchiveLayout.CheckpointDirectory + "/");
        if (metadata.Missing is { } missing)
            throw new ArchiveRejectedException($"not a container checkpoint: no '{missing}'", missing);
        return metadata.ReadFacts();
    }

    private static void DrainTrailing(CountingReadStream tar, out long nonZeroAt)
    {
        nonZeroAt = -1;
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = tar.Read(buffer, 0, buffer.Length)) > 0)
        {
            var i = buffer.AsSpan(0, n).IndexOfAnyExcept((byte)0);
            if (i >= 0 && nonZeroAt < 0) nonZeroAt = tar.Delivered - n + i;
        }
    }

    /// <summary>Normalises an entry name (no leading "./", no trailing "/"); refuses absolute, traversing or odd names.</summary>
    internal static string CheckName(string raw, string? entry = null, string what = "entry")
    {
        entry ??= raw;
        var subject = entry == raw ? $"{what} '{raw}'" : $"{what} '{raw}' of entry '{entry}'";
        if (string.IsNullOrEmpty(raw)) throw new ArchiveRejectedException($"{what} of entry '{entry}' is empty", entry);
        if (raw.Contains('\0')) throw new ArchiveRejectedException($"{subject} contains a NUL character", entry);
        if (raw[0] == '/') throw new ArchiveRejectedException($"{subject} is an absolute path", entry);
        var name = raw;
        while (name.StartsWith("./", StringComparison.Ordinal)) name = name[2..];
        name = name.TrimEnd('/');
        if (name is "" or ".") return "";
        foreach (var part in name.Split('/'))
        {
            if (part == "..") throw new ArchiveRejectedException($"{subject} climbs out of the archive ('..')", entry);
            if (part is "" or ".") throw new ArchiveRejectedException($"{subject} is not a normal path", entry);
        }
        return name;
    }

    /// <summary>Reads CRI-O's / containerd's <c>config.dump</c> (ContainerConfig) and <c>spec.dump</c> (the OCI runtime spec).</summary>
    internal static ArchiveFacts ReadFacts(byte[] config, byte[] spec)
    {
        JsonElement cfg, annotations = default;
        JsonDocument? cfgDoc = null, specDoc = null;
        try
        {
            try { cfgDoc = JsonDocument.Parse(config); }
            catch (JsonException e) { throw new ArchiveRejectedException($"'{CheckpointArchiveLayout.ConfigDump}' is not valid JSON: {e.Message}", CheckpointArchiveLayout.ConfigDump, e); }
            try { specDoc = JsonDocument.Parse(spec); }
            catch (JsonException e) { throw new ArchiveRejectedException($"'{CheckpointArchiveLayout.SpecDump}' is not valid JSON: {e.Message}", CheckpointArchiveLayout.SpecDump, e); }
            cfg = cfgDoc.RootElement;
            if (cfg.ValueKind != JsonValueKind.Object) throw new ArchiveRejectedException($"'{CheckpointArchiveLayout.ConfigDump}' is not a JSON object", CheckpointArchiveLayout.ConfigDump);
            if (specDoc.RootElement.ValueKind != JsonValueKind.Object) throw new ArchiveRejectedException($"'{CheckpointArchiveLayout.SpecDump}' is not a JSON object", CheckpointArchiveLayout.SpecDump);
            if (specDoc.RootElement.TryGetProperty(SpecDumpAnnotations.Key, out var a) && a.ValueKind == JsonValueKind.Object) annotations = a;

            return new ArchiveFacts
            {
                RuntimeContainerId = Str(cfg, ConfigDumpFields.Id),
                // CRI-O's spec carries the kubelet's labels, containerd's its CRI annotations
                ContainerName = Ann(annotations, KubeletLabels.ContainerName, SpecDumpAnnotations.ContainerdContainerName) ?? Str(cfg, ConfigDumpFields.Name),
                PodName = Ann(annotations, KubeletLabels.PodName, SpecDumpAnnotations.ContainerdSandboxName),
                PodNamespace = Ann(annotations, KubeletLabels.PodNamespace, SpecDumpAnnotations.ContainerdSandboxNamespace),
                PodUid = Ann(annotations, KubeletLabels.PodUid, SpecDumpAnnotations.ContainerdSandboxUid),
                ImageName = Str(cfg, ConfigDumpFields.RootfsImageName) ?? Ann(annotations, SpecDumpAnnotations.CriOImageName, SpecDumpAnnotations.ContainerdImageName),
                ImageRef = Str(cfg, ConfigDumpFields.RootfsImageRef) ?? Ann(annotations, SpecDumpAnnotations.CriOImageRef, null),
                ImageId = Str(cfg, ConfigDumpFields.RootfsImage),
                Runtime = Str(cfg, ConfigDumpFields.Runtime),
                ContainerCreatedAt = Time(cfg, ConfigDumpFields.CreatedTime),
                CheckpointedAt = Time(cfg, ConfigDumpFields.CheckpointedTime),
            };
        }
        finally
        {
            cfgDoc?.Dispose();
            specDoc?.Dispose();
        }
    }

    private static string? Str(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s ? s : null;

    private static string? Ann(JsonElement annotations, string name, string? alternative)
    {
        if (annotations.ValueKind != JsonValueKind.Object) return null;
        return Str(annotations, name) ?? (alternative is null ? null : Str(annotations, alternative));
    }

    private static DateTimeOffset? Time(JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.String) return null;
        // Go writes its zero time.Time as 0001-01-01T00:00:00Z: "not set"
        return v.TryGetDateTimeOffset(out var t) && t.Year > 1 ? t : null;
    }
}

/// <summary>
/// A non-seekable read stream over the staged archive that hands every block it reads from disk to
/// <c>sink</c> before serving it, so validation, hashing and compression share one pass over the file.
/// </summary>
internal sealed class CountingReadStream(Stream source, Action<byte[], int> sink, int chunkSize,
    IProgress<long>? progress, CancellationToken ct) : ReadOnlyStream
{
    private readonly byte[] _buffer = new byte[chunkSize];
    private int _pos, _len;

    /// <summary>Bytes handed to the reader so far.</summary>
    public long Delivered { get; private set; }
    /// <summary>Bytes read from the source (and given to the sink) so far.</summary>
    public long Consumed { get; private set; }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return 0;
        if (_pos == _len)
        {
            ct.ThrowIfCancellationRequested();
            _len = source.Read(_buffer, 0, _buffer.Length);
            _pos = 0;
            if (_len == 0) return 0;
            sink(_buffer, _len);
            Consumed += _len;
            progress?.Report(Consumed);
        }
        var n = Math.Min(buffer.Length, _len - _pos);
        _buffer.AsSpan(_pos, n).CopyTo(buffer);
        _pos += n;
        Delivered += n;
        return n;
    }

}

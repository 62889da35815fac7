using System.Security.Cryptography;
using Crsc.Api.Archives;
using Crsc.Controllers.Storage;

namespace Crsc.Storage;

public sealed partial class DiskCheckpointStore
{
    /// <summary>
    /// Commits a checkpoint taken by another node, whose store manifest travelled with it (<see cref="TravellingManifest"/>):
    /// <paramref name="stored"/> is the archive as the other node stored it (compressed when its manifest says so). The
    /// bytes go once through the same validation as an ingestion (<see cref="ArchiveInspector"/>, the uncompressed tar)
    /// and both digests and sizes are checked against the manifest while they are written to a temp file; only when
    /// everything matched are the archive and the manifest (as it came, MAC included) committed under the manifest's id.
    /// The manifest's authenticity is then what this store computes for it: <see cref="CheckpointAuthenticity.Verified"/>
    /// when the nodes share the key, <see cref="CheckpointAuthenticity.OtherKey"/> otherwise. A manifest whose MAC does not
    /// verify, or that carries none, is refused. When the checkpoint is here already with the same digest, that one is
    /// returned and nothing is written.
    /// </summary>
    /// <exception cref="CheckpointCorruptException">the bytes do not match the manifest's digest or size</exception>
    /// <exception cref="ArchiveRejectedException">the archive is not an acceptable checkpoint (names the entry)</exception>
    /// <exception cref="CheckpointImportException">the manifest is not one this store can take (names why)</exception>
    internal CheckpointInfo Import(Stream stored, ManifestDocument doc, IProgress<long>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(stored);
        ArgumentNullException.ThrowIfNull(doc);
        var what = TravellingManifest.Describe(doc);
        var authenticity = Manifests.Authenticity(doc, _options.Key);
        if (authenticity is CheckpointAuthenticity.Invalid or CheckpointAuthenticity.Unsigned)
            throw new CheckpointImportException(doc.Id, $"{what} is refused: "
                + (authenticity == CheckpointAuthenticity.Invalid
                    ? "the MAC of its manifest does not verify with this node's key (invalid MAC)"
                    : "its manifest carries no MAC"));
        if (_options.ReadOnly) throw new CheckpointImportException(doc.Id, $"{what} is refused: the store is open read-only");
        if (Find(doc.Id) is { } existing)
        {
            if (existing.Info.Namespace == doc.Namespace && existing.Info.Workload == doc.Workload && existing.Info.Container == doc.Container
                && existing.Info.Digest == doc.Archive.Digest && existing.Info.Size == doc.Archive.Size)
                return existing.Info;
            throw new CheckpointImportException(doc.Id, $"{what} is refused: this store has another checkpoint with id {doc.Id}");
        }
        var compression = Manifests.Compression(doc);
        var expectedSize = doc.Archive.Size;
        if (expectedSize > _options.Limits.MaxArchiveBytes || doc.Archive.UncompressedSize > _options.Limits.MaxArchiveBytes)
            throw new ArchiveRejectedException($"{what} is {Math.Max(expectedSize, doc.Archive.UncompressedSize)} bytes, over the limit of {_options.Limits.MaxArchiveBytes}");
        if (compression == CheckpointCompression.None
            && (doc.Archive.Digest != doc.Archive.UncompressedDigest || expectedSize != doc.Archive.UncompressedSize))
            throw new CheckpointImportException(doc.Id, $"{what} is refused: it is uncompressed but its manifest records two digests or sizes");

        var id = doc.Id;
        var dir = EnsureContainerDirectory(doc.Namespace, doc.Workload, doc.Container);
        var extension = Manifests.ArchiveExtension(compression);
        var archive = Path.Join(dir, id + extension);
        var tempArchive = Path.Join(dir, TempPrefix + id + extension);
        var manifest = Path.Join(dir, id + ManifestExtension);
        var tempManifest = Path.Join(dir, TempPrefix + id + ManifestExtension);
        if (!_inFlight.TryAdd(id, 0)) throw new CheckpointImportException(id, $"{what} is being stored already", inProgress: true);
        var committed = false;
        var renamed = false;
        try
        {
            using var storedHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using var rawHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long rawBytes = 0;
            ArchiveFacts facts;
            CountingReadStream storedTee;
            using (var file = new FileStream(tempArchive, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, // O_EXCL: never an existing file or a planted link
                Access = FileAccess.Write,
                Share = FileShare.None,
                BufferSize = 0,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            {
                long received = 0;
                storedTee = new CountingReadStream(stored, (buffer, count) =>
                {
                    received += count;
                    if (received > expectedSize)
                        throw new CheckpointCorruptException(id, $"{what} is corrupt: its archive is longer than the {expectedSize} bytes its manifest records");
                    storedHash.AppendData(buffer, 0, count);
                    file.Write(buffer, 0, count);
                }, ChunkSize, progress, ct);
                using (var raw = compression == CheckpointCompression.Zstd ? new ZstdDecompressStream(storedTee) : null)
                {
                    var rawTee = raw is null
                        ? storedTee
                        : new CountingReadStream(raw, (buffer, count) =>
                        {
                            rawBytes += count;
                            if (rawBytes > doc.Archive.UncompressedSize)
                                throw new CheckpointCorruptException(id, $"{what} is corrupt: its uncompressed archive is longer than the {doc.Archive.UncompressedSize} bytes its manifest records");
                            rawHash.AppendData(buffer, 0, count);
                        }, ChunkSize, null, ct);
                    try { facts = ArchiveInspector.Inspect(rawTee, _options.Limits); }
                    catch (Exception e) when (e is InvalidDataException or ArchiveRejectedException)
                    {
                        // bytes that are not the archive the manifest records (damaged or swapped on the way): say so,
                        // rather than what the tar reader or zstd made of them
                        var rest = new byte[1 << 16];
                        while (storedTee.Read(rest) > 0) { }
                        var actual = "sha256:" + Convert.ToHexStringLower(storedHash.GetHashAndReset());
                        if (actual != doc.Archive.Digest)
                            throw new CheckpointCorruptException(id, $"{what} is corrupt: its archive has digest {actual}, its manifest records {doc.Archive.Digest}");
                        if (e is ArchiveRejectedException rejected) throw new ArchiveRejectedException($"{what} refused: {e.Message}", rejected.Entry, e);
                        throw new CheckpointCorruptException(id, $"{what} is corrupt: {e.Message}");
                    }
                }
                // whatever follows the compressed frame still counts (and is refused by the digest)
                var trailing = new byte[1 << 16];
                while (storedTee.Read(trailing) > 0) { }
                file.Flush(flushToDisk: true);
            }
            var storedDigest = "sha256:" + Convert.ToHexStringLower(storedHash.GetHashAndReset());
            if (storedTee.Consumed != expectedSize)
                throw new CheckpointCorruptException(id, $"{what} is corrupt: its archive has {storedTee.Consumed} bytes, its manifest records {expectedSize}");
            if (storedDigest != doc.Archive.Digest)
                throw new CheckpointCorruptException(id, $"{what} is corrupt: its archive has digest {storedDigest}, its manifest records {doc.Archive.Digest}");
            if (compression == CheckpointCompression.Zstd)
            {
                var rawDigest = "sha256:" + Convert.ToHexStringLower(rawHash.GetHashAndReset());
                if (rawBytes != doc.Archive.UncompressedSize || rawDigest != doc.Archive.UncompressedDigest)
                    throw new CheckpointCorruptException(id,
                        $"{what} is corrupt: its uncompressed archive has {rawBytes} bytes and digest {rawDigest}, its manifest records {doc.Archive.UncompressedSize} and {doc.Archive.UncompressedDigest}");
            }
            if (facts.PodNamespace is { } ns && ns != doc.Namespace)
                throw new ArchiveRejectedException($"{what} refused: its archive is of a container in namespace '{ns}', not '{doc.Namespace}'", CheckpointArchiveLayout.SpecDump);

            Fault(FaultPoints.ArchiveWritten);
            File.Move(tempArchive, archive, overwrite: false);
            renamed = true;
            Native.FSyncDirectory(dir);
            Fault(FaultPoints.ArchiveRenamed);
            doc.Pinned = false;
            WriteManifest(dir, tempManifest, manifest, doc);
            committed = true;
            Fault(FaultPoints.ManifestCommitted);
            var info = Manifests.ToInfo(doc, archive, _options.Key);
            Log.Imported(_logger, id, doc.Namespace, doc.Workload, doc.Container, doc.NodeName ?? "", expectedSize, doc.Archive.Digest, info.Authenticity);
            OnChanged();
            return info;
        }
        catch (Exception e) when (e is not InjectedCrashException && !committed)
        {
            if (e is ArchiveRejectedException or CheckpointCorruptException) Log.Rejected(_logger, what, e.Message);
            TryDelete(tempManifest);
            TryDelete(tempArchive);
            if (renamed) TryDelete(archive);
            throw;
        }
        finally
        {
            _inFlight.TryRemove(id, out _);
        }
    }
}

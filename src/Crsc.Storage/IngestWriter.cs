using System.Security.Cryptography;
using Crsc.Controllers.Storage;

namespace Crsc.Storage;

/// <summary>
/// The sink of an ingestion: hashes the uncompressed bytes, compresses them (optionally), hashes what is stored and
/// writes it to a new temp file (0600, never an existing path). The uncompressed hash runs beside compression. With
/// <c>skipIncompressible</c>, zstd is first tried on the archive's first <see cref="ProbeBytes"/> (held in memory):
/// when it saves less than 3 % there, the archive is stored uncompressed (<see cref="Compression"/> says which).
/// </summary>
internal sealed class IngestWriter : IDisposable
{
    /// <summary>How much of the archive decides whether compressing it pays.</summary>
    internal const int ProbeBytes = 4 << 20;

    /// <summary>Stored/raw size at or above which compression does not pay.</summary>
    internal const double NotWorthIt = 0.97;

    private readonly IncrementalHash _raw = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private IncrementalHash? _stored;
    private ZstdCompressor? _zstd;
    private readonly FileStream _file;
    private readonly int _level;
    private List<byte[]>? _probe;
    private long _probed;

    public IngestWriter(string tempPath, CheckpointCompression compression, int level, int workers, bool skipIncompressible = false)
    {
        _level = level;
        Compression = compression;
        if (skipIncompressible && compression == CheckpointCompression.Zstd) _probe = [];
        _file = new FileStream(tempPath, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, // O_EXCL: never opens an existing file or follows a planted link
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = 0,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        try
        {
            if (compression == CheckpointCompression.Zstd)
            {
                _stored = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                _zstd = new ZstdCompressor(level, workers, WriteStored);
            }
        }
        catch
        {
            _file.Dispose();
            throw;
        }
    }

    public long RawBytes { get; private set; }
    public long StoredBytes { get; private set; }

    /// <summary>How the archive is stored: as asked, or <c>None</c> when compressing it did not pay.</summary>
    public CheckpointCompression Compression { get; private set; }

    /// <summary>One block of the staged archive, in order.</summary>
    public void Accept(byte[] buffer, int count)
    {
        if (_probe is not null)
        {
            // the caller reuses its buffer: keep a copy until the decision
            _probe.Add(buffer.AsSpan(0, count).ToArray());
            _probed += count;
            if (_probed >= ProbeBytes) Decide();
            return;
        }
        Store(buffer, count);
    }

    /// <summary>Compresses the probe to see whether it pays, then stores the held blocks the way chosen.</summary>
    private void Decide()
    {
        var held = _probe!;
        _probe = null;
        long compressed = 0;
        using (var trial = new ZstdCompressor(_level, 0, data => compressed += data.Length))
        {
            foreach (var block in held) trial.Write(block);
            trial.Finish();
        }
        if (_probed > 0 && compressed >= _probed * NotWorthIt)
        {
            Compression = CheckpointCompression.None;
            _zstd?.Dispose();
            _zstd = null;
            _stored?.Dispose();
            _stored = null;
        }
        foreach (var block in held) Store(block, block.Length);
    }

    private void Store(byte[] buffer, int count)
    {
        RawBytes += count;
        if (_zstd is null)
        {
            _raw.AppendData(buffer, 0, count);
            _file.Write(buffer, 0, count);
            StoredBytes += count;
            return;
        }
        var hashing = Task.Run(() => _raw.AppendData(buffer, 0, count));
        try { _zstd.Write(buffer.AsSpan(0, count)); }
        finally { hashing.GetAwaiter().GetResult(); }
    }

    private void WriteStored(ReadOnlySpan<byte> data)
    {
        _stored!.AppendData(data);
        _file.Write(data);
        StoredBytes += data.Length;
    }

    /// <summary>Ends the compressed frame and makes the file durable (fsync).</summary>
    public (string RawDigest, string StoredDigest) Complete()
    {
        if (_probe is not null) Decide();
        _zstd?.Finish();
        _file.Flush(flushToDisk: true);
        var raw = "sha256:" + Convert.ToHexStringLower(_raw.GetHashAndReset());
        var stored = _stored is null ? raw : "sha256:" + Convert.ToHexStringLower(_stored.GetHashAndReset());
        return (raw, stored);
    }

    public void Dispose()
    {
        _zstd?.Dispose();
        _file.Dispose();
        _raw.Dispose();
        _stored?.Dispose();
    }
}

/// <summary>Counts and hashes what is read through it; at the end of the inner stream, refuses a size or digest mismatch.</summary>
internal sealed class VerifyingReadStream(Stream inner, string id, string what, string expectedDigest, long expectedSize) : ReadOnlyStream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _read;
    private bool _checked;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return 0;
        int n;
        try { n = inner.Read(buffer); }
        catch (InvalidDataException e)
        {
            throw new CheckpointCorruptException(id, $"checkpoint {id} is corrupt: {what}: {e.Message}");
        }
        if (n > 0)
        {
            _read += n;
            if (_read > expectedSize)
                throw new CheckpointCorruptException(id, $"checkpoint {id} is corrupt: {what} is longer than the {expectedSize} bytes its manifest records");
            _hash.AppendData(buffer[..n]);
            return n;
        }
        if (!_checked)
        {
            _checked = true;
            if (_read != expectedSize)
                throw new CheckpointCorruptException(id, $"checkpoint {id} is corrupt: {what} has {_read} bytes, its manifest records {expectedSize}");
            var digest = "sha256:" + Convert.ToHexStringLower(_hash.GetHashAndReset());
            if (digest != expectedDigest)
                throw new CheckpointCorruptException(id, $"checkpoint {id} is corrupt: {what} has digest {digest}, its manifest records {expectedDigest}");
        }
        return 0;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // the inner streams are synchronous (a local file, zstd in memory); keep one code path
        await Task.CompletedTask.ConfigureAwait(false);
        return Read(buffer.Span);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Length => expectedSize;
    public override long Position { get => _read; set => throw new NotSupportedException(); }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            _hash.Dispose();
        }
        base.Dispose(disposing);
    }
}

using System.Security.Cryptography;
using Crsc.Controllers.Storage;

namespace Crsc.Storage;

/// <summary>
/// The sink of an ingestion: hashes the uncompressed bytes, compresses them (optionally), hashes what is stored and
/// writes it to a new temp file (0600, never an existing path). The uncompressed hash runs beside compression.
/// </summary>
internal sealed class IngestWriter : IDisposable
{
    /// <summary>Stored/raw size at or above which compression does not pay.</summary>
    internal const double NotWorthIt = 0.97;

    /// <summary>How many places of an archive <see cref="WorthCompressing"/> tries, and how much at each.</summary>
    internal const int Samples = 16, SampleBytes = 256 << 10;

    private readonly IncrementalHash _raw = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly IncrementalHash? _stored;
    private readonly ZstdCompressor? _zstd;
    private readonly FileStream _file;

    /// <summary>
    /// Whether zstd at <paramref name="level"/> shrinks the file by at least 3 %, judged from
    /// <see cref="Samples"/> pieces spread evenly over it (read in place; the file position does not move): the memory
    /// of a process is stored in address order, so its start alone says little about the rest.
    /// </summary>
    public static bool WorthCompressing(Microsoft.Win32.SafeHandles.SafeFileHandle file, long length, int level)
    {
        if (length <= 0) return true;
        var size = (int)Math.Min(SampleBytes, length);
        // pieces that do not overlap: a piece seen twice would compress against itself
        var count = (int)Math.Clamp(length / size, 1, Samples);
        var step = length / count;
        var buffer = new byte[size];
        long raw = 0, compressed = 0;
        using var trial = new ZstdCompressor(level, 0, data => compressed += data.Length);
        for (var i = 0; i < count; i++)
        {
            var offset = i * step + (step - size) / 2; // the middle of each part: no part of the file weighs more
            var n = RandomAccess.Read(file, buffer, offset);
            if (n <= 0) break;
            trial.Write(buffer.AsSpan(0, n));
            raw += n;
        }
        trial.Finish();
        return raw == 0 || compressed < raw * NotWorthIt;
    }

    public IngestWriter(string tempPath, CheckpointCompression compression, int level, int workers)
    {
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

    /// <summary>One block of the staged archive, in order.</summary>
    public void Accept(byte[] buffer, int count)
    {
        RawBytes += count;
        if (_zstd is null)
        {
            // the digest beside the write, as beside compression below
            var digesting = Task.Run(() => _raw.AppendData(buffer, 0, count));
            try { _file.Write(buffer, 0, count); }
            finally { digesting.GetAwaiter().GetResult(); }
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

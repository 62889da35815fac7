using System.Collections.Concurrent;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Storage.Oci;

/// <summary>A blob of a checkpoint image: the config (in memory) or the layer (the stored archive).</summary>
public sealed record OciBlob(OciDescriptor Descriptor, byte[]? Content, CheckpointInfo? Stored);

/// <summary>A value, or the distribution-API error that stands for its absence.</summary>
public readonly record struct OciResult<T>(T? Value, OciError? Error) where T : class
{
    public static implicit operator OciResult<T>(T value) => new(value, null);
    public static implicit operator OciResult<T>(OciError error) => new(null, error);
}

/// <summary>
/// The store seen as OCI repositories, read-only: repository <c>crsc/&lt;ns&gt;/&lt;workload&gt;/&lt;container&gt;</c>,
/// one image per committed checkpoint (tag = checkpoint id), its manifest and config written by
/// <see cref="CheckpointImageWriter"/> (cached: they are deterministic) and its layer streamed from the stored archive.
/// The decisions of the embedded distribution endpoint live here; the HTTP handler only translates. Names and digests
/// from requests are checked against the store's own rules and never become paths. Only checkpoints whose manifest MAC
/// verifies with this node's key are served (<see cref="CheckpointAuthenticity.Verified"/>): others are not listed, and
/// asking for them answers DENIED naming the failed check.
/// </summary>
public sealed class StoreImageRegistry : ICheckpointImageLookup
{
    private const int MaxCachedImages = 4096;
    private readonly ICheckpointStore _store;
    private readonly CheckpointImagePlatform _platform;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, (CheckpointInfo Info, CheckpointImage Image)> _images = new(StringComparer.Ordinal);
    // stored blobs read to the end with their digest checked, by checkpoint id: (length, mtime) of the file then
    private readonly ConcurrentDictionary<string, (long Length, DateTime Modified)> _verified = new(StringComparer.Ordinal);

    public StoreImageRegistry(ICheckpointStore store, CheckpointImagePlatform? platform = null, ILogger<StoreImageRegistry>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        _store = store;
        _platform = platform ?? CheckpointImagePlatform.Current;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>The image of <paramref name="checkpoint"/> (made once, then cached).</summary>
    /// <exception cref="CheckpointImageException">the checkpoint cannot be an image</exception>
    public CheckpointImage ImageOf(CheckpointInfo checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        if (_images.TryGetValue(checkpoint.Id, out var cached) && cached.Info == checkpoint) return cached.Image;
        var image = CheckpointImageWriter.Write(checkpoint, _platform);
        if (_images.Count >= MaxCachedImages) _images.Clear(); // bounded; images are cheap to make again
        _images[checkpoint.Id] = (checkpoint, image);
        return image;
    }

    /// <summary>A manifest by tag (checkpoint id) or by its digest.</summary>
    public OciResult<CheckpointImage> FindManifest(string name, string reference)
    {
        if (Repository(name, out var checkpoints) is { } error) return error;
        if (CheckpointImageNames.IsTag(reference))
        {
            var c = checkpoints.FirstOrDefault(c => c.Id == reference);
            if (c is null) return OciError.ManifestUnknown(name, reference);
            if (c.AuthenticityProblem is { } problem) return Refuse(name, reference, c, problem);
            var image = TryImage(c, out var why);
            return image is null ? OciError.ManifestUnknown(name, reference, why) : image;
        }
        if (!OciDigest.LooksLikeDigest(reference)) return OciError.ManifestUnknown(name, reference);
        if (!OciDigest.IsSha256(reference)) return OciError.DigestInvalid(reference);
        foreach (var c in checkpoints)
        {
            if (TryImage(c, out _) is not { } image || image.Manifest.Digest != reference) continue;
            return c.AuthenticityProblem is { } problem ? Refuse(name, reference, c, problem) : image;
        }
        return OciError.ManifestUnknown(name, reference);
    }

    /// <summary>A blob of an image of the repository: a config, or a layer (a stored archive).</summary>
    public OciResult<OciBlob> FindBlob(string name, string digest)
    {
        if (!OciDigest.IsSha256(digest)) return OciError.DigestInvalid(digest);
        if (Repository(name, out var checkpoints) is { } error) return error;
        OciError? refused = null;
        foreach (var c in checkpoints)
        {
            if (c.AuthenticityProblem is { } problem)
            {
                // its layer is the stored archive (no image needed to tell: the manifest may no longer make one);
                // another, authentic checkpoint may have the same blob, so look on
                if (c.Digest == digest || TryImage(c, out _)?.Config.Digest == digest) refused ??= Refuse(name, digest, c, problem);
                continue;
            }
            if (TryImage(c, out _) is not { } image) continue;
            if (image.Layer.Digest == digest) return new OciBlob(image.Layer, null, c);
            if (image.Config.Digest == digest) return new OciBlob(image.Config, image.ConfigBytes, null);
        }
        return refused ?? OciError.BlobUnknown(name, digest);
    }

    /// <summary>The tags (checkpoint ids) of the repository, in ordinal order.</summary>
    public OciResult<IReadOnlyList<string>> Tags(string name)
    {
        if (Repository(name, out var checkpoints) is { } error) return error;
        var tags = checkpoints.Where(c => c.Authenticity == CheckpointAuthenticity.Verified && TryImage(c, out _) is not null).Select(c => c.Id).Order(StringComparer.Ordinal).ToList();
        return new OciResult<IReadOnlyList<string>>(tags, null);
    }

    /// <summary>
    /// The bytes of <paramref name="blob"/>, or of <paramref name="range"/> of it. A whole stored blob is checked against
    /// its digest while it streams (reading to the end throws <see cref="CheckpointCorruptException"/> on a mismatch);
    /// a part of one is served only once the whole file was read with a matching digest (remembered while the file's
    /// length and modification time stay the same).
    /// </summary>
    /// <exception cref="CheckpointNotFoundException">the checkpoint was deleted meanwhile</exception>
    /// <exception cref="CheckpointCorruptException">the stored archive does not match its digest</exception>
    public async Task<Stream> OpenBlobAsync(OciBlob blob, ByteRange? range, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(blob);
        if (blob.Content is { } bytes)
        {
            var r = range ?? new ByteRange(0, bytes.Length);
            return new MemoryStream(bytes, checked((int)r.Start), checked((int)r.Length), writable: false);
        }
        var info = blob.Stored ?? throw new ArgumentException("a blob has content or a stored checkpoint", nameof(blob));
        // the manifest is read again when the archive is opened: it must still be the one found, and still authentic
        var current = _store.Get(info.Id) ?? throw new CheckpointNotFoundException(info.Id);
        if (current.AuthenticityProblem is { } problem)
            throw new CheckpointCorruptException(info.Id, $"checkpoint {info.Id} is not served: {problem}");
        if (current.Digest != info.Digest || current.Size != info.Size)
            throw new CheckpointCorruptException(info.Id, $"checkpoint {info.Id} changed while it was being served");
        if (range is not { } part || (part.Start == 0 && part.Length == info.Size))
            return await _store.OpenStoredAsync(info.Id, ct).ConfigureAwait(false);

        await EnsureVerifiedAsync(info, ct).ConfigureAwait(false);
        FileStream file;
        try { file = new FileStream(Native.OpenReadNoFollow(info.ArchivePath), FileAccess.Read, bufferSize: 1 << 16); }
        catch (FileNotFoundException) { throw new CheckpointNotFoundException(info.Id); }
        try
        {
            if (file.Length != info.Size)
                throw new CheckpointCorruptException(info.Id, $"checkpoint {info.Id} is corrupt: the stored archive has {file.Length} bytes, its manifest records {info.Size}");
            file.Position = part.Start;
            return new SliceReadStream(file, part.Length);
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task EnsureVerifiedAsync(CheckpointInfo info, CancellationToken ct)
    {
        var now = Stamp(info.ArchivePath);
        if (_verified.TryGetValue(info.Id, out var seen) && seen == now) return;
        var stream = await _store.OpenStoredAsync(info.Id, ct).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            var buffer = new byte[1 << 20];
            while (await stream.ReadAsync(buffer, ct).ConfigureAwait(false) > 0) { }
        }
        _verified[info.Id] = now;
    }

    private static (long, DateTime) Stamp(string path)
    {
        var f = new FileInfo(path);
        return f.Exists ? (f.Length, f.LastWriteTimeUtc) : (-1, default);
    }

    private OciError? Repository(string name, out IReadOnlyList<CheckpointInfo> checkpoints)
    {
        checkpoints = [];
        if (!OciRoute.IsValidName(name)) return OciError.NameInvalid(name);
        if (!CheckpointImageNames.TryParseRepository(name, out var filter)) return OciError.NameUnknown(name);
        checkpoints = _store.List(filter);
        return checkpoints.Count == 0 ? OciError.NameUnknown(name) : null;
    }

    public CheckpointInfo? FindByImage(string imageReference)
    {
        if (!ImageReference.TryParse(imageReference, out var reference, out _)) return null;
        if (!CheckpointImageNames.TryParseRepository(reference.Path, out var filter)) return null;
        var checkpoints = _store.List(filter);
        if (reference.Digest is { } digest) return checkpoints.FirstOrDefault(c => TryImage(c, out _) is { } image && image.Manifest.Digest == digest);
        return reference.Tag is { } tag ? checkpoints.FirstOrDefault(c => c.Id == tag) : null;
    }

    private OciError Refuse(string name, string reference, CheckpointInfo c, string problem)
    {
        Log.NotAuthentic(_logger, c.Id, problem);
        return OciError.NotAuthentic(name, reference, problem);
    }

    private CheckpointImage? TryImage(CheckpointInfo c, out string? why)
    {
        try
        {
            why = null;
            return ImageOf(c);
        }
        catch (CheckpointImageException e)
        {
            Log.NoImage(_logger, c.Id, e.Message);
            why = e.Message;
            return null;
        }
    }
}

/// <summary>At most <c>length</c> bytes of a stream from where it is positioned.</summary>
internal sealed class SliceReadStream(Stream inner, long length) : ReadOnlyStream
{
    private readonly long _length = length;
    private long _left = length;

    public override long Length => _length;
    public override long Position { get => _length - _left; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_left <= 0 || buffer.IsEmpty) return 0;
        var n = inner.Read(buffer[..(int)Math.Min(buffer.Length, _left)]);
        if (n == 0) throw new EndOfStreamException($"the blob ended {_left} bytes early");
        _left -= n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_left <= 0 || buffer.IsEmpty) return 0;
        var n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _left)], cancellationToken).ConfigureAwait(false);
        if (n == 0) throw new EndOfStreamException($"the blob ended {_left} bytes early");
        _left -= n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}

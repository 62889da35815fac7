using System.Formats.Tar;
using System.Text;
using Crsc.Controllers.Storage;

namespace Crsc.Storage;

/// <summary>
/// A <see cref="TarReader"/> whose memory stays bounded whatever the input: the extended headers (PAX, GNU long
/// names) are checked against <see cref="ArchiveLimits.MaxExtendedHeaderBytes"/> from their raw header block, before
/// the tar reader allocates what they declare, and every entry's name, link name, depth and the number of entries are
/// checked as it comes. Every archive reader of crsc (ingest, <c>crsc inspect</c>) reads through this.
/// </summary>
/// <remarks>The source is read forward only (a seekable one too), so <see cref="Position"/> is where the reader is.</remarks>
public sealed class BoundedTarReader : IDisposable
{
    private const int Block = 512;
    private readonly HeaderGuardStream _guard;
    private readonly TarReader _reader;
    private readonly ArchiveLimits _limits;

    public BoundedTarReader(Stream source, ArchiveLimits limits)
    {
        _limits = limits;
        _guard = new HeaderGuardStream(source, limits);
        _reader = new TarReader(_guard, leaveOpen: true);
    }

    /// <summary>Bytes of the source read so far.</summary>
    public long Position => _guard.Delivered;
    /// <summary>Entries returned so far (global extended headers excluded).</summary>
    public int Entries { get; private set; }
    /// <summary>The source as the reader sees it, for draining what follows the end-of-archive marker.</summary>
    public Stream Stream => _guard;

    /// <summary>The next entry (its data not copied), or null at the end-of-archive marker.</summary>
    /// <exception cref="ArchiveRejectedException">a limit is exceeded; the message names the limit and the entry</exception>
    public TarEntry? GetNextEntry(string? previous)
    {
        _guard.ExpectHeader();
        TarEntry? entry;
        try { entry = _reader.GetNextEntry(copyData: false); }
        catch (InvalidOperationException e)
        {
            // the tar reader's refusal of a size field too large for its entry type
            throw new InvalidDataException($"bad tar header after entry '{previous}': {e.Message}", e);
        }
        if (entry is null) return null;
        // the reader stops right after the header(s): the entry's data (padded to a block) comes next
        _guard.NextHeaderAt(_guard.Delivered + (Math.Max(entry.Length, 0) + Block - 1) / Block * Block);
        if (entry.EntryType == TarEntryType.GlobalExtendedAttributes) return entry;
        var shown = Shorten(entry.Name);
        if (++Entries > _limits.MaxEntries)
            throw new ArchiveRejectedException($"the archive has more than {_limits.MaxEntries} entries (limit MaxEntries) at entry '{shown}'", shown);
        var nameBytes = Encoding.UTF8.GetByteCount(entry.Name);
        if (nameBytes > _limits.MaxNameBytes)
            throw new ArchiveRejectedException($"entry '{shown}' has a name of {nameBytes} bytes, over the limit of {_limits.MaxNameBytes}", shown);
        if (entry.LinkName is { Length: > 0 } link && Encoding.UTF8.GetByteCount(link) is var linkBytes && linkBytes > _limits.MaxNameBytes)
            throw new ArchiveRejectedException($"entry '{shown}' has a link target of {linkBytes} bytes, over the limit of {_limits.MaxNameBytes}", shown);
        var depth = entry.Name.AsSpan().Count('/') + 1;
        if (depth > _limits.MaxPathDepth)
            throw new ArchiveRejectedException($"entry '{shown}' is {depth} levels deep, over the limit of {_limits.MaxPathDepth}", shown);
        return entry;
    }

    /// <summary>A name as crsc shows it in a message: at most 256 characters.</summary>
    public static string Shorten(string name) => name.Length <= 256 ? name : name[..256] + $"…({name.Length} characters)";

    public void Dispose()
    {
        _reader.Dispose();
        _guard.Dispose();
    }

    /// <summary>
    /// Passes the source through, and looks at each header block before the tar reader does: an extended header
    /// (PAX <c>x</c>/<c>g</c>, GNU <c>L</c>/<c>K</c>) that declares more than the limit is refused before it is read.
    /// </summary>
    private sealed class HeaderGuardStream(Stream source, ArchiveLimits limits) : ReadOnlyStream
    {
        private const int MaxChain = 8;
        private readonly byte[] _header = new byte[Block];
        private int _headerPos = Block, _headerLen = Block;
        private long _nextHeader; // where the next header block starts; -1: not known (inside an entry's data)
        private int _chain;

        public long Delivered { get; private set; }

        public void ExpectHeader() => _chain = 0;
        public void NextHeaderAt(long at) => _nextHeader = at;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (buffer.IsEmpty) return 0;
            if (_headerPos < _headerLen) return Serve(buffer);
            if (Delivered == _nextHeader)
            {
                _headerLen = source.ReadAtLeast(_header, Block, throwOnEndOfStream: false);
                _headerPos = 0;
                if (_headerLen == 0) return 0;
                Check(Delivered);
                return Serve(buffer);
            }
            if (_nextHeader > Delivered && buffer.Length > _nextHeader - Delivered)
                buffer = buffer[..(int)(_nextHeader - Delivered)];
            var n = source.Read(buffer);
            Delivered += n;
            return n;
        }

        private int Serve(Span<byte> buffer)
        {
            var n = Math.Min(buffer.Length, _headerLen - _headerPos);
            _header.AsSpan(_headerPos, n).CopyTo(buffer);
            _headerPos += n;
            Delivered += n;
            return n;
        }

        private void Check(long at)
        {
            _nextHeader = -1;
            if (_headerLen < Block) return; // cut short: the tar reader says so
            var type = (char)_header[156];
            if (_header.AsSpan().IndexOfAnyExcept((byte)0) < 0)
            {
                _nextHeader = at + Block; // an end-of-archive block: the next one is looked at too
                return;
            }
            if (type is not ('x' or 'g' or 'L' or 'K' or 'X')) return;
            var size = Size(_header.AsSpan(124, 12));
            if (size < 0 || size > limits.MaxExtendedHeaderBytes)
                throw new ArchiveRejectedException(
                    $"the extended tar header ('{type}') at byte {at} declares {(size < 0 ? "an unreadable number of" : size.ToString(System.Globalization.CultureInfo.InvariantCulture))} bytes, over the limit of {limits.MaxExtendedHeaderBytes} (MaxExtendedHeaderBytes)");
            if (++_chain > MaxChain)
                throw new ArchiveRejectedException($"more than {MaxChain} extended tar headers in a row at byte {at}");
            _nextHeader = at + Block + (size + Block - 1) / Block * Block;
        }

        /// <summary>The size field: octal, or base-256 (then it is huge for our purposes); -1 when unreadable.</summary>
        private static long Size(ReadOnlySpan<byte> field)
        {
            if ((field[0] & 0x80) != 0) return long.MaxValue;
            long v = 0;
            var i = 0;
            while (i < field.Length && field[i] is (byte)' ' or 0) i++;
            var start = i;
            for (; i < field.Length && field[i] is >= (byte)'0' and <= (byte)'7'; i++)
            {
                v = v * 8 + (field[i] - '0');
                if (v > int.MaxValue) return long.MaxValue;
            }
            return i == start ? 0 : v;
        }

        protected override void Dispose(bool disposing) { }
    }
}

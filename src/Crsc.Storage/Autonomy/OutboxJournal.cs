using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Crsc.Controllers.Autonomy;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Storage.Autonomy;

/// <summary>
/// The outbox on disk (<c>&lt;stateDir&gt;/outbox/</c>, 0700): <c>journal</c> (0600) is an 8-byte header
/// (<c>CRSCOBX1</c>) and then frames of <c>u32 length | u32 CRC-32 | kind byte + UTF-8 body</c> (little endian),
/// appended and fsync'd; <c>acknowledged</c> holds the journal offset up to which every record was published,
/// replaced atomically. On open a torn or corrupt tail (a crash mid-append) is detected and cut, never fatal.
/// When every record is acknowledged the journal is started afresh. Bounded by <see cref="MaxBytes"/> of pending
/// frames: an append that does not fit is refused with <see cref="OutboxFullException"/>.
/// </summary>
public sealed partial class OutboxJournal : IOutbox, IDisposable
{
    public const string JournalFile = "journal";
    public const string AcknowledgedFile = "acknowledged";
    public const int FrameHeaderBytes = 8;
    /// <summary>The largest single record: a frame length above it is corruption, not a record.</summary>
    public const int MaxRecordBytes = 16 * 1024 * 1024;
    private static readonly byte[] Header = "CRSCOBX1"u8.ToArray();

    private readonly Lock _gate = new();
    private readonly string _dir;
    private readonly string _journalPath;
    private readonly string _ackPath;
    private readonly ILogger _logger;
    private readonly List<(long Position, int Size)> _pending = [];
    private FileStream _journal;
    private long _acknowledged;

    /// <param name="directory">the outbox directory (created 0700)</param>
    /// <param name="maxBytes">the bound of pending bytes (<c>outbox.maxBytes</c>)</param>
    public OutboxJournal(string directory, long maxBytes, ILogger<OutboxJournal>? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1024);
        _dir = directory;
        MaxBytes = maxBytes;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _journalPath = Path.Combine(directory, JournalFile);
        _ackPath = Path.Combine(directory, AcknowledgedFile);
        AtomicFile.EnsureDirectory(directory);
        _journal = Open();
    }

    public long MaxBytes { get; }

    public string Directory => _dir;

    public OutboxUsage Usage
    {
        get
        {
            lock (_gate) return new OutboxUsage(_pending.Count, _pending.Sum(p => (long)p.Size), MaxBytes);
        }
    }

    private FileStream Open()
    {
        if (!File.Exists(_journalPath)) AtomicFile.Write(_journalPath, Header);
        var stream = new FileStream(_journalPath, new FileStreamOptions
        {
            Mode = FileMode.Open,
            Access = FileAccess.ReadWrite,
            Share = FileShare.Read,
            Options = FileOptions.None,
        });
        File.SetUnixFileMode(_journalPath, AtomicFile.FileMode);
        try
        {
            var head = new byte[Header.Length];
            stream.Position = 0;
            if (stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false) != head.Length || !head.AsSpan().SequenceEqual(Header))
                throw new IOException($"{_journalPath} is not a crsc outbox journal (no {Encoding.ASCII.GetString(Header)} header)");
            _acknowledged = ReadAcknowledged();
            var frames = Scan(stream, out var validEnd);
            if (validEnd < stream.Length)
            {
                Log.TornTail(_logger, _journalPath, validEnd, stream.Length - validEnd);
                stream.SetLength(validEnd);
                stream.Flush(flushToDisk: true);
            }
            if (_acknowledged > validEnd)
            {
                // a crash between starting a fresh journal and resetting the offset: nothing is pending
                _acknowledged = validEnd;
                WriteAcknowledged(_acknowledged);
            }
            else if (_acknowledged != validEnd && !frames.Any(f => f.Position == _acknowledged))
            {
                // no frame boundary: publish again from the frame before it (publishing is idempotent)
                var fixedAt = frames.Where(f => f.Position < _acknowledged).Select(f => f.Position).DefaultIfEmpty(Header.Length).Max();
                Log.AcknowledgedMoved(_logger, _ackPath, _acknowledged, fixedAt);
                _acknowledged = fixedAt;
                WriteAcknowledged(_acknowledged);
            }
            _pending.Clear();
            _pending.AddRange(frames.Where(f => f.Position >= _acknowledged));
            stream.Position = stream.Length;
            return stream;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>The valid frames from the header on, and where the last of them ends.</summary>
    private static List<(long Position, int Size)> Scan(FileStream stream, out long validEnd)
    {
        var frames = new List<(long, int)>();
        var position = (long)Header.Length;
        var head = new byte[FrameHeaderBytes];
        stream.Position = position;
        while (true)
        {
            if (stream.ReadAtLeast(head, FrameHeaderBytes, throwOnEndOfStream: false) < FrameHeaderBytes) break;
            var length = BinaryPrimitives.ReadUInt32LittleEndian(head);
            var crc = BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(4));
            if (length < 1 || length > MaxRecordBytes || position + FrameHeaderBytes + length > stream.Length) break;
            var payload = new byte[length];
            if (stream.ReadAtLeast(payload, (int)length, throwOnEndOfStream: false) < length) break;
            if (Crc32.Compute(payload) != crc) break;
            frames.Add((position, FrameHeaderBytes + (int)length));
            position += FrameHeaderBytes + length;
        }
        validEnd = position;
        return frames;
    }

    public void Append(IReadOnlyList<OutboxRecord> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        if (records.Count == 0) return;
        var frames = records.Select(Encode).ToList();
        var bytes = frames.Sum(f => (long)f.Length);
        lock (_gate)
        {
            var pending = _pending.Sum(p => (long)p.Size);
            if (pending + bytes > MaxBytes)
                throw new OutboxFullException(string.Create(CultureInfo.InvariantCulture,
                    $"outbox full: {pending} of {MaxBytes} bytes in {_pending.Count} record(s) wait for the API server; {records.Count} record(s) of {bytes} bytes do not fit"));
            var position = _journal.Length;
            _journal.Position = position;
            var all = new byte[bytes];
            var at = 0;
            foreach (var f in frames)
            {
                f.CopyTo(all, at);
                at += f.Length;
            }
            try
            {
                _journal.Write(all);
                _journal.Flush(flushToDisk: true);
            }
            catch (IOException)
            {
                // whatever part was written is a torn tail: cut it so the next append starts on a frame boundary
                try { _journal.SetLength(position); } catch (IOException) { }
                throw;
            }
            foreach (var f in frames)
            {
                _pending.Add((position, f.Length));
                position += f.Length;
            }
        }
    }

    public IReadOnlyList<OutboxEntry> Pending(int max)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        lock (_gate)
        {
            var result = new List<OutboxEntry>();
            foreach (var (position, size) in _pending.Take(max))
            {
                var buffer = new byte[size];
                RandomAccess.Read(_journal.SafeFileHandle, buffer, position);
                var kind = (OutboxRecordKind)buffer[FrameHeaderBytes];
                var body = Encoding.UTF8.GetString(buffer, FrameHeaderBytes + 1, size - FrameHeaderBytes - 1);
                result.Add(new OutboxEntry(position, new OutboxRecord(kind, body), size));
            }
            return result;
        }
    }

    public void Acknowledge(OutboxEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_gate)
        {
            if (_pending.Count == 0 || _pending[0].Position != entry.Position)
                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                    $"outbox record at {entry.Position} is not the oldest pending one ({(_pending.Count == 0 ? "none" : _pending[0].Position)})"));
            var end = entry.Position + entry.Size;
            WriteAcknowledged(end);
            _acknowledged = end;
            _pending.RemoveAt(0);
            if (_pending.Count == 0) Restart();
        }
    }

    /// <summary>Everything is published: a fresh journal (rename over the old one), then the acknowledged offset back to its start.</summary>
    private void Restart()
    {
        _journal.Dispose();
        AtomicFile.Write(_journalPath, Header);
        WriteAcknowledged(Header.Length);
        _acknowledged = Header.Length;
        _journal = new FileStream(_journalPath, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.ReadWrite, Share = FileShare.Read });
        _journal.Position = _journal.Length;
    }

    private long ReadAcknowledged()
    {
        if (!File.Exists(_ackPath)) return Header.Length;
        var text = File.ReadAllText(_ackPath).Trim();
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= Header.Length) return value;
        Log.AcknowledgedUnreadable(_logger, _ackPath, text);
        return Header.Length;
    }

    private void WriteAcknowledged(long offset) =>
        AtomicFile.Write(_ackPath, Encoding.ASCII.GetBytes(offset.ToString(CultureInfo.InvariantCulture) + "\n"));

    private static byte[] Encode(OutboxRecord record)
    {
        var body = Encoding.UTF8.GetBytes(record.Body);
        if (body.Length + 1 > MaxRecordBytes)
            throw new ArgumentException($"outbox record of kind {record.Kind} is {body.Length} bytes; the most is {MaxRecordBytes}", nameof(record));
        var frame = new byte[FrameHeaderBytes + 1 + body.Length];
        frame[FrameHeaderBytes] = (byte)record.Kind;
        body.CopyTo(frame, FrameHeaderBytes + 1);
        var payload = frame.AsSpan(FrameHeaderBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(4), Crc32.Compute(payload));
        return frame;
    }

    public void Dispose()
    {
        lock (_gate) _journal.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(50101, LogLevel.Warning, "Outbox journal {Path}: cut a torn or corrupt tail of {Bytes} bytes at offset {Offset} (a crash during an append)")]
        public static partial void TornTail(ILogger logger, string path, long offset, long bytes);

        [LoggerMessage(50102, LogLevel.Warning, "Outbox {Path}: acknowledged offset {Offset} is no record boundary; publishing again from {Fixed}")]
        public static partial void AcknowledgedMoved(ILogger logger, string path, long offset, long @fixed);

        [LoggerMessage(50103, LogLevel.Warning, "Outbox {Path} cannot be read ('{Text}'); publishing every record again")]
        public static partial void AcknowledgedUnreadable(ILogger logger, string path, string text);
    }
}

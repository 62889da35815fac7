using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Crsc.Interceptor;

/// <summary>
/// Which request methods go into the replay log: <c>none</c> (the default), <c>all</c>, <c>non-GET</c> (everything but
/// GET, HEAD and OPTIONS) or a comma list of methods such as <c>POST,PUT</c> (exact, case-sensitive, as HTTP methods are).
/// </summary>
public sealed class ReplayMethods
{
    private readonly HashSet<string>? _listed;
    private readonly bool _all, _nonGet;

    private ReplayMethods(string text, bool all, bool nonGet, HashSet<string>? listed)
    {
        Text = text;
        _all = all;
        _nonGet = nonGet;
        _listed = listed;
    }

    public static readonly ReplayMethods None = new("none", false, false, []);

    /// <summary>The text it was parsed from (normalised: <c>none</c>, <c>all</c>, <c>non-GET</c> or the list).</summary>
    public string Text { get; }
    public bool IsNone => !_all && !_nonGet && _listed is { Count: 0 };

    public bool Matches(string method) =>
        _all || (_nonGet ? method is not ("GET" or "HEAD" or "OPTIONS") : _listed!.Contains(method));

    /// <summary>Parses the vocabulary; null with <paramref name="problem"/> saying what is wrong.</summary>
    public static ReplayMethods? Parse(string text, out string? problem)
    {
        problem = null;
        switch (text)
        {
            case "none": return None;
            case "all": return new ReplayMethods("all", true, false, null);
            case "non-GET": return new ReplayMethods("non-GET", false, true, null);
        }
        var listed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var part in text.Split(','))
        {
            var m = part.Trim();
            if (m.Length == 0 || m.Any(c => c is not (>= 'A' and <= 'Z')))
            {
                problem = $"'{text}' is not none, all, non-GET or a comma list of upper-case methods (e.g. POST,PUT)";
                return null;
            }
            listed.Add(m);
        }
        return new ReplayMethods(string.Join(',', listed), false, false, listed);
    }
}

/// <summary>The replay log's options (<c>--replay-*</c>).</summary>
public sealed record ReplayOptions
{
    public required ReplayMethods Methods { get; init; }
    /// <summary>The log file; it belongs on a volume that outlives the sidecar container (the pod's emptyDir).</summary>
    public required string LogPath { get; init; }
    /// <summary>The log file may grow to this many bytes (records and their framing); a request over it overflows the log.</summary>
    public long MaxBytes { get; init; } = 64L << 20;
    /// <summary>The log may hold this many requests; one more overflows it.</summary>
    public int MaxEntries { get; init; } = 100_000;
    /// <summary>A replay tries to connect to the restored app this many times before it gives up.</summary>
    public int ConnectAttempts { get; init; } = 40;
    /// <summary>The wait between two attempts to connect to the restored app.</summary>
    public TimeSpan ConnectRetryDelay { get; init; } = TimeSpan.FromMilliseconds(250);
    /// <summary>How long one replayed request may take to be answered.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public string? Problem() =>
        MaxBytes < 4096 ? $"replay max bytes {MaxBytes} is under 4096"
        : MaxEntries < 1 ? $"replay max entries {MaxEntries} is not positive"
        : ConnectAttempts < 1 ? $"replay connect attempts {ConnectAttempts} is not positive"
        : ConnectRetryDelay < TimeSpan.Zero ? $"replay connect retry delay {ConnectRetryDelay} is negative"
        : RequestTimeout <= TimeSpan.Zero ? $"replay request timeout {RequestTimeout} is not positive"
        : null;
}

/// <summary>One logged request: where it went (the app's address) and what it was (the body without its framing).</summary>
public sealed record ReplayEntry(long Position, string Upstream, string Method, string Target,
    IReadOnlyList<KeyValuePair<string, string>> Headers, ReadOnlyMemory<byte> Body);

/// <summary>The log's state in <c>status</c>.</summary>
public sealed record ReplayLogStatus
{
    public string Methods { get; init; } = "";
    public string Path { get; init; } = "";
    public int Entries { get; init; }
    public long Bytes { get; init; }
    /// <summary>The position of the last request given one (the <c>hold</c> answer's position).</summary>
    public long Position { get; init; }
    /// <summary>The position the log was last truncated at (<c>checkpointed POS</c>); 0 when never.</summary>
    public long TruncatedAt { get; init; }
    /// <summary>True when a request was not logged (over a bound, or the file failed): a replay refuses until a checkpoint covers it.</summary>
    public bool Overflowed { get; init; }
    public string? OverflowReason { get; init; }
    public long Dropped { get; init; }
    public ReplayResult? LastReplay { get; init; }
    /// <summary>Replays since the sidecar started, that succeeded and that failed.</summary>
    public long ReplaysSucceeded { get; init; }
    public long ReplaysFailed { get; init; }
    /// <summary>Replayed requests since the sidecar started, by the app's answer (status code).</summary>
    public Dictionary<string, long> ReplayedRequests { get; init; } = [];
}

/// <summary>What the last replay did.</summary>
public sealed record ReplayResult
{
    public bool Succeeded { get; init; }
    public int Entries { get; init; }
    /// <summary>Entries the app answered (2xx-4xx) before the replay stopped; every one when it succeeded.</summary>
    public int Replayed { get; init; }
    public Dictionary<string, int> Statuses { get; init; } = [];
    public string? Error { get; init; }
}

/// <summary>
/// The replay log: requests the app answered since the last completed checkpoint, so that after a restore (which throws
/// their effects away) they can be sent to the restored app again, in order. Append-only, one file:
/// <code>
/// "CRSCRPL\x01"  then records:  u32 length | u32 CRC-32C of the payload | payload
/// payload: u8 kind | i64 position | kind 1 (request): upstream, method, target, i32 header count, name/value pairs, body
///                                   kind 2 (truncated at the position) | kind 3 (overflowed at the position)
/// </code>
/// (strings and the body: i32 length then bytes, strings Latin-1 as on the wire; little-endian). Appends are group
/// committed: the requests that arrive while an fsync runs share the next one, and <see cref="AppendAsync"/> completes
/// only after the fsync that made its record durable — the proxy passes the app's answer on only then, so every answered
/// request is in the log. On open a torn tail (a short record or a bad CRC: a crash mid-append) is cut at the last good
/// record. Positions grow by one per request and jump to a new 2^32 block at each open, so a position handed out before a
/// restart of the sidecar never names a request logged after it. Truncation (<see cref="TruncateAsync"/>) writes the kept
/// records to a temporary file, fsyncs it, renames it into place and fsyncs the directory.
/// When a request does not fit the bounds (or the file fails) the log overflows: it says so (warning, <c>status</c>),
/// logs nothing more, and a replay refuses — a partial history replayed would be worse than none — until a checkpoint
/// whose hold came after the last dropped request truncates it, which makes it whole (empty) again.
/// </summary>
public sealed partial class ReplayLog : IDisposable
{
    private const byte KindRequest = 1, KindTruncated = 2, KindOverflow = 3;
    private const int FrameBytes = 8;
    private static readonly byte[] Magic = "CRSCRPL\x01"u8.ToArray();

    private readonly ReplayOptions _options;
    private readonly ILogger _log;
    private readonly Action<FileStream> _sync;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _file = new(1, 1);
    private readonly List<(long Position, long Offset, int Length)> _index = [];
    private List<Pending> _pending = [];
    private bool _flushing;
    private FileStream _stream;
    private long _fileLength; // bytes in the file
    private long _unwritten; // bytes of records pending or being written
    private int _unwrittenEntries;
    private long _position, _truncatedAt, _lastDropped, _dropped;
    private bool _overflowed;
    private string? _overflowReason;
    private ReplayResult? _lastReplay;
    private long _replaysSucceeded, _replaysFailed;
    private readonly Dictionary<string, long> _replayedRequests = new(StringComparer.Ordinal);

    /// <param name="sync">How a batch is made durable (default: fsync); a test passes one that blocks.</param>
    internal ReplayLog(ReplayOptions options, ILogger log, Action<FileStream>? sync)
    {
        if (options.Problem() is { } problem) throw new ArgumentException(problem, nameof(options));
        _options = options;
        _log = log;
        _sync = sync ?? (static f => f.Flush(flushToDisk: true));
        _stream = Open();
    }

    /// <summary>Opens (or creates) the log at <see cref="ReplayOptions.LogPath"/>, cutting a torn tail. Throws <see cref="IOException"/> for a file that is not a replay log.</summary>
    public static ReplayLog Open(ReplayOptions options, ILogger log) => new(options, log, null);

    public ReplayOptions Options => _options;

    /// <summary>Owner read/write only: the log holds request bodies (tokens, personal data).</summary>
    internal const UnixFileMode LogFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>
    /// Replaces <paramref name="path"/> whole: <paramref name="write"/> fills a new temp file (0600) beside it, which is
    /// fsynced, renamed over it, and the directory fsynced; returns the new file's length. The directory is a volume the
    /// app's container may write, so the temp file has a name of its own (random) and is created exclusively (O_EXCL
    /// follows no link): nothing the app put there is written through, and nothing of it is removed. A failed write
    /// removes only the temp file made here.
    /// </summary>
    private static long Replace(string path, Action<FileStream> write)
    {
        var temp = $"{path}.tmp-{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4))}";
        long length;
        try
        {
            using (var f = new FileStream(temp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, UnixCreateMode = LogFileMode,
            }))
            {
                write(f);
                f.Flush(flushToDisk: true);
                length = f.Length;
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
        SyncDirectory(path);
        return length;
    }

    private FileStream Open()
    {
        var path = _options.LogPath;
        if (!File.Exists(path) || new FileInfo(path).Length < Magic.Length)
        {
            Replace(path, f => f.Write(Magic));
        }
        var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0);
        try
        {
            var data = new byte[stream.Length];
            stream.ReadExactly(data);
            if (!data.AsSpan(0, Magic.Length).SequenceEqual(Magic)) throw new IOException($"replay log {path}: not a replay log (its first bytes are not the format's); it is left alone");
            long offset = Magic.Length, maxSeen = 0;
            while (Record(data, offset) is var (kind, position, length))
            {
                maxSeen = Math.Max(maxSeen, position);
                switch (kind)
                {
                    case KindRequest: _index.Add((position, offset, length)); break;
                    case KindTruncated: _truncatedAt = Math.Max(_truncatedAt, position); break;
                    case KindOverflow: _overflowed = true; _overflowReason = "the log overflowed before the interceptor restarted"; break;
                }
                offset += length;
            }
            if (offset < data.Length)
            {
                Log.TornTail(_log, path, data.Length - offset, offset);
                stream.SetLength(offset);
                stream.Flush(flushToDisk: true);
            }
            _fileLength = offset;
            stream.Position = offset;
            // a new block of positions: none handed out before this open (even to a request then dropped) is reused
            _position = ((maxSeen >> 32) + 1) << 32;
            if (_overflowed) _lastDropped = _position; // whatever was dropped before the restart came before any hold from now on
            return stream;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>The record at <paramref name="offset"/> when it is whole and its CRC matches: (kind, position, its length with framing).</summary>
    private static (byte Kind, long Position, int Length)? Record(byte[] data, long offset)
    {
        if (data.Length - offset < FrameBytes) return null;
        var span = data.AsSpan((int)offset);
        var length = BinaryPrimitives.ReadUInt32LittleEndian(span);
        if (length < 9 || length > data.Length - offset - FrameBytes) return null;
        var payload = span.Slice(FrameBytes, (int)length);
        if (Crc(payload) != BinaryPrimitives.ReadUInt32LittleEndian(span[4..])) return null;
        var kind = payload[0];
        if (kind is not (KindRequest or KindTruncated or KindOverflow)) return null;
        if (kind == KindRequest && Decode(payload) is null) return null;
        return (kind, BinaryPrimitives.ReadInt64LittleEndian(payload[1..]), FrameBytes + (int)length);
    }

    private static uint Crc(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (var b in data) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    private static byte[] Frame(byte kind, long position, ReplayEntry? entry)
    {
        var payload = new MemoryStream();
        var w = new BinaryWriter(payload);
        w.Write(kind);
        w.Write(position);
        if (entry is not null)
        {
            WriteString(w, entry.Upstream);
            WriteString(w, entry.Method);
            WriteString(w, entry.Target);
            w.Write(entry.Headers.Count);
            foreach (var (name, value) in entry.Headers)
            {
                WriteString(w, name);
                WriteString(w, value);
            }
            w.Write(entry.Body.Length);
            w.Write(entry.Body.Span);
        }
        w.Flush();
        var p = payload.GetBuffer().AsSpan(0, (int)payload.Length);
        var record = new byte[FrameBytes + p.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)p.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(4), Crc(p));
        p.CopyTo(record.AsSpan(FrameBytes));
        return record;
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.Latin1.GetBytes(s);
        w.Write(bytes.Length);
        w.Write(bytes);
    }

    /// <summary>A request record's payload read back; null when it does not parse.</summary>
    private static ReplayEntry? Decode(ReadOnlySpan<byte> payload)
    {
        try
        {
            var position = BinaryPrimitives.ReadInt64LittleEndian(payload[1..]);
            var at = 9;
            var upstream = ReadString(payload, ref at);
            var method = ReadString(payload, ref at);
            var target = ReadString(payload, ref at);
            var count = ReadInt(payload, ref at);
            if (count < 0) return null;
            var headers = new List<KeyValuePair<string, string>>();
            for (var i = 0; i < count; i++) headers.Add(new(ReadString(payload, ref at), ReadString(payload, ref at)));
            var bodyLength = ReadInt(payload, ref at);
            if (bodyLength < 0 || at + bodyLength != payload.Length) return null;
            return new ReplayEntry(position, upstream, method, target, headers, payload.Slice(at, bodyLength).ToArray());
        }
        catch (ArgumentOutOfRangeException) { return null; }
    }

    private static int ReadInt(ReadOnlySpan<byte> p, ref int at)
    {
        var v = BinaryPrimitives.ReadInt32LittleEndian(p[at..]);
        at += 4;
        return v;
    }

    private static string ReadString(ReadOnlySpan<byte> p, ref int at)
    {
        var n = ReadInt(p, ref at);
        if (n < 0 || n > p.Length - at) throw new ArgumentOutOfRangeException(nameof(p));
        var s = Encoding.Latin1.GetString(p.Slice(at, n));
        at += n;
        return s;
    }

    /// <summary>Whether a request with this method is logged.</summary>
    public bool Logs(string method) => _options.Methods.Matches(method);

    /// <summary>The last position given out: the log's end, as <c>hold</c> reports it once in-flight requests are done.</summary>
    public long Position
    {
        get { lock (_lock) return _position; }
    }

    /// <summary>
    /// Logs a request (its position is assigned here) and completes once it is durable; false when it was not logged
    /// (the log is overflowed, the request does not fit, or the file failed — each said loudly once).
    /// </summary>
    public Task<bool> AppendAsync(string upstream, string method, string target, IReadOnlyList<KeyValuePair<string, string>> headers,
        ReadOnlyMemory<byte> body)
    {
        Pending p;
        lock (_lock)
        {
            var position = ++_position;
            if (_overflowed)
            {
                _lastDropped = position;
                _dropped++;
                return Task.FromResult(false);
            }
            var record = Frame(KindRequest, position, new ReplayEntry(position, upstream, method, target, headers, body));
            string? over = _index.Count + _unwrittenEntries >= _options.MaxEntries
                ? $"more than {_options.MaxEntries} requests since the last checkpoint (--replay-max-entries)"
                : _fileLength + _unwritten + record.Length > _options.MaxBytes
                    ? $"the log would be over {_options.MaxBytes} bytes (--replay-max-bytes)"
                    : null;
            if (over is not null)
            {
                OverflowLocked(position, over);
                return Task.FromResult(false);
            }
            p = new Pending(KindRequest, position, record);
            _pending.Add(p);
            _unwritten += record.Length;
            _unwrittenEntries++;
            if (_flushing) return p.Done.Task;
            _flushing = true;
        }
        _ = Task.Run(FlushLoop);
        return p.Done.Task;
    }

    /// <summary>A request to log whose body alone is over <see cref="ReplayOptions.MaxBytes"/>: the log overflows.</summary>
    public void TooLarge(string method, string target)
    {
        lock (_lock)
        {
            var position = ++_position;
            if (_overflowed)
            {
                _lastDropped = position;
                _dropped++;
                return;
            }
            OverflowLocked(position, $"the body of {method} {target} is over {_options.MaxBytes} bytes (--replay-max-bytes)");
        }
    }

    private void OverflowLocked(long position, string why)
    {
        _overflowed = true;
        _overflowReason = why;
        _lastDropped = position;
        _dropped++;
        Log.Overflowed(_log, _options.LogPath, why);
        // the marker makes it last over a restart; it is small and not bounded
        var marker = new Pending(KindOverflow, position, Frame(KindOverflow, position, null));
        _pending.Add(marker);
        _unwritten += marker.Record.Length;
        if (!_flushing)
        {
            _flushing = true;
            _ = Task.Run(FlushLoop);
        }
    }

    /// <summary>Writes what is pending and fsyncs, batch after batch, until nothing is pending (one flusher at a time).</summary>
    private void FlushLoop()
    {
        while (true)
        {
            List<Pending> batch;
            lock (_lock)
            {
                if (_pending.Count == 0)
                {
                    _flushing = false;
                    return;
                }
                batch = _pending;
                _pending = [];
            }
            _file.Wait();
            Exception? failure = null;
            try
            {
                var start = _stream.Position;
                try
                {
                    foreach (var p in batch) _stream.Write(p.Record);
                    _sync(_stream);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException) { failure = e; }
                // under the file lock: a truncation does not move the file between the write and the index
                lock (_lock)
                {
                    foreach (var p in batch)
                    {
                        _unwritten -= p.Record.Length;
                        if (p.Kind == KindRequest) _unwrittenEntries--;
                    }
                    if (failure is null)
                    {
                        _fileLength = start;
                        foreach (var p in batch)
                        {
                            if (p.Kind == KindRequest) _index.Add((p.Position, _fileLength, p.Record.Length));
                            _fileLength += p.Record.Length;
                        }
                    }
                    else if (!_overflowed)
                    {
                        _overflowed = true;
                        _overflowReason = $"writing the log failed: {failure.Message}";
                        _lastDropped = _position;
                        Log.Overflowed(_log, _options.LogPath, _overflowReason);
                    }
                }
            }
            finally { _file.Release(); }
            foreach (var p in batch) p.Done.TrySetResult(failure is null);
        }
    }

    /// <summary>
    /// A checkpoint whose hold answered <paramref name="position"/> is complete: the requests up to it are in its state, so
    /// they leave the log. An overflow ends when the checkpoint's hold came after the last dropped request.
    /// </summary>
    public async Task TruncateAsync(long position, CancellationToken ct)
    {
        await _file.WaitAsync(ct);
        try
        {
            List<(long Position, long Offset, int Length)> kept;
            bool overflowed;
            lock (_lock)
            {
                if (position > _position) throw new ArgumentOutOfRangeException(nameof(position), $"position {position} was never given out (the log is at {_position})");
                if (_overflowed && position >= _lastDropped)
                {
                    _overflowed = false;
                    _overflowReason = null;
                    Log.OverflowEnded(_log, _options.LogPath, position);
                }
                overflowed = _overflowed;
                kept = [.. _index.Where(x => x.Position > position)];
                _truncatedAt = Math.Max(_truncatedAt, position);
            }
            var path = _options.LogPath;
            var rewritten = new List<(long, long, int)>();
            var length = Replace(path, f =>
            {
                f.Write(Magic);
                f.Write(Frame(KindTruncated, position, null));
                if (overflowed) f.Write(Frame(KindOverflow, position, null));
                foreach (var (pos, offset, len) in kept)
                {
                    var buffer = new byte[len];
                    RandomAccess.Read(_stream.SafeFileHandle, buffer, offset);
                    rewritten.Add((pos, f.Position, len));
                    f.Write(buffer);
                }
            });
            var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0) { Position = length };
            lock (_lock)
            {
                _stream.Dispose();
                _stream = stream;
                _index.Clear();
                _index.AddRange(rewritten);
                _fileLength = length;
            }
        }
        finally { _file.Release(); }
    }

    /// <summary>The logged requests, in order (read under the file lock: a truncation does not move them meanwhile).</summary>
    public async Task<IReadOnlyList<ReplayEntry>> EntriesAsync(CancellationToken ct)
    {
        await _file.WaitAsync(ct);
        try
        {
            List<(long Position, long Offset, int Length)> index;
            lock (_lock) index = [.. _index];
            var entries = new List<ReplayEntry>(index.Count);
            foreach (var (_, offset, length) in index)
            {
                var buffer = new byte[length];
                RandomAccess.Read(_stream.SafeFileHandle, buffer, offset);
                entries.Add(Decode(buffer.AsSpan(FrameBytes)) ?? throw new IOException($"replay log {_options.LogPath}: the record at {offset} no longer parses"));
            }
            return entries;
        }
        finally { _file.Release(); }
    }

    /// <summary>Requests appended and not yet durable (pending or being written): tests see a batch form.</summary>
    internal int UnwrittenEntries
    {
        get { lock (_lock) return _unwrittenEntries; }
    }

    public bool Overflowed
    {
        get { lock (_lock) return _overflowed; }
    }

    internal void NoteReplay(ReplayResult result)
    {
        lock (_lock)
        {
            _lastReplay = result;
            if (result.Succeeded) _replaysSucceeded++;
            else _replaysFailed++;
            foreach (var (status, count) in result.Statuses) _replayedRequests[status] = _replayedRequests.GetValueOrDefault(status) + count;
        }
    }

    public ReplayLogStatus Status()
    {
        lock (_lock)
        {
            return new ReplayLogStatus
            {
                Methods = _options.Methods.Text,
                Path = _options.LogPath,
                Entries = _index.Count,
                Bytes = _fileLength,
                Position = _position,
                TruncatedAt = _truncatedAt,
                Overflowed = _overflowed,
                OverflowReason = _overflowReason,
                Dropped = _dropped,
                LastReplay = _lastReplay,
                ReplaysSucceeded = _replaysSucceeded,
                ReplaysFailed = _replaysFailed,
                ReplayedRequests = new Dictionary<string, long>(_replayedRequests, StringComparer.Ordinal),
            };
        }
    }

    public void Dispose()
    {
        _file.Wait();
        try { _stream.Dispose(); }
        finally { _file.Release(); }
    }

    private static void SyncDirectory(string path)
    {
        var fd = OpenDir(Path.GetDirectoryName(Path.GetFullPath(path))!, 0x10000 /* O_DIRECTORY */ | 0x80000 /* O_CLOEXEC */);
        if (fd < 0) return;
        _ = Fsync(fd);
        _ = CloseFd(fd);
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenDir(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int CloseFd(int fd);

    private sealed class Pending(byte kind, long position, byte[] record)
    {
        public readonly byte Kind = kind;
        public readonly long Position = position;
        public readonly byte[] Record = record;
        public readonly TaskCompletionSource<bool> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

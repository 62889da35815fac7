using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;

namespace Crsc.Interceptor;

/// <summary>
/// The node agent's handle on the hold: a Unix socket (0600, in a directory shared within the pod), and only there —
/// the proxied port forwards everything to the app and answers nothing itself. The protocol is one line per request,
/// one line per answer (UTF-8, LF; a connection may send several):
/// <code>
/// hold [REASON]    → ok {status}       start holding (again: only the reason changes); answers once the requests
///                                       admitted before it are done (quiesced), with the replay log's position
/// release          → ok {status}       end the hold; the queue drains in arrival order
/// status           → ok {status}       the hold, the queue, the counters and the replay log
/// checkpointed POS → ok {status}       the checkpoint whose hold answered POS is complete: the log keeps what came after
/// replay           → ok {status}       (while held, after a restore) the log's requests go to the restored app, in
///                                       order, one at a time; a failure answers error and the log is kept
/// anything else    → error MESSAGE
/// </code>
/// where {status} is one JSON object (<see cref="HoldStatus"/>, camelCase). Try it with
/// <c>echo status | socat - UNIX-CONNECT:PATH</c>.
/// </summary>
public sealed partial class ControlServer : IAsyncDisposable
{
    public const UnixFileMode SocketMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const int MaxLine = 1024;
    private readonly string _path;
    private readonly HoldGate _gate;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _listener;
    private Task? _acceptLoop;

    private readonly ReplayLog? _replay;
    private readonly TimeProvider _time;

    /// <param name="replay">The replay log, when replay is on (<c>checkpointed</c> truncates it, <c>replay</c> replays it).</param>
    public ControlServer(string path, HoldGate gate, ILogger log, ReplayLog? replay = null, TimeProvider? time = null)
    {
        _path = Path.GetFullPath(path);
        _gate = gate;
        _log = log;
        _replay = replay;
        _time = time ?? TimeProvider.System;
    }

    public string SocketPath => _path;

    /// <summary>
    /// Binds the socket under a temporary name, makes it 0600, then renames it into place, so it is never reachable
    /// with wider rights. A stale socket at the path is replaced; anything else there (a file, a directory, a link) is
    /// left alone and refused with <see cref="IOException"/>.
    /// </summary>
    public void Start()
    {
        var dir = Path.GetDirectoryName(_path)!;
        if (!Directory.Exists(dir)) throw new IOException($"control socket {_path}: directory {dir} does not exist");
        var kind = Kind(_path);
        if (kind is not (null or 0xC000))
            throw new IOException($"control socket {_path}: something other than a socket is there; it is left alone (remove it or choose another path)");
        var temp = Path.Combine(dir, $".{Path.GetFileName(_path)}.{Environment.ProcessId}.tmp");
        File.Delete(temp);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(temp));
            File.SetUnixFileMode(temp, SocketMode);
            listener.Listen(16);
            File.Move(temp, _path, overwrite: true);
        }
        catch
        {
            listener.Dispose();
            File.Delete(temp);
            throw;
        }
        _listener = listener;
        Log.ControlListening(_log, _path);
        _acceptLoop = AcceptLoopAsync(listener, _stopping.Token);
    }

    private async Task AcceptLoopAsync(Socket listener, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            Socket s;
            try { s = await listener.AcceptAsync(ct); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            _ = ServeAsync(s, ct);
        }
    }

    private async Task ServeAsync(Socket s, CancellationToken ct)
    {
        using var _ = s;
        using var reader = new BufferedReader(s, MaxLine, MaxLine);
        try
        {
            while (true)
            {
                var eol = -1;
                while (true)
                {
                    var i = reader.Buffered.IndexOf((byte)'\n');
                    if (i >= 0) { eol = i; break; }
                    if (reader.Full)
                    {
                        await s.SendAllAsync(Encoding.UTF8.GetBytes($"error line longer than {MaxLine} bytes\n"), ct);
                        return;
                    }
                    if (!await reader.FillAsync(ct)) return;
                }
                var line = Encoding.UTF8.GetString(reader.Buffered[..eol]).TrimEnd('\r');
                reader.Consume(eol + 1);
                await s.SendAllAsync(Encoding.UTF8.GetBytes(await AnswerAsync(line, ct) + "\n"), ct);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { }
    }

    /// <summary>The answer to one request line.</summary>
    public async Task<string> AnswerAsync(string line, CancellationToken ct)
    {
        var trimmed = line.Trim();
        var space = trimmed.IndexOf(' ');
        var verb = space < 0 ? trimmed : trimmed[..space];
        var argument = space < 0 ? "" : trimmed[(space + 1)..].Trim();
        bool? quiesced = null;
        switch (verb)
        {
            case "hold":
                _gate.Hold(argument.Length > 0 ? argument : "hold");
                Log.Control(_log, "hold", argument);
                // the requests admitted before the hold finish first: the position answered is the app's state
                quiesced = await _gate.QuiesceAsync(ct);
                if (quiesced == false) Log.NotQuiesced(_log, _gate.Options.QuiesceTimeout);
                break;
            case "release":
                if (argument.Length > 0) return "error release takes no argument";
                _gate.Release();
                Log.Control(_log, "release", "");
                break;
            case "status":
                if (argument.Length > 0) return "error status takes no argument";
                break;
            case "checkpointed":
                if (!long.TryParse(argument, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var position))
                    return $"error checkpointed takes the position the checkpoint's hold answered ('{argument}' is not one)";
                Log.Control(_log, "checkpointed", argument);
                if (_replay is not null)
                {
                    try { await _replay.TruncateAsync(position, ct); }
                    catch (ArgumentOutOfRangeException e) { return $"error {e.Message}"; }
                    catch (IOException e) { return $"error truncating the replay log failed: {e.Message}"; }
                    Log.Truncated(_log, _replay.Options.LogPath, position, _replay.Status().Entries);
                }
                break;
            case "replay":
                if (argument.Length > 0) return "error replay takes no argument";
                Log.Control(_log, "replay", "");
                if (_replay is not null)
                {
                    // new requests must not overtake the replayed ones: they wait behind the hold
                    if (!_gate.Status().Held) return "error replay needs the traffic held (send hold first, release after)";
                    var result = await Replayer.ReplayAsync(_replay, _time, _log, ct);
                    if (!result.Succeeded) return $"error replay failed: {result.Error}";
                }
                break;
            default:
                // without a replay log checkpointed and replay are accepted and do nothing (the node agent need not know)
                return $"error unknown command '{verb}' (hold [REASON], release, status{(_replay is null ? "" : ", checkpointed POS, replay")})";
        }
        var status = _gate.Status() with { Quiesced = quiesced, Replay = _replay?.Status() };
        return "ok " + System.Text.Json.JsonSerializer.Serialize(status, ControlJson.Default.HoldStatus);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener?.Dispose();
        if (_acceptLoop is not null) await _acceptLoop;
        if (_listener is not null)
        {
            try { File.Delete(_path); } catch (IOException) { }
        }
        _stopping.Dispose();
    }

    /// <summary>The file type bits of what is at <paramref name="path"/> (links not followed); null when nothing is.</summary>
    internal static int? Kind(string path)
    {
        // struct statx: stx_mode at 28 (u16); the layout is the same on every architecture
        Span<byte> buffer = stackalloc byte[256];
        const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100, StatxType = 0x1;
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, ref MemoryMarshal.GetReference(buffer)) != 0) return null;
        return BitConverter.ToUInt16(buffer[28..30]) & 0xF000;
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Statx(int dirFd, string path, int flags, int mask, ref byte buffer);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(HoldStatus))]
internal sealed partial class ControlJson : JsonSerializerContext;

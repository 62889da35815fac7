using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Workloads;
using Microsoft.Extensions.Logging;

namespace Crsc.Daemon;

/// <summary>
/// Holds a pod's traffic through its interceptor's control socket, which lives in the emptyDir crsc injected
/// (<c>&lt;kubelet root&gt;/pods/&lt;pod UID&gt;/volumes/kubernetes.io~empty-dir/crsc-interceptor/control.sock</c>). The
/// path is made from the pod's UID (as the runtime labels the container, checked to be a UUID) and crsc's own volume
/// name, never from anything the pod says. The pod can write into that directory, so the file is opened without
/// following links (O_PATH|O_NOFOLLOW), checked to be a socket on that very handle, and connected to through the
/// handle (<c>/proc/self/fd/N</c>): a link or a file the pod put there is never connected to.
/// </summary>
internal sealed partial class InterceptorTrafficHold(string kubeletRoot, ILogger<InterceptorTrafficHold> logger, TimeSpan? answerTimeout = null,
    TimeSpan? replayTimeout = null)
    : IPodTrafficHold
{
    private readonly TimeSpan _timeout = answerTimeout ?? TimeSpan.FromSeconds(1);
    /// <summary><c>hold</c> answers once the requests in flight are done (the interceptor waits at most 5 s by default).</summary>
    private TimeSpan HoldTimeout => _timeout + TimeSpan.FromSeconds(6);
    /// <summary><c>replay</c> answers once every logged request has been sent to the restored app and answered.</summary>
    private readonly TimeSpan _replayTimeout = replayTimeout ?? TimeSpan.FromMinutes(2);

    /// <summary>The control socket of the pod's interceptor (whether or not it exists).</summary>
    public string SocketPath(string podUid) =>
        Path.Join(kubeletRoot, "pods", podUid, "volumes", "kubernetes.io~empty-dir", InterceptorInjection.VolumeName,
            Path.GetFileName(InterceptorInjection.ControlSocket));

    public async Task<IHeldTraffic?> HoldAsync(string ns, string pod, string podUid, string reason, CancellationToken ct)
    {
        if (!Guid.TryParseExact(podUid, "D", out _)) return null;
        var path = SocketPath(podUid);
        var answer = await AskAsync(path, $"hold {Clean(reason)}", HoldTimeout, ct).ConfigureAwait(false);
        if (answer is null) return null; // no interceptor in this pod
        if (!answer.StartsWith("ok", StringComparison.Ordinal))
        {
            Log.NotHeld(logger, ns, pod, answer);
            return null;
        }
        Log.Held(logger, ns, pod, reason);
        return new Release(this, path, ns, pod, ReplayPosition(answer));
    }

    /// <summary>The replay log's position in a <c>hold</c> answer (<c>ok {"replay":{"position":N}}</c>); null without a log.</summary>
    internal static long? ReplayPosition(string answer)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(answer.AsMemory(2));
            return doc.RootElement.TryGetProperty("replay", out var r) && r.ValueKind == System.Text.Json.JsonValueKind.Object
                && r.TryGetProperty("position", out var p) && p.TryGetInt64(out var position)
                ? position : null;
        }
        catch (System.Text.Json.JsonException) { return null; }
    }

    /// <summary>The requests the last replay sent, in a <c>replay</c> answer (<c>ok {"replay":{"lastReplay":{"replayed":N}}}</c>).</summary>
    internal static int? Replayed(string answer)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(answer.AsMemory(2));
            return doc.RootElement.TryGetProperty("replay", out var r) && r.ValueKind == System.Text.Json.JsonValueKind.Object
                && r.TryGetProperty("lastReplay", out var last) && last.ValueKind == System.Text.Json.JsonValueKind.Object
                && last.TryGetProperty("replayed", out var n) && n.TryGetInt32(out var replayed)
                ? replayed : null;
        }
        catch (System.Text.Json.JsonException) { return null; }
    }

    private sealed class Release(InterceptorTrafficHold owner, string path, string ns, string pod, long? position) : IHeldTraffic
    {
        public async ValueTask DisposeAsync()
        {
            var answer = await owner.AskAsync(path, "release", owner._timeout, CancellationToken.None).ConfigureAwait(false);
            if (answer?.StartsWith("ok", StringComparison.Ordinal) == true) Log.Released(owner.Logger, ns, pod);
            // the interceptor's own max wait answers whatever waits, should it not hear this
            else Log.NotReleased(owner.Logger, ns, pod, answer ?? "its control socket is gone");
        }

        public async Task CheckpointCommittedAsync(CancellationToken ct)
        {
            if (position is not { } p) return; // no replay log in this pod
            var answer = await owner.AskAsync(path, $"checkpointed {p.ToString(System.Globalization.CultureInfo.InvariantCulture)}", owner._timeout, ct).ConfigureAwait(false);
            if (answer?.StartsWith("ok", StringComparison.Ordinal) == true) Log.LogTruncated(owner.Logger, ns, pod, p);
            // the log keeps what the checkpoint holds: a replay after a restore from it would apply those requests twice
            else Log.LogNotTruncated(owner.Logger, ns, pod, answer ?? "its control socket is gone");
        }

        public async Task<ReplayOutcome?> ReplayAsync(CancellationToken ct)
        {
            if (position is null) return null;
            var answer = await owner.AskAsync(path, "replay", owner._replayTimeout, ct).ConfigureAwait(false);
            if (answer?.StartsWith("ok", StringComparison.Ordinal) == true)
            {
                Log.LogReplayed(owner.Logger, ns, pod);
                return new ReplayOutcome(true, Replayed(answer) ?? 0);
            }
            var why = answer ?? "its control socket is gone";
            Log.NotReplayed(owner.Logger, ns, pod, why);
            return new ReplayOutcome(false, 0, why.StartsWith("error ", StringComparison.Ordinal) ? why[6..] : why);
        }
    }

    private ILogger Logger => logger;

    private static string Clean(string reason) => new([.. reason.Where(c => !char.IsControl(c)).Take(200)]);

    /// <summary>One request line and its answer; null when there is no socket of the interceptor there.</summary>
    private async Task<string?> AskAsync(string path, string request, TimeSpan answerTimeout, CancellationToken ct)
    {
        var fd = Open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return null;
        try
        {
            if (!IsSocket(fd)) return null; // a link, a file or a directory the pod put there: not ours to talk to
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(answerTimeout);
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await s.ConnectAsync(new UnixDomainSocketEndPoint($"/proc/self/fd/{fd}"), timeout.Token).ConfigureAwait(false);
                await s.SendAsync(Encoding.UTF8.GetBytes(request + "\n"), timeout.Token).ConfigureAwait(false);
                var buffer = new byte[16384];
                var n = 0;
                while (n < buffer.Length)
                {
                    var got = await s.ReceiveAsync(buffer.AsMemory(n), timeout.Token).ConfigureAwait(false);
                    if (got == 0) break;
                    n += got;
                    if (Array.IndexOf(buffer, (byte)'\n', 0, n) >= 0) break;
                }
                return Encoding.UTF8.GetString(buffer, 0, n).Split('\n')[0];
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                return $"error: no answer from {path}: {e.Message}";
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    private const int O_PATH = 0x200000, O_NOFOLLOW = 0x20000, O_CLOEXEC = 0x80000;

    /// <summary>Whether the file the handle <paramref name="fd"/> is (not a path) is a socket.</summary>
    private static bool IsSocket(int fd)
    {
        Span<byte> b = stackalloc byte[NativeMethods.StatxSize];
        const uint StatxType = 0x1;
        return NativeMethods.Stat(fd, "", NativeMethods.AtEmptyPath | NativeMethods.AtSymlinkNoFollow, StatxType, b)
            && (NativeMethods.ModeOf(b) & 0xF000) == 0xC000;
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    private static partial class Log
    {
        [LoggerMessage(70901, LogLevel.Information, "Holding the traffic of pod {Namespace}/{Pod} in its interceptor: {Reason}")]
        public static partial void Held(ILogger logger, string @namespace, string pod, string reason);

        [LoggerMessage(70902, LogLevel.Information, "Released the traffic of pod {Namespace}/{Pod}")]
        public static partial void Released(ILogger logger, string @namespace, string pod);

        [LoggerMessage(70903, LogLevel.Warning, "The interceptor of pod {Namespace}/{Pod} did not hold its traffic ({Answer}); going on without")]
        public static partial void NotHeld(ILogger logger, string @namespace, string pod, string answer);

        [LoggerMessage(70904, LogLevel.Warning, "The interceptor of pod {Namespace}/{Pod} did not confirm the release ({Answer}); its max wait ends the hold")]
        public static partial void NotReleased(ILogger logger, string @namespace, string pod, string answer);

        [LoggerMessage(70905, LogLevel.Information, "The interceptor of pod {Namespace}/{Pod} dropped its replay log up to the committed checkpoint (position {Position})")]
        public static partial void LogTruncated(ILogger logger, string @namespace, string pod, long position);

        [LoggerMessage(70906, LogLevel.Warning, "The interceptor of pod {Namespace}/{Pod} did not truncate its replay log at the committed checkpoint ({Answer}); a replay after a restore from it may apply requests twice")]
        public static partial void LogNotTruncated(ILogger logger, string @namespace, string pod, string answer);

        [LoggerMessage(70907, LogLevel.Information, "The interceptor of pod {Namespace}/{Pod} replayed its log to the restored app")]
        public static partial void LogReplayed(ILogger logger, string @namespace, string pod);

        [LoggerMessage(70908, LogLevel.Warning, "The interceptor of pod {Namespace}/{Pod} did not replay its log to the restored app ({Answer}); the app lacks the requests since the checkpoint")]
        public static partial void NotReplayed(ILogger logger, string @namespace, string pod, string answer);
    }
}

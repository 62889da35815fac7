using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Crsc.Cli;
using Microsoft.Extensions.Logging;

namespace Crsc.Interceptor;

/// <summary>
/// <c>crsc interceptor</c> and the small executable <c>crsc-interceptor</c> (src/Crsc.InterceptorHost, what the injected
/// sidecar runs): the sidecar in front of an app's port that holds traffic while crsc checkpoints or restores the app
/// (<see cref="InterceptorProxy"/>, <see cref="HoldGate"/>, <see cref="ControlServer"/>). This only reads the flags,
/// names what is wrong with them, and runs the pieces until SIGTERM/SIGINT; both executables take it from here, so they
/// have the same options, help and exit codes, and differ only in their name and where their logs go.
/// </summary>
public static class InterceptorCommand
{
    /// <summary>The executable the injected sidecar runs (<c>crsc interceptor</c> as a binary of its own).</summary>
    public const string ExecutableName = "crsc-interceptor";

    /// <summary>
    /// The command: the verb <paramref name="name"/> of crsc, or the root of <see cref="ExecutableName"/>.
    /// <paramref name="invocation"/> starts the examples (<c>crsc interceptor</c>, <c>crsc-interceptor</c>);
    /// <paramref name="loggers"/> makes the loggers once the flags are valid (the caller's choice of sink; disposed at exit).
    /// </summary>
    public static CommandSpec Spec(string name, string invocation, Func<ILoggerFactory> loggers) => new(name, "Run the interceptor sidecar: a proxy that holds requests while the app is checkpointed or restored.")
    {
        Description = "Listens on --listen and forwards to the app at --upstream (normally a loopback port). In http mode (HTTP/1.1,\n" +
                      "keep-alive, Content-Length and chunked bodies) each request passes the hold; in tcp mode each connection does.\n" +
                      "While held, new requests (connections) wait in a bounded queue and nothing reaches the app; requests already\n" +
                      "forwarded complete. Over --max-queue or --max-queued-bytes, or after --max-wait, an HTTP client gets\n" +
                      "503 Service Unavailable with Retry-After (never a reset); a TCP client's connection is closed politely.\n" +
                      "On release the queue drains in arrival order; a hold nobody releases ends by itself after --max-hold.\n" +
                      "A connect the app refuses waits and tries again (within --max-wait and the queue bounds; then 503). A\n" +
                      "request the app closed on without answering is sent again (at most 3 times) when the app is gone and it is\n" +
                      "idempotent or logged for replay, or, once, when the app is alive and it is idempotent; otherwise 502.\n" +
                      "\n" +
                      "The node agent drives the hold over --control-socket (a Unix socket, 0600), one line per request:\n" +
                      "  hold [REASON]  release  status      each answered 'ok {JSON status}' or 'error MESSAGE'.\n" +
                      "  checkpointed POS  replay          the replay log's side of a checkpoint and of a restore.\n" +
                      "hold answers once the requests already forwarded are done, with the replay log's position.\n" +
                      "\n" +
                      "Replay (http mode, --replay-methods other than none): each request with such a method is appended to\n" +
                      "--replay-log (method, target, headers, body; fsynced, several at once, before the app's answer goes back).\n" +
                      "'checkpointed POS' drops what the checkpoint whose hold answered POS holds; 'replay' (while held, after a\n" +
                      "restore) sends the rest to the restored app in order. Over --replay-max-bytes or --replay-max-entries the\n" +
                      "log overflows: logging stops and replay refuses until the next completed checkpoint.\n" +
                      "The proxied port never answers these itself.\n" +
                      "\n" +
                      "--metrics-listen (off by default) serves GET /metrics (Prometheus text, crsc_interceptor_*: forwarded, held,\n" +
                      "released and rejected requests, holds and hold seconds, queue, replays, upstream waits) and GET /healthz\n" +
                      "on a plain HTTP port, without authentication (counts and health only). Runs until SIGTERM/SIGINT.\n" +
                      "\n" +
                      $"`crsc interceptor` and `{ExecutableName}` (a small binary of its own, what the injected sidecar runs) are\n" +
                      "the same code with the same options.",
        Options =
        [
            new OptionSpec("--listen", "ADDR", "address to listen on: IP:PORT, [IPv6]:PORT or :PORT (all interfaces); several: a comma list"),
            new OptionSpec("--upstream", "ADDR", "the app's address: IP:PORT, localhost:PORT or PORT (127.0.0.1); one per --listen address, in order"),
            new OptionSpec("--mode", "MODE", "http (default) or tcp"),
            new OptionSpec("--control-socket", "PATH", "Unix socket for hold/release/status (its directory must exist; made 0600)"),
            new OptionSpec("--max-queue", "N", $"requests (tcp: connections) that may wait at once (default {new HoldOptions().MaxQueued})"),
            new OptionSpec("--max-queued-bytes", "SIZE", "bytes the waiting requests may hold: heads plus declared bodies (default 64MiB)"),
            new OptionSpec("--max-wait", "DURATION", $"how long one request may wait while held (default {(int)new HoldOptions().MaxWait.TotalSeconds}s)"),
            new OptionSpec("--max-hold", "DURATION", $"a hold nobody releases ends by itself after this long (default {(int)new HoldOptions().MaxHold.TotalMinutes}m)"),
            new OptionSpec("--replay-methods", "METHODS", "requests to log for replay after a restore: none (default), all, non-GET (all but GET, HEAD, OPTIONS) or a list like POST,PUT"),
            new OptionSpec("--replay-log", "PATH", $"the replay log file (default {ReplayLogName} beside --control-socket)"),
            new OptionSpec("--replay-max-bytes", "SIZE", "the replay log's size limit (default 64MiB)"),
            new OptionSpec("--replay-max-entries", "N", $"the replay log's request limit (default {DefaultMaxEntries})"),
            new OptionSpec("--metrics-listen", "ADDR", "serve GET /metrics and /healthz on this address: IP:PORT, [IPv6]:PORT or :PORT (default: off)"),
        ],
        Handler = (p, ct) => RunAsync(p, loggers, ct),
        Examples =
        [
            $"{invocation} --listen :8080 --upstream 127.0.0.1:18080 --control-socket /run/crsc-interceptor/control.sock",
            $"{invocation} --listen :5432 --upstream 15432 --mode tcp --max-queue 50 --max-wait 20s",
            $"{invocation} --listen :8080,:9090 --upstream 18080,19090     (two ports, one hold)",
            $"{invocation} --listen :8080 --upstream 18080 --metrics-listen :9464",
            "echo status | socat - UNIX-CONNECT:/run/crsc-interceptor/control.sock",
        ],
    };

    /// <summary>The options the flags describe, or the usage message that names the bad one.</summary>
    internal static (IReadOnlyList<InterceptorOptions>? Options, string? ControlSocket, string? Problem) Parse(ParsedCommand p)
    {
        var (options, control, _, problem) = ParseWithReplay(p);
        return (options, control, problem);
    }

    /// <summary>The replay log's file name beside the control socket when --replay-log is not given.</summary>
    public const string ReplayLogName = "replay.log";
    private static readonly int DefaultMaxEntries = new ReplayOptions { Methods = ReplayMethods.None, LogPath = "/" }.MaxEntries;

    /// <summary>The options the flags describe, the replay log's (null: replay off), or the usage message that names the bad one.</summary>
    internal static (IReadOnlyList<InterceptorOptions>? Options, string? ControlSocket, ReplayOptions? Replay, string? Problem) ParseWithReplay(ParsedCommand p)
    {
        var (options, control, problem) = ParseProxy(p);
        if (problem is not null) return (null, null, null, problem);
        var methods = ReplayMethods.None;
        if (p.Value("--replay-methods") is { } m)
        {
            if (ReplayMethods.Parse(m, out var why) is not { } parsed) return (null, null, null, $"--replay-methods {why}");
            methods = parsed;
        }
        if (methods.IsNone)
        {
            foreach (var flag in new[] { "--replay-log", "--replay-max-bytes", "--replay-max-entries" })
                if (p.Value(flag) is not null) return (null, null, null, $"{flag} needs --replay-methods (replay is off: none)");
            return (options, control, null, null);
        }
        if (options![0].Mode != InterceptorMode.Http) return (null, null, null, "--replay-methods needs --mode http (a TCP stream has no requests to replay)");
        string path;
        if (p.Value("--replay-log") is { } l)
        {
            if (l.Length == 0 || !Path.IsPathFullyQualified(l)) return (null, null, null, $"--replay-log '{l}' is not an absolute path");
            path = l;
        }
        else if (control is not null) path = Path.Join(Path.GetDirectoryName(control), ReplayLogName);
        else return (null, null, null, "--replay-methods needs --replay-log PATH or --control-socket (the log goes beside it)");
        var replay = new ReplayOptions { Methods = methods, LogPath = path };
        if (p.Value("--replay-max-bytes") is { } b)
        {
            if (!CliOutput.TryParseSize(b, out var size) || size < 4096) return (null, null, null, $"--replay-max-bytes '{b}' is not a size of at least 4096 bytes (e.g. 64MiB)");
            replay = replay with { MaxBytes = size };
        }
        if (p.Value("--replay-max-entries") is { } e)
        {
            if (!int.TryParse(e, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1) return (null, null, null, $"--replay-max-entries '{e}' is not a positive whole number");
            replay = replay with { MaxEntries = n };
        }
        return (options, control, replay, null);
    }

    /// <summary>The --metrics-listen address (null: off), or the usage message that names what is wrong with it.</summary>
    internal static (IPEndPoint? Listen, string? Problem) ParseMetricsListen(ParsedCommand p, IReadOnlyList<InterceptorOptions> proxies)
    {
        if (p.Value("--metrics-listen") is not { } text) return (null, null);
        if (!TryParseEndPoint(text, IPAddress.Any, out var listen))
            return (null, $"--metrics-listen '{text}' is not an address (HOST:PORT, [IPv6]:PORT or :PORT; port 1-65535)");
        if (proxies.Any(x => x.Listen is IPEndPoint e && e.Port == listen.Port))
            return (null, $"--metrics-listen port {listen.Port} is one of --listen's ports: choose another");
        return (listen, null);
    }

    private static (IReadOnlyList<InterceptorOptions>? Options, string? ControlSocket, string? Problem) ParseProxy(ParsedCommand p)
    {
        if (p.Value("--listen") is not { } listenList) return (null, null, "interceptor needs --listen ADDR (the port clients and Services use)");
        if (p.Value("--upstream") is not { } upstreamList) return (null, null, "interceptor needs --upstream ADDR (the app's port, e.g. 127.0.0.1:18080)");
        // several ports: comma lists, paired in order (one hold for all of them)
        var listenTexts = listenList.Split(',');
        var upstreamTexts = upstreamList.Split(',');
        if (listenTexts.Length != upstreamTexts.Length)
            return (null, null, $"--listen names {listenTexts.Length} address(es) and --upstream {upstreamTexts.Length}: give one upstream for each listen address, in the same order");
        var pairs = new List<(IPEndPoint Listen, IPEndPoint Upstream)>();
        for (var i = 0; i < listenTexts.Length; i++)
        {
            var listenText = listenTexts[i];
            var upstreamText = upstreamTexts[i];
            if (!TryParseEndPoint(listenText, IPAddress.Any, out var listen))
                return (null, null, $"--listen '{listenText}' is not an address (HOST:PORT, [IPv6]:PORT or :PORT; port 1-65535)");
            if (!TryParseEndPoint(upstreamText, IPAddress.Loopback, out var upstream) || upstream.Address.Equals(IPAddress.Any) || upstream.Address.Equals(IPAddress.IPv6Any))
                return (null, null, $"--upstream '{upstreamText}' is not an address to connect to (HOST:PORT or PORT; port 1-65535)");
            if (pairs.Any(x => x.Listen.Port == listen.Port))
                return (null, null, $"--listen names port {listen.Port} twice");
            pairs.Add((listen, upstream));
        }
        var mode = InterceptorMode.Http;
        if (p.Value("--mode") is { } m)
        {
            mode = m switch
            {
                "http" => InterceptorMode.Http,
                "tcp" => InterceptorMode.Tcp,
                _ => (InterceptorMode)(-1),
            };
            if ((int)mode < 0) return (null, null, $"--mode '{m}' is not a mode: http or tcp");
        }
        var hold = new HoldOptions();
        if (p.Value("--max-queue") is { } q)
        {
            if (!int.TryParse(q, NumberStyles.None, CultureInfo.InvariantCulture, out var n)) return (null, null, $"--max-queue '{q}' is not a whole number (0 refuses every request while held)");
            hold = hold with { MaxQueued = n };
        }
        if (p.Value("--max-queued-bytes") is { } b)
        {
            if (!CliOutput.TryParseSize(b, out var size) || size < 0) return (null, null, $"--max-queued-bytes '{b}' is not a size (e.g. 64MiB, 1G, 1048576)");
            hold = hold with { MaxQueuedBytes = size };
        }
        if (p.Value("--max-wait") is { } w)
        {
            if (!CliOutput.TryParseDuration(w, out var wait)) return (null, null, CliOutput.DurationProblem("--max-wait", w, "a duration (e.g. 500ms, 30s, 2m)", "sm"));
            hold = hold with { MaxWait = wait };
        }
        if (p.Value("--max-hold") is { } h)
        {
            if (!CliOutput.TryParseDuration(h, out var maxHold) || maxHold <= TimeSpan.Zero)
                return (null, null, CliOutput.DurationProblem("--max-hold", h, "a duration (e.g. 30s, 2m)", "sm"));
            hold = hold with { MaxHold = maxHold };
        }
        string? control = null;
        if (p.Value("--control-socket") is { } c)
        {
            if (c.Length == 0 || !Path.IsPathFullyQualified(c)) return (null, null, $"--control-socket '{c}' is not an absolute path");
            // sun_path holds 108 bytes with its terminating NUL
            if (System.Text.Encoding.UTF8.GetByteCount(c) > 100) return (null, null, $"--control-socket '{c}' is too long for a Unix socket (at most 100 bytes)");
            control = c;
        }
        return ([.. pairs.Select(x => new InterceptorOptions { Listen = x.Listen, Upstream = x.Upstream, Mode = mode, Hold = hold })], control, null);
    }

    /// <summary><c>HOST:PORT</c>, <c>[V6]:PORT</c>, <c>:PORT</c> or a bare <c>PORT</c> (on <paramref name="defaultHost"/>); <c>localhost</c> is loopback.</summary>
    internal static bool TryParseEndPoint(string text, IPAddress defaultHost, out IPEndPoint endPoint)
    {
        endPoint = null!;
        var colon = text.LastIndexOf(':');
        var host = colon < 0 ? "" : text[..colon];
        var portText = colon < 0 ? text : text[(colon + 1)..];
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535) return false;
        IPAddress? address;
        if (host.Length == 0) address = defaultHost;
        else if (host == "localhost") address = IPAddress.Loopback;
        else if (!IPAddress.TryParse(host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host, out address)) return false;
        else if (address.AddressFamily == AddressFamily.InterNetworkV6 && !host.StartsWith('[')) return false;
        endPoint = new IPEndPoint(address, port);
        return true;
    }

    private static async Task<int> RunAsync(ParsedCommand p, Func<ILoggerFactory> makeLoggers, CancellationToken ct)
    {
        var (options, controlPath, replayOptions, problem) = ParseWithReplay(p);
        if (problem is not null) return CliOutput.Usage(p, problem);
        var (metricsListen, metricsProblem) = ParseMetricsListen(p, options!);
        if (metricsProblem is not null) return CliOutput.Usage(p, metricsProblem);

        using var loggers = makeLoggers();
        var log = loggers.CreateLogger("Crsc.Interceptor");

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });

        // one gate: a hold holds every port of the pod; one replay log for all of them (each entry names its port)
        using var gate = new HoldGate(options![0].Hold, TimeProvider.System);
        ReplayLog? replay = null;
        if (replayOptions is not null)
        {
            try { replay = ReplayLog.Open(replayOptions, log); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return CliOutput.Fail(p, $"cannot open the replay log {replayOptions.LogPath} (--replay-log): {e.Message}");
            }
        }
        using var _ = replay;
        var proxies = new List<InterceptorProxy>();
        try
        {
            foreach (var one in options)
            {
                var proxy = new InterceptorProxy(one, gate, TimeProvider.System, log, replay);
                proxies.Add(proxy);
                try { proxy.Start(); }
                catch (SocketException e)
                {
                    return CliOutput.Fail(p, $"cannot listen on {one.Listen} (--listen): {e.Message}");
                }
            }
            if (metricsListen is null) return await ServeAsync(p, controlPath, gate, replay, log, stop.Token);
            await using var metrics = new MetricsServer(new MetricsServerOptions { Listen = metricsListen },
                () => InterceptorMetrics.Render(gate.Status(), replay?.Status(), proxies.Sum(x => x.Forwarded)), TimeProvider.System, log);
            try { metrics.Start(); }
            catch (SocketException e)
            {
                return CliOutput.Fail(p, $"cannot listen on {metricsListen} (--metrics-listen): {e.Message}");
            }
            return await ServeAsync(p, controlPath, gate, replay, log, stop.Token);
        }
        finally
        {
            foreach (var proxy in proxies) await proxy.DisposeAsync();
        }
    }

    private static async Task<int> ServeAsync(ParsedCommand p, string? controlPath, HoldGate gate, ReplayLog? replay, ILogger log, CancellationToken stop)
    {
        ControlServer? control = null;
        if (controlPath is not null)
        {
            control = new ControlServer(controlPath, gate, log, replay);
            try { control.Start(); }
            catch (Exception e) when (e is IOException or SocketException or UnauthorizedAccessException)
            {
                await control.DisposeAsync();
                return CliOutput.Fail(p, $"cannot serve the control socket (--control-socket): {e.Message}");
            }
        }
        try
        {
            await Task.Delay(Timeout.Infinite, stop).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        finally
        {
            if (control is not null) await control.DisposeAsync();
        }
        return ExitCodes.Ok;
    }
}

using System.Net;
using System.Net.Sockets;
using Crsc.Configuration;
using Crsc.Controllers.Health;
using Crsc.Controllers.Metrics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Crsc.Daemon;

/// <summary>
/// The daemon's HTTP surface: <c>/healthz</c>, <c>/readyz</c> and <c>/metrics</c> on the root-only Unix socket
/// and, when <c>metrics.address</c> is set, on that TCP address. Handlers are thin: they read the health
/// registry and the metrics registry, nothing else. The TCP listener has no authentication, so it answers
/// only those three paths: everything else (the checkpoint API above all) is a 404 there and lives on the
/// Unix socket alone.
/// </summary>
internal static class NodeApi
{
    public static void Listen(KestrelServerOptions kestrel, CrscOptions options)
    {
        kestrel.ListenUnixSocket(options.Socket, l => l.Protocols = HttpProtocols.Http1);
        if (options.MetricsAddress.Length > 0 && ConfigValidator.TryParseHostPort(options.MetricsAddress, out var host, out var port))
        {
            if (host == "localhost") kestrel.ListenLocalhost(port);
            else kestrel.Listen(IPAddress.Parse(host.Trim('[', ']')), port);
        }
        kestrel.AddServerHeader = false;
    }

    /// <summary>The only paths a TCP listener answers.</summary>
    internal static readonly string[] TcpPaths = ["/healthz", "/readyz", "/metrics"];

    public static void Map(WebApplication app)
    {
        // before any endpoint runs: a request that came over TCP reaches metrics and health, nothing else
        app.Use((ctx, next) => ViaTcp(ctx) && !IsTcpPath(ctx.Request.Path) ? NotFound(ctx) : next(ctx));
        // RequestDelegate handlers: no reflection over delegates, AOT-clean on every target framework
        app.MapGet("/healthz", Healthz);
        app.MapGet("/readyz", Readyz);
        app.MapGet("/metrics", Metrics);
    }

    /// <summary>
    /// Whether the request arrived on an IP listener (<c>metrics.address</c>): Kestrel gives a Unix-socket
    /// connection no local IP address.
    /// </summary>
    internal static bool ViaTcp(HttpContext ctx) => ctx.Connection.LocalIpAddress is not null;

    private static bool IsTcpPath(PathString path) =>
        Array.Exists(TcpPaths, p => string.Equals(path.Value, p, StringComparison.Ordinal));

    private static Task NotFound(HttpContext ctx) => Text(ctx, 404, "not found\n");

    /// <summary>Liveness: the process is serving and no component says it is broken.</summary>
    internal static Task Healthz(HttpContext ctx)
    {
        var health = ctx.RequestServices.GetRequiredService<HealthRegistry>();
        var unhealthy = health.Overall == HealthStatus.Unhealthy;
        return Text(ctx, unhealthy ? 503 : 200, unhealthy ? "unhealthy: " + health.Summary() + "\n" : "ok\n");
    }

    /// <summary>Readiness, with one line per component (<c>[+]</c> healthy, <c>[~]</c> degraded, <c>[-]</c> unhealthy).</summary>
    internal static Task Readyz(HttpContext ctx)
    {
        var health = ctx.RequestServices.GetRequiredService<HealthRegistry>();
        var state = ctx.RequestServices.GetRequiredService<DaemonState>();
        var entries = health.Snapshot();
        var overall = health.Overall;
        var ready = state.Started && !state.Stopping && overall != HealthStatus.Unhealthy;
        var head = !state.Started ? "starting" : state.Stopping ? "stopping"
            : overall switch { HealthStatus.Healthy => "ready", HealthStatus.Degraded => "ready (degraded)", _ => "not ready" };
        var body = new System.Text.StringBuilder(head).Append('\n');
        foreach (var e in entries)
        {
            var mark = e.Status switch { HealthStatus.Healthy => "[+]", HealthStatus.Degraded => "[~]", _ => "[-]" };
            body.Append(mark).Append(e.Component).Append(' ').Append(e.Status.ToString().ToLowerInvariant())
                .Append(": ").Append(e.Message).Append('\n');
        }
        return Text(ctx, ready ? 200 : 503, body.ToString());
    }

    internal static Task Metrics(HttpContext ctx)
    {
        var metrics = ctx.RequestServices.GetRequiredService<MetricsRegistry>();
        ctx.Response.ContentType = MetricsRegistry.ContentType;
        return ctx.Response.WriteAsync(metrics.Render(), ctx.RequestAborted);
    }

    private static Task Text(HttpContext ctx, int status, string body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "text/plain; charset=utf-8";
        return ctx.Response.WriteAsync(body, ctx.RequestAborted);
    }

    /// <summary>
    /// Makes the socket's directory (0700 when crsc creates it) and removes a stale socket: a path that is a socket
    /// (as <c>lstat</c> says, symlinks not followed) and that nobody answers on. Anything else at the path (a regular
    /// file, a directory, a symlink, a device) is a configuration error that leaves the path untouched: crsc never
    /// deletes what it did not create. Refuses too when another daemon still answers: two daemons must never share a node.
    /// </summary>
    /// <exception cref="SocketPathException">the path holds something other than a stale socket.</exception>
    public static void PrepareSocket(string path)
    {
        var dir = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(dir))
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var info = new Crsc.Preflight.SystemPreflightHost().Stat(path);
        if (info is null) return;
        if (info.Kind != Crsc.Preflight.PathKind.Socket)
        {
            var what = info.Kind switch
            {
                Crsc.Preflight.PathKind.File => "a regular file",
                Crsc.Preflight.PathKind.Directory => "a directory",
                Crsc.Preflight.PathKind.Symlink => "a symbolic link",
                _ => "a special file",
            };
            throw new SocketPathException(path, $"is {what}, not a socket; crsc replaces only a stale socket of its own and leaves this path alone: remove it or set socket to another path");
        }
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new IOException($"another crsc daemon is already answering on {path}");
            }
            catch (SocketException) { /* nobody listens: a leftover of a crashed daemon */ }
        }
        File.Delete(path);
    }

    /// <summary>The node socket is root's only: 0600 (its directory is 0700 when crsc made it).</summary>
    public static void RestrictSocket(string path) =>
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
}

/// <summary>Lifecycle facts the node API reports.</summary>
internal sealed class DaemonState
{
    public volatile bool Started;
    public volatile bool Stopping;
}

/// <summary>The <c>socket</c> key names a path that crsc must not replace: a configuration error (exit 78).</summary>
internal sealed class SocketPathException(string path, string problem) : Exception($"socket: \"{path}\" {problem}")
{
    public const string Key = "socket";
    public string SocketPath { get; } = path;
    public string Problem { get; } = problem;
}

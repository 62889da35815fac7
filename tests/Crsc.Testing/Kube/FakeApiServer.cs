using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Crsc.Testing.Kube;

/// <summary>
/// An in-process kube-apiserver for what crsc uses, on Kestrel at 127.0.0.1 (HTTP, or HTTPS with client
/// certificates of its own <see cref="Pki"/>), driven by the real client in tests.
/// <para>
/// Behaves like the real server for: a global resourceVersion; uid, creationTimestamp and generation (bumped by
/// spec changes and by the deletion mark only); optimistic concurrency (409 Conflict); 409 AlreadyExists;
/// generateName; the status subresource; merge, JSON, strategic-merge (approximated: merge by name/type keys) and apply patches; label and
/// field selectors; limit/continue pagination with opaque tokens; watches from a resourceVersion, synthetic ADDED
/// without one, bookmarks, 410 after <see cref="Compact"/>, selector-aware ADDED/DELETED transitions, timeoutSeconds;
/// DELETE with preconditions, finalizers (deletionTimestamp first) and a DELETED event with the final
/// resourceVersion; <c>metav1.Status</c> bodies for every error; no-op writes that change nothing.
/// </para>
/// <para>
/// Differences, on purpose: no ownerReference garbage collection (deleting an owner leaves its dependents); no
/// admission, defaulting or schema validation; namespaces need not exist; server-side apply is "create if absent,
/// otherwise strategic merge" with no field ownership or conflicts (<c>force</c> is accepted and changes nothing);
/// apply bodies must be JSON (which is YAML); lists are not consistent snapshots (a continue token keeps the
/// resourceVersion of the first page and resumes after its last key); pods are deleted at once (no kubelet grace).
/// </para>
/// </summary>
public sealed partial class FakeApiServer : IAsyncDisposable
{
    private sealed record Fault(int Code, string Reason, string Message, Func<FakeRequest, bool>? Match);

    private readonly FakeApiServerOptions _options;
    private readonly HashSet<string> _tokens;
    private readonly bool _requireAuth;
    private readonly List<FakeRequest> _requests = [];
    private readonly Queue<Fault> _faults = new();
    private readonly ITimer _bookmarkTimer;
    private WebApplication? _app;
    private int _port;

    private FakeApiServer(FakeApiServerOptions options)
    {
        _options = options;
        _tokens = [.. options.Tokens];
        _requireAuth = options.RequireAuthentication ?? (options.Tls || _tokens.Count > 0);
        if (options.Tls)
        {
            Pki = TestPki.Create();
            ServerCertificate = Pki.IssueServer();
        }
        foreach (var r in FakeResource.BuiltIn) Register(r);
        foreach (var r in options.Resources) Register(r);
        _bookmarkTimer = options.Time.CreateTimer(_ => SendBookmarks(), null, options.BookmarkInterval, options.BookmarkInterval);
    }

    public static async Task<FakeApiServer> StartAsync(FakeApiServerOptions? options = null)
    {
        var server = new FakeApiServer(options ?? new FakeApiServerOptions());
        await server.StartListeningAsync();
        return server;
    }

    /// <summary><c>http://127.0.0.1:PORT</c> or <c>https://…</c>.</summary>
    public Uri Url => new($"{(_options.Tls ? "https" : "http")}://127.0.0.1:{_port}");

    /// <summary>The CA of the server certificate and of accepted client certificates (TLS only).</summary>
    public TestPki? Pki { get; }

    public X509Certificate2? ServerCertificate { get; }

    public bool IsRunning => _app is not null;

    // ---- authentication ----

    public void AcceptToken(string token) { lock (_gate) _tokens.Add(token); }

    public void RevokeToken(string token) { lock (_gate) _tokens.Remove(token); }

    // ---- fault injection and request log ----

    /// <summary>
    /// The next <paramref name="count"/> requests (matching <paramref name="match"/>, when given) fail with that code
    /// and a Status body; code 0 aborts the connection instead (a transport failure).
    /// </summary>
    public void FailNext(int count, int code, string? reason = null, string? message = null, Func<FakeRequest, bool>? match = null)
    {
        reason ??= code switch
        {
            400 => "BadRequest", 401 => "Unauthorized", 403 => "Forbidden", 404 => "NotFound", 409 => "Conflict",
            410 => "Expired", 422 => "Invalid", 429 => "TooManyRequests", 503 => "ServiceUnavailable", 504 => "Timeout",
            _ => "InternalError",
        };
        lock (_gate)
            for (var i = 0; i < count; i++) _faults.Enqueue(new Fault(code, reason, message ?? $"injected failure ({code} {reason})", match));
    }

    /// <summary>Awaited before each request is handled (after it is logged): a test can hold requests back.</summary>
    public Func<FakeRequest, CancellationToken, Task>? BeforeRequest { get; set; }

    /// <summary>Every request so far, in arrival order.</summary>
    public IReadOnlyList<FakeRequest> Requests { get { lock (_gate) return _requests.ToList(); } }

    public void ClearRequests() { lock (_gate) _requests.Clear(); }

    // ---- outages ----

    /// <summary>Closes the listener and every connection: requests are refused until <see cref="StartAsync()"/>.</summary>
    public async Task StopAsync()
    {
        var app = _app;
        if (app is null) return;
        _app = null;
        CloseWatches();
        await app.StopAsync();
        await app.DisposeAsync();
    }

    /// <summary>Listens again on the same port; the stored objects are still there.</summary>
    public async Task StartAsync()
    {
        if (_app is null) await StartListeningAsync();
    }

    private async Task StartListeningAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, _port, listen =>
            {
                listen.Protocols = _options.Tls ? HttpProtocols.Http1AndHttp2 : HttpProtocols.Http1;
                if (_options.Tls)
                {
                    listen.UseHttps(new HttpsConnectionAdapterOptions
                    {
                        ServerCertificate = ServerCertificate,
                        ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                        CheckCertificateRevocation = false,
                        ClientCertificateValidation = (cert, _, _) => Pki!.Issued(cert),
                    });
                }
            });
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        var app = builder.Build();
        app.Run(HandleAsync);
        await app.StartAsync();
        if (_port == 0)
        {
            var address = app.Urls.First();
            _port = new Uri(address.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal)).Port;
        }
        _app = app;
    }

    /// <summary>A kubeconfig for this server: the CA inline, and a token and/or a client certificate.</summary>
    public string KubeconfigYaml(string? token = null, X509Certificate2? clientCertificate = null, string? ns = null)
    {
        var sb = new StringBuilder();
        sb.AppendLine("apiVersion: v1").AppendLine("kind: Config").AppendLine("current-context: fake");
        sb.AppendLine("clusters:").AppendLine("- name: fake").AppendLine("  cluster:");
        sb.AppendLine($"    server: {Url}");
        if (Pki is not null) sb.AppendLine($"    certificate-authority-data: {B64(Pki.CaPem)}");
        sb.AppendLine("contexts:").AppendLine("- name: fake").AppendLine("  context:").AppendLine("    cluster: fake").AppendLine("    user: fake");
        if (ns is not null) sb.AppendLine($"    namespace: {ns}");
        sb.AppendLine("users:").AppendLine("- name: fake").AppendLine("  user:");
        if (token is not null) sb.AppendLine($"    token: {token}");
        if (clientCertificate is not null)
        {
            sb.AppendLine($"    client-certificate-data: {B64(clientCertificate.ExportCertificatePem())}");
            sb.AppendLine($"    client-key-data: {B64(TestPki.KeyPem(clientCertificate))}");
        }
        if (token is null && clientCertificate is null) sb.AppendLine("    {}");
        return sb.ToString();

        static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));
    }

    // ---- HTTP ----

    private async Task HandleAsync(HttpContext ctx)
    {
        var req = ctx.Request;
        var user = Authenticate(ctx);
        var request = new FakeRequest(req.Method, req.Path.Value ?? "/", req.QueryString.Value ?? "", req.ContentType, user, req.Protocol);
        Fault? fault = null;
        lock (_gate)
        {
            _requests.Add(request);
            if (_faults.Count > 0 && (_faults.Peek().Match?.Invoke(request) ?? true)) fault = _faults.Dequeue();
        }
        try
        {
            if (BeforeRequest is { } hook) await hook(request, ctx.RequestAborted);
            if (fault is not null)
            {
                if (fault.Code == 0) { ctx.Abort(); return; }
                throw new FakeStatusException(fault.Code, fault.Reason, fault.Message);
            }
            if (_requireAuth && user is null) throw new FakeStatusException(401, "Unauthorized", "Unauthorized");
            await RouteAsync(ctx, request);
        }
        catch (FakeStatusException e)
        {
            await WriteJsonAsync(ctx, e.Code, StatusBody(e.Code, e.Reason, e.Message, e.Resource, e.Name));
        }
        catch (JsonException e)
        {
            await WriteJsonAsync(ctx, 400, StatusBody(400, "BadRequest", $"the request body is not valid JSON: {e.Message}", null, null));
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // the client went away
        }
    }

    private string? Authenticate(HttpContext ctx)
    {
        if (ctx.Connection.ClientCertificate is { } cert) return cert.GetNameInfo(X509NameType.SimpleName, false);
        var header = ctx.Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            var token = header["Bearer ".Length..].Trim();
            lock (_gate) if (_tokens.Contains(token)) return "token:" + token;
        }
        return null;
    }

    private async Task RouteAsync(HttpContext ctx, FakeRequest request)
    {
        var path = request.Path.TrimEnd('/');
        switch (path)
        {
            case "/version":
                await WriteJsonAsync(ctx, 200, new JsonObject { ["major"] = "1", ["minor"] = "34", ["gitVersion"] = "v1.34.0-crsc-fake" });
                return;
            case "/healthz" or "/readyz" or "/livez":
                ctx.Response.ContentType = "text/plain";
                await ctx.Response.WriteAsync("ok");
                return;
        }

        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 2 && parts[0] == "apis")
        {
            // API discovery of one group (APIGroup), as the real server answers it; 404 for a group it does not serve
            var versions = Resources().Where(r => r.Group == parts[1]).Select(r => r.Version).Distinct(StringComparer.Ordinal).ToList();
            if (versions.Count == 0) throw new FakeStatusException(404, "NotFound", "the server could not find the requested resource");
            var list = new JsonArray([.. versions.Select(v => (JsonNode)new JsonObject { ["groupVersion"] = $"{parts[1]}/{v}", ["version"] = v })]);
            await WriteJsonAsync(ctx, 200, new JsonObject
            {
                ["kind"] = "APIGroup", ["apiVersion"] = "v1", ["name"] = parts[1], ["versions"] = list,
                ["preferredVersion"] = list[0]!.DeepClone(),
            });
            return;
        }
        string group, version;
        int rest;
        if (parts.Length >= 2 && parts[0] == "api") { group = ""; version = parts[1]; rest = 2; }
        else if (parts.Length >= 3 && parts[0] == "apis") { group = parts[1]; version = parts[2]; rest = 3; }
        else throw new FakeStatusException(404, "NotFound", "the server could not find the requested resource");
        var segments = parts[rest..];
        string? ns = null;
        if (segments.Length >= 3 && segments[0] == "namespaces" && !(segments.Length == 3 && segments[2] is "status" or "finalize"))
        {
            ns = Uri.UnescapeDataString(segments[1]);
            segments = segments[2..];
        }
        if (segments.Length is 0 or > 3) throw new FakeStatusException(404, "NotFound", "the server could not find the requested resource");
        var resource = Find(group, version, segments[0])
            ?? throw new FakeStatusException(404, "NotFound", "the server could not find the requested resource");
        if (resource.Namespaced != (ns is not null) && segments.Length > 1)
            throw new FakeStatusException(404, "NotFound", "the server could not find the requested resource");
        if (!resource.Namespaced) ns = null;
        var name = segments.Length > 1 ? Uri.UnescapeDataString(segments[1]) : null;
        var status = segments.Length == 3 && segments[2] == "status";
        if (segments.Length == 3 && !status) throw new FakeStatusException(404, "NotFound", "the server could not find the requested resource");
        var query = ctx.Request.Query;
        var method = request.Method;

        if (name is null)
        {
            if (method == "GET")
            {
                var watch = (string?)query["watch"] is "1" or "true";
                if (watch) { await WatchAsync(ctx, resource, ns); return; }
                int? limit = int.TryParse(query["limit"], out var l) && l > 0 ? l : null;
                await WriteJsonAsync(ctx, 200, List(resource, ns, query["labelSelector"], query["fieldSelector"], limit, query["continue"]));
                return;
            }
            if (method == "POST")
            {
                if (resource.Namespaced && ns is null)
                    throw new FakeStatusException(404, "NotFound", "the server could not find the requested resource");
                var body = await ReadObjectAsync(ctx);
                await WriteJsonAsync(ctx, 201, Create(resource, ns, body));
                return;
            }
            throw new FakeStatusException(405, "MethodNotAllowed", $"the server does not allow this method on the requested resource");
        }

        switch (method)
        {
            case "GET":
                await WriteJsonAsync(ctx, 200, GetObject(resource, ns, name));
                return;
            case "PUT":
                await WriteJsonAsync(ctx, 200, Update(resource, ns, name, await ReadObjectAsync(ctx), status));
                return;
            case "PATCH":
            {
                var patch = await JsonNode.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted)
                    ?? throw new FakeStatusException(400, "BadRequest", "empty patch", resource, name);
                var contentType = ctx.Request.ContentType ?? "";
                await WriteJsonAsync(ctx, 200, Patch(resource, ns, name, contentType, patch, status, query["fieldManager"]));
                return;
            }
            case "DELETE":
            {
                JsonObject? options = null;
                if (ctx.Request.ContentLength is > 0 || ctx.Request.Headers.TransferEncoding.Count > 0)
                {
                    using var reader = new StreamReader(ctx.Request.Body);
                    var text = await reader.ReadToEndAsync(ctx.RequestAborted);
                    if (text.Length > 0) options = JsonNode.Parse(text) as JsonObject;
                }
                if (query["propagationPolicy"] is { Count: > 0 } p) (options ??= new JsonObject())["propagationPolicy"] = p.ToString();
                await WriteJsonAsync(ctx, 200, Delete(resource, ns, name, options));
                return;
            }
            default:
                throw new FakeStatusException(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
        }
    }

    private static async Task<JsonObject> ReadObjectAsync(HttpContext ctx)
        => await JsonNode.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted) as JsonObject
           ?? throw new FakeStatusException(400, "BadRequest", "the request body must be a JSON object");

    private async Task WatchAsync(HttpContext ctx, FakeResource resource, string? ns)
    {
        var query = ctx.Request.Query;
        var bookmarks = (string?)query["allowWatchBookmarks"] is "true" or "1";
        var watcher = StartWatch(resource, ns, query["resourceVersion"], query["labelSelector"], query["fieldSelector"], bookmarks);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        if (int.TryParse(query["timeoutSeconds"], out var seconds) && seconds > 0)
            timeout.CancelAfter(TimeSpan.FromSeconds(seconds));
        try
        {
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "application/json";
            await ctx.Response.StartAsync(ctx.RequestAborted);
            var reader = watcher.Lines.Reader;
            while (await reader.WaitToReadAsync(timeout.Token))
            {
                while (reader.TryRead(out var line))
                    await ctx.Response.WriteAsync(line + "\n", timeout.Token);
                await ctx.Response.Body.FlushAsync(timeout.Token);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            // timeoutSeconds reached or the client left: end the stream
        }
        finally
        {
            StopWatch(watcher);
        }
    }

    private static async Task WriteJsonAsync(HttpContext ctx, int code, JsonNode body)
    {
        if (ctx.Response.HasStarted) return;
        ctx.Response.StatusCode = code;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(body.ToJsonString(), ctx.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        _bookmarkTimer.Dispose();
        await StopAsync();
        ServerCertificate?.Dispose();
        Pki?.Dispose();
    }
}

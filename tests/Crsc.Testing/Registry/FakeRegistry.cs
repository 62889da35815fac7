using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Crsc.Testing.Registry;

public enum FakeRegistryAuth
{
    /// <summary>Anyone may pull and push.</summary>
    None,
    /// <summary><c>WWW-Authenticate: Basic</c>; the users of <see cref="FakeRegistryOptions.Users"/>.</summary>
    Basic,
    /// <summary><c>WWW-Authenticate: Bearer</c> naming this server's <c>/token</c> endpoint (distribution token spec).</summary>
    Bearer,
}

public sealed record FakeRegistryOptions
{
    public FakeRegistryAuth Auth { get; init; } = FakeRegistryAuth.None;
    /// <summary>User name → password, for basic auth at the registry or at the token service.</summary>
    public IReadOnlyDictionary<string, string> Users { get; init; } = new Dictionary<string, string>();
    /// <summary>Refresh tokens the token service accepts in an OAuth2 POST (<c>grant_type=refresh_token</c>).</summary>
    public IReadOnlyCollection<string> IdentityTokens { get; init; } = [];
    /// <summary>Whether the token service gives anonymous callers push rights (otherwise they get none).</summary>
    public bool AnonymousPush { get; init; }
    public TimeSpan TokenLifetime { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>Answer tokens as <c>access_token</c> (OAuth2 style) instead of <c>token</c>.</summary>
    public bool TokenAsAccessToken { get; init; }
    /// <summary>Upload <c>Location</c>s as absolute URLs (otherwise relative paths, both are allowed).</summary>
    public bool AbsoluteLocations { get; init; }
    /// <summary>The clock tokens expire by.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
    /// <summary>
    /// Instead of <see cref="Users"/>: judges the basic credentials (user, password) of a request for a repository (null
    /// for <c>/v2/</c>) — e.g. a crsc pull token checked as a node's image endpoint checks it.
    /// </summary>
    public Func<string, string, string?, bool>? CheckBasic { get; init; }
    /// <summary>Answer every blob GET whole (200), whatever its <c>Range</c> (as servers without range support do).</summary>
    public bool IgnoreRange { get; init; }
    /// <summary>
    /// Manifests may be deleted by digest (distribution's <c>storage.delete.enabled: true</c>); otherwise (its default) a
    /// DELETE of a manifest answers 405 UNSUPPORTED.
    /// </summary>
    public bool DeletesEnabled { get; init; }
}

/// <summary>One request as the registry saw it.</summary>
public sealed record FakeRegistryRequest(string Method, string Path, string Query, string? AuthScheme, string? ContentRange,
    long? ContentLength, string? ContentType)
{
    /// <summary>The request's <c>Range</c> header, if any.</summary>
    public string? Range { get; init; }

    public override string ToString() => $"{Method} {Path}{Query}";
}

/// <summary>
/// An in-process OCI distribution registry on Kestrel at 127.0.0.1 (plain HTTP), for pushing and pulling.
/// <para>
/// Behaves like <c>distribution</c> (Debian's docker-registry) for: blobs linked per repository (HEAD/GET answer 404
/// BLOB_UNKNOWN for a blob pushed to another repository); upload sessions (POST → 202 with a <c>Location</c> that
/// carries an opaque <c>_state</c> which changes with every chunk and must be the latest one, <c>Range</c> and
/// <c>Docker-Upload-UUID</c>); PATCH with <c>Content-Range</c> that must continue where the session is (416
/// otherwise); PUT with <c>?digest=</c> verified against the bytes (400 DIGEST_INVALID, the session is gone);
/// monolithic POST with <c>?digest=</c>; GET/DELETE of a session; manifest PUT that refuses manifests naming blobs
/// the repository lacks (400 MANIFEST_BLOB_UNKNOWN) or that are not JSON (400 MANIFEST_INVALID), stored under the
/// tag and its digest; OCI error bodies throughout. Auth: basic, or bearer tokens from its own token service (GET
/// with basic credentials or anonymously, POST with a refresh token), scoped to repository and pull/push, expiring by
/// <see cref="FakeRegistryOptions.Time"/>; 401 with the challenge a real registry sends.
/// </para>
/// <para>
/// Pulls as distribution answers them: blobs with <c>Docker-Content-Digest</c>, <c>Accept-Ranges</c> and <c>Range</c>
/// answered 206 with <c>Content-Range</c> (unless <see cref="FakeRegistryOptions.IgnoreRange"/>). Hostile or broken
/// transfers on demand: bodies cut after N bytes (<see cref="TruncateNextBlobs"/>), blobs redirected to a storage URL
/// (<see cref="RedirectBlobs"/>), blobs and manifests stored under a digest that is not theirs (<see cref="AddBlobAs"/>,
/// <see cref="AddManifest"/>).
/// </para>
/// <para>
/// Deletes: a manifest by digest (with <see cref="FakeRegistryOptions.DeletesEnabled"/>; 405 UNSUPPORTED otherwise, as
/// distribution's default), which takes every tag naming it along (202; 404 MANIFEST_UNKNOWN when absent); the
/// <c>delete</c> action of a bearer token.
/// </para>
/// <para>Differences, on purpose: everything is in memory; no cross-repository mount; no TLS; no deletes of blobs.</para>
/// </summary>
public sealed partial class FakeRegistry : IAsyncDisposable
{
    public const string Service = "fake-registry";

    private sealed class Upload(string repository)
    {
        public string Repository { get; } = repository;
        public MemoryStream Data { get; } = new();
        public string State { get; set; } = Guid.NewGuid().ToString("N");
    }

    private sealed record Token(DateTimeOffset Expires, IReadOnlyDictionary<string, HashSet<string>> Access);
    private sealed record StoredManifest(byte[] Body, string MediaType, string Digest);
    private sealed record Fault(int Code, Func<FakeRegistryRequest, bool>? Match);

    private readonly FakeRegistryOptions _options;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, byte[]> _blobs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _links = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Repository, string Reference), StoredManifest> _manifests = new();
    private readonly Dictionary<string, Upload> _uploads = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Token> _tokens = new(StringComparer.Ordinal);
    private readonly List<FakeRegistryRequest> _requests = [];
    private readonly Queue<Fault> _faults = new();
    private readonly Queue<(long After, bool Abort)> _truncations = new();
    private Func<string, string>? _blobRedirect;
    private WebApplication? _app;
    private int _port;

    private FakeRegistry(FakeRegistryOptions options) => _options = options;

    public static async Task<FakeRegistry> StartAsync(FakeRegistryOptions? options = null)
    {
        var registry = new FakeRegistry(options ?? new FakeRegistryOptions());
        await registry.ListenAsync();
        return registry;
    }

    /// <summary><c>127.0.0.1:PORT</c>, as written in image references.</summary>
    public string Host => $"127.0.0.1:{_port}";

    public Uri Url => new($"http://{Host}");

    /// <summary>Every request so far, in arrival order (the token service's too).</summary>
    public IReadOnlyList<FakeRegistryRequest> Requests { get { lock (_gate) return _requests.ToList(); } }

    public int TokensIssued { get; private set; }

    /// <summary>Upload sessions not yet completed or cancelled.</summary>
    public int OpenUploads { get { lock (_gate) return _uploads.Count; } }

    public void ClearRequests() { lock (_gate) _requests.Clear(); }

    /// <summary>
    /// The next <paramref name="count"/> requests (matching <paramref name="match"/>) fail with that status and an
    /// OCI error body, before anything is changed; code 0 aborts the connection instead.
    /// </summary>
    public void FailNext(int count, int code, Func<FakeRegistryRequest, bool>? match = null)
    {
        lock (_gate) for (var i = 0; i < count; i++) _faults.Enqueue(new Fault(code, match));
    }

    /// <summary>
    /// The next <paramref name="count"/> blob GETs (manifest and token requests are not counted) send only
    /// <paramref name="afterBytes"/> bytes of their body: the response ends there (chunked, so the client sees exactly
    /// those bytes and then the end, as behind a proxy that gave up), or with <paramref name="abort"/> the connection is
    /// cut after them (the client may then lose what was still in flight).
    /// </summary>
    public void TruncateNextBlobs(int count, long afterBytes, bool abort = false)
    {
        lock (_gate) for (var i = 0; i < count; i++) _truncations.Enqueue((afterBytes, abort));
    }

    /// <summary>
    /// Blob GETs (after authorization) answer <c>307</c> to <paramref name="location"/>(digest) instead, as registries
    /// that keep blobs on a storage host do; <see cref="StoragePath"/> on this server serves any blob without
    /// authorization. Null: blobs are served directly.
    /// </summary>
    public void RedirectBlobs(Func<string, string>? location)
    {
        lock (_gate) _blobRedirect = location;
    }

    /// <summary>The path under which this server serves any blob by digest without authorization (a storage host's URL).</summary>
    public static string StoragePath(string digest) => $"/_storage/{digest}";

    /// <summary>Stores <paramref name="content"/> under <paramref name="digest"/> whatever its real digest (a corrupt or hostile registry).</summary>
    public void AddBlobAs(string repository, string digest, byte[] content)
    {
        lock (_gate)
        {
            _blobs[digest] = content;
            Link(repository, digest);
        }
    }

    /// <summary>
    /// Stores a manifest under <paramref name="reference"/> as it is, unchecked, answered with
    /// <c>Docker-Content-Digest: <paramref name="digest"/></c> (default: its real digest) — a registry that lies, or
    /// one a test fills directly; also stored under its real digest.
    /// </summary>
    public void AddManifest(string repository, string reference, byte[] body, string mediaType, string? digest = null)
    {
        var stored = new StoredManifest(body, mediaType, digest ?? Sha256(body));
        lock (_gate)
        {
            _manifests[(repository, reference)] = stored;
            _manifests.TryAdd((repository, Sha256(body)), stored);
        }
    }

    public bool HasBlob(string repository, string digest)
    {
        lock (_gate) return _links.TryGetValue(repository, out var set) && set.Contains(digest);
    }

    public byte[]? Blob(string digest) { lock (_gate) return _blobs.GetValueOrDefault(digest); }

    /// <summary>Stores a blob in a repository as if it had been pushed earlier.</summary>
    public string AddBlob(string repository, byte[] content)
    {
        var digest = Sha256(content);
        lock (_gate)
        {
            _blobs[digest] = content;
            Link(repository, digest);
        }
        return digest;
    }

    /// <summary>The manifest under a tag or digest: its bytes, media type and digest, or null.</summary>
    public (byte[] Body, string MediaType, string Digest)? Manifest(string repository, string reference)
    {
        lock (_gate)
            return _manifests.TryGetValue((repository, reference), out var m) ? (m.Body, m.MediaType, m.Digest) : null;
    }

    private async Task ListenAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Listen(IPAddress.Loopback, _port);
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        var app = builder.Build();
        app.Run(HandleAsync);
        await app.StartAsync();
        _port = new Uri(app.Urls.First()).Port;
        _app = app;
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    // ---- HTTP ----

    private sealed class RegistryError(int status, string code, string message, string? challenge = null) : Exception(message)
    {
        public int Status { get; } = status;
        public string Code { get; } = code;
        public string? Challenge { get; } = challenge;
    }

    private async Task HandleAsync(HttpContext ctx)
    {
        var req = ctx.Request;
        var auth = req.Headers.Authorization.ToString();
        var request = new FakeRegistryRequest(req.Method, req.Path.Value ?? "/", req.QueryString.Value ?? "",
            auth.Length == 0 ? null : auth.Split(' ')[0], req.Headers["Content-Range"].ToString() is { Length: > 0 } cr ? cr : null,
            req.ContentLength, req.ContentType)
        {
            Range = req.Headers.Range.ToString() is { Length: > 0 } range ? range : null,
        };
        Fault? fault = null;
        lock (_gate)
        {
            _requests.Add(request);
            if (_faults.Count > 0 && (_faults.Peek().Match?.Invoke(request) ?? true)) fault = _faults.Dequeue();
        }
        try
        {
            if (fault is not null)
            {
                if (fault.Code == 0) { ctx.Abort(); return; }
                // drain the body, as a real server in front of a failing backend would
                await req.Body.CopyToAsync(Stream.Null, ctx.RequestAborted);
                throw new RegistryError(fault.Code, fault.Code >= 500 ? "UNKNOWN" : "DENIED", $"injected failure ({fault.Code})");
            }
            if (request.Path == "/token")
            {
                await TokenAsync(ctx);
                return;
            }
            if (request.Path.StartsWith("/_storage/", StringComparison.Ordinal))
            {
                byte[]? stored;
                lock (_gate) stored = _blobs.GetValueOrDefault(request.Path["/_storage/".Length..]);
                if (stored is null) throw new RegistryError(404, "BLOB_UNKNOWN", "blob unknown to storage");
                await SendBlobAsync(ctx, stored, request.Path["/_storage/".Length..]);
                return;
            }
            await RouteAsync(ctx, request);
        }
        catch (RegistryError e)
        {
            var res = ctx.Response;
            res.StatusCode = e.Status;
            if (e.Challenge is not null) res.Headers.WWWAuthenticate = e.Challenge;
            if (req.Method != "HEAD")
            {
                res.ContentType = "application/json";
                var body = new JsonObject
                {
                    ["errors"] = new JsonArray(new JsonObject { ["code"] = e.Code, ["message"] = e.Message, ["detail"] = null }),
                };
                await res.WriteAsync(body.ToJsonString(), ctx.RequestAborted);
            }
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
        }
    }

    [GeneratedRegex(@"^/v2/(?<name>.+)/blobs/uploads/(?<uuid>[^/]*)$")]
    private static partial Regex UploadPath();

    [GeneratedRegex(@"^/v2/(?<name>.+)/blobs/(?<digest>[^/]+)$")]
    private static partial Regex BlobPath();

    [GeneratedRegex(@"^/v2/(?<name>.+)/manifests/(?<reference>[^/]+)$")]
    private static partial Regex ManifestPath();

    private async Task RouteAsync(HttpContext ctx, FakeRegistryRequest request)
    {
        var path = request.Path;
        var method = request.Method;
        if (path is "/v2/" or "/v2")
        {
            Authorize(ctx, null, pull: true);
            ctx.Response.ContentType = "application/json";
            await ctx.Response.WriteAsync("{}");
            return;
        }
        if (UploadPath().Match(path) is { Success: true } u)
        {
            var name = u.Groups["name"].Value;
            Authorize(ctx, name, pull: false);
            var uuid = u.Groups["uuid"].Value;
            if (uuid.Length == 0)
            {
                if (method != "POST") throw new RegistryError(405, "UNSUPPORTED", $"{method} not allowed on an upload collection");
                await StartUploadAsync(ctx, name);
            }
            else await ContinueUploadAsync(ctx, name, uuid);
            return;
        }
        if (BlobPath().Match(path) is { Success: true } b)
        {
            var name = b.Groups["name"].Value;
            Authorize(ctx, name, pull: true);
            if (method is not ("GET" or "HEAD")) throw new RegistryError(405, "UNSUPPORTED", $"{method} not allowed on a blob");
            var digest = b.Groups["digest"].Value;
            byte[]? blob;
            lock (_gate) blob = HasBlobLocked(name, digest) ? _blobs[digest] : null;
            if (blob is null) throw new RegistryError(404, "BLOB_UNKNOWN", $"blob unknown to registry: {digest}");
            Func<string, string>? redirect;
            lock (_gate) redirect = _blobRedirect;
            if (redirect is not null)
            {
                ctx.Response.StatusCode = 307;
                ctx.Response.Headers.Location = redirect(digest);
                ctx.Response.ContentLength = 0;
                return;
            }
            await SendBlobAsync(ctx, blob, digest);
            return;
        }
        if (ManifestPath().Match(path) is { Success: true } m)
        {
            var name = m.Groups["name"].Value;
            var reference = m.Groups["reference"].Value;
            if (method is "GET" or "HEAD")
            {
                Authorize(ctx, name, pull: true);
                StoredManifest? manifest;
                lock (_gate) manifest = _manifests.GetValueOrDefault((name, reference));
                if (manifest is null) throw new RegistryError(404, "MANIFEST_UNKNOWN", $"manifest unknown: {reference}");
                ctx.Response.ContentType = manifest.MediaType;
                ctx.Response.ContentLength = manifest.Body.Length;
                ctx.Response.Headers["Docker-Content-Digest"] = manifest.Digest;
                if (method == "GET") await ctx.Response.Body.WriteAsync(manifest.Body, ctx.RequestAborted);
                return;
            }
            if (method == "DELETE")
            {
                DeleteManifest(ctx, name, reference);
                return;
            }
            if (method != "PUT") throw new RegistryError(405, "UNSUPPORTED", $"{method} not allowed on a manifest");
            Authorize(ctx, name, pull: false);
            await PutManifestAsync(ctx, name, reference);
            return;
        }
        throw new RegistryError(404, "NAME_UNKNOWN", $"no route for {method} {path}");
    }

    /// <summary>
    /// A blob as distribution sends it: <c>Accept-Ranges</c>, a <c>Range: bytes=N-[M]</c> answered with 206 and
    /// <c>Content-Range</c> (416 when outside the blob), unless <see cref="FakeRegistryOptions.IgnoreRange"/>; a pending
    /// truncation cuts the body.
    /// </summary>
    private async Task SendBlobAsync(HttpContext ctx, byte[] blob, string digest)
    {
        var res = ctx.Response;
        res.ContentType = "application/octet-stream";
        res.Headers["Docker-Content-Digest"] = digest;
        long start = 0, end = blob.Length - 1;
        if (!_options.IgnoreRange)
        {
            res.Headers.AcceptRanges = "bytes";
            var range = ctx.Request.Headers.Range.ToString();
            if (range.Length > 0)
            {
                var m = RangeHeader().Match(range);
                if (!m.Success) throw new RegistryError(416, "RANGE_INVALID", $"range '{range}' is not bytes=N-[M]");
                start = long.Parse(m.Groups["start"].Value, System.Globalization.CultureInfo.InvariantCulture);
                if (m.Groups["end"].Success) end = Math.Min(end, long.Parse(m.Groups["end"].Value, System.Globalization.CultureInfo.InvariantCulture));
                if (start >= blob.Length || start > end)
                {
                    res.Headers.ContentRange = $"bytes */{blob.Length}";
                    throw new RegistryError(416, "RANGE_INVALID", $"range '{range}' is outside the blob");
                }
                res.StatusCode = 206;
                res.Headers.ContentRange = $"bytes {start}-{end}/{blob.Length}";
            }
        }
        var length = end - start + 1;
        (long After, bool Abort)? cut = null;
        if (ctx.Request.Method == "GET") lock (_gate) if (_truncations.Count > 0) cut = _truncations.Dequeue();
        if (cut is { } c && c.After < length)
        {
            if (c.Abort) res.ContentLength = length;
            await res.Body.WriteAsync(blob.AsMemory((int)start, (int)c.After), ctx.RequestAborted);
            await res.Body.FlushAsync(ctx.RequestAborted);
            if (c.Abort) ctx.Abort();
            return;
        }
        res.ContentLength = length;
        if (ctx.Request.Method != "GET") return;
        await res.Body.WriteAsync(blob.AsMemory((int)start, (int)length), ctx.RequestAborted);
    }

    [GeneratedRegex(@"^bytes=(?<start>\d+)-(?<end>\d+)?$")]
    private static partial Regex RangeHeader();

    private async Task StartUploadAsync(HttpContext ctx, string name)
    {
        var body = await ReadBodyAsync(ctx);
        if (ctx.Request.Query["digest"].ToString() is { Length: > 0 } digest)
        {
            // monolithic upload in the POST itself
            CommitBlob(name, digest, body);
            Created(ctx, $"/v2/{name}/blobs/{digest}", digest);
            return;
        }
        var uuid = Guid.NewGuid().ToString();
        var upload = new Upload(name);
        upload.Data.Write(body);
        lock (_gate) _uploads[uuid] = upload;
        SessionHeaders(ctx, name, uuid, upload);
        ctx.Response.StatusCode = 202;
    }

    private async Task ContinueUploadAsync(HttpContext ctx, string name, string uuid)
    {
        Upload? upload;
        lock (_gate) upload = _uploads.GetValueOrDefault(uuid);
        if (upload is null || upload.Repository != name)
            throw new RegistryError(404, "BLOB_UPLOAD_UNKNOWN", $"blob upload unknown to registry: {uuid}");
        var method = ctx.Request.Method;
        if (method == "DELETE")
        {
            lock (_gate) _uploads.Remove(uuid);
            ctx.Response.StatusCode = 204;
            return;
        }
        if (method == "GET")
        {
            SessionHeaders(ctx, name, uuid, upload, newState: false);
            ctx.Response.StatusCode = 204;
            return;
        }
        // PATCH and PUT carry the state of the last response; an old Location means the client lost track
        if (ctx.Request.Query["_state"].ToString() != upload.State)
            throw new RegistryError(400, "BLOB_UPLOAD_INVALID", $"blob upload invalid: stale or missing _state for session {uuid}");
        var body = await ReadBodyAsync(ctx);
        if (method == "PATCH")
        {
            if (ctx.Request.Headers["Content-Range"].ToString() is { Length: > 0 } range)
            {
                var parts = range.Split('-');
                if (parts.Length != 2 || !long.TryParse(parts[0], out var start) || !long.TryParse(parts[1], out var end)
                    || start != upload.Data.Length || end - start + 1 != body.Length)
                {
                    ctx.Response.Headers.Range = upload.Data.Length == 0 ? "0-0" : $"0-{upload.Data.Length - 1}";
                    throw new RegistryError(416, "BLOB_UPLOAD_INVALID",
                        $"Content-Range {range} does not continue the {upload.Data.Length} bytes received (body {body.Length} bytes)");
                }
            }
            upload.Data.Write(body);
            SessionHeaders(ctx, name, uuid, upload);
            ctx.Response.StatusCode = 202;
            return;
        }
        if (method == "PUT")
        {
            var digest = ctx.Request.Query["digest"].ToString();
            upload.Data.Write(body);
            lock (_gate) _uploads.Remove(uuid);
            CommitBlob(name, digest, upload.Data.ToArray());
            Created(ctx, $"/v2/{name}/blobs/{digest}", digest);
            return;
        }
        throw new RegistryError(405, "UNSUPPORTED", $"{method} not allowed on an upload session");
    }

    private void CommitBlob(string name, string digest, byte[] content)
    {
        if (!digest.StartsWith("sha256:", StringComparison.Ordinal) || digest.Length != 71)
            throw new RegistryError(400, "DIGEST_INVALID", $"provided digest '{digest}' is not a sha256 digest");
        var actual = Sha256(content);
        if (actual != digest)
            throw new RegistryError(400, "DIGEST_INVALID", $"provided digest did not match uploaded content (got {actual})");
        lock (_gate)
        {
            _blobs[digest] = content;
            Link(name, digest);
        }
    }

    private async Task PutManifestAsync(HttpContext ctx, string name, string reference)
    {
        var body = await ReadBodyAsync(ctx);
        var mediaType = ctx.Request.ContentType;
        if (string.IsNullOrEmpty(mediaType)) throw new RegistryError(400, "MANIFEST_INVALID", "manifest has no Content-Type");
        JsonObject manifest;
        try
        {
            manifest = JsonNode.Parse(body) as JsonObject ?? throw new RegistryError(400, "MANIFEST_INVALID", "manifest is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new RegistryError(400, "MANIFEST_INVALID", $"manifest invalid: {e.Message}");
        }
        if (manifest["mediaType"]?.GetValue<string>() is { } declared && declared != mediaType)
            throw new RegistryError(400, "MANIFEST_INVALID", $"mediaType in manifest ({declared}) differs from Content-Type ({mediaType})");
        var referenced = new List<string>();
        if (manifest["config"]?["digest"]?.GetValue<string>() is { } config) referenced.Add(config);
        if (manifest["layers"] is JsonArray layers)
            referenced.AddRange(layers.Select(l => l?["digest"]?.GetValue<string>() ?? ""));
        var digest = Sha256(body);
        if (reference.StartsWith("sha256:", StringComparison.Ordinal) && reference != digest)
            throw new RegistryError(400, "DIGEST_INVALID", $"manifest digest {digest} does not match reference {reference}");
        lock (_gate)
        {
            foreach (var blob in referenced)
                if (!HasBlobLocked(name, blob))
                    throw new RegistryError(400, "MANIFEST_BLOB_UNKNOWN", $"blob unknown to registry: {blob}");
            var stored = new StoredManifest(body, mediaType, digest);
            _manifests[(name, reference)] = stored;
            _manifests[(name, digest)] = stored;
        }
        Created(ctx, $"/v2/{name}/manifests/{digest}", digest);
    }

    private void DeleteManifest(HttpContext ctx, string name, string reference)
    {
        if (!_options.DeletesEnabled) throw new RegistryError(405, "UNSUPPORTED", "The operation is unsupported.");
        Authorize(ctx, name, "delete");
        if (!reference.StartsWith("sha256:", StringComparison.Ordinal))
            throw new RegistryError(400, "DIGEST_INVALID", $"manifests are deleted by digest, not by tag ({reference})");
        lock (_gate)
        {
            var keys = _manifests.Where(m => m.Key.Repository == name && m.Value.Digest == reference).Select(m => m.Key).ToList();
            if (keys.Count == 0) throw new RegistryError(404, "MANIFEST_UNKNOWN", $"manifest unknown: {reference}");
            foreach (var key in keys) _manifests.Remove(key);
        }
        ctx.Response.StatusCode = 202;
        ctx.Response.ContentLength = 0;
    }

    // ---- auth ----

    private void Authorize(HttpContext ctx, string? repository, bool pull) => Authorize(ctx, repository, pull ? "pull" : "push");

    private void Authorize(HttpContext ctx, string? repository, string action)
    {
        var header = ctx.Request.Headers.Authorization.ToString();
        switch (_options.Auth)
        {
            case FakeRegistryAuth.None:
                return;
            case FakeRegistryAuth.Basic:
                if (BasicUser(header, repository) is not null) return;
                throw new RegistryError(401, "UNAUTHORIZED", "authentication required", "Basic realm=\"fake-registry\"");
            default:
                var scope = repository is null ? null : $"repository:{repository}:{action}";
                if (header.StartsWith("Bearer ", StringComparison.Ordinal))
                {
                    Token? token;
                    lock (_gate) token = _tokens.GetValueOrDefault(header[7..].Trim());
                    if (token is not null && _options.Time.GetUtcNow() < token.Expires
                        && (repository is null || (token.Access.TryGetValue(repository, out var actions) && actions.Contains(action))))
                        return;
                }
                var challenge = $"Bearer realm=\"{Url}token\",service=\"{Service}\"";
                if (repository is not null) challenge += $",scope=\"repository:{repository}:{(action == "push" ? "pull,push" : action)}\"";
                throw new RegistryError(401, "UNAUTHORIZED", "authentication required", challenge);
        }
    }

    private string? BasicUser(string header, string? repository = null)
    {
        if (!header.StartsWith("Basic ", StringComparison.Ordinal)) return null;
        string decoded;
        try { decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim())); }
        catch (FormatException) { return null; }
        var colon = decoded.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0) return null;
        var user = decoded[..colon];
        if (_options.CheckBasic is { } check) return check(user, decoded[(colon + 1)..], repository) ? user : null;
        return _options.Users.TryGetValue(user, out var password) && password == decoded[(colon + 1)..] ? user : null;
    }

    private async Task TokenAsync(HttpContext ctx)
    {
        var req = ctx.Request;
        if (_options.Auth != FakeRegistryAuth.Bearer) throw new RegistryError(404, "NAME_UNKNOWN", "no token service");
        List<string> scopes;
        string service;
        var authenticated = false;
        if (req.Method == "POST")
        {
            var form = await req.ReadFormAsync(ctx.RequestAborted);
            if (form["grant_type"] != "refresh_token" || !_options.IdentityTokens.Contains(form["refresh_token"].ToString()))
                throw new RegistryError(401, "UNAUTHORIZED", "invalid refresh token");
            authenticated = true;
            service = form["service"].ToString();
            scopes = form["scope"].ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries).ToList();
        }
        else
        {
            var header = req.Headers.Authorization.ToString();
            if (header.Length > 0)
            {
                if (BasicUser(header) is null) throw new RegistryError(401, "UNAUTHORIZED", "authentication failed");
                authenticated = true;
            }
            service = req.Query["service"].ToString();
            scopes = req.Query["scope"].SelectMany(s => (s ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        }
        if (service != Service) throw new RegistryError(400, "DENIED", $"unknown service '{service}'");
        var access = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        if (authenticated || _options.AnonymousPush)
        {
            foreach (var scope in scopes)
            {
                var parts = scope.Split(':');
                if (parts.Length != 3 || parts[0] != "repository") continue;
                if (!access.TryGetValue(parts[1], out var set)) access[parts[1]] = set = [];
                foreach (var a in parts[2].Split(',')) if (a is "pull" or "push" or "delete") set.Add(a);
            }
        }
        var value = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var now = _options.Time.GetUtcNow();
        lock (_gate)
        {
            _tokens[value] = new Token(now + _options.TokenLifetime, access);
            TokensIssued++;
        }
        var body = new JsonObject
        {
            [_options.TokenAsAccessToken || req.Method == "POST" ? "access_token" : "token"] = value,
            ["expires_in"] = (long)_options.TokenLifetime.TotalSeconds,
            ["issued_at"] = now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
        };
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(body.ToJsonString(), ctx.RequestAborted);
    }

    // ---- helpers ----

    private void SessionHeaders(HttpContext ctx, string name, string uuid, Upload upload, bool newState = true)
    {
        if (newState) upload.State = Guid.NewGuid().ToString("N");
        var location = $"/v2/{name}/blobs/uploads/{uuid}?_state={upload.State}";
        ctx.Response.Headers.Location = _options.AbsoluteLocations ? $"{Url.ToString().TrimEnd('/')}{location}" : location;
        ctx.Response.Headers.Range = upload.Data.Length == 0 ? "0-0" : $"0-{upload.Data.Length - 1}";
        ctx.Response.Headers["Docker-Upload-UUID"] = uuid;
        ctx.Response.ContentLength = 0;
    }

    private void Created(HttpContext ctx, string location, string digest)
    {
        ctx.Response.StatusCode = 201;
        ctx.Response.Headers.Location = _options.AbsoluteLocations ? $"{Url.ToString().TrimEnd('/')}{location}" : location;
        ctx.Response.Headers["Docker-Content-Digest"] = digest;
        ctx.Response.ContentLength = 0;
    }

    private static async Task<byte[]> ReadBodyAsync(HttpContext ctx)
    {
        using var buffer = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(buffer, ctx.RequestAborted);
        return buffer.ToArray();
    }

    private bool HasBlobLocked(string repository, string digest)
        => _links.TryGetValue(repository, out var set) && set.Contains(digest);

    private void Link(string repository, string digest)
    {
        if (!_links.TryGetValue(repository, out var set)) _links[repository] = set = new HashSet<string>(StringComparer.Ordinal);
        set.Add(digest);
    }

    public static string Sha256(ReadOnlySpan<byte> content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));
}

using System.Globalization;
using System.Net;
using System.Text.Encodings.Web;
using System.Text.Json;
using Crsc.Configuration;
using Crsc.Controllers.Health;
using Crsc.Controllers.Storage;
using Crsc.Controllers.Runtime;
using Crsc.Storage.Oci;
using Crsc.Storage.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Crsc.Daemon;

/// <summary>
/// The embedded read-only OCI distribution endpoint (<c>images.listen</c>): checkpoint images served from the node's
/// own store, so a runtime on this node (or another) pulls a checkpoint image with no registry anywhere. Its own
/// Kestrel server, apart from the node socket: it serves nothing but <c>/v2/</c>, and a port that cannot be bound
/// leaves the daemon running with the endpoint reported degraded (checkpoints go on; images are not published).
/// The handler only translates HTTP; what exists and what it is lives in <see cref="StoreImageRegistry"/>.
/// </summary>
internal sealed partial class ImageEndpoint(string listen, StoreImageRegistry registry, PullTokens tokens, ImageEndpointTls? tls,
    HealthRegistry health, ILogger<ImageEndpoint> logger)
    : IHostedService, IAsyncDisposable
{
    /// <summary>The realm of the Basic challenge a request without a token gets (runtimes answer it with their credentials).</summary>
    public const string Realm = "crsc checkpoint images";
    public const string HealthComponent = "images";
    private const string ApiVersionHeader = "Docker-Distribution-API-Version";
    private const string ApiVersion = "registry/2.0";
    private WebApplication? _app;

    /// <summary>True once the endpoint listens; image references are only handed out then.</summary>
    public bool Serving { get; private set; }

    /// <summary>Where it listens (with the port Kestrel chose when asked for port 0).</summary>
    public IReadOnlyList<string> Addresses { get; private set; } = [];

    /// <summary>The store as repositories, the endpoint, and the publisher the ContainerCheckpoint reconciler uses.</summary>
    public static void Register(IServiceCollection services, CrscOptions options)
    {
        services.AddSingleton(sp => new StoreImageRegistry(sp.GetRequiredService<ICheckpointStore>(),
            logger: sp.GetService<ILogger<StoreImageRegistry>>()));
        // tokens for pulls of this node's restores, whichever node's endpoint serves the image (same key: same cluster)
        services.AddSingleton(sp => new PullTokens(sp.GetRequiredService<NodeKey>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<IPullCredentials>(sp => new CheckpointPullCredentials(sp.GetRequiredService<PullTokens>(),
            RegistryLocation.TryParse(options.ImagesRegistry, out var registry, out _) ? registry.Host : null));
        if (options.ImagesListen.Length == 0) return;
        services.AddSingleton(sp => new ImageEndpoint(options.ImagesListen, sp.GetRequiredService<StoreImageRegistry>(),
            sp.GetRequiredService<PullTokens>(), ImageEndpointTls.From(options),
            sp.GetRequiredService<HealthRegistry>(), sp.GetRequiredService<ILogger<ImageEndpoint>>()));
        services.AddHostedService(sp => sp.GetRequiredService<ImageEndpoint>());
        services.AddSingleton<ICheckpointImagePublisher>(sp => new ServingImagePublisher(sp.GetRequiredService<ImageEndpoint>(),
            new EmbeddedImagePublisher(sp.GetRequiredService<StoreImageRegistry>(), options.EffectiveImagesAdvertise,
                sp.GetService<ILogger<EmbeddedImagePublisher>>())));
    }

    public async Task StartAsync(CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = Environments.Production,
        });
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders(); // the daemon's logger reports what matters (below)
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            // port 0 (tests): the system picks one, see Addresses
            var colon = listen.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(listen.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
                throw new ArgumentException($"images.listen '{listen}' is not HOST:PORT");
            var host = listen[..colon];
            var certificate = tls?.Load();
            void Http1(ListenOptions l)
            {
                l.Protocols = HttpProtocols.Http1;
                if (certificate is not null) l.UseHttps(certificate);
            }
            if (host == "localhost") k.ListenLocalhost(port, Http1);
            else if (IPAddress.TryParse(host.Trim('[', ']'), out var ip)) k.Listen(ip, port, Http1);
            else k.Listen(Dns.GetHostAddresses(host).First(), port, Http1);
        });
        var app = builder.Build();
        app.Run(ctx => HandleAsync(ctx, registry, tokens, logger));
        try
        {
            await app.StartAsync(ct);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            await app.DisposeAsync();
            Log.ListenFailed(logger, listen, e.Message);
            health.Report(HealthComponent, HealthStatus.Degraded, $"cannot listen on {listen}: {e.Message}");
            return;
        }
        _app = app;
        Addresses = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];
        Serving = true;
        health.Report(HealthComponent, HealthStatus.Healthy, "serving checkpoint images on " + string.Join(", ", Addresses));
        Log.Listening(logger, string.Join(", ", Addresses));
    }

    public async Task StopAsync(CancellationToken ct)
    {
        Serving = false;
        if (_app is not null) await _app.StopAsync(ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
        _app = null;
    }

    /// <summary>
    /// The whole of the endpoint's HTTP surface: GET and HEAD of <c>/v2/</c>, manifests, blobs and tag lists, each only
    /// for a caller whose token covers the repository (<c>/v2/</c> itself: any genuine, unexpired token). Nothing is
    /// answered before that check, not even which paths exist.
    /// </summary>
    internal static async Task HandleAsync(HttpContext ctx, StoreImageRegistry registry, PullTokens tokens, ILogger logger)
    {
        var request = ctx.Request;
        var response = ctx.Response;
        response.Headers[ApiVersionHeader] = ApiVersion;
        if (Authorize(ctx, tokens, logger) is { } refused)
        {
            if (refused.StatusCode == 401) response.Headers.WWWAuthenticate = $"Basic realm=\"{Realm}\"";
            await ErrorAsync(ctx, refused);
            return;
        }
        var head = HttpMethods.IsHead(request.Method);
        if (!head && !HttpMethods.IsGet(request.Method))
        {
            // read-only: no uploads, no manifest PUTs, no deletes, whatever the path
            response.Headers.Allow = "GET, HEAD";
            await ErrorAsync(ctx, OciError.Unsupported(request.Method));
            return;
        }
        var route = OciRoute.Parse(request.Path.Value);
        if (route.Kind == OciRouteKind.Unknown)
        {
            await ErrorAsync(ctx, OciError.NotFound(request.Path.Value ?? ""));
            return;
        }
        switch (route.Kind)
        {
            case OciRouteKind.Base:
                await BytesAsync(ctx, "application/json", "{}"u8.ToArray(), head);
                return;
            case OciRouteKind.Tags:
                var tags = registry.Tags(route.Name);
                if (tags.Error is { } tagsError) await ErrorAsync(ctx, tagsError);
                else await BytesAsync(ctx, "application/json", TagsJson(route.Name, tags.Value!), head);
                return;
            case OciRouteKind.Manifest:
                var manifest = registry.FindManifest(route.Name, route.Reference);
                if (manifest.Error is { } manifestError)
                {
                    await ErrorAsync(ctx, manifestError);
                    return;
                }
                var image = manifest.Value!;
                response.Headers["Docker-Content-Digest"] = image.Manifest.Digest;
                await BytesAsync(ctx, image.Manifest.MediaType, image.ManifestBytes, head);
                return;
            default:
                await BlobAsync(ctx, registry, route, head, logger);
                return;
        }
    }

    /// <summary>Null when the request's token lets it through; else the 401 or 403 it gets.</summary>
    private static OciError? Authorize(HttpContext ctx, PullTokens tokens, ILogger logger)
    {
        var route = OciRoute.Parse(ctx.Request.Path.Value);
        var repository = route.Kind is OciRouteKind.Base or OciRouteKind.Unknown ? null : route.Name;
        var token = TokenOf(ctx.Request);
        var verdict = tokens.Check(token, repository, out var covered);
        if (verdict == PullTokenVerdict.Valid) return null;
        var peer = ctx.Connection.RemoteIpAddress?.ToString() ?? "?";
        if (token is not null) Log.Refused(logger, peer, ctx.Request.Path.Value ?? "", verdict.ToString());
        return verdict switch
        {
            PullTokenVerdict.OtherRepository => OciError.Denied(
                $"the token covers repository '{covered}', not '{repository}'"),
            PullTokenVerdict.Expired => OciError.Unauthorized("the pull token has expired"),
            PullTokenVerdict.BadSignature => OciError.Unauthorized("the pull token was not made with this cluster's crsc key"),
            _ => OciError.Unauthorized(token is null
                ? "authentication required: checkpoint images are served only with a pull token for their repository (crsc image-token)"
                : "the credentials are not a crsc pull token"),
        };
    }

    /// <summary>The token of <c>Authorization: Bearer T</c>, or the password of <c>Basic</c> (a runtime's credentials).</summary>
    internal static string? TokenOf(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return header[7..].Trim();
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase) || header.Length > 2048) return null;
        Span<byte> decoded = stackalloc byte[2048];
        if (!Convert.TryFromBase64String(header[6..].Trim(), decoded, out var n)) return null;
        var text = System.Text.Encoding.UTF8.GetString(decoded[..n]);
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? null : text[(colon + 1)..];
    }

    private static async Task BlobAsync(HttpContext ctx, StoreImageRegistry registry, OciRoute route, bool head, ILogger logger)
    {
        var found = registry.FindBlob(route.Name, route.Reference);
        if (found.Error is { } error)
        {
            await ErrorAsync(ctx, error);
            return;
        }
        var blob = found.Value!;
        var size = blob.Descriptor.Size;
        var response = ctx.Response;
        response.Headers["Docker-Content-Digest"] = blob.Descriptor.Digest;
        response.Headers.AcceptRanges = "bytes";
        var kind = ByteRange.Parse(ctx.Request.Headers.Range, size, out var range);
        if (kind == RangeRequest.Unsatisfiable)
        {
            response.Headers.ContentRange = $"bytes */{size}";
            await ErrorAsync(ctx, new OciError(416, "BLOB_UNKNOWN", $"range '{ctx.Request.Headers.Range}' is outside blob {blob.Descriptor.Digest} of {size} bytes"));
            return;
        }
        response.StatusCode = kind == RangeRequest.Partial ? 206 : 200;
        if (kind == RangeRequest.Partial) response.Headers.ContentRange = $"bytes {range.Start}-{range.End}/{size}";
        response.ContentType = OciMediaTypes.OctetStream;
        response.ContentLength = range.Length;
        if (head) return;

        Stream stream;
        try
        {
            stream = await registry.OpenBlobAsync(blob, kind == RangeRequest.Partial ? range : null, ctx.RequestAborted);
        }
        catch (CheckpointNotFoundException)
        {
            response.Headers.ContentRange = default;
            await ErrorAsync(ctx, OciError.BlobUnknown(route.Name, route.Reference));
            return;
        }
        catch (CheckpointCorruptException e)
        {
            Log.CorruptBlob(logger, blob.Descriptor.Digest, e.Message);
            response.Headers.ContentRange = default;
            await ErrorAsync(ctx, OciError.BlobCorrupt(blob.Descriptor.Digest));
            return;
        }
        await using (stream)
        {
            try
            {
                await CopyHoldingLastChunkAsync(stream, response.Body, ctx.RequestAborted);
            }
            catch (CheckpointCorruptException e)
            {
                // the digest is known only at the end: the last chunk was held back, the client gets an incomplete body
                Log.CorruptBlob(logger, blob.Descriptor.Digest, e.Message);
                ctx.Abort();
            }
        }
    }

    /// <summary>
    /// Copies, always one chunk behind: a chunk goes out only once the next read succeeded, so the end of the stream
    /// (where a verifying stream checks the digest) is reached before the last bytes are sent.
    /// </summary>
    private static async Task CopyHoldingLastChunkAsync(Stream source, Stream destination, CancellationToken ct)
    {
        var held = new byte[1 << 20];
        var next = new byte[1 << 20];
        var heldCount = await source.ReadAsync(held, ct);
        while (heldCount > 0)
        {
            var n = await source.ReadAsync(next, ct);
            await destination.WriteAsync(held.AsMemory(0, heldCount), ct);
            (held, next, heldCount) = (next, held, n);
        }
    }

    private static Task BytesAsync(HttpContext ctx, string contentType, byte[] body, bool head)
    {
        var response = ctx.Response;
        response.StatusCode = 200;
        response.ContentType = contentType;
        response.ContentLength = body.Length;
        return head ? Task.CompletedTask : response.Body.WriteAsync(body, ctx.RequestAborted).AsTask();
    }

    private static Task ErrorAsync(HttpContext ctx, OciError error)
    {
        var body = error.ToJson();
        var response = ctx.Response;
        response.StatusCode = error.StatusCode;
        response.ContentType = "application/json";
        response.ContentLength = body.Length;
        return HttpMethods.IsHead(ctx.Request.Method) ? Task.CompletedTask : response.Body.WriteAsync(body, ctx.RequestAborted).AsTask();
    }

    private static byte[] TagsJson(string name, IReadOnlyList<string> tags)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("name", name);
            w.WriteStartArray("tags");
            foreach (var t in tags) w.WriteStringValue(t);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static partial class Log
    {
        [LoggerMessage(70201, LogLevel.Information, "Checkpoint images served on {Addresses}")]
        public static partial void Listening(ILogger logger, string addresses);

        [LoggerMessage(70202, LogLevel.Error, "Cannot serve checkpoint images on {Listen}: {Reason}; checkpoints go on, but no image references are published")]
        public static partial void ListenFailed(ILogger logger, string listen, string reason);

        [LoggerMessage(70203, LogLevel.Error, "Blob {Digest} is corrupt and was not served: {Problem}")]
        public static partial void CorruptBlob(ILogger logger, string digest, string problem);

        [LoggerMessage(70204, LogLevel.Warning, "Image request from {Peer} for {Path} refused: its token is {Verdict}")]
        public static partial void Refused(ILogger logger, string peer, string path, string verdict);
    }
}

/// <summary>Image references only while the endpoint serves them: none from a node whose port could not be bound.</summary>
internal sealed class ServingImagePublisher(ImageEndpoint endpoint, ICheckpointImagePublisher inner) : ICheckpointImagePublisher
{
    public Task<string?> PublishAsync(CheckpointInfo checkpoint, CancellationToken ct) =>
        endpoint.Serving ? inner.PublishAsync(checkpoint, ct) : Task.FromResult<string?>(null);
}

/// <summary>
/// What a node agent hands the runtime when it pulls a checkpoint image for a restore: a token for that image's
/// repository alone, and only for a repository of the Restore's own namespace; nothing for other images (base images,
/// or a configured registry, which has its own credentials and must not see crsc's tokens).
/// </summary>
internal sealed class CheckpointPullCredentials(PullTokens tokens, string? registryHost) : IPullCredentials
{
    public RegistryAuth? For(string image, string restoreNamespace)
    {
        if (!ImageReference.TryParse(image, out var reference, out _) || reference.Domain is null) return null;
        if (registryHost is not null && string.Equals(reference.Domain, registryHost, StringComparison.OrdinalIgnoreCase)) return null;
        if (!CheckpointImageNames.TryParseRepository(reference.Path, out var filter) || filter.Namespace != restoreNamespace) return null;
        // no ServerAddress: containerd parses it as a URL ("127.0.0.1:5055" is none, and the pull fails); the credential
        // goes with this one pull request anyway
        return new RegistryAuth(Username: PullTokens.UserName, Password: tokens.Mint(reference.Path));
    }
}

/// <summary><c>images.tlsCertFile</c>/<c>images.tlsKeyFile</c>: the endpoint's serving certificate (required beyond loopback).</summary>
internal sealed record ImageEndpointTls(string CertFile, string KeyFile)
{
    public static ImageEndpointTls? From(CrscOptions options) =>
        options.ImagesTlsCertFile.Length == 0 ? null : new ImageEndpointTls(options.ImagesTlsCertFile, options.ImagesTlsKeyFile);

    /// <summary>The certificate with its key; the key file must be private to crsc (0600, owned, not a link).</summary>
    /// <exception cref="SecretFileException">the key file is unusable</exception>
    /// <exception cref="System.Security.Cryptography.CryptographicException">the files are not a PEM certificate and its key</exception>
    public System.Security.Cryptography.X509Certificates.X509Certificate2 Load()
    {
        var key = System.Text.Encoding.UTF8.GetString(SecretFile.Read(KeyFile, 1 << 20, "the image endpoint's TLS private key"));
        var certificate = File.ReadAllText(CertFile);
        return System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(certificate, key);
    }
}

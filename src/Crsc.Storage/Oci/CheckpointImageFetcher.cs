using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Crsc.Api.Archives;
using Crsc.Controllers.Queue;
using Crsc.Controllers.Storage;
using Crsc.Storage.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Storage.Oci;

/// <summary>How a <see cref="CheckpointImageFetcher"/> talks to registries and node endpoints.</summary>
public sealed record CheckpointFetchOptions
{
    /// <summary>Plain HTTP instead of HTTPS.</summary>
    public bool Insecure { get; init; }

    /// <summary>Tries of one request, and of the blob's transfer as a whole (each cut or failed resume counts one).</summary>
    public int MaxAttempts { get; init; } = 5;

    public TimeSpan RetryInitialDelay { get; init; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(20);
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// <c>host:port</c> of hosts other than the registry itself that a blob may be redirected to (registries send blobs
    /// from storage hosts); they get no credentials. Empty: a redirect is followed only to the registry's own scheme, host
    /// and port.
    /// </summary>
    public IReadOnlyCollection<string> AllowedRedirectHosts { get; init; } = [];

    /// <summary>
    /// Commit only a checkpoint whose manifest MAC verifies with this node's key (the nodes share the key,
    /// <c>security.keySecret</c>). False: a manifest of another key is committed too, and recorded as
    /// <see cref="CheckpointAuthenticity.OtherKey"/> (never served nor restored while so). An invalid or missing MAC is
    /// refused either way.
    /// </summary>
    public bool RequireVerified { get; init; } = true;

    /// <summary>The largest image manifest read.</summary>
    public int MaxManifestBytes { get; init; } = 4 << 20;
}

/// <summary>Fetching a checkpoint image failed; nothing was committed. The message names the image and what was wrong.</summary>
/// <param name="refused">see <see cref="Refused"/>: each throw says which it is, from what it found (never from the message)</param>
public sealed class CheckpointFetchException(string image, string message, bool refused, Exception? inner = null)
    : Exception($"fetching checkpoint image {image}: {message}", inner)
{
    public string Image { get; } = image;

    /// <summary>
    /// True: the source answered, and what it sent is wrong for this fetch (a digest, size or MAC that does not match, not
    /// a checkpoint image, another checkpoint than the one expected, a redirect to a host not allowed, an archive the store
    /// refuses): asking it again brings the same. False: the fetch could not be done now (no connection, a timeout, 5xx
    /// answers or a transfer that kept breaking until the tries ran out, another 4xx answer such as 401/404 whose cause
    /// is outside the image: credentials, a copy not there yet; this node's disk): a later try may succeed.
    /// </summary>
    public bool Refused { get; } = refused;
}

/// <summary>
/// Pulls a crsc checkpoint image (from a registry, or from another node's embedded endpoint: both speak the OCI
/// distribution API) into this node's store. The manifest is fetched and checked (digest, media types, the checkpoint
/// annotations <see cref="CheckpointImageWriter"/> writes, and the store manifest that travels with it, whose MAC is
/// checked as the store checks its own); the single layer (the stored archive) is streamed through the store's
/// validation into a temp file with both digests checked on the way (<see cref="DiskCheckpointStore.Import"/>), and
/// committed only when everything matched. A transfer cut mid-blob resumes with a <c>Range</c> request (a server that
/// answers 200 instead of 206 is read from the start again, the bytes already stored skipped), at most
/// <see cref="CheckpointFetchOptions.MaxAttempts"/> times with backoff. Redirects of a blob are followed to the
/// registry itself, or to <see cref="CheckpointFetchOptions.AllowedRedirectHosts"/>; any other is refused.
/// Authentication: <see cref="RegistryAuthenticator"/> (basic, or bearer tokens); for a node's endpoint, the credentials
/// are a pull token (<see cref="PeerCredentials"/>).
/// </summary>
public sealed class CheckpointImageFetcher : IDisposable
{
    private const int MaxRedirects = 5;
    private readonly DiskCheckpointStore _store;
    private readonly CheckpointFetchOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HttpClient _http;

    /// <param name="handler">null: a <see cref="SocketsHttpHandler"/> with the system's trust store (redirects are
    /// always handled here, never by the handler)</param>
    public CheckpointImageFetcher(DiskCheckpointStore store, CheckpointFetchOptions options, TimeProvider? time = null,
        ILogger<CheckpointImageFetcher>? logger = null, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxAttempts, 1);
        foreach (var host in options.AllowedRedirectHosts)
            if (!RegistryNames.IsHost(host)) throw new ArgumentException($"allowed redirect host '{host}' is not host[:port]", nameof(options));
        _store = store;
        _options = options;
        _time = time ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _http = RegistryHttp.NewClient(handler, options.ConnectTimeout, followRedirects: false);
    }

    /// <summary>The credentials for pulling <paramref name="repository"/> from a node's embedded endpoint: a pull token
    /// made with the cluster's shared key, sent as a runtime sends it (Basic, <see cref="PullTokens.UserName"/>).</summary>
    public static RegistryCredentials PeerCredentials(PullTokens tokens, string repository, TimeSpan? lifetime = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        return new RegistryCredentials(PullTokens.UserName, tokens.Mint(repository, lifetime));
    }

    /// <summary>
    /// Fetches <paramref name="imageReference"/> (<c>host[:port]/repository(:tag|@sha256:…)</c>) into the store and
    /// returns the committed checkpoint (the one already there when the store has it with the same digest).
    /// </summary>
    /// <param name="credentials">null: anonymous (a token service may still hand out anonymous tokens)</param>
    /// <param name="progress">bytes of the blob received and stored so far</param>
    /// <exception cref="CheckpointFetchException">anything wrong: unreachable, refused, not a checkpoint image, a digest,
    /// size or MAC that does not match, an archive the store refuses; the store is left as it was</exception>
    public Task<CheckpointInfo> FetchAsync(string imageReference, RegistryCredentials? credentials, IProgress<long>? progress,
        CancellationToken ct) =>
        FetchAsync(imageReference, null, credentials, progress, ct);

    /// <inheritdoc cref="FetchAsync(string, RegistryCredentials?, IProgress{long}?, CancellationToken)"/>
    /// <param name="expectedCheckpointId">the store id the image's checkpoint must have (its manifest's, MAC-covered); a
    /// manifest of another checkpoint is refused before the archive is asked for. Null: whichever it is.</param>
    public async Task<CheckpointInfo> FetchAsync(string imageReference, string? expectedCheckpointId, RegistryCredentials? credentials,
        IProgress<long>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(imageReference);
        if (!ImageReference.TryParse(imageReference, out var reference, out var problem))
            throw new CheckpointFetchException(imageReference, problem, refused: true);
        if (reference.Domain is null)
            throw new CheckpointFetchException(imageReference, "the reference names no registry host", refused: true);
        if (reference.Digest is not null && !OciDigest.IsSha256(reference.Digest))
            throw new CheckpointFetchException(imageReference, $"'{reference.Digest}' is not a sha256 digest", refused: true);
        var registry = new RegistryClientOptions { Registry = reference.Domain, Insecure = _options.Insecure, Credentials = credentials };
        var session = new Session(this, imageReference, reference, expectedCheckpointId,
            new Uri($"{(_options.Insecure ? "http" : "https")}://{reference.Domain}/"),
            new RegistryHttp(_http, new RegistryAuthenticator(_http, registry, _time, _logger),
                new RegistryRetry(_options.MaxAttempts, _options.RetryInitialDelay, _options.RetryMaxDelay), _time));
        try
        {
            var (doc, layer) = await session.ManifestAsync(ct).ConfigureAwait(false);
            Log.FetchStarted(_logger, imageReference, layer.Digest, layer.Size);
            using var blob = new BlobDownloadStream(session, layer, ct);
            var info = await Task.Run(() => _store.Import(blob, doc, progress, ct), ct).ConfigureAwait(false);
            Log.Fetched(_logger, imageReference, info.Id, info.Digest, blob.Resumes, blob.Restarts);
            return info;
        }
        catch (CheckpointFetchException e)
        {
            Log.FetchFailed(_logger, imageReference, e.Message);
            throw;
        }
        catch (Exception e) when (e is CheckpointStoreException or RegistryException or InvalidDataException or NotSupportedException
                                      or IOException or UnauthorizedAccessException)
        {
            Log.FetchFailed(_logger, imageReference, e.Message);
            throw new CheckpointFetchException(imageReference, e.Message, IsRefusal(e), e);
        }
    }

    /// <summary>Whether a failure the fetch wraps was a refusal of what arrived (<see cref="CheckpointFetchException.Refused"/>).</summary>
    private static bool IsRefusal(Exception e) => e switch
    {
        // the archive that arrived is not the one its manifest records, or not an acceptable checkpoint
        ArchiveRejectedException or CheckpointCorruptException or InvalidCheckpointNameException => true,
        // a manifest the store cannot take, unless another import of that checkpoint is under way (it may be there soon)
        CheckpointImportException i => !i.InProgress,
        // what the source sent cannot be read as what it claims to be (a manifest over the size limit)
        InvalidDataException or NotSupportedException => true,
        // an answer of the source (401/403/404…, or 5xx and no connection after the tries), this node's disk or store
        _ => false,
    };

    public void Dispose() => _http.Dispose();

    /// <summary>One fetch: the image, the registry's base address, and the registry conversation (authorization, retries).</summary>
    private sealed class Session(CheckpointImageFetcher owner, string image, ImageReference reference, string? expectedId, Uri baseUri,
        RegistryHttp registry) : IRegistryFailures
    {
        public string Image => image;
        public CheckpointFetchOptions Options => owner._options;
        private string Repository => reference.Path;
        private string Scope => $"repository:{reference.Path}:pull";

        /// <summary>What the source sent is wrong for this fetch (<see cref="CheckpointFetchException.Refused"/>).</summary>
        public CheckpointFetchException Error(string message, Exception? inner = null) => new(image, message, refused: true, inner);

        /// <summary>The source could not be reached, or kept failing, until the tries ran out: a later fetch may succeed.</summary>
        public CheckpointFetchException GaveUp(string message, Exception? inner = null) => new(image, message, refused: false, inner);

        public async Task<(ManifestDocument Doc, OciDescriptor Layer)> ManifestAsync(CancellationToken ct)
        {
            var tagOrDigest = reference.Digest ?? reference.Tag ?? "latest";
            var uri = new Uri(baseUri, $"v2/{Repository}/manifests/{tagOrDigest}");
            var (body, headerDigest) = await RetryAsync(async () =>
            {
                using var response = await SendAsync(uri, null, ct).ConfigureAwait(false);
                if (response.StatusCode != HttpStatusCode.OK)
                    throw await UnexpectedAsync(response, "getting the manifest", ct).ConfigureAwait(false);
                var type = response.Content.Headers.ContentType?.MediaType;
                if (type != OciMediaTypes.ImageManifest)
                    throw Error($"the manifest has media type '{type}', not {OciMediaTypes.ImageManifest}: not a crsc checkpoint image");
                if (response.Content.Headers.ContentLength > Options.MaxManifestBytes)
                    throw Error($"the manifest is {response.Content.Headers.ContentLength} bytes, more than the {Options.MaxManifestBytes} one may be");
                var bytes = await ReadBoundedAsync(response, Options.MaxManifestBytes, ct).ConfigureAwait(false);
                var said = response.Headers.TryGetValues("Docker-Content-Digest", out var values) ? values.FirstOrDefault() : null;
                return (bytes, said);
            }, "getting the manifest", ct).ConfigureAwait(false);

            var digest = OciDigest.Of(body);
            if (reference.Digest is { } wanted && digest != wanted)
                throw Error($"the registry answered a manifest with digest {digest}, not the {wanted} asked for");
            if (headerDigest is { Length: > 0 } && headerDigest != digest)
                throw Error($"the manifest's Docker-Content-Digest is {headerDigest}, its content's digest is {digest}");
            return CheckManifest(body);
        }

        /// <summary>The checks that make the manifest a crsc checkpoint image of the checkpoint its store manifest describes.</summary>
        private (ManifestDocument, OciDescriptor) CheckManifest(byte[] body)
        {
            JsonDocument json;
            try { json = JsonDocument.Parse(body); }
            catch (JsonException e) { throw Error($"the manifest is not JSON: {e.Message}"); }
            using (json)
            {
                var root = json.RootElement;
                if (root.ValueKind != JsonValueKind.Object) throw Error("the manifest is not a JSON object");
                if (!root.TryGetProperty("schemaVersion", out var schema) || schema.ValueKind != JsonValueKind.Number || schema.GetInt32() != 2)
                    throw Error("the manifest is not of schema version 2");
                if (String(root, "mediaType") is { } declared && declared != OciMediaTypes.ImageManifest)
                    throw Error($"the manifest declares media type '{declared}', not {OciMediaTypes.ImageManifest}");
                var config = root.TryGetProperty("config", out var c) ? Descriptor(c, "config") : throw Error("the manifest has no config");
                if (config.MediaType != OciMediaTypes.ImageConfig)
                    throw Error($"the config has media type '{config.MediaType}', not {OciMediaTypes.ImageConfig}");
                if (!root.TryGetProperty("layers", out var layers) || layers.ValueKind != JsonValueKind.Array || layers.GetArrayLength() != 1)
                    throw Error("a checkpoint image has exactly one layer (the archive); this manifest does not");
                var layer = Descriptor(layers[0], "layer");
                var annotations = new Dictionary<string, string>(StringComparer.Ordinal);
                if (root.TryGetProperty("annotations", out var a) && a.ValueKind == JsonValueKind.Object)
                    foreach (var p in a.EnumerateObject())
                        if (p.Value.ValueKind == JsonValueKind.String) annotations[p.Name] = p.Value.GetString()!;
                string Annotation(string key) => annotations.TryGetValue(key, out var v) && v.Length > 0
                    ? v : throw Error($"the manifest has no annotation {key}: not a crsc checkpoint image");
                var container = Annotation(CheckpointImageAnnotations.CheckpointName);
                if (Annotation(CheckpointImageAnnotations.CriOCheckpointName) != container)
                    throw Error($"its annotations {CheckpointImageAnnotations.CheckpointName} and {CheckpointImageAnnotations.CriOCheckpointName} name different containers");
                var id = Annotation(CheckpointImageAnnotations.CrscCheckpointId);
                if (expectedId is not null && id != expectedId)
                    throw Error($"its manifest is of checkpoint {id}, not of the {expectedId} expected; refused, nothing stored");

                ManifestDocument doc;
                try { doc = TravellingManifest.Decode(Annotation(CheckpointImageWriter.ManifestAnnotation)); }
                catch (Exception e) when (e is InvalidDataException or NotSupportedException)
                {
                    throw Error($"its checkpoint manifest (annotation {CheckpointImageWriter.ManifestAnnotation}) is refused: {e.Message}", e);
                }
                // the image must be what the (MAC-covered) manifest says it is
                if (doc.Id != id || doc.Container != container
                    || annotations.GetValueOrDefault(CheckpointImageAnnotations.PodNamespace) != doc.Namespace
                    || annotations.GetValueOrDefault(CheckpointImageAnnotations.CrscWorkload) != doc.Workload)
                    throw Error($"its annotations do not name the checkpoint its manifest describes ({doc.Namespace}/{doc.Workload}/{doc.Container}/{doc.Id})");
                var place = $"{doc.Namespace}/{doc.Workload}/{doc.Container}";
                if (Repository != CheckpointImageNames.RepositoryPrefix + "/" + place && !Repository.EndsWith("/" + place, StringComparison.Ordinal))
                    throw Error($"repository {Repository} is not that of checkpoint {place}/{doc.Id}");
                if (reference.Tag is { } tag && reference.Digest is null && tag != doc.Id)
                    throw Error($"tag {tag} names checkpoint {doc.Id}");
                var expectedType = Manifests.Compression(doc) == CheckpointCompression.Zstd ? OciMediaTypes.LayerTarZstd : OciMediaTypes.LayerTar;
                if (layer.MediaType != expectedType || layer.Digest != doc.Archive.Digest || layer.Size != doc.Archive.Size)
                    throw Error($"its layer ({layer.MediaType} {layer.Digest}, {layer.Size} bytes) is not the archive its manifest records ({expectedType} {doc.Archive.Digest}, {doc.Archive.Size} bytes)");

                var authenticity = Manifests.Authenticity(doc, owner._store.Key);
                var acceptable = authenticity == CheckpointAuthenticity.Verified
                                 || (authenticity == CheckpointAuthenticity.OtherKey && !Options.RequireVerified);
                if (!acceptable)
                    throw Error($"{TravellingManifest.Describe(doc)} is refused: " + authenticity switch
                    {
                        CheckpointAuthenticity.Invalid => "the MAC of its manifest does not verify with this node's key (invalid MAC)",
                        CheckpointAuthenticity.Unsigned => "its manifest carries no MAC",
                        CheckpointAuthenticity.OtherKey => $"its manifest is signed by key id {doc.MacKeyId}, not by this node's key (the nodes share no key: security.keySecret)",
                        _ => "this node has no key to check its manifest's MAC with",
                    });
                return (doc, layer);
            }
        }

        private OciDescriptor Descriptor(JsonElement e, string what)
        {
            if (e.ValueKind != JsonValueKind.Object) throw Error($"the manifest's {what} is not a descriptor");
            var mediaType = String(e, "mediaType") ?? throw Error($"the manifest's {what} has no media type");
            var digest = String(e, "digest");
            if (!OciDigest.IsSha256(digest)) throw Error($"the manifest's {what} digest '{digest}' is not a sha256 digest");
            if (!e.TryGetProperty("size", out var s) || s.ValueKind != JsonValueKind.Number || !s.TryGetInt64(out var size) || size <= 0)
                throw Error($"the manifest's {what} has no positive size");
            return new OciDescriptor(mediaType, digest!, size);
        }

        private static string? String(JsonElement e, string name) =>
            e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

        /// <summary>
        /// The blob's body from byte <paramref name="from"/> on: the stream and the offset it starts at (0 when the
        /// server answered the whole blob), following redirects the options allow.
        /// </summary>
        public async Task<(HttpResponseMessage Response, long Start)> OpenBlobAsync(OciDescriptor layer, long from, CancellationToken ct)
        {
            var uri = new Uri(baseUri, $"v2/{Repository}/blobs/{layer.Digest}");
            for (var redirects = 0; ; redirects++)
            {
                var response = await SendAsync(uri, from > 0 ? new RangeHeaderValue(from, null) : null, ct).ConfigureAwait(false);
                var status = (int)response.StatusCode;
                if (status is 301 or 302 or 303 or 307 or 308)
                {
                    using (response)
                    {
                        var location = response.Headers.Location ?? throw Error($"blob {layer.Digest}: a redirect ({status}) without a Location");
                        var next = new Uri(uri, location);
                        if (!RedirectAllowed(next))
                            throw Error($"blob {layer.Digest}: the registry redirected to {next.GetLeftPart(UriPartial.Authority)}, another host than {baseUri.GetLeftPart(UriPartial.Authority)}; refused (allowed redirect hosts: {(Options.AllowedRedirectHosts.Count == 0 ? "none" : string.Join(", ", Options.AllowedRedirectHosts))})");
                        if (redirects >= MaxRedirects) throw Error($"blob {layer.Digest}: more than {MaxRedirects} redirects");
                        uri = next;
                        continue;
                    }
                }
                try
                {
                    if (response.Headers.TryGetValues("Docker-Content-Digest", out var said) && said.FirstOrDefault() is { Length: > 0 } d && d != layer.Digest)
                        throw Error($"blob {layer.Digest}: the registry says it sends {d}");
                    if (response.StatusCode == HttpStatusCode.PartialContent && from > 0)
                    {
                        var range = response.Content.Headers.ContentRange;
                        if (range is not { From: { } start, Length: { } total } || start != from || total != layer.Size)
                            throw Error($"blob {layer.Digest}: asked for bytes {from}- of {layer.Size}, the registry sent range '{range}'");
                        return (response, from);
                    }
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        if (response.Content.Headers.ContentLength is { } length && length != layer.Size)
                            throw Error($"blob {layer.Digest}: the registry sends {length} bytes, the manifest says {layer.Size}");
                        return (response, 0);
                    }
                    throw await UnexpectedAsync(response, $"getting blob {layer.Digest}", ct).ConfigureAwait(false);
                }
                catch
                {
                    response.Dispose();
                    throw;
                }
            }
        }

        private bool RedirectAllowed(Uri next)
        {
            if (next.Scheme is not ("http" or "https")) return false;
            if (SameOrigin(next)) return true;
            return Options.AllowedRedirectHosts.Any(h => string.Equals(h, next.Authority, StringComparison.OrdinalIgnoreCase)
                                                         || string.Equals(h, $"{next.Host}:{next.Port}", StringComparison.OrdinalIgnoreCase));
        }

        private bool SameOrigin(Uri uri) =>
            uri.Scheme == baseUri.Scheme && string.Equals(uri.Host, baseUri.Host, StringComparison.OrdinalIgnoreCase) && uri.Port == baseUri.Port;

        /// <summary>A GET with the authorization the registry wants (answering one 401 challenge); 5xx and connection
        /// errors become <see cref="TransientRegistryException"/>. Credentials go only to the registry itself.</summary>
        private Task<HttpResponseMessage> SendAsync(Uri uri, RangeHeaderValue? range, CancellationToken ct) =>
            registry.SendAsync(() =>
            {
                var request = new HttpRequestMessage(HttpMethod.Get, uri);
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(OciMediaTypes.ImageManifest));
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("*/*", 0.5));
                if (range is not null) request.Headers.Range = range;
                return request;
            }, null, Repository, SameOrigin(uri) ? Scope : null, this, ct);

        RegistryException IRegistryFailures.Unreachable(string method, string path, Exception error) =>
            new(reference.Domain!, Repository, null, $"{method} {path} failed: {error.Message}", inner: error);

        RegistryException IRegistryFailures.ServerFailed(RegistryAnswer answer) => Unexpected(answer, $"{answer.Method} {answer.Path}");

        Exception IRegistryFailures.AuthorizationRefused(RegistryAnswer answer) =>
            Unexpected(answer, "the registry refused the authorization it had asked for");

        public Task<T> RetryAsync<T>(Func<Task<T>> attempt, string what, CancellationToken ct) =>
            registry.RetryAsync(attempt,
                (n, wait, error) => Retrying(what, n, wait, error.Message),
                (n, error) => GaveUp($"{what}: gave up after {n} attempts: {error.Message}", error),
                ct);

        public Backoff NewBackoff() => registry.Retry.NewBackoff();

        public Task DelayAsync(TimeSpan wait, CancellationToken ct) => registry.DelayAsync(wait, ct);

        public void Retrying(string what, int attempt, TimeSpan wait, string reason) =>
            Log.FetchRetrying(owner._logger, image, what, attempt, Options.MaxAttempts, wait, reason);

        private async Task<RegistryException> UnexpectedAsync(HttpResponseMessage response, string what, CancellationToken ct) =>
            Unexpected(await RegistryHttp.ReadAnswerAsync(response, ct).ConfigureAwait(false), what);

        private RegistryException Unexpected(RegistryAnswer answer, string what) =>
            new(reference.Domain!, Repository, reference.Digest, $"{what}: answered {(int)answer.Status} {answer.Reason}",
                answer.Status, answer.ErrorCode, answer.ServerMessage);

        private static async Task<byte[]> ReadBoundedAsync(HttpResponseMessage response, int max, CancellationToken ct)
        {
            await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            var buffer = new MemoryStream();
            var chunk = new byte[16 << 10];
            int n;
            while ((n = await body.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + n > max) throw new InvalidDataException($"the manifest is more than {max} bytes");
                buffer.Write(chunk, 0, n);
            }
            return buffer.ToArray();
        }
    }

    /// <summary>
    /// The layer blob as one forward-only stream of exactly its size, whatever happens to the transfer: a cut or a
    /// failed request is resumed from the bytes already read (<c>Range</c>); a server that answers the whole blob
    /// instead is read from the start, the bytes already read skipped. At most <see cref="CheckpointFetchOptions.MaxAttempts"/>
    /// failures, with backoff. Holds one response at a time; reads synchronously (the store's import is synchronous).
    /// </summary>
    private sealed class BlobDownloadStream(Session session, OciDescriptor layer, CancellationToken ct) : ReadOnlyStream
    {
        private readonly Backoff _backoff = session.NewBackoff();
        private HttpResponseMessage? _response;
        private Stream? _body;
        private long _position;
        private long _skip;
        private byte[]? _scratch;
        private int _failures;

        /// <summary>Transfers resumed with a range request.</summary>
        public int Resumes { get; private set; }
        /// <summary>Transfers read again from the start (the server did not answer the range).</summary>
        public int Restarts { get; private set; }

        public override long Length => layer.Size;
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (buffer.IsEmpty || _position >= layer.Size) return 0;
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                string failure;
                try
                {
                    _body ??= Open();
                    if (_skip > 0)
                    {
                        Skip();
                        continue;
                    }
                    var n = _body.Read(buffer[..(int)Math.Min(buffer.Length, layer.Size - _position)]);
                    if (n > 0)
                    {
                        _position += n;
                        return n;
                    }
                    failure = $"the transfer ended after {_position} of {layer.Size} bytes";
                }
                catch (Exception e) when (e is IOException or HttpRequestException && !ct.IsCancellationRequested)
                {
                    failure = $"the transfer broke after {_position} of {layer.Size} bytes: {e.Message}";
                }
                catch (TransientRegistryException e)
                {
                    failure = e.Error.Message;
                }
                Drop();
                _failures++;
                if (_failures >= session.Options.MaxAttempts)
                    throw session.GaveUp($"blob {layer.Digest}: gave up after {_failures} attempts: {failure}");
                var wait = _backoff.Next();
                session.Retrying($"getting blob {layer.Digest}", _failures, wait, failure);
                session.DelayAsync(wait, ct).GetAwaiter().GetResult();
            }
        }

        private Stream Open()
        {
            var (response, start) = session.OpenBlobAsync(layer, _position, ct).GetAwaiter().GetResult();
            _response = response;
            if (_position > 0)
            {
                if (start == 0) Restarts++;
                else Resumes++;
            }
            _skip = _position - start;
            return response.Content.ReadAsStream(ct);
        }

        private void Skip()
        {
            _scratch ??= new byte[1 << 16];
            var n = _body!.Read(_scratch.AsSpan(0, (int)Math.Min(_skip, _scratch.Length)));
            if (n == 0) throw new IOException($"the transfer ended {_skip} bytes before the point it was to go on from");
            _skip -= n;
        }

        private void Drop()
        {
            _body?.Dispose();
            _response?.Dispose();
            _body = null;
            _response = null;
            _skip = 0;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) Drop();
            base.Dispose(disposing);
        }
    }
}

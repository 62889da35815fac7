using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace Crsc.Storage.Oci;

/// <summary>
/// Pushes images to an OCI distribution registry: blobs that the repository already has are skipped (HEAD), the others
/// are uploaded monolithically (POST, then PUT with <c>?digest=</c>) or, above
/// <see cref="RegistryClientOptions.ChunkedUploadThreshold"/>, in chunks (POST, PATCH with <c>Content-Range</c>, final
/// PUT) holding one chunk in memory at a time; then the manifest is PUT by tag. Follows <c>Location</c> headers
/// (relative or absolute), checks the <c>Range</c> the registry reports after each chunk and the
/// <c>Docker-Content-Digest</c> it returns. Authentication: see <see cref="RegistryAuthenticator"/>. 5xx answers and
/// connection errors are retried with exponential backoff; other errors are not.
/// </summary>
public sealed class RegistryClient : IDisposable
{
    private readonly RegistryClientOptions _options;
    private readonly ILogger _logger;
    private readonly HttpClient _http;
    private readonly Uri _base;
    private readonly RegistryHttp _registry;

    /// <param name="handler">null: a <see cref="SocketsHttpHandler"/> with the system's trust store</param>
    public RegistryClient(RegistryClientOptions options, TimeProvider time, ILogger<RegistryClient> logger, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!RegistryNames.IsHost(options.Registry))
            throw new ArgumentException($"'{options.Registry}' is not a registry host[:port]", nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ChunkSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxAttempts, 1);
        _options = options;
        _logger = logger;
        _http = RegistryHttp.NewClient(handler, options.ConnectTimeout, followRedirects: true);
        _base = new Uri($"{(options.Insecure ? "http" : "https")}://{ApiHost(options.Registry)}/");
        _registry = new RegistryHttp(_http, new RegistryAuthenticator(_http, options, time, logger),
            new RegistryRetry(options.MaxAttempts, options.RetryInitialDelay, options.RetryMaxDelay), time);
    }

    public string Registry => _options.Registry;

    /// <summary>Bearer tokens fetched from the token service so far.</summary>
    public int TokensFetched => _registry.Auth.TokensFetched;

    /// <summary>Pushes the blobs the registry lacks, then the manifest under the image's tag.</summary>
    /// <exception cref="ArgumentException">a repository, tag or digest is not valid (names it)</exception>
    /// <exception cref="RegistryException">the registry refused something or stayed unreachable</exception>
    public async Task<RegistryPushResult> PushAsync(RegistryImage image, CancellationToken ct)
    {
        Validate(image);
        var repository = image.Repository;
        int uploaded = 0, skipped = 0;
        long bytes = 0;
        foreach (var blob in image.Blobs.DistinctBy(b => b.Digest))
        {
            if (await BlobExistsAsync(repository, blob, ct))
            {
                skipped++;
                Log.BlobSkipped(_logger, _options.Registry, repository, blob.Digest);
                continue;
            }
            var chunked = blob.Size > _options.ChunkedUploadThreshold;
            if (chunked) await UploadChunkedAsync(repository, blob, ct);
            else await UploadMonolithicAsync(repository, blob, ct);
            uploaded++;
            bytes += blob.Size;
            Log.BlobUploaded(_logger, _options.Registry, repository, blob.Digest, blob.Size, chunked ? "chunked" : "monolithic");
        }
        var digest = await PutManifestAsync(image, ct);
        Log.ManifestPushed(_logger, _options.Registry, repository, image.Tag, digest, uploaded, skipped);
        return new RegistryPushResult($"{_options.Registry}/{repository}@{digest}", digest, uploaded, skipped, bytes);
    }

    /// <summary>HEAD of the blob in the repository: true when the registry has it.</summary>
    public async Task<bool> BlobExistsAsync(string repository, RegistryBlob blob, CancellationToken ct)
    {
        return await RetryAsync(async () =>
        {
            using var response = await SendAsync(repository, blob.Digest, "checking blob",
                () => new HttpRequestMessage(HttpMethod.Head, new Uri(_base, $"v2/{repository}/blobs/{blob.Digest}")), null, ct);
            if (response.StatusCode == HttpStatusCode.OK) return true;
            if (response.StatusCode == HttpStatusCode.NotFound) return false;
            throw await ErrorAsync(response, repository, blob.Digest, "checking blob", ct);
        }, ct);
    }

    private async Task UploadMonolithicAsync(string repository, RegistryBlob blob, CancellationToken ct)
    {
        // one unit: a retried PUT may find its session used up, so a retry starts a new session
        await RetryAsync(async () =>
        {
            var (location, _) = await StartUploadAsync(repository, blob.Digest, ct);
            using var response = await SendAsync(repository, blob.Digest, "uploading blob",
                () => new HttpRequestMessage(HttpMethod.Put, WithDigest(location, blob.Digest)),
                async token =>
                {
                    var content = new StreamContent(await blob.OpenAsync(token), 81920);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                    content.Headers.ContentLength = blob.Size;
                    return content;
                }, ct);
            await CheckCreatedAsync(response, repository, blob.Digest, "uploading blob", ct);
            return true;
        }, ct);
    }

    private async Task UploadChunkedAsync(string repository, RegistryBlob blob, CancellationToken ct)
    {
        var (location, uuid) = await RetryAsync(() => StartUploadAsync(repository, blob.Digest, ct), ct);
        var buffer = ArrayPool<byte>.Shared.Rent(_options.ChunkSize);
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long offset = 0;
            await using (var source = await blob.OpenAsync(ct))
            {
                while (true)
                {
                    var filled = await source.ReadAtLeastAsync(buffer.AsMemory(0, _options.ChunkSize), _options.ChunkSize, throwOnEndOfStream: false, ct);
                    if (filled == 0) break;
                    hash.AppendData(buffer, 0, filled);
                    var start = offset;
                    var end = offset + filled - 1;
                    var sent = await RetryAsync(async () =>
                    {
                        using var response = await SendAsync(repository, blob.Digest, "uploading chunk",
                            () => new HttpRequestMessage(HttpMethod.Patch, location),
                            _ =>
                            {
                                HttpContent content = new ByteArrayContent(buffer, 0, filled);
                                content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                                content.Headers.ContentLength = filled;
                                content.Headers.TryAddWithoutValidation("Content-Range", $"{start}-{end}");
                                return Task.FromResult<HttpContent?>(content);
                            }, ct);
                        if (response.StatusCode != HttpStatusCode.Accepted)
                            throw await ErrorAsync(response, repository, blob.Digest, $"uploading bytes {start}-{end} (session {uuid})", ct);
                        if (RangeEnd(response) is { } reported && reported != end)
                            throw new RegistryException(_options.Registry, repository, blob.Digest,
                                $"after bytes {start}-{end} the registry reports range 0-{reported} for upload session {uuid}");
                        return NextLocation(response, location);
                    }, ct);
                    location = sent;
                    offset += filled;
                }
            }
            var actual = "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
            if (offset != blob.Size || actual != blob.Digest)
            {
                await CancelUploadAsync(repository, blob.Digest, location, ct);
                throw new RegistryException(_options.Registry, repository, blob.Digest,
                    $"the blob's content ({offset} bytes, {actual}) does not match its description ({blob.Size} bytes); upload cancelled");
            }
            await RetryAsync(async () =>
            {
                using var response = await SendAsync(repository, blob.Digest, "completing upload",
                    () => new HttpRequestMessage(HttpMethod.Put, WithDigest(location, blob.Digest)),
                    _ => Task.FromResult<HttpContent?>(new ByteArrayContent([])), ct);
                await CheckCreatedAsync(response, repository, blob.Digest, $"completing upload session {uuid}", ct);
                return true;
            }, ct);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task<(Uri Location, string? Uuid)> StartUploadAsync(string repository, string digest, CancellationToken ct)
    {
        using var response = await SendAsync(repository, digest, "starting upload",
            () => new HttpRequestMessage(HttpMethod.Post, new Uri(_base, $"v2/{repository}/blobs/uploads/")),
            _ => Task.FromResult<HttpContent?>(new ByteArrayContent([])), ct);
        if (response.StatusCode != HttpStatusCode.Accepted)
            throw await ErrorAsync(response, repository, digest, "starting upload", ct);
        if (response.Headers.Location is null)
            throw new RegistryException(_options.Registry, repository, digest, "the registry started an upload without a Location header", response.StatusCode);
        var uuid = response.Headers.TryGetValues("Docker-Upload-UUID", out var values) ? values.FirstOrDefault() : null;
        return (NextLocation(response, response.RequestMessage!.RequestUri!), uuid);
    }

    private async Task CancelUploadAsync(string repository, string digest, Uri location, CancellationToken ct)
    {
        try
        {
            using var response = await SendAsync(repository, digest, "cancelling upload",
                () => new HttpRequestMessage(HttpMethod.Delete, location), null, ct);
        }
        catch (Exception e) when (e is RegistryException or TransientRegistryException)
        {
            Log.CancelFailed(_logger, _options.Registry, repository, digest, e.Message);
        }
    }

    private async Task<string> PutManifestAsync(RegistryImage image, CancellationToken ct)
    {
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(image.Manifest.Span));
        var bytes = image.Manifest.ToArray();
        await RetryAsync(async () =>
        {
            using var response = await SendAsync(image.Repository, digest, "putting manifest",
                () => new HttpRequestMessage(HttpMethod.Put, new Uri(_base, $"v2/{image.Repository}/manifests/{image.Tag}")),
                _ =>
                {
                    HttpContent content = new ByteArrayContent(bytes);
                    content.Headers.ContentType = new MediaTypeHeaderValue(image.ManifestMediaType);
                    return Task.FromResult<HttpContent?>(content);
                }, ct);
            await CheckCreatedAsync(response, image.Repository, digest, $"putting manifest as tag {image.Tag}", ct);
            return true;
        }, ct);
        return digest;
    }

    private async Task CheckCreatedAsync(HttpResponseMessage response, string repository, string digest, string what, CancellationToken ct)
    {
        if (response.StatusCode is not (HttpStatusCode.Created or HttpStatusCode.OK or HttpStatusCode.Accepted or HttpStatusCode.NoContent))
            throw await ErrorAsync(response, repository, digest, what, ct);
        if (response.Headers.TryGetValues("Docker-Content-Digest", out var values) && values.FirstOrDefault() is { Length: > 0 } stored
            && !string.Equals(stored, digest, StringComparison.Ordinal))
            throw new RegistryException(_options.Registry, repository, digest,
                $"{what}: the registry stored it under digest {stored}", response.StatusCode);
    }

    // ---- one request: authorization and its challenge, retries (RegistryHttp), in the push's words ----

    /// <summary>
    /// Sends a request with the authorization the registry wants; on a 401 answers the challenge and sends it once more
    /// (the request and its content are built again). A 5xx answer or a connection error becomes a
    /// <see cref="TransientRegistryException"/>; other answers are returned for the caller to judge.
    /// </summary>
    private Task<HttpResponseMessage> SendAsync(string repository, string digest, string what,
        Func<HttpRequestMessage> newRequest, Func<CancellationToken, Task<HttpContent?>>? newContent, CancellationToken ct)
        => _registry.SendAsync(newRequest, newContent, repository, $"repository:{repository}:pull,push",
            new PushFailures(this, repository, digest, what), ct);

    /// <summary>How a push words what <see cref="RegistryHttp"/> finds wrong with one of its requests.</summary>
    private sealed class PushFailures(RegistryClient client, string repository, string digest, string what) : IRegistryFailures
    {
        public RegistryException Unreachable(string method, string path, Exception error) =>
            new(client._options.Registry, repository, digest, $"{what}: {method} {path} failed: {error.Message}", inner: error);

        public RegistryException ServerFailed(RegistryAnswer answer) => client.Error(answer, repository, digest, what);

        public Exception AuthorizationRefused(RegistryAnswer answer) =>
            new RegistryAuthenticationException(client._options.Registry, repository,
                $"{what}: the registry refused the authorization it had asked for ({client._options.Credentials?.ToString() ?? "anonymous"})",
                answer.Status, answer.ErrorCode, answer.ServerMessage);
    }

    private Task<T> RetryAsync<T>(Func<Task<T>> attempt, CancellationToken ct) =>
        _registry.RetryAsync(attempt,
            (n, wait, error) => Log.Retrying(_logger, _options.Registry, n, _options.MaxAttempts, wait, error.Message),
            (n, error) => new RegistryException(error.Registry, error.Repository, error.Digest,
                $"gave up after {n} attempts: {StripPrefix(error)}", error.StatusCode, error.ErrorCode, error.ServerMessage, error),
            ct);

    /// <summary>The error the registry's answer describes (its body is read and disposed of).</summary>
    private async Task<RegistryException> ErrorAsync(HttpResponseMessage response, string repository, string? digest, string what, CancellationToken ct)
        => Error(await RegistryHttp.ReadAnswerAsync(response, ct), repository, digest, what);

    private RegistryException Error(RegistryAnswer answer, string repository, string? digest, string what) =>
        new(_options.Registry, repository, digest, $"{what}: {answer.Method} {answer.Path} answered {(int)answer.Status} {answer.Reason}",
            answer.Status, answer.ErrorCode, answer.ServerMessage);

    // ---- URLs ----

    private static Uri NextLocation(HttpResponseMessage response, Uri current)
        => response.Headers.Location is { } location ? new Uri(response.RequestMessage?.RequestUri ?? current, location) : current;

    private static Uri WithDigest(Uri location, string digest)
    {
        var builder = new UriBuilder(location);
        var query = builder.Query.TrimStart('?');
        builder.Query = (query.Length > 0 ? query + "&" : "") + "digest=" + Uri.EscapeDataString(digest);
        return builder.Uri;
    }

    private static long? RangeEnd(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Range", out var values)) return null;
        var text = values.FirstOrDefault()?.Trim() ?? "";
        if (text.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase)) text = text[6..];
        var dash = text.IndexOf('-', StringComparison.Ordinal);
        return dash > 0 && long.TryParse(text[(dash + 1)..], out var end) ? end : null;
    }

    private static string StripPrefix(RegistryException e)
    {
        var prefix = e.Digest is null ? $"{e.Registry}/{e.Repository}: " : $"{e.Registry}/{e.Repository}@{e.Digest}: ";
        var message = e.Message.StartsWith(prefix, StringComparison.Ordinal) ? e.Message[prefix.Length..] : e.Message;
        // the status and server message are added again by the new exception
        var paren = message.LastIndexOf(" (HTTP ", StringComparison.Ordinal);
        return e.StatusCode is not null && paren > 0 ? message[..paren] : message;
    }

    /// <summary>Docker Hub's API lives at registry-1.docker.io although its images are named docker.io/….</summary>
    private static string ApiHost(string registry) => registry is "docker.io" or "index.docker.io" ? "registry-1.docker.io" : registry;

    private void Validate(RegistryImage image)
    {
        if (!RegistryNames.IsRepository(image.Repository))
            throw new ArgumentException($"'{image.Repository}' is not a valid repository name", nameof(image));
        if (!RegistryNames.IsTag(image.Tag))
            throw new ArgumentException($"'{image.Tag}' is not a valid tag", nameof(image));
        if (string.IsNullOrEmpty(image.ManifestMediaType))
            throw new ArgumentException("the manifest has no media type", nameof(image));
        foreach (var blob in image.Blobs)
        {
            if (!RegistryNames.IsDigest(blob.Digest))
                throw new ArgumentException($"'{blob.Digest}' is not a sha256 digest", nameof(image));
            if (blob.Size < 0)
                throw new ArgumentException($"blob {blob.Digest} has a negative size {blob.Size}", nameof(image));
        }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>
    /// Deletes the manifest <paramref name="digest"/> of <paramref name="repository"/> (<c>DELETE
    /// /v2/&lt;repository&gt;/manifests/&lt;digest&gt;</c>; a token service is asked for the <c>delete</c> action, which
    /// distribution requires for it). True when the registry deleted it, false when it does not have it (404). A registry
    /// that does not delete (405: distribution without <c>storage.delete.enabled</c>) or does not let these credentials
    /// (401, 403) throws a <see cref="RegistryException"/> with that status. 5xx answers and connection errors are
    /// retried as a push's are.
    /// </summary>
    /// <exception cref="ArgumentException">the repository or digest is not valid</exception>
    /// <exception cref="RegistryException">the registry refused, or stayed unreachable</exception>
    public async Task<bool> DeleteManifestAsync(string repository, string digest, CancellationToken ct)
    {
        if (!RegistryNames.IsRepository(repository))
            throw new ArgumentException($"'{repository}' is not a valid repository name", nameof(repository));
        if (!RegistryNames.IsDigest(digest))
            throw new ArgumentException($"'{digest}' is not a sha256 digest", nameof(digest));
        // its own scope: a token for pull,push cannot delete
        const string what = "deleting manifest";
        return await RetryAsync(async () =>
        {
            using var response = await _registry.SendAsync(
                () => new HttpRequestMessage(HttpMethod.Delete, new Uri(_base, $"v2/{repository}/manifests/{digest}")), null,
                repository, $"repository:{repository}:delete", new PushFailures(this, repository, digest, what), ct);
            if (response.StatusCode is HttpStatusCode.Accepted or HttpStatusCode.OK or HttpStatusCode.NoContent) return true;
            if (response.StatusCode == HttpStatusCode.NotFound) return false;
            throw await ErrorAsync(response, repository, digest, what, ct);
        }, ct);
    }
}

using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Crsc.Api.Archives;
using Crsc.Configuration;
using Crsc.Controllers.Storage;
using Crsc.Storage;
using Crsc.Storage.Oci;
using Crsc.Storage.Security;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Daemon;

/// <summary>What a <see cref="CheckpointTransfer"/> may fetch from, and how this node serves what it fetched.</summary>
internal sealed record CheckpointTransferOptions
{
    /// <summary><c>host:port</c> this node's endpoint is advertised at (<see cref="CrscOptions.EffectiveImagesAdvertise"/>);
    /// empty: this node has no image endpoint, and nothing is fetched (its runtime could not pull it).</summary>
    public string LocalAdvertise { get; init; } = "";

    /// <summary>The configured registry (<c>images.registry</c>): the only host a fetch that is not from a peer may go to.</summary>
    public RegistryLocation? Registry { get; init; }

    public bool RegistryInsecure { get; init; }

    /// <summary><c>images.registryAuthFile</c>; empty: anonymous.</summary>
    public string RegistryAuthFile { get; init; } = "";

    /// <summary>This node's endpoint serves TLS (<c>images.tlsCertFile</c>); the nodes share their configuration, so a peer's
    /// endpoint on loopback does too. Beyond loopback an endpoint serves TLS only (the configuration refuses anything else).</summary>
    public bool PeersUseTls { get; init; }

    /// <summary>Retries and timeouts of a fetch (<see cref="CheckpointFetchOptions.Insecure"/> and the redirect hosts are
    /// decided per fetch; <see cref="CheckpointFetchOptions.RequireVerified"/> stays true: a restore needs this node's key).</summary>
    public CheckpointFetchOptions Fetch { get; init; } = new();

    public static CheckpointTransferOptions From(CrscOptions options) => new()
    {
        LocalAdvertise = options.EffectiveImagesAdvertise,
        Registry = RegistryLocation.TryParse(options.ImagesRegistry, out var registry, out _) ? registry : null,
        RegistryInsecure = options.RegistryInsecure,
        RegistryAuthFile = options.ImagesRegistryAuthFile,
        PeersUseTls = options.ImagesTlsCertFile.Length > 0,
    };
}

/// <summary>
/// Brings another node's checkpoint into this node's store (<see cref="ICheckpointTransfer"/>) with the
/// <see cref="CheckpointImageFetcher"/>, and names it as this node's own endpoint serves it. From a peer's endpoint the
/// call carries a crsc pull token for the image's repository; from the registry, the registry's own credentials, and only
/// to the configured <c>images.registry</c> host (no credentials, and no fetch, anywhere else). One transfer per
/// checkpoint at a time: a second call for a checkpoint in flight waits for the first and finds it in the store.
/// </summary>
internal sealed partial class CheckpointTransfer : ICheckpointTransfer
{
    private readonly DiskCheckpointStore _store;
    private readonly PullTokens _tokens;
    private readonly ImageEndpoint? _endpoint;
    private readonly EmbeddedImagePublisher? _publisher;
    private readonly CheckpointTransferOptions _options;
    private readonly TimeProvider _time;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _logger;
    private readonly Func<HttpMessageHandler>? _transport;
    private readonly Dictionary<string, Gate> _gates = new(StringComparer.Ordinal);
    private int _waiting;

    /// <param name="endpoint">this node's image endpoint; null when <c>images.listen</c> is empty</param>
    /// <param name="transport">the HTTP handler under the fetcher (tests record requests); null: sockets, the system's trust store</param>
    public CheckpointTransfer(DiskCheckpointStore store, StoreImageRegistry registry, PullTokens tokens, ImageEndpoint? endpoint,
        CheckpointTransferOptions options, TimeProvider time, ILoggerFactory? loggers = null, Func<HttpMessageHandler>? transport = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(options);
        _store = store;
        _tokens = tokens;
        _endpoint = endpoint;
        _options = options;
        _time = time;
        _loggers = loggers ?? NullLoggerFactory.Instance;
        _logger = _loggers.CreateLogger<CheckpointTransfer>();
        _transport = transport;
        _publisher = endpoint is null || options.LocalAdvertise.Length == 0
            ? null
            : new EmbeddedImagePublisher(registry, options.LocalAdvertise, _loggers.CreateLogger<EmbeddedImagePublisher>());
    }

    /// <summary>Callers waiting for a transfer of the same checkpoint to end (tests watch it).</summary>
    internal int Waiting => Volatile.Read(ref _waiting);

    /// <summary>As a singleton of the daemon, beside the store and the image endpoint (<see cref="ImageEndpoint.Register"/> first).</summary>
    public static void Register(IServiceCollection services, CrscOptions options)
    {
        services.AddSingleton<ICheckpointTransfer>(sp => new CheckpointTransfer(sp.GetRequiredService<DiskCheckpointStore>(),
            sp.GetRequiredService<StoreImageRegistry>(), sp.GetRequiredService<PullTokens>(), sp.GetService<ImageEndpoint>(),
            CheckpointTransferOptions.From(options), sp.GetRequiredService<TimeProvider>(), sp.GetService<ILoggerFactory>()));
    }

    public async Task<CheckpointTransferResult> FetchAsync(CheckpointTransferRequest request, IProgress<long>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(request);
        var image = request.ImageReference;
        if (!ImageReference.TryParse(image, out var reference, out var problem))
            throw new CheckpointTransferException(image, $"cannot fetch checkpoint image '{image}': it {problem}", refused: true);
        if (reference.Domain is null)
            throw new CheckpointTransferException(image, $"cannot fetch checkpoint image {image}: the reference names no registry host", refused: true);
        // this node must serve what it fetches: its runtime pulls the checkpoint image from its own endpoint
        if (_publisher is null)
            throw new CheckpointTransferException(image,
                $"cannot fetch checkpoint image {image}: this node has no image endpoint (images.listen is empty); restore-from needs images.listen on the target node, whose runtime pulls the checkpoint from it",
                refused: true);
        if (!_endpoint!.Serving)
            throw new CheckpointTransferException(image,
                $"cannot fetch checkpoint image {image}: this node's image endpoint is not serving (it could not listen: see the 'images' component of /readyz)",
                refused: false);
        var (credentials, insecure) = Source(image, reference, request.FromPeer);

        Held? held = null;
        try
        {
            if (request.CheckpointId is { } expected)
            {
                held = await LockAsync(expected, ct).ConfigureAwait(false);
                if (_store.Get(expected) is { } present)
                    return await ResultAsync(image, present, alreadyPresent: true, ct).ConfigureAwait(false);
            }
            var probe = new ManifestProbe(this, request.CheckpointId, _options.Fetch.MaxManifestBytes, Transport());
            CheckpointInfo info;
            try
            {
                using var fetcher = new CheckpointImageFetcher(_store, _options.Fetch with { Insecure = insecure, RequireVerified = true },
                    _time, _loggers.CreateLogger<CheckpointImageFetcher>(), probe);
                info = await fetcher.FetchAsync(image, request.CheckpointId, credentials, progress, ct).ConfigureAwait(false);
            }
            catch (CheckpointFetchException e)
            {
                var refused = e.Refused;
                // a peer refuses the tokens of a node whose key is not its own: the usual cause is a cluster without a shared key
                var message = request.FromPeer && e.InnerException is RegistryException { StatusCode: HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden }
                    ? e.Message + " (crsc nodes fetch from each other with tokens of the key they share: set security.keySecret to the same Secret on every node)"
                    : e.Message;
                Log.Failed(_logger, image, refused, message);
                throw new CheckpointTransferException(image, message, refused, e);
            }
            finally
            {
                held ??= probe.Held;
            }
            return await ResultAsync(image, info, probe.Present, ct).ConfigureAwait(false);
        }
        finally
        {
            held?.Dispose();
        }
    }

    /// <summary>The credentials the fetch carries and whether it speaks plain HTTP; refuses any registry host but the
    /// configured one before a byte is sent.</summary>
    private (RegistryCredentials? Credentials, bool Insecure) Source(string image, ImageReference reference, bool fromPeer)
    {
        var host = reference.Domain!;
        var isRegistry = _options.Registry is { } r && string.Equals(r.Host, host, StringComparison.OrdinalIgnoreCase);
        if (fromPeer)
        {
            // crsc's pull tokens go to crsc's endpoints only, never to the registry
            if (isRegistry)
                throw new CheckpointTransferException(image,
                    $"cannot fetch checkpoint image {image} from a peer: {host} is the configured registry (images.registry), which gets no crsc pull token",
                    refused: true);
            return (CheckpointImageFetcher.PeerCredentials(_tokens, reference.Path), IsLoopback(host) && !_options.PeersUseTls);
        }
        if (!isRegistry)
            throw new CheckpointTransferException(image, _options.Registry is null
                    ? $"cannot fetch checkpoint image {image} from a registry: no registry is configured (images.registry)"
                    : $"cannot fetch checkpoint image {image}: {host} is not the configured registry {_options.Registry.Host} (images.registry); its credentials go nowhere else",
                refused: true);
        if (_options.RegistryAuthFile.Length == 0) return (null, _options.RegistryInsecure);
        try
        {
            return (Crsc.Storage.Oci.RegistryAuthFile.Load(_options.RegistryAuthFile, host), _options.RegistryInsecure);
        }
        catch (RegistryAuthFileException e)
        {
            throw new CheckpointTransferException(image, $"cannot fetch checkpoint image {image}: {e.Message} (images.registryAuthFile)", refused: false, e);
        }
    }

    private static bool IsLoopback(string host)
    {
        var colon = host.LastIndexOf(':');
        var name = colon > 0 && !host.EndsWith(']') ? host[..colon] : host;
        return name == "localhost" || (IPAddress.TryParse(name.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
    }

    /// <summary>
    /// The result for checkpoint <paramref name="info"/> of this node's store, named as this node's endpoint serves it.
    /// A checkpoint the store held already counts only when its manifest verifies with this node's key: one unsigned or
    /// of another key (taken in by a fetch that did not require this key, or copied in by hand) is what a restore refuses
    /// (<c>ArchiveNotAuthentic</c>), and a fetch does not replace it (the store deletes no checkpoint to import one; a
    /// checkpoint of the same id and archive is returned as it is): refused, naming it, for the operator to delete.
    /// </summary>
    private async Task<CheckpointTransferResult> ResultAsync(string image, CheckpointInfo info, bool alreadyPresent, CancellationToken ct)
    {
        if (info.Authenticity != CheckpointAuthenticity.Verified)
        {
            var message = $"cannot fetch checkpoint image {image}: this node's store holds checkpoint {info.Id} already, and it is not one this node's key vouches for ({info.AuthenticityProblem ?? info.Authenticity.ToString()}): a restore would refuse it, and a fetch does not replace a checkpoint the store holds; delete checkpoint {info.Id} from this node's store for the fetch to bring it again";
            Log.Failed(_logger, image, true, message);
            throw new CheckpointTransferException(image, message, refused: true);
        }
        if (alreadyPresent) Log.AlreadyPresent(_logger, image, info.Id);
        else Log.Fetched(_logger, image, info.Id, info.Size);
        string? local;
        try { local = await _publisher!.PublishAsync(info, ct).ConfigureAwait(false); }
        catch (CheckpointImageException e)
        {
            throw new CheckpointTransferException(image, $"checkpoint image {image} is in this node's store as {info.Id}, but {e.Message}", refused: true, e);
        }
        return new CheckpointTransferResult(local!, info.Id, info.Size, alreadyPresent);
    }

    private HttpMessageHandler Transport() => _transport?.Invoke() ?? new SocketsHttpHandler
    {
        ConnectTimeout = _options.Fetch.ConnectTimeout,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        AutomaticDecompression = DecompressionMethods.None,
        AllowAutoRedirect = false, // the fetcher decides which redirect to follow
    };

    /// <summary>Holds the transfer of checkpoint <paramref name="id"/> (waits while another call holds it).</summary>
    private async Task<Held> LockAsync(string id, CancellationToken ct)
    {
        Gate gate;
        lock (_gates)
        {
            if (!_gates.TryGetValue(id, out gate!)) _gates[id] = gate = new Gate();
            gate.Users++;
        }
        try
        {
            if (!gate.Lock.Wait(0))
            {
                Interlocked.Increment(ref _waiting);
                try { await gate.Lock.WaitAsync(ct).ConfigureAwait(false); }
                finally { Interlocked.Decrement(ref _waiting); }
            }
        }
        catch
        {
            Leave(id, gate);
            throw;
        }
        return new Held(this, id, gate);
    }

    private void Leave(string id, Gate gate)
    {
        lock (_gates)
            if (--gate.Users == 0) _gates.Remove(id);
    }

    private sealed class Gate
    {
        public readonly SemaphoreSlim Lock = new(1, 1);
        public int Users;
    }

    private sealed class Held(CheckpointTransfer owner, string id, Gate gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 1) return;
            gate.Lock.Release();
            owner.Leave(id, gate);
        }
    }

    /// <summary>
    /// Reads the checkpoint id of the image's manifest as it arrives (annotation <see cref="CheckpointImageAnnotations.CrscCheckpointId"/>),
    /// before the fetcher streams the archive into the store: the transfer of that checkpoint is held (a second call
    /// waits), and whether the store has it already is noted (the store then returns it without reading the blob).
    /// Everything about the manifest (its digest, schema, MAC, and the id expected) is the fetcher's to check: a manifest
    /// of another id than the one expected is left to it to refuse.
    /// </summary>
    private sealed class ManifestProbe(CheckpointTransfer owner, string? expectedId, int maxBytes, HttpMessageHandler inner)
        : DelegatingHandler(inner)
    {
        public Held? Held { get; private set; }
        public bool Present { get; private set; }
        private string? _id;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            var response = await base.SendAsync(request, ct).ConfigureAwait(false);
            if (_id is not null || request.Method != HttpMethod.Get || response.StatusCode != HttpStatusCode.OK
                || request.RequestUri?.AbsolutePath.Contains("/manifests/", StringComparison.Ordinal) != true
                || response.Content.Headers.ContentType?.MediaType != OciMediaTypes.ImageManifest
                || response.Content.Headers.ContentLength > maxBytes)
                return response;
            byte[] body;
            try { body = await ReadAsync(response, ct).ConfigureAwait(false); }
            catch
            {
                response.Dispose();
                throw;
            }
            var replaced = new ByteArrayContent(body);
            foreach (var header in response.Content.Headers)
                if (!string.Equals(header.Key, "Content-Length", StringComparison.OrdinalIgnoreCase))
                    replaced.Headers.TryAddWithoutValidation(header.Key, header.Value);
            response.Content.Dispose();
            response.Content = replaced;
            // the fetcher refuses these
            if (body.Length > maxBytes || IdOf(body) is not { } id || (expectedId is not null && id != expectedId)) return response;
            _id = id;
            // with an expected id the caller holds that checkpoint's transfer already
            if (expectedId is null) Held ??= await owner.LockAsync(id, ct).ConfigureAwait(false);
            Present = owner._store.Get(id) is not null;
            return response;
        }

        private async Task<byte[]> ReadAsync(HttpResponseMessage response, CancellationToken ct)
        {
            await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            var buffer = new MemoryStream();
            var chunk = new byte[16 << 10];
            int n;
            while ((n = await stream.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
            {
                buffer.Write(chunk, 0, n);
                if (buffer.Length > maxBytes) break;
            }
            return buffer.ToArray();
        }

        private static string? IdOf(byte[] body)
        {
            try
            {
                using var json = JsonDocument.Parse(body);
                return json.RootElement.ValueKind == JsonValueKind.Object
                       && json.RootElement.TryGetProperty("annotations", out var a) && a.ValueKind == JsonValueKind.Object
                       && a.TryGetProperty(CheckpointImageAnnotations.CrscCheckpointId, out var id) && id.ValueKind == JsonValueKind.String
                    ? id.GetString()
                    : null;
            }
            catch (JsonException)
            {
                return null;
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(71701, LogLevel.Information, "Checkpoint {Id} fetched from {Image} into the store ({Bytes} bytes)")]
        public static partial void Fetched(ILogger logger, string image, string id, long bytes);

        [LoggerMessage(71702, LogLevel.Information, "Checkpoint {Id} of {Image} is in the store already; nothing fetched")]
        public static partial void AlreadyPresent(ILogger logger, string image, string id);

        [LoggerMessage(71703, LogLevel.Warning, "Fetching {Image} failed (refused: {Refused}): {Reason}")]
        public static partial void Failed(ILogger logger, string image, bool refused, string reason);
    }
}

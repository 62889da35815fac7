using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Storage.Oci;

/// <summary>
/// Publishes checkpoint images to a registry (<c>images.registry</c>): writes the image of the committed checkpoint
/// (<see cref="CheckpointImageWriter"/>) and pushes its config, the stored archive as its one layer (read from the store
/// as it is on disk, checked against its digest while it streams) and its manifest under the checkpoint id as tag.
/// Returns <c>&lt;host&gt;/&lt;repository&gt;@sha256:…</c>. The repository is the image's <c>crsc/&lt;ns&gt;/&lt;workload&gt;/&lt;container&gt;</c>
/// with <c>crsc</c> replaced by the configured prefix, when there is one (<c>registry.example/team</c> →
/// <c>team/&lt;ns&gt;/&lt;workload&gt;/&lt;container&gt;</c>). A blob the registry has already (an archive pushed under
/// another tag) is not sent again.
/// </summary>
public sealed class RegistryPushPublisher : ICheckpointImagePublisher
{
    private readonly ICheckpointStore _store;
    private readonly RegistryClient _client;
    private readonly RegistryLocation _location;
    private readonly CheckpointImagePlatform _platform;
    private readonly ILogger _logger;

    /// <param name="location">the registry's host (it must be the one <paramref name="client"/> talks to) and prefix</param>
    public RegistryPushPublisher(ICheckpointStore store, RegistryClient client, RegistryLocation location,
        CheckpointImagePlatform? platform = null, ILogger<RegistryPushPublisher>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(location);
        if (!string.Equals(client.Registry, location.Host, StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"the registry client talks to {client.Registry}, not to {location.Host}", nameof(location));
        _store = store;
        _client = client;
        _location = location;
        _platform = platform ?? CheckpointImagePlatform.Current;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>The repository in the registry for an image repository <c>crsc/&lt;ns&gt;/&lt;workload&gt;/&lt;container&gt;</c>.</summary>
    public string RepositoryFor(string imageRepository)
    {
        var prefix = CheckpointImageNames.RepositoryPrefix + "/";
        if (_location.Prefix.Length == 0 || !imageRepository.StartsWith(prefix, StringComparison.Ordinal)) return _location.Repository(imageRepository);
        return _location.Repository(imageRepository[prefix.Length..]);
    }

    /// <exception cref="CheckpointImageException">the checkpoint cannot be made into an image, or its name is too long</exception>
    /// <exception cref="RegistryException">the push failed (names registry, repository, digest and the registry's error)</exception>
    public async Task<string?> PublishAsync(CheckpointInfo checkpoint, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var image = CheckpointImageWriter.Write(checkpoint, _platform);
        var repository = RepositoryFor(image.Repository);
        var nameLength = _location.Host.Length + 1 + repository.Length;
        if (nameLength > CheckpointImageNames.MaxNameLength)
            throw new CheckpointImageException(checkpoint.Id,
                $"image name {_location.Host}/{repository} of checkpoint {checkpoint.Id} is {nameLength} characters, over the {CheckpointImageNames.MaxNameLength} a runtime accepts");
        var config = image.ConfigBytes;
        var id = checkpoint.Id;
        var push = new RegistryImage(repository, image.Tag,
        [
            new RegistryBlob(image.Config.Digest, image.Config.Size, image.Config.MediaType,
                _ => Task.FromResult<Stream>(new MemoryStream(config, writable: false))),
            new RegistryBlob(image.Layer.Digest, image.Layer.Size, image.Layer.MediaType, token => _store.OpenStoredAsync(id, token)),
        ], image.ManifestBytes, image.Manifest.MediaType);
        var result = await _client.PushAsync(push, ct);
        if (result.ManifestDigest != image.Manifest.Digest)
            throw new RegistryException(_client.Registry, repository, image.Manifest.Digest,
                $"the pushed manifest has digest {result.ManifestDigest}, not the image's");
        Log.PushedCheckpoint(_logger, id, result.Reference, result.BlobsUploaded, result.BytesUploaded);
        return result.Reference;
    }
}

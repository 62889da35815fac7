using System.Net;
using Crsc.Controllers.Storage;

namespace Crsc.Storage.Oci;

/// <summary>
/// The registry as the target of checkpoint replicas (<c>images.registryMode: replicate</c>): pushes with
/// <see cref="RegistryPushPublisher"/> (the same image, repository and tag a published checkpoint gets) and deletes
/// manifests by digest with <see cref="RegistryClient.DeleteManifestAsync"/>. It holds the references by digest in its
/// host under its prefix: those are the ones it pushed.
/// </summary>
public sealed class RegistryReplicaTarget : ICheckpointReplicaTarget
{
    private readonly RegistryPushPublisher _publisher;
    private readonly RegistryClient _client;
    private readonly RegistryLocation _location;

    /// <param name="publisher">pushes to <paramref name="location"/> through <paramref name="client"/></param>
    public RegistryReplicaTarget(RegistryPushPublisher publisher, RegistryClient client, RegistryLocation location)
    {
        ArgumentNullException.ThrowIfNull(publisher);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(location);
        if (!string.Equals(client.Registry, location.Host, StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"the registry client talks to {client.Registry}, not to {location.Host}", nameof(location));
        _publisher = publisher;
        _client = client;
        _location = location;
    }

    public string Registry => _location.ToString();

    public async Task<string> PushAsync(CheckpointInfo checkpoint, CancellationToken ct) =>
        await _publisher.PublishAsync(checkpoint, ct).ConfigureAwait(false)
        ?? throw new InvalidOperationException($"pushing checkpoint {checkpoint.Id} to {Registry} returned no reference");

    public bool Holds(string imageReference) => Parse(imageReference) is not null;

    public async Task<ReplicaDeletion> DeleteAsync(string imageReference, CancellationToken ct)
    {
        var reference = Parse(imageReference)
            ?? throw new ArgumentException($"'{imageReference}' is not an image by digest in registry {Registry}", nameof(imageReference));
        try
        {
            return await _client.DeleteManifestAsync(reference.Path, reference.Digest!, ct).ConfigureAwait(false)
                ? ReplicaDeletion.Deleted
                : ReplicaDeletion.AlreadyGone;
        }
        catch (RegistryException e) when (e.StatusCode is HttpStatusCode.MethodNotAllowed or HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
        {
            return ReplicaDeletion.NotAllowed;
        }
    }

    private ImageReference? Parse(string? imageReference)
    {
        if (!ImageReference.TryParse(imageReference, out var reference, out _) || reference.Digest is null) return null;
        if (!string.Equals(reference.Domain, _location.Host, StringComparison.OrdinalIgnoreCase)) return null;
        if (_location.Prefix.Length > 0 && !reference.Path.StartsWith(_location.Prefix + "/", StringComparison.Ordinal)) return null;
        return reference;
    }
}

using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Storage.Oci;

/// <summary>
/// Publishes on the node's own read-only endpoint (<c>images.listen</c>): the image is served from the store as soon
/// as the checkpoint is committed, so publishing is only naming it — <c>&lt;advertise&gt;/crsc/&lt;ns&gt;/&lt;workload&gt;/&lt;container&gt;@sha256:&lt;manifest digest&gt;</c>
/// (by digest: the reference a runtime pulls is immutable). Null when no address is advertised (images off).
/// </summary>
public sealed class EmbeddedImagePublisher : ICheckpointImagePublisher
{
    private readonly StoreImageRegistry _registry;
    private readonly string? _advertise;
    private readonly ILogger _logger;

    /// <param name="advertise"><c>host:port</c> runtimes reach the endpoint at; null or empty: images are off</param>
    public EmbeddedImagePublisher(StoreImageRegistry registry, string? advertise, ILogger<EmbeddedImagePublisher>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        if (!string.IsNullOrEmpty(advertise) && !IsHostPort(advertise))
            throw new ArgumentException($"advertised image endpoint '{advertise}' is not HOST:PORT", nameof(advertise));
        _registry = registry;
        _advertise = string.IsNullOrEmpty(advertise) ? null : advertise;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    public Task<string?> PublishAsync(CheckpointInfo checkpoint, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ct.ThrowIfCancellationRequested();
        if (_advertise is null) return Task.FromResult<string?>(null);
        var image = _registry.ImageOf(checkpoint);
        var reference = $"{_advertise}/{image.Repository}@{image.Manifest.Digest}";
        var nameLength = _advertise.Length + 1 + image.Repository.Length;
        if (nameLength > CheckpointImageNames.MaxNameLength)
            throw new CheckpointImageException(checkpoint.Id,
                $"image name {_advertise}/{image.Repository} of checkpoint {checkpoint.Id} is {nameLength} characters, over the {CheckpointImageNames.MaxNameLength} a runtime accepts");
        Log.Published(_logger, checkpoint.Id, reference);
        return Task.FromResult<string?>(reference);
    }

    /// <summary>The domain part of an image reference: <c>host:port</c> (a DNS name, an IPv4 address or <c>[IPv6]</c>).</summary>
    public static bool IsHostPort(string value)
    {
        var colon = value.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(value.AsSpan(colon + 1), System.Globalization.NumberStyles.None, null, out var port) || port is < 1 or > 65535)
            return false;
        var host = value[..colon];
        if (host.StartsWith('[') && host.EndsWith(']')) return System.Net.IPAddress.TryParse(host[1..^1], out _);
        return host.Split('.').All(l => l.Length is > 0 and <= 63 && l.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '-') && l[0] != '-' && l[^1] != '-');
    }
}

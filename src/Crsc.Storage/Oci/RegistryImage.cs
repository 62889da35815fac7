using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace Crsc.Storage.Oci;

/// <summary>
/// One blob of an image to push: its content address and a way to read it. <see cref="OpenAsync"/> may be called
/// more than once (a retried upload reads the blob again from the start); the stream is read forward only.
/// </summary>
public sealed record RegistryBlob(string Digest, long Size, string MediaType, Func<CancellationToken, Task<Stream>> OpenAsync);

/// <summary>
/// An image as the registry client pushes it: the blobs the manifest refers to (config and layers) and the manifest
/// bytes exactly as they are to be stored (their sha256 is the manifest digest).
/// </summary>
/// <param name="Repository">the repository inside the registry, e.g. <c>crsc/default/web</c></param>
/// <param name="Tag">the tag the manifest is stored under</param>
public sealed record RegistryImage(
    string Repository,
    string Tag,
    IReadOnlyList<RegistryBlob> Blobs,
    ReadOnlyMemory<byte> Manifest,
    string ManifestMediaType);

/// <param name="Reference"><c>&lt;registry&gt;/&lt;repository&gt;@sha256:…</c>, what a runtime pulls</param>
public sealed record RegistryPushResult(
    string Reference,
    string ManifestDigest,
    int BlobsUploaded,
    int BlobsSkipped,
    long BytesUploaded);

/// <summary>
/// Credentials for one registry: a user name and password (basic auth, or basic auth at the token service), or an
/// identity token (an OAuth2 refresh token exchanged at the token service). <see cref="ToString"/> hides secrets.
/// </summary>
public sealed record RegistryCredentials(string? Username, string? Password, string? IdentityToken = null)
{
    public bool HasPassword => !string.IsNullOrEmpty(Username) && Password is not null;

    public override string ToString()
        => IdentityToken is not null ? "identity token" : $"user '{Username}'";
}

/// <summary>How a <see cref="RegistryClient"/> talks to its registry.</summary>
public sealed record RegistryClientOptions
{
    /// <summary><c>host[:port]</c> of the registry (as written in image references).</summary>
    public required string Registry { get; init; }

    /// <summary>Plain HTTP instead of HTTPS (<c>images.registryInsecure</c>).</summary>
    public bool Insecure { get; init; }

    /// <summary>Null: anonymous (a token service may still hand out anonymous tokens).</summary>
    public RegistryCredentials? Credentials { get; init; }

    /// <summary>Blobs larger than this are uploaded in chunks (PATCH), smaller ones in one PUT.</summary>
    public long ChunkedUploadThreshold { get; init; } = 64L << 20;

    /// <summary>Bytes per PATCH of a chunked upload; one chunk is held in memory at a time.</summary>
    public int ChunkSize { get; init; } = 8 << 20;

    /// <summary>Tries of one request (or of one monolithic upload) on 5xx answers and connection errors.</summary>
    public int MaxAttempts { get; init; } = 5;

    public TimeSpan RetryInitialDelay { get; init; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan RetryMaxDelay { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Connecting to the registry or its token service gives up after this long (a retryable error).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>Names and digests as the OCI distribution spec allows them.</summary>
public static partial class RegistryNames
{
    public static bool IsRepository(string? value) => value is { Length: > 0 and <= 255 } && RepositoryPattern().IsMatch(value);
    public static bool IsTag(string? value) => value is not null && TagPattern().IsMatch(value);
    public static bool IsDigest(string? value) => value is not null && DigestPattern().IsMatch(value);

    /// <summary><c>host</c>, <c>host:port</c>, <c>[v6]:port</c>; no scheme, no path.</summary>
    public static bool IsHost(string? value) => value is { Length: > 0 and <= 255 } && HostPattern().IsMatch(value);

    [GeneratedRegex(@"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\z", RegexOptions.CultureInvariant)]
    private static partial Regex RepositoryPattern();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\z", RegexOptions.CultureInvariant)]
    private static partial Regex TagPattern();

    [GeneratedRegex(@"^sha256:[a-f0-9]{64}\z", RegexOptions.CultureInvariant)]
    private static partial Regex DigestPattern();

    [GeneratedRegex(@"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)(:[0-9]{1,5})?\z", RegexOptions.CultureInvariant)]
    private static partial Regex HostPattern();
}

/// <summary>
/// <c>images.registry</c>: <c>host[:port]</c> optionally followed by <c>/prefix</c>, the repository path under which
/// crsc pushes (e.g. <c>registry.example:5000/crsc</c>).
/// </summary>
public sealed record RegistryLocation(string Host, string Prefix)
{
    /// <exception cref="FormatException">the value is not <c>host[:port][/prefix]</c> (names the value)</exception>
    public static RegistryLocation Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return TryParse(value, out var location, out var problem) ? location : throw new FormatException($"'{value}' {problem}");
    }

    /// <param name="problem">why the value is not valid (without the value itself)</param>
    public static bool TryParse(string value, [NotNullWhen(true)] out RegistryLocation? location, [NotNullWhen(false)] out string? problem)
    {
        location = null;
        problem = null;
        if (value.Contains("://", StringComparison.Ordinal))
        {
            problem = "must be host[:port][/prefix] without a scheme (plain HTTP is images.registryInsecure)";
            return false;
        }
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        var host = slash < 0 ? value : value[..slash];
        var prefix = slash < 0 ? "" : value[(slash + 1)..].TrimEnd('/');
        if (!RegistryNames.IsHost(host))
            problem = $"must be host[:port][/prefix]: '{host}' is not a registry host[:port]";
        else if (host.LastIndexOf(':') is var colon and > 0 && !host.EndsWith(']') && (!int.TryParse(host[(colon + 1)..], out var port) || port is < 1 or > 65535))
            problem = $"must be host[:port][/prefix]: the port of '{host}' is not between 1 and 65535";
        else if (prefix.Length > 0 && !RegistryNames.IsRepository(prefix))
            problem = $"must be host[:port][/prefix]: '{prefix}' is not a repository path (lower-case letters, digits, '.', '_', '-' between '/')";
        else
            location = new RegistryLocation(host, prefix);
        return location is not null;
    }

    /// <summary>The repository for <paramref name="path"/> under the prefix.</summary>
    public string Repository(string path) => Prefix.Length == 0 ? path : $"{Prefix}/{path}";

    public override string ToString() => Prefix.Length == 0 ? Host : $"{Host}/{Prefix}";
}

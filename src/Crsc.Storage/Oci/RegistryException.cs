using System.Net;

namespace Crsc.Storage.Oci;

/// <summary>
/// A push to a registry failed. The message names the registry, the repository, the blob or manifest digest and, when
/// the registry answered, its HTTP status and OCI error code and message.
/// </summary>
public class RegistryException : Exception
{
    public RegistryException(string registry, string repository, string? digest, string message,
        HttpStatusCode? status = null, string? errorCode = null, string? serverMessage = null, Exception? inner = null)
        : base(Describe(registry, repository, digest, message, status, errorCode, serverMessage), inner)
    {
        Registry = registry;
        Repository = repository;
        Digest = digest;
        StatusCode = status;
        ErrorCode = errorCode;
        ServerMessage = serverMessage;
    }

    public string Registry { get; }
    public string Repository { get; }
    /// <summary>The blob or manifest concerned, when there is one.</summary>
    public string? Digest { get; }
    public HttpStatusCode? StatusCode { get; }
    /// <summary>The OCI error code (<c>DIGEST_INVALID</c>, <c>UNAUTHORIZED</c>…) the registry sent.</summary>
    public string? ErrorCode { get; }
    public string? ServerMessage { get; }

    private static string Describe(string registry, string repository, string? digest, string message,
        HttpStatusCode? status, string? errorCode, string? serverMessage)
    {
        var what = digest is null ? $"{registry}/{repository}" : $"{registry}/{repository}@{digest}";
        var text = $"{what}: {message}";
        if (status is { } s) text += $" (HTTP {(int)s}";
        if (errorCode is not null) text += $" {errorCode}";
        if (serverMessage is { Length: > 0 }) text += $": {serverMessage}";
        if (status is not null) text += ")";
        return text;
    }
}

/// <summary>The registry or its token service refused the credentials (or wanted some and none were configured).</summary>
public sealed class RegistryAuthenticationException(string registry, string repository, string message,
    HttpStatusCode? status = null, string? errorCode = null, string? serverMessage = null)
    : RegistryException(registry, repository, null, message, status, errorCode, serverMessage);

/// <summary>A 5xx answer or a connection error: worth another try after a backoff.</summary>
internal sealed class TransientRegistryException(RegistryException error) : Exception(error.Message, error)
{
    public RegistryException Error { get; } = error;
}

using System.Security.Cryptography;

namespace Crsc.Storage.Oci;

/// <summary>Content digests as OCI writes them: <c>sha256:&lt;64 lower-case hex&gt;</c>, the only algorithm crsc uses.</summary>
public static class OciDigest
{
    public const string Sha256Prefix = "sha256:";

    public static string Of(ReadOnlySpan<byte> content) => Sha256Prefix + Convert.ToHexStringLower(SHA256.HashData(content));

    /// <summary>True for exactly <c>sha256:</c> followed by 64 lower-case hex digits.</summary>
    public static bool IsSha256(string? value) =>
        value is { Length: 71 } && value.StartsWith(Sha256Prefix, StringComparison.Ordinal)
        && !value.AsSpan(Sha256Prefix.Length).ContainsAnyExcept("0123456789abcdef");

    /// <summary>
    /// Has the digest grammar of the OCI image spec (<c>algorithm ":" encoded</c>); such a value that is not a valid
    /// sha256 digest names content this endpoint cannot have.
    /// </summary>
    public static bool LooksLikeDigest(string value) => value.Contains(':', StringComparison.Ordinal);
}

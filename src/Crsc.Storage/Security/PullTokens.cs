using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Crsc.Storage.Security;

/// <summary>Why a pull token was not accepted.</summary>
public enum PullTokenVerdict { Valid, Malformed, BadSignature, Expired, OtherRepository }

/// <summary>
/// Short-lived bearer tokens for the image endpoint: each lets its holder pull one repository
/// (<c>crsc/&lt;ns&gt;/&lt;workload&gt;/&lt;container&gt;</c>) until it expires, nothing else. A node agent mints one per
/// restore and hands it to the runtime as the pull credential of that image only; the endpoint that serves the
/// repository checks it with the same key (the node key, or the cluster's shared key). Nothing is stored: a token is
/// <c>crsc1.&lt;payload&gt;.&lt;mac&gt;</c>, base64url, the payload holding expiry (unix seconds), a random nonce and the
/// repository, the MAC an HMAC-SHA256 over the payload with a key derived for this use alone.
/// </summary>
public sealed class PullTokens
{
    public const string Prefix = "crsc1.";
    /// <summary>The user name a runtime sends with a token as password (Basic auth); any name is accepted.</summary>
    public const string UserName = "crsc-restore";
    public static readonly TimeSpan DefaultLifetime = TimeSpan.FromMinutes(15);
    public static readonly TimeSpan MaxLifetime = TimeSpan.FromHours(24);
    private const int MaxTokenLength = 1024;
    private readonly byte[] _key;
    private readonly TimeProvider _time;

    public PullTokens(NodeKey key, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        _key = key.Derive("crsc image pull token v1");
        _time = time ?? TimeProvider.System;
    }

    /// <summary>A token for pulling <paramref name="repository"/> during <paramref name="lifetime"/> from now.</summary>
    public string Mint(string repository, TimeSpan? lifetime = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(repository);
        var life = lifetime ?? DefaultLifetime;
        if (life <= TimeSpan.Zero || life > MaxLifetime)
            throw new ArgumentOutOfRangeException(nameof(lifetime), life, $"a pull token lives more than 0 and at most {MaxLifetime}");
        var name = Encoding.UTF8.GetBytes(repository);
        var payload = new byte[8 + 8 + name.Length];
        BinaryPrimitives.WriteInt64BigEndian(payload, (_time.GetUtcNow() + life).ToUnixTimeSeconds());
        RandomNumberGenerator.Fill(payload.AsSpan(8, 8));
        name.CopyTo(payload, 16);
        return Prefix + Base64Url(payload) + "." + Base64Url(HMACSHA256.HashData(_key, payload));
    }

    /// <summary>Whether <paramref name="token"/> lets its holder pull <paramref name="repository"/> now; null repository:
    /// only whether the token is genuine and unexpired (the <c>/v2/</c> version check).</summary>
    public PullTokenVerdict Check(string? token, string? repository) => Check(token, repository, out _);

    /// <param name="covered">the repository a genuine, unexpired token covers (for messages), else null</param>
    public PullTokenVerdict Check(string? token, string? repository, out string? covered)
    {
        covered = null;
        if (token is null || token.Length > MaxTokenLength || !token.StartsWith(Prefix, StringComparison.Ordinal)) return PullTokenVerdict.Malformed;
        var parts = token[Prefix.Length..].Split('.');
        if (parts.Length != 2 || !TryBase64Url(parts[0], out var payload) || !TryBase64Url(parts[1], out var mac) || payload.Length <= 16)
            return PullTokenVerdict.Malformed;
        if (!CryptographicOperations.FixedTimeEquals(HMACSHA256.HashData(_key, payload), mac)) return PullTokenVerdict.BadSignature;
        var expires = BinaryPrimitives.ReadInt64BigEndian(payload);
        if (_time.GetUtcNow().ToUnixTimeSeconds() >= expires) return PullTokenVerdict.Expired;
        covered = Encoding.UTF8.GetString(payload.AsSpan(16));
        return repository is null || covered == repository ? PullTokenVerdict.Valid : PullTokenVerdict.OtherRepository;
    }

    /// <summary>The repository a genuine token covers (for messages), or null.</summary>
    public string? RepositoryOf(string token) => Check(token, null, out var covered) == PullTokenVerdict.Valid ? covered : null;

    private static string Base64Url(ReadOnlySpan<byte> bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);

    private static bool TryBase64Url(string text, out byte[] bytes)
    {
        bytes = [];
        if (text.Length == 0 || !System.Buffers.Text.Base64Url.IsValid(text)) return false;
        bytes = System.Buffers.Text.Base64Url.DecodeFromChars(text);
        return true;
    }
}

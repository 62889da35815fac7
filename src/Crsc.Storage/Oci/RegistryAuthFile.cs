using System.Text;
using System.Text.Json;

namespace Crsc.Storage.Oci;

/// <summary>The registry auth file is unusable: the message names the file and what is wrong with it.</summary>
public sealed class RegistryAuthFileException(string path, string problem)
    : Exception($"registry auth file {path} {problem}")
{
    public string Path { get; } = path;
    public string Problem { get; } = problem;
}

/// <summary>
/// <c>images.registryAuthFile</c>: a docker-config-style JSON file,
/// <c>{"auths":{"host:port":{"auth":"base64(user:password)"}}}</c> (or <c>username</c>/<c>password</c>, or
/// <c>identitytoken</c>). It holds secrets, so it must be a regular file (not a link) owned by crsc's user and not
/// readable or writable by group or others (0600).
/// Keys may carry a scheme and a path (<c>https://host/v1/</c>); they are matched by host[:port].
/// </summary>
public static class RegistryAuthFile
{
    /// <summary>The credentials for <paramref name="registryHost"/>, or null when the file has no entry for it.</summary>
    /// <exception cref="RegistryAuthFileException">missing, too open, not JSON, or an entry is malformed</exception>
    public static RegistryCredentials? Load(string path, string registryHost)
    {
        var entries = Read(path);
        var wanted = Normalize(registryHost);
        foreach (var (key, credentials) in entries)
            if (Normalize(key) == wanted) return credentials;
        return null;
    }

    /// <summary>Every entry of the file by its key (after the same checks as <see cref="Load"/>).</summary>
    /// <exception cref="RegistryAuthFileException">missing, too open, not JSON, or an entry is malformed</exception>
    public static IReadOnlyList<(string Key, RegistryCredentials Credentials)> Read(string path)
    {
        byte[] bytes;
        try
        {
            // credentials: only from a regular file crsc's user owns and nobody else can read or write (not a link)
            bytes = Crsc.Storage.Security.SecretFile.Read(path, 1 << 20, "registry credentials");
        }
        catch (Crsc.Storage.Security.SecretFileException e)
        {
            throw new RegistryAuthFileException(path, e.Problem);
        }

        var result = new List<(string, RegistryCredentials)>();
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("auths", out var auths) || auths.ValueKind != JsonValueKind.Object)
                throw new RegistryAuthFileException(path, "has no \"auths\" object (expected {\"auths\":{\"host:port\":{\"auth\":\"…\"}}})");
            foreach (var entry in auths.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.Object)
                    throw new RegistryAuthFileException(path, $"entry \"{entry.Name}\" is not an object");
                result.Add((entry.Name, Credentials(path, entry.Name, entry.Value)));
            }
        }
        catch (JsonException e)
        {
            throw new RegistryAuthFileException(path, $"is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})");
        }
        return result;
    }

    private static RegistryCredentials Credentials(string path, string key, JsonElement entry)
    {
        string? String(string name) => entry.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        var identityToken = String("identitytoken");
        var username = String("username");
        var password = String("password");
        if (String("auth") is { Length: > 0 } auth)
        {
            string decoded;
            try { decoded = Encoding.UTF8.GetString(Convert.FromBase64String(auth)); }
            catch (FormatException) { throw new RegistryAuthFileException(path, $"entry \"{key}\": \"auth\" is not base64"); }
            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0) throw new RegistryAuthFileException(path, $"entry \"{key}\": \"auth\" is not base64 of user:password");
            username = decoded[..colon];
            password = decoded[(colon + 1)..];
        }
        if (!string.IsNullOrEmpty(identityToken)) return new RegistryCredentials(username, password, identityToken);
        if (string.IsNullOrEmpty(username) || password is null)
            throw new RegistryAuthFileException(path, $"entry \"{key}\" has neither \"auth\", \"username\" and \"password\", nor \"identitytoken\"");
        return new RegistryCredentials(username, password);
    }

    /// <summary><c>https://Host:5000/v1/</c> → <c>host:5000</c>; Docker Hub's names → <c>docker.io</c>.</summary>
    private static string Normalize(string key)
    {
        var text = key.Trim();
        var scheme = text.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0) text = text[(scheme + 3)..];
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0) text = text[..slash];
        text = text.ToLowerInvariant();
        return text is "index.docker.io" or "registry-1.docker.io" or "registry.hub.docker.com" ? "docker.io" : text;
    }
}

using System.Text;
using System.Text.Json;

namespace Crsc.Controllers.Runtime;

/// <summary>A docker config document is unusable; <see cref="Problem"/> says what is wrong (never a secret's value).</summary>
public sealed class DockerConfigException(string problem) : Exception(problem)
{
    /// <summary>What is wrong, worded to follow the document's name (“… is not valid JSON (line 1, byte 2)”).</summary>
    public string Problem { get; } = problem;
}

/// <summary>The shape of a docker config document.</summary>
public enum DockerConfigFormat
{
    /// <summary><c>{"auths":{"host":{…}}}</c>: <c>~/.docker/config.json</c>, a <c>kubernetes.io/dockerconfigjson</c> Secret.</summary>
    Auths,

    /// <summary><c>{"host":{…}}</c>: the old <c>~/.dockercfg</c>, a <c>kubernetes.io/dockercfg</c> Secret.</summary>
    Legacy,
}

/// <summary>One registry's credentials in a docker config, under the key it was written with.</summary>
public sealed record DockerConfigEntry(string Key, RegistryAuth Credentials)
{
    public override string ToString() => $"{Key}: {Credentials}";
}

/// <summary>
/// The docker config format (<c>{"auths":{"host:port":{"auth":"base64(user:password)"}}}</c>, or <c>username</c> and
/// <c>password</c>, or <c>identitytoken</c>), and how an image finds its entry: by host[:port]
/// (<see cref="FindForHost"/>, crsc's own registry auth file) or as the kubelet does for a pod's imagePullSecrets
/// (<see cref="Matching"/>). Parsing only: reading the document is the caller's.
/// </summary>
public static class DockerConfig
{
    /// <summary>Every entry of the document, in its order.</summary>
    /// <exception cref="DockerConfigException">not JSON, not of that shape, or an entry without usable credentials</exception>
    public static IReadOnlyList<DockerConfigEntry> Parse(ReadOnlyMemory<byte> json, DockerConfigFormat format = DockerConfigFormat.Auths)
    {
        var result = new List<DockerConfigEntry>();
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            JsonElement auths;
            if (format == DockerConfigFormat.Legacy)
            {
                if (root.ValueKind != JsonValueKind.Object)
                    throw new DockerConfigException("is not a JSON object (expected {\"host:port\":{\"auth\":\"…\"}})");
                auths = root;
            }
            else if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("auths", out auths) || auths.ValueKind != JsonValueKind.Object)
            {
                throw new DockerConfigException("has no \"auths\" object (expected {\"auths\":{\"host:port\":{\"auth\":\"…\"}}})");
            }
            foreach (var entry in auths.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.Object)
                    throw new DockerConfigException($"entry \"{entry.Name}\" is not an object");
                result.Add(new DockerConfigEntry(entry.Name, Credentials(entry.Name, entry.Value)));
            }
        }
        catch (JsonException e)
        {
            throw new DockerConfigException($"is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1})");
        }
        return result;
    }

    private static RegistryAuth Credentials(string key, JsonElement entry)
    {
        string? String(string name) => entry.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        var identityToken = String("identitytoken");
        var username = String("username");
        var password = String("password");
        if (String("auth") is { Length: > 0 } auth)
        {
            string decoded;
            try { decoded = Encoding.UTF8.GetString(Convert.FromBase64String(auth)); }
            catch (FormatException) { throw new DockerConfigException($"entry \"{key}\": \"auth\" is not base64"); }
            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0) throw new DockerConfigException($"entry \"{key}\": \"auth\" is not base64 of user:password");
            username = decoded[..colon];
            password = decoded[(colon + 1)..];
        }
        if (!string.IsNullOrEmpty(identityToken)) return new RegistryAuth(Username: username, Password: password, IdentityToken: identityToken);
        if (string.IsNullOrEmpty(username) || password is null)
            throw new DockerConfigException($"entry \"{key}\" has neither \"auth\", \"username\" and \"password\", nor \"identitytoken\"");
        return new RegistryAuth(Username: username, Password: password);
    }

    /// <summary>The first entry whose key names <paramref name="registryHost"/> (host[:port]; scheme, path and case aside).</summary>
    public static DockerConfigEntry? FindForHost(IEnumerable<DockerConfigEntry> entries, string registryHost)
    {
        var wanted = NormalizeHost(registryHost);
        return entries.FirstOrDefault(e => NormalizeHost(e.Key) == wanted);
    }

    /// <summary><c>https://Host:5000/v1/</c> → <c>host:5000</c>; Docker Hub's names → <c>docker.io</c>.</summary>
    public static string NormalizeHost(string key)
    {
        var (host, _) = SplitKey(key);
        return IsDockerHub(host) ? DockerHub : host;
    }

    /// <summary>
    /// The entries that apply to <paramref name="image"/>, most specific first, as the kubelet chooses among a pod's
    /// imagePullSecrets: a key is host[:port] with an optional path (<c>registry.example.com/team</c>; a scheme, and
    /// <c>/v1/</c> or <c>/v2/</c>, are dropped); it applies when its host has as many dot-separated labels as the image's,
    /// each matching (<c>*</c> in a key's label matches any label), the ports are equal (none on both counts as equal)
    /// and its path is a prefix of the image's path. Docker Hub's names (<c>docker.io</c>, <c>index.docker.io</c>,
    /// <c>registry-1.docker.io</c>, <c>https://index.docker.io/v1/</c>) are one registry, the one of an image without a
    /// registry host (<c>nginx</c>, <c>team/app</c>).
    /// </summary>
    public static IReadOnlyList<DockerConfigEntry> Matching(IEnumerable<DockerConfigEntry> entries, string image)
    {
        var (imageHost, imagePath) = ImageLocation(image);
        var found = new List<(string Key, DockerConfigEntry Entry)>();
        foreach (var entry in entries)
        {
            var (host, path) = SplitKey(entry.Key);
            if (IsDockerHub(host)) host = DockerHub;
            if (!HostMatches(host, imageHost) || !imagePath.StartsWith(path, StringComparison.Ordinal)) continue;
            found.Add((host + path, entry));
        }
        // the kubelet's order: keys reverse-sorted, so registry.example.com/team comes before registry.example.com
        return found.OrderByDescending(f => f.Key, StringComparer.Ordinal).Select(f => f.Entry).ToList();
    }

    /// <summary>The registry host[:port] an image is pulled from (<c>docker.io</c> for one without a host).</summary>
    public static string RegistryOf(string image) => ImageLocation(image).Host;

    private const string DockerHub = "docker.io";

    private static bool IsDockerHub(string host) =>
        host is DockerHub or "index.docker.io" or "registry-1.docker.io" or "registry.hub.docker.com";

    /// <summary>A key's lower-case host[:port] and its path (“” or “/team”; a leading <c>/v1</c> or <c>/v2</c> dropped).</summary>
    private static (string Host, string Path) SplitKey(string key)
    {
        var text = key.Trim();
        var scheme = text.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0) text = text[(scheme + 3)..];
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var host = (slash >= 0 ? text[..slash] : text).ToLowerInvariant();
        var path = slash >= 0 ? text[slash..] : "";
        if (path.StartsWith("/v1/", StringComparison.Ordinal) || path.StartsWith("/v2/", StringComparison.Ordinal)) path = path[3..];
        return (host, path == "/" ? "" : path);
    }

    /// <summary>An image's lower-case registry host[:port] (Docker Hub's as <c>docker.io</c>) and its path from “/”.</summary>
    private static (string Host, string Path) ImageLocation(string image)
    {
        var slash = image.IndexOf('/', StringComparison.Ordinal);
        // as the runtimes read a reference: the first part is a registry when it has a dot or a port, or is localhost
        if (slash > 0 && image[..slash] is var first && (first.Contains('.', StringComparison.Ordinal)
            || first.Contains(':', StringComparison.Ordinal) || first == "localhost"))
        {
            var host = first.ToLowerInvariant();
            return (IsDockerHub(host) ? DockerHub : host, image[slash..]);
        }
        return (DockerHub, slash > 0 ? "/" + image : "/library/" + image);
    }

    private static bool HostMatches(string keyHost, string imageHost)
    {
        static (string[] Labels, string Port) Split(string host)
        {
            var colon = host.LastIndexOf(':');
            return colon >= 0 ? (host[..colon].Split('.'), host[(colon + 1)..]) : (host.Split('.'), "");
        }
        var (keyLabels, keyPort) = Split(keyHost);
        var (imageLabels, imagePort) = Split(imageHost);
        if (keyPort != imagePort || keyLabels.Length != imageLabels.Length) return false;
        for (var i = 0; i < keyLabels.Length; i++)
            if (!LabelMatches(keyLabels[i], imageLabels[i])) return false;
        return true;
    }

    /// <summary>One host label against a key's label, where <c>*</c> stands for any run of characters.</summary>
    private static bool LabelMatches(string pattern, string label)
    {
        if (!pattern.Contains('*', StringComparison.Ordinal)) return pattern == label;
        var parts = pattern.Split('*');
        if (!label.StartsWith(parts[0], StringComparison.Ordinal)) return false;
        var at = parts[0].Length;
        for (var i = 1; i < parts.Length - 1; i++)
        {
            var next = label.IndexOf(parts[i], at, StringComparison.Ordinal);
            if (next < 0) return false;
            at = next + parts[i].Length;
        }
        return label.Length - at >= parts[^1].Length && label.EndsWith(parts[^1], StringComparison.Ordinal);
    }
}

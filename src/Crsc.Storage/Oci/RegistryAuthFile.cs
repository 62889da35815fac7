using Crsc.Controllers.Runtime;

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
        var entry = DockerConfig.FindForHost(Entries(path), registryHost);
        return entry is null ? null : Credentials(entry.Credentials);
    }

    /// <summary>Every entry of the file by its key (after the same checks as <see cref="Load"/>).</summary>
    /// <exception cref="RegistryAuthFileException">missing, too open, not JSON, or an entry is malformed</exception>
    public static IReadOnlyList<(string Key, RegistryCredentials Credentials)> Read(string path) =>
        Entries(path).Select(e => (e.Key, Credentials(e.Credentials))).ToList();

    private static IReadOnlyList<DockerConfigEntry> Entries(string path)
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
        try
        {
            return DockerConfig.Parse(bytes);
        }
        catch (DockerConfigException e)
        {
            throw new RegistryAuthFileException(path, e.Problem);
        }
    }

    private static RegistryCredentials Credentials(RegistryAuth auth) => new(auth.Username, auth.Password, auth.IdentityToken);
}

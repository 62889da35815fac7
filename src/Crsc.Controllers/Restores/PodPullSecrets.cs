using System.Text;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Runtime;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Restores;

/// <summary>
/// The registry credentials a pod's <c>imagePullSecrets</c> hold, for the pulls a node makes on the pod's behalf (a
/// restore's base image, on a node that may never have run the pod). Reads each named Secret of the pod's namespace
/// (GET by name, never a list) of type <c>kubernetes.io/dockerconfigjson</c> (key <c>.dockerconfigjson</c>) or
/// <c>kubernetes.io/dockercfg</c> (key <c>.dockercfg</c>) and finds an image's entries as the kubelet does
/// (<see cref="DockerConfig.Matching"/>). A Secret that is missing, unreadable or without usable credentials is
/// skipped and said why (<see cref="PullSecretLookup.Describe"/>), never fatal: the pull goes on without it.
/// Nothing it says or logs holds a credential.
/// </summary>
public sealed partial class PodPullSecrets(IKubeApi kube, ILogger? logger = null)
{
    public const string DockerConfigJsonType = "kubernetes.io/dockerconfigjson", DockerConfigJsonKey = ".dockerconfigjson";
    public const string DockerCfgType = "kubernetes.io/dockercfg", DockerCfgKey = ".dockercfg";

    private readonly IKubeResourceClient<Secret> _secrets = kube.Resource(Resources.Secrets);
    private readonly ILogger _logger = logger ?? NullLogger.Instance;

    /// <summary>
    /// Reads the Secrets <paramref name="pod"/> names in <c>spec.imagePullSecrets</c>, in order (each name once).
    /// </summary>
    /// <exception cref="KubeApiException">the API server failed otherwise than 404 or 403 (worth a retry)</exception>
    /// <exception cref="KubeUnavailableException">the API server could not be reached</exception>
    public async Task<PullSecretKeyring> ReadAsync(Pod pod, CancellationToken ct)
    {
        var ns = pod.Metadata.Namespace ?? "";
        var secrets = new List<PullSecret>();
        foreach (var name in (pod.Spec.ImagePullSecrets ?? []).Select(r => r.Name).OfType<string>().Where(n => n.Length > 0)
                     .Distinct(StringComparer.Ordinal))
        {
            Secret secret;
            try
            {
                secret = await _secrets.GetAsync(ns, name, ct).ConfigureAwait(false);
            }
            catch (NotFoundException)
            {
                secrets.Add(new PullSecret(name, [], "not found"));
                continue;
            }
            catch (ForbiddenException)
            {
                secrets.Add(new PullSecret(name, [], "cannot be read (forbidden)"));
                continue;
            }
            secrets.Add(Parse(name, secret));
        }
        return new PullSecretKeyring(ns, pod.Metadata.Name ?? "", secrets, _logger);
    }

    private static PullSecret Parse(string name, Secret secret)
    {
        var (format, key) = secret.Type switch
        {
            DockerConfigJsonType => (DockerConfigFormat.Auths, DockerConfigJsonKey),
            DockerCfgType => (DockerConfigFormat.Legacy, DockerCfgKey),
            _ => (default(DockerConfigFormat?), ""),
        };
        if (format is null)
            return new PullSecret(name, [], $"is of type {secret.Type ?? "Opaque"}, not {DockerConfigJsonType} or {DockerCfgType}");
        if (secret.Data?.GetValueOrDefault(key) is not { Length: > 0 } bytes)
            return new PullSecret(name, [], $"has no {key}");
        try
        {
            return new PullSecret(name, DockerConfig.Parse(bytes, format.Value), null);
        }
        catch (DockerConfigException e)
        {
            return new PullSecret(name, [], $"{key} {e.Problem}");
        }
    }

    internal sealed record PullSecret(string Name, IReadOnlyList<DockerConfigEntry> Entries, string? Problem);

    internal static partial class Log
    {
        [LoggerMessage(21028, LogLevel.Information, "Pod {Namespace}/{Pod}: {Image} is pulled with imagePullSecret {Secret} (entry {Entry})")]
        public static partial void Using(ILogger logger, string @namespace, string pod, string image, string secret, string entry);

        [LoggerMessage(21029, LogLevel.Information, "Pod {Namespace}/{Pod}: {Image}: {Notes}")]
        public static partial void Skipped(ILogger logger, string @namespace, string pod, string image, string notes);
    }
}

/// <summary>The pull credentials of one pod's imagePullSecrets, as read once (<see cref="PodPullSecrets.ReadAsync"/>).</summary>
public sealed class PullSecretKeyring
{
    private readonly string _namespace, _pod;
    private readonly IReadOnlyList<PodPullSecrets.PullSecret> _secrets;
    private readonly ILogger _logger;

    internal PullSecretKeyring(string ns, string pod, IReadOnlyList<PodPullSecrets.PullSecret> secrets, ILogger logger) =>
        (_namespace, _pod, _secrets, _logger) = (ns, pod, secrets, logger);

    /// <summary>
    /// The credentials for <paramref name="image"/> in the order to try them (the pod's secrets in its order; in one
    /// secret, the most specific key first), and why each other secret does not apply.
    /// </summary>
    public PullSecretLookup Lookup(string image)
    {
        var candidates = new List<PullSecretCredential>();
        var notes = new List<string>();
        var registry = DockerConfig.RegistryOf(image);
        foreach (var secret in _secrets)
        {
            if (secret.Problem is { } problem)
            {
                notes.Add($"{secret.Name} {problem}");
                continue;
            }
            var matching = DockerConfig.Matching(secret.Entries, image);
            if (matching.Count == 0)
            {
                notes.Add($"{secret.Name} has no entry for {registry}");
                continue;
            }
            foreach (var entry in matching)
            {
                candidates.Add(new PullSecretCredential(secret.Name, entry.Key, entry.Credentials));
                notes.Add($"{secret.Name} (entry {entry.Key}) was tried");
            }
        }
        var lookup = new PullSecretLookup(candidates, notes);
        if (candidates.Count > 0)
            PodPullSecrets.Log.Using(_logger, _namespace, _pod, image, candidates[0].Secret, candidates[0].Entry);
        else if (notes.Count > 0)
            PodPullSecrets.Log.Skipped(_logger, _namespace, _pod, image, lookup.Describe());
        return lookup;
    }
}

/// <summary>One credential of a pod's imagePullSecret: the Secret's name and the docker config key it is under.</summary>
public sealed record PullSecretCredential(string Secret, string Entry, RegistryAuth Auth)
{
    public override string ToString() => $"{Secret} (entry {Entry}): {Auth}";
}

/// <summary>What a pod's imagePullSecrets offer one image: credentials to try, in order, and a note per secret.</summary>
public sealed record PullSecretLookup(IReadOnlyList<PullSecretCredential> Candidates, IReadOnlyList<string> Notes)
{
    /// <summary><c>imagePullSecrets: regcred not found; other has no entry for registry.example.com</c>; "" without secrets.</summary>
    public string Describe()
    {
        if (Notes.Count == 0) return "";
        var text = new StringBuilder("imagePullSecrets: ");
        text.AppendJoin("; ", Notes);
        return text.ToString();
    }
}

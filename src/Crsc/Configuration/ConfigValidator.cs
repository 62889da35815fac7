using System.Net;
using System.Text.RegularExpressions;
using Crsc.Storage.Oci;

namespace Crsc.Configuration;

/// <summary>Checks every value; each error names the key, the value and where it came from.</summary>
public static partial class ConfigValidator
{
    private const int MaxUnixSocketPath = 107; // sun_path is 108 bytes with the terminating NUL

    public static IReadOnlyList<ConfigError> Validate(CrscOptions o, IReadOnlyDictionary<string, string>? sources = null)
    {
        var errors = new List<ConfigError>();
        void Fail(string key, string value, string problem) =>
            errors.Add(new ConfigError(key, value, problem, sources?.GetValueOrDefault(key) ?? "default"));

        if (!IsDnsSubdomain(o.NodeName))
            Fail("nodeName", o.NodeName, "is not a valid node name (lower-case letters, digits, '-' and '.', at most 253 characters)");

        if (o.Kubeconfig.Length > 0)
        {
            if (o.Kubeconfig.Contains(Path.PathSeparator))
                Fail("kubeconfig", o.Kubeconfig, "names several files; crsc reads exactly one kubeconfig");
            else if (!File.Exists(o.Kubeconfig))
                Fail("kubeconfig", o.Kubeconfig, "does not exist");
        }

        if (!TryParseUnixEndpoint(o.RuntimeEndpoint, out var socketPath))
            Fail("runtime.endpoint", o.RuntimeEndpoint, "must be unix:///ABSOLUTE/PATH or an absolute socket path");
        else if (socketPath.Length > MaxUnixSocketPath)
            Fail("runtime.endpoint", o.RuntimeEndpoint, $"is longer than {MaxUnixSocketPath} bytes, the limit of a Unix socket path");

        if (o.CheckpointVia is not ("cri" or "kubelet"))
            Fail("runtime.checkpointVia", o.CheckpointVia, "must be cri or kubelet");

        CheckKubelet(o, Fail);

        CheckDir("stateDir", o.StateDir);
        CheckDir("checkpointDir", o.CheckpointDir);
        CheckDir("stagingDir", o.StagingDir);
        CheckDir("manifestsDir", o.ManifestsDir);
        CheckDir("inactiveManifestsDir", o.InactiveManifestsDir);
        CheckDir("checkpointSecretsDir", o.CheckpointSecretsDir);
        CheckDir("checkpointConfigMapsDir", o.CheckpointConfigMapsDir);
        if (IsAbsoluteClean(o.CheckpointDir) && IsAbsoluteClean(o.StagingDir) && (IsUnder(o.StagingDir, o.CheckpointDir) || IsUnder(o.CheckpointDir, o.StagingDir)))
            Fail("stagingDir", o.StagingDir, $"must not be inside checkpointDir ({o.CheckpointDir}) or contain it: staged archives would be listed as checkpoints");
        if (IsAbsoluteClean(o.ManifestsDir) && o.ManifestsDir == o.InactiveManifestsDir)
            Fail("inactiveManifestsDir", o.InactiveManifestsDir, "must differ from manifestsDir: the kubelet would run inactive checkpoints");
        if (IsAbsoluteClean(o.CheckpointSecretsDir) && (o.CheckpointSecretsDir == o.ManifestsDir || o.CheckpointSecretsDir == o.InactiveManifestsDir || o.CheckpointSecretsDir == o.CheckpointConfigMapsDir))
            Fail("checkpointSecretsDir", o.CheckpointSecretsDir, "must differ from manifestsDir, inactiveManifestsDir and checkpointConfigMapsDir");
        if (IsAbsoluteClean(o.CheckpointConfigMapsDir) && (o.CheckpointConfigMapsDir == o.ManifestsDir || o.CheckpointConfigMapsDir == o.InactiveManifestsDir))
            Fail("checkpointConfigMapsDir", o.CheckpointConfigMapsDir, "must differ from manifestsDir and inactiveManifestsDir");

        if (!IsAbsoluteClean(o.Socket))
            Fail("socket", o.Socket, "must be an absolute path without '..'");
        else if (System.Text.Encoding.UTF8.GetByteCount(o.Socket) > MaxUnixSocketPath)
            Fail("socket", o.Socket, $"is longer than {MaxUnixSocketPath} bytes, the limit of a Unix socket path");

        if (o.MetricsAddress.Length > 0 && !TryParseHostPort(o.MetricsAddress, out _, out _))
            Fail("metrics.address", o.MetricsAddress, "must be HOST:PORT (e.g. 127.0.0.1:9464 or [::1]:9464) with a port from 1 to 65535, or empty for off");

        if (o.ImagesListen.Length > 0)
        {
            if (!TryParseHostPort(o.ImagesListen, out var imagesHost, out var imagesPort))
                Fail("images.listen", o.ImagesListen, "must be HOST:PORT (e.g. 127.0.0.1:5055) with a port from 1 to 65535, or empty for off");
            else
            {
                // the daemon tells the image endpoint's connections from the metrics listener's by their port
                if (o.MetricsAddress.Length > 0 && TryParseHostPort(o.MetricsAddress, out _, out var metricsPort) && metricsPort == imagesPort)
                    Fail("images.listen", o.ImagesListen, $"uses the port of metrics.address ({o.MetricsAddress}); give each its own port");
                if (o.ImagesAdvertise.Length == 0 && IsWildcard(imagesHost))
                    Fail("images.listen", o.ImagesListen, "is a wildcard address, which runtimes cannot pull from: set images.advertise to the HOST:PORT they reach this node at");
                // tokens travel in every request: beyond this host they need TLS, or anyone on the path reads them
                if (!IsLoopback(imagesHost) && o.ImagesTlsCertFile.Length == 0)
                    Fail("images.listen", o.ImagesListen, "listens beyond loopback without TLS: set images.tlsCertFile and images.tlsKeyFile (the runtimes must trust the certificate), or listen on 127.0.0.1");
            }
        }
        CheckImagesTls(o, Fail);
        if (o.ImagesAdvertise.Length > 0)
        {
            if (!TryParseHostPort(o.ImagesAdvertise, out var advertiseHost, out _) || IsWildcard(advertiseHost))
                Fail("images.advertise", o.ImagesAdvertise, "must be HOST:PORT that runtimes reach the image endpoint at (e.g. 10.0.0.5:5055 or node-a.example:5055)");
            else if (o.ImagesListen.Length == 0)
                Fail("images.advertise", o.ImagesAdvertise, "is set but images.listen is empty: the image endpoint is off");
        }

        if (!long.TryParse(o.OutboxMaxBytes, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var outboxMax)
            || outboxMax < 65536)
            Fail("outbox.maxBytes", o.OutboxMaxBytes, "must be a whole number of bytes, at least 65536");

        if (!TryParseDurationWithUnit(o.NodeAgentAbsentAfter, out var absentAfter) || absentAfter < CrscOptions.MinNodeAgentAbsentAfter)
            Fail("nodeAgent.absentAfter", o.NodeAgentAbsentAfter, "must be a duration with a unit, at least 1m (e.g. 10m, 1h)");
        if (!TryParseDurationWithUnit(o.NodeAgentLostRestoreWindow, out var lostWindow) || lostWindow <= TimeSpan.Zero)
            Fail("nodeAgent.lostRestoreWindow", o.NodeAgentLostRestoreWindow, "must be a duration with a unit, more than zero (e.g. 30m)");

        if (!TryParseDurationWithUnit(o.LeaderAbsentAfter, out var leaderAbsent) || leaderAbsent < CrscOptions.MinLeaderAbsentAfter)
            Fail("leader.absentAfter", o.LeaderAbsentAfter, "must be a duration with a unit, at least 3s (e.g. 3s, 5s)");

        if (!Path.IsPathFullyQualified(o.NodeStateDirectory))
            Fail("nodeState.directory", o.NodeStateDirectory, "must be an absolute path");
        foreach (var taint in o.DrainTaintList)
            if (!IsTaintKey(taint))
                Fail("nodeState.drainTaints", taint, "is not a taint key ([prefix/]name: letters, digits, '-', '_', '.'; a DNS subdomain prefix)");
        if (o.ShutdownCheckpoint is not ("true" or "false"))
            Fail("shutdown.checkpoint", o.ShutdownCheckpoint, "must be true or false");
        if (!int.TryParse(o.ShutdownParallelism, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var parallel)
            || parallel is < 1 or > 64)
            Fail("shutdown.parallelism", o.ShutdownParallelism, "must be a whole number from 1 to 64");
        if (!TryParseDurationWithUnit(o.ShutdownRestoreWindow, out var window) || window <= TimeSpan.Zero)
            Fail("shutdown.restoreWindow", o.ShutdownRestoreWindow, "must be a duration with a unit, more than zero (e.g. 15m)");

        if (!IsDnsLabel(o.Namespace))
            Fail("namespace", o.Namespace, "is not a valid namespace name (lower-case letters, digits and '-', at most 63 characters)");

        if (o.SecurityKeySecret.Length > 0 && !TryParseSecretReference(o.SecurityKeySecret, out _, out _))
            Fail("security.keySecret", o.SecurityKeySecret,
                "must be <namespace>/<name> of a Secret (a namespace name, then a Secret name: lower-case letters, digits, '-' and '.'), or empty for the node-local key only");

        if (o.LogFormat is not ("auto" or "console" or "json" or "journald"))
            Fail("log.format", o.LogFormat, "must be auto, console, json or journald");
        if (o.LogLevel is not ("trace" or "debug" or "information" or "info" or "warning" or "error"))
            Fail("log.level", o.LogLevel, "must be trace, debug, information, warning or error");

        CheckRegistry(o, Fail);
        if (o.InterceptorImage.Length > 0 && !ImageReference.TryParse(o.InterceptorImage, out _, out var imageProblem))
            Fail("interceptor.image", o.InterceptorImage, imageProblem);

        return errors;

        void CheckDir(string key, string value)
        {
            if (!IsAbsoluteClean(value)) Fail(key, value, "must be an absolute path without '..'");
        }
    }

    private static bool IsLoopback(string host) =>
        host == "localhost" || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    private static void CheckImagesTls(CrscOptions o, Action<string, string, string> fail)
    {
        if (o.ImagesTlsCertFile.Length == 0 && o.ImagesTlsKeyFile.Length == 0) return;
        if (o.ImagesTlsCertFile.Length == 0 || o.ImagesTlsKeyFile.Length == 0)
        {
            var (key, value) = o.ImagesTlsCertFile.Length == 0 ? ("images.tlsKeyFile", o.ImagesTlsKeyFile) : ("images.tlsCertFile", o.ImagesTlsCertFile);
            fail(key, value, "is set alone: images.tlsCertFile and images.tlsKeyFile go together");
            return;
        }
        if (!IsAbsoluteClean(o.ImagesTlsCertFile)) { fail("images.tlsCertFile", o.ImagesTlsCertFile, "must be an absolute path without '..'"); return; }
        if (!IsAbsoluteClean(o.ImagesTlsKeyFile)) { fail("images.tlsKeyFile", o.ImagesTlsKeyFile, "must be an absolute path without '..'"); return; }
        try
        {
            using var certificate = new Crsc.Daemon.ImageEndpointTls(o.ImagesTlsCertFile, o.ImagesTlsKeyFile).Load();
            if (!certificate.HasPrivateKey) fail("images.tlsKeyFile", o.ImagesTlsKeyFile, "is not the private key of images.tlsCertFile");
        }
        catch (Crsc.Storage.Security.SecretFileException e) { fail("images.tlsKeyFile", o.ImagesTlsKeyFile, e.Problem); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            fail("images.tlsCertFile", o.ImagesTlsCertFile, $"cannot be read: {e.Message}");
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            fail("images.tlsCertFile", o.ImagesTlsCertFile, $"and images.tlsKeyFile are not a PEM certificate and its private key: {e.Message}");
        }
    }

    private static void CheckKubelet(CrscOptions o, Action<string, string, string> fail)
    {
        var allowHttp = o.KubeletAllowHttp.ToLowerInvariant();
        if (allowHttp is not ("true" or "false"))
            fail("kubelet.allowHttp", o.KubeletAllowHttp, "must be true or false");
        if (!Uri.TryCreate(o.KubeletUrl, UriKind.Absolute, out var kubelet) || kubelet.Scheme is not ("https" or "http") || kubelet.Host.Length == 0)
            fail("kubelet.url", o.KubeletUrl, "must be an absolute https:// URL");
        else if (kubelet.Scheme == "http" && allowHttp != "true")
            fail("kubelet.url", o.KubeletUrl, "is http://: nothing proves the answer comes from the kubelet, which names files crsc reads; use https:// (kubelet.allowHttp: true is for tests only)");

        if (o.KubeletServerName.Length > 0 && !IPAddress.TryParse(o.KubeletServerName, out _) && !IsDnsSubdomain(o.KubeletServerName))
            fail("kubelet.serverName", o.KubeletServerName, "must be a DNS name or an IP address, or empty for nodeName");

        if (!IsAbsoluteClean(o.KubeletCheckpointDir) || o.KubeletCheckpointDir == "/" || o.KubeletCheckpointDir.EndsWith('/') || o.KubeletCheckpointDir.Contains("//", StringComparison.Ordinal))
            fail("kubelet.checkpointDir", o.KubeletCheckpointDir, "must be an absolute path without '..', '//' or a trailing '/'");
        else if (o.CheckpointVia == "kubelet" && LinkOnPath(o.KubeletCheckpointDir) is { } problem)
            fail("kubelet.checkpointDir", o.KubeletCheckpointDir, problem);

        if (o.KubeletCaFile.Length > 0)
        {
            if (!IsAbsoluteClean(o.KubeletCaFile))
                fail("kubelet.caFile", o.KubeletCaFile, "must be an absolute path without '..'");
            else if (o.CheckpointVia == "kubelet" && CaFileProblem(o.KubeletCaFile) is { } problem)
                fail("kubelet.caFile", o.KubeletCaFile, problem);
        }
    }

    /// <summary>
    /// Why crsc cannot use <paramref name="dir"/> as it is: a component is a symbolic link (crsc resolves the kubelet's
    /// archive paths without following links, so a linked directory would refuse every archive) or not a directory.
    /// A directory that does not exist yet is fine: the kubelet creates it.
    /// </summary>
    private static string? LinkOnPath(string dir)
    {
        var prefix = "";
        foreach (var part in dir.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            prefix += "/" + part;
            FileSystemInfo info = new FileInfo(prefix);
            if (info.LinkTarget is { } target)
                return $"passes through a symbolic link ({prefix} -> {target}): name the real directory (and have the kubelet use it), crsc follows no link to the kubelet's archives";
            if (Directory.Exists(prefix)) continue;
            return info.Exists ? $"is not a directory ({prefix} is a file)" : null;
        }
        return null;
    }

    private static string? CaFileProblem(string file)
    {
        if (!File.Exists(file)) return "does not exist";
        try
        {
            var certificates = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
            certificates.ImportFromPemFile(file);
            var count = certificates.Count;
            foreach (var c in certificates) c.Dispose();
            return count == 0 ? "holds no PEM certificate" : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            return "cannot be read as a PEM certificate bundle: " + e.Message;
        }
    }

    private static void CheckRegistry(CrscOptions o, Action<string, string, string> fail)
    {
        RegistryLocation? registry = null;
        if (o.ImagesRegistry.Length > 0 && !RegistryLocation.TryParse(o.ImagesRegistry, out registry, out var problem))
            fail("images.registry", o.ImagesRegistry, problem);
        if (o.ImagesRegistryInsecure.ToLowerInvariant() is not ("true" or "false"))
            fail("images.registryInsecure", o.ImagesRegistryInsecure, "must be true or false");
        if (o.ImagesRegistryMode is not ("publish" or "replicate"))
            fail("images.registryMode", o.ImagesRegistryMode, "must be publish or replicate");
        else if (o.ImagesRegistryMode == "replicate" && o.ImagesRegistry.Length == 0)
            fail("images.registryMode", o.ImagesRegistryMode, "is replicate but images.registry is empty: set the registry to copy checkpoints to");
        if (o.ImagesRegistryAuthFile.Length == 0) return;
        if (!IsAbsoluteClean(o.ImagesRegistryAuthFile))
        {
            fail("images.registryAuthFile", o.ImagesRegistryAuthFile, "must be an absolute path without '..'");
            return;
        }
        try
        {
            var entries = RegistryAuthFile.Read(o.ImagesRegistryAuthFile);
            if (registry is not null && RegistryAuthFile.Load(o.ImagesRegistryAuthFile, registry.Host) is null)
                fail("images.registryAuthFile", o.ImagesRegistryAuthFile,
                    $"has no entry for registry {registry.Host} (it has: {(entries.Count == 0 ? "none" : string.Join(", ", entries.Select(e => e.Key)))})");
        }
        catch (RegistryAuthFileException e)
        {
            fail("images.registryAuthFile", o.ImagesRegistryAuthFile, e.Problem);
        }
    }

    /// <summary><c>&lt;namespace&gt;/&lt;name&gt;</c>: a DNS label, then a DNS subdomain.</summary>
    public static bool TryParseSecretReference(string value, out string ns, out string name)
    {
        ns = name = "";
        if (value.Split('/') is not [var n, var m] || !IsDnsLabel(n) || !IsDnsSubdomain(m)) return false;
        (ns, name) = (n, m);
        return true;
    }

    /// <summary>A Go duration that says its unit (<c>90s</c>, <c>10m</c>, <c>1h30m</c>): a bare number is refused, not taken as seconds.</summary>
    public static bool TryParseDurationWithUnit(string text, out TimeSpan value)
    {
        value = default;
        return text.Length > 0 && !text.All(char.IsAsciiDigit) && Crsc.Api.GoDuration.TryParse(text, out value);
    }

    public static bool TryParseUnixEndpoint(string endpoint, out string path)
    {
        path = endpoint.StartsWith("unix://", StringComparison.Ordinal) ? endpoint["unix://".Length..] : endpoint;
        return IsAbsoluteClean(path);
    }

    public static bool TryParseHostPort(string address, out string host, out int port)
    {
        host = ""; port = 0;
        var colon = address.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(address.AsSpan(colon + 1), System.Globalization.NumberStyles.None, null, out port) || port is < 1 or > 65535)
            return false;
        host = address[..colon];
        if (host.StartsWith('[') && host.EndsWith(']')) return IPAddress.TryParse(host[1..^1], out _);
        return host == "localhost" || IPAddress.TryParse(host, out _) || IsDnsSubdomain(host);
    }

    private static bool IsWildcard(string host) => host is "0.0.0.0" or "[::]" or "[0:0:0:0:0:0:0:0]";

    internal static bool IsAbsoluteClean(string path) =>
        path.Length > 0 && path[0] == '/' && !path.Contains('\0')
        && !path.Split('/').Any(part => part is ".." or ".");

    private static bool IsUnder(string path, string root)
    {
        var p = path.TrimEnd('/') + "/";
        var r = root.TrimEnd('/') + "/";
        return p.StartsWith(r, StringComparison.Ordinal);
    }

    public static bool IsDnsLabel(string value) => value.Length is > 0 and <= 63 && DnsLabel().IsMatch(value);
    public static bool IsDnsSubdomain(string value) => value.Length is > 0 and <= 253 && value.Split('.').All(DnsLabel().IsMatch);

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?\\z")]
    private static partial Regex DnsLabel();

    /// <summary>A taint key as Kubernetes takes it: a qualified name, <c>[DNS subdomain/]name</c> (name up to 63 characters).</summary>
    public static bool IsTaintKey(string value)
    {
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        var name = slash < 0 ? value : value[(slash + 1)..];
        if (slash >= 0 && !IsDnsSubdomain(value[..slash])) return false;
        return name.Length is > 0 and <= 63 && QualifiedName().IsMatch(name);
    }

    [GeneratedRegex("^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\\z")]
    private static partial Regex QualifiedName();
}

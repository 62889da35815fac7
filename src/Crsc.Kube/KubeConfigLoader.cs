using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Crsc.Kube;

/// <summary>Where the in-cluster configuration is read from; the defaults are the service-account mount.</summary>
public sealed record InClusterPaths(
    string TokenPath = InClusterPaths.ServiceAccountDir + "/token",
    string CaPath = InClusterPaths.ServiceAccountDir + "/ca.crt",
    string NamespacePath = InClusterPaths.ServiceAccountDir + "/namespace")
{
    public const string ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";
}

/// <summary>
/// Builds a <see cref="KubeClientConfig"/> from a kubeconfig file (YAML; the current or a named context) or from the
/// in-cluster service account. Errors name the file and the field.
/// </summary>
public static class KubeConfigLoader
{
    /// <summary>A kubeconfig when <paramref name="kubeconfigPath"/> is set, otherwise in-cluster.</summary>
    public static KubeClientConfig Load(string? kubeconfigPath, string? context = null, TimeProvider? time = null)
        => string.IsNullOrEmpty(kubeconfigPath) ? InCluster(time: time) : FromFile(kubeconfigPath, context, time);

    public static KubeClientConfig FromFile(string path, string? context = null, TimeProvider? time = null)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KubeConfigException($"{path}: cannot read the kubeconfig: {e.Message}", e);
        }
        var full = Path.GetFullPath(path);
        return FromYaml(text, Path.GetDirectoryName(full) ?? "/", full, context, time);
    }

    /// <param name="baseDirectory">relative file names in the kubeconfig are resolved against it</param>
    /// <param name="fileName">named in error messages</param>
    public static KubeClientConfig FromYaml(string yaml, string baseDirectory, string fileName, string? context = null,
        TimeProvider? time = null)
    {
        var doc = new Reader(fileName, baseDirectory);
        YamlMappingNode root;
        try
        {
            var stream = AliasFreeYaml.Load(new StringReader(yaml));
            root = stream.Documents.Count > 0 && stream.Documents[0].RootNode is YamlMappingNode m
                ? m
                : throw new KubeConfigException($"{fileName}: not a kubeconfig (expected a YAML mapping)");
        }
        catch (YamlAliasException e)
        {
            throw new KubeConfigException($"{fileName}: {e.Reason}", e);
        }
        catch (YamlException e)
        {
            throw new KubeConfigException($"{fileName}: invalid YAML at line {e.Start.Line}: {e.Message}", e);
        }

        var contextName = context ?? doc.String(root, "current-context", "current-context");
        if (string.IsNullOrEmpty(contextName))
            throw new KubeConfigException($"{fileName}: current-context is not set and no context was named");
        var ctx = doc.Named(root, "contexts", "context", contextName);
        var ctxPath = $"contexts[name={contextName}].context";
        var clusterName = doc.String(ctx, "cluster", ctxPath + ".cluster")
            ?? throw new KubeConfigException($"{fileName}: {ctxPath}.cluster is missing");
        var userName = doc.String(ctx, "user", ctxPath + ".user");
        var ns = doc.String(ctx, "namespace", ctxPath + ".namespace");

        var cluster = doc.Named(root, "clusters", "cluster", clusterName);
        var cPath = $"clusters[name={clusterName}].cluster";
        var serverText = doc.String(cluster, "server", cPath + ".server")
            ?? throw new KubeConfigException($"{fileName}: {cPath}.server is missing");
        if (!Uri.TryCreate(serverText, UriKind.Absolute, out var server) || (server.Scheme != "https" && server.Scheme != "http"))
            throw new KubeConfigException($"{fileName}: {cPath}.server: '{serverText}' is not an http(s) URL");
        var insecure = doc.Bool(cluster, "insecure-skip-tls-verify", cPath + ".insecure-skip-tls-verify");
        var ca = doc.Bytes(cluster, "certificate-authority", cPath);
        X509Certificate2Collection? cas = null;
        if (ca is not null) cas = ParseCertificates(ca.Value.Bytes, $"{fileName}: {cPath}.{ca.Value.Field}");

        X509Certificate2? clientCert = null;
        IBearerTokenSource? token = null;
        if (userName is not null)
        {
            var user = doc.Named(root, "users", "user", userName);
            var uPath = $"users[name={userName}].user";
            foreach (var unsupported in new[] { "exec", "auth-provider" })
                if (user.Children.ContainsKey(new YamlScalarNode(unsupported)))
                    throw new KubeConfigException($"{fileName}: {uPath}.{unsupported} is not supported by crsc; use a client certificate or a token");
            var cert = doc.Bytes(user, "client-certificate", uPath);
            var key = doc.Bytes(user, "client-key", uPath);
            if (cert is not null && key is null)
                throw new KubeConfigException($"{fileName}: {uPath}.{cert.Value.Field} is set but client-key(-data) is missing");
            if (key is not null && cert is null)
                throw new KubeConfigException($"{fileName}: {uPath}.{key.Value.Field} is set but client-certificate(-data) is missing");
            if (cert is not null && key is not null)
                clientCert = ParseClientCertificate(cert.Value.Bytes, key.Value.Bytes,
                    $"{fileName}: {uPath}.{cert.Value.Field} / {uPath}.{key.Value.Field}");

            var tokenText = doc.String(user, "token", uPath + ".token");
            var tokenFile = doc.String(user, "tokenFile", uPath + ".tokenFile");
            if (!string.IsNullOrEmpty(tokenText)) token = new StaticTokenSource(tokenText);
            else if (!string.IsNullOrEmpty(tokenFile))
            {
                var tokenPath = doc.Resolve(tokenFile);
                try { token = new FileTokenSource(tokenPath, time); }
                catch (KubeConfigException e) { throw new KubeConfigException($"{fileName}: {uPath}.tokenFile: {e.Message}", e); }
            }
        }

        return new KubeClientConfig
        {
            Server = server,
            CertificateAuthorities = cas,
            ClientCertificate = clientCert,
            Token = token,
            InsecureSkipTlsVerify = insecure,
            Namespace = string.IsNullOrEmpty(ns) ? "default" : ns,
            Source = $"kubeconfig {fileName}, context {contextName}",
        };
    }

    /// <summary>
    /// The configuration of a pod's service account: <c>KUBERNETES_SERVICE_HOST</c>/<c>_PORT</c>, its CA bundle, its
    /// token (re-read when the kubelet rotates it) and its namespace.
    /// </summary>
    public static KubeClientConfig InCluster(InClusterPaths? paths = null, Func<string, string?>? environment = null,
        TimeProvider? time = null)
    {
        paths ??= new InClusterPaths();
        environment ??= Environment.GetEnvironmentVariable;
        var host = environment("KUBERNETES_SERVICE_HOST");
        var port = environment("KUBERNETES_SERVICE_PORT");
        if (string.IsNullOrEmpty(host) || string.IsNullOrEmpty(port))
            throw new KubeConfigException(
                "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (set a kubeconfig instead)");
        if (host.Contains(':') && !host.StartsWith('[')) host = $"[{host}]";
        if (!Uri.TryCreate($"https://{host}:{port}", UriKind.Absolute, out var server))
            throw new KubeConfigException($"KUBERNETES_SERVICE_HOST/PORT: 'https://{host}:{port}' is not a URL");

        byte[] ca;
        try { ca = File.ReadAllBytes(paths.CaPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KubeConfigException($"{paths.CaPath}: cannot read the service account CA: {e.Message}", e);
        }
        var cas = ParseCertificates(ca, paths.CaPath);
        var token = new FileTokenSource(paths.TokenPath, time);
        var ns = "default";
        try { ns = File.ReadAllText(paths.NamespacePath).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* optional: default namespace */ }

        return new KubeClientConfig
        {
            Server = server,
            CertificateAuthorities = cas,
            Token = token,
            Namespace = ns.Length == 0 ? "default" : ns,
            Source = $"in-cluster service account ({server.Authority})",
        };
    }

    internal static X509Certificate2Collection ParseCertificates(byte[] pem, string what)
    {
        var collection = new X509Certificate2Collection();
        try { collection.ImportFromPem(System.Text.Encoding.UTF8.GetString(pem)); }
        catch (CryptographicException e) { throw new KubeConfigException($"{what}: not a PEM certificate bundle: {e.Message}", e); }
        if (collection.Count == 0) throw new KubeConfigException($"{what}: no PEM certificate found");
        return collection;
    }

    internal static X509Certificate2 ParseClientCertificate(byte[] certPem, byte[] keyPem, string what)
    {
        try
        {
            // PKCS#8 ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") and SEC1 ("EC PRIVATE KEY") keys
            return X509Certificate2.CreateFromPem(
                System.Text.Encoding.UTF8.GetString(certPem), System.Text.Encoding.UTF8.GetString(keyPem));
        }
        catch (CryptographicException e)
        {
            throw new KubeConfigException($"{what}: not a usable PEM certificate and private key: {e.Message}", e);
        }
    }

    /// <summary>Field access with messages that name the file and the field.</summary>
    private sealed class Reader(string fileName, string baseDirectory)
    {
        public string Resolve(string path) => Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(baseDirectory, path));

        public string? String(YamlMappingNode map, string key, string field)
        {
            if (!map.Children.TryGetValue(new YamlScalarNode(key), out var node)) return null;
            return node is YamlScalarNode s
                ? s.Value
                : throw new KubeConfigException($"{fileName}: {field} must be a string");
        }

        public bool Bool(YamlMappingNode map, string key, string field)
        {
            var text = String(map, key, field);
            if (string.IsNullOrEmpty(text)) return false;
            return text.ToLowerInvariant() switch
            {
                "true" or "yes" or "on" => true,
                "false" or "no" or "off" => false,
                _ => throw new KubeConfigException($"{fileName}: {field}: '{text}' is not a boolean"),
            };
        }

        /// <summary><c>{key}-data</c> (base64) wins over <c>{key}</c> (a file, relative to the kubeconfig).</summary>
        public (byte[] Bytes, string Field)? Bytes(YamlMappingNode map, string key, string parent)
        {
            var data = String(map, key + "-data", $"{parent}.{key}-data");
            if (!string.IsNullOrEmpty(data))
            {
                try { return (Convert.FromBase64String(data.Trim()), key + "-data"); }
                catch (FormatException e) { throw new KubeConfigException($"{fileName}: {parent}.{key}-data is not valid base64", e); }
            }
            var file = String(map, key, $"{parent}.{key}");
            if (string.IsNullOrEmpty(file)) return null;
            var full = Resolve(file);
            try { return (File.ReadAllBytes(full), key); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new KubeConfigException($"{fileName}: {parent}.{key}: cannot read {full}: {e.Message}", e);
            }
        }

        /// <summary>The <paramref name="inner"/> mapping of the entry of list <paramref name="list"/> with that name.</summary>
        public YamlMappingNode Named(YamlMappingNode root, string list, string inner, string name)
        {
            if (!root.Children.TryGetValue(new YamlScalarNode(list), out var node) || node is not YamlSequenceNode seq)
                throw new KubeConfigException($"{fileName}: {list} is missing (looking for {list}[name={name}])");
            foreach (var item in seq.Children)
            {
                if (item is not YamlMappingNode entry) continue;
                if (String(entry, "name", $"{list}[].name") != name) continue;
                if (entry.Children.TryGetValue(new YamlScalarNode(inner), out var body) && body is YamlMappingNode mapping)
                    return mapping;
                throw new KubeConfigException($"{fileName}: {list}[name={name}].{inner} is missing");
            }
            throw new KubeConfigException($"{fileName}: {list}[name={name}] not found");
        }
    }
}

using System.Security.Cryptography.X509Certificates;

namespace Crsc.Kube;

/// <summary>
/// Everything needed to reach one API server: where it is, whom to trust, who we are. Built by
/// <see cref="KubeConfigLoader"/> from a kubeconfig file or the in-cluster service account, or by hand in tests.
/// </summary>
public sealed record KubeClientConfig
{
    /// <summary>The API server, e.g. <c>https://10.96.0.1:443</c>.</summary>
    public required Uri Server { get; init; }

    /// <summary>The CAs the server certificate must chain to. Null: the system trust store.</summary>
    public X509Certificate2Collection? CertificateAuthorities { get; init; }

    /// <summary>A client certificate with its private key (RSA or EC), or null.</summary>
    public X509Certificate2? ClientCertificate { get; init; }

    /// <summary>The bearer token, asked for on every request (so a rotated token file is picked up), or null.</summary>
    public IBearerTokenSource? Token { get; init; }

    /// <summary>Accept any server certificate. For development clusters only.</summary>
    public bool InsecureSkipTlsVerify { get; init; }

    /// <summary>The namespace of the context (or of the service account); <c>default</c> when unset.</summary>
    public string Namespace { get; init; } = "default";

    /// <summary>Where this came from, for messages (<c>kubeconfig /root/.kube/config, context kind-kind</c>).</summary>
    public string Source { get; init; } = "configuration";

    /// <summary>Timeout of one request that is not a watch.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Timeout of establishing a connection (TCP + TLS).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>A kubeconfig or in-cluster configuration that cannot be used; the message names the file and field.</summary>
public sealed class KubeConfigException(string message, Exception? inner = null) : Exception(message, inner);

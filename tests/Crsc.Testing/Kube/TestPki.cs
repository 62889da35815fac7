using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Crsc.Testing.Kube;

/// <summary>
/// A throw-away certificate authority made at test time: server certificates for 127.0.0.1/localhost and client
/// certificates with RSA or EC keys, exportable as PEM for kubeconfig files.
/// </summary>
public sealed class TestPki : IDisposable
{
    private TestPki(X509Certificate2 ca) => Ca = ca;

    /// <summary>The CA certificate, with its private key.</summary>
    public X509Certificate2 Ca { get; }

    public string CaPem => Ca.ExportCertificatePem();

    public static TestPki Create(string name = "crsc-test-ca")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return new TestPki(request.CreateSelfSigned(now.AddDays(-1), now.AddDays(30)));
    }

    /// <summary>A server certificate for <c>127.0.0.1</c>, <c>::1</c> and <c>localhost</c> (plus any extra names).</summary>
    public X509Certificate2 IssueServer(params string[] extraNames)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=kube-apiserver", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        san.AddDnsName("localhost");
        foreach (var name in extraNames) san.AddDnsName(name);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        return Sign(request, key);
    }

    /// <summary>A client certificate (CN = user, O = group) with an RSA or an EC (P-256) key.</summary>
    public X509Certificate2 IssueClient(string user, bool ec = false, string? group = null)
    {
        var subject = $"CN={user}" + (group is null ? "" : $", O={group}");
        var eku = new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false);
        if (ec)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(eku);
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
            return Sign(request, key);
        }
        using var rsa = RSA.Create(2048);
        var rsaRequest = new CertificateRequest(subject, rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        rsaRequest.CertificateExtensions.Add(eku);
        rsaRequest.CertificateExtensions.Add(new X509KeyUsageExtension(
            X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        return Sign(rsaRequest, rsa);
    }

    private X509Certificate2 Sign(CertificateRequest request, AsymmetricAlgorithm key)
    {
        var now = DateTimeOffset.UtcNow;
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Ca, true, false));
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        // the CA key is EC: sign through a generator so RSA requests can be signed too
        using var caKey = Ca.GetECDsaPrivateKey()!;
        using var issued = request.Create(Ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey),
            now.AddDays(-1), now.AddDays(29), serial);
        var cert = issued;
        return key switch
        {
            RSA rsa => cert.CopyWithPrivateKey(rsa),
            ECDsa ec => cert.CopyWithPrivateKey(ec),
            _ => throw new ArgumentException("RSA or ECDsa keys only", nameof(key)),
        };
    }

    /// <summary>The private key as PEM: PKCS#1 <c>RSA PRIVATE KEY</c> / SEC1 <c>EC PRIVATE KEY</c>, or PKCS#8.</summary>
    public static string KeyPem(X509Certificate2 cert, bool pkcs8 = false)
    {
        if (cert.GetRSAPrivateKey() is { } rsa)
            using (rsa) return pkcs8 ? rsa.ExportPkcs8PrivateKeyPem() : rsa.ExportRSAPrivateKeyPem();
        if (cert.GetECDsaPrivateKey() is { } ec)
            using (ec) return pkcs8 ? ec.ExportPkcs8PrivateKeyPem() : ec.ExportECPrivateKeyPem();
        throw new ArgumentException("the certificate has no RSA or EC private key", nameof(cert));
    }

    /// <summary>Whether <paramref name="cert"/> was issued by this CA.</summary>
    public bool Issued(X509Certificate2 cert)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(cert);
    }

    public void Dispose() => Ca.Dispose();
}

using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Crsc.Testing;

/// <summary>Self-signed TLS certificates written as PEM files (the key 0600), for servers a test starts on loopback.</summary>
public static class TestCertificates
{
    /// <summary>A certificate for <c>127.0.0.1</c>, <c>::1</c> and <c>localhost</c> in <paramref name="dir"/>.</summary>
    public static (string CertFile, string KeyFile, X509Certificate2 Certificate) WriteSelfSigned(string dir, string name = "crsc-test")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var certFile = Path.Combine(dir, name + ".crt");
        var keyFile = Path.Combine(dir, name + ".key");
        File.WriteAllText(certFile, certificate.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return (certFile, keyFile, certificate);
    }
}

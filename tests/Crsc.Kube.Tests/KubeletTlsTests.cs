using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Crsc.Controllers.Runtime;
using Crsc.Kube.Kubelet;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Crsc.Testing.Kubelet;

namespace Crsc.Kube.Tests;

/// <summary>
/// Who the kubelet client believes is the kubelet: only a server whose certificate chains to the configured CA and
/// names the expected server; plain HTTP only when explicitly allowed. A fake kubelet on loopback stands for
/// whatever binds the kubelet's port.
/// </summary>
public sealed class KubeletTlsTests : IAsyncLifetime
{
    private static readonly CheckpointTarget Target = new("shop", "web-0", "app");
    private readonly TempDir _tmp = new();
    private readonly TestPki _pki = TestPki.Create("cluster-ca");
    private X509Certificate2 _selfSigned = null!;
    private FakeKubelet _kubelet = null!;

    public async Task InitializeAsync()
    {
        // like a kubelet's own serving certificate: self-signed, for 127.0.0.1 (the name the client dials)
        _selfSigned = SelfSigned();
        _kubelet = await FakeKubelet.StartAsync(_selfSigned);
    }

    public async Task DisposeAsync()
    {
        await _kubelet.DisposeAsync();
        _selfSigned.Dispose();
        _pki.Dispose();
        _tmp.Dispose();
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=node-a@1700000000", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("node-a");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign, true));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        var now = DateTimeOffset.UtcNow;
        using var cert = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null);
    }

    private string WriteCa(X509Certificate2 cert, string name)
    {
        var path = _tmp.Combine(name);
        File.WriteAllText(path, cert.ExportCertificatePem());
        return path;
    }

    [Fact]
    public async Task A_kubelet_whose_certificate_is_not_in_the_ca_file_is_refused_and_the_error_names_the_url()
    {
        using var client = new KubeletCheckpointClient(new KubeletClientOptions { Url = _kubelet.Url, CaFile = WriteCa(_pki.Ca, "cluster-ca.crt") });

        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => client.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default));

        Assert.Equal("TLS", e.Code);
        Assert.Contains($"TLS with the kubelet at {_kubelet.Url}", e.Message);
        Assert.Contains("cluster-ca.crt", e.Message);
        Assert.Empty(_kubelet.Requests);
    }

    [Fact]
    public async Task Without_a_ca_the_system_trust_store_decides_and_refuses_a_self_signed_kubelet()
    {
        using var client = new KubeletCheckpointClient(new KubeletClientOptions { Url = _kubelet.Url });

        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => client.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default));

        Assert.Equal("TLS", e.Code);
        Assert.Contains("a CA the system trusts", e.Message);
        Assert.Empty(_kubelet.Requests);
    }

    [Fact]
    public async Task The_kubelets_own_certificate_in_the_ca_file_is_trusted()
    {
        using var client = new KubeletCheckpointClient(new KubeletClientOptions { Url = _kubelet.Url, CaFile = WriteCa(_selfSigned, "kubelet.crt") });

        var archive = await client.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default);

        Assert.Equal("/var/lib/kubelet/checkpoints/x.tar", archive.Path);
        Assert.Equal(["shop/web-0/app"], _kubelet.Requests);
    }

    [Fact]
    public async Task The_certificate_must_name_the_server_name_not_just_the_dialled_address()
    {
        var ca = WriteCa(_selfSigned, "kubelet.crt");
        using (var named = new KubeletCheckpointClient(new KubeletClientOptions { Url = _kubelet.Url, CaFile = ca, ServerName = "node-a" }))
            await named.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default);

        using var other = new KubeletCheckpointClient(new KubeletClientOptions { Url = _kubelet.Url, CaFile = ca, ServerName = "node-b" });
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => other.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default));
        Assert.Equal("TLS", e.Code);
        Assert.Contains("for node-b", e.Message);
        Assert.Single(_kubelet.Requests);
    }

    [Fact]
    public async Task Cluster_cas_given_by_the_caller_are_trusted_without_a_ca_file()
    {
        using var serving = _pki.IssueServer();
        await using var kubelet = await FakeKubelet.StartAsync(serving);
        using var client = new KubeletCheckpointClient(new KubeletClientOptions
        {
            Url = kubelet.Url, CertificateAuthorities = [_pki.Ca], CertificateAuthoritiesSource = "the cluster CA of the test",
        });

        await client.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default);

        using var wrong = new KubeletCheckpointClient(new KubeletClientOptions
        {
            Url = _kubelet.Url, CertificateAuthorities = [_pki.Ca], CertificateAuthoritiesSource = "the cluster CA of the test",
        });
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => wrong.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default));
        Assert.Contains("signed by the cluster CA of the test", e.Message);
        Assert.Empty(_kubelet.Requests);
        Assert.Single(kubelet.Requests);
    }

    [Fact]
    public async Task Plain_http_is_refused_unless_explicitly_allowed()
    {
        await using var http = await FakeKubelet.StartAsync(null);

        var e = Assert.Throws<ArgumentException>(() => new KubeletCheckpointClient(new KubeletClientOptions { Url = http.Url }));
        Assert.Contains($"kubelet.url '{http.Url}' is http://", e.Message);

        using var allowed = new KubeletCheckpointClient(new KubeletClientOptions { Url = http.Url, AllowHttp = true });
        await allowed.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default);
        Assert.Single(http.Requests);
    }
}

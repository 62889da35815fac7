using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Crsc.Controllers.Runtime;
using Crsc.Kube.Kubelet;
using Crsc.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Crsc.Cri.Tests;

/// <summary>The kubelet checkpoint client against a small HTTPS kubelet on loopback with a CA made here.</summary>
public sealed class KubeletCheckpointClientTests : IAsyncLifetime
{
    private const string Token = "s3cr3t-token";
    private readonly TempDir _tmp = new();
    private TestPki _pki = null!;
    private WebApplication _app = null!;
    private Uri _url = null!;
    private readonly List<(string Path, string Query, string? Auth, bool ClientCert)> _requests = [];

    /// <summary>What the fake kubelet answers for a container name (the route's last segment).</summary>
    private Func<string, (int Status, string Body)> _answer = _ => (200, "{\"items\":[\"/var/lib/kubelet/checkpoints/checkpoint-p_ns-c-2025.tar\"]}");

    public async Task InitializeAsync()
    {
        _pki = TestPki.Create(_tmp);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificate = _pki.Server,
            ClientCertificateMode = ClientCertificateMode.AllowCertificate,
            ClientCertificateValidation = (_, _, _) => true,
        })));
        _app = builder.Build();
        _app.Run(HandleAsync);
        await _app.StartAsync();
        string address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _url = new Uri(address.Replace("[::1]", "127.0.0.1").Replace("localhost", "127.0.0.1"));
    }

    private async Task HandleAsync(HttpContext ctx)
    {
        var cert = await ctx.Connection.GetClientCertificateAsync();
        string? auth = ctx.Request.Headers.Authorization.FirstOrDefault();
        lock (_requests) _requests.Add((ctx.Request.Path.Value!, ctx.Request.QueryString.Value ?? "", auth, cert is not null));

        bool certOk = cert is not null && cert.Thumbprint == _pki.Client.Thumbprint;
        bool tokenOk = auth == "Bearer " + Token;
        if (!certOk && !tokenOk)
        {
            ctx.Response.StatusCode = auth is null && cert is null ? 401 : 403;
            await ctx.Response.WriteAsync(ctx.Response.StatusCode == 401 ? "Unauthorized" : "Forbidden (user=x, verb=create, resource=nodes, subresource(s)=[checkpoint])");
            return;
        }
        var segments = ctx.Request.Path.Value!.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (ctx.Request.Method != "POST" || segments.Length != 4 || segments[0] != "checkpoint")
        {
            ctx.Response.StatusCode = 404;
            await ctx.Response.WriteAsync("404 page not found\n");
            return;
        }
        var (status, body) = _answer(Uri.UnescapeDataString(segments[3]));
        ctx.Response.StatusCode = status;
        if (status == 200) ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(body);
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _pki.Dispose();
        _tmp.Dispose();
    }

    private KubeletCheckpointClient ClientWithCert() => new(new KubeletClientOptions
    {
        Url = _url,
        ClientCertificateFile = _pki.ClientCertFile,
        ClientKeyFile = _pki.ClientKeyFile,
        CaFile = _pki.CaFile,
    });

    private static readonly CheckpointTarget Target = new("ns", "p", "c");

    [Fact]
    public async Task Checkpoints_with_a_client_certificate_and_a_ca()
    {
        using var client = ClientWithCert();
        var archive = await client.CheckpointAsync(Target, "/ignored.tar", TimeSpan.FromSeconds(90), default);
        Assert.Equal("/var/lib/kubelet/checkpoints/checkpoint-p_ns-c-2025.tar", archive.Path);
        var r = Assert.Single(_requests);
        Assert.Equal("/checkpoint/ns/p/c", r.Path);
        Assert.Equal("?timeout=90", r.Query);
        Assert.True(r.ClientCert);
        Assert.Null(r.Auth);
    }

    [Fact]
    public async Task Checkpoints_with_a_bearer_token_file()
    {
        string tokenFile = _tmp.Combine("token");
        await File.WriteAllTextAsync(tokenFile, Token + "\n");
        using var client = new KubeletCheckpointClient(new KubeletClientOptions { Url = _url, BearerTokenFile = tokenFile, CaFile = _pki.CaFile });
        var archive = await client.CheckpointAsync(Target, "", TimeSpan.FromSeconds(1.2), default);
        Assert.StartsWith("/var/lib/kubelet/checkpoints/", archive.Path);
        var r = Assert.Single(_requests);
        Assert.Equal("Bearer " + Token, r.Auth);
        Assert.Equal("?timeout=2", r.Query);
    }

    [Fact]
    public async Task Names_are_escaped_in_the_path()
    {
        string? seen = null;
        _answer = name => { seen = name; return (200, "{\"items\":[\"/x.tar\"]}"); };
        using var client = ClientWithCert();
        await client.CheckpointAsync(new CheckpointTarget("ns", "p", "a b/c"), "", TimeSpan.FromSeconds(5), default);
        Assert.Equal("/checkpoint/ns/p/a b%2Fc", Assert.Single(_requests).Path);
        Assert.Equal("a b/c", seen);
    }

    [Fact]
    public async Task A_server_signed_by_another_ca_is_refused()
    {
        using var other = new TempDir();
        using var otherPki = TestPki.Create(other);
        using var client = new KubeletCheckpointClient(new KubeletClientOptions { Url = _url, BearerToken = Token, CaFile = otherPki.CaFile });
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => client.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default));
        Assert.Equal("TLS", e.Code);
        Assert.False(e.Transient);
        Assert.Empty(_requests);
    }

    [Fact]
    public async Task No_credentials_is_401_unauthorized()
    {
        using var client = new KubeletCheckpointClient(new KubeletClientOptions { Url = _url, CaFile = _pki.CaFile });
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => client.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default));
        Assert.Equal(ContainerRuntimeErrorKind.Unauthorized, e.Kind);
        Assert.Equal("401", e.Code);
    }

    [Fact]
    public async Task A_refused_token_is_403_unauthorized()
    {
        using var client = new KubeletCheckpointClient(new KubeletClientOptions { Url = _url, BearerToken = "wrong", CaFile = _pki.CaFile });
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => client.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default));
        Assert.Equal(ContainerRuntimeErrorKind.Unauthorized, e.Kind);
        Assert.Equal("403", e.Code);
        Assert.Contains("nodes/checkpoint", e.Message);
    }

    [Theory]
    [InlineData("pod does not exist")]
    [InlineData("container c does not exist")]
    public async Task Missing_pod_or_container_is_not_found(string body)
    {
        _answer = _ => (404, body);
        using var client = ClientWithCert();
        var e = await Assert.ThrowsAsync<ContainerNotFoundException>(() => client.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default));
        Assert.Equal(body, e.RuntimeMessage);
        Assert.Contains("ns/p/c", e.Message);
    }

    [Fact]
    public async Task Feature_gate_off_is_checkpoint_not_supported()
    {
        using var client = new KubeletCheckpointClient(new KubeletClientOptions
        {
            Url = new Uri(_url, "/not-the-kubelet-root/"), BearerToken = Token, CaFile = _pki.CaFile,
        });
        var e = await Assert.ThrowsAsync<CheckpointNotSupportedException>(() => client.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default));
        Assert.Contains("ContainerCheckpoint feature gate", e.Message);
        Assert.Equal("404", e.Code);
    }

    [Fact]
    public async Task Runtime_failure_is_500_with_the_message_kept()
    {
        const string msg = "checkpointing of ns/p/c failed (rpc error: code = Unknown desc = criu failed: type NOTIFY errno 0)";
        _answer = _ => (500, msg);
        using var client = ClientWithCert();
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => client.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default));
        Assert.Equal(ContainerRuntimeErrorKind.Failed, e.Kind);
        Assert.Equal("500", e.Code);
        Assert.Equal(msg, e.RuntimeMessage);
        Assert.Contains("criu failed", e.Message);
    }

    [Fact]
    public async Task Runtime_without_checkpoint_support_behind_the_kubelet_is_not_supported()
    {
        _answer = _ => (500, "checkpointing of ns/p/c failed (rpc error: code = Unimplemented desc = method CheckpointContainer not implemented)");
        using var client = ClientWithCert();
        await Assert.ThrowsAsync<CheckpointNotSupportedException>(() => client.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default));
    }

    [Theory]
    [InlineData("{\"items\":[]}")]
    [InlineData("not json")]
    [InlineData("{\"kind\":\"Status\"}")]
    public async Task An_answer_without_an_archive_path_is_an_error(string body)
    {
        _answer = _ => (200, body);
        using var client = ClientWithCert();
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => client.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default));
        Assert.Contains("names no archive", e.Message);
    }

    [Fact]
    public async Task An_unreachable_kubelet_is_transient()
    {
        using var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        using var client = new KubeletCheckpointClient(new KubeletClientOptions { Url = new Uri($"https://127.0.0.1:{port}"), BearerToken = Token });
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => client.CheckpointAsync(Target, "", TimeSpan.FromSeconds(5), default));
        Assert.Equal(ContainerRuntimeErrorKind.Unavailable, e.Kind);
        Assert.True(e.Transient);
    }
}

/// <summary>A CA, a server certificate for 127.0.0.1 and a client certificate, written as PEM files.</summary>
internal sealed class TestPki : IDisposable
{
    public required X509Certificate2 Ca { get; init; }
    public required X509Certificate2 Server { get; init; }
    public required X509Certificate2 Client { get; init; }
    public required string CaFile { get; init; }
    public required string ClientCertFile { get; init; }
    public required string ClientKeyFile { get; init; }

    public static TestPki Create(TempDir dir)
    {
        var now = DateTimeOffset.UtcNow;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caReq = new CertificateRequest("CN=crsc-test-ca", caKey, HashAlgorithmName.SHA256);
        caReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caReq.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caReq.PublicKey, false));
        var ca = caReq.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));

        X509Certificate2 Issue(string cn, bool server)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var req = new CertificateRequest(cn, key, HashAlgorithmName.SHA256);
            req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
            req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
            req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
                [new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
            if (server)
            {
                var san = new SubjectAlternativeNameBuilder();
                san.AddIpAddress(IPAddress.Loopback);
                san.AddDnsName("localhost");
                req.CertificateExtensions.Add(san.Build());
            }
            var serial = RandomNumberGenerator.GetBytes(16);
            serial[0] &= 0x7F;
            using var pub = req.Create(ca, now.AddMinutes(-5), now.AddHours(12), serial);
            using var withKey = pub.CopyWithPrivateKey(key);
            // a PKCS#12 round trip gives Kestrel/SslStream a key they can use on every platform
            return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
        }

        var serverCert = Issue("CN=127.0.0.1", server: true);
        var clientCert = Issue("CN=system:kube-apiserver-kubelet-client, O=system:masters", server: false);

        string caFile = dir.Combine("ca.crt"), certFile = dir.Combine("client.crt"), keyFile = dir.Combine("client.key");
        File.WriteAllText(caFile, ca.ExportCertificatePem());
        File.WriteAllText(certFile, clientCert.ExportCertificatePem());
        File.WriteAllText(keyFile, clientCert.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        return new TestPki { Ca = ca, Server = serverCert, Client = clientCert, CaFile = caFile, ClientCertFile = certFile, ClientKeyFile = keyFile };
    }

    public void Dispose()
    {
        Ca.Dispose();
        Server.Dispose();
        Client.Dispose();
    }
}

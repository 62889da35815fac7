using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Testing;
using Crsc.Testing.Kube;

namespace Crsc.Kube.Tests;

public sealed class TlsAndAuthTests
{
    private readonly CancellationToken _ct = TestClients.Timeout(60);

    private static KubeClientConfig Config(FakeApiServer server, TestPki? trust = null, bool insecure = false) => new()
    {
        Server = server.Url,
        CertificateAuthorities = trust is null ? null : new() { trust.Ca },
        InsecureSkipTlsVerify = insecure,
        RequestTimeout = TimeSpan.FromSeconds(10),
    };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Client_certificate_over_tls_with_a_custom_ca_and_http2(bool ec)
    {
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { Tls = true });
        using var client = server.Pki!.IssueClient("system:node:n1", ec);
        using var api = new KubeApi(Config(server, server.Pki) with { ClientCertificate = client });
        await api.Resource(Resources.Nodes).CreateAsync(new Node { Metadata = new() { Name = "n1" } }, _ct);
        var request = server.Requests[^1];
        Assert.Equal("system:node:n1", request.User);
        Assert.Equal("HTTP/2", request.Protocol);
    }

    [Fact]
    public async Task Client_certificate_from_a_kubeconfig_with_an_ec_key()
    {
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { Tls = true });
        using var client = server.Pki!.IssueClient("crsc", ec: true);
        using var dir = new TempDir();
        var path = dir.Combine("config");
        File.WriteAllText(path, server.KubeconfigYaml(clientCertificate: client, ns: "crsc-system"));
        using var api = KubeApi.FromKubeconfig(path);
        Assert.Equal("crsc-system", api.DefaultNamespace);
        var created = await api.Resource(Resources.ConfigMaps).CreateAsync(new ConfigMap { Metadata = new() { Name = "c" } }, _ct);
        Assert.Equal("crsc-system", created.Metadata.Namespace);
        Assert.Equal("crsc", server.Requests[^1].User);
    }

    [Fact]
    public async Task A_server_certificate_from_another_ca_is_rejected_unless_insecure()
    {
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { Tls = true, Tokens = ["t"] });
        using var other = TestPki.Create("someone-else");
        using (var wrong = new KubeApi(Config(server, other) with { Token = new StaticTokenSource("t") }))
        {
            var e = await Assert.ThrowsAsync<KubeUnavailableException>(() => wrong.Resource(Resources.Pods).GetAsync("ns", "p", _ct));
            Assert.Contains(server.Url.Authority, e.Message);
        }
        // no CA configured: the system trust store does not know the test CA either
        using (var system = new KubeApi(Config(server) with { Token = new StaticTokenSource("t") }))
            await Assert.ThrowsAsync<KubeUnavailableException>(() => system.Resource(Resources.Pods).GetAsync("ns", "p", _ct));
        using (var insecure = new KubeApi(Config(server, insecure: true) with { Token = new StaticTokenSource("t") }))
            await Assert.ThrowsAsync<NotFoundException>(() => insecure.Resource(Resources.Pods).GetAsync("ns", "p", _ct));
        Assert.DoesNotContain(server.Requests, r => r.User is null);
    }

    [Fact]
    public async Task A_client_certificate_from_another_ca_is_not_accepted()
    {
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { Tls = true });
        using var other = TestPki.Create("someone-else");
        using var client = other.IssueClient("intruder");
        using var api = new KubeApi(Config(server, server.Pki) with { ClientCertificate = client });
        // Kestrel refuses the handshake (the certificate does not validate) or the request is anonymous (401)
        var e = await Assert.ThrowsAnyAsync<Exception>(() => api.Resource(Resources.Pods).GetAsync("ns", "p", _ct));
        Assert.True(e is KubeUnavailableException or UnauthorizedException, e.ToString());
    }

    [Fact]
    public async Task Bearer_token_is_checked_and_a_rejected_one_is_unauthorized()
    {
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { Tokens = ["good"] });
        using var good = new KubeApi(Config(server) with { Token = new StaticTokenSource("good") });
        await Assert.ThrowsAsync<NotFoundException>(() => good.Resource(Resources.Pods).GetAsync("ns", "p", _ct));
        using var bad = new KubeApi(Config(server) with { Token = new StaticTokenSource("bad") });
        var e = await Assert.ThrowsAsync<UnauthorizedException>(() => bad.Resource(Resources.Pods).GetAsync("ns", "p", _ct));
        Assert.Equal(401, e.Code);
        Assert.Equal("Unauthorized", e.Reason);
    }

    [Fact]
    public async Task A_rotated_token_file_is_picked_up()
    {
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { Tls = true, Tokens = ["token-1"] });
        using var dir = new TempDir();
        var tokenPath = dir.Combine("token");
        File.WriteAllText(tokenPath, "token-1\n");
        using var api = new KubeApi(Config(server, server.Pki) with { Token = new FileTokenSource(tokenPath) });
        var pods = api.Resource(Resources.Pods);
        await Assert.ThrowsAsync<NotFoundException>(() => pods.GetAsync("ns", "p", _ct));
        Assert.Equal("token:token-1", server.Requests[^1].User);

        // the kubelet rotates the projected token: the server takes only the new one from now on
        server.AcceptToken("token-2");
        server.RevokeToken("token-1");
        var temp = dir.Combine("token.tmp");
        File.WriteAllText(temp, "token-2\n");
        File.Move(temp, tokenPath, overwrite: true);
        await Assert.ThrowsAsync<NotFoundException>(() => pods.GetAsync("ns", "p", _ct));
        Assert.Equal("token:token-2", server.Requests[^1].User);
    }

    [Fact]
    public async Task A_401_makes_the_client_read_the_token_file_again_once()
    {
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { Tokens = ["old"] });
        using var dir = new TempDir();
        var tokenPath = dir.Combine("token");
        File.WriteAllText(tokenPath, "old");
        var stamp = File.GetLastWriteTimeUtc(tokenPath);
        var source = new FileTokenSource(tokenPath) { MaxAge = TimeSpan.FromHours(1) };
        using var api = new KubeApi(Config(server) with { Token = source });
        var pods = api.Resource(Resources.Pods);
        await Assert.ThrowsAsync<NotFoundException>(() => pods.GetAsync("ns", "p", _ct));

        // same size and modification time: only the 401 reveals the rotation
        File.WriteAllText(tokenPath, "new");
        File.SetLastWriteTimeUtc(tokenPath, stamp);
        server.AcceptToken("new");
        server.RevokeToken("old");
        await Assert.ThrowsAsync<NotFoundException>(() => pods.GetAsync("ns", "p", _ct));
        Assert.Equal(["token:old", null, "token:new"], server.Requests.Select(r => r.User));
    }
}

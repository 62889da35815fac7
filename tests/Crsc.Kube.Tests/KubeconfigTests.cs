using System.Text;
using Crsc.Testing;
using Crsc.Testing.Kube;

namespace Crsc.Kube.Tests;

public sealed class KubeconfigTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly TestPki _pki = TestPki.Create();

    public void Dispose()
    {
        _pki.Dispose();
        _dir.Dispose();
    }

    private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    private string Write(string yaml, string name = "config")
    {
        var path = _dir.Combine(name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, yaml);
        return path;
    }

    private const string TwoContexts = """
        apiVersion: v1
        kind: Config
        current-context: dev
        clusters:
        - name: dev-cluster
          cluster:
            server: https://dev.example:6443
            insecure-skip-tls-verify: true
        - name: prod-cluster
          cluster:
            server: https://10.0.0.1:443
            certificate-authority: pki/ca.crt
        contexts:
        - name: dev
          context: {cluster: dev-cluster, user: dev-user}
        - name: prod
          context:
            cluster: prod-cluster
            user: prod-user
            namespace: crsc-system
        users:
        - name: dev-user
          user:
            token: dev-token
        - name: prod-user
          user:
            tokenFile: secrets/token
        """;

    [Fact]
    public void Current_context_and_a_named_one()
    {
        Write(_pki.CaPem, "kube/pki/ca.crt");
        Write("prod-token\n", "kube/secrets/token");
        var path = Write(TwoContexts, "kube/config");

        var dev = KubeConfigLoader.FromFile(path);
        Assert.Equal(new Uri("https://dev.example:6443"), dev.Server);
        Assert.True(dev.InsecureSkipTlsVerify);
        Assert.Equal("dev-token", dev.Token!.GetToken());
        Assert.Equal("default", dev.Namespace);
        Assert.Null(dev.CertificateAuthorities);
        Assert.Contains("context dev", dev.Source);

        // relative paths resolve against the kubeconfig's directory, not the working directory
        var prod = KubeConfigLoader.FromFile(path, "prod");
        Assert.Equal("crsc-system", prod.Namespace);
        Assert.False(prod.InsecureSkipTlsVerify);
        Assert.Equal(_pki.Ca.Thumbprint, Assert.Single(prod.CertificateAuthorities!).Thumbprint);
        var token = Assert.IsType<FileTokenSource>(prod.Token);
        Assert.Equal(_dir.Combine("kube", "secrets", "token"), token.Path);
        Assert.Equal("prod-token", token.GetToken());
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Client_certificate_and_key_as_data_or_files_rsa_and_ec(bool ec, bool files)
    {
        using var cert = _pki.IssueClient("crsc", ec);
        var certPem = cert.ExportCertificatePem();
        var keyPem = TestPki.KeyPem(cert, pkcs8: files);
        string user;
        if (files)
        {
            Write(certPem, "certs/client.crt");
            Write(keyPem, "certs/client.key");
            user = "client-certificate: certs/client.crt\n    client-key: certs/client.key";
        }
        else user = $"client-certificate-data: {B64(certPem)}\n    client-key-data: {B64(keyPem)}";
        var path = Write($"""
            current-context: c
            clusters:
            - name: k
              cluster:
                server: https://127.0.0.1:6443
                certificate-authority-data: {B64(_pki.CaPem)}
            contexts:
            - name: c
              context: {"{"}cluster: k, user: u{"}"}
            users:
            - name: u
              user:
                {user}
            """);
        var config = KubeConfigLoader.FromFile(path);
        Assert.NotNull(config.ClientCertificate);
        Assert.True(config.ClientCertificate!.HasPrivateKey);
        Assert.Equal(cert.Thumbprint, config.ClientCertificate.Thumbprint);
        Assert.Null(config.Token);
    }

    [Theory]
    [InlineData("current-context: nope\nclusters: []\ncontexts: []\n", "contexts[name=nope] not found")]
    [InlineData("contexts: []\n", "current-context is not set")]
    [InlineData("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {}\n", "clusters[name=k].cluster.server is missing")]
    [InlineData("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {server: 'ftp://x'}\n", "clusters[name=k].cluster.server")]
    [InlineData("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {server: 'https://x', certificate-authority-data: '%%%'}\n", "clusters[name=k].cluster.certificate-authority-data is not valid base64")]
    [InlineData("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {server: 'https://x', certificate-authority-data: 'aGVsbG8='}\n", "clusters[name=k].cluster.certificate-authority-data: no PEM certificate found")]
    [InlineData("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {server: 'https://x', certificate-authority: missing.crt}\n", "clusters[name=k].cluster.certificate-authority: cannot read")]
    [InlineData("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://x', insecure-skip-tls-verify: maybe}\nusers:\n- name: u\n  user: {}\n", "insecure-skip-tls-verify: 'maybe' is not a boolean")]
    [InlineData("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://x'}\nusers:\n- name: u\n  user: {client-certificate-data: 'aGVsbG8='}\n", "users[name=u].user.client-certificate-data is set but client-key(-data) is missing")]
    [InlineData("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://x'}\nusers:\n- name: u\n  user: {client-certificate-data: 'aGVsbG8=', client-key-data: 'aGVsbG8='}\n", "users[name=u].user.client-certificate-data / users[name=u].user.client-key-data")]
    [InlineData("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://x'}\nusers:\n- name: u\n  user: {exec: {command: aws}}\n", "users[name=u].user.exec is not supported")]
    [InlineData("current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://x'}\nusers:\n- name: u\n  user: {tokenFile: no-such-token}\n", "users[name=u].user.tokenFile")]
    [InlineData("current-context: [\n", "invalid YAML")]
    public void Errors_name_the_file_and_the_field(string yaml, string expected)
    {
        var path = Write(yaml);
        var e = Assert.Throws<KubeConfigException>(() => KubeConfigLoader.FromFile(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("apiVersion: v1\ncurrent-context: &c [*c]\n", "&c at line 2,")]
    [InlineData("apiVersion: v1\nclusters:\n- name: a\n  cluster: &x\n    server: https://a\n- name: b\n  cluster: *x\n", "&x at line 4,")]
    public void Anchors_and_aliases_are_refused_naming_the_file_and_line(string yaml, string expected)
    {
        var path = Write(yaml);
        var e = Assert.Throws<KubeConfigException>(() => KubeConfigLoader.FromFile(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
        Assert.Contains("anchors and aliases are not accepted", e.Message);
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        var e = Assert.Throws<KubeConfigException>(() => KubeConfigLoader.FromFile(_dir.Combine("absent")));
        Assert.Contains(_dir.Combine("absent"), e.Message);
    }

    [Fact]
    public void In_cluster_reads_the_service_account_and_environment()
    {
        var paths = new InClusterPaths(Write("sa-token", "sa/token"), Write(_pki.CaPem, "sa/ca.crt"), Write("crsc-system\n", "sa/namespace"));
        var env = new Dictionary<string, string> { ["KUBERNETES_SERVICE_HOST"] = "10.96.0.1", ["KUBERNETES_SERVICE_PORT"] = "443" };
        var config = KubeConfigLoader.InCluster(paths, n => env.GetValueOrDefault(n));
        Assert.Equal(new Uri("https://10.96.0.1:443"), config.Server);
        Assert.Equal("crsc-system", config.Namespace);
        Assert.Equal("sa-token", config.Token!.GetToken());
        Assert.Single(config.CertificateAuthorities!);

        env["KUBERNETES_SERVICE_HOST"] = "fd00::1";
        Assert.Equal("[fd00::1]", KubeConfigLoader.InCluster(paths, n => env.GetValueOrDefault(n)).Server.Host);

        var outside = Assert.Throws<KubeConfigException>(() => KubeConfigLoader.InCluster(paths, _ => null));
        Assert.Contains("KUBERNETES_SERVICE_HOST", outside.Message);

        var noCa = Assert.Throws<KubeConfigException>(() =>
            KubeConfigLoader.InCluster(paths with { CaPath = _dir.Combine("none") }, n => env.GetValueOrDefault(n)));
        Assert.Contains(_dir.Combine("none"), noCa.Message);
    }

    [Fact]
    public void The_token_file_is_read_again_when_it_changes_or_ages()
    {
        var path = Write("one");
        var time = new ManualTimeProvider();
        var source = new FileTokenSource(path, time) { MaxAge = TimeSpan.FromMinutes(1) };
        Assert.Equal("one", source.GetToken());
        File.WriteAllText(path, "two-changed");
        Assert.Equal("two-changed", source.GetToken());

        // same size, same time stamp: only the age forces a read
        var stamp = File.GetLastWriteTimeUtc(path);
        File.WriteAllText(path, "three-chang");
        File.SetLastWriteTimeUtc(path, stamp);
        Assert.Equal("two-changed", source.GetToken());
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal("three-chang", source.GetToken());

        // a vanished or emptied file keeps the last good token
        File.WriteAllText(path, "");
        Assert.Equal("three-chang", source.GetToken());
    }
}

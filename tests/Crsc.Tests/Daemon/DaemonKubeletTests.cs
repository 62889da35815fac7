using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Crsc.Configuration;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Runtime;
using Crsc.Daemon;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Crsc.Testing.Kubelet;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Crsc.Tests.Daemon;

/// <summary>
/// <c>runtime.checkpointVia: kubelet</c> as <see cref="DaemonHost.Build"/> composes it, against a fake kubelet on
/// loopback with a self-signed serving certificate (as kubelets have): whoever answers at kubelet.url is believed
/// only with the right certificate, and what it names is checked before anything is read or removed.
/// </summary>
public sealed class DaemonKubeletTests : IAsyncLifetime
{
    private const string Secret = "root:x:0:0:root:/root:/bin/bash\n";
    private readonly TempDir _dir = new("crsc-daemon-kubelet-");
    private X509Certificate2 _certificate = null!;
    private FakeKubelet _kubelet = null!;
    private FakeCriServer _cri = null!;
    private WebApplication? _app;
    private string _kubeletDir = null!;
    private string _outside = null!;

    public async Task InitializeAsync()
    {
        _certificate = SelfSigned();
        _kubelet = await FakeKubelet.StartAsync(_certificate);
        _cri = await FakeCriServer.StartAsync(_dir.Combine("cri.sock"));
        _cri.AddRunningContainer("shop", "web-0", "app");
        _kubeletDir = Directory.CreateDirectory(_dir.Combine("kubelet", "checkpoints")).FullName;
        _outside = _dir.Combine("passwd");
        File.WriteAllText(_outside, Secret);
    }

    public async Task DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
        await _kubelet.DisposeAsync();
        await _cri.DisposeAsync();
        _certificate.Dispose();
        _dir.Dispose();
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=node-a@1700000000", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("node-a");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        var now = DateTimeOffset.UtcNow;
        using var cert = request.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null);
    }

    private CrscOptions Options() => new()
    {
        NodeName = "node-a", Socket = _dir.Combine("crsc.sock"),
        CheckpointDir = _dir.Combine("checkpoints"), StagingDir = _dir.Combine("staging"), StateDir = _dir.Combine("state"),
            // the node state and logind of the test, not the machine's
            NodeStateDirectory = _dir.Combine("node-state"), ShutdownBusAddress = "unix:path=" + _dir.Combine("no-bus"),
        RuntimeEndpoint = _cri.Endpoint, ImagesListen = "",
        CheckpointVia = "kubelet", KubeletUrl = _kubelet.Url.ToString(),
    };

    private T Resolve<T>(CrscOptions options) where T : notnull
    {
        _app = DaemonHost.Build(options, new Serilog.LoggerConfiguration().CreateLogger(), TimeProvider.System);
        return _app.Services.GetRequiredService<T>();
    }

    private CrscOptions Trusting()
    {
        var ca = _dir.Combine("kubelet.crt");
        File.WriteAllText(ca, _certificate.ExportCertificatePem());
        // the certificate names node-a (the node), the daemon dials 127.0.0.1
        return Options() with { KubeletCaFile = ca, KubeletCheckpointDir = _kubeletDir };
    }

    private static Task<CheckpointOutcome> CheckpointAsync(ICheckpointRunner runner) =>
        runner.CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None);

    [Fact]
    public async Task Without_a_trusted_ca_the_kubelets_self_signed_certificate_is_refused_and_nothing_is_sent()
    {
        var checkpointer = Resolve<IContainerCheckpointer>(Options());

        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() =>
            checkpointer.CheckpointAsync(new CheckpointTarget("shop", "web-0", "app"), "", TimeSpan.FromSeconds(5), CancellationToken.None));

        Assert.Equal("TLS", e.Code);
        Assert.Contains($"TLS with the kubelet at {_kubelet.Url}", e.Message);
        Assert.Empty(_kubelet.Requests);
    }

    [Fact]
    public async Task With_the_kubelets_certificate_as_kubelet_ca_file_a_checkpoint_is_stored_and_the_kubelets_archive_removed()
    {
        var container = _cri.Containers.Single();
        var sandbox = _cri.Sandboxes.Single();
        var archive = Path.Join(_kubeletDir, "checkpoint-web-0_shop-app-2026-01-01T00:00:00Z.tar");
        _kubelet.Answer = (_, _, _) =>
        {
            CheckpointArchiveWriter.Write(archive, container, sandbox, "runc");
            return (200, FakeKubelet.ArchiveAnswer(archive));
        };

        var outcome = await CheckpointAsync(Resolve<ICheckpointRunner>(Trusting()));

        Assert.Equal(["shop/web-0/app"], _kubelet.Requests);
        Assert.True(File.Exists(outcome.Checkpoint.ArchivePath));
        Assert.False(File.Exists(archive));
    }

    [Fact]
    public async Task A_trusted_kubelet_naming_a_file_outside_its_checkpoint_directory_fails_the_checkpoint_and_the_file_is_untouched()
    {
        _kubelet.Answer = (_, _, _) => (200, FakeKubelet.ArchiveAnswer(_outside));

        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() => CheckpointAsync(Resolve<ICheckpointRunner>(Trusting())));

        Assert.Contains(_outside, e.Message);
        Assert.Contains(_kubeletDir, e.Message);
        Assert.True(File.Exists(_outside));
        Assert.Equal(Secret, File.ReadAllText(_outside));
    }

    [Fact]
    public async Task A_log_file_named_in_the_kubelets_error_is_not_returned_as_criu_log()
    {
        var log = _dir.Combine("root-only.log");
        File.WriteAllText(log, Secret);
        _kubelet.Answer = (_, _, _) => (500, $"checkpointing of shop/web-0/app failed: criu failed; log file: {log}");

        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() => CheckpointAsync(Resolve<ICheckpointRunner>(Trusting())));

        Assert.Null(e.CriuLog);
        Assert.Null(e.CriuLogPath);
        Assert.Equal(Secret, File.ReadAllText(log));
    }
}

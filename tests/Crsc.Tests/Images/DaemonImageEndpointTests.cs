using System.Net;
using System.Net.Sockets;
using Crsc.Configuration;
using Crsc.Controllers.Storage;
using Crsc.Daemon;
using Crsc.Storage;
using Crsc.Tests.Cli;
using Crsc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Crsc.Tests.Images;

/// <summary>
/// The endpoint as <see cref="DaemonHost.Build"/> composes it: its own listener on <c>images.listen</c>, the daemon's
/// store behind it, the publisher the reconciler gets naming what it serves; the node socket does not serve it.
/// </summary>
public sealed class DaemonImageEndpointTests
{
    [Fact]
    public async Task The_daemon_serves_its_stores_images_on_images_listen_and_the_publisher_names_them()
    {
        using var dir = new TempDir("crsc-daemon-images-");
        var options = new CrscOptions
        {
            NodeName = "node-a", Socket = dir.Combine("crsc.sock"),
            CheckpointDir = dir.Combine("checkpoints"), StagingDir = dir.Combine("staging"), StateDir = dir.Combine("state"),
            // the node state and logind of the test, not the machine's
            NodeStateDirectory = dir.Combine("node-state"), ShutdownBusAddress = "unix:path=" + dir.Combine("no-bus"),
            RuntimeEndpoint = "unix://" + dir.Combine("no-runtime.sock"),
            ImagesListen = "127.0.0.1:0",
            ImagesAdvertise = "node-a.example:5055",
        };
        await using var app = DaemonHost.Build(options, new Serilog.LoggerConfiguration().CreateLogger(), TimeProvider.System);
        await app.StartAsync();
        try
        {
            var store = app.Services.GetRequiredService<DiskCheckpointStore>();
            var info = await CliStore.AddAsync(store, "shop", "cart", "cart");
            var endpoint = app.Services.GetRequiredService<ImageEndpoint>();
            Assert.True(endpoint.Serving);
            using var http = new HttpClient { BaseAddress = new Uri(endpoint.Addresses.Single()) };
            // nothing without a token; the daemon's own key (created 0600 at start) makes one that works
            using (var anonymous = await http.GetAsync("/v2/crsc/shop/cart/cart/tags/list"))
                Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            var keyPath = Crsc.Storage.Security.NodeKey.PathIn(options.StateDir);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyPath));
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer",
                new Crsc.Storage.Security.PullTokens(Crsc.Storage.Security.NodeKey.Load(keyPath)).Mint("crsc/shop/cart/cart"));

            var reference = await app.Services.GetRequiredService<ICheckpointImagePublisher>().PublishAsync(info, CancellationToken.None);
            Assert.NotNull(reference);
            Assert.StartsWith("node-a.example:5055/crsc/shop/cart/cart@sha256:", reference);
            var digest = reference[(reference.IndexOf('@') + 1)..];
            using var manifest = await http.GetAsync($"/v2/crsc/shop/cart/cart/manifests/{digest}");
            Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
            Assert.Equal(digest, manifest.Headers.GetValues("Docker-Content-Digest").Single());

            // the node socket keeps its own surface: no registry there
            using var unix = new HttpClient(new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(options.Socket), ct);
                    return new NetworkStream(s, ownsSocket: true);
                },
            }) { BaseAddress = new Uri("http://localhost") };
            Assert.Equal(HttpStatusCode.NotFound, (await unix.GetAsync("/v2/")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/healthz")).StatusCode);
        }
        finally
        {
            await app.StopAsync();
        }
    }

    [Fact]
    public async Task With_images_listen_empty_there_is_no_endpoint_and_no_publisher()
    {
        using var dir = new TempDir("crsc-daemon-images-");
        var options = new CrscOptions
        {
            NodeName = "node-a", Socket = dir.Combine("crsc.sock"),
            CheckpointDir = dir.Combine("checkpoints"), StagingDir = dir.Combine("staging"), StateDir = dir.Combine("state"),
            // the node state and logind of the test, not the machine's
            NodeStateDirectory = dir.Combine("node-state"), ShutdownBusAddress = "unix:path=" + dir.Combine("no-bus"),
            ImagesListen = "",
        };
        await using var app = DaemonHost.Build(options, new Serilog.LoggerConfiguration().CreateLogger(), TimeProvider.System);
        Assert.Null(app.Services.GetService<ImageEndpoint>());
        Assert.Null(app.Services.GetService<ICheckpointImagePublisher>());
    }

    [Theory]
    [InlineData("127.0.0.1:5055")]
    [InlineData("")]
    public async Task With_images_registry_set_checkpoint_images_are_pushed_there_and_the_endpoint_still_serves(string listen)
    {
        using var dir = new TempDir("crsc-daemon-images-");
        var options = new CrscOptions
        {
            NodeName = "node-a", Socket = dir.Combine("crsc.sock"),
            CheckpointDir = dir.Combine("checkpoints"), StagingDir = dir.Combine("staging"), StateDir = dir.Combine("state"),
            // the node state and logind of the test, not the machine's
            NodeStateDirectory = dir.Combine("node-state"), ShutdownBusAddress = "unix:path=" + dir.Combine("no-bus"),
            ImagesListen = listen, ImagesRegistry = "127.0.0.1:5999/team", ImagesRegistryInsecure = "true",
        };
        await using var app = DaemonHost.Build(options, new Serilog.LoggerConfiguration().CreateLogger(), TimeProvider.System);
        var publisher = app.Services.GetRequiredService<ICheckpointImagePublisher>();
        Assert.IsType<Crsc.Storage.Oci.RegistryPushPublisher>(publisher);
        var client = app.Services.GetRequiredService<Crsc.Storage.Oci.RegistryClient>();
        Assert.Equal("127.0.0.1:5999", client.Registry);
        Assert.Equal(listen.Length > 0, app.Services.GetService<ImageEndpoint>() is not null);
        Assert.Null(app.Services.GetService<ICheckpointReplicaTarget>()); // publish: nothing more to copy
    }

    [Fact]
    public async Task With_images_registryMode_replicate_the_endpoint_publishes_and_the_registry_receives_replicas()
    {
        using var dir = new TempDir("crsc-daemon-images-");
        var options = new CrscOptions
        {
            NodeName = "node-a", Socket = dir.Combine("crsc.sock"),
            CheckpointDir = dir.Combine("checkpoints"), StagingDir = dir.Combine("staging"), StateDir = dir.Combine("state"),
            // the node state and logind of the test, not the machine's
            NodeStateDirectory = dir.Combine("node-state"), ShutdownBusAddress = "unix:path=" + dir.Combine("no-bus"),
            ImagesListen = "127.0.0.1:0", ImagesAdvertise = "node-a.example:5055",
            ImagesRegistry = "127.0.0.1:5999/team", ImagesRegistryInsecure = "true", ImagesRegistryMode = "replicate",
        };
        Assert.DoesNotContain(ConfigValidator.Validate(options), e => e.Key.StartsWith("images.registry", StringComparison.Ordinal));
        await using var app = DaemonHost.Build(options, new Serilog.LoggerConfiguration().CreateLogger(), TimeProvider.System);
        Assert.IsType<ServingImagePublisher>(app.Services.GetRequiredService<ICheckpointImagePublisher>());
        var target = app.Services.GetRequiredService<ICheckpointReplicaTarget>();
        Assert.Equal("127.0.0.1:5999/team", target.Registry);
        Assert.True(target.Holds("127.0.0.1:5999/team/shop/cart/cart@sha256:" + new string('a', 64)));
        Assert.False(target.Holds("node-a.example:5055/crsc/shop/cart/cart@sha256:" + new string('a', 64)));
    }
}

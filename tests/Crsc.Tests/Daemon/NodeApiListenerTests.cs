using System.Net;
using System.Net.Sockets;
using System.Text;
using Crsc.Configuration;
using Crsc.Controllers.Storage;
using Crsc.Daemon;
using Crsc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Crsc.Tests.Daemon;

/// <summary>
/// The daemon as <see cref="DaemonHost.Build"/> composes it, with <c>metrics.address</c> on a loopback port, spoken
/// to through real Kestrel listeners: the TCP listener has no authentication, so it answers metrics and health and
/// nothing else; the checkpoint API is on the root-only Unix socket alone.
/// </summary>
public sealed class NodeApiListenerTests
{
    [Fact]
    public async Task The_metrics_address_serves_metrics_and_health_only_and_the_checkpoint_api_stays_on_the_socket()
    {
        using var dir = new TempDir("crsc-listeners-");
        var port = LoopbackPorts.Free();
        var options = new CrscOptions
        {
            NodeName = "node-a", Socket = dir.Combine("crsc.sock"),
            CheckpointDir = dir.Combine("checkpoints"), StagingDir = dir.Combine("staging"), StateDir = dir.Combine("state"),
            // the node state and logind of the test, not the machine's
            NodeStateDirectory = dir.Combine("node-state"), ShutdownBusAddress = "unix:path=" + dir.Combine("no-bus"),
            RuntimeEndpoint = "unix://" + dir.Combine("no-runtime.sock"),
            MetricsAddress = $"127.0.0.1:{port}",
        };
        await using var app = DaemonHost.Build(options, new Serilog.LoggerConfiguration().CreateLogger(), TimeProvider.System);
        await app.StartAsync();
        try
        {
            using var tcp = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            using var unix = UnixClient(options.Socket);
            const string Request = "{\"namespace\":\"shop\",\"pod\":\"cart-0\",\"container\":\"cart\"}";

            Assert.Equal(HttpStatusCode.OK, (await tcp.GetAsync("/metrics")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await tcp.GetAsync("/healthz")).StatusCode);
            Assert.NotEqual(HttpStatusCode.NotFound, (await tcp.GetAsync("/readyz")).StatusCode); // 503 until started

            foreach (var path in new[] { "/v1/checkpoints", "/V1/checkpoints", "/v1/checkpoints?namespace=shop", "/v1/status", "/", "/metrics/x" })
                Assert.Equal(HttpStatusCode.NotFound, (await tcp.GetAsync(path)).StatusCode);
            using (var post = await tcp.PostAsync("/v1/checkpoints", new StringContent(Request, Encoding.UTF8, "application/json")))
                Assert.Equal(HttpStatusCode.NotFound, post.StatusCode);
            using (var invalid = await tcp.PostAsync("/v1/checkpoints", new StringContent("{}", Encoding.UTF8, "application/json")))
                Assert.Equal(HttpStatusCode.NotFound, invalid.StatusCode); // not even validated: the handler never runs
            Assert.Empty(app.Services.GetRequiredService<ICheckpointStore>().List());

            // the socket keeps the whole node API
            Assert.Equal(HttpStatusCode.OK, (await unix.GetAsync("/v1/checkpoints")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await unix.GetAsync("/v1/status")).StatusCode);
            using (var invalid = await unix.PostAsync("/v1/checkpoints", new StringContent("{}", Encoding.UTF8, "application/json")))
                Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await unix.GetAsync("/metrics")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await unix.GetAsync("/healthz")).StatusCode);
        }
        finally
        {
            await app.StopAsync();
        }
    }

    private static HttpClient UnixClient(string socket) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
            return new NetworkStream(s, ownsSocket: true);
        },
    }) { BaseAddress = new Uri("http://localhost") };

    // .NET's '$' also matches before a final '\n': the node API must refuse names that end in one
    [Fact]
    public async Task The_node_api_refuses_names_with_a_trailing_newline()
    {
        using var dir = new TempDir("crsc-listeners-");
        var options = new CrscOptions
        {
            NodeName = "node-a", Socket = dir.Combine("crsc.sock"),
            CheckpointDir = dir.Combine("checkpoints"), StagingDir = dir.Combine("staging"), StateDir = dir.Combine("state"),
            // the node state and logind of the test, not the machine's
            NodeStateDirectory = dir.Combine("node-state"), ShutdownBusAddress = "unix:path=" + dir.Combine("no-bus"),
            RuntimeEndpoint = "unix://" + dir.Combine("no-runtime.sock"),
        };
        await using var app = DaemonHost.Build(options, new Serilog.LoggerConfiguration().CreateLogger(), TimeProvider.System);
        await app.StartAsync();
        try
        {
            using var unix = UnixClient(options.Socket);
            foreach (var end in new[] { "\n", "\r\n" })
            foreach (var (ns, pod, container) in new[] { ("shop" + end, "cart-0", "cart"), ("shop", "cart-0" + end, "cart"), ("shop", "cart-0", "cart" + end) })
            {
                var body = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["namespace"] = ns, ["pod"] = pod, ["container"] = container },
                    NodeApiListenerTestsJson.Default.DictionaryStringString);
                using var post = await unix.PostAsync("/v1/checkpoints", new StringContent(body, Encoding.UTF8, "application/json"));
                Assert.Equal(HttpStatusCode.BadRequest, post.StatusCode);
            }
        }
        finally
        {
            await app.StopAsync();
        }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class NodeApiListenerTestsJson : System.Text.Json.Serialization.JsonSerializerContext;

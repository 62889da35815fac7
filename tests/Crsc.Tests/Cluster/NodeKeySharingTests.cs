using System.Text;
using Crsc.Api.Kubernetes;
using Crsc.Configuration;
using Crsc.Daemon;
using Crsc.Kube;
using Crsc.Storage.Security;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Crsc.Tests.Cluster;

/// <summary>
/// <c>security.keySecret</c>: the node key made the cluster's shared key through a Secret, against
/// <see cref="FakeApiServer"/> over HTTP with the real client.
/// </summary>
public sealed class NodeKeySharingTests : IAsyncLifetime
{
    private const string SecretRef = "crsc-system/crsc-key";
    private FakeApiServer _server = null!;
    private KubeApi _api = null!;
    private readonly List<TempDir> _dirs = [];

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync();
        _api = ClusterTestKit.Api(_server);
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _server.DisposeAsync();
        foreach (var d in _dirs) d.Dispose();
    }

    private CrscOptions Node(string secret = SecretRef)
    {
        var dir = new TempDir();
        _dirs.Add(dir);
        return new CrscOptions { StateDir = dir.Combine("state"), CheckpointDir = dir.Combine("checkpoints"), SecurityKeySecret = secret };
    }

    private static NodeKey LocalKey(CrscOptions node) => NodeKey.LoadOrCreate(NodeKey.PathIn(node.StateDir), out _);

    private Task<NodeKey> SyncAsync(CrscOptions node, RecordingLogger? logger = null, KubeApi? api = null) =>
        NodeKeySharing.SyncAsync(node, (api ?? _api).Resource(Resources.Secrets), logger ?? new RecordingLogger(), ClusterTestKit.Timeout());

    private Secret SeedSecret(string keyText) => _server.Seed(Resources.Secrets, new Secret
    {
        Metadata = new ObjectMeta { Namespace = "crsc-system", Name = "crsc-key" },
        Type = "Opaque",
        Data = new() { ["key"] = Encoding.ASCII.GetBytes(keyText) },
    });

    private string? StoredKey() =>
        _server.Get(Resources.Secrets, "crsc-system", "crsc-key")?.Data?.GetValueOrDefault("key") is { } b ? Encoding.ASCII.GetString(b) : null;

    [Fact]
    public async Task An_absent_secret_is_created_with_the_local_key()
    {
        var node = Node();
        var local = LocalKey(node);

        var key = await SyncAsync(node);

        Assert.Equal(local.Id, key.Id);
        Assert.Equal(local.ToText().TrimEnd('\n'), StoredKey());
        Assert.Equal(local.Id, NodeKey.Load(NodeKey.PathIn(node.StateDir)).Id);
    }

    [Fact]
    public async Task A_present_secret_becomes_the_local_key_and_its_tokens_verify_here()
    {
        var node = Node();
        var old = LocalKey(node);
        var shared = NodeKey.Generate();
        SeedSecret(shared.ToText());

        var key = await SyncAsync(node);

        var path = NodeKey.PathIn(node.StateDir);
        Assert.Equal(shared.Id, key.Id);
        Assert.Equal(shared.Id, NodeKey.Load(path).Id);
        // a token another node minted with the shared key is accepted by this node's key file
        var token = new PullTokens(shared).Mint("crsc/default/app");
        Assert.Equal(PullTokenVerdict.Valid, new PullTokens(NodeKey.Load(path)).Check(token, "crsc/default/app"));
        // the old key signed nothing, and is kept rather than deleted
        Assert.Equal(old.Id, NodeKey.Load($"{path}.{old.Id}").Id);
        Assert.Equal(shared.ToText(), StoredKey()); // the Secret is left as it was
    }

    [Fact]
    public async Task A_daemon_that_adopts_the_shared_key_on_its_first_start_signs_and_checks_tokens_with_it_at_once()
    {
        // composing the daemon makes the store and the pull tokens (restore-from's transfer, the restore preparer);
        // the E2E of a restore across nodes met a node whose endpoint still checked tokens with the key it had replaced
        var node = Node();
        var old = LocalKey(node);
        var shared = NodeKey.Generate();
        SeedSecret(shared.ToText());
        var dir = _dirs[^1];
        var kubeconfig = dir.Combine("kubeconfig");
        File.WriteAllText(kubeconfig, _server.KubeconfigYaml());
        var options = node with
        {
            NodeName = "node-a", Kubeconfig = kubeconfig, Namespace = "crsc-system", Socket = dir.Combine("crsc.sock"),
            StagingDir = dir.Combine("staging"), NodeStateDirectory = dir.Combine("node-state"), ShutdownCheckpoint = "false",
            RuntimeEndpoint = "unix://" + dir.Combine("cri.sock"), ImagesListen = "127.0.0.1:0", ImagesAdvertise = "node-a.example:5055",
        };

        await using var app = await DaemonHost.BuildWithSharedKeyAsync(options, new Serilog.LoggerConfiguration().CreateLogger(),
            TimeProvider.System, ClusterTestKit.Timeout());

        Assert.NotEqual(old.Id, shared.Id);
        Assert.Equal(shared.Id, app.Services.GetRequiredService<NodeKey>().Id);
        var token = new PullTokens(shared).Mint("crsc/default/app");
        Assert.Equal(PullTokenVerdict.Valid, app.Services.GetRequiredService<PullTokens>().Check(token, "crsc/default/app"));
    }

    [Fact]
    public async Task Two_nodes_starting_at_once_end_with_the_same_key()
    {
        var a = Node();
        var b = Node();
        Assert.NotEqual(LocalKey(a).Id, LocalKey(b).Id);
        // hold both GETs until both have arrived: both see no Secret, both create it, one gets 409 AlreadyExists
        var gets = 0;
        var bothAsked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _server.BeforeRequest = async (r, ct) =>
        {
            if (r.Method != "GET" || !r.Path.EndsWith("/secrets/crsc-key", StringComparison.Ordinal)) return;
            if (Interlocked.Increment(ref gets) == 2) bothAsked.TrySetResult();
            await bothAsked.Task.WaitAsync(ct);
        };

        var keys = await Task.WhenAll(SyncAsync(a), SyncAsync(b));

        Assert.Equal(keys[0].Id, keys[1].Id);
        Assert.Equal(keys[0].Id, NodeKey.Load(NodeKey.PathIn(a.StateDir)).Id);
        Assert.Equal(keys[0].Id, NodeKey.Load(NodeKey.PathIn(b.StateDir)).Id);
        Assert.Equal(keys[0].ToText().TrimEnd('\n'), StoredKey());
        Assert.Equal(2, _server.Requests.Count(r => r.Method == "POST" && r.Path.EndsWith("/secrets", StringComparison.Ordinal)));
        Assert.Equal(3, gets); // the loser read the winner's Secret again
    }

    [Theory]
    [InlineData("not a key")]
    [InlineData("0123456789abcdef")]
    public async Task A_malformed_secret_is_an_error_naming_it_and_changes_nothing(string keyText)
    {
        var node = Node();
        var local = LocalKey(node);
        SeedSecret(keyText);

        var e = await Assert.ThrowsAsync<SharedKeyException>(() => SyncAsync(node));

        Assert.Contains("security.keySecret", e.Message);
        Assert.Contains("Secret crsc-system/crsc-key", e.Message);
        Assert.Equal(local.Id, NodeKey.Load(NodeKey.PathIn(node.StateDir)).Id);
    }

    [Fact]
    public async Task A_secret_without_the_key_is_an_error_naming_it()
    {
        var node = Node();
        _server.Seed(Resources.Secrets, new Secret
        {
            Metadata = new ObjectMeta { Namespace = "crsc-system", Name = "crsc-key" },
            Data = new() { ["other"] = [1] },
        });

        var e = await Assert.ThrowsAsync<SharedKeyException>(() => SyncAsync(node));

        Assert.Contains("Secret crsc-system/crsc-key has no data key 'key'", e.Message);
    }

    [Fact]
    public async Task An_unreachable_api_server_leaves_the_local_key_with_a_warning()
    {
        var node = Node();
        var local = LocalKey(node);
        using var nowhere = new KubeApi(new KubeClientConfig
        {
            Server = new Uri($"http://127.0.0.1:{LoopbackPorts.Free()}"),
            RequestTimeout = TimeSpan.FromSeconds(5),
            Source = "test",
        });
        var logger = new RecordingLogger();

        var key = await SyncAsync(node, logger, nowhere);

        Assert.Equal(local.Id, key.Id);
        var warning = Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains("crsc-system/crsc-key could not be confirmed", warning.Message);
        Assert.Contains(local.Id, warning.Message);
    }

    [Fact]
    public async Task A_local_key_that_signed_checkpoints_here_is_not_replaced()
    {
        var node = Node();
        var local = LocalKey(node);
        var macs = Path.Combine(node.StateDir, "static-pods", "macs");
        Directory.CreateDirectory(macs);
        File.WriteAllText(Path.Combine(macs, "kube-system_etcd.mac"), $"crsc-static-mac-v1 {local.Id} {new string('0', 64)}\n");
        SeedSecret(NodeKey.Generate().ToText());

        var logger = new RecordingLogger();
        var key = await SyncAsync(node, logger);

        // the node keeps working with its own key, and says why it does not share the cluster's
        Assert.Equal(local.Id, key.Id);
        var error = Assert.Single(logger.Entries, e => e.Level == LogLevel.Error);
        Assert.Contains("Secret crsc-system/crsc-key", error.Message);
        Assert.Contains($"is {local.Id} and signs 0 checkpoint(s) and 1 static-pod checkpoint(s)", error.Message);
        Assert.Equal(local.Id, NodeKey.Load(NodeKey.PathIn(node.StateDir)).Id);
    }

    [Fact]
    public async Task Without_a_key_secret_the_api_server_is_not_asked()
    {
        var node = Node(secret: "");
        var local = LocalKey(node);

        var key = await SyncAsync(node);

        Assert.Equal(local.Id, key.Id);
        Assert.Empty(_server.Requests);
    }

    private sealed class RecordingLogger : ILogger
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Entries) Entries.Add((logLevel, formatter(state, exception)));
        }
    }
}

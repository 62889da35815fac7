using Crsc.Configuration;
using Crsc.Controllers.Health;
using Crsc.Controllers.Metrics;
using Crsc.Daemon;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Tests.Cluster;

/// <summary>
/// <see cref="ClusterConnection"/> with production's timings on a fake clock, against a <see cref="FakeApiServer"/>
/// through the real client: how soon the daemon uses an API server that comes back.
/// </summary>
public sealed class ClusterConnectionTests
{
    /// <summary>
    /// A daemon that starts while the API server is away probes it every 3 to 3.75 s however long it stays away (never
    /// more often, never less), so that it connects, and starts its informers and election, within 5 s of the server's
    /// return. The old probe backoff (<c>ClusterConnectionOptions.MaxRetry</c> = 30 s, stretched by up to 100 %)
    /// waited 30 to 60 s between probes after the first half minute.
    /// </summary>
    [Fact]
    public async Task A_daemon_started_while_the_api_server_is_away_probes_every_few_seconds_and_connects_within_5_s_of_its_return()
    {
        await using var server = await FakeApiServer.StartAsync();
        ClusterTestKit.RegisterCrds(server);
        using var dir = new TempDir();
        var time = new ManualTimeProvider();
        var outage = new ApiServerOutage(server, time, r => r.Path == "/version") { Away = true };
        var kubeconfig = dir.Combine("kubeconfig");
        await File.WriteAllTextAsync(kubeconfig, server.KubeconfigYaml());
        var options = new CrscOptions
        {
            NodeName = "node-t", Kubeconfig = kubeconfig, Namespace = "crsc-system",
            StateDir = dir.Combine("state"), CheckpointDir = dir.Combine("checkpoints"), StagingDir = dir.Combine("staging"),
        };
        var health = new HealthRegistry(time);
        var apiServer = new ApiServerState(time);
        var metrics = new MetricsRegistry();
        var timings = new ClusterConnectionOptions(); // production's
        using var autonomy = new NodeAutonomy(options, health, metrics, NullLoggerFactory.Instance);
        using var cluster = new ClusterServices(options, timings, health, time, NullLoggerFactory.Instance, autonomy, apiServer, metrics);
        using var connection = new ClusterConnection(cluster, timings, health, apiServer, time, NullLogger<ClusterConnection>.Instance);
        var started = time.GetUtcNow();
        await connection.StartAsync(ClusterTestKit.Timeout());
        try
        {
            var step = TimeSpan.FromMilliseconds(100);
            await ApiServerOutage.AdvanceUntilAsync(time, () => false, step, TimeSpan.FromMinutes(5), "away");
            Assert.True(apiServer.IsOffline);
            Assert.Contains("api-server unreachable since ", health.Snapshot().Single(e => e.Component == ClusterServices.KubeComponent).Message);

            var back = time.GetUtcNow();
            outage.Away = false;
            var took = await ApiServerOutage.AdvanceUntilAsync(time, () => apiServer.IsReachable, step, TimeSpan.FromSeconds(30),
                "connected");
            Assert.True(took <= TimeSpan.FromSeconds(5), $"connected {took} after the server came back");
            await Eventually.TrueAsync(() => cluster.NodePods!.HasSynced, "the informers run once connected");

            // after the first probes (at once, 1 s, 2 s), each wait is the 3 s cap plus up to 25 %: within a step of the clock
            var gaps = ApiServerOutage.Gaps(outage.Attempts(started, back));
            Assert.True(gaps.Count >= 75, $"{gaps.Count} probes in 5 minutes");
            Assert.All(gaps, g => Assert.InRange(g, TimeSpan.Zero, TimeSpan.FromSeconds(3.75) + step));
            Assert.All(gaps.Skip(2), g => Assert.InRange(g, TimeSpan.FromSeconds(3) - step, TimeSpan.FromSeconds(3.75) + step));
        }
        finally
        {
            await connection.StopAsync(ClusterTestKit.Timeout());
        }
    }
}

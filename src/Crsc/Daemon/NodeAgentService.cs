using Crsc.Configuration;
using Crsc.Controllers.Health;
using Microsoft.Extensions.Hosting;

namespace Crsc.Daemon;

/// <summary>
/// The node agent: runs on every node, always, whether or not an API server is reachable. Its work
/// (checkpoint execution, schedules, static-pod checkpoints) is added by later steps; it reports itself so
/// STATUS= and /readyz say what the daemon is doing. The API server connection (<c>kube</c>, <c>informers</c>,
/// <c>leader</c>) is <see cref="ClusterConnection"/>'s to report.
/// </summary>
internal sealed class NodeAgentService(CrscOptions options, HealthRegistry health) : IHostedService
{
    public const string Component = "node-agent";

    public Task StartAsync(CancellationToken ct)
    {
        health.Report(Component, HealthStatus.Healthy, $"node {options.NodeName}");
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}

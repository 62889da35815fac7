using Crsc.Configuration;
using Crsc.Controllers.Health;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Crsc.Daemon;

/// <summary>
/// The node agent: runs on every node, always, whether or not an API server is reachable. Its work
/// (checkpoint execution, schedules, static-pod checkpoints) is added by later steps; it reports itself
/// and the state of its API server connection so STATUS= and /readyz say what the daemon is doing.
/// </summary>
internal sealed partial class NodeAgentService(CrscOptions options, HealthRegistry health, ILogger<NodeAgentService> logger) : IHostedService
{
    public const string Component = "node-agent";
    public const string KubeComponent = "kube";

    public Task StartAsync(CancellationToken ct)
    {
        health.Report(Component, HealthStatus.Healthy, $"node {options.NodeName}");
        if (!KubeConfigured(options))
        {
            // no API server is configured: run as a node agent only; this is degraded, never fatal
            health.Report(KubeComponent, HealthStatus.Degraded, "no API server configured (node agent only)");
            Log.NoApiServer(logger, options.NodeName);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;

    /// <summary>A kubeconfig is set, or the in-cluster service environment is present.</summary>
    public static bool KubeConfigured(CrscOptions options) =>
        options.Kubeconfig.Length > 0 || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST"));

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "No API server is configured (no kubeconfig, not in a cluster); node {NodeName} runs as a node agent only")]
        public static partial void NoApiServer(ILogger logger, string nodeName);
    }
}

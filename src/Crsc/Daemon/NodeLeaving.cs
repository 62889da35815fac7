using Crsc.Configuration;
using Crsc.Controllers.Autonomy;
using Crsc.Controllers.Health;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Nodes;
using Crsc.Storage;
using Crsc.Systemd.Logind;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Crsc.Daemon;

/// <summary>
/// The node going away, wired: the node state (<see cref="NodeGoingAway"/>) published to <c>nodeState.directory</c> on
/// every change and at start, served in <c>/v1/status</c>; the Node watcher (with an API server) and the drain
/// checkpoints it starts (published as ContainerCheckpoints through the outbox); the logind delay inhibitor and the shutdown checkpoints (<c>shutdown.checkpoint</c>). Only
/// wiring: the decisions live in Crsc.Controllers.Nodes.
/// </summary>
internal static class NodeLeaving
{
    public static void Register(IServiceCollection services, CrscOptions options)
    {
        services.AddSingleton(sp => new NodeGoingAway(sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new NodeStatePublisher(options.NodeStateDirectory, options.NodeName,
            sp.GetRequiredService<ILogger<NodeStatePublisher>>()));
        services.AddSingleton(sp => new NodeAwayCheckpointer(
            sp.GetRequiredService<ICheckpointRunner>(),
            // the node state on disk: known while the API server is away (and after a restart without it)
            () => NodeAwayCheckpointer.ManagedOn(sp.GetRequiredService<NodeAutonomy>().State.Current),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<NodeAwayCheckpointer>>(),
            // with an API server: each checkpoint is published as a ContainerCheckpoint through the outbox
            sp.GetRequiredService<NodeAutonomy>() is { Outbox: { } outbox } autonomy
                ? new NodeAwayPublication(autonomy.State, outbox, autonomy.Status, options.NodeName, sp.GetRequiredService<TimeProvider>(),
                    sp.GetRequiredService<ILogger<NodeAwayPublication>>())
                : null));
        // evictions of managed pods (their DisruptionTarget condition): followed once the API server's pods are (AttachWatcher)
        services.AddSingleton(sp => new PodEvictionWatcher(sp.GetRequiredService<NodeGoingAway>(), options.NodeName,
            sp.GetRequiredService<NodeAwayCheckpointer>().Managed, sp.GetRequiredService<ILogger<PodEvictionWatcher>>()));
        services.AddSingleton(sp => new NodeDrainCheckpoints(sp.GetRequiredService<NodeGoingAway>(),
            sp.GetRequiredService<NodeAwayCheckpointer>(), options.ShutdownParallelismValue, sp.GetRequiredService<ILogger<NodeDrainCheckpoints>>(),
            sp.GetRequiredService<PodEvictionWatcher>(),
            // the pods a drain took survive a restart of the daemon in its middle (for as long as they could be restored from)
            sp.GetRequiredService<NodeAutonomy>().State, options.ShutdownRestoreWindowValue, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new ShutdownCheckpoints(sp.GetRequiredService<NodeGoingAway>(),
            sp.GetRequiredService<NodeAwayCheckpointer>(), options.ShutdownParallelismValue, sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<ShutdownCheckpoints>>()));
        services.AddSingleton(sp => new LogindShutdownMonitor(
            new LogindShutdownOptions { BusAddress = options.ShutdownBusAddress.Length == 0 ? null : options.ShutdownBusAddress },
            sp.GetRequiredService<ShutdownCheckpoints>(), sp.GetRequiredService<HealthRegistry>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<LogindShutdownMonitor>>()));
        services.AddHostedService<NodeLeavingService>();
    }

    /// <summary>With an API server: the watchers of this node's own Node object and of its pods' evictions. Call before the host starts.</summary>
    public static void AttachWatcher(IServiceProvider services, CrscOptions options)
    {
        if (services.GetRequiredService<ClusterServices>() is not { Manager: { } manager } cluster) return;
        NodeDisruptionWatcher.SetUp(manager, services.GetRequiredService<NodeGoingAway>(),
            new NodeDisruptionOptions { NodeName = options.NodeName, DrainTaints = options.DrainTaintList });
        if (cluster.NodePods is { } pods) services.GetRequiredService<PodEvictionWatcher>().Watch(pods);
    }
}

/// <summary>Publishes the node state (at start and on every change), runs the drain checkpoints and the logind monitor.</summary>
internal sealed partial class NodeLeavingService(
    CrscOptions options,
    NodeGoingAway state,
    NodeStatePublisher publisher,
    NodeDrainCheckpoints drain,
    LogindShutdownMonitor logind,
    HealthRegistry health,
    ILogger<NodeLeavingService> logger) : BackgroundService
{
    public override Task StartAsync(CancellationToken ct)
    {
        // subscribed first: a change while the first file is written is written after it
        state.Changed += OnChanged;
        publisher.Publish(state.Current);
        if (!options.ShutdownCheckpointEnabled)
        {
            health.Report(LogindShutdownMonitor.Component, HealthStatus.Healthy, "off (shutdown.checkpoint: false)");
            Log.ShutdownOff(logger);
        }
        return base.StartAsync(ct);
    }

    private void OnChanged(NodeAwayChange change) => publisher.Publish(change.Current);

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        var tasks = new List<Task> { drain.RunAsync(ct) };
        if (options.ShutdownCheckpointEnabled) tasks.Add(logind.RunAsync(ct));
        await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    public override async Task StopAsync(CancellationToken ct)
    {
        await base.StopAsync(ct).ConfigureAwait(false);
        state.Changed -= OnChanged;
    }

    private static partial class Log
    {
        [LoggerMessage(71501, LogLevel.Information, "shutdown.checkpoint is false: no logind delay inhibitor, containers are not checkpointed at shutdown")]
        public static partial void ShutdownOff(ILogger logger);
    }
}

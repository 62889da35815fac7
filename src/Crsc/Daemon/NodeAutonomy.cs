using Crsc.Configuration;
using Crsc.Controllers.Autonomy;
using Crsc.Controllers.Health;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Storage;
using Crsc.Storage.Autonomy;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Crsc.Daemon;

/// <summary>
/// The node's autonomy in the daemon (working while the API server is away): the node state under <c>&lt;stateDir&gt;/node/</c> (loaded at start,
/// refreshed from the informers while connected), the outbox under <c>&lt;stateDir&gt;/outbox/</c> (bounded by
/// <c>outbox.maxBytes</c>; health entry <c>outbox</c>), the offline scheduler (runs this node's schedules while the
/// API server is unreachable) and the outbox publisher. Only with an API server configured. A state directory that
/// cannot be used leaves the daemon without autonomy (the <c>outbox</c> entry says why), never stops it.
/// </summary>
internal sealed partial class NodeAutonomy : IDisposable
{
    public const string NodeStateDirectory = "node";
    public const string OutboxDirectory = "outbox";

    public NodeAutonomy(CrscOptions options, HealthRegistry health, MetricsRegistry metrics, ILoggerFactory loggers)
    {
        var logger = loggers.CreateLogger<NodeAutonomy>();
        State = new NodeStateStore(new NodeStateFile(Path.Combine(options.StateDir, NodeStateDirectory), loggers.CreateLogger<NodeStateFile>()),
            options.NodeName, loggers.CreateLogger<NodeStateStore>());
        if (!ClusterServices.IsConfigured(options)) return;
        State.Load();
        try
        {
            Outbox = new OutboxJournal(Path.Combine(options.StateDir, OutboxDirectory), options.OutboxMaxBytesValue,
                loggers.CreateLogger<OutboxJournal>());
            Status = new OutboxStatus(Outbox, health, metrics, loggers.CreateLogger<OutboxStatus>());
            Status.Refresh();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            health.Report(OutboxStatus.Component, HealthStatus.Degraded, $"unavailable: {e.Message} (no offline checkpoints)");
            Log.OutboxUnavailable(logger, e, Path.Combine(options.StateDir, OutboxDirectory));
        }
    }

    public NodeStateStore State { get; }

    /// <summary>Null without an API server, or when the state directory cannot be used.</summary>
    public OutboxJournal? Outbox { get; }

    public OutboxStatus? Status { get; }

    public static void Register(IServiceCollection services)
    {
        services.AddSingleton<NodeAutonomy>();
        services.AddHostedService<NodeAutonomyService>();
    }

    public void Dispose() => Outbox?.Dispose();

    private static partial class Log
    {
        [LoggerMessage(70301, LogLevel.Error, "The outbox at {Path} cannot be used: no checkpoints while the API server is away")]
        public static partial void OutboxUnavailable(ILogger logger, Exception exception, string path);
    }
}

/// <summary>Runs the offline scheduler, the outbox publisher and the node-state recorder for the daemon's lifetime.</summary>
internal sealed partial class NodeAutonomyService(
    NodeAutonomy autonomy,
    ClusterServices cluster,
    ApiServerState apiServer,
    CheckpointRunner runner,
    ICheckpointStore store,
    HealthRegistry health,
    IServiceProvider services,
    TimeProvider time,
    ILoggerFactory loggers) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken ct)
    {
        if (autonomy.Outbox is not { } outbox || autonomy.Status is not { } status || cluster.Api is not { } api) return Task.CompletedTask;
        var scheduler = new OfflineScheduler(autonomy.State, apiServer, runner, store, outbox, status, health,
            new OfflineSchedulerOptions { NodeName = cluster.NodeName }, time, loggers.CreateLogger<OfflineScheduler>());
        var publisher = new OutboxPublisher(outbox, api, store, apiServer, status, health, new OutboxPublisherOptions(), time,
            loggers.CreateLogger<OutboxPublisher>(), services.GetService<ICheckpointImagePublisher>());
        var running = new List<Task>
        {
            Guard("offline scheduler", OfflineScheduler.HealthComponent, scheduler.RunAsync(ct)),
            Guard("outbox publisher", OutboxPublisher.HealthComponent, publisher.RunAsync(ct)),
        };
        if (cluster.Schedules is { } schedules && cluster.NodePods is { } pods)
            running.Add(Guard("node state", null, new NodeStateRecorder(autonomy.State, schedules, pods, cluster.NodeName, time).RunAsync(ct)));
        return Task.WhenAll(running);
    }

    /// <summary>
    /// The last line: the scheduler and the publisher retry their own failed rounds, so one that still ends with an
    /// error is a bug; it is logged and shown in its health entry, and the daemon goes on.
    /// </summary>
    private async Task Guard(string what, string? component, Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            Log.LoopFailed(loggers.CreateLogger<NodeAutonomyService>(), e, what);
            if (component is not null) health.Report(component, HealthStatus.Degraded, $"stopped: {e.Message}");
        }
    }

    private static partial class Log
    {
        [LoggerMessage(70401, LogLevel.Error, "The {Loop} loop failed; the daemon goes on without it")]
        public static partial void LoopFailed(ILogger logger, Exception exception, string loop);
    }
}

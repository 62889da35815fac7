using Crsc.Configuration;
using Crsc.Controllers.Health;
using Crsc.Controllers.Metrics;
using Crsc.Storage.Security;
using Crsc.Systemd;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serilog.Extensions.Logging;


namespace Crsc.Daemon;

/// <summary>
/// Composition root of <c>crsc daemon</c>: one host with Kestrel on the node socket, the node agent and
/// (when configured) the cluster half. Decisions live in the services; this only wires them.
/// </summary>
internal static partial class DaemonHost
{
    public static WebApplication Build(CrscOptions options, Serilog.ILogger serilog, TimeProvider time)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            // no appsettings.json watching: a content root of "/" with reload-on-change makes the host
            // walk the whole file system before it starts. crsc's configuration is CrscOptions only.
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = Environments.Production,
        });
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new SerilogLoggerProvider(serilog, dispose: false));
        builder.Logging.SetMinimumLevel(LogLevel.Trace);
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));

        builder.WebHost.ConfigureKestrel(k => NodeApi.Listen(k, options));

        var metrics = new MetricsRegistry();
        ProcessMetrics.Register(metrics, time);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(time);
        builder.Services.AddSingleton(metrics);
        builder.Services.AddSingleton<HealthRegistry>();
        // the key archives' MACs and pull tokens are made with; created 0600 on first start (RunAsync loads it first)
        builder.Services.AddSingleton(sp => NodeKey.LoadOrCreate(NodeKey.PathIn(options.StateDir), out bool _));
        builder.Services.AddSingleton(new ApiServerState(time));
        builder.Services.AddSingleton<DaemonState>();
        builder.Services.AddHostedService<NodeAgentService>();
        builder.Services.AddSingleton<ClusterConnectionOptions>();
        builder.Services.AddSingleton<ClusterServices>();
        builder.Services.AddHostedService<ClusterConnection>();
        NodeCheckpointing.Register(builder.Services, options);
        NodeAutonomy.Register(builder.Services);
        ImageEndpoint.Register(builder.Services, options);
        RegistryPublishing.Register(builder.Services, options);
        CheckpointTransfer.Register(builder.Services, options);
        StaticPodCheckpointing.Register(builder.Services, options);
        NodeLeaving.Register(builder.Services, options);
        // READY/STATUS/STOPPING/WATCHDOG for systemd; inert when systemd did not start us
        builder.Services.AddSystemdIntegration();

        var app = builder.Build();
        NodeApi.Map(app);
        NodeApiCheckpoints.Map(app);
        NodeApiStatus.Map(app);
        NodeCheckpointing.AttachReconciler(app.Services);
        NodeLeaving.AttachWatcher(app.Services, options);
        ClusterReconcilers.Attach(app.Services);
        return app;
    }

    /// <summary>Runs until SIGTERM/SIGINT; returns the exit code.</summary>
    public static async Task<int> RunAsync(CrscOptions options, Serilog.ILogger serilog, CancellationToken ct)
    {
        var time = TimeProvider.System;
        NodeApi.PrepareSocket(options.Socket);
        await using var app = await BuildWithSharedKeyAsync(options, serilog, time, ct);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Crsc.Daemon");
        var state = app.Services.GetRequiredService<DaemonState>();
        var health = app.Services.GetRequiredService<HealthRegistry>();
        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        _ = app.Services.GetRequiredService<NodeKey>(); // an unusable key file stops the start here (exit 78)

        lifetime.ApplicationStopping.Register(() =>
        {
            state.Stopping = true;
            Log.Stopping(logger);
        });

        NodeCheckpointing.OpenStore(app.Services, logger);
        await app.StartAsync(ct);
        NodeApi.RestrictSocket(options.Socket);
        state.Started = true;
        // READY's STATUS= says whether the runtime answers (the probe started with the host; bounded wait)
        await app.Services.GetRequiredService<RuntimeMonitor>().WaitForFirstProbeAsync(RuntimeMonitor.FirstProbeWait, ct);
        Log.Started(logger, BuildInfo.Version, BuildInfo.Flavour, options.NodeName, options.Socket, health.Summary());
        await app.Services.GetRequiredService<SystemdStatusReporter>().NotifyReadyAsync(health.Summary(), ct);
        var released = StartupMemory.Release();
        Log.StartupMemoryReleased(logger, released.Ranges, released.Bytes / (1024 * 1024), released.Error ?? "ok");

        await app.WaitForShutdownAsync(ct);
        Log.Stopped(logger);
        try { File.Delete(options.Socket); } catch (IOException) { }
        return 0;
    }

    /// <summary>
    /// The shared key (<c>security.keySecret</c>) goes into the key file first, then the daemon is composed: composing it
    /// already makes the services that hold the key (the store, pull tokens), and when the key was synced after that, a
    /// node that adopted the Secret's key on its first start kept signing and checking tokens with its old one until it
    /// restarted (a peer's fetch met "the pull token was not made with this cluster's crsc key").
    /// </summary>
    internal static async Task<WebApplication> BuildWithSharedKeyAsync(CrscOptions options, Serilog.ILogger serilog, TimeProvider time,
        CancellationToken ct)
    {
        using (var loggers = LoggerFactory.Create(b => b.AddProvider(new SerilogLoggerProvider(serilog, dispose: false)).SetMinimumLevel(LogLevel.Trace)))
            await SyncNodeKeyAsync(options, loggers, loggers.CreateLogger("Crsc.Daemon"), time, ct);
        return Build(options, serilog, time);
    }

    private static async Task SyncNodeKeyAsync(CrscOptions options, ILoggerFactory loggers, ILogger logger, TimeProvider time, CancellationToken ct)
    {
        if (options.SecurityKeySecret.Length == 0 || !ClusterServices.IsConfigured(options))
        {
            await NodeKeySharing.SyncAsync(options, null, logger, ct);
            return;
        }
        Kube.KubeApi api;
        try { api = new Kube.KubeApi(Kube.KubeConfigLoader.Load(options.Kubeconfig, time: time), loggers); }
        catch (Kube.KubeConfigException)
        {
            await NodeKeySharing.SyncAsync(options, null, logger, ct); // the cluster connection reports why
            return;
        }
        using (api) await NodeKeySharing.SyncAsync(options, api.Resource(Crsc.Api.Kubernetes.Resources.Secrets), logger, ct);
    }

    private static partial class Log
    {
        [LoggerMessage(70101, LogLevel.Information, "crsc {Version} ({Flavour}) started on node {NodeName}, node API on {Socket}: {Status}")]
        public static partial void Started(ILogger logger, string version, string flavour, string nodeName, string socket, string status);

        [LoggerMessage(70102, LogLevel.Information, "Stopping")]
        public static partial void Stopping(ILogger logger);

        [LoggerMessage(70104, LogLevel.Debug, "Startup memory released: {Ranges} read-only mapping(s) of the executable ({MiB} MiB) paged out: {Result}")]
        public static partial void StartupMemoryReleased(ILogger logger, int ranges, long mib, string result);

        [LoggerMessage(70103, LogLevel.Information, "Stopped")]
        public static partial void Stopped(ILogger logger);
    }
}

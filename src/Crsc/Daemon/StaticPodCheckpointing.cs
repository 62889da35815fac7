using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Configuration;
using Crsc.Controllers.Health;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.StaticPods;
using Crsc.Storage.StaticManifests;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Crsc.Daemon;

/// <summary>
/// Timings and identity of the static-pod checkpointer. The defaults are production's; <see cref="Self"/> comes
/// from the downward API (<c>POD_NAMESPACE</c>/<c>POD_NAME</c>) and is null as a systemd service. Tests change the
/// instance the host registered before it starts.
/// </summary>
internal sealed class StaticPodSettings
{
    public ObjectKey? Self { get; set; } = SelfFromEnvironment();
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(5);
    public TimeSpan ActivationGrace { get; set; } = TimeSpan.FromSeconds(30);
    public TimeSpan DeactivationGrace { get; set; } = TimeSpan.FromSeconds(30);
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>crsc's own pod when it runs as one; the namespace defaults to the service account's.</summary>
    public static ObjectKey? SelfFromEnvironment()
    {
        var name = Environment.GetEnvironmentVariable("POD_NAME");
        if (string.IsNullOrEmpty(name)) return null;
        var ns = Environment.GetEnvironmentVariable("POD_NAMESPACE");
        if (string.IsNullOrEmpty(ns))
        {
            try { ns = File.ReadAllText("/var/run/secrets/kubernetes.io/serviceaccount/namespace").Trim(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { ns = "default"; }
        }
        return new ObjectKey(ns, name);
    }
}

/// <summary>
/// The static-pod checkpointer in the daemon: the on-disk store (manifestsDir, inactiveManifestsDir,
/// checkpointSecretsDir, checkpointConfigMapsDir, stateDir/static-pods), the loop fed by the node's pod informer,
/// the shared <see cref="ApiServerState"/> and the runtime's sandboxes. Runs with or without an API server (after a
/// reboot without one it is what brings the checkpointed pods back). Only wiring: the decisions live in
/// Crsc.Controllers.StaticPods. Health entry <c>static-pods</c>.
/// </summary>
internal static class StaticPodCheckpointing
{
    public static void Register(IServiceCollection services, CrscOptions options)
    {
        services.AddSingleton<StaticPodSettings>();
        services.AddSingleton(sp => new DiskStaticManifestStore(new StaticManifestStoreOptions
        {
            ManifestsDir = options.ManifestsDir,
            InactiveManifestsDir = options.InactiveManifestsDir,
            SecretsDir = options.CheckpointSecretsDir,
            ConfigMapsDir = options.CheckpointConfigMapsDir,
            StateDir = options.StateDir,
            Key = sp.GetRequiredService<Crsc.Storage.Security.NodeKey>(), // checkpoints MACed when written, checked before activation
        }, sp.GetService<ILogger<DiskStaticManifestStore>>()));
        services.AddSingleton<IStaticManifestStore>(sp => sp.GetRequiredService<DiskStaticManifestStore>());
        services.AddSingleton(sp =>
        {
            var settings = sp.GetRequiredService<StaticPodSettings>();
            var cluster = sp.GetRequiredService<ClusterServices>();
            var pods = cluster.NodePods;
            var checkpointer = new StaticPodCheckpointer(
                sp.GetRequiredService<IStaticManifestStore>(),
                sp.GetRequiredService<IContainerRuntime>(),
                sp.GetRequiredService<ApiServerState>(),
                () => pods is { HasSynced: true } ? pods.List() : null,
                cluster.Api?.Resource(Resources.Secrets),
                cluster.Api?.Resource(Resources.ConfigMaps),
                new StaticPodCheckpointerOptions
                {
                    Planner = new StaticCheckpointPlannerOptions
                    {
                        NodeName = options.NodeName,
                        Self = settings.Self,
                        ActivationGrace = settings.ActivationGrace,
                        DeactivationGrace = settings.DeactivationGrace,
                        RefreshInterval = settings.RefreshInterval,
                    },
                    Paths = new StaticCheckpointPaths(options.CheckpointSecretsDir, options.CheckpointConfigMapsDir),
                    Interval = settings.Interval,
                },
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<ILoggerFactory>().CreateLogger<StaticPodCheckpointer>(),
                sp.GetRequiredService<HealthRegistry>());
            // a change of the node's pods is a reason to look again at once
            pods?.AddEventHandler(new ResourceEventHandler<Pod>(_ => checkpointer.Poke(), (_, _) => checkpointer.Poke(), _ => checkpointer.Poke()));
            return checkpointer;
        });
        services.AddHostedService<StaticPodCheckpointingService>();
    }
}

/// <summary>Runs the checkpointer for the daemon's lifetime.</summary>
internal sealed class StaticPodCheckpointingService(StaticPodCheckpointer checkpointer) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken ct) => checkpointer.RunAsync(ct);
}

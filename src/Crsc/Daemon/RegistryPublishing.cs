using Crsc.Configuration;
using Crsc.Controllers.Events;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.Replication;
using Crsc.Controllers.Storage;
using Crsc.Storage.Oci;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Crsc.Daemon;

/// <summary>
/// The registry of <c>images.registry</c>, in one of two modes (<c>images.registryMode</c>):
/// <list type="bullet">
/// <item><c>publish</c> (default): checkpoint images are pushed there and the Content's image reference names the
/// registry — pullable from every node, where the embedded endpoint's reference is pullable only from nodes that reach
/// this one. Registered after <see cref="ImageEndpoint.Register"/>, so it replaces the embedded publisher (the endpoint
/// itself keeps serving the store).</item>
/// <item><c>replicate</c>: the embedded publisher stays; the registry is the <see cref="ICheckpointReplicaTarget"/> that
/// the node's <see cref="CheckpointReplicator"/> copies the checkpoints of <c>replicate: Registry</c> schedules to, and
/// whose copies the checkpoint finalizer deletes (<see cref="ReplicaRemover"/>).</item>
/// </list>
/// </summary>
internal static class RegistryPublishing
{
    public static void Register(IServiceCollection services, CrscOptions options)
    {
        if (options.ImagesRegistry.Length == 0) return;
        var location = RegistryLocation.Parse(options.ImagesRegistry); // validated at start: a bad value exits 78 before this
        services.AddSingleton(sp => new RegistryClient(new RegistryClientOptions
        {
            Registry = location.Host,
            Insecure = options.RegistryInsecure,
            Credentials = options.ImagesRegistryAuthFile.Length > 0 ? RegistryAuthFile.Load(options.ImagesRegistryAuthFile, location.Host) : null,
        }, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<RegistryClient>>()));
        services.AddSingleton(sp => new RegistryPushPublisher(sp.GetRequiredService<ICheckpointStore>(),
            sp.GetRequiredService<RegistryClient>(), location, logger: sp.GetService<ILogger<RegistryPushPublisher>>()));
        if (options.RegistryModeValue == CheckpointRegistryMode.Replicate)
        {
            services.AddSingleton<ICheckpointReplicaTarget>(sp => new RegistryReplicaTarget(sp.GetRequiredService<RegistryPushPublisher>(),
                sp.GetRequiredService<RegistryClient>(), location));
            services.AddSingleton(sp => new ReplicationMetrics(sp.GetRequiredService<MetricsRegistry>()));
            return;
        }
        services.AddSingleton<ICheckpointImagePublisher>(sp => sp.GetRequiredService<RegistryPushPublisher>());
    }

    /// <summary>
    /// In <c>replicate</c> mode, what deletes a deleted checkpoint's registry copies (for the node's ContainerCheckpoint
    /// reconciler); null otherwise.
    /// </summary>
    public static ReplicaRemover? Remover(IServiceProvider services, IEventRecorder events) =>
        services.GetService<ICheckpointReplicaTarget>() is { } target
            ? new ReplicaRemover(target, events, services.GetRequiredService<ILoggerFactory>().CreateLogger<ReplicaRemover>(),
                services.GetRequiredService<ReplicationMetrics>())
            : null;

    /// <summary>In <c>replicate</c> mode, the node's replicator; call before the host starts.</summary>
    public static void AttachReplicator(IServiceProvider services, ControllerManager manager, string nodeName)
    {
        if (services.GetService<ICheckpointReplicaTarget>() is not { } target) return;
        CheckpointReplicator.SetUp(manager, services.GetRequiredService<ICheckpointStore>(), target,
            new CheckpointReplicatorOptions { NodeName = nodeName }, services.GetRequiredService<ReplicationMetrics>());
    }
}

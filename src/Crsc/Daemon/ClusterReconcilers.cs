using Crsc.Api.Kubernetes;
using Crsc.Configuration;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Presence;
using Crsc.Controllers.Restores;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Schedules;
using Crsc.Controllers.Workloads;
using Crsc.Storage.Oci;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Crsc.Daemon;

/// <summary>
/// The seed flow's reconcilers in the daemon (DESIGN.md §3): on every node the scheduler of its own pods' checkpoint
/// schedules and the preparation of restores into its pods (image pulls); on the leader the Deployment reconciler
/// (annotated Deployments get schedules), the failure detector (failures of managed pods become Restores), the
/// Restore state manager (restore in place) and the release of deleted checkpoints whose node agent is gone, which
/// every node's presence Lease tells. Only wiring: the
/// decisions live in Crsc.Controllers. Shared informers come from <see cref="ClusterServices"/>; the cluster-wide
/// ones only the leader reads run for each leadership term.
/// </summary>
internal static class ClusterReconcilers
{
    /// <summary>Registers the controllers with the cluster connection; call before the host starts.</summary>
    public static void Attach(IServiceProvider services)
    {
        var cluster = services.GetRequiredService<ClusterServices>();
        if (cluster.Api is null || cluster.EventRecorder is null || cluster.NodePods is null || cluster.Schedules is null
            || cluster.Checkpoints is null) return;
        var time = services.GetRequiredService<TimeProvider>();
        var loggers = services.GetRequiredService<ILoggerFactory>();

        // node: run the schedules whose pods are here
        var schedules = NodeScheduleComponents.Create(cluster.NodeName, cluster.Api, cluster.EventRecorder, time, loggers,
            pods: cluster.NodePods, schedules: cluster.Schedules, checkpoints: cluster.Checkpoints,
            runLog: services.GetRequiredService<NodeAutonomy>().State);
        foreach (var informer in schedules.OwnedInformers) cluster.AddInformer(informer);
        cluster.AddNodeController(schedules.Controller);

        // leader: annotated Deployments get their schedules
        var deployments = DeploymentScheduleComponents.Create(cluster.Api, cluster.EventRecorder, time, loggers,
            health: cluster.InformerHealth, schedules: cluster.Schedules);
        foreach (var informer in deployments.OwnedInformers) cluster.AddLeaderInformer(informer);
        cluster.AddLeaderController(deployments.Controller);

        // node: pull the base and checkpoint images for restores into pods here (a checkpoint image of this node's
        // store only when its manifest MAC verifies and it is of the Restore's workload)
        var preparer = RestorePreparerComponents.Create(cluster.NodeName, cluster.Api, services.GetRequiredService<IContainerRuntime>(),
            cluster.EventRecorder, time, loggers, cluster.InformerHealth, podsOnNode: cluster.NodePods,
            options: new RestorePreparerOptions
            {
                NodeName = cluster.NodeName,
                PullCredentials = services.GetService<IPullCredentials>(),
                LocalCheckpoints = services.GetRequiredService<StoreImageRegistry>(),
            });
        cluster.AddInformer(preparer.Restores);
        cluster.AddNodeController(preparer.Controller);

        // leader: every pod of the cluster, read by the restore state manager and the failure detector; Restores and
        // ContainerCheckpoints come from the informers every node runs anyway
        var allPods = cluster.AddLeaderInformer(new Informer<Pod>(cluster.Api.Resource(Resources.Pods),
            new InformerOptions { Name = "pods-all" }, time, loggers.CreateLogger("Crsc.Informers.Pods"), cluster.InformerHealth));
        var restores = RestoreComponents.Create(cluster.Api, cluster.EventRecorder, time, loggers, cluster.InformerHealth, pods: allPods,
            restores: preparer.Restores, checkpoints: cluster.Checkpoints);
        foreach (var informer in restores.OwnedInformers) cluster.AddLeaderInformer(informer);
        cluster.AddLeaderController(restores.Controller);

        // leader: failures of managed pods become Restores
        var failures = PodFailureComponents.Create(cluster.Api, cluster.EventRecorder, time, loggers, health: cluster.InformerHealth,
            pods: allPods, deployments: deployments.Deployments, restores: preparer.Restores);
        foreach (var informer in failures.CreatedInformers) cluster.AddLeaderInformer(informer);
        cluster.AddLeaderController(failures.Controller);

        // node: say that crsc runs here, by renewing this node's presence Lease
        var presence = new NodeAgentLease(cluster.Api, new NodeAgentLeaseOptions { Namespace = cluster.Namespace, NodeName = cluster.NodeName },
            time, loggers.CreateLogger<NodeAgentLease>());
        cluster.AddNodeLoop("node presence lease", presence.RunAsync);

        // leader: a deleted checkpoint whose node agent is gone (node deleted, or crsc absent there for
        // nodeAgent.absentAfter) loses its archive finalizer, so that its namespace can finish terminating
        var abandoned = AbandonedCheckpointComponents.Create(cluster.Api, cluster.EventRecorder, time, loggers, cluster.Checkpoints,
            new AbandonedCheckpointOptions { Namespace = cluster.Namespace, AgentAbsentAfter = services.GetRequiredService<CrscOptions>().NodeAgentAbsentAfterValue });
        cluster.AddLeaderController(abandoned.Controller);
    }
}

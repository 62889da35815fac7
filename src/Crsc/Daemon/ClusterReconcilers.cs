using Crsc.Api.Kubernetes;
using Crsc.Configuration;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Nodes;
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
/// every node's presence Lease tells; and on every node the standby of the failure detector and the Restore state
/// manager for the node's own pods, which acts only while the leader is absent (issue 16). Only wiring: the
/// decisions live in Crsc.Controllers. The manager shares the informers between them and runs the cluster-wide ones only
/// the leader reads for each leadership term.
/// </summary>
internal static class ClusterReconcilers
{
    /// <summary>Sets the controllers up with the cluster connection's manager; call before the host starts.</summary>
    public static void Attach(IServiceProvider services)
    {
        var cluster = services.GetRequiredService<ClusterServices>();
        if (cluster.Manager is not { } manager) return;

        // node: run the schedules whose pods are here
        // (retention holds a node-away checkpoint for as long as the next pod may be restored from it)
        // (a schedule asking replicate: Registry is told what this node's registry does for it)
        ScheduleReconciler.SetUp(manager, cluster.NodeName, runLog: services.GetRequiredService<NodeAutonomy>().State,
            keepNodeAway: services.GetRequiredService<CrscOptions>().ShutdownRestoreWindowValue,
            registry: services.GetRequiredService<CrscOptions>().RegistryModeValue);

        // node: with images.registryMode replicate, copy the checkpoints of replicate: Registry schedules to the registry
        RegistryPublishing.AttachReplicator(services, manager, cluster.NodeName);

        // node: /readyz and STATUS= name the schedules of this node's pods whose checkpoints keep failing
        var scheduleHealth = new ScheduleHealth(cluster.Schedules!, cluster.NodePods!, services.GetRequiredService<Crsc.Controllers.Health.HealthRegistry>());
        manager.AddRunnable("schedule health", scheduleHealth.RunAsync);

        // leader: annotated Deployments get their schedules
        // leader: and the interceptor sidecar for those that ask for it (crsc.io/interceptor), from the configured image
        var interceptorImage = services.GetRequiredService<CrscOptions>().InterceptorImage;
        DeploymentReconciler.SetUp(manager, new DeploymentReconcilerOptions
        {
            Interceptor = interceptorImage.Length > 0 ? new InterceptorSidecarOptions { Image = interceptorImage } : new InterceptorSidecarOptions(),
        });

        // node: pull the base and checkpoint images for restores into pods here (a checkpoint image of this node's
        // store only when its manifest MAC verifies and it is of the Restore's workload)
        RestorePreparer.SetUp(manager, services.GetRequiredService<IContainerRuntime>(), new RestorePreparerOptions
        {
            NodeName = cluster.NodeName,
            PullCredentials = services.GetService<IPullCredentials>(),
            LocalCheckpoints = services.GetRequiredService<StoreImageRegistry>(),
            RuntimeProbe = services.GetService<IRuntimeProbeTrigger>(),
            TrafficHold = services.GetService<Crsc.Controllers.NodeAgent.IPodTrafficHold>(),
        });

        // node: a pod here annotated crsc.io/restore-from gets its checkpoint fetched into this node's store (from the
        // registry copy, or the node that took it) and a Restore from that copy; works without the leader
        if (services.GetService<Crsc.Controllers.Storage.ICheckpointTransfer>() is { } transfer)
            RestoreFromReconciler.SetUp(manager, transfer, new RestoreFromOptions { NodeName = cluster.NodeName });

        // node: each container's newest checkpoint image pulled here as soon as the checkpoint completes, so a restore
        // finds it in the runtime; the one it replaces (pulled by this warmer, used by nothing) removed
        CheckpointImageWarmer.SetUp(manager, services.GetRequiredService<IContainerRuntime>(), new CheckpointImageWarmerOptions
        {
            NodeName = cluster.NodeName,
            PullCredentials = services.GetService<IPullCredentials>(),
        });

        // leader: the restore state manager (restore in place) and the failure detector (failures of managed pods
        // become Restores), both over every pod of the cluster
        RestoreReconciler.SetUp(manager);
        ReplacementPlacementReconciler.SetUp(manager);
        // leader: Migration Restores (crsc migrate) checkpoint a pod now and make its replacement restore from it on the
        // target node (through crsc.io/restore-from)
        MigrationReconciler.SetUp(manager);
        PodFailureReconciler.SetUp(manager);
        // node: a restore does not wait for a new leader — while the leader is absent (its Lease not seen to change for
        // leader.absentAfter), this node's standby failure detector and restore state manager act for the pods here
        NodeFailureStandby.SetUp(manager, new NodeFailureStandbyOptions
        {
            NodeName = cluster.NodeName,
            Namespace = cluster.Namespace,
            LeaderAbsentAfter = services.GetRequiredService<CrscOptions>().LeaderAbsentAfterValue,
        });
        // leader: the next pod of a workload whose node went away (drain, shutdown) is restored from its node-away checkpoint
        NodeAwayRestoreReconciler.SetUp(manager, new NodeAwayRestoreOptions
        {
            Window = services.GetRequiredService<CrscOptions>().ShutdownRestoreWindowValue,
        });
        // leader: the replacement of a pod lost with its node (Node gone or not Ready) is annotated crsc.io/restore-from
        // with that pod's newest checkpoint; its node's agent fetches it (the registry copy) and restores it
        NodeLostRestoreReconciler.SetUp(manager, new NodeLostRestoreOptions
        {
            Window = services.GetRequiredService<CrscOptions>().NodeAgentLostRestoreWindowValue,
        });

        // node: say that crsc runs here, by renewing this node's presence Lease
        var presence = new NodeAgentLease(manager.Kube, new NodeAgentLeaseOptions { Namespace = cluster.Namespace, NodeName = cluster.NodeName },
            manager.Time, manager.Loggers.CreateLogger<NodeAgentLease>());
        manager.AddRunnable("node presence lease", presence.RunAsync);

        // node: this node's CheckpointNode says what its runtime can do (written only when that changes)
        CheckpointNodeReporter.SetUp(manager, services.GetRequiredService<DaemonNodeReportSource>(),
            new CheckpointNodeReporterOptions { NodeName = cluster.NodeName });

        // leader: a deleted checkpoint whose node agent is gone (node deleted, or crsc absent there for
        // nodeAgent.absentAfter) loses its archive finalizer, so that its namespace can finish terminating
        AbandonedCheckpointReconciler.SetUp(manager, new AbandonedCheckpointOptions
        {
            Namespace = cluster.Namespace,
            AgentAbsentAfter = services.GetRequiredService<CrscOptions>().NodeAgentAbsentAfterValue,
        });
    }
}

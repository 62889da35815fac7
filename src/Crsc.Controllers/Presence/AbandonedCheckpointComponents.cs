using Crsc.Api.Crds;
using Crsc.Controllers.Events;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Reconciling;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Presence;

/// <summary>
/// The <see cref="AbandonedCheckpointReconciler"/>, wired: its <see cref="Controller"/> reconciles a ContainerCheckpoint
/// when it changes (the daemon's shared checkpoint informer, which every node runs anyway). Leader-only. Nodes and
/// Leases are read with a GET when a deleted checkpoint is looked at, which is rare: no cluster-wide cache of them.
/// </summary>
public sealed class AbandonedCheckpointComponents
{
    public const string ControllerName = "containercheckpoint-abandoned";

    private AbandonedCheckpointComponents(AbandonedCheckpointReconciler reconciler, Controller controller)
    {
        Reconciler = reconciler;
        Controller = controller;
    }

    public AbandonedCheckpointReconciler Reconciler { get; }
    public Controller Controller { get; }

    public static AbandonedCheckpointComponents Create(
        IKubeApi kube,
        IEventRecorder events,
        TimeProvider time,
        ILoggerFactory loggers,
        Informer<ContainerCheckpoint> checkpoints,
        AbandonedCheckpointOptions options)
    {
        ArgumentNullException.ThrowIfNull(loggers);
        var reconciler = new AbandonedCheckpointReconciler(kube, checkpoints, events, options, time,
            loggers.CreateLogger<AbandonedCheckpointReconciler>());
        var controller = new Controller(ControllerName, reconciler, time, loggers.CreateLogger<Controller>()).Watch(checkpoints);
        return new AbandonedCheckpointComponents(reconciler, controller);
    }
}

using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Health;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.NodeAgent;

/// <summary>
/// The API-server half of the node agent's checkpoint path, wired: an informer for the pods of this node
/// (<c>spec.nodeName=&lt;node&gt;</c>), one for ContainerCheckpoint objects, the
/// <see cref="ContainerCheckpointReconciler"/> and its <see cref="Controller"/>. The <see cref="ICheckpointRunner"/>
/// is built separately (the node API uses it with or without an API server) and passed in.
/// <see cref="RunAsync"/> runs everything until cancelled; node work, so not leader-only.
/// </summary>
public sealed class NodeAgentComponents
{
    public const string ControllerName = "containercheckpoint-node";

    private NodeAgentComponents(Informer<Pod> pods, Informer<ContainerCheckpoint> checkpoints,
        ContainerCheckpointReconciler reconciler, Controller controller)
    {
        Pods = pods;
        Checkpoints = checkpoints;
        Reconciler = reconciler;
        Controller = controller;
    }

    public Informer<Pod> Pods { get; }
    public Informer<ContainerCheckpoint> Checkpoints { get; }
    public ContainerCheckpointReconciler Reconciler { get; }
    public Controller Controller { get; }

    /// <summary>
    /// A workload resolver over <paramref name="pods"/> (Deployment/StatefulSet names from owner references) for the
    /// <see cref="CheckpointRunner"/>; build the pod informer first with <see cref="CreatePodInformer"/>.
    /// </summary>
    public static IWorkloadNameResolver WorkloadResolver(Informer<Pod> pods) =>
        new PodOwnerWorkloadResolver((ns, name) => pods.Get(new Crsc.Api.ObjectKey(ns, name)));

    /// <summary>The informer of the pods on <paramref name="nodeName"/>.</summary>
    public static Informer<Pod> CreatePodInformer(IKubeApi kube, string nodeName, TimeProvider time, ILoggerFactory loggers,
        HealthRegistry? health = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nodeName);
        return new Informer<Pod>(kube.Resource(Resources.Pods),
            new InformerOptions { FieldSelector = $"spec.nodeName={nodeName}", Name = "informer/pods-on-node" },
            time, loggers.CreateLogger("Crsc.Informers.Pods"), health);
    }

    /// <param name="pods">from <see cref="CreatePodInformer"/> (null: made here)</param>
    /// <param name="workers">keys reconciled at once; default the runner's concurrency plus two, so deletions and
    /// status work never wait behind a long checkpoint</param>
    public static NodeAgentComponents Create(
        string nodeName,
        IKubeApi kube,
        ICheckpointRunner runner,
        ICheckpointStore store,
        IEventRecorder events,
        TimeProvider time,
        ILoggerFactory loggers,
        HealthRegistry? health = null,
        CheckpointMetrics? metrics = null,
        Informer<Pod>? pods = null,
        int? workers = null,
        ICheckpointImagePublisher? imagePublisher = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentNullException.ThrowIfNull(loggers);
        pods ??= CreatePodInformer(kube, nodeName, time, loggers, health);
        var checkpoints = new Informer<ContainerCheckpoint>(kube.Resource(CrscResources.ContainerCheckpoints),
            new InformerOptions(), time, loggers.CreateLogger("Crsc.Informers.ContainerCheckpoints"), health);
        var options = new ContainerCheckpointReconcilerOptions { NodeName = nodeName };
        var reconciler = new ContainerCheckpointReconciler(kube, pods, checkpoints, runner, store, events, options, time,
            loggers.CreateLogger<ContainerCheckpointReconciler>(), metrics, imagePublisher);
        var concurrency = (runner as CheckpointRunner)?.Options.MaxConcurrent ?? 1;
        var controller = new Controller(ControllerName, reconciler, time, loggers.CreateLogger<Controller>(),
            new ControllerOptions { Workers = workers ?? concurrency + 2 });
        controller.Watch(checkpoints);
        controller.Watch(pods, pod => ContainerCheckpointReconciler.CheckpointsOfPod(checkpoints, pod));
        return new NodeAgentComponents(pods, checkpoints, reconciler, controller);
    }

    /// <summary>Runs both informers and the controller until <paramref name="ct"/> fires.</summary>
    public Task RunAsync(CancellationToken ct) =>
        Task.WhenAll(Pods.RunAsync(ct), Checkpoints.RunAsync(ct), Controller.RunAsync(ct));
}

using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Health;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Runtime;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Restores;

/// <summary>
/// The leader's restore state manager, wired: informers for Restores, all pods, ContainerCheckpoints and their
/// Contents, the <see cref="RestoreReconciler"/> and its <see cref="Controller"/> (Restore changes; pod changes mapped
/// to the Restores naming the pod or its Deployment; checkpoint and Content changes to the namespace's unfinished
/// Restores). <see cref="RunAsync"/> runs what it made until cancelled: leader-only, run it in the leadership scope.
/// </summary>
public sealed class RestoreComponents
{
    public const string ControllerName = "restore";

    private readonly List<IInformer> _owned;

    private RestoreComponents(Informer<Restore> restores, Informer<Pod> pods, Informer<ContainerCheckpoint> checkpoints,
        Informer<ContainerCheckpointContent> contents, RestoreReconciler reconciler, Controller controller, List<IInformer> owned)
    {
        Restores = restores;
        Pods = pods;
        Checkpoints = checkpoints;
        Contents = contents;
        Reconciler = reconciler;
        Controller = controller;
        _owned = owned;
    }

    public Informer<Restore> Restores { get; }
    public Informer<Pod> Pods { get; }
    public Informer<ContainerCheckpoint> Checkpoints { get; }
    public Informer<ContainerCheckpointContent> Contents { get; }
    public RestoreReconciler Reconciler { get; }
    public Controller Controller { get; }

    /// <summary>The informers made by <see cref="Create"/> (not the ones passed in), for the caller to run.</summary>
    public IReadOnlyList<IInformer> OwnedInformers => _owned;

    /// <param name="pods">an informer of all pods shared with other leader components (the caller runs it); null: made
    /// and run here</param>
    /// <param name="restores">Restores of every namespace (e.g. the node preparer's; the caller runs it); null: made here</param>
    /// <param name="checkpoints">ContainerCheckpoints of every namespace (the daemon's; the caller runs it); null: made here</param>
    public static RestoreComponents Create(
        IKubeApi kube,
        IEventRecorder events,
        TimeProvider time,
        ILoggerFactory loggers,
        HealthRegistry? health = null,
        RestoreReconcilerOptions? options = null,
        Informer<Pod>? pods = null,
        Informer<Restore>? restores = null,
        Informer<ContainerCheckpoint>? checkpoints = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentNullException.ThrowIfNull(loggers);
        var source = new InformerSource(kube, time, loggers, health);
        pods = source.UseOrMake(pods, Resources.Pods, new InformerOptions { Name = "informer/pods-restore" }, "Crsc.Informers.Pods");
        restores = source.UseOrMake(restores, CrscResources.Restores, new InformerOptions { Name = "informer/restores" }, "Crsc.Informers.Restores");
        checkpoints = source.UseOrMake(checkpoints, CrscResources.ContainerCheckpoints,
            new InformerOptions { Name = "informer/containercheckpoints-restore" }, "Crsc.Informers.ContainerCheckpoints");
        var contents = source.UseOrMake(null, CrscResources.ContainerCheckpointContents,
            new InformerOptions { Name = "informer/containercheckpointcontents-restore" }, "Crsc.Informers.ContainerCheckpointContents");
        var owned = source.Made;

        var reconciler = new RestoreReconciler(kube, restores, pods, checkpoints, contents, events,
            options ?? new RestoreReconcilerOptions(), time, loggers.CreateLogger<RestoreReconciler>());
        var controller = new Controller(ControllerName, reconciler, time, loggers.CreateLogger<Controller>(),
            new ControllerOptions { Workers = 2 });
        var restoreInformer = restores;
        controller.Watch(restores);
        controller.Watch(pods, pod => RestoreReconciler.RestoresOfPod(restoreInformer, pod));
        controller.Watch(checkpoints, c => RestoreReconciler.ActiveRestoresIn(restoreInformer, c.Metadata.Namespace));
        controller.Watch(contents, c => RestoreReconciler.ActiveRestoresIn(restoreInformer, c.Spec.CheckpointRef.Namespace));
        return new RestoreComponents(restores, pods, checkpoints, contents, reconciler, controller, owned);
    }

    /// <summary>Runs the informers made here and the controller until <paramref name="ct"/> fires.</summary>
    public Task RunAsync(CancellationToken ct) =>
        Task.WhenAll(_owned.Select(i => i.RunAsync(ct)).Append(Controller.RunAsync(ct)));
}

/// <summary>
/// The node side of restores, wired: the <see cref="RestorePreparer"/> over this node's pods and all Restores, and its
/// <see cref="Controller"/>. Node work (every daemon, not leader-only).
/// </summary>
public sealed class RestorePreparerComponents
{
    public const string ControllerName = "restore-images-node";

    private readonly List<IInformer> _owned;

    private RestorePreparerComponents(Informer<Restore> restores, RestorePreparer preparer, Controller controller, List<IInformer> owned)
    {
        Restores = restores;
        Preparer = preparer;
        Controller = controller;
        _owned = owned;
    }

    public Informer<Restore> Restores { get; }
    public RestorePreparer Preparer { get; }
    public Controller Controller { get; }

    /// <param name="podsOnNode">the node agent's informer of this node's pods (<c>NodeAgentComponents.Pods</c>; the
    /// caller runs it); null: made and run here</param>
    public static RestorePreparerComponents Create(
        string nodeName,
        IKubeApi kube,
        IContainerRuntime runtime,
        IEventRecorder events,
        TimeProvider time,
        ILoggerFactory loggers,
        HealthRegistry? health = null,
        Informer<Pod>? podsOnNode = null,
        RestorePreparerOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nodeName);
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentNullException.ThrowIfNull(loggers);
        var source = new InformerSource(kube, time, loggers, health);
        podsOnNode = source.UseOrMake(podsOnNode, Resources.Pods,
            new InformerOptions { FieldSelector = $"spec.nodeName={nodeName}", Name = "informer/pods-on-node-restore" }, "Crsc.Informers.Pods");
        var restores = source.UseOrMake(null, CrscResources.Restores, new InformerOptions { Name = "informer/restores-node" }, "Crsc.Informers.Restores");
        var owned = source.Made;
        var preparer = new RestorePreparer(kube, restores, podsOnNode, runtime, events,
            (options ?? new RestorePreparerOptions { NodeName = nodeName }) with { NodeName = nodeName }, time,
            loggers.CreateLogger<RestorePreparer>());
        var controller = new Controller(ControllerName, preparer, time, loggers.CreateLogger<Controller>(),
            new ControllerOptions { Workers = 2 });
        controller.Watch(restores);
        controller.Watch(podsOnNode, pod => RestorePreparer.RestoresOfPod(restores, pod));
        return new RestorePreparerComponents(restores, preparer, controller, owned);
    }

    /// <summary>Runs the informers made here and the controller until <paramref name="ct"/> fires.</summary>
    public Task RunAsync(CancellationToken ct) =>
        Task.WhenAll(_owned.Select(i => i.RunAsync(ct)).Append(Controller.RunAsync(ct)));
}

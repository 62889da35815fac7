using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Health;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Reconciling;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Schedules;

/// <summary>
/// The node agent's scheduler, wired: the <see cref="ScheduleReconciler"/> and its <see cref="Controller"/>, fed by
/// the schedules (all namespaces), the pods of this node and the ContainerCheckpoints (all namespaces). Pass the
/// daemon's shared informers to reuse them; missing ones are made here (and run by <see cref="RunAsync"/>). Node
/// work: runs on every node, not leader-only.
/// </summary>
public sealed class NodeScheduleComponents
{
    public const string ControllerName = "checkpointschedule-node";

    private readonly IReadOnlyList<IInformer> _owned;

    private NodeScheduleComponents(Informer<CheckpointSchedule> schedules, Informer<Pod> pods,
        Informer<ContainerCheckpoint> checkpoints, ScheduleReconciler reconciler, Controller controller, IReadOnlyList<IInformer> owned)
    {
        Schedules = schedules;
        Pods = pods;
        Checkpoints = checkpoints;
        Reconciler = reconciler;
        Controller = controller;
        _owned = owned;
    }

    public Informer<CheckpointSchedule> Schedules { get; }
    public Informer<Pod> Pods { get; }
    public Informer<ContainerCheckpoint> Checkpoints { get; }
    public ScheduleReconciler Reconciler { get; }
    public Controller Controller { get; }

    /// <summary>The informers made by <see cref="Create"/> (not the ones passed in), for the daemon to run.</summary>
    public IReadOnlyList<IInformer> OwnedInformers => _owned;

    /// <param name="pods">the pods of <paramref name="nodeName"/> (<see cref="NodeAgentComponents.CreatePodInformer"/>); null: made here</param>
    /// <param name="schedules">CheckpointSchedules of every namespace; null: made here</param>
    /// <param name="checkpoints">ContainerCheckpoints of every namespace; null: made here</param>
    public static NodeScheduleComponents Create(
        string nodeName,
        IKubeApi kube,
        IEventRecorder events,
        TimeProvider time,
        ILoggerFactory loggers,
        HealthRegistry? health = null,
        Informer<Pod>? pods = null,
        Informer<CheckpointSchedule>? schedules = null,
        Informer<ContainerCheckpoint>? checkpoints = null,
        int workers = 2,
        IScheduleRunLog? runLog = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentNullException.ThrowIfNull(loggers);
        var source = new InformerSource(kube, time, loggers, health);
        if (pods is null) source.Made.Add(pods = NodeAgentComponents.CreatePodInformer(kube, nodeName, time, loggers, health));
        schedules = source.UseOrMake(schedules, CrscResources.CheckpointSchedules, new InformerOptions(), "Crsc.Informers.CheckpointSchedules");
        checkpoints = source.UseOrMake(checkpoints, CrscResources.ContainerCheckpoints, new InformerOptions(), "Crsc.Informers.ContainerCheckpoints");
        var owned = source.Made;

        var reconciler = new ScheduleReconciler(kube, schedules, pods, checkpoints, events,
            new ScheduleReconcilerOptions { NodeName = nodeName }, time, loggers.CreateLogger<ScheduleReconciler>(), runLog);
        var controller = new Controller(ControllerName, reconciler, time, loggers.CreateLogger<Controller>(),
            new ControllerOptions { Workers = workers });
        var scheduleInformer = schedules;
        controller.Watch(schedules);
        controller.Watch(pods, pod => ScheduleReconciler.SchedulesOfPod(scheduleInformer, pod));
        controller.WatchOwned(checkpoints, CheckpointSchedule.KindName, onlyController: true);
        return new NodeScheduleComponents(schedules, pods, checkpoints, reconciler, controller, owned);
    }

    /// <summary>Runs the informers made here and the controller until <paramref name="ct"/> fires.</summary>
    public Task RunAsync(CancellationToken ct) =>
        Task.WhenAll(_owned.Select(i => i.RunAsync(ct)).Append(Controller.RunAsync(ct)));
}

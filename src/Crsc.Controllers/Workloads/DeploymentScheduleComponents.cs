using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Health;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Reconciling;
using Microsoft.Extensions.Logging;

namespace Crsc.Controllers.Workloads;

/// <summary>
/// The Deployment reconciler, wired: an informer for Deployments (every namespace), one for CheckpointSchedules
/// (pass the daemon's shared one), the <see cref="DeploymentReconciler"/> and its <see cref="Controller"/>, which
/// reconciles a Deployment when it or a schedule it owns (or of its name) changes. The controller is leader-only;
/// the informers may run all the time. <see cref="RunAsync"/> runs the informers made here and the controller.
/// </summary>
public sealed class DeploymentScheduleComponents
{
    public const string ControllerName = "deployment-schedules";

    private readonly IReadOnlyList<IInformer> _owned;

    private DeploymentScheduleComponents(Informer<Deployment> deployments, Informer<CheckpointSchedule> schedules,
        DeploymentReconciler reconciler, Controller controller, IReadOnlyList<IInformer> owned)
    {
        Deployments = deployments;
        Schedules = schedules;
        Reconciler = reconciler;
        Controller = controller;
        _owned = owned;
    }

    public Informer<Deployment> Deployments { get; }
    public Informer<CheckpointSchedule> Schedules { get; }
    public DeploymentReconciler Reconciler { get; }
    public Controller Controller { get; }

    /// <summary>The informers made by <see cref="Create"/> (not the ones passed in), for the daemon to run.</summary>
    public IReadOnlyList<IInformer> OwnedInformers => _owned;

    /// <param name="deployments">Deployments of every namespace; null: made here</param>
    /// <param name="schedules">CheckpointSchedules of every namespace; null: made here</param>
    public static DeploymentScheduleComponents Create(
        IKubeApi kube,
        IEventRecorder events,
        TimeProvider time,
        ILoggerFactory loggers,
        HealthRegistry? health = null,
        Informer<Deployment>? deployments = null,
        Informer<CheckpointSchedule>? schedules = null,
        DeploymentReconcilerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentNullException.ThrowIfNull(loggers);
        var source = new InformerSource(kube, time, loggers, health);
        deployments = source.UseOrMake(deployments, Resources.Deployments, new InformerOptions { Name = "deployments" }, "Crsc.Informers.Deployments");
        schedules = source.UseOrMake(schedules, CrscResources.CheckpointSchedules, new InformerOptions(), "Crsc.Informers.CheckpointSchedules");
        var owned = source.Made;
        var reconciler = new DeploymentReconciler(kube, deployments, schedules, events, time,
            loggers.CreateLogger<DeploymentReconciler>(), options);
        var controller = new Controller(ControllerName, reconciler, time, loggers.CreateLogger<Controller>());
        controller.Watch(deployments, DeploymentReconciler.DeploymentEvents);
        controller.Watch(schedules, DeploymentReconciler.DeploymentsOfSchedule);
        return new DeploymentScheduleComponents(deployments, schedules, reconciler, controller, owned);
    }

    /// <summary>Runs the informers made here and the controller until <paramref name="ct"/> fires.</summary>
    public Task RunAsync(CancellationToken ct) =>
        Task.WhenAll(_owned.Select(i => i.RunAsync(ct)).Append(Controller.RunAsync(ct)));
}

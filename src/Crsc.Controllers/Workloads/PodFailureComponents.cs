using Crsc.Api;
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
/// The failure detector, wired: informers of Pods (all namespaces), ReplicaSets, Deployments and Restores, the
/// <see cref="PodFailureReconciler"/> and its <see cref="Controller"/> (keys: Deployments). The informers run on every
/// instance (register them with the cluster connection); the controller is leader-only. Informers another component
/// built already may be passed in and are shared.
/// </summary>
public sealed class PodFailureComponents
{
    public const string ControllerName = "pod-failure";

    private PodFailureComponents(IReadOnlyList<IInformer> created, Informer<Pod> pods, Informer<ReplicaSet> replicaSets,
        Informer<Deployment> deployments, Informer<Restore> restores, PodFailureReconciler reconciler, Controller controller)
    {
        CreatedInformers = created;
        Pods = pods;
        ReplicaSets = replicaSets;
        Deployments = deployments;
        Restores = restores;
        Reconciler = reconciler;
        Controller = controller;
    }

    /// <summary>The informers made here (not those passed in): the caller runs them.</summary>
    public IReadOnlyList<IInformer> CreatedInformers { get; }
    public Informer<Pod> Pods { get; }
    public Informer<ReplicaSet> ReplicaSets { get; }
    public Informer<Deployment> Deployments { get; }
    public Informer<Restore> Restores { get; }
    public PodFailureReconciler Reconciler { get; }
    public Controller Controller { get; }

    public static PodFailureComponents Create(
        IKubeApi kube,
        IEventRecorder events,
        TimeProvider time,
        ILoggerFactory loggers,
        PodFailureOptions? options = null,
        HealthRegistry? health = null,
        Informer<Pod>? pods = null,
        Informer<ReplicaSet>? replicaSets = null,
        Informer<Deployment>? deployments = null,
        Informer<Restore>? restores = null,
        int workers = 2)
    {
        ArgumentNullException.ThrowIfNull(kube);
        ArgumentNullException.ThrowIfNull(loggers);
        var source = new InformerSource(kube, time, loggers, health);
        Informer<T> Make<T>(Informer<T>? given, ResourceType<T> type, string name) where T : class, IKubernetesObject =>
            source.UseOrMake(given, type, new InformerOptions { Name = "informer/" + name }, "Crsc.Informers." + name);
        pods = Make(pods, Resources.Pods, "pods");
        replicaSets = Make(replicaSets, Resources.ReplicaSets, "replicasets");
        deployments = Make(deployments, Resources.Deployments, "deployments");
        restores = Make(restores, CrscResources.Restores, "restores");
        var created = source.Made;

        var reconciler = new PodFailureReconciler(kube, pods, replicaSets, deployments, restores, events,
            options ?? new PodFailureOptions(), time, loggers.CreateLogger<PodFailureReconciler>());
        var controller = new Controller(ControllerName, reconciler, time, loggers.CreateLogger<Controller>(),
            new ControllerOptions { Workers = workers });
        controller.Watch(deployments);
        controller.Watch(pods, p => reconciler.WorkloadOf(p) is { } k ? [k] : []);
        controller.Watch(replicaSets, rs => PodFailureReconciler.DeploymentOf(rs) is { } k ? [k] : []);
        controller.Watch(restores, r => PodFailureReconciler.TargetOf(r) is { } k ? [k] : []);
        return new PodFailureComponents(created, pods, replicaSets, deployments, restores, reconciler, controller);
    }

    /// <summary>Runs the informers made here and the controller until <paramref name="ct"/> fires (tests, benchmarks).</summary>
    public Task RunAsync(CancellationToken ct) =>
        Task.WhenAll([.. CreatedInformers.Select(i => i.RunAsync(ct)), Controller.RunAsync(ct)]);
}

using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Configuration;
using Crsc.Controllers.Autonomy;
using Crsc.Controllers.Events;
using Crsc.Controllers.Health;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Leadership;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.Reconciling;
using Crsc.Kube;
using Microsoft.Extensions.Logging;

namespace Crsc.Daemon;

/// <summary>
/// Timings of the cluster connection. The defaults are production's; tests shorten them on the instance the host
/// registered, before the host starts.
/// </summary>
internal sealed class ClusterConnectionOptions
{
    /// <summary>How often a connected daemon checks that the API server still answers (<c>GET /version</c>).</summary>
    public TimeSpan ProbeInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>First wait before probing an unreachable API server again; doubles up to <see cref="MaxRetry"/>.</summary>
    public TimeSpan InitialRetry { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxRetry { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(15);

    public TimeSpan RenewDeadline { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan RetryPeriod { get; set; } = TimeSpan.FromSeconds(2);
}

/// <summary>
/// The daemon's side of the cluster, shared through DI: the API connection, the node agent's informers, the event
/// recorder, the leader elector and the leader-only controllers. <see cref="ClusterConnection"/> runs them; later
/// steps add reconcilers with <see cref="AddLeaderController"/> / <see cref="AddNodeController"/> before the host
/// starts; every controller added reports controller-runtime's metrics (<see cref="ControllerMetrics"/>) into the
/// daemon's registry. When no API server is configured, or the kubeconfig cannot be used, <see cref="Api"/> is null
/// and so is everything built on it.
/// </summary>
internal sealed class ClusterServices : IDisposable
{
    public const string KubeComponent = "kube";
    public const string InformersComponent = "informers";
    public const string LeaderComponent = "leader";

    private readonly List<Controller> _leaderControllers = [];
    private readonly List<Controller> _nodeControllers = [];
    private readonly List<(string Name, Func<CancellationToken, Task> Run)> _nodeLoops = [];
    private readonly List<IInformer> _informers = [];
    private readonly List<IInformer> _leaderInformers = [];
    private int _started;

    public ClusterServices(CrscOptions options, ClusterConnectionOptions timings, HealthRegistry health, TimeProvider time,
        ILoggerFactory loggers, NodeAutonomy autonomy, ApiServerState apiServer, MetricsRegistry metrics)
    {
        NodeName = options.NodeName;
        Namespace = options.Namespace;
        Configured = IsConfigured(options);
        if (!Configured) return;
        try
        {
            Api = new KubeApi(KubeConfigLoader.Load(options.Kubeconfig, time: time), loggers);
        }
        catch (KubeConfigException e)
        {
            ConfigError = e.Message;
            return;
        }
        ControllerMetrics = new ControllerMetrics(metrics);

        // the node agent's view: its own pods, and crsc's objects in every namespace. They report into a registry
        // of their own; ClusterConnection folds that into one "informers" entry so STATUS= stays one short line.
        InformerHealth = new HealthRegistry(time);
        NodePods = AddInformer(new Informer<Pod>(Api.Resource(Resources.Pods),
            new InformerOptions { FieldSelector = $"spec.nodeName={options.NodeName}", Name = "pods" },
            time, loggers.CreateLogger("Crsc.Informers.Pods"), InformerHealth));
        Checkpoints = AddInformer(new Informer<ContainerCheckpoint>(Api.Resource(CrscResources.ContainerCheckpoints),
            new InformerOptions { Name = "containercheckpoints" },
            time, loggers.CreateLogger("Crsc.Informers.ContainerCheckpoints"), InformerHealth));
        Schedules = AddInformer(new Informer<CheckpointSchedule>(Api.Resource(CrscResources.CheckpointSchedules),
            new InformerOptions { Name = "checkpointschedules" },
            time, loggers.CreateLogger("Crsc.Informers.CheckpointSchedules"), InformerHealth));

        var identity = LeaderElectionOptions.NewIdentity(options.NodeName);
        // events the API server cannot take while it is away wait in the outbox
        EventRecorder = new EventRecorder(
            new OutboxEventSink(new ApiEventSink(Api.Resource(Resources.CoreEvents)), () => autonomy.Outbox, apiServer, autonomy.Status),
            new EventRecorderOptions { Host = options.NodeName, ReportingInstance = identity },
            time, loggers.CreateLogger("Crsc.Events"));
        Elector = new LeaderElector(Api.Resource(Resources.Leases),
            new LeaderElectionOptions
            {
                Namespace = options.Namespace,
                Identity = identity,
                LeaseDuration = timings.LeaseDuration,
                RenewDeadline = timings.RenewDeadline,
                RetryPeriod = timings.RetryPeriod,
                HealthComponent = LeaderComponent,
            },
            time, loggers.CreateLogger("Crsc.LeaderElection"), health, EventRecorder);
    }

    /// <summary>A kubeconfig is set, or the in-cluster service environment is present.</summary>
    public static bool IsConfigured(CrscOptions options) =>
        options.Kubeconfig.Length > 0 || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST"));

    public string NodeName { get; }

    /// <summary>crsc's namespace (the leader's Lease and the node agents' Leases live there).</summary>
    public string Namespace { get; }

    /// <summary>A kubeconfig or the in-cluster environment was given.</summary>
    public bool Configured { get; }

    /// <summary>Why the configuration could not be used (null when it could, or when there is none).</summary>
    public string? ConfigError { get; }

    public KubeApi? Api { get; }

    /// <summary>Where the controllers report (null without an API server: then there are none).</summary>
    public ControllerMetrics? ControllerMetrics { get; }

    /// <summary>Pods scheduled to this node (<c>spec.nodeName=&lt;node&gt;</c>).</summary>
    public Informer<Pod>? NodePods { get; }

    /// <summary>ContainerCheckpoints in every namespace.</summary>
    public Informer<ContainerCheckpoint>? Checkpoints { get; }

    /// <summary>CheckpointSchedules in every namespace.</summary>
    public Informer<CheckpointSchedule>? Schedules { get; }

    public EventRecorder? EventRecorder { get; }

    public LeaderElector? Elector { get; }

    /// <summary>Where the informers report, one entry each; folded into the daemon's "informers" entry.</summary>
    internal HealthRegistry? InformerHealth { get; }

    public IReadOnlyList<IInformer> Informers => _informers;

    /// <summary>Informers only the leader-only controllers read (cluster-wide views): run for each leadership term.</summary>
    public IReadOnlyList<IInformer> LeaderInformers => _leaderInformers;

    /// <summary>Controllers that run only while this instance holds the Lease.</summary>
    public IReadOnlyList<Controller> LeaderControllers => _leaderControllers;

    /// <summary>Controllers that run on every node, leader or not, while connected.</summary>
    public IReadOnlyList<Controller> NodeControllers => _nodeControllers;

    /// <summary>Background work of every instance that is not a controller (renewing the node's presence Lease), by name.</summary>
    public IReadOnlyList<(string Name, Func<CancellationToken, Task> Run)> NodeLoops => _nodeLoops;

    /// <summary>Another informer to run with the others (before the connection starts).</summary>
    public TInformer AddInformer<TInformer>(TInformer informer) where TInformer : IInformer
    {
        ThrowIfStarted();
        _informers.Add(informer);
        return informer;
    }

    /// <summary>
    /// An informer that only leader-only controllers read: it lists and watches while this instance leads, so the
    /// other nodes do not keep cluster-wide caches they never use.
    /// </summary>
    public TInformer AddLeaderInformer<TInformer>(TInformer informer) where TInformer : IInformer
    {
        ThrowIfStarted();
        _leaderInformers.Add(informer);
        return informer;
    }

    /// <summary>A cluster reconciler: started when this instance becomes leader, cancelled and drained when it stops.</summary>
    public void AddLeaderController(Controller controller)
    {
        ThrowIfStarted();
        if (ControllerMetrics is not null) controller.UseMetrics(ControllerMetrics);
        _leaderControllers.Add(controller);
    }

    /// <summary>A node reconciler: runs on every instance while the daemon runs.</summary>
    public void AddNodeController(Controller controller)
    {
        ThrowIfStarted();
        if (ControllerMetrics is not null) controller.UseMetrics(ControllerMetrics);
        _nodeControllers.Add(controller);
    }

    /// <summary>A loop that runs on every instance while connected, until the daemon stops; a failure ends only it.</summary>
    public void AddNodeLoop(string name, Func<CancellationToken, Task> run)
    {
        ThrowIfStarted();
        _nodeLoops.Add((name, run));
    }

    internal void MarkStarted() => Interlocked.Exchange(ref _started, 1);

    private void ThrowIfStarted()
    {
        if (Volatile.Read(ref _started) != 0) throw new InvalidOperationException("the cluster connection is running already");
    }

    public void Dispose() => Api?.Dispose();
}

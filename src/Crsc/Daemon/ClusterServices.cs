using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Configuration;
using Crsc.Controllers.Autonomy;
using Crsc.Controllers.Events;
using Crsc.Controllers.Health;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Leadership;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.Queue;
using Crsc.Controllers.Hosting;
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

    /// <summary>
    /// First wait before probing an API server that did not answer again; doubles up to <see cref="MaxRetry"/> when
    /// it answers with errors, up to <see cref="UnreachableMaxRetry"/> while it cannot be reached at all.
    /// </summary>
    public TimeSpan InitialRetry { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxRetry { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The cap while the API server cannot be reached (refused, reset, timed out), stretched by up to 25 %: the daemon
    /// connects within seconds of its return, also when it started while the server was away.
    /// </summary>
    public TimeSpan UnreachableMaxRetry { get; set; } = ReconnectBackoff.DefaultUnreachableMax;

    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(15);

    public TimeSpan RenewDeadline { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan RetryPeriod { get; set; } = TimeSpan.FromSeconds(2);
}

/// <summary>
/// The daemon's side of the cluster, shared through DI: the API connection, the event recorder, the leader elector
/// and the <see cref="ControllerManager"/> that owns the shared informers, the controllers (node and leader-only) and
/// the leadership term. Controllers are set up with the manager (the <c>SetUp</c> method beside each reconciler)
/// before the host starts; <see cref="ClusterConnection"/> runs the manager once the API server answers. When no API
/// server is configured, or the kubeconfig cannot be used, <see cref="Api"/> is null and so is everything built on it.
/// </summary>
internal sealed class ClusterServices : IDisposable
{
    public const string KubeComponent = "kube";
    public const string InformersComponent = "informers";
    public const string LeaderComponent = "leader";

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
        // the informers report into a registry of their own; ClusterConnection folds it into one "informers" entry
        // so that STATUS= stays one short line
        InformerHealth = new HealthRegistry(time);
        Manager = new ControllerManager(new ControllerManagerOptions
        {
            Kube = Api,
            Events = EventRecorder,
            Time = time,
            Loggers = loggers,
            InformerHealth = InformerHealth,
            Metrics = new ControllerMetrics(metrics),
            Elector = Elector,
        });
        Manager.AddRunnable("event recorder", EventRecorder.RunAsync);
        // the node agent's view, read outside controllers too (node state, static pods, workload names)
        NodePods = Manager.Informers.PodsOnNode(options.NodeName);
        Checkpoints = Manager.Informers.For(CrscResources.ContainerCheckpoints);
        Schedules = Manager.Informers.For(CrscResources.CheckpointSchedules);
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

    /// <summary>The controllers, their informers and the leadership term (null without an API server).</summary>
    public ControllerManager? Manager { get; }

    /// <summary>Pods scheduled to this node (<c>spec.nodeName=&lt;node&gt;</c>), from the manager's informers.</summary>
    public Informer<Pod>? NodePods { get; }

    /// <summary>ContainerCheckpoints in every namespace, from the manager's informers.</summary>
    public Informer<ContainerCheckpoint>? Checkpoints { get; }

    /// <summary>CheckpointSchedules in every namespace, from the manager's informers.</summary>
    public Informer<CheckpointSchedule>? Schedules { get; }

    public EventRecorder? EventRecorder { get; }

    public LeaderElector? Elector { get; }

    /// <summary>Where the informers report, one entry each; folded into the daemon's "informers" entry.</summary>
    internal HealthRegistry? InformerHealth { get; }

    public void Dispose() => Api?.Dispose();
}

namespace Crsc.Controllers.Metrics;

/// <summary>
/// The controllers' and their work queues' metrics, under the names controller-runtime and client-go's work queue
/// give them (so that dashboards and alerts written for Kubernetes controllers read crsc's unchanged):
/// <list type="bullet">
/// <item><c>controller_runtime_reconcile_total{controller,result}</c>, result success, error, requeue or requeue_after;</item>
/// <item><c>controller_runtime_reconcile_errors_total{controller}</c> (terminal ones too) and
/// <c>controller_runtime_terminal_reconcile_errors_total{controller}</c>;</item>
/// <item><c>controller_runtime_reconcile_time_seconds{controller}</c>;</item>
/// <item><c>controller_runtime_max_concurrent_reconciles{controller}</c>, <c>controller_runtime_active_workers{controller}</c>;</item>
/// <item><c>workqueue_depth</c>, <c>workqueue_adds_total</c>, <c>workqueue_queue_duration_seconds</c> (from add until a
/// worker takes the key), <c>workqueue_work_duration_seconds</c> (from take until done), <c>workqueue_retries_total</c>,
/// each <c>{name,controller}</c>, both the controller's name.</item>
/// </list>
/// A reconcile cut short by the controller stopping is counted nowhere: it is not an outcome, the next run redoes it.
/// Register once per registry; every controller shares the instance.
/// </summary>
public sealed class ControllerMetrics
{
    public const string ResultSuccess = "success";
    public const string ResultError = "error";
    public const string ResultRequeue = "requeue";
    public const string ResultRequeueAfter = "requeue_after";

    /// <summary>controller-runtime's reconcile-time buckets: 5 ms to 60 s, dense below 1 s.</summary>
    public static readonly double[] ReconcileTimeBuckets =
    [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
        1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
    ];

    /// <summary>client-go's work-queue buckets: powers of ten from 10 ns to 1000 s.</summary>
    public static readonly double[] QueueBuckets = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000];

    public ControllerMetrics(MetricsRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ReconcileTotal = registry.Counter("controller_runtime_reconcile_total",
            "reconciles per controller, by result (success, error, requeue, requeue_after)", "controller", "result");
        ReconcileErrors = registry.Counter("controller_runtime_reconcile_errors_total",
            "reconciles per controller that ended in an error, terminal ones included", "controller");
        TerminalReconcileErrors = registry.Counter("controller_runtime_terminal_reconcile_errors_total",
            "reconciles per controller that ended in a terminal error (not retried)", "controller");
        ReconcileTime = registry.Histogram("controller_runtime_reconcile_time_seconds",
            "time of one reconcile per controller, in seconds", ReconcileTimeBuckets, "controller");
        MaxConcurrentReconciles = registry.Gauge("controller_runtime_max_concurrent_reconciles",
            "workers of each running controller", "controller");
        ActiveWorkers = registry.Gauge("controller_runtime_active_workers",
            "workers of each controller reconciling right now", "controller");
        QueueDepth = registry.Gauge("workqueue_depth",
            "keys waiting in the work queue (added and not yet taken by a worker)", "name", "controller");
        QueueAdds = registry.Counter("workqueue_adds_total",
            "keys added to the work queue that were not waiting in it already", "name", "controller");
        QueueDuration = registry.Histogram("workqueue_queue_duration_seconds",
            "time a key waits in the work queue from its add until a worker takes it, in seconds", QueueBuckets, "name", "controller");
        WorkDuration = registry.Histogram("workqueue_work_duration_seconds",
            "time from a worker taking a key until it is done with it, in seconds", QueueBuckets, "name", "controller");
        QueueRetries = registry.Counter("workqueue_retries_total",
            "delayed adds to the work queue (rate-limited retries and requeues after a delay)", "name", "controller");
    }

    public Counter ReconcileTotal { get; }
    public Counter ReconcileErrors { get; }
    public Counter TerminalReconcileErrors { get; }
    public Histogram ReconcileTime { get; }
    public Gauge MaxConcurrentReconciles { get; }
    public Gauge ActiveWorkers { get; }
    public Gauge QueueDepth { get; }
    public Counter QueueAdds { get; }
    public Histogram QueueDuration { get; }
    public Histogram WorkDuration { get; }
    public Counter QueueRetries { get; }

    /// <summary>The series of the work queue of the controller <paramref name="name"/>.</summary>
    public WorkQueueMetrics ForQueue(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return new WorkQueueMetrics(this, name);
    }
}

/// <summary>What one work queue reports; the queue calls it while it holds its lock, so the calls are in order.</summary>
public sealed class WorkQueueMetrics
{
    private readonly ControllerMetrics _metrics;
    private readonly string[] _labels;

    internal WorkQueueMetrics(ControllerMetrics metrics, string name)
    {
        _metrics = metrics;
        _labels = [name, name];
    }

    public string Name => _labels[0];

    internal void Depth(int keys) => _metrics.QueueDepth.Set(keys, _labels);
    internal void Added() => _metrics.QueueAdds.Inc(1, _labels);
    internal void Taken(TimeSpan waited) => _metrics.QueueDuration.Observe(waited.TotalSeconds, _labels);
    internal void Worked(TimeSpan took) => _metrics.WorkDuration.Observe(took.TotalSeconds, _labels);
    internal void Retried() => _metrics.QueueRetries.Inc(1, _labels);
}

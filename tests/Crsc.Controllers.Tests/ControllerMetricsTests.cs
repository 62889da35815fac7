using System.Collections.Concurrent;
using System.Globalization;
using Crsc.Api;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.Queue;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Tests.Support;
using Crsc.Testing;

namespace Crsc.Controllers.Tests;

/// <summary>
/// A controller's controller-runtime metrics as a scrape reads them (the registry's rendered text), with the clock
/// moved by the test.
/// </summary>
public sealed class ControllerMetricsTests : IAsyncLifetime
{
    private const string Queue = "{name=\"test\",controller=\"test\"}";
    private const string Ctl = "{controller=\"test\"}";

    private readonly ManualTimeProvider _time = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly MetricsRegistry _registry = new();
    private Task _run = Task.CompletedTask;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(20));
        _stop.Dispose();
    }

    private sealed class ScriptedReconciler(Func<ObjectKey, int, CancellationToken, ValueTask<ReconcileResult>> script) : IReconciler
    {
        private readonly ConcurrentDictionary<ObjectKey, int> _counts = new();

        public ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
            => script(key, _counts.AddOrUpdate(key, 1, (_, c) => c + 1), ct);
    }

    private async Task<Controller> StartAsync(IReconciler reconciler)
    {
        var controller = new Controller("test", reconciler, _time, new RecordingLogger(), new ControllerOptions
        {
            RateLimiter = _ => new ExponentialFailureRateLimiter<ObjectKey>(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60)),
        }).UseMetrics(new ControllerMetrics(_registry));
        _run = controller.RunAsync(_stop.Token);
        await Eventually.TrueAsync(() => controller.Queue is not null, "controller running");
        return controller;
    }

    /// <summary>The value of one series in the scrape; null when the scrape has no such line.</summary>
    private double? Sample(string series)
    {
        foreach (var line in _registry.Render().Split('\n'))
            if (line.StartsWith(series + " ", StringComparison.Ordinal))
                return double.Parse(line.AsSpan(series.Length + 1), CultureInfo.InvariantCulture);
        return null;
    }

    private async Task SampleIsAsync(string series, double expected)
        => await Eventually.TrueAsync(() => Sample(series) == expected, $"{series} = {expected} (is {Sample(series)})");

    private static string Result(string result) => $"controller_runtime_reconcile_total{{controller=\"test\",result=\"{result}\"}}";

    private static readonly ObjectKey A = new("ns", "a"), B = new("ns", "b"), C = new("ns", "c"), D = new("ns", "d"), E = new("ns", "e");

    [Fact]
    public async Task Reconciles_are_counted_by_result_with_errors_retries_and_their_time()
    {
        var c = await StartAsync(new ScriptedReconciler((k, n, _) =>
        {
            if (k == A) _time.Advance(TimeSpan.FromMilliseconds(300)); // A takes 0.3 s on the controller's clock
            if (k == B && n == 1) throw new InvalidOperationException("boom");
            if (k == D) throw new TerminalException("bad spec");
            return ValueTask.FromResult(n > 1 ? ReconcileResult.Done
                : k == C ? ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(10))
                : k == E ? ReconcileResult.Requeue
                : ReconcileResult.Done);
        }));

        c.Enqueue(A);
        await SampleIsAsync(Result("success"), 1);
        c.Enqueue(B);
        await SampleIsAsync(Result("error"), 1);
        c.Enqueue(C);
        await SampleIsAsync(Result("requeue_after"), 1);
        c.Enqueue(D);
        await SampleIsAsync(Result("error"), 2);
        c.Enqueue(E);
        await SampleIsAsync(Result("requeue"), 1);

        Assert.Equal(1, Sample(Result("success")));
        Assert.Equal(2, Sample("controller_runtime_reconcile_errors_total" + Ctl));
        Assert.Equal(1, Sample("controller_runtime_terminal_reconcile_errors_total" + Ctl));
        Assert.Equal(5, Sample("controller_runtime_reconcile_time_seconds_count" + Ctl));
        Assert.Equal(0.3, Sample("controller_runtime_reconcile_time_seconds_sum" + Ctl));
        Assert.Equal(4, Sample("controller_runtime_reconcile_time_seconds_bucket{controller=\"test\",le=\"0.25\"}"));
        Assert.Equal(5, Sample("controller_runtime_reconcile_time_seconds_bucket{controller=\"test\",le=\"0.3\"}"));
        Assert.Equal(5, Sample("controller_runtime_reconcile_time_seconds_bucket{controller=\"test\",le=\"+Inf\"}"));
        Assert.Equal(5, Sample("workqueue_adds_total" + Queue));
        Assert.Equal(3, Sample("workqueue_retries_total" + Queue)); // B's error, C's requeue after 10 s, E's requeue
        Assert.Equal(1, Sample("controller_runtime_max_concurrent_reconciles" + Ctl));

        _time.Advance(TimeSpan.FromSeconds(1)); // B's and E's backoff
        await SampleIsAsync(Result("success"), 3);
        _time.Advance(TimeSpan.FromSeconds(9)); // C's delay
        await SampleIsAsync(Result("success"), 4);
        await SampleIsAsync("workqueue_work_duration_seconds_count" + Queue, 8);
        Assert.Equal(8, Sample("controller_runtime_reconcile_time_seconds_count" + Ctl));
        Assert.Equal(8, Sample("workqueue_adds_total" + Queue));
        Assert.Equal(3, Sample("workqueue_retries_total" + Queue));
        Assert.Equal(2, Sample("controller_runtime_reconcile_errors_total" + Ctl));
        Assert.Equal(0, Sample("workqueue_depth" + Queue));
    }

    [Fact]
    public async Task Queue_depth_counts_the_waiting_keys_and_the_waits_are_measured_on_the_injected_clock()
    {
        var release = new TaskCompletionSource<ReconcileResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        var c = await StartAsync(new ScriptedReconciler((k, n, _) =>
            k == A && n == 1 ? new ValueTask<ReconcileResult>(release.Task) : ValueTask.FromResult(ReconcileResult.Done)));

        c.Enqueue(A); // a worker waits: A is taken at once
        await SampleIsAsync("controller_runtime_active_workers" + Ctl, 1);
        c.Enqueue(B);
        c.Enqueue(C);
        c.Enqueue(B); // already waiting: not added again
        c.Enqueue(A); // changed while it is reconciled: waits for its own reconcile to end
        Assert.Equal(3, Sample("workqueue_depth" + Queue));
        Assert.Equal(4, Sample("workqueue_adds_total" + Queue));
        Assert.Equal(1, Sample("workqueue_queue_duration_seconds_count" + Queue));

        _time.Advance(TimeSpan.FromSeconds(2));
        release.SetResult(ReconcileResult.Done);
        await SampleIsAsync("workqueue_work_duration_seconds_count" + Queue, 4);
        await SampleIsAsync("controller_runtime_active_workers" + Ctl, 0);

        Assert.Equal(0, Sample("workqueue_depth" + Queue));
        // A waited 0 s; B, C and A again waited the 2 s A's first reconcile took
        Assert.Equal(4, Sample("workqueue_queue_duration_seconds_count" + Queue));
        Assert.Equal(6, Sample("workqueue_queue_duration_seconds_sum" + Queue));
        Assert.Equal(1, Sample("workqueue_queue_duration_seconds_bucket{name=\"test\",controller=\"test\",le=\"1\"}"));
        Assert.Equal(4, Sample("workqueue_queue_duration_seconds_bucket{name=\"test\",controller=\"test\",le=\"10\"}"));
        Assert.Equal(2, Sample("workqueue_work_duration_seconds_sum" + Queue));
        Assert.Equal(2, Sample("controller_runtime_reconcile_time_seconds_sum" + Ctl));
        Assert.Equal(4, Sample(Result("success")));
    }

    [Fact]
    public async Task A_stopped_controller_shows_an_empty_queue_and_no_workers_and_does_not_count_the_cancelled_reconcile()
    {
        var c = await StartAsync(new ScriptedReconciler(async (_, _, ct) =>
        {
            await Task.Delay(Timeout.Infinite, ct);
            return ReconcileResult.Done;
        }));
        c.Enqueue(A);
        await SampleIsAsync("controller_runtime_active_workers" + Ctl, 1);
        c.Enqueue(B);
        Assert.Equal(1, Sample("workqueue_depth" + Queue));
        Assert.Throws<InvalidOperationException>(() => c.UseMetrics(new ControllerMetrics(new MetricsRegistry())));

        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(0, Sample("workqueue_depth" + Queue)); // B went with the run's queue
        Assert.Equal(0, Sample("controller_runtime_active_workers" + Ctl));
        Assert.Equal(0, Sample("controller_runtime_max_concurrent_reconciles" + Ctl));
        Assert.Null(Sample("controller_runtime_reconcile_time_seconds_count" + Ctl));
        Assert.DoesNotContain("controller_runtime_reconcile_total{", _registry.Render());
    }

    [Fact]
    public void Controller_metrics_are_declared_once_per_registry_with_their_types()
    {
        var registry = new MetricsRegistry();
        var metrics = new ControllerMetrics(registry);
        var before = registry.Render();
        Assert.Contains("# TYPE controller_runtime_reconcile_time_seconds histogram", before);
        Assert.Contains("# TYPE workqueue_depth gauge", before);
        Assert.Throws<InvalidOperationException>(() => new ControllerMetrics(registry)); // once per registry
        Assert.Throws<ArgumentException>(() => metrics.ForQueue(""));
    }
}

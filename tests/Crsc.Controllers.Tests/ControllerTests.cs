using System.Collections.Concurrent;
using Crsc.Api;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Queue;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Tests.Support;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests;

public sealed class ControllerTests : IAsyncLifetime
{
    private readonly ManualTimeProvider _time = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly RecordingLogger _log = new();
    private Task _run = Task.CompletedTask;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(20));
        _stop.Dispose();
    }

    private static readonly ObjectKey A = new("ns", "a");
    private static readonly ObjectKey B = new("ns", "b");

    /// <summary>Records calls and answers what the test scripts per key.</summary>
    private sealed class ScriptedReconciler : IReconciler
    {
        public ConcurrentQueue<ObjectKey> Calls { get; } = new();
        public Func<ObjectKey, int, CancellationToken, ValueTask<ReconcileResult>> Script { get; set; }
            = (_, _, _) => ValueTask.FromResult(ReconcileResult.Done);
        private readonly ConcurrentDictionary<ObjectKey, int> _counts = new();

        public int CallsOf(ObjectKey key) => _counts.GetValueOrDefault(key);

        public ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
        {
            var n = _counts.AddOrUpdate(key, 1, (_, c) => c + 1);
            Calls.Enqueue(key);
            return Script(key, n, ct);
        }
    }

    private Controller Start(IReconciler reconciler, int workers = 1)
    {
        var controller = new Controller("test", reconciler, _time, _log, new ControllerOptions
        {
            Workers = workers,
            RateLimiter = t => new ExponentialFailureRateLimiter<ObjectKey>(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60)),
        });
        _run = controller.RunAsync(_stop.Token);
        return controller;
    }

    private static async Task WaitForQueueAsync(Controller c)
        => await Eventually.TrueAsync(() => c.Queue is not null, "controller running");

    private static async Task IdleAsync(Controller c)
        => await Eventually.TrueAsync(() => c.Queue is { Count: 0, InFlight: 0 }, "queue idle");

    [Fact]
    public async Task An_exception_requeues_with_per_key_exponential_backoff_until_success()
    {
        var r = new ScriptedReconciler
        {
            Script = (_, n, _) => n <= 3 ? throw new InvalidOperationException($"boom {n}") : ValueTask.FromResult(ReconcileResult.Done),
        };
        var c = Start(r);
        await WaitForQueueAsync(c);
        c.Enqueue(A);
        await Eventually.TrueAsync(() => r.CallsOf(A) == 1 && c.Queue!.DelayedCount == 1, "failed once, waiting");
        Assert.Equal(1, c.Queue!.NumRequeues(A));

        _time.Advance(TimeSpan.FromMilliseconds(999));
        await IdleAsync(c);
        Assert.Equal(1, r.CallsOf(A)); // not before 1 s
        _time.Advance(TimeSpan.FromMilliseconds(1));
        await Eventually.TrueAsync(() => r.CallsOf(A) == 2 && c.Queue!.DelayedCount == 1, "second attempt failed");

        _time.Advance(TimeSpan.FromMilliseconds(1999));
        await IdleAsync(c);
        Assert.Equal(2, r.CallsOf(A)); // then 2 s
        _time.Advance(TimeSpan.FromMilliseconds(1));
        await Eventually.TrueAsync(() => r.CallsOf(A) == 3 && c.Queue!.DelayedCount == 1, "third attempt failed");

        _time.Advance(TimeSpan.FromSeconds(4));
        await Eventually.TrueAsync(() => r.CallsOf(A) == 4, "fourth attempt");
        await IdleAsync(c);
        Assert.Equal(0, c.Queue!.NumRequeues(A)); // success forgets the failures
        Assert.Equal(0, c.Queue.DelayedCount);
        Assert.Contains(_log.Entries, e => e.Exception?.Message == "boom 1");
    }

    [Fact]
    public async Task A_terminal_error_is_logged_and_not_retried()
    {
        var r = new ScriptedReconciler { Script = (_, _, _) => throw new TerminalException("bad spec") };
        var c = Start(r);
        await WaitForQueueAsync(c);
        c.Enqueue(A);
        await Eventually.TrueAsync(() => r.CallsOf(A) == 1, "reconciled");
        await IdleAsync(c);
        Assert.Equal(0, c.Queue!.DelayedCount);
        Assert.Equal(0, c.Queue.NumRequeues(A));
        _time.Advance(TimeSpan.FromHours(1));
        c.Enqueue(B); // a later key goes through: the worker is alive
        await Eventually.TrueAsync(() => r.CallsOf(B) == 1, "next key");
        Assert.Equal(1, r.CallsOf(A));
        Assert.Contains(_log.Entries, e => e.Exception is TerminalException && e.Level == Microsoft.Extensions.Logging.LogLevel.Error);
    }

    [Fact]
    public async Task RequeueAfter_comes_back_after_the_delay_and_Requeue_backs_off()
    {
        var r = new ScriptedReconciler
        {
            Script = (k, n, _) => ValueTask.FromResult(k == A
                ? (n == 1 ? ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(30)) : ReconcileResult.Done)
                : (n <= 2 ? ReconcileResult.Requeue : ReconcileResult.Done)),
        };
        var c = Start(r);
        await WaitForQueueAsync(c);
        c.Enqueue(A);
        c.Enqueue(B);
        await Eventually.TrueAsync(() => r.CallsOf(A) == 1 && r.CallsOf(B) == 1 && c.Queue!.DelayedCount == 2, "both waiting");
        _time.Advance(TimeSpan.FromSeconds(1)); // B's first backoff
        await Eventually.TrueAsync(() => r.CallsOf(B) == 2 && c.Queue!.DelayedCount == 2, "B requeued again");
        Assert.Equal(2, c.Queue!.NumRequeues(B));
        _time.Advance(TimeSpan.FromSeconds(2));
        await Eventually.TrueAsync(() => r.CallsOf(B) == 3, "B done");
        Assert.Equal(1, r.CallsOf(A));
        _time.Advance(TimeSpan.FromSeconds(27));
        await Eventually.TrueAsync(() => r.CallsOf(A) == 2, "A after 30 s");
        await IdleAsync(c);
        Assert.Equal(0, c.Queue!.DelayedCount);
    }

    [Fact]
    public async Task Many_workers_run_different_keys_in_parallel_but_never_one_key_twice_at_once()
    {
        var active = new ConcurrentDictionary<ObjectKey, int>();
        var concurrentSameKey = 0;
        var current = 0;
        var maxParallel = 0;
        Controller? c = null;
        var r = new ScriptedReconciler();
        r.Script = async (k, n, ct) =>
        {
            if (active.AddOrUpdate(k, 1, (_, v) => v + 1) > 1) Interlocked.Increment(ref concurrentSameKey);
            var now = Interlocked.Increment(ref current);
            int seen;
            while (now > (seen = Volatile.Read(ref maxParallel)) && Interlocked.CompareExchange(ref maxParallel, now, seen) != seen) { }
            await Task.Delay(2, CancellationToken.None);
            if (n < 20) c!.Enqueue(k); // changed again while being reconciled
            Interlocked.Decrement(ref current);
            active.AddOrUpdate(k, 0, (_, v) => v - 1);
            return ReconcileResult.Done;
        };
        c = Start(r, workers: 4);
        await WaitForQueueAsync(c);
        var keys = Enumerable.Range(0, 6).Select(i => new ObjectKey("ns", $"k{i}")).ToList();
        foreach (var k in keys) c.Enqueue(k);
        await Eventually.TrueAsync(() => keys.All(k => r.CallsOf(k) >= 20), "every key reconciled 20 times");
        await IdleAsync(c);
        Assert.Equal(0, concurrentSameKey);
        Assert.True(maxParallel > 1, $"workers ran in parallel (max {maxParallel})");
        Assert.All(keys, k => Assert.Equal(20, r.CallsOf(k))); // re-adds during a reconcile ran once each, not lost
    }

    [Fact]
    public async Task Each_reconcile_runs_in_a_scope_with_namespace_name_and_reconcile_id()
    {
        var r = new ScriptedReconciler { Script = (_, _, _) => throw new InvalidOperationException("x") };
        var c = Start(r);
        await WaitForQueueAsync(c);
        c.Enqueue(A);
        await Eventually.TrueAsync(() => _log.Entries.Any(e => e.Exception is not null), "failure logged");
        var entry = _log.Entries.First(e => e.Exception is not null);
        var scope = Assert.IsType<ReconcileScope>(Assert.Single(entry.Scopes));
        var fields = scope.ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal("test", fields["Controller"]);
        Assert.Equal("ns", fields["Namespace"]);
        Assert.Equal("a", fields["Name"]);
        Assert.False(string.IsNullOrEmpty((string?)fields["ReconcileId"]));
    }

    [Fact]
    public async Task Stopping_cancels_the_reconcile_in_flight_and_waits_for_it()
    {
        var entered = new TaskCompletionSource();
        var finished = false;
        var r = new ScriptedReconciler
        {
            Script = async (_, _, ct) =>
            {
                entered.TrySetResult();
                try { await Task.Delay(Timeout.Infinite, ct); }
                finally { await Task.Delay(50, CancellationToken.None); finished = true; }
                return ReconcileResult.Done;
            },
        };
        var c = Start(r);
        await WaitForQueueAsync(c);
        c.Enqueue(A);
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(finished);
        Assert.Null(c.Queue);
        c.Enqueue(B); // ignored while stopped
    }

    [Fact]
    public async Task Watched_informer_objects_are_reconciled_after_sync_and_the_controller_can_run_again()
    {
        var kube = new FakeKube(_time);
        var objects = kube.For(TestResources.TestObjects);
        await objects.CreateAsync(TestObject.New("ns", "a"), default);
        await objects.CreateAsync(TestObject.New("ns", "b"), default);
        var informer = new Informer<TestObject>(objects, new InformerOptions(), _time, NullLogger.Instance);
        using var informerStop = new CancellationTokenSource();
        var informerRun = informer.RunAsync(informerStop.Token);

        var r = new ScriptedReconciler();
        var c = new Controller("test", r, _time, _log).Watch(informer);
        using (var term1 = new CancellationTokenSource())
        {
            var run = c.RunAsync(term1.Token);
            await Eventually.TrueAsync(() => r.CallsOf(A) == 1 && r.CallsOf(B) == 1, "initial objects reconciled");
            var changed = (await objects.GetAsync("ns", "a", default));
            changed.Spec.Value = "v2";
            await objects.UpdateAsync(changed, default);
            await Eventually.TrueAsync(() => r.CallsOf(A) == 2, "update reconciled");
            await term1.CancelAsync();
            await run.WaitAsync(TimeSpan.FromSeconds(10));
        }
        // a new term: the cache is replayed into the new queue
        using (var term2 = new CancellationTokenSource())
        {
            var run = c.RunAsync(term2.Token);
            await Eventually.TrueAsync(() => r.CallsOf(A) == 3 && r.CallsOf(B) == 2, "replayed in the second run");
            await term2.CancelAsync();
            await run.WaitAsync(TimeSpan.FromSeconds(10));
        }
        await informerStop.CancelAsync();
        await informerRun.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_controller_waits_for_its_informers_to_sync_before_reconciling()
    {
        var kube = new FakeKube(_time);
        var objects = kube.For(TestResources.TestObjects);
        var informer = new Informer<TestObject>(objects, new InformerOptions(), _time, NullLogger.Instance);
        var r = new ScriptedReconciler();
        var c = new Controller("test", r, _time, _log).Watch(informer);
        _run = c.RunAsync(_stop.Token);
        await WaitForQueueAsync(c);
        c.Enqueue(A);
        await Task.Delay(100);
        Assert.Empty(r.Calls);
        using var informerStop = new CancellationTokenSource();
        var informerRun = informer.RunAsync(informerStop.Token);
        await Eventually.TrueAsync(() => r.CallsOf(A) == 1, "reconciled after sync");
        await informerStop.CancelAsync();
        await informerRun;
    }

    [Fact]
    public async Task A_controller_does_not_wait_for_an_informer_watched_without_waiting()
    {
        // e.g. CheckpointNodes whose CRD is not applied: its list never succeeds, the controller works all the same
        var kube = new FakeKube(_time);
        var awaited = new Informer<TestObject>(kube.For(TestResources.TestObjects), new InformerOptions(), _time, NullLogger.Instance);
        var neverSynced = new Informer<TestObject>(kube.For(TestResources.TestObjects), new InformerOptions { Name = "never" }, _time, NullLogger.Instance);
        var r = new ScriptedReconciler();
        var c = new Controller("test", r, _time, _log).Watch(awaited).WatchWithoutWaiting(neverSynced, o => [EnqueueHandlers.KeyOf(o)]);
        Assert.Equal([awaited, neverSynced], c.Informers);
        using var informerStop = new CancellationTokenSource();
        var informerRun = awaited.RunAsync(informerStop.Token);
        _run = c.RunAsync(_stop.Token);
        await WaitForQueueAsync(c);
        c.Enqueue(A);
        await Eventually.TrueAsync(() => r.CallsOf(A) == 1, "reconciled with one informer never synced");
        Assert.False(neverSynced.HasSynced);
        await informerStop.CancelAsync();
        await informerRun;
    }
}

using Crsc.Controllers.Queue;
using Crsc.Testing;

namespace Crsc.Controllers.Tests;

public sealed class WorkQueueTests
{
    private readonly ManualTimeProvider _time = new();

    private WorkQueue<string> NewQueue(IRateLimiter<string>? limiter = null)
        => new(_time, limiter ?? new ExponentialFailureRateLimiter<string>(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60)));

    private static async Task<string> GetAsync(WorkQueue<string> q)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var (got, key) = await q.GetAsync(cts.Token);
        Assert.True(got);
        return key;
    }

    [Fact]
    public async Task A_key_added_twice_is_processed_once()
    {
        using var q = NewQueue();
        q.Add("a");
        q.Add("b");
        q.Add("a");
        Assert.Equal(2, q.Count);
        Assert.Equal("a", await GetAsync(q));
        Assert.Equal("b", await GetAsync(q));
        Assert.Equal(0, q.Count);
        var next = q.GetAsync(CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(next.IsCompleted);
        q.ShutDown();
        Assert.False((await next).Got);
    }

    [Fact]
    public async Task A_key_in_flight_is_not_handed_out_again_until_done_and_then_once()
    {
        using var q = NewQueue();
        q.Add("a");
        Assert.Equal("a", await GetAsync(q));
        q.Add("a");
        q.Add("a");
        Assert.Equal(0, q.Count);
        var second = q.GetAsync(CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(second.IsCompleted); // another worker must not get the key while it is processed
        q.Done("a");
        var (got, key) = await second.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(got);
        Assert.Equal("a", key);
        q.Done("a");
        Assert.Equal(0, q.Count);
        Assert.Equal(0, q.InFlight);
    }

    [Fact]
    public async Task Done_without_a_new_add_does_not_requeue()
    {
        using var q = NewQueue();
        q.Add("a");
        Assert.Equal("a", await GetAsync(q));
        q.Done("a");
        Assert.Equal(0, q.Count);
    }

    [Fact]
    public void Delayed_add_arrives_after_the_delay_on_the_injected_clock()
    {
        using var q = NewQueue();
        q.AddAfter("a", TimeSpan.FromSeconds(10));
        Assert.Equal(0, q.Count);
        Assert.Equal(1, q.DelayedCount);
        _time.Advance(TimeSpan.FromSeconds(9.9));
        Assert.Equal(0, q.Count);
        _time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal(1, q.Count);
        Assert.Equal(0, q.DelayedCount);
    }

    [Fact]
    public async Task The_earliest_of_several_delayed_adds_wins_and_the_later_ones_do_not_add_again()
    {
        using var q = NewQueue();
        q.AddAfter("a", TimeSpan.FromSeconds(10));
        q.AddAfter("a", TimeSpan.FromSeconds(2));
        q.AddAfter("a", TimeSpan.FromSeconds(5));
        Assert.Equal(1, q.DelayedCount);
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(1, q.Count);
        Assert.Equal("a", await GetAsync(q));
        q.Done("a");
        _time.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal(0, q.Count);
        Assert.Equal(0, _time.ActiveTimers);
    }

    [Fact]
    public void Zero_delay_adds_at_once()
    {
        using var q = NewQueue();
        q.AddAfter("a", TimeSpan.Zero);
        Assert.Equal(1, q.Count);
    }

    [Fact]
    public async Task Rate_limited_adds_back_off_per_key_and_forget_resets()
    {
        using var q = NewQueue();
        q.AddRateLimited("a");
        Assert.Equal(1, q.NumRequeues("a"));
        _time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.Equal(0, q.Count);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal("a", await GetAsync(q));
        q.Done("a");

        q.AddRateLimited("a"); // second failure: 2 s
        _time.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.Equal(0, q.Count);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, q.Count);
        Assert.Equal(2, q.NumRequeues("a"));

        q.Forget("a");
        Assert.Equal(0, q.NumRequeues("a"));
    }

    [Fact]
    public async Task Shutdown_ignores_new_keys_hands_out_queued_ones_and_drain_waits_for_keys_in_flight()
    {
        using var q = NewQueue();
        q.Add("a");
        q.Add("b");
        Assert.Equal("a", await GetAsync(q));
        q.AddAfter("later", TimeSpan.FromSeconds(1));

        var drain = q.ShutDownWithDrainAsync(CancellationToken.None);
        q.Add("c");
        _time.Advance(TimeSpan.FromSeconds(5)); // the delayed add was cancelled by the shutdown
        Assert.Equal(1, q.Count);
        Assert.False(drain.IsCompleted);

        Assert.Equal("b", await GetAsync(q)); // workers still drain what was queued
        q.Done("a");
        await Task.Delay(50);
        Assert.False(drain.IsCompleted); // b is still in flight
        q.Done("b");
        await drain.WaitAsync(TimeSpan.FromSeconds(10));

        var (got, _) = await q.GetAsync(CancellationToken.None);
        Assert.False(got);
    }

    [Fact]
    public async Task Shutdown_wakes_idle_workers()
    {
        using var q = NewQueue();
        var waiting = Enumerable.Range(0, 3).Select(_ => q.GetAsync(CancellationToken.None).AsTask()).ToList();
        await Task.Delay(20);
        await q.ShutDownWithDrainAsync(CancellationToken.None);
        foreach (var w in waiting) Assert.False((await w.WaitAsync(TimeSpan.FromSeconds(10))).Got);
    }

    [Fact]
    public async Task A_cancelled_get_does_not_swallow_a_later_key()
    {
        using var q = NewQueue();
        using var cts = new CancellationTokenSource();
        var get = q.GetAsync(cts.Token).AsTask();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => get);
        q.Add("a");
        Assert.Equal(1, q.Count);
        Assert.Equal("a", await GetAsync(q));
    }

    [Fact]
    public async Task Concurrent_workers_never_hold_the_same_key_at_once()
    {
        using var q = NewQueue();
        var holders = new int[5];
        var violations = 0;
        var processed = 0;
        using var stop = new CancellationTokenSource();
        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (true)
            {
                var (got, key) = await q.GetAsync(CancellationToken.None);
                if (!got) return;
                var i = int.Parse(key);
                if (Interlocked.Increment(ref holders[i]) != 1) Interlocked.Increment(ref violations);
                await Task.Yield();
                q.Add(key); // re-added while in flight
                Interlocked.Decrement(ref holders[i]);
                Interlocked.Increment(ref processed);
                q.Done(key);
            }
        })).ToList();
        for (var round = 0; round < 200; round++)
            for (var i = 0; i < holders.Length; i++) q.Add(i.ToString());
        await Eventually.TrueAsync(() => Volatile.Read(ref processed) > 2000, "many keys processed");
        await q.ShutDownWithDrainAsync(CancellationToken.None);
        // the keys still queued are handed out and then nothing new is accepted
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(0, violations);
    }
}

using Crsc.Interceptor;
using Crsc.Testing;

namespace Crsc.Interceptor.Tests;

public sealed class HoldGateTests
{
    private static HoldGate Gate(ManualTimeProvider time, int maxQueued = 10, long maxBytes = 1 << 20, double maxWaitSeconds = 30) =>
        new(new HoldOptions { MaxQueued = maxQueued, MaxQueuedBytes = maxBytes, MaxWait = TimeSpan.FromSeconds(maxWaitSeconds) }, time);

    [Fact]
    public async Task A_hold_nobody_ends_ends_by_itself_after_max_hold_and_a_new_hold_starts_that_time_again()
    {
        var time = new ManualTimeProvider();
        using var gate = new HoldGate(new HoldOptions { MaxHold = TimeSpan.FromMinutes(2), MaxWait = TimeSpan.FromMinutes(10) }, time);
        gate.Hold("checkpoint");
        time.Advance(TimeSpan.FromSeconds(90));
        gate.Hold("restore"); // asked again: two minutes from now
        var waiting = gate.EnterAsync(10, CancellationToken.None).AsTask();

        time.Advance(TimeSpan.FromSeconds(100));
        Assert.True(gate.Status().Held);
        Assert.False(waiting.IsCompleted);

        time.Advance(TimeSpan.FromSeconds(20));
        Assert.False(gate.Status().Held);
        Assert.Equal(1, gate.Status().ExpiredHolds);
        Assert.True((await waiting.WaitAsync(Eventually.DefaultTimeout)).Admitted);
    }

    [Fact]
    public void A_released_hold_does_not_expire_later()
    {
        var time = new ManualTimeProvider();
        using var gate = new HoldGate(new HoldOptions { MaxHold = TimeSpan.FromMinutes(2) }, time);
        gate.Hold("checkpoint");
        gate.Release();
        gate.Hold("checkpoint again");
        time.Advance(TimeSpan.FromSeconds(119));
        Assert.True(gate.Status().Held); // the first hold's timer is gone with it
        Assert.Equal(0, gate.Status().ExpiredHolds);
    }

    [Fact]
    public async Task Nothing_held_passes_at_once()
    {
        using var gate = Gate(new ManualTimeProvider());
        var a = gate.EnterAsync(100, CancellationToken.None);
        Assert.True(a.IsCompleted);
        Assert.True((await a).Admitted);
        Assert.False((await a).WasQueued);
    }

    [Fact]
    public async Task Held_requests_wait_and_drain_one_at_a_time_in_arrival_order()
    {
        var time = new ManualTimeProvider();
        using var gate = Gate(time);
        gate.Hold("checkpoint");
        var waiting = Enumerable.Range(0, 3).Select(_ => gate.EnterAsync(10, CancellationToken.None).AsTask()).ToList();
        Assert.All(waiting, w => Assert.False(w.IsCompleted));
        Assert.Equal(3, gate.Status().Queued);
        Assert.Equal(30, gate.Status().QueuedBytes);

        time.Advance(TimeSpan.FromSeconds(4));
        gate.Release();
        var first = await waiting[0].WaitAsync(Eventually.DefaultTimeout);
        Assert.True(first.Admitted);
        Assert.Equal(TimeSpan.FromSeconds(4), first.Waited);
        // the second goes only once the first was answered
        Assert.False(waiting[1].IsCompleted);
        // and something that arrives now queues behind those that waited
        var late = gate.EnterAsync(1, CancellationToken.None).AsTask();
        Assert.False(late.IsCompleted);
        first.Forwarded();
        var second = await waiting[1].WaitAsync(Eventually.DefaultTimeout);
        Assert.False(waiting[2].IsCompleted);
        second.Dispose();
        (await waiting[2].WaitAsync(Eventually.DefaultTimeout)).Forwarded();
        (await late.WaitAsync(Eventually.DefaultTimeout)).Forwarded();
        // drained: back to passing at once
        Assert.True(gate.EnterAsync(1, CancellationToken.None).IsCompleted);

        var status = gate.Status();
        Assert.False(status.Held);
        Assert.Equal(1, status.Holds);
        Assert.Equal(4, status.HeldRequests);
        Assert.Equal(4, status.ReleasedRequests);
        Assert.Equal(4, status.TotalHoldSeconds);
        Assert.Equal(4, status.LongestHoldSeconds);
    }

    [Fact]
    public async Task A_drain_step_that_is_never_answered_lets_the_next_go_after_the_step_timeout()
    {
        var time = new ManualTimeProvider();
        using var gate = new HoldGate(new HoldOptions { DrainStepTimeout = TimeSpan.FromSeconds(5) }, time);
        gate.Hold("restore");
        var a = gate.EnterAsync(0, CancellationToken.None).AsTask();
        var b = gate.EnterAsync(0, CancellationToken.None).AsTask();
        gate.Release();
        await a.WaitAsync(Eventually.DefaultTimeout);
        time.Advance(TimeSpan.FromSeconds(4));
        Assert.False(b.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True((await b.WaitAsync(Eventually.DefaultTimeout)).Admitted);
    }

    [Fact]
    public async Task Over_the_count_bound_is_refused_at_once()
    {
        using var gate = Gate(new ManualTimeProvider(), maxQueued: 2);
        gate.Hold("checkpoint");
        _ = gate.EnterAsync(1, CancellationToken.None);
        _ = gate.EnterAsync(1, CancellationToken.None);
        var third = gate.EnterAsync(1, CancellationToken.None);
        Assert.True(third.IsCompleted);
        Assert.Equal(AdmissionOutcome.QueueFull, (await third).Outcome);
        Assert.Equal(1, gate.Status().RejectedQueueFull);
        Assert.Equal(2, gate.Status().Queued);
    }

    [Fact]
    public async Task Over_the_byte_bound_is_refused_at_once()
    {
        using var gate = Gate(new ManualTimeProvider(), maxBytes: 100);
        gate.Hold("checkpoint");
        _ = gate.EnterAsync(60, CancellationToken.None);
        var over = gate.EnterAsync(41, CancellationToken.None);
        Assert.Equal(AdmissionOutcome.BytesFull, (await over).Outcome);
        var fits = gate.EnterAsync(40, CancellationToken.None);
        Assert.False(fits.IsCompleted);
        Assert.Equal(1, gate.Status().RejectedBytes);
    }

    [Fact]
    public async Task A_request_that_waits_max_wait_is_refused_and_leaves_the_queue()
    {
        var time = new ManualTimeProvider();
        using var gate = Gate(time, maxWaitSeconds: 10);
        gate.Hold("checkpoint");
        var first = gate.EnterAsync(5, CancellationToken.None).AsTask();
        time.Advance(TimeSpan.FromSeconds(3));
        var second = gate.EnterAsync(5, CancellationToken.None).AsTask();
        time.Advance(TimeSpan.FromSeconds(7));
        Assert.Equal(AdmissionOutcome.TimedOut, (await first.WaitAsync(Eventually.DefaultTimeout)).Outcome);
        Assert.False(second.IsCompleted);
        Assert.Equal(1, gate.Status().Queued);
        Assert.Equal(5, gate.Status().QueuedBytes);
        Assert.Equal(1, gate.Status().RejectedTimeout);
        gate.Release();
        Assert.True((await second.WaitAsync(Eventually.DefaultTimeout)).Admitted);
    }

    [Fact]
    public async Task A_cancelled_waiter_leaves_the_queue()
    {
        using var gate = Gate(new ManualTimeProvider());
        gate.Hold("checkpoint");
        using var cts = new CancellationTokenSource();
        var w = gate.EnterAsync(7, cts.Token).AsTask();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => w);
        Assert.Equal(0, gate.Status().Queued);
        Assert.Equal(0, gate.Status().QueuedBytes);
    }

    [Fact]
    public void Bad_options_are_refused_naming_them()
    {
        var e = Assert.Throws<ArgumentException>(() => new HoldGate(new HoldOptions { MaxWait = TimeSpan.Zero }, TimeProvider.System));
        Assert.Contains("max wait", e.Message);
    }
}

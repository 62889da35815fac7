using Crsc.Controllers.Health;
using Crsc.Testing;
using Xunit;

namespace Crsc.Controllers.Tests.Health;

public sealed class ApiServerStateTests
{
    [Fact]
    public void Starts_unreachable_since_creation()
    {
        var time = new ManualTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z"));
        var state = new ApiServerState(time);
        Assert.False(state.IsReachable);
        Assert.Equal(time.GetUtcNow(), state.UnreachableSince);
    }

    [Fact]
    public void Keeps_the_start_of_an_outage_and_fires_only_on_flips()
    {
        var time = new ManualTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z"));
        var state = new ApiServerState(time);
        var seen = new List<ApiServerObservation>();
        state.Changed += seen.Add;

        time.Advance(TimeSpan.FromSeconds(5));
        state.ReportReachable();
        state.ReportReachable();
        Assert.True(state.IsReachable);
        Assert.Null(state.UnreachableSince);

        time.Advance(TimeSpan.FromSeconds(5));
        var down = time.GetUtcNow();
        state.ReportUnreachable("connection refused");
        time.Advance(TimeSpan.FromSeconds(30));
        state.ReportUnreachable("timeout");
        Assert.Equal(down, state.UnreachableSince);
        Assert.Equal("timeout", state.Current.Reason);

        Assert.Equal(2, seen.Count);
        Assert.True(seen[0].Reachable);
        Assert.False(seen[1].Reachable);
        Assert.Equal(down, seen[1].Since);
    }

    [Fact]
    public async Task WaitForChange_completes_on_the_next_flip_only()
    {
        var state = new ApiServerState(new ManualTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z")));
        var wait = state.WaitForChangeAsync(CancellationToken.None);
        state.ReportUnreachable("still down");
        Assert.False(wait.IsCompleted);
        state.ReportReachable();
        await wait.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(state.WaitForChangeAsync(CancellationToken.None).IsCompleted);
    }

    [Fact]
    public async Task Is_not_offline_until_the_first_attempt_whatever_it_found()
    {
        var state = new ApiServerState(new ManualTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z")));
        var first = state.WaitForFirstAttemptAsync(CancellationToken.None);
        Assert.False(state.Attempted);
        Assert.False(state.IsOffline);
        Assert.False(first.IsCompleted);

        // the first attempt failed: unreachable was already the state (no flip), yet now the node is offline
        state.ReportUnreachable("connection refused");
        await first.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(state.Attempted);
        Assert.True(state.IsOffline);
        state.ReportReachable();
        Assert.False(state.IsOffline);
        Assert.True(state.WaitForFirstAttemptAsync(CancellationToken.None).IsCompleted);
    }
}

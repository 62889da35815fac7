using Crsc.Controllers.Schedules;

namespace Crsc.Controllers.Tests.Schedules;

public sealed class ScheduleTimingTests
{
    private static readonly DateTimeOffset Created = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan TenMinutes = TimeSpan.FromMinutes(10);

    [Fact]
    public void The_first_run_is_one_interval_after_creation()
    {
        var grid = new IntervalGrid(Created, TenMinutes);
        var jitter = TimeSpan.FromSeconds(7);

        var atCreation = ScheduleTiming.Decide(grid, jitter, lastRun: null, Created);
        Assert.Null(atCreation.RunAt);
        Assert.Equal(Created + TenMinutes + jitter, atCreation.NextAt);

        var justBefore = ScheduleTiming.Decide(grid, jitter, null, Created + TenMinutes + jitter - TimeSpan.FromSeconds(1));
        Assert.Null(justBefore.RunAt);

        var due = ScheduleTiming.Decide(grid, jitter, null, Created + TenMinutes + jitter);
        Assert.Equal(Created + TenMinutes + jitter, due.RunAt);
        Assert.Equal(Created + 2 * TenMinutes + jitter, due.NextAt);

        // once it ran, not again for the same slot
        var after = ScheduleTiming.Decide(grid, jitter, due.RunAt, Created + TenMinutes + jitter + TimeSpan.FromSeconds(30));
        Assert.Null(after.RunAt);
        Assert.Equal(Created + 2 * TenMinutes + jitter, after.NextAt);
    }

    [Fact]
    public void After_downtime_exactly_one_run_catches_up()
    {
        var grid = new IntervalGrid(Created, TenMinutes);
        var lastRun = Created + TenMinutes;
        var now = Created + TimeSpan.FromMinutes(65); // slots at 20..60 were missed

        var first = ScheduleTiming.Decide(grid, TimeSpan.Zero, lastRun, now);
        Assert.Equal(Created + TimeSpan.FromMinutes(60), first.RunAt); // the latest missed slot, once
        Assert.Equal(Created + TimeSpan.FromMinutes(70), first.NextAt);

        var second = ScheduleTiming.Decide(grid, TimeSpan.Zero, first.RunAt, now);
        Assert.Null(second.RunAt);
        Assert.Equal(Created + TimeSpan.FromMinutes(70), second.NextAt);
    }

    [Fact]
    public void Cron_runs_at_its_next_time_after_creation_never_for_times_before_it()
    {
        var created = Created.AddMinutes(3);
        var grid = new CronGrid(CronExpression.Parse("*/15 * * * *"), created);
        Assert.Equal(TimeSpan.FromMinutes(15), grid.Period);

        // 00:00 matches the cron, but it came before the schedule: no run
        var now = ScheduleTiming.Decide(grid, TimeSpan.Zero, null, created);
        Assert.Null(now.RunAt);
        Assert.Equal(Created.AddMinutes(15), now.NextAt);

        var due = ScheduleTiming.Decide(grid, TimeSpan.Zero, null, Created.AddMinutes(15));
        Assert.Equal(Created.AddMinutes(15), due.RunAt);
        Assert.Equal(Created.AddMinutes(30), due.NextAt);

        // a day of downtime: one run, for the latest time
        var late = ScheduleTiming.Decide(grid, TimeSpan.Zero, due.RunAt, Created.AddDays(1).AddMinutes(7));
        Assert.Equal(Created.AddDays(1), late.RunAt);
        Assert.Equal(Created.AddDays(1).AddMinutes(15), late.NextAt);
    }

    [Fact]
    public void Cron_period_is_the_shortest_gap()
    {
        Assert.Equal(TimeSpan.FromHours(8), new CronGrid(CronExpression.Parse("0 9,17 * * *"), Created).Period);
        Assert.Equal(TimeSpan.FromDays(1), new CronGrid(CronExpression.Parse("@daily"), Created).Period);
    }

    [Theory]
    [InlineData(600, 30)] // 10m: 10 % is 60 s, capped at 30 s
    [InlineData(120, 12)]
    [InlineData(10, 1)]
    [InlineData(5, 0)]
    public void Jitter_stays_within_a_tenth_of_the_period_and_30_seconds(int periodSeconds, int maxSeconds)
    {
        var period = TimeSpan.FromSeconds(periodSeconds);
        var seen = new HashSet<TimeSpan>();
        for (var i = 0; i < 2000; i++)
        {
            var jitter = ScheduleTiming.Jitter(Guid.NewGuid().ToString(), period);
            Assert.InRange(jitter, TimeSpan.Zero, TimeSpan.FromSeconds(maxSeconds));
            Assert.Equal(0, jitter.Ticks % TimeSpan.TicksPerSecond);
            seen.Add(jitter);
        }
        // spread over the whole range, so a thousand schedules do not fire together
        Assert.Equal(maxSeconds + 1, seen.Count);
    }

    [Fact]
    public void Jitter_is_the_same_for_the_same_schedule()
    {
        const string uid = "5f0c6a8e-1b7e-4e5a-9d61-0c1f3e2b7a10";
        var a = ScheduleTiming.Jitter(uid, TenMinutes);
        Assert.Equal(a, ScheduleTiming.Jitter(uid, TenMinutes));
        Assert.Equal(TimeSpan.FromSeconds(27), a); // pinned: a change here moves every schedule in every cluster
        Assert.Equal(TimeSpan.Zero, ScheduleTiming.Jitter(null, TenMinutes));
    }
}

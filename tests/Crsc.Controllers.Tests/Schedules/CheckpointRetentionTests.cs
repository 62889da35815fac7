using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Schedules;

namespace Crsc.Controllers.Tests.Schedules;

public sealed class CheckpointRetentionTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 2, 0, 0, 0, TimeSpan.Zero);

    private static ContainerCheckpoint C(string name, ContainerCheckpointPhase? phase, int minutesAgo, long size = 100) => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = "ns", CreationTimestamp = Now.AddMinutes(-minutesAgo - 1) },
        Spec = new ContainerCheckpointSpec { PodName = "p", Container = "app" },
        Status = phase is null ? null : new ContainerCheckpointStatus
        {
            Phase = phase,
            CompletedAt = phase is ContainerCheckpointPhase.Completed or ContainerCheckpointPhase.Failed ? Now.AddMinutes(-minutesAgo) : null,
            SizeBytes = phase == ContainerCheckpointPhase.Completed ? size : null,
        },
    };

    private static string[] Names(IEnumerable<ContainerCheckpoint> list) => [.. list.Select(c => c.Metadata.Name!).Order()];

    [Fact]
    public void KeepLast_keeps_the_newest_completed_ones()
    {
        var list = new[]
        {
            C("c1", ContainerCheckpointPhase.Completed, 50), C("c2", ContainerCheckpointPhase.Completed, 40),
            C("c3", ContainerCheckpointPhase.Completed, 30), C("c4", ContainerCheckpointPhase.Completed, 20),
            C("c5", ContainerCheckpointPhase.Completed, 10),
        };
        Assert.Equal(["c1", "c2"], Names(CheckpointRetention.Select(list, new RetentionPolicy { KeepLast = 3 }, Now)));
        Assert.Empty(CheckpointRetention.Select(list, new RetentionPolicy { KeepLast = 5 }, Now));
        // no policy: the default keepLast 5
        Assert.Equal(["c0"], Names(CheckpointRetention.Select([.. list, C("c0", ContainerCheckpointPhase.Completed, 60)], null, Now)));
    }

    [Fact]
    public void MaxAge_and_maxBytes_never_take_the_newest_completed_one()
    {
        var list = new[]
        {
            C("old", ContainerCheckpointPhase.Completed, 300, size: 100), C("mid", ContainerCheckpointPhase.Completed, 200, size: 100),
            C("new", ContainerCheckpointPhase.Completed, 100, size: 100),
        };
        Assert.Equal(["mid", "old"], Names(CheckpointRetention.Select(list, new RetentionPolicy { MaxAge = "150m" }, Now)));
        Assert.Equal(["old"], Names(CheckpointRetention.Select(list, new RetentionPolicy { MaxAge = "250m" }, Now)));
        // everything is older than 1m, and the newest alone is over 50 bytes: the newest still stays
        Assert.Equal(["mid", "old"], Names(CheckpointRetention.Select(list, new RetentionPolicy { MaxAge = "1m" }, Now)));
        Assert.Equal(["mid", "old"], Names(CheckpointRetention.Select(list, new RetentionPolicy { MaxBytes = 50 }, Now)));
        Assert.Equal(["old"], Names(CheckpointRetention.Select(list, new RetentionPolicy { MaxBytes = 250 }, Now)));
        Assert.Empty(CheckpointRetention.Select(list, new RetentionPolicy { MaxBytes = 300 }, Now));
        // limits combine: any one of them is enough
        Assert.Equal(["mid", "old"], Names(CheckpointRetention.Select(list, new RetentionPolicy { KeepLast = 10, MaxBytes = 150 }, Now)));
    }

    [Fact]
    public void Failed_ones_older_than_the_newest_success_go_running_and_pending_never()
    {
        var list = new[]
        {
            C("failed-old", ContainerCheckpointPhase.Failed, 90),
            C("running-old", ContainerCheckpointPhase.Running, 80),
            C("pending-old", ContainerCheckpointPhase.Pending, 70),
            C("no-status-old", null, 65),
            C("ok", ContainerCheckpointPhase.Completed, 60),
            C("failed-new", ContainerCheckpointPhase.Failed, 30),
        };
        Assert.Equal(["failed-old"], Names(CheckpointRetention.Select(list, new RetentionPolicy { KeepLast = 1 }, Now)));
    }

    [Fact]
    public void Nothing_goes_before_a_checkpoint_has_completed()
    {
        var list = new[] { C("f1", ContainerCheckpointPhase.Failed, 90), C("f2", ContainerCheckpointPhase.Failed, 80), C("r", ContainerCheckpointPhase.Running, 1) };
        Assert.Empty(CheckpointRetention.Select(list, new RetentionPolicy { KeepLast = 1, MaxAge = "1s" }, Now));
    }

    [Fact]
    public void Objects_being_deleted_are_not_counted()
    {
        var deleting = C("c3", ContainerCheckpointPhase.Completed, 5);
        deleting.Metadata.DeletionTimestamp = Now;
        var list = new[] { C("c1", ContainerCheckpointPhase.Completed, 30), C("c2", ContainerCheckpointPhase.Completed, 20), deleting };
        Assert.Empty(CheckpointRetention.Select(list, new RetentionPolicy { KeepLast = 2 }, Now));
    }

    /// <summary>Issue 18: a node-away checkpoint is what the next pod is restored from; the schedule's new checkpoints must not prune it within the restore window.</summary>
    [Fact]
    public void A_node_away_checkpoint_is_held_for_the_restore_window_then_treated_as_any_other()
    {
        var away = C("away", ContainerCheckpointPhase.Completed, 10);
        away.Metadata.Annotations = new() { [Crsc.Api.Annotations.CheckpointReason] = "NodeDrain" };
        var list = new[]
        {
            away, C("c1", ContainerCheckpointPhase.Completed, 8), C("c2", ContainerCheckpointPhase.Completed, 6),
            C("c3", ContainerCheckpointPhase.Completed, 4),
        };
        var keepOne = new RetentionPolicy { KeepLast = 1 };
        // without the hold (and as before this change) it goes with the older scheduled ones
        Assert.Equal(["away", "c1", "c2"], Names(CheckpointRetention.Select(list, keepOne, Now)));
        // held for 15 minutes: neither chosen nor counted (keepLast still keeps one scheduled checkpoint)
        Assert.Equal(["c1", "c2"], Names(CheckpointRetention.Select(list, keepOne, Now, TimeSpan.FromMinutes(15))));
        // past the window: retention as usual
        Assert.Equal(["away", "c1", "c2"], Names(CheckpointRetention.Select(list, keepOne, Now.AddMinutes(6), TimeSpan.FromMinutes(15))));
    }
}

using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Schedules;

namespace Crsc.Controllers.Tests.Schedules;

public sealed class CheckpointFailuresTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static ContainerCheckpoint C(string name, ContainerCheckpointPhase? phase, int minute, string container = "app",
        bool deleting = false) => new()
    {
        Metadata = new ObjectMeta { Namespace = "shop", Name = name, DeletionTimestamp = deleting ? T0 : null },
        Spec = new ContainerCheckpointSpec { PodName = "p", Container = container },
        Status = phase is null ? null : new ContainerCheckpointStatus { Phase = phase, CompletedAt = T0.AddMinutes(minute), Message = name + " failed" },
    };

    [Fact]
    public void Failures_count_from_the_newest_finished_back_to_the_newest_success_per_container()
    {
        var all = new[]
        {
            C("ok1", ContainerCheckpointPhase.Completed, 1), C("f2", ContainerCheckpointPhase.Failed, 2),
            C("f3", ContainerCheckpointPhase.Failed, 3), C("f4", ContainerCheckpointPhase.Failed, 4),
            C("running", ContainerCheckpointPhase.Running, 5), C("pending", null, 6),
            C("side-f1", ContainerCheckpointPhase.Failed, 1, "sidecar"), C("side-ok2", ContainerCheckpointPhase.Completed, 2, "sidecar"),
        };
        var streaks = CheckpointFailures.Streaks(all);
        Assert.Equal([("app", 3, "f4", "ok1"), ("sidecar", 0, null, "side-ok2")],
            streaks.Select(s => (s.Container, s.FailedInARow, s.LastFailed?.Metadata.Name, s.LastCompleted?.Metadata.Name)));

        Assert.Equal("f4", CheckpointFailures.Failing(all)!.LastFailed!.Metadata.Name);
        Assert.Null(CheckpointFailures.Failing(all, failingAfter: 4));
        // two after a success are not failing yet; one being deleted does not count
        Assert.Null(CheckpointFailures.Failing(all.Where(c => c.Metadata.Name != "f4")));
        Assert.Null(CheckpointFailures.Failing([.. all.Where(c => c.Metadata.Name != "f4"), C("f4", ContainerCheckpointPhase.Failed, 4, deleting: true)]));
    }

    [Fact]
    public void With_no_success_at_all_one_failure_is_failing_and_a_later_success_is_not()
    {
        var failing = CheckpointFailures.Failing([C("f1", ContainerCheckpointPhase.Failed, 1), C("pending", null, 2)])!;
        Assert.Equal(1, failing.FailedInARow);
        Assert.Equal($"the last checkpoint of container app failed (latest f1 at {KubeTime.ToText(T0.AddMinutes(1))}: f1 failed); last success: never",
            failing.Describe());
        Assert.Null(CheckpointFailures.Failing([C("f1", ContainerCheckpointPhase.Failed, 1), C("ok2", ContainerCheckpointPhase.Completed, 2)]));
        Assert.Empty(CheckpointFailures.Streaks([C("pending", null, 1)]));
    }
}

using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Controllers.Autonomy;
using Crsc.Controllers.Nodes;
using Crsc.Controllers.Schedules;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using KubeTime = Crsc.Api.Kubernetes.KubeTime;

namespace Crsc.Controllers.Tests.Autonomy;

public sealed partial class AutonomyTests
{
    [Theory]
    [InlineData(true, CheckpointReasons.NodeDrain)]
    [InlineData(false, CheckpointReasons.NodeShutdown)]
    public async Task A_node_away_run_leaves_records_in_the_outbox_published_as_the_schedules_checkpoint_with_its_reason(bool reachable, string reason)
    {
        var rig = new Rig();
        if (reachable) rig.Api.ReportReachable();
        var publication = new NodeAwayPublication(rig.State, rig.Outbox, rig.Status, "node-a", rig.Time);
        var checkpointer = new NodeAwayCheckpointer(rig.Runner, () => NodeAwayCheckpointer.ManagedOn(rig.State.Current), rig.Time,
            NullLogger.Instance, publication);

        var run = await checkpointer.CheckpointAllAsync(reason, 4, null, CancellationToken.None);
        Assert.Equal(1, run.Stored);
        var name = ScheduleNames.CheckpointName("web", "app-away", rig.Time.GetUtcNow(), ScheduleNames.ShortHash("web-6c5d8-abcde")[..6]);
        Assert.StartsWith("web-app-away-", name);
        // the archive's manifest names the object the outbox creates
        Assert.Equal(name, Assert.Single(rig.Runner.Requests).CheckpointObjectName);
        Assert.Equal([OutboxRecordKind.CheckpointCreate, OutboxRecordKind.ContentCreate, OutboxRecordKind.CheckpointStatus],
            rig.Outbox.Appended.Select(r => r.Kind));
        // not a run of the schedule: its next run is not moved
        Assert.Null(rig.State.LastRun("sched-uid-1", "web-6c5d8-abcde", "app"));

        if (!reachable) rig.Api.ReportReachable();
        Assert.Null(await rig.Publisher().PublishPendingAsync(CancellationToken.None));
        var ckpt = rig.Kube.For(CrscResources.ContainerCheckpoints).Stored("default", name)!;
        Assert.Equal(reason, ckpt.Metadata.Annotations![Annotations.CheckpointReason]);
        Assert.False(ckpt.Metadata.Annotations.ContainsKey(Annotations.ScheduledFor));
        Assert.Equal(rig.Store.List().Single().Id, ckpt.Metadata.Annotations[Annotations.ArchiveId]);
        // owned and labelled as the schedule's checkpoints
        Assert.Equal(("CheckpointSchedule", "sched-uid-1"), (ckpt.Metadata.OwnerReferences!.Single().Kind, ckpt.Metadata.OwnerReferences!.Single().Uid));
        Assert.Equal("web", ckpt.Metadata.Labels![Labels.Workload]);
        Assert.Equal(("web-6c5d8-abcde", "app"), (ckpt.Spec.PodName, ckpt.Spec.Container));
        Assert.Equal(ContainerCheckpointPhase.Completed, ckpt.Status!.Phase);
        Assert.Equal(KubeTime.Truncate(rig.Time.GetUtcNow()), ckpt.Status.StartedAt);
        Assert.Single(rig.Kube.For(CrscResources.ContainerCheckpointContents).AllStored());
    }

    [Fact]
    public async Task A_node_away_checkpoint_of_a_container_no_schedule_selects_is_taken_and_not_published()
    {
        var rig = new Rig();
        var publication = new NodeAwayPublication(rig.State, rig.Outbox, rig.Status, "node-a", rig.Time);
        var checkpointer = new NodeAwayCheckpointer(rig.Runner, () => [new ManagedContainer("default", "other-pod", "app")], rig.Time,
            NullLogger.Instance, publication);
        var run = await checkpointer.CheckpointAllAsync(CheckpointReasons.NodeDrain, 4, null, CancellationToken.None);
        Assert.Equal(1, run.Stored);
        Assert.Empty(rig.Outbox.Appended);
    }
}

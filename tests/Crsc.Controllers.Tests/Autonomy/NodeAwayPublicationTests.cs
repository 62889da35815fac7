using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Controllers.Autonomy;
using Crsc.Controllers.NodeAgent;
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
        // the start mark first (a crash before the records is found by it), then the records that end it
        Assert.Equal([OutboxRecordKind.RunStarted, OutboxRecordKind.CheckpointCreate, OutboxRecordKind.ContentCreate, OutboxRecordKind.CheckpointStatus],
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

    /// <summary>Issue 18: a crash between a node-away checkpoint's store commit and its records no longer leaves the archive unpublished.</summary>
    [Fact]
    public async Task A_crash_between_a_node_away_archive_and_its_records_is_adopted_at_the_next_start_as_a_node_away_checkpoint()
    {
        var rig = new Rig();
        var schedule = await rig.Kube.For(CrscResources.CheckpointSchedules).SeedAsync(Schedule(), CancellationToken.None);
        rig.State.ReplaceView([new SavedSchedule(schedule, [Pod])], [new SavedPod("default", Pod, "pod-uid-1", "web", ["app"])]);
        var publication = new NodeAwayPublication(rig.State, rig.Outbox, rig.Status, "node-a", rig.Time);
        var checkpointer = new NodeAwayCheckpointer(rig.Runner, () => NodeAwayCheckpointer.ManagedOn(rig.State.Current), rig.Time,
            NullLogger.Instance, publication);
        // a scheduled checkpoint of the same container, stored in the same second (first in the store's list), is not the run's
        var beside = rig.Store.Add("default", "web", "app", Pod, rig.Time.GetUtcNow(), "pod-uid-1",
            new CheckpointOwner("default", "web-app-20260301100100", "uid-x", CheckpointOrigin.Online));
        // the daemon dies once the archive is committed, before its records are appended (the power goes)
        rig.Outbox.AppendFault = records => records[0].Kind == OutboxRecordKind.CheckpointCreate ? new CrashException() : null;
        await Assert.ThrowsAsync<CrashException>(() => checkpointer.CheckpointAllAsync(CheckpointReasons.NodeShutdown, 4, null, CancellationToken.None));
        rig.Outbox.AppendFault = null;
        var archive = rig.Store.List().Single(c => c.Id != beside.Id);
        Assert.Equal([OutboxRecordKind.RunStarted], rig.Outbox.Pending(100).Select(e => e.Record.Kind));

        // the next start: adopted as a node-away checkpoint, not as a run of the schedule
        var restarted = rig.NewScheduler(FreshState(new SavedSchedule(schedule, [Pod])), new StoreRunner(rig.Store, rig.Time));
        Assert.Equal(new InterruptedRuns(1, 0, 0), restarted.ResolveInterruptedRuns());
        Assert.Equal(new InterruptedRuns(0, 0, 0), restarted.ResolveInterruptedRuns());
        Assert.Equal([OutboxRecordKind.RunStarted, OutboxRecordKind.CheckpointCreate, OutboxRecordKind.ContentCreate, OutboxRecordKind.CheckpointStatus],
            rig.Outbox.Pending(100).Select(e => e.Record.Kind));
        rig.Api.ReportReachable();
        Assert.Null(await rig.Publisher().PublishPendingAsync(CancellationToken.None));
        var ckpt = Assert.Single(rig.Kube.For(CrscResources.ContainerCheckpoints).AllStored());
        Assert.Equal(archive.Owner!.Name, ckpt.Metadata.Name);
        Assert.Contains("-app-away-", ckpt.Metadata.Name, StringComparison.Ordinal);
        Assert.Equal(archive.Id, ckpt.Metadata.Annotations![Annotations.ArchiveId]);
        Assert.Equal(CheckpointReasons.NodeShutdown, ckpt.Metadata.Annotations[Annotations.CheckpointReason]);
        Assert.False(ckpt.Metadata.Annotations.ContainsKey(Annotations.ScheduledFor));
        Assert.Equal(ContainerCheckpointPhase.Completed, ckpt.Status!.Phase);
        Assert.NotNull(rig.Store.Get(beside.Id));
    }

    private sealed class FailingRunner : ICheckpointRunner
    {
        public Task<CheckpointOutcome> CheckpointAsync(CheckpointRequest request, IProgress<CheckpointProgress>? progress, CancellationToken ct) =>
            throw new Crsc.Controllers.Runtime.ContainerRuntimeException(Crsc.Controllers.Runtime.ContainerRuntimeErrorKind.Failed, "criu dump failed: type NOTIFY");
    }

    [Fact]
    public async Task A_failed_node_away_checkpoint_ends_its_mark_so_that_the_outbox_publishes_past_it()
    {
        var rig = new Rig();
        var publication = new NodeAwayPublication(rig.State, rig.Outbox, rig.Status, "node-a", rig.Time);
        var checkpointer = new NodeAwayCheckpointer(new FailingRunner(), () => NodeAwayCheckpointer.ManagedOn(rig.State.Current), rig.Time,
            NullLogger.Instance, publication);
        var run = await checkpointer.CheckpointAllAsync(CheckpointReasons.NodeDrain, 4, null, CancellationToken.None);
        Assert.Equal(1, run.Failed);
        Assert.Equal([OutboxRecordKind.RunStarted, OutboxRecordKind.RunEnded], rig.Outbox.Appended.Select(r => r.Kind));
        rig.Api.ReportReachable();
        Assert.Null(await rig.Publisher().PublishPendingAsync(CancellationToken.None));
        Assert.Equal(0, rig.Outbox.Usage.Records);
        Assert.Empty(rig.Kube.For(CrscResources.ContainerCheckpoints).AllStored());
    }
}

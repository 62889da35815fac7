using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Autonomy;
using Crsc.Controllers.Health;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Schedules;
using Crsc.Testing;
using KubeTime = Crsc.Api.Kubernetes.KubeTime;

namespace Crsc.Controllers.Tests.Autonomy;

/// <summary>Issue 13 (findings 11 and 13): the offline loops keep going after errors, and no offline archive is left orphaned.</summary>
public sealed partial class AutonomyTests
{
    private const string Pod = "web-6c5d8-abcde";

    /// <summary>The schedule's first slot (its jitter included): when the first offline run is due.</summary>
    private static DateTimeOffset FirstSlot(string uid = "sched-uid-1", DateTimeOffset? created = null) =>
        (created ?? Created).AddMinutes(1) + ScheduleTiming.Jitter(uid, TimeSpan.FromMinutes(1));

    private static HealthEntry? Entry(Rig rig, string component) => rig.Health.Snapshot().SingleOrDefault(e => e.Component == component);

    /// <summary>A fault that fails the first <paramref name="times"/> calls it applies to with ENOSPC, then lets them through.</summary>
    private sealed class DiskFull(int times)
    {
        public int Failures { get; private set; }

        public Exception? Next()
        {
            if (Failures >= times) return null;
            Failures++;
            return new IOException("No space left on device");
        }
    }

    /// <summary>A "crash": the process dies here, so nothing the scheduler holds in memory survives.</summary>
    private sealed class CrashException() : Exception("crash");

    private static NodeStateStore FreshState(params SavedSchedule[] schedules)
    {
        var state = new NodeStateStore(new MemoryStateFile(), "node-a");
        state.ReplaceView(schedules, [new SavedPod("default", Pod, "pod-uid-1", "web", ["app", "crsc-interceptor"])]);
        return state;
    }

    /// <summary>Lets timers armed by a loop fire: waits until one is armed, then moves the clock by <paramref name="by"/>.</summary>
    private static async Task AdvanceWhenWaitingAsync(Rig rig, TimeSpan by, string what)
    {
        await Eventually.TrueAsync(() => rig.Time.ActiveTimers > 0, what);
        rig.Time.Advance(by);
    }

    [Fact]
    public async Task A_daemon_that_has_not_tried_the_api_server_yet_takes_no_offline_checkpoint()
    {
        // a restart: the slot is due, but the connection monitor has not made its first attempt
        var rig = new Rig(attempted: false);
        rig.Time.SetUtcNow(FirstSlot());
        Assert.False(rig.Api.Attempted);

        Assert.Null(await rig.Scheduler.RunDueAsync(CancellationToken.None));
        using var stop = new CancellationTokenSource();
        var running = rig.Scheduler.RunAsync(stop.Token);
        await Task.Delay(100);
        Assert.Empty(rig.Runner.Requests);
        Assert.Empty(rig.Outbox.Appended);

        // the first attempt fails: now the node is offline, and the due slot runs as before
        rig.Api.ReportUnreachable("connection refused");
        await Eventually.TrueAsync(() => rig.Runner.Requests.Count == 1, "the offline checkpoint after the failed attempt");
        Assert.Equal(ScheduleNames.CheckpointName("web", "app", KubeTime.Truncate(FirstSlot())), rig.Runner.Requests[0].CheckpointObjectName);
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task A_first_attempt_that_reaches_the_api_server_leaves_the_slot_to_the_online_path()
    {
        var rig = new Rig(attempted: false);
        rig.Time.SetUtcNow(FirstSlot());
        rig.Api.ReportReachable();
        Assert.Null(await rig.Scheduler.RunDueAsync(CancellationToken.None));
        Assert.Empty(rig.Runner.Requests);
    }

    [Fact]
    public async Task The_offline_scheduler_survives_outbox_write_errors_shows_them_in_health_and_recovers()
    {
        var rig = new Rig();
        rig.Time.SetUtcNow(FirstSlot());
        // the outbox's disk is full for the first three appends (the start mark of the run), then has room
        var full = new DiskFull(3);
        rig.Outbox.AppendFault = _ => full.Next();
        using var stop = new CancellationTokenSource();
        var running = rig.Scheduler.RunAsync(stop.Token);

        await Eventually.TrueAsync(() => Entry(rig, OfflineScheduler.HealthComponent)?.Status == HealthStatus.Degraded, "the failure is reported");
        var entry = Entry(rig, OfflineScheduler.HealthComponent)!;
        Assert.Contains("No space left on device", entry.Message);
        Assert.Contains("retrying in", entry.Message);
        // what systemd's STATUS= line and /readyz show
        Assert.StartsWith("degraded: ", rig.Health.Summary());
        Assert.Contains("offline-scheduler: failing since", rig.Health.Summary());
        // no start mark, no checkpoint: the app is not frozen for an archive nothing would record
        Assert.Empty(rig.Runner.Requests);

        // the clock moves in small steps: the waits grow (1, 2, 4 s and jitter) and the loop goes on after each
        for (var step = 0; step < 30 && rig.Runner.Requests.Count == 0; step++)
            await AdvanceWhenWaitingAsync(rig, TimeSpan.FromSeconds(1), "the loop waits out its backoff");
        await Eventually.TrueAsync(() => rig.Runner.Requests.Count == 1, "the run once the disk has room");
        Assert.Equal(ScheduleNames.CheckpointName("web", "app", KubeTime.Truncate(FirstSlot())), rig.Runner.Requests[0].CheckpointObjectName);
        await Eventually.TrueAsync(() => Entry(rig, OfflineScheduler.HealthComponent)?.Status == HealthStatus.Healthy, "healthy again");
        Assert.Equal(3, full.Failures);
        Assert.Equal(6, rig.Outbox.Appended.Count);
        Assert.NotNull(rig.State.LastRun("sched-uid-1", Pod, "app"));
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task Records_the_outbox_cannot_take_after_the_checkpoint_are_held_and_written_first_without_a_second_checkpoint()
    {
        var rig = new Rig();
        rig.Time.SetUtcNow(FirstSlot());
        var full = new DiskFull(2);
        rig.Outbox.AppendFault = records => records[0].Kind == OutboxRecordKind.CheckpointCreate ? full.Next() : null;

        // the checkpoint is taken and stored; its records do not fit on the disk
        await Assert.ThrowsAsync<IOException>(() => rig.Scheduler.RunDueAsync(CancellationToken.None));
        Assert.True(rig.Scheduler.HoldsRecords);
        var archive = Assert.Single(rig.Store.List());
        // the next round: still no room; the run is not taken again
        await Assert.ThrowsAsync<IOException>(() => rig.Scheduler.RunDueAsync(CancellationToken.None));
        Assert.Single(rig.Runner.Requests);

        // room again: the held records go first, then the run is recorded; the slot is not checkpointed a second time
        await rig.Scheduler.RunDueAsync(CancellationToken.None);
        Assert.False(rig.Scheduler.HoldsRecords);
        Assert.Single(rig.Runner.Requests);
        Assert.Single(rig.Store.List());
        var create = rig.Outbox.Appended.Single(r => r.Kind == OutboxRecordKind.CheckpointCreate);
        var ckpt = JsonSerializer.Deserialize(create.Body, CrscResources.ContainerCheckpoints.Json)!;
        Assert.Equal(archive.Id, ckpt.Metadata.Annotations![Annotations.ArchiveId]);
        Assert.NotNull(rig.State.LastRun("sched-uid-1", Pod, "app"));
    }

    [Fact]
    public async Task The_outbox_publisher_survives_an_acknowledge_error_shows_it_in_health_and_recovers()
    {
        var rig = new Rig();
        rig.Outbox.Append([EventRecord()]);
        rig.Api.ReportReachable();
        var full = new DiskFull(2);
        rig.Outbox.AcknowledgeFault = full.Next;
        using var stop = new CancellationTokenSource();
        var running = rig.Publisher().RunAsync(stop.Token);

        await Eventually.TrueAsync(() => Entry(rig, OutboxPublisher.HealthComponent)?.Status == HealthStatus.Degraded, "the failure is reported");
        Assert.Contains("No space left on device", Entry(rig, OutboxPublisher.HealthComponent)!.Message);
        for (var i = 0; i < 2; i++)
            await AdvanceWhenWaitingAsync(rig, TimeSpan.FromMinutes(3), "the loop waits out its backoff");
        await Eventually.TrueAsync(() => rig.Outbox.Usage.Records == 0, "the record is acknowledged once the disk has room");
        await Eventually.TrueAsync(() => Entry(rig, OutboxPublisher.HealthComponent)?.Status == HealthStatus.Healthy, "healthy again");
        // republished after the failed acknowledgement: still one Event
        Assert.Single(rig.Kube.For(Resources.CoreEvents).AllStored());
        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task A_crash_between_the_store_commit_and_the_outbox_append_is_found_at_the_next_start_and_the_archive_adopted()
    {
        var rig = new Rig();
        var schedules = rig.Kube.For(CrscResources.CheckpointSchedules);
        var created = await schedules.SeedAsync(Schedule(), CancellationToken.None);
        var uid = created.Metadata.Uid!;
        rig.State.ReplaceView([new SavedSchedule(created, [Pod])], [new SavedPod("default", Pod, "pod-uid-1", "web", ["app"])]);
        rig.Time.SetUtcNow(FirstSlot(uid, created.Metadata.CreationTimestamp));
        // the daemon dies once the archive is committed, before the run's records are appended
        rig.Outbox.AppendFault = records => records[0].Kind == OutboxRecordKind.CheckpointCreate ? new CrashException() : null;
        await Assert.ThrowsAsync<CrashException>(() => rig.Scheduler.RunDueAsync(CancellationToken.None));
        rig.Outbox.AppendFault = null;
        var archive = Assert.Single(rig.Store.List());
        Assert.Equal([OutboxRecordKind.RunStarted], rig.Outbox.Pending(100).Select(e => e.Record.Kind));

        // meanwhile the API server is back: the publisher does not pass the mark of a run that has not ended
        rig.Api.ReportReachable();
        Assert.NotNull(await rig.Publisher().PublishPendingAsync(CancellationToken.None));
        Assert.Equal(1, rig.Outbox.Usage.Records);
        rig.Api.ReportUnreachable("gone again");

        // the restart (the node state lost the run): the archive is adopted, its records appended, the slot not taken again
        var state = FreshState(new SavedSchedule(created, [Pod]));
        var runner = new StoreRunner(rig.Store, rig.Time);
        var restarted = rig.NewScheduler(state, runner);
        Assert.Equal(new InterruptedRuns(1, 0, 0), restarted.ResolveInterruptedRuns());
        Assert.Equal(new InterruptedRuns(0, 0, 0), restarted.ResolveInterruptedRuns());
        await restarted.RunDueAsync(CancellationToken.None);
        Assert.Empty(runner.Requests);

        rig.Api.ReportReachable();
        Assert.Null(await rig.Publisher().PublishPendingAsync(CancellationToken.None));
        var ckpt = Assert.Single(rig.Kube.For(CrscResources.ContainerCheckpoints).AllStored());
        Assert.Equal(ScheduleNames.CheckpointName("web", "app", KubeTime.Truncate(FirstSlot(uid, created.Metadata.CreationTimestamp))), ckpt.Metadata.Name);
        Assert.Equal(archive.Id, ckpt.Metadata.Annotations![Annotations.ArchiveId]);
        Assert.Equal(ContainerCheckpointPhase.Completed, ckpt.Status!.Phase);
        Assert.Equal(archive.Digest, ckpt.Status.Digest);
        Assert.Equal(ckpt.Metadata.Uid, Assert.Single(rig.Kube.For(CrscResources.ContainerCheckpointContents).AllStored()).Spec.CheckpointRef.Uid);
        Assert.NotNull(rig.Store.Get(archive.Id));
    }

    [Fact]
    public async Task An_interrupted_run_whose_schedule_is_unknown_has_its_archive_deleted_and_one_that_stored_nothing_is_ended()
    {
        var rig = new Rig();
        rig.Time.SetUtcNow(FirstSlot());
        rig.Outbox.AppendFault = records => records[0].Kind == OutboxRecordKind.CheckpointCreate ? new CrashException() : null;
        await Assert.ThrowsAsync<CrashException>(() => rig.Scheduler.RunDueAsync(CancellationToken.None));
        var archive = Assert.Single(rig.Store.List());
        // an archive of the same container from before the run is no part of it
        var older = rig.Store.Add("default", "web", "app", Pod, FirstSlot().AddMinutes(-10), "pod-uid-1");

        // restarted with a node state that no longer has the schedule: nothing could own the archive
        var restarted = rig.NewScheduler(FreshState(), new StoreRunner(rig.Store, rig.Time));
        rig.Outbox.AppendFault = null;
        Assert.Equal(new InterruptedRuns(0, 1, 0), restarted.ResolveInterruptedRuns());
        Assert.Null(rig.Store.Get(archive.Id));
        Assert.NotNull(rig.Store.Get(older.Id));
        Assert.Equal([OutboxRecordKind.RunStarted, OutboxRecordKind.RunEnded], rig.Outbox.Pending(100).Select(e => e.Record.Kind));

        // a run cut short before its archive was committed: marked ended; its slot runs again
        var second = new Rig();
        second.Time.SetUtcNow(FirstSlot());
        second.Outbox.Append([new OutboxRecord(OutboxRecordKind.RunStarted, JsonSerializer.Serialize(new OfflineRun
        {
            Namespace = "default", CheckpointName = "web-app-x", Schedule = "web", ScheduleUid = "sched-uid-1", Pod = Pod,
            Container = "app", RunAt = FirstSlot(), StartedAt = KubeTime.Truncate(FirstSlot()),
        }, AutonomyJsonContext.Default.OfflineRun))]);
        second.Store.Add("default", "web", "app", Pod, FirstSlot().AddSeconds(-5), "pod-uid-1");
        Assert.Equal(new InterruptedRuns(0, 0, 1), second.Scheduler.ResolveInterruptedRuns());
        Assert.Single(second.Store.List());
        second.Api.ReportReachable();
        Assert.Null(await second.Publisher().PublishPendingAsync(CancellationToken.None));
        Assert.Equal(0, second.Outbox.Usage.Records);
        // start and end marks are not publications
        Assert.Empty(second.Kube.For(CrscResources.ContainerCheckpoints).AllStored());
    }

    [Fact]
    public async Task An_offline_checkpoint_whose_name_another_object_took_has_its_archive_deleted_and_says_so()
    {
        var rig = new Rig();
        var schedules = rig.Kube.For(CrscResources.CheckpointSchedules);
        var created = await schedules.SeedAsync(Schedule(), CancellationToken.None);
        rig.State.ReplaceView([new SavedSchedule(created, [Pod])], [new SavedPod("default", Pod, "pod-uid-1", "web", ["app"])]);
        rig.Time.SetUtcNow(FirstSlot(created.Metadata.Uid!, created.Metadata.CreationTimestamp));
        await rig.Scheduler.RunDueAsync(CancellationToken.None);
        var ours = Assert.Single(rig.Store.List());
        var name = rig.Runner.Requests.Single().CheckpointObjectName!;

        // the online path took the same slot first: an object of that name with its own archive
        var online = ScheduleReconciler.NewCheckpoint(created, name, Pod, "app", KubeTime.Truncate(FirstSlot(created.Metadata.Uid!, created.Metadata.CreationTimestamp)));
        online.Metadata.Annotations![Annotations.ArchiveId] = "20260301T100100Z-online";
        var checkpoints = rig.Kube.For(CrscResources.ContainerCheckpoints);
        await checkpoints.SeedAsync(online, CancellationToken.None);

        rig.Api.ReportReachable();
        Assert.Null(await rig.Publisher().PublishPendingAsync(CancellationToken.None));
        Assert.Equal(0, rig.Outbox.Usage.Records);
        // not left in the store, referenced by nothing
        Assert.Null(rig.Store.Get(ours.Id));
        Assert.Contains(ours.Id, rig.Store.Deleted);
        var kept = Assert.Single(checkpoints.AllStored());
        Assert.Equal("20260301T100100Z-online", kept.Metadata.Annotations![Annotations.ArchiveId]);
        Assert.Empty(rig.Kube.For(CrscResources.ContainerCheckpointContents).AllStored());
        var warning = Assert.Single(rig.Kube.For(Resources.CoreEvents).AllStored(), e => e.Reason == "CheckpointDiscarded");
        Assert.Equal((CoreEvent.Warning, "web", created.Metadata.Uid), (warning.Type, warning.InvolvedObject.Name, warning.InvolvedObject.Uid));
        Assert.Contains(ours.Id, warning.Message);
        Assert.Contains($"another ContainerCheckpoint named {name} exists", warning.Message);
    }

    [Fact]
    public async Task An_object_of_that_name_that_refers_to_the_same_archive_keeps_it()
    {
        var rig = new Rig();
        rig.Time.SetUtcNow(FirstSlot());
        await rig.Scheduler.RunDueAsync(CancellationToken.None);
        var ours = Assert.Single(rig.Store.List());
        var create = rig.Outbox.Pending(100).Single(e => e.Record.Kind == OutboxRecordKind.CheckpointCreate).Record;
        // published before a crash, then its owner reference changed (say, re-owned): it still names this archive
        var published = JsonSerializer.Deserialize(create.Body, CrscResources.ContainerCheckpoints.Json)!;
        published.Metadata.OwnerReferences = [];
        await rig.Kube.For(CrscResources.ContainerCheckpoints).SeedAsync(published, CancellationToken.None);

        Assert.Equal("existed", await rig.Publisher().PublishAsync(create, CancellationToken.None));
        Assert.NotNull(rig.Store.Get(ours.Id));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_offline_checkpoint_whose_namespace_is_gone_or_going_has_its_archive_deleted_and_blocks_nothing(bool terminating)
    {
        var rig = new Rig();
        rig.Kube.NamespacesMustExist = true;
        if (terminating)
        {
            var ns = new Namespace();
            ns.Metadata.Name = "default";
            ns.Metadata.DeletionTimestamp = Created;
            await rig.Kube.For(Resources.Namespaces).SeedAsync(ns, CancellationToken.None);
        }
        rig.Time.SetUtcNow(FirstSlot());
        await rig.Scheduler.RunDueAsync(CancellationToken.None);
        var ours = Assert.Single(rig.Store.List());
        // a later record of another namespace still gets through
        var other = new Namespace();
        other.Metadata.Name = "other";
        await rig.Kube.For(Resources.Namespaces).SeedAsync(other, CancellationToken.None);
        var ev = new CoreEvent { Type = CoreEvent.Normal, Reason = "R", Message = "m" };
        ev.Metadata.Namespace = "other";
        ev.Metadata.Name = "later.1";
        rig.Outbox.Append([new OutboxRecord(OutboxRecordKind.Event, JsonSerializer.Serialize(ev, Resources.CoreEvents.Json))]);

        rig.Api.ReportReachable();
        Assert.Null(await rig.Publisher().PublishPendingAsync(CancellationToken.None));
        Assert.Equal(0, rig.Outbox.Usage.Records);
        Assert.Null(rig.Store.Get(ours.Id));
        Assert.Empty(rig.Kube.For(CrscResources.ContainerCheckpoints).AllStored());
        Assert.Equal(["later.1"], rig.Kube.For(Resources.CoreEvents).AllStored().Select(e => e.Metadata.Name));
    }

    [Fact]
    public async Task A_not_found_that_is_not_the_namespace_is_retried_and_deletes_nothing()
    {
        // say the CRD is not installed yet: 404 of another kind, which may pass
        var rig = new Rig();
        rig.Time.SetUtcNow(FirstSlot());
        await rig.Scheduler.RunDueAsync(CancellationToken.None);
        var ours = Assert.Single(rig.Store.List());
        rig.Kube.For(CrscResources.ContainerCheckpoints).BeforeCall = (verb, _) =>
        {
            if (verb == "create") throw new Crsc.Controllers.Kubernetes.NotFoundException("NotFound", "the server could not find the requested resource");
        };
        rig.Api.ReportReachable();
        Assert.NotNull(await rig.Publisher().PublishPendingAsync(CancellationToken.None));
        Assert.NotNull(rig.Store.Get(ours.Id));
        // the run's start mark went (its records follow); the ContainerCheckpoint waits at the head
        Assert.Equal(OutboxRecordKind.CheckpointCreate, rig.Outbox.Pending(1).Single().Record.Kind);
        Assert.Equal(5, rig.Outbox.Usage.Records);
    }
}

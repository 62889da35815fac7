using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Autonomy;
using Crsc.Controllers.Health;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Schedules;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Autonomy;

/// <summary>An in-memory outbox with the journal's contract: ordered, bounded, acknowledged oldest first.</summary>
internal sealed class MemoryOutbox(long maxBytes = 1 << 20) : IOutbox
{
    private readonly List<OutboxEntry> _pending = [];
    private long _next;
    public List<OutboxRecord> Appended { get; } = [];

    /// <summary>Fault hook: called before each append with its records; an exception it returns is thrown and nothing is appended.</summary>
    public Func<IReadOnlyList<OutboxRecord>, Exception?>? AppendFault { get; set; }

    /// <summary>Fault hook: called before each acknowledgement; an exception it returns is thrown and nothing is acknowledged.</summary>
    public Func<Exception?>? AcknowledgeFault { get; set; }

    public void Append(IReadOnlyList<OutboxRecord> records)
    {
        if (AppendFault?.Invoke(records) is { } fault) throw fault;
        var bytes = records.Sum(r => 9L + r.Body.Length);
        if (Usage.Bytes + bytes > maxBytes) throw new OutboxFullException("outbox full: test bound");
        foreach (var r in records)
        {
            _pending.Add(new OutboxEntry(_next, r, 9 + r.Body.Length));
            _next += 9 + r.Body.Length;
            Appended.Add(r);
        }
    }

    public IReadOnlyList<OutboxEntry> Pending(int max) => [.. _pending.Take(max)];

    public void Acknowledge(OutboxEntry entry)
    {
        if (AcknowledgeFault?.Invoke() is { } fault) throw fault;
        Assert.Equal(_pending[0].Position, entry.Position);
        _pending.RemoveAt(0);
    }

    public OutboxUsage Usage => new(_pending.Count, _pending.Sum(e => (long)e.Size), maxBytes);
}

internal sealed class MemoryStateFile : INodeStateFile
{
    public NodeState? Saved { get; private set; }
    public int Saves { get; private set; }
    public NodeState? Load() => Saved;
    public void Save(NodeState state) { Saved = state; Saves++; }
}

/// <summary>A runner that "checkpoints" into the fake store, recording each request.</summary>
internal sealed class StoreRunner(FakeCheckpointStore store, TimeProvider time) : ICheckpointRunner
{
    public List<CheckpointRequest> Requests { get; } = [];
    public Task<CheckpointOutcome> CheckpointAsync(CheckpointRequest request, IProgress<CheckpointProgress>? progress, CancellationToken ct)
    {
        Requests.Add(request);
        // as the real runner: the manifest names the object it was taken for, and why
        var info = store.Add(request.Namespace, "web", request.Container!, request.Pod, time.GetUtcNow(), "pod-uid-1", request.Owner, request.Reason);
        return Task.FromResult(new CheckpointOutcome(info, "node-a", "c1", TimeSpan.Zero, TimeSpan.Zero));
    }
}

public sealed partial class AutonomyTests
{
    private static readonly DateTimeOffset Created = new(2026, 3, 1, 10, 0, 0, TimeSpan.Zero);

    private static CheckpointSchedule Schedule(string uid = "sched-uid-1") => new()
    {
        Metadata = new ObjectMeta { Name = "web", Namespace = "default", Uid = uid, CreationTimestamp = Created, ResourceVersion = "1" },
        Spec = new CheckpointScheduleSpec
        {
            Target = new ScheduleTarget { Kind = ScheduleTargetKind.Deployment, Name = "web" },
            Interval = "1m",
        },
    };

    private sealed class Rig
    {
        public ManualTimeProvider Time { get; } = new(Created.AddSeconds(30));
        public MemoryOutbox Outbox { get; }
        public MemoryStateFile File { get; } = new();
        public NodeStateStore State { get; }
        public ApiServerState Api { get; }
        public HealthRegistry Health { get; }
        public OutboxStatus Status { get; }
        public FakeCheckpointStore Store { get; }
        public StoreRunner Runner { get; }
        public OfflineScheduler Scheduler { get; }
        public FakeKube Kube { get; }

        /// <param name="attempted">whether the connection monitor has already tried the API server (and failed)</param>
        public Rig(long outboxBytes = 1 << 20, long reserve = 1024, bool attempted = true)
        {
            Outbox = new MemoryOutbox(outboxBytes);
            State = new NodeStateStore(File, "node-a");
            Api = new ApiServerState(Time);
            if (attempted) Api.ReportUnreachable("connection refused");
            Health = new HealthRegistry(Time);
            Status = new OutboxStatus(Outbox, Health, new MetricsRegistry()) { Reserve = reserve };
            Store = new FakeCheckpointStore(Time);
            Runner = new StoreRunner(Store, Time);
            Scheduler = NewScheduler(State, Runner);
            Kube = new FakeKube(Time);
            State.ReplaceView([new SavedSchedule(Schedule(), ["web-6c5d8-abcde"])],
                [new SavedPod("default", "web-6c5d8-abcde", "pod-uid-1", "web", ["app", "crsc-interceptor"])]);
        }

        public OutboxPublisher Publisher() => new(Outbox, Kube, Store, Api, Status, Health,
            new OutboxPublisherOptions { Spread = TimeSpan.Zero }, Time);

        /// <summary>A scheduler over this rig's outbox, store and health (a restarted daemon passes its own state and runner).</summary>
        public OfflineScheduler NewScheduler(NodeStateStore state, ICheckpointRunner runner) =>
            new(state, Api, runner, Store, Outbox, Status, Health, new OfflineSchedulerOptions { NodeName = "node-a" }, Time);
    }

    [Fact]
    public async Task Offline_runs_use_the_online_due_times_and_names_and_leave_their_records_in_the_outbox_in_order()
    {
        var rig = new Rig();
        var jitter = ScheduleTiming.Jitter("sched-uid-1", TimeSpan.FromMinutes(1));

        // before the first slot: nothing runs; the next wake is the first slot plus the schedule's jitter
        var next = await rig.Scheduler.RunDueAsync(CancellationToken.None);
        Assert.Equal(Created.AddMinutes(1) + jitter, next);
        Assert.Empty(rig.Runner.Requests);

        rig.Time.SetUtcNow(Created.AddMinutes(1) + jitter);
        await rig.Scheduler.RunDueAsync(CancellationToken.None);
        var runAt = Crsc.Api.Kubernetes.KubeTime.Truncate(Created.AddMinutes(1) + jitter);
        var name = ScheduleNames.CheckpointName("web", "app", runAt);
        // the sidecar is not checkpointed; the app container is, once, through the runner
        var request = Assert.Single(rig.Runner.Requests);
        Assert.Equal(("default", "web-6c5d8-abcde", "app", name), (request.Namespace, request.Pod, request.Container, request.CheckpointObjectName));
        // the start mark before the runtime is called, then what the cluster must learn
        Assert.Equal([OutboxRecordKind.RunStarted, OutboxRecordKind.CheckpointCreate, OutboxRecordKind.ContentCreate,
            OutboxRecordKind.CheckpointStatus, OutboxRecordKind.ScheduleStatus, OutboxRecordKind.Event], rig.Outbox.Appended.Select(r => r.Kind));
        Assert.Equal(runAt, rig.State.LastRun("sched-uid-1", "web-6c5d8-abcde", "app")!.RunAt);
        Assert.Equal(name, rig.File.Saved!.Runs.Single().CheckpointName);
        Assert.Contains("outbox: 6 record(s) waiting for the API server", rig.Health.Summary());

        // the same slot again: nothing; the next slot: a second run
        await rig.Scheduler.RunDueAsync(CancellationToken.None);
        Assert.Single(rig.Runner.Requests);
        rig.Time.Advance(TimeSpan.FromMinutes(1));
        await rig.Scheduler.RunDueAsync(CancellationToken.None);
        Assert.Equal(2, rig.Runner.Requests.Count);
        Assert.Equal(ScheduleNames.CheckpointName("web", "app", runAt.AddMinutes(1)), rig.Runner.Requests[1].CheckpointObjectName);

        // reachable: the offline scheduler leaves the schedules to the online path
        rig.Api.ReportReachable();
        rig.Time.Advance(TimeSpan.FromMinutes(1));
        await rig.Scheduler.RunDueAsync(CancellationToken.None);
        Assert.Equal(2, rig.Runner.Requests.Count);
    }

    [Fact]
    public async Task After_a_crash_between_the_outbox_append_and_the_run_log_the_slot_is_not_taken_again()
    {
        var rig = new Rig();
        var jitter = ScheduleTiming.Jitter("sched-uid-1", TimeSpan.FromMinutes(1));
        rig.Time.SetUtcNow(Created.AddMinutes(1) + jitter);
        await rig.Scheduler.RunDueAsync(CancellationToken.None);
        Assert.Single(rig.Runner.Requests);

        // the restart: the outbox kept the records, the node state lost the run (saved before the crash without it)
        var state = new NodeStateStore(new MemoryStateFile(), "node-a");
        state.ReplaceView([new SavedSchedule(Schedule(), ["web-6c5d8-abcde"])],
            [new SavedPod("default", "web-6c5d8-abcde", "pod-uid-1", "web", ["app", "crsc-interceptor"])]);
        var runner = new StoreRunner(rig.Store, rig.Time);
        var restarted = rig.NewScheduler(state, runner);

        Assert.Equal(1, restarted.RecoverRuns());
        await restarted.RunDueAsync(CancellationToken.None);

        Assert.Empty(runner.Requests);
        Assert.Equal(Crsc.Api.Kubernetes.KubeTime.Truncate(Created.AddMinutes(1) + jitter), state.LastRun("sched-uid-1", "web-6c5d8-abcde", "app")!.RunAt);
    }

    [Fact]
    public async Task A_full_outbox_pauses_offline_checkpoints_with_a_degraded_entry_and_drops_nothing()
    {
        // room for about one run's records and no more
        var rig = new Rig(outboxBytes: 5000, reserve: 4000);
        var jitter = ScheduleTiming.Jitter("sched-uid-1", TimeSpan.FromMinutes(1));
        rig.Time.SetUtcNow(Created.AddMinutes(1) + jitter);
        await rig.Scheduler.RunDueAsync(CancellationToken.None);
        Assert.Single(rig.Runner.Requests);
        var appended = rig.Outbox.Appended.Count;

        rig.Time.Advance(TimeSpan.FromMinutes(1));
        await rig.Scheduler.RunDueAsync(CancellationToken.None);
        Assert.Single(rig.Runner.Requests); // paused: no checkpoint taken
        Assert.Equal(1, rig.Scheduler.Paused);
        Assert.Equal(appended, rig.Outbox.Appended.Count);
        var entry = rig.Health.Snapshot().Single(e => e.Component == OutboxStatus.Component);
        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.StartsWith("outbox full: ", entry.Message);

        // published: room again, and the slot that waited runs
        rig.Api.ReportReachable();
        Assert.Null(await rig.Publisher().PublishPendingAsync(CancellationToken.None));
        rig.Api.ReportUnreachable("gone again");
        await rig.Scheduler.RunDueAsync(CancellationToken.None);
        Assert.Equal(2, rig.Runner.Requests.Count);
    }

    [Fact]
    public async Task Republishing_after_a_crash_between_publish_and_acknowledge_makes_no_duplicates()
    {
        var rig = new Rig();
        var jitter = ScheduleTiming.Jitter("sched-uid-1", TimeSpan.FromMinutes(1));
        var schedules = rig.Kube.For(CrscResources.CheckpointSchedules);
        var created = await schedules.SeedAsync(Schedule(), CancellationToken.None);
        // the saved schedule is the API server's object (its UID)
        rig.State.ReplaceView([new SavedSchedule(created, ["web-6c5d8-abcde"])],
            [new SavedPod("default", "web-6c5d8-abcde", "pod-uid-1", "web", ["app"])]);
        rig.Time.SetUtcNow(created.Metadata.CreationTimestamp!.Value.AddMinutes(1) + ScheduleTiming.Jitter(created.Metadata.Uid, TimeSpan.FromMinutes(1)));
        await rig.Scheduler.RunDueAsync(CancellationToken.None);
        Assert.Single(rig.Runner.Requests);

        // a first daemon publishes every record and dies before acknowledging any
        var publisher = rig.Publisher();
        foreach (var e in rig.Outbox.Pending(100)) await publisher.PublishAsync(e.Record, CancellationToken.None);
        // the next one publishes them all again, and acknowledges
        Assert.Null(await rig.Publisher().PublishPendingAsync(CancellationToken.None));
        Assert.Equal(0, rig.Outbox.Usage.Records);

        var ckpt = Assert.Single(rig.Kube.For(CrscResources.ContainerCheckpoints).AllStored());
        Assert.Equal(rig.Runner.Requests[0].CheckpointObjectName, ckpt.Metadata.Name);
        Assert.Equal(ContainerCheckpointPhase.Completed, ckpt.Status!.Phase);
        Assert.Contains(Finalizers.Archive, ckpt.Metadata.Finalizers!);
        var content = Assert.Single(rig.Kube.For(CrscResources.ContainerCheckpointContents).AllStored());
        Assert.Equal(ckpt.Metadata.Uid, content.Spec.CheckpointRef.Uid);
        Assert.Equal(content.Metadata.Name, ckpt.Status.ContentName);
        Assert.Single(rig.Kube.For(Resources.CoreEvents).AllStored());
        var schedule = schedules.Stored("default", "web")!;
        Assert.Equal(ckpt.Metadata.Name, schedule.Status!.LastCheckpointName);
    }

    [Fact]
    public async Task A_schedule_status_newer_on_the_api_server_is_not_overwritten_and_a_stale_write_is_retried_from_the_fresh_object()
    {
        var rig = new Rig();
        var schedules = rig.Kube.For(CrscResources.CheckpointSchedules);
        var created = await schedules.SeedAsync(Schedule(), CancellationToken.None);
        var ours = new OfflineScheduleRun("default", "web", created.Metadata.Uid!, Created.AddMinutes(1), "web-app-20260301100100");
        var body = System.Text.Json.JsonSerializer.Serialize(ours, AutonomyJsonContext.Default.OfflineScheduleRun);

        // another writer moves the object between our read and our write (a 409): the fresh copy is read and, being older, updated
        var interfered = false;
        schedules.BeforeCall = (verb, obj) =>
        {
            if (verb != "updateStatus" || interfered) return;
            interfered = true;
            var fresh = schedules.Stored("default", "web")!;
            fresh.Metadata.Labels = new() { ["touched"] = "yes" };
            schedules.UpdateAsync(fresh, CancellationToken.None).GetAwaiter().GetResult();
        };
        Assert.Equal("published", await rig.Publisher().PublishAsync(new OutboxRecord(OutboxRecordKind.ScheduleStatus, body), CancellationToken.None));
        Assert.Equal(ours.LastCheckpointName, schedules.Stored("default", "web")!.Status!.LastCheckpointName);
        schedules.BeforeCall = null;

        // the API server already has a later run: superseded, left alone
        var newer = schedules.Stored("default", "web")!;
        newer.Status!.LastCheckpointTime = Created.AddMinutes(5);
        newer.Status.LastCheckpointName = "web-app-20260301100500";
        await schedules.UpdateStatusAsync(newer, CancellationToken.None);
        Assert.Equal("superseded", await rig.Publisher().PublishAsync(new OutboxRecord(OutboxRecordKind.ScheduleStatus, body), CancellationToken.None));
        Assert.Equal("web-app-20260301100500", schedules.Stored("default", "web")!.Status!.LastCheckpointName);
    }

    [Fact]
    public async Task A_record_the_api_server_cannot_take_is_retried_with_growing_jittered_waits_and_kept_until_it_is_published()
    {
        var rig = new Rig();
        rig.Outbox.Append([EventRecord()]);
        var events = rig.Kube.For(Resources.CoreEvents);
        events.Unavailable = true;
        var publisher = new OutboxPublisher(rig.Outbox, rig.Kube, rig.Store, rig.Api, rig.Status, rig.Health,
            new OutboxPublisherOptions { InitialRetry = TimeSpan.FromSeconds(1), MaxRetry = TimeSpan.FromSeconds(8), Spread = TimeSpan.Zero },
            rig.Time, random: new Random(7));

        var waits = new List<TimeSpan>();
        for (var i = 0; i < 6; i++) waits.Add((await publisher.PublishPendingAsync(CancellationToken.None))!.Value);
        // each wait is in [cap/2, cap] for a cap doubling from 1 s up to 8 s: jittered, growing, bounded
        double[] caps = [1, 2, 4, 8, 8, 8];
        for (var i = 0; i < waits.Count; i++)
            Assert.InRange(waits[i].TotalSeconds, caps[i] / 2, caps[i]);
        Assert.Equal(1, rig.Outbox.Usage.Records);

        events.Unavailable = false;
        Assert.Null(await publisher.PublishPendingAsync(CancellationToken.None));
        Assert.Equal(0, rig.Outbox.Usage.Records);
        Assert.NotNull(events.Stored("default", "web.1"));
        // a republish (crash before the acknowledgement) is not a second event
        Assert.Equal("existed", await publisher.PublishAsync(EventRecord(), CancellationToken.None));
        Assert.Single(events.AllStored());
    }

    [Fact]
    public async Task An_outbox_stalled_by_a_refusal_says_so_in_its_health_entry_until_a_record_goes_through()
    {
        // reachable but refusing (RBAC taken away): the records wait and the entry names the refusal, not just a wait
        var rig = new Rig();
        rig.Outbox.Append([EventRecord()]);
        rig.Status.Refresh();
        Assert.Equal("1 record(s) waiting for the API server", Outbox(rig).Message[..38]);
        var events = rig.Kube.For(Resources.CoreEvents);
        events.BeforeCall = (verb, _) =>
        {
            if (verb == "create")
                throw new ForbiddenException("Forbidden", "events is forbidden: User \"system:serviceaccount:crsc-system:crsc\" cannot create resource \"events\"");
        };
        var publisher = rig.Publisher();

        Assert.NotNull(await publisher.PublishPendingAsync(CancellationToken.None));
        var entry = Outbox(rig);
        Assert.Equal(HealthStatus.Degraded, entry.Status);
        Assert.Contains("1 record(s) waiting for the API server", entry.Message);
        Assert.Contains("last attempt failed: refused by the API server (403 Forbidden: events is forbidden", entry.Message);
        Assert.EndsWith("check crsc's credentials and RBAC", entry.Message);
        Assert.Equal(1, rig.Outbox.Usage.Records);

        // a plain outage reads as one
        events.BeforeCall = null;
        events.Unavailable = true;
        Assert.NotNull(await publisher.PublishPendingAsync(CancellationToken.None));
        Assert.DoesNotContain("RBAC", Outbox(rig).Message);
        Assert.Contains("last attempt failed: ", Outbox(rig).Message);

        events.Unavailable = false;
        Assert.Null(await publisher.PublishPendingAsync(CancellationToken.None));
        Assert.Equal((HealthStatus.Healthy, "empty"), (Outbox(rig).Status, Outbox(rig).Message));

        // a later record that waits without having failed says nothing of the old failure
        rig.Outbox.Append([EventRecord()]);
        rig.Status.Refresh();
        Assert.DoesNotContain("failed", Outbox(rig).Message);
    }

    /// <summary>An outbox record of the Event default/web.1 (the same record each call).</summary>
    private static OutboxRecord EventRecord()
    {
        var ev = new CoreEvent { Type = CoreEvent.Normal, Reason = "CheckpointCreated", Message = "m" };
        ev.Metadata.Namespace = "default";
        ev.Metadata.Name = "web.1";
        return new OutboxRecord(OutboxRecordKind.Event, System.Text.Json.JsonSerializer.Serialize(ev, Resources.CoreEvents.Json));
    }

    private static HealthEntry Outbox(Rig rig) => rig.Health.Snapshot().Single(e => e.Component == OutboxStatus.Component);

    [Fact]
    public async Task Events_the_api_server_cannot_take_wait_in_the_outbox_and_go_straight_through_when_it_can()
    {
        var rig = new Rig();
        var events = rig.Kube.For(Resources.CoreEvents);
        var sink = new OutboxEventSink(new Crsc.Controllers.Events.ApiEventSink(events), () => rig.Outbox, rig.Api, rig.Status);
        CoreEvent Ev(string name)
        {
            var e = new CoreEvent { Type = CoreEvent.Normal, Reason = "R", Message = name };
            e.Metadata.Namespace = "default";
            e.Metadata.Name = name;
            return e;
        }

        // known unreachable: straight to the outbox
        await sink.CreateAsync(Ev("a.1"), CancellationToken.None);
        // believed reachable, but the write cannot get through: to the outbox as well
        rig.Api.ReportReachable();
        events.Unavailable = true;
        await sink.CreateAsync(Ev("b.2"), CancellationToken.None);
        Assert.Empty(events.AllStored());
        Assert.Equal([OutboxRecordKind.Event, OutboxRecordKind.Event], rig.Outbox.Appended.Select(r => r.Kind));
        Assert.Contains("outbox: 2 record(s) waiting for the API server", rig.Health.Summary());

        events.Unavailable = false;
        await sink.CreateAsync(Ev("c.3"), CancellationToken.None);
        Assert.Equal(2, rig.Outbox.Usage.Records); // written at once, not queued
        Assert.Null(await rig.Publisher().PublishPendingAsync(CancellationToken.None));
        Assert.Equal(["a.1", "b.2", "c.3"], events.AllStored().Select(e => e.Metadata.Name).Order(StringComparer.Ordinal));
        Assert.Contains("outbox: empty", rig.Health.Summary());
    }

    [Fact]
    public async Task The_node_state_follows_the_informers_once_synced_and_is_not_rewritten_when_nothing_changed()
    {
        var kube = new FakeKube();
        var podsApi = kube.For(Resources.Pods);
        podsApi.FieldReader = (p, field) => field == "spec.nodeName" ? p.Spec.NodeName : null;
        Pod PodOn(string name, string node) => new()
        {
            Metadata = new ObjectMeta
            {
                Name = name, Namespace = "default", Labels = new() { [PodOwnerWorkloadResolver.PodTemplateHashLabel] = "6c5d8" },
                OwnerReferences = [new OwnerReference { Kind = "ReplicaSet", Name = "web-6c5d8", Controller = true, ApiVersion = "apps/v1", Uid = "rs" }],
            },
            Spec = new PodSpec { NodeName = node, Containers = [new Container { Name = "app", Image = "i" }] },
            Status = new PodStatus { Phase = "Running" },
        };
        await podsApi.SeedAsync(PodOn("web-6c5d8-aaaaa", "node-a"), CancellationToken.None);
        await podsApi.SeedAsync(PodOn("web-6c5d8-bbbbb", "node-b"), CancellationToken.None);
        var schedule = Schedule();
        schedule.Metadata.Uid = null;
        await kube.For(CrscResources.CheckpointSchedules).SeedAsync(schedule, CancellationToken.None);
        var other = Schedule();
        other.Metadata.Name = "db";
        other.Spec.Target = new ScheduleTarget { Kind = ScheduleTargetKind.StatefulSet, Name = "db" };
        await kube.For(CrscResources.CheckpointSchedules).SeedAsync(other, CancellationToken.None);

        var file = new MemoryStateFile();
        var store = new NodeStateStore(file, "node-a");
        var pods = new Informer<Pod>(kube.For(Resources.Pods), new InformerOptions { FieldSelector = "spec.nodeName=node-a" }, TimeProvider.System, NullLogger.Instance);
        var schedules = new Informer<CheckpointSchedule>(kube.For(CrscResources.CheckpointSchedules), new InformerOptions(), TimeProvider.System, NullLogger.Instance);
        var recorder = new NodeStateRecorder(store, schedules, pods, "node-a", TimeProvider.System);

        // not synced yet: a saved state is never replaced by an empty cache
        Assert.False(recorder.Refresh());
        Assert.Equal(0, file.Saves);

        using var stop = new CancellationTokenSource();
        var running = Task.WhenAll(pods.RunAsync(stop.Token), schedules.RunAsync(stop.Token));
        await pods.WaitForSyncAsync(CancellationToken.None);
        await schedules.WaitForSyncAsync(CancellationToken.None);
        Assert.True(recorder.Refresh());
        var saved = file.Saved!;
        var only = Assert.Single(saved.Schedules); // the StatefulSet schedule has no pod here
        Assert.Equal("web", only.Schedule.Metadata.Name);
        Assert.Equal(["web-6c5d8-aaaaa"], only.Pods);
        Assert.Equal(("web-6c5d8-aaaaa", "web", "app"), (saved.Pods.Single().Name, saved.Pods.Single().Workload, saved.Pods.Single().Containers.Single()));

        // nothing changed: nothing written
        Assert.False(recorder.Refresh());
        Assert.Equal(1, file.Saves);

        // a second pod of the workload on this node: written again
        await podsApi.SeedAsync(PodOn("web-6c5d8-ccccc", "node-a"), CancellationToken.None);
        await Eventually.TrueAsync(() => recorder.Refresh(), "the new pod is saved");
        Assert.Equal(["web-6c5d8-aaaaa", "web-6c5d8-ccccc"], file.Saved!.Schedules.Single().Pods);
        await stop.CancelAsync();
        await running;
    }
}

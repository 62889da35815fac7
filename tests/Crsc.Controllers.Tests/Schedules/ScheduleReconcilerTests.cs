using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Health;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Replication;
using Crsc.Controllers.Schedules;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Controllers.Tests.Support;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Schedules;

public sealed class ScheduleReconcilerTests : IAsyncLifetime
{
    private const string Ns = "shop";
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly ManualTimeProvider _time = new(Start);
    private readonly FakeKube _kube;
    private readonly FakeResourceClient<Pod> _podsApi;
    private readonly FakeResourceClient<CheckpointSchedule> _schedulesApi;
    private readonly FakeResourceClient<ContainerCheckpoint> _ckptApi;
    private readonly RecordingEventRecorder _events = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _running = [];

    public ScheduleReconcilerTests()
    {
        _kube = new FakeKube(_time);
        _podsApi = _kube.For(Resources.Pods);
        _podsApi.FieldReader = (p, field) => field == "spec.nodeName" ? p.Spec.NodeName : null;
        _schedulesApi = _kube.For(CrscResources.CheckpointSchedules);
        _ckptApi = _kube.For(CrscResources.ContainerCheckpoints);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit 2 runs IAsyncLifetime.DisposeAsync on a test class, never IAsyncDisposable's: cleanup must be here
    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running);
        _stop.Dispose();
    }

    private async Task<Agent> StartAgentAsync(string node = "n1", bool checkpointCache = true,
        Crsc.Controllers.Schedules.IScheduleRunLog? runLog = null, CheckpointRegistryMode registry = CheckpointRegistryMode.None)
    {
        var pods = new Informer<Pod>(_kube.For(Resources.Pods), new InformerOptions { FieldSelector = $"spec.nodeName={node}" }, TimeProvider.System, NullLogger.Instance);
        var schedules = new Informer<CheckpointSchedule>(_schedulesApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance);
        var ckpts = new Informer<ContainerCheckpoint>(_ckptApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance);
        var reconciler = new ScheduleReconciler(_kube, schedules, pods, ckpts, _events,
            new ScheduleReconcilerOptions { NodeName = node, Registry = registry }, _time, NullLogger.Instance, runLog);
        _running.Add(pods.RunAsync(_stop.Token));
        _running.Add(schedules.RunAsync(_stop.Token));
        // without it the checkpoint cache stays empty: the reconciler sees only what the API answers (a cache far behind)
        if (checkpointCache) _running.Add(ckpts.RunAsync(_stop.Token));
        await pods.WaitForSyncAsync(_stop.Token);
        await schedules.WaitForSyncAsync(_stop.Token);
        if (checkpointCache) await ckpts.WaitForSyncAsync(_stop.Token);
        return new Agent(this, node, reconciler, schedules, ckpts, pods, checkpointCache);
    }

    private sealed record Agent(ScheduleReconcilerTests T, string Node, ScheduleReconciler Reconciler,
        Informer<CheckpointSchedule> Schedules, Informer<ContainerCheckpoint> Checkpoints, Informer<Pod> Pods, bool CheckpointCache)
    {
        /// <summary>Reconciles once the caches show what is stored (level-triggered, from the cache).</summary>
        public async Task<ReconcileResult> ReconcileAsync(string name)
        {
            await Eventually.TrueAsync(() =>
                Same(Schedules.List(), T._schedulesApi.AllStored())
                && Same(Pods.List(), T._podsApi.AllStored().Where(p => p.Spec.NodeName == Node))
                && (!CheckpointCache || Same(Checkpoints.List(), T._ckptApi.AllStored())),
                "caches show what is stored");
            return await Reconciler.ReconcileAsync(new ObjectKey(Ns, name), CancellationToken.None);
        }

        private static bool Same(IEnumerable<IKubernetesObject> cached, IEnumerable<IKubernetesObject> stored) =>
            Keys(cached).SequenceEqual(Keys(stored));

        private static IEnumerable<string> Keys(IEnumerable<IKubernetesObject> objects) =>
            objects.Select(o => $"{o.Metadata.Namespace}/{o.Metadata.Name}@{o.Metadata.ResourceVersion}").Order(StringComparer.Ordinal);
    }

    /// <summary>A running pod of Deployment <paramref name="deployment"/> (through its ReplicaSet) on <paramref name="node"/>.</summary>
    private Task<Pod> SeedDeploymentPodAsync(string deployment, string suffix, string node, params string[] containers)
    {
        const string hash = "5d9c7b";
        return SeedPodAsync($"{deployment}-{hash}-{suffix}", node, containers,
            new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = $"{deployment}-{hash}", Uid = "rs-" + deployment, Controller = true },
            new() { [PodOwnerWorkloadResolver.PodTemplateHashLabel] = hash });
    }

    private async Task<Pod> SeedPodAsync(string name, string node, string[] containers, OwnerReference? owner = null,
        Dictionary<string, string>? labels = null, string phase = "Running")
    {
        var pod = new Pod();
        pod.Metadata.Namespace = Ns;
        pod.Metadata.Name = name;
        pod.Metadata.Labels = labels;
        pod.Metadata.OwnerReferences = owner is null ? null : [owner];
        pod.Spec.NodeName = node;
        pod.Spec.Containers = [.. containers.Select(c => new Container { Name = c, Image = "registry.local/app:1" })];
        pod.Status = new PodStatus { Phase = phase };
        return await _podsApi.SeedAsync(pod, CancellationToken.None);
    }

    private async Task<CheckpointSchedule> CreateScheduleAsync(string name, ScheduleTargetKind kind, string target,
        string? interval = "10m", string? cron = null, List<string>? containers = null, RetentionPolicy? retention = null,
        bool suspend = false, CheckpointReplication replicate = CheckpointReplication.None)
    {
        var s = new CheckpointSchedule
        {
            Metadata = new ObjectMeta { Namespace = Ns, Name = name },
            Spec = new CheckpointScheduleSpec
            {
                Target = new ScheduleTarget { Kind = kind, Name = target },
                Interval = interval,
                Cron = cron,
                Containers = containers,
                Retention = retention ?? new RetentionPolicy { KeepLast = 5 },
                Suspend = suspend,
                Replicate = replicate,
            },
        };
        return await _schedulesApi.SeedAsync(s, CancellationToken.None);
    }

    private CheckpointSchedule StoredSchedule(string name) => _schedulesApi.Stored(Ns, name)!;

    private IReadOnlyList<ContainerCheckpoint> Checkpoints() =>
        [.. _ckptApi.AllStored().OrderBy(c => c.Metadata.Name, StringComparer.Ordinal)];

    private static TimeSpan JitterOf(CheckpointSchedule s, TimeSpan period) => ScheduleTiming.Jitter(s.Metadata.Uid, period);

    /// <summary>The node took a slot while the API server was away (its run log says so): the online path does not take it again.</summary>
    [Fact]
    public async Task A_slot_taken_offline_is_not_checkpointed_again_online_and_the_status_names_it()
    {
        await SeedDeploymentPodAsync("web", "abcde", "n1", "app");
        var runLog = new Crsc.Controllers.Autonomy.NodeStateStore(new Crsc.Controllers.Tests.Autonomy.MemoryStateFile(), "n1");
        var agent = await StartAgentAsync(runLog: runLog);
        var schedule = await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web");
        var firstDue = Start + TimeSpan.FromMinutes(10) + JitterOf(schedule, TimeSpan.FromMinutes(10));
        var offlineName = $"web-app-{firstDue.UtcDateTime:yyyyMMddHHmmss}";
        runLog.Record(new Crsc.Controllers.Schedules.ScheduleRun(schedule.Metadata.Uid!, "web-5d9c7b-abcde", "app", firstDue, offlineName));

        _time.Advance(firstDue - Start + TimeSpan.FromSeconds(5));
        await agent.ReconcileAsync("web");
        Assert.Empty(Checkpoints()); // the outbox publishes that one
        var status = StoredSchedule("web").Status!;
        Assert.Equal(firstDue, status.LastCheckpointTime);
        Assert.Equal(offlineName, status.LastCheckpointName);

        // the next slot is the online path's again, and it goes into the shared log
        _time.Advance(TimeSpan.FromMinutes(10));
        await agent.ReconcileAsync("web");
        var ckpt = Assert.Single(Checkpoints());
        Assert.Equal(firstDue + TimeSpan.FromMinutes(10), runLog.LastRun(schedule.Metadata.Uid!)!.RunAt);
        Assert.Equal(ckpt.Metadata.Name, runLog.LastRun(schedule.Metadata.Uid!)!.CheckpointName);
    }

    [Fact]
    public async Task An_interval_schedule_creates_a_checkpoint_per_container_at_each_due_time()
    {
        await SeedDeploymentPodAsync("web", "abcde", "n1", "app", "crsc-interceptor");
        var agent = await StartAgentAsync();
        var schedule = await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web");
        var jitter = JitterOf(schedule, TimeSpan.FromMinutes(10));
        var firstDue = Start + TimeSpan.FromMinutes(10) + jitter;

        // first run one interval after the schedule was created
        var result = await agent.ReconcileAsync("web");
        Assert.Equal(ReconcileResult.RequeueAfter(firstDue - Start), result);
        Assert.Empty(Checkpoints());
        var status = StoredSchedule("web").Status!;
        Assert.Equal(firstDue, status.NextCheckpointTime);
        Assert.Null(status.LastCheckpointTime);
        Assert.True(status.IsConditionTrue(ConditionTypes.Ready));
        Assert.Equal(schedule.Metadata.Generation, status.ObservedGeneration);

        _time.Advance(firstDue - Start - TimeSpan.FromSeconds(1));
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(1)), await agent.ReconcileAsync("web"));
        Assert.Empty(Checkpoints());

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromMinutes(10)), await agent.ReconcileAsync("web"));
        var ckpt = Assert.Single(Checkpoints()); // the interceptor sidecar is not checkpointed
        var expectedName = $"web-app-{firstDue.UtcDateTime:yyyyMMddHHmmss}";
        Assert.Equal(expectedName, ckpt.Metadata.Name);
        Assert.Equal(("web-5d9c7b-abcde", "app", DeletionPolicy.Delete), (ckpt.Spec.PodName, ckpt.Spec.Container, ckpt.Spec.DeletionPolicy));
        Assert.Equal(new Dictionary<string, string>
        {
            [Labels.Schedule] = "web",
            [Labels.Workload] = "web",
            [Labels.Container] = "app",
        }, ckpt.Metadata.Labels);
        var owner = Assert.Single(ckpt.Metadata.OwnerReferences!);
        Assert.Equal((CrscApi.GroupVersion, CheckpointSchedule.KindName, "web", schedule.Metadata.Uid, true, true),
            (owner.ApiVersion, owner.Kind, owner.Name, owner.Uid, owner.Controller, owner.BlockOwnerDeletion));
        Assert.Empty(ckpt.Spec.Validate());

        status = StoredSchedule("web").Status!;
        Assert.Equal(firstDue, status.LastCheckpointTime);
        Assert.Equal(expectedName, status.LastCheckpointName);
        Assert.Equal(firstDue + TimeSpan.FromMinutes(10), status.NextCheckpointTime);
        Assert.True(status.IsConditionTrue(ConditionTypes.Ready));
        Assert.Contains(_events.Events, e => e.Reason == "CheckpointCreated" && e.Name == "web" && e.Message.Contains(expectedName));

        // level-triggered: nothing more until the next due time, and no status write either
        var writes = _schedulesApi.CallCount("updateStatus");
        _time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromMinutes(5)), await agent.ReconcileAsync("web"));
        Assert.Single(Checkpoints());
        Assert.Equal(writes, _schedulesApi.CallCount("updateStatus"));

        _time.Advance(TimeSpan.FromMinutes(5));
        await agent.ReconcileAsync("web");
        Assert.Equal(2, Checkpoints().Count);
        Assert.Equal(firstDue + TimeSpan.FromMinutes(10), StoredSchedule("web").Status!.LastCheckpointTime);
    }

    [Fact]
    public async Task After_downtime_exactly_one_missed_run_is_caught_up()
    {
        await SeedDeploymentPodAsync("web", "abcde", "n1", "app");
        var schedule = await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web");
        var jitter = JitterOf(schedule, TimeSpan.FromMinutes(10));
        var agent = await StartAgentAsync();
        _time.Advance(TimeSpan.FromMinutes(10) + jitter);
        await agent.ReconcileAsync("web");
        Assert.Single(Checkpoints());

        // the daemon is down for 3 h 5 min: 18 runs missed
        _time.Advance(TimeSpan.FromMinutes(185));
        var restarted = await StartAgentAsync();
        var result = await restarted.ReconcileAsync("web");
        Assert.Equal(2, Checkpoints().Count);
        var latestSlot = Start + TimeSpan.FromMinutes(190) + jitter; // the last due time that has passed
        Assert.Equal($"web-app-{latestSlot.UtcDateTime:yyyyMMddHHmmss}", Checkpoints()[1].Metadata.Name);
        Assert.Equal(latestSlot, StoredSchedule("web").Status!.LastCheckpointTime);
        Assert.Equal(ReconcileResult.RequeueAfter(latestSlot + TimeSpan.FromMinutes(10) - _time.GetUtcNow()), result);

        // and only one: reconciling again makes nothing new
        await restarted.ReconcileAsync("web");
        await restarted.ReconcileAsync("web");
        Assert.Equal(2, Checkpoints().Count);
    }

    [Fact]
    public async Task A_cron_schedule_runs_at_its_times_in_utc()
    {
        _time.Advance(TimeSpan.FromMinutes(3)); // created at 00:03
        await SeedPodAsync("db-0", "n1", ["postgres"],
            new OwnerReference { ApiVersion = "apps/v1", Kind = "StatefulSet", Name = "db", Uid = "ss-1", Controller = true });
        var agent = await StartAgentAsync();
        var schedule = await CreateScheduleAsync("db-quarterly", ScheduleTargetKind.StatefulSet, "db", interval: null, cron: "*/15 * * * *");
        var jitter = JitterOf(schedule, TimeSpan.FromMinutes(15));
        Assert.InRange(jitter, TimeSpan.Zero, TimeSpan.FromSeconds(30));

        var result = await agent.ReconcileAsync("db-quarterly");
        var due = Start + TimeSpan.FromMinutes(15) + jitter;
        Assert.Equal(ReconcileResult.RequeueAfter(due - _time.GetUtcNow()), result);
        Assert.Empty(Checkpoints());
        Assert.Equal(due, StoredSchedule("db-quarterly").Status!.NextCheckpointTime);

        _time.SetUtcNow(due);
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromMinutes(15)), await agent.ReconcileAsync("db-quarterly"));
        var ckpt = Assert.Single(Checkpoints());
        Assert.Equal($"db-postgres-{due.UtcDateTime:yyyyMMddHHmmss}", ckpt.Metadata.Name);
        Assert.Equal("db-0", ckpt.Spec.PodName);
        Assert.Equal("db", ckpt.Metadata.Labels![Labels.Workload]);
        Assert.Equal(due + TimeSpan.FromMinutes(15), StoredSchedule("db-quarterly").Status!.NextCheckpointTime);
    }

    [Fact]
    public async Task A_suspended_schedule_creates_nothing_and_resumes_with_one_run()
    {
        await SeedPodAsync("solo", "n1", ["app"]);
        var agent = await StartAgentAsync();
        await CreateScheduleAsync("solo", ScheduleTargetKind.Pod, "solo", suspend: true);

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("solo"));
        _time.Advance(TimeSpan.FromHours(2));
        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("solo"));
        Assert.Empty(Checkpoints());
        var status = StoredSchedule("solo").Status!;
        Assert.Null(status.NextCheckpointTime);
        var ready = status.FindCondition(ConditionTypes.Ready)!;
        Assert.Equal((ConditionStatus.False, ScheduleReconciler.ReasonSuspended), (ready.Status, ready.Reason));

        var resumed = StoredSchedule("solo");
        resumed.Spec.Suspend = false;
        await _schedulesApi.UpdateAsync(resumed, CancellationToken.None);
        await agent.ReconcileAsync("solo");
        var ckpt = Assert.Single(Checkpoints()); // the two hours missed while suspended count as one run
        Assert.StartsWith("solo-app-", ckpt.Metadata.Name);
        Assert.True(StoredSchedule("solo").Status!.IsConditionTrue(ConditionTypes.Ready));
    }

    [Fact]
    public async Task Pods_on_other_nodes_and_of_other_workloads_are_left_to_others()
    {
        await SeedDeploymentPodAsync("web", "remote", "n2", "app");
        await SeedDeploymentPodAsync("other", "local", "n1", "app");
        await SeedPodAsync("web-5d9c7b-pending", "n1", ["app"],
            new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = "web-5d9c7b", Uid = "rs-web", Controller = true },
            new() { [PodOwnerWorkloadResolver.PodTemplateHashLabel] = "5d9c7b" }, phase: "Pending");
        var agent = await StartAgentAsync("n1");
        await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web");

        _time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("web"));
        Assert.Empty(Checkpoints());
        Assert.Null(StoredSchedule("web").Status); // only the node running the pod writes the status
        Assert.Equal(0, _schedulesApi.CallCount("updateStatus"));

        // the node running it does the work, for its own pod only
        var n2 = await StartAgentAsync("n2");
        await n2.ReconcileAsync("web");
        var ckpt = Assert.Single(Checkpoints());
        Assert.Equal("web-5d9c7b-remote", ckpt.Spec.PodName);
    }

    [Fact]
    public async Task Spec_containers_choose_the_containers_and_missing_ones_are_reported()
    {
        await SeedPodAsync("solo", "n1", ["app", "cache", "crsc-interceptor"]);
        var agent = await StartAgentAsync();
        await CreateScheduleAsync("solo", ScheduleTargetKind.Pod, "solo", containers: ["cache", "gone"]);
        _time.Advance(TimeSpan.FromMinutes(11));
        await agent.ReconcileAsync("solo");
        var ckpt = Assert.Single(Checkpoints());
        Assert.Equal("cache", ckpt.Spec.Container);
        Assert.Contains(_events.Events, e => e.Reason == "ContainerNotFound" && e.Type == "Warning" && e.Message.Contains("gone"));
    }

    [Fact]
    public async Task Two_replicas_on_one_node_get_a_checkpoint_each()
    {
        await SeedDeploymentPodAsync("web", "aaaaa", "n1", "app");
        await SeedDeploymentPodAsync("web", "bbbbb", "n1", "app");
        var agent = await StartAgentAsync();
        await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web");
        _time.Advance(TimeSpan.FromMinutes(11));
        await agent.ReconcileAsync("web");
        var all = Checkpoints();
        Assert.Equal(2, all.Count);
        Assert.Equal(["web-5d9c7b-aaaaa", "web-5d9c7b-bbbbb"], all.Select(c => c.Spec.PodName).Order());
        Assert.Equal(2, all.Select(c => c.Metadata.Name).Distinct().Count());
        Assert.All(all, c => Assert.StartsWith("web-app-", c.Metadata.Name));

        // a retry finds both instead of making more
        await agent.ReconcileAsync("web");
        Assert.Equal(2, Checkpoints().Count);
    }

    [Fact]
    public async Task A_checkpoint_an_earlier_attempt_created_is_found_not_duplicated()
    {
        await SeedDeploymentPodAsync("web", "abcde", "n1", "app");
        var schedule = await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web");
        var due = Start + TimeSpan.FromMinutes(10) + JitterOf(schedule, TimeSpan.FromMinutes(10));
        var first = await StartAgentAsync();
        _time.SetUtcNow(due);
        // the daemon made the checkpoint, then crashed before writing the schedule's status
        _schedulesApi.BeforeCall = (verb, _) =>
        {
            if (verb == "updateStatus") throw new KubeUnavailableException("connection refused (fake)");
        };
        await Assert.ThrowsAsync<KubeUnavailableException>(async () => await first.ReconcileAsync("web"));
        Assert.Single(Checkpoints());
        _schedulesApi.BeforeCall = null;

        // a restarted daemon whose checkpoint cache has not caught up: the create answers AlreadyExists
        _time.Advance(TimeSpan.FromSeconds(40));
        var restarted = await StartAgentAsync(checkpointCache: false);
        var creates = _ckptApi.CallCount("create");
        await restarted.ReconcileAsync("web");
        Assert.Equal(creates + 1, _ckptApi.CallCount("create"));
        var ckpt = Assert.Single(Checkpoints());
        Assert.Equal($"web-app-{due.UtcDateTime:yyyyMMddHHmmss}", ckpt.Metadata.Name);
        Assert.Equal(due, StoredSchedule("web").Status!.LastCheckpointTime);
        Assert.Equal(ckpt.Metadata.Name, StoredSchedule("web").Status!.LastCheckpointName);
    }

    [Fact]
    public async Task A_conflict_on_the_status_write_requeues_and_the_retry_makes_no_second_checkpoint()
    {
        await SeedDeploymentPodAsync("web", "abcde", "n1", "app");
        var agent = await StartAgentAsync();
        await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web");
        _time.Advance(TimeSpan.FromMinutes(11));
        var conflicts = 1;
        _schedulesApi.BeforeCall = (verb, _) =>
        {
            if (verb == "updateStatus" && conflicts-- > 0) throw new ConflictException("Conflict", "the object has been modified");
        };

        Assert.Equal(ReconcileResult.Requeue, await agent.ReconcileAsync("web"));
        Assert.Single(Checkpoints());
        Assert.Null(StoredSchedule("web").Status);

        var retry = await agent.ReconcileAsync("web");
        Assert.Single(Checkpoints());
        var status = StoredSchedule("web").Status!;
        Assert.Equal(Checkpoints()[0].Metadata.Name, status.LastCheckpointName);
        Assert.Equal(ReconcileResult.RequeueAfter(status.NextCheckpointTime!.Value - _time.GetUtcNow()), retry);
    }

    [Fact]
    public async Task Retention_after_a_success_deletes_what_the_policy_lets_go()
    {
        await SeedDeploymentPodAsync("web", "abcde", "n1", "app");
        var agent = await StartAgentAsync();
        var schedule = await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web", retention: new RetentionPolicy { KeepLast = 2 });
        ContainerCheckpoint Owned(string name, ContainerCheckpointPhase phase, int minutesAgo, string container = "app") => new()
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns,
                Name = name,
                OwnerReferences = [new OwnerReference { ApiVersion = CrscApi.GroupVersion, Kind = CheckpointSchedule.KindName, Name = "web", Uid = schedule.Metadata.Uid!, Controller = true }],
            },
            Spec = new ContainerCheckpointSpec { PodName = "web-5d9c7b-abcde", Container = container },
            Status = new ContainerCheckpointStatus { Phase = phase, CompletedAt = _time.GetUtcNow().AddMinutes(-minutesAgo), SizeBytes = 10 },
        };
        _time.Advance(TimeSpan.FromHours(2));
        foreach (var c in new[]
        {
            Owned("c1", ContainerCheckpointPhase.Completed, 50), Owned("c2", ContainerCheckpointPhase.Completed, 40),
            Owned("f3", ContainerCheckpointPhase.Failed, 35), Owned("c4", ContainerCheckpointPhase.Completed, 30),
            Owned("r5", ContainerCheckpointPhase.Running, 1),
            Owned("other-c1", ContainerCheckpointPhase.Completed, 50, "sidecar"), Owned("other-c2", ContainerCheckpointPhase.Completed, 40, "sidecar"),
        })
            await _ckptApi.SeedAsync(c, CancellationToken.None);
        // a node-away checkpoint of the schedule (issue 18): held for the restore window, neither counted nor pruned
        var away = Owned("web-app-away-x", ContainerCheckpointPhase.Completed, 5);
        away.Metadata.Annotations = new() { [Annotations.CheckpointReason] = "NodeDrain" };
        await _ckptApi.SeedAsync(away, CancellationToken.None);
        // not the schedule's (a user's one-off checkpoint of the same container)
        await _ckptApi.SeedAsync(new ContainerCheckpoint
        {
            Metadata = new ObjectMeta { Namespace = Ns, Name = "manual" },
            Spec = new ContainerCheckpointSpec { PodName = "web-5d9c7b-abcde", Container = "app" },
            Status = new ContainerCheckpointStatus { Phase = ContainerCheckpointPhase.Completed, CompletedAt = _time.GetUtcNow().AddDays(-1) },
        }, CancellationToken.None);

        await agent.ReconcileAsync("web");

        // keepLast 2 per container: c1 goes; f3 failed before the newest success (c4): goes; running r5 stays
        Assert.Equal(["c2", "c4", "manual", "other-c1", "other-c2", "r5", "web-app-away-x"],
            Checkpoints().Select(c => c.Metadata.Name!).Where(n => !n.StartsWith("web-app-2", StringComparison.Ordinal)));
        Assert.Contains(_events.Events, e => e.Reason == "CheckpointsPruned" && e.Message.Contains("c1") && e.Message.Contains("f3"));

        // the new run completes: the next oldest goes
        var made = Checkpoints().Single(c => c.Metadata.Name!.StartsWith("web-app-2", StringComparison.Ordinal));
        made.Status = new ContainerCheckpointStatus { Phase = ContainerCheckpointPhase.Completed, CompletedAt = _time.GetUtcNow(), SizeBytes = 10 };
        await _ckptApi.UpdateStatusAsync(made, CancellationToken.None);
        await agent.ReconcileAsync("web");
        Assert.Null(_ckptApi.Stored(Ns, "c2"));
        Assert.NotNull(_ckptApi.Stored(Ns, "c4"));
        Assert.NotNull(_ckptApi.Stored(Ns, made.Metadata.Name!));
        Assert.NotNull(_ckptApi.Stored(Ns, "web-app-away-x"));
    }

    /// <summary>A pod on another node naming <paramref name="checkpoint"/> in crsc.io/restore-from (its agent fetches it from there).</summary>
    private async Task<Pod> SeedRestoreFromPodAsync(string name, string checkpoint, string phase = "Pending", string ns = Ns)
    {
        var pod = new Pod();
        pod.Metadata.Namespace = ns;
        pod.Metadata.Name = name;
        pod.Metadata.Annotations = new() { [Annotations.RestoreFrom] = checkpoint };
        pod.Spec.NodeName = "n2";
        pod.Spec.Containers = [new Container { Name = "app", Image = "registry.local/app:1" }];
        pod.Status = new PodStatus { Phase = phase };
        return await _podsApi.SeedAsync(pod, CancellationToken.None);
    }

    /// <summary>The Restore the node agent of <paramref name="pod"/> made for its restore-from, in <paramref name="phase"/>.</summary>
    private Task<Restore> SeedRestoreOfAsync(Pod pod, RestorePhase phase) => _kube.For(CrscResources.Restores).SeedAsync(new Restore
    {
        Metadata = new ObjectMeta
        {
            Namespace = pod.Metadata.Namespace, Name = pod.Metadata.Name + "-from-x",
            Labels = new() { [Labels.RestoreFromPodUid] = pod.Metadata.Uid! },
            Annotations = new() { [Annotations.RestoreFromPod] = pod.Metadata.Name! },
        },
        Status = new RestoreStatus { Phase = phase },
    }, CancellationToken.None);

    [Fact]
    public async Task Retention_keeps_a_checkpoint_a_pod_names_in_restore_from_until_that_pod_is_gone()
    {
        await SeedDeploymentPodAsync("web", "abcde", "n1", "app");
        var agent = await StartAgentAsync();
        var schedule = await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web", retention: new RetentionPolicy { KeepLast = 1 });
        _time.Advance(TimeSpan.FromHours(2));
        await _ckptApi.SeedAsync(OwnedBy(schedule, "c1", ContainerCheckpointPhase.Completed, _time.GetUtcNow().AddMinutes(-50)), CancellationToken.None);
        await _ckptApi.SeedAsync(OwnedBy(schedule, "c2", ContainerCheckpointPhase.Completed, _time.GetUtcNow().AddMinutes(-40)), CancellationToken.None);
        // a pod on another node is to be restored from the older one; its agent may not have fetched it yet
        var pod = await SeedRestoreFromPodAsync("web-5d9c7b-moved", "c1");
        // its Restore made, not finished: still held
        await SeedRestoreOfAsync(pod, RestorePhase.Restoring);

        await agent.ReconcileAsync("web");

        Assert.NotNull(_ckptApi.Stored(Ns, "c1"));
        Assert.NotNull(_ckptApi.Stored(Ns, "c2"));
        Assert.DoesNotContain(_events.Events, e => e.Reason == "CheckpointsPruned");

        // the pod gone: nothing holds it, keepLast 1 lets it go
        await _podsApi.DeleteAsync(Ns, pod.Metadata.Name!, null, CancellationToken.None);
        await agent.ReconcileAsync("web");

        Assert.Null(_ckptApi.Stored(Ns, "c1"));
        Assert.NotNull(_ckptApi.Stored(Ns, "c2"));
        Assert.Contains(_events.Events, e => e.Reason == "CheckpointsPruned" && e.Message.Contains("c1"));
    }

    [Fact]
    public async Task Retention_is_not_held_by_a_restore_from_pod_that_ended_was_restored_or_is_of_another_namespace()
    {
        await SeedDeploymentPodAsync("web", "abcde", "n1", "app");
        var agent = await StartAgentAsync();
        var schedule = await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web", retention: new RetentionPolicy { KeepLast = 1 });
        _time.Advance(TimeSpan.FromHours(2));
        await _ckptApi.SeedAsync(OwnedBy(schedule, "c1", ContainerCheckpointPhase.Completed, _time.GetUtcNow().AddMinutes(-50)), CancellationToken.None);
        await _ckptApi.SeedAsync(OwnedBy(schedule, "c2", ContainerCheckpointPhase.Completed, _time.GetUtcNow().AddMinutes(-45)), CancellationToken.None);
        await _ckptApi.SeedAsync(OwnedBy(schedule, "c3", ContainerCheckpointPhase.Completed, _time.GetUtcNow().AddMinutes(-40)), CancellationToken.None);
        await SeedRestoreFromPodAsync("ended", "c1", phase: "Failed");
        await SeedRestoreOfAsync(await SeedRestoreFromPodAsync("restored", "c2", phase: "Running"), RestorePhase.Restored);
        await SeedRestoreFromPodAsync("elsewhere", "c2", ns: "other");

        await agent.ReconcileAsync("web");

        Assert.Null(_ckptApi.Stored(Ns, "c1"));
        Assert.Null(_ckptApi.Stored(Ns, "c2"));
        Assert.NotNull(_ckptApi.Stored(Ns, "c3"));
    }

    [Fact]
    public async Task The_node_controller_fires_on_time_as_the_clock_moves()
    {
        await SeedDeploymentPodAsync("web", "abcde", "n1", "app");
        var manager = new ControllerManager(new ControllerManagerOptions { Kube = _kube, Events = _events, Time = _time, Loggers = NullLoggerFactory.Instance });
        ScheduleReconciler.SetUp(manager, "n1");
        Assert.Equal(3, manager.Informers.All.Count);
        Assert.DoesNotContain(manager.Informers.All, manager.RunsOnlyWhileLeading); // node work: its caches run all the time
        _running.Add(manager.RunAsync(_stop.Token));
        var schedule = await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web", interval: "1m");
        var jitter = JitterOf(schedule, TimeSpan.FromMinutes(1));
        await Eventually.TrueAsync(() => StoredSchedule("web").Status?.NextCheckpointTime is not null, "first status written");

        await Clock.AdvanceUntilAsync(_time, () => Checkpoints().Count == 3, TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(4),
            "three checkpoints");

        Assert.Equal(
            [.. new[] { 1, 2, 3 }.Select(k => $"web-app-{(Start + TimeSpan.FromMinutes(k) + jitter).UtcDateTime:yyyyMMddHHmmss}")],
            Checkpoints().Select(c => c.Metadata.Name));
        // and the pod informer's events lead to its schedules: a second replica arriving is checkpointed at the next run
        await SeedDeploymentPodAsync("web", "fghij", "n1", "app");
        await Clock.AdvanceUntilAsync(_time, () => Checkpoints().Any(c => c.Spec.PodName == "web-5d9c7b-fghij"),
            TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(2), "a checkpoint of the second pod");
    }

    [Theory]
    [InlineData("5s", null, ScheduleReconciler.ReasonIntervalTooShort, "'5s' is shorter than the minimum of 10s")]
    [InlineData(null, "0 0 31 13 *", ScheduleReconciler.ReasonInvalidCron, "month field '13'")]
    [InlineData(null, "0 0 30 2 *", ScheduleReconciler.ReasonNoNextTime, "names no time")]
    public async Task A_schedule_that_cannot_run_says_why(string? interval, string? cron, string reason, string message)
    {
        await SeedPodAsync("solo", "n1", ["app"]);
        var agent = await StartAgentAsync();
        await CreateScheduleAsync("solo", ScheduleTargetKind.Pod, "solo", interval: interval, cron: cron);
        _time.Advance(TimeSpan.FromDays(400));

        Assert.Equal(ReconcileResult.Done, await agent.ReconcileAsync("solo"));
        Assert.Empty(Checkpoints());
        var ready = StoredSchedule("solo").Status!.FindCondition(ConditionTypes.Ready)!;
        Assert.Equal((ConditionStatus.False, reason), (ready.Status, ready.Reason));
        Assert.Contains(message, ready.Message);
        Assert.Null(StoredSchedule("solo").Status!.NextCheckpointTime);

        // said once, not on every reconcile (the pods' changes queue the schedule again and again)
        var writes = _schedulesApi.CallCount("updateStatus");
        await agent.ReconcileAsync("solo");
        Assert.Equal(writes, _schedulesApi.CallCount("updateStatus"));
        if (reason != ScheduleReconciler.ReasonNoNextTime)
            Assert.Single(_events.Events, e => e.Reason == reason && e.Type == "Warning" && e.Message.Contains(message));
    }

    // ---- checkpoints that fail ----

    private const string RuntimeRefusal = "rpc error: code = Unknown desc = checkpoint/restore support not available";

    /// <summary>The checkpoint the last run made ends as the runtime left it (what the node agent writes).</summary>
    private async Task<ContainerCheckpoint> FinishNewestAsync(ContainerCheckpointPhase phase, string? message = null)
    {
        var made = Checkpoints().Where(c => c.Status?.Phase is null).OrderBy(c => c.Metadata.Name, StringComparer.Ordinal).Last();
        made.Status = new ContainerCheckpointStatus { Phase = phase, Message = message, CompletedAt = KubeTime.Truncate(_time.GetUtcNow()), SizeBytes = 10 };
        return await _ckptApi.UpdateStatusAsync(made, CancellationToken.None);
    }

    private ContainerCheckpoint OwnedBy(CheckpointSchedule schedule, string name, ContainerCheckpointPhase phase, DateTimeOffset finished,
        string? message = null) => new()
    {
        Metadata = new ObjectMeta
        {
            Namespace = Ns,
            Name = name,
            OwnerReferences = [new OwnerReference { ApiVersion = CrscApi.GroupVersion, Kind = CheckpointSchedule.KindName, Name = schedule.Metadata.Name!, Uid = schedule.Metadata.Uid!, Controller = true }],
        },
        Spec = new ContainerCheckpointSpec { PodName = "web-5d9c7b-abcde", Container = "app" },
        Status = new ContainerCheckpointStatus { Phase = phase, Message = message, CompletedAt = finished, SizeBytes = 10 },
    };

    /// <summary>
    /// Seen on a CRI-O node with checkpointing off: every checkpoint failed within 40 ms and the schedule said Ready.
    /// After a success, three failures in a row turn it not Ready (one or two may be passing trouble).
    /// </summary>
    [Fact]
    public async Task Checkpoints_that_keep_failing_make_the_schedule_not_Ready_with_the_runtimes_message_once_and_a_success_turns_it_back()
    {
        await SeedDeploymentPodAsync("web", "abcde", "n1", "app");
        var agent = await StartAgentAsync();
        var schedule = await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web", retention: new RetentionPolicy { KeepLast = 10 });
        var succeededAt = Start.AddMinutes(-30);
        await _ckptApi.SeedAsync(OwnedBy(schedule, "web-app-good", ContainerCheckpointPhase.Completed, succeededAt), CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(10) + JitterOf(schedule, TimeSpan.FromMinutes(10)));

        for (var run = 1; run <= 2; run++)
        {
            await agent.ReconcileAsync("web");
            await FinishNewestAsync(ContainerCheckpointPhase.Failed, RuntimeRefusal);
            await agent.ReconcileAsync("web");
            Assert.True(StoredSchedule("web").Status!.IsConditionTrue(ConditionTypes.Ready), $"after {run} failure(s)");
            Assert.Null(StoredSchedule("web").Status!.FindCondition(ConditionTypes.Degraded));
            _time.Advance(TimeSpan.FromMinutes(10));
        }
        await agent.ReconcileAsync("web");
        var third = await FinishNewestAsync(ContainerCheckpointPhase.Failed, RuntimeRefusal);
        await agent.ReconcileAsync("web");

        var status = StoredSchedule("web").Status!;
        var ready = status.FindCondition(ConditionTypes.Ready)!;
        Assert.Equal((ConditionStatus.False, ScheduleReconciler.ReasonCheckpointsFailing), (ready.Status, ready.Reason));
        Assert.StartsWith("the last 3 checkpoints of container app failed", ready.Message);
        Assert.Contains($"latest {third.Metadata.Name} at {KubeTime.ToText(third.Status!.CompletedAt!.Value)}: {RuntimeRefusal}", ready.Message);
        Assert.Contains($"last success: {KubeTime.ToText(succeededAt)} (web-app-good)", ready.Message);
        Assert.Contains("next checkpoint at", ready.Message); // it keeps trying
        Assert.NotNull(status.NextCheckpointTime);
        var degraded = status.FindCondition(ConditionTypes.Degraded)!;
        Assert.Equal((ConditionStatus.True, ScheduleReconciler.ReasonCheckpointsFailing, ready.Message),
            (degraded.Status, degraded.Reason, degraded.Message));
        var warning = Assert.Single(_events.Events, e => e.Reason == ScheduleReconciler.ReasonCheckpointsFailing);
        Assert.Equal(("Warning", "web"), (warning.Type, warning.Name));
        Assert.Contains(RuntimeRefusal, warning.Message);

        // nothing changed: no write, no second Event
        var writes = _schedulesApi.CallCount("updateStatus");
        await agent.ReconcileAsync("web");
        Assert.Equal(writes, _schedulesApi.CallCount("updateStatus"));

        // a fourth failure: the count moves, the Event is not said again
        _time.Advance(TimeSpan.FromMinutes(10));
        await agent.ReconcileAsync("web");
        await FinishNewestAsync(ContainerCheckpointPhase.Failed, RuntimeRefusal);
        await agent.ReconcileAsync("web");
        Assert.StartsWith("the last 4 checkpoints of container app failed", StoredSchedule("web").Status!.FindCondition(ConditionTypes.Ready)!.Message);
        Assert.Single(_events.Events, e => e.Reason == ScheduleReconciler.ReasonCheckpointsFailing);

        // the runtime is fixed: the next checkpoint completes and the schedule is Ready again
        _time.Advance(TimeSpan.FromMinutes(10));
        await agent.ReconcileAsync("web");
        await FinishNewestAsync(ContainerCheckpointPhase.Completed);
        await agent.ReconcileAsync("web");
        status = StoredSchedule("web").Status!;
        ready = status.FindCondition(ConditionTypes.Ready)!;
        Assert.Equal((ConditionStatus.True, ScheduleReconciler.ReasonScheduled), (ready.Status, ready.Reason));
        Assert.Null(status.FindCondition(ConditionTypes.Degraded));
        Assert.Single(_events.Events, e => e.Reason == ScheduleReconciler.ReasonCheckpointsRecovered && e.Type == "Normal");
    }

    [Fact]
    public async Task A_schedule_none_of_whose_checkpoints_ever_completed_is_not_Ready_after_the_first_failure()
    {
        await SeedDeploymentPodAsync("web", "abcde", "n1", "app");
        var agent = await StartAgentAsync();
        var schedule = await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web");
        _time.Advance(TimeSpan.FromMinutes(10) + JitterOf(schedule, TimeSpan.FromMinutes(10)));
        await agent.ReconcileAsync("web");
        Assert.True(StoredSchedule("web").Status!.IsConditionTrue(ConditionTypes.Ready)); // pending: not a failure

        var failed = await FinishNewestAsync(ContainerCheckpointPhase.Failed, RuntimeRefusal + "\n" + new string('x', 400));
        await agent.ReconcileAsync("web");

        var ready = StoredSchedule("web").Status!.FindCondition(ConditionTypes.Ready)!;
        Assert.Equal((ConditionStatus.False, ScheduleReconciler.ReasonCheckpointsFailing), (ready.Status, ready.Reason));
        Assert.StartsWith($"the last checkpoint of container app failed (latest {failed.Metadata.Name} at ", ready.Message);
        Assert.Contains(RuntimeRefusal + " xxx", ready.Message); // on one line
        Assert.Contains("…); last success: never; next checkpoint at", ready.Message); // clipped
        Assert.True(ready.Message.Length < CheckpointFailures.MaxMessageLength + 200, ready.Message);
        Assert.True(StoredSchedule("web").Status!.IsConditionTrue(ConditionTypes.Degraded));
        Assert.Single(_events.Events, e => e.Reason == ScheduleReconciler.ReasonCheckpointsFailing && e.Type == "Warning");
    }

    /// <summary>The node controller is woken by the checkpoint's phase change (it watches what it owns), not by the clock.</summary>
    [Fact]
    public async Task The_node_controller_turns_the_schedule_not_Ready_when_an_owned_checkpoint_fails_without_the_clock_moving()
    {
        await SeedDeploymentPodAsync("web", "abcde", "n1", "app");
        var manager = new ControllerManager(new ControllerManagerOptions { Kube = _kube, Events = _events, Time = _time, Loggers = NullLoggerFactory.Instance });
        ScheduleReconciler.SetUp(manager, "n1");
        _running.Add(manager.RunAsync(_stop.Token));
        await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web", interval: "1m");
        await Eventually.TrueAsync(() => StoredSchedule("web").Status?.NextCheckpointTime is not null, "first status written");
        await Clock.AdvanceUntilAsync(_time, () => Checkpoints().Count == 1, TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(2), "a checkpoint");
        await Eventually.TrueAsync(() => StoredSchedule("web").Status?.LastCheckpointName == Checkpoints()[0].Metadata.Name, "run recorded");

        await FinishNewestAsync(ContainerCheckpointPhase.Failed, RuntimeRefusal);

        await Eventually.TrueAsync(() => StoredSchedule("web").Status!.FindCondition(ConditionTypes.Ready)?.Reason
            == ScheduleReconciler.ReasonCheckpointsFailing, "the schedule says its checkpoints fail");
        Assert.Contains(RuntimeRefusal, StoredSchedule("web").Status!.FindCondition(ConditionTypes.Ready)!.Message);
    }

    /// <summary>The node's `schedules` health entry (/readyz, STATUS=) names a schedule of its pods whose checkpoints fail, and clears.</summary>
    [Fact]
    public async Task The_schedules_health_entry_names_a_failing_schedule_of_this_nodes_pods()
    {
        await SeedDeploymentPodAsync("web", "abcde", "n1", "app");
        await SeedDeploymentPodAsync("other", "fghij", "n2", "app"); // another node's: not counted here
        var manager = new ControllerManager(new ControllerManagerOptions { Kube = _kube, Events = _events, Time = _time, Loggers = NullLoggerFactory.Instance });
        ScheduleReconciler.SetUp(manager, "n1");
        var health = new HealthRegistry(_time);
        manager.AddRunnable("schedule health", new ScheduleHealth(manager.Informers.For(CrscResources.CheckpointSchedules),
            manager.Informers.PodsOnNode("n1"), health).RunAsync);
        _running.Add(manager.RunAsync(_stop.Token));
        await CreateScheduleAsync("web", ScheduleTargetKind.Deployment, "web", interval: "1m");
        await CreateScheduleAsync("other", ScheduleTargetKind.Deployment, "other", interval: "1m");
        HealthEntry? Entry() => health.Snapshot().SingleOrDefault(e => e.Component == ScheduleHealth.Component);
        await Eventually.TrueAsync(() => Entry()?.Message == "1 on this node's pods, none failing", "healthy entry");
        Assert.Equal(HealthStatus.Healthy, Entry()!.Status);

        await Clock.AdvanceUntilAsync(_time, () => Checkpoints().Count == 1, TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(2), "a checkpoint");
        await Eventually.TrueAsync(() => StoredSchedule("web").Status?.LastCheckpointName == Checkpoints()[0].Metadata.Name, "run recorded");
        await FinishNewestAsync(ContainerCheckpointPhase.Failed, RuntimeRefusal);

        await Eventually.TrueAsync(() => Entry()?.Status == HealthStatus.Degraded, "the entry turns degraded");
        Assert.StartsWith($"1 of 1 failing: {Ns}/web: ", Entry()!.Message);
        Assert.Contains(RuntimeRefusal, Entry()!.Message);
    }

    /// <summary>
    /// A schedule asking <c>replicate: Registry</c> of a node without a registry still runs (its checkpoints stay in the
    /// node's store), and says so: Replication=False, NoRegistry, naming the node and the key, with one Warning Event; a
    /// node that replicates says True. A schedule asking nothing has no such condition.
    /// </summary>
    [Fact]
    public async Task Replicate_Registry_without_a_registry_is_a_condition_and_one_warning_and_the_schedule_still_runs()
    {
        await SeedDeploymentPodAsync("cart", "a1", "n1", "cart");
        await CreateScheduleAsync("cart", ScheduleTargetKind.Deployment, "cart", replicate: CheckpointReplication.Registry);
        await CreateScheduleAsync("plain", ScheduleTargetKind.Deployment, "cart");
        var agent = await StartAgentAsync();

        await agent.ReconcileAsync("cart");
        await agent.ReconcileAsync("plain");

        var status = _schedulesApi.Stored(Ns, "cart")!.Status!;
        var replication = status.FindCondition(ScheduleReconciler.ConditionReplication);
        Assert.NotNull(replication);
        Assert.Equal(ConditionStatus.False, replication.Status);
        Assert.Equal(ScheduleReconciler.ReasonNoRegistry, replication.Reason);
        Assert.Contains("n1", replication.Message);
        Assert.Contains("images.registry", replication.Message);
        Assert.True(status.IsConditionTrue(ConditionTypes.Ready)); // it runs all the same
        Assert.Null(_schedulesApi.Stored(Ns, "plain")!.Status!.FindCondition(ScheduleReconciler.ConditionReplication));

        _time.Advance(TimeSpan.FromMinutes(20)); // past the first slot (10m and its jitter)
        await agent.ReconcileAsync("cart");
        Assert.NotEmpty(_ckptApi.AllStored()); // its checkpoints are taken
        var warning = Assert.Single(_events.Events, e => e.Reason == ScheduleReconciler.ReasonNoRegistry);
        Assert.Equal(("cart", "Warning"), (warning.Name, warning.Type));

        // the node gets a registry that replicates
        var replicating = await StartAgentAsync(registry: CheckpointRegistryMode.Replicate);
        _time.Advance(TimeSpan.FromMinutes(10));
        await replicating.ReconcileAsync("cart");
        replication = _schedulesApi.Stored(Ns, "cart")!.Status!.FindCondition(ScheduleReconciler.ConditionReplication);
        Assert.Equal((ConditionStatus.True, ScheduleReconciler.ReasonReplicating), (replication!.Status, replication.Reason));
        Assert.Single(_events.Events, e => e.Reason == ScheduleReconciler.ReasonNoRegistry);

        // a registry that every image is published to: the schedule is satisfied as it is
        var publishing = await StartAgentAsync(registry: CheckpointRegistryMode.Publish);
        _time.Advance(TimeSpan.FromMinutes(10));
        await publishing.ReconcileAsync("cart");
        replication = _schedulesApi.Stored(Ns, "cart")!.Status!.FindCondition(ScheduleReconciler.ConditionReplication);
        Assert.Equal((ConditionStatus.True, ScheduleReconciler.ReasonPublishedToRegistry), (replication!.Status, replication.Reason));
    }
}

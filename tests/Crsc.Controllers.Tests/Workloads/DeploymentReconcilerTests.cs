using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Controllers.Workloads;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Workloads;

public sealed class DeploymentReconcilerTests : IAsyncLifetime
{
    private const string Ns = "shop";
    private readonly ManualTimeProvider _time = new();
    private readonly FakeKube _kube;
    private readonly FakeResourceClient<Deployment> _deploymentsApi;
    private readonly FakeResourceClient<CheckpointSchedule> _schedulesApi;
    private readonly RecordingEventRecorder _events = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _running = [];
    private readonly Informer<Deployment> _deployments;
    private readonly Informer<CheckpointSchedule> _schedules;
    private readonly DeploymentReconciler _reconciler;

    public DeploymentReconcilerTests()
    {
        _kube = new FakeKube(_time);
        _deploymentsApi = _kube.For(Resources.Deployments);
        _schedulesApi = _kube.For(CrscResources.CheckpointSchedules);
        _deployments = new Informer<Deployment>(_deploymentsApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance);
        _schedules = new Informer<CheckpointSchedule>(_schedulesApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance);
        _reconciler = new DeploymentReconciler(_kube, _deployments, _schedules, _events, _time, NullLogger.Instance);
        _running.Add(_deployments.RunAsync(_stop.Token));
        _running.Add(_schedules.RunAsync(_stop.Token));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit 2 runs IAsyncLifetime.DisposeAsync on a test class, never IAsyncDisposable's: cleanup must be here
    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running);
        _stop.Dispose();
    }

    /// <summary>Reconciles the Deployment once the caches show what is stored.</summary>
    private async Task<ReconcileResult> ReconcileAsync(string name = "web")
    {
        await Eventually.TrueAsync(() =>
            Keys(_deployments.List()).SequenceEqual(Keys(_deploymentsApi.AllStored()))
            && Keys(_schedules.List()).SequenceEqual(Keys(_schedulesApi.AllStored())), "caches show what is stored");
        return await _reconciler.ReconcileAsync(new ObjectKey(Ns, name), CancellationToken.None);
    }

    private static IEnumerable<string> Keys(IEnumerable<IKubernetesObject> objects) =>
        objects.Select(o => $"{o.Metadata.Name}@{o.Metadata.ResourceVersion}").Order(StringComparer.Ordinal);

    private async Task<Deployment> CreateDeploymentAsync(string name = "web", params (string Key, string Value)[] annotations)
    {
        var d = new Deployment { Metadata = new ObjectMeta { Namespace = Ns, Name = name } };
        if (annotations.Length > 0) d.Metadata.Annotations = annotations.ToDictionary(a => a.Key, a => a.Value);
        return await _deploymentsApi.SeedAsync(d, CancellationToken.None);
    }

    private async Task AnnotateAsync(string name, params (string Key, string? Value)[] changes)
    {
        var d = _deploymentsApi.Stored(Ns, name)!;
        d.Metadata.Annotations ??= [];
        foreach (var (key, value) in changes)
        {
            if (value is null) d.Metadata.Annotations.Remove(key);
            else d.Metadata.Annotations[key] = value;
        }
        await _deploymentsApi.UpdateAsync(d, CancellationToken.None);
    }

    private static (string, string) Managed => (Annotations.CheckpointRestore, "true");
    private static (string, string) Interval(string value) => (Annotations.CheckpointInterval, value);
    private static (string, string) Replicate(string value) => (Annotations.CheckpointReplicate, value);

    private CheckpointSchedule? Schedule(string name = "web") => _schedulesApi.Stored(Ns, name);

    [Fact]
    public async Task An_annotated_deployment_gets_a_schedule_it_owns()
    {
        var d = await CreateDeploymentAsync("web", Managed);

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        var s = Schedule()!;
        Assert.Equal((ScheduleTargetKind.Deployment, "web"), (s.Spec.Target.Kind, s.Spec.Target.Name));
        Assert.Equal("10m", s.Spec.Interval);
        Assert.Null(s.Spec.Cron);
        Assert.Equal(RetentionPolicy.DefaultKeepLast, s.Spec.Retention!.KeepLast);
        Assert.False(s.Spec.Suspend);
        Assert.Empty(s.Spec.Validate());
        var owner = Assert.Single(s.Metadata.OwnerReferences!);
        Assert.Equal(("apps/v1", "Deployment", "web", d.Metadata.Uid, true, true),
            (owner.ApiVersion, owner.Kind, owner.Name, owner.Uid, owner.Controller, owner.BlockOwnerDeletion));
        Assert.Contains(_events.Events, e => e.Kind == "Deployment" && e.Name == "web" && e.Reason == "ScheduleCreated");

        // level-triggered: nothing more to do
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());
        Assert.Equal(1, _schedulesApi.CallCount("create"));
        Assert.Equal(0, _schedulesApi.CallCount("update"));
    }

    [Theory]
    [InlineData("5m", "5m")]
    [InlineData("90", "1m30s")] // plain seconds
    [InlineData("1h30m", "1h30m")]
    [InlineData("1.5h", "1h30m")]
    [InlineData("10s", "10s")] // the minimum
    [InlineData(" 2m ", "2m")]
    public async Task The_interval_annotation_sets_the_interval(string annotation, string interval)
    {
        await CreateDeploymentAsync("web", Managed, Interval(annotation));
        await ReconcileAsync();
        Assert.Equal(interval, Schedule()!.Spec.Interval);
    }

    [Fact]
    public async Task Changing_the_annotation_updates_the_schedule_and_keeps_what_users_tuned()
    {
        await CreateDeploymentAsync("web", Managed, Interval("5m"));
        await ReconcileAsync();
        var tuned = Schedule()!;
        tuned.Spec.Retention = new RetentionPolicy { KeepLast = 12, MaxBytes = 1 << 30 };
        tuned.Spec.Containers = ["app"];
        await _schedulesApi.UpdateAsync(tuned, CancellationToken.None);

        await AnnotateAsync("web", Interval("1h"));
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        var s = Schedule()!;
        Assert.Equal("1h", s.Spec.Interval);
        Assert.Equal(12, s.Spec.Retention!.KeepLast);
        Assert.Equal(["app"], s.Spec.Containers!);
        Assert.Contains(_events.Events, e => e.Reason == "ScheduleUpdated" && e.Message.Contains("5m -> 1h"));

        // removing the interval annotation is the default again
        await AnnotateAsync("web", (Annotations.CheckpointInterval, null));
        await ReconcileAsync();
        Assert.Equal("10m", Schedule()!.Spec.Interval);
    }

    [Fact]
    public async Task A_users_edit_landing_just_before_the_update_is_kept_and_the_update_still_made()
    {
        await CreateDeploymentAsync("web", Managed, Interval("5m"));
        await ReconcileAsync();
        await AnnotateAsync("web", Interval("1h"));
        var once = true;
        _schedulesApi.BeforeCall = (verb, _) =>
        {
            if (verb != "update" || !once) return;
            once = false;
            // a real 409: the user tunes retention after the reconciler read the schedule from its cache
            _schedulesApi.PatchAsync(Ns, "web", Crsc.Controllers.Kubernetes.PatchType.Merge,
                """{"spec":{"retention":{"keepLast":12}}}""", CancellationToken.None).GetAwaiter().GetResult();
        };

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        var s = Schedule()!;
        Assert.Equal("1h", s.Spec.Interval);
        Assert.Equal(12, s.Spec.Retention!.KeepLast);
        Assert.Equal(2, _schedulesApi.CallCount("update"));
        Assert.Single(_events.Events, e => e.Reason == "ScheduleUpdated" && e.Message.Contains("5m -> 1h"));
    }

    [Theory]
    [InlineData(null)] // annotation removed
    [InlineData("false")]
    [InlineData("True")] // only exactly "true" manages
    public async Task Unmanaging_deletes_the_schedule(string? value)
    {
        await CreateDeploymentAsync("web", Managed);
        await ReconcileAsync();
        Assert.NotNull(Schedule());

        await AnnotateAsync("web", (Annotations.CheckpointRestore, value));
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        Assert.Null(Schedule());
        Assert.Contains(_events.Events, e => e.Reason == "ScheduleDeleted" && e.Name == "web");
    }

    [Theory]
    [InlineData("abc", "'abc' is not a duration")]
    [InlineData("0", "'0' is shorter than the minimum of 10s")]
    [InlineData("-5m", "'-5m' is not a duration")]
    [InlineData("5s", "'5s' is shorter than the minimum of 10s")]
    [InlineData("500ms", "'500ms' is shorter than the minimum of 10s")]
    [InlineData("9000h", "'9000h' is longer than the maximum")]
    [InlineData("", "'' is not a duration")]
    public async Task A_bad_interval_creates_nothing_and_says_so(string value, string message)
    {
        await CreateDeploymentAsync("web", Managed, Interval(value));

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        Assert.Null(Schedule());
        Assert.Equal(0, _schedulesApi.CallCount("create"));
        var e = Assert.Single(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInvalidAnnotation);
        Assert.Equal(("Deployment", "web", "Warning"), (e.Kind, e.Name, e.Type));
        Assert.Contains(message, e.Message);
        Assert.Contains(Annotations.CheckpointInterval, e.Message);
    }

    [Fact]
    public async Task A_bad_interval_leaves_an_existing_schedule_as_it_was_with_a_condition_until_fixed()
    {
        await CreateDeploymentAsync("web", Managed, Interval("5m"));
        await ReconcileAsync();

        await AnnotateAsync("web", Interval("abc"));
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        var s = Schedule()!;
        Assert.Equal("5m", s.Spec.Interval); // the last good value
        Assert.Equal(0, _schedulesApi.CallCount("update"));
        var degraded = s.Status!.FindCondition(ConditionTypes.Degraded)!;
        Assert.Equal((ConditionStatus.True, DeploymentReconciler.ReasonInvalidAnnotation), (degraded.Status, degraded.Reason));
        Assert.Contains("'abc'", degraded.Message);
        Assert.Contains("keeps interval 5m", degraded.Message);
        Assert.Contains(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInvalidAnnotation && e.Message.Contains("'abc'"));

        // reconciling the same bad value again writes nothing new
        var statusWrites = _schedulesApi.CallCount("updateStatus");
        await ReconcileAsync();
        Assert.Equal(statusWrites, _schedulesApi.CallCount("updateStatus"));

        await AnnotateAsync("web", Interval("2m"));
        await ReconcileAsync();
        s = Schedule()!;
        Assert.Equal("2m", s.Spec.Interval);
        Assert.Null(s.Status?.FindCondition(ConditionTypes.Degraded));
    }

    [Theory]
    [InlineData("registry", CheckpointReplication.Registry)]
    [InlineData("Registry", CheckpointReplication.Registry)]
    [InlineData("none", CheckpointReplication.None)]
    [InlineData("None", CheckpointReplication.None)]
    public async Task The_replicate_annotation_sets_replicate_on_a_new_schedule(string annotation, CheckpointReplication replicate)
    {
        // the schedule made without the annotation says None: each row sets the opposite first, so that it cannot pass by default
        await CreateDeploymentAsync("other", Managed, Replicate(replicate == CheckpointReplication.None ? "registry" : "none"));
        await ReconcileAsync("other");
        Assert.NotEqual(replicate, Schedule("other")!.Spec.Replicate);

        await CreateDeploymentAsync("web", Managed, Replicate(annotation));
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        var s = Schedule()!;
        Assert.Equal(replicate, s.Spec.Replicate);
        Assert.Empty(s.Spec.Validate());
        Assert.DoesNotContain(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInvalidAnnotation);
    }

    [Fact]
    public async Task Without_the_replicate_annotation_a_new_schedule_is_not_replicated()
    {
        await CreateDeploymentAsync("web", Managed);
        await ReconcileAsync();
        Assert.Equal(CheckpointReplication.None, Schedule()!.Spec.Replicate);
    }

    [Fact]
    public async Task Changing_the_replicate_annotation_updates_the_schedule()
    {
        await CreateDeploymentAsync("web", Managed, Interval("5m"), Replicate("registry"));
        await ReconcileAsync();
        Assert.Equal(CheckpointReplication.Registry, Schedule()!.Spec.Replicate);
        Assert.Contains(_events.Events, e => e.Reason == "ScheduleCreated" && e.Message.Contains("copied to the registry"));

        await AnnotateAsync("web", Replicate("none"));
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        var s = Schedule()!;
        Assert.Equal(CheckpointReplication.None, s.Spec.Replicate);
        Assert.Equal("5m", s.Spec.Interval);
        Assert.Equal(1, _schedulesApi.CallCount("update"));
        var e = Assert.Single(_events.Events, e => e.Reason == "ScheduleUpdated");
        Assert.Equal("CheckpointSchedule web: replicate Registry -> None", e.Message);

        // level-triggered: nothing more to do
        await ReconcileAsync();
        Assert.Equal(1, _schedulesApi.CallCount("update"));

        // and back, with the interval in the same change
        await AnnotateAsync("web", Replicate("Registry"), Interval("1h"));
        await ReconcileAsync();
        s = Schedule()!;
        Assert.Equal((CheckpointReplication.Registry, "1h"), (s.Spec.Replicate, s.Spec.Interval));
        Assert.Contains(_events.Events, e => e.Reason == "ScheduleUpdated" && e.Message.EndsWith("interval 5m -> 1h, replicate None -> Registry", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_the_replicate_annotation_a_users_replicate_on_the_schedule_is_kept()
    {
        await CreateDeploymentAsync("web", Managed, Interval("5m"), Replicate("registry"));
        await ReconcileAsync();
        Assert.Equal(CheckpointReplication.Registry, Schedule()!.Spec.Replicate);

        // the annotation goes, and the schedule is updated for the interval: replicate is not reset to None
        await AnnotateAsync("web", (Annotations.CheckpointReplicate, null), Interval("1h"));
        await ReconcileAsync();
        var s = Schedule()!;
        Assert.Equal((CheckpointReplication.Registry, "1h"), (s.Spec.Replicate, s.Spec.Interval));

        // a user sets it on the schedule: the Deployment asks nothing of it, so it stays
        s.Spec.Replicate = CheckpointReplication.None;
        await _schedulesApi.UpdateAsync(s, CancellationToken.None);
        var updates = _schedulesApi.CallCount("update");
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());
        Assert.Equal(CheckpointReplication.None, Schedule()!.Spec.Replicate);
        Assert.Equal(updates, _schedulesApi.CallCount("update"));
    }

    [Theory]
    [InlineData("yes")]
    [InlineData("REGISTRY")]
    [InlineData(" registry")]
    [InlineData("true")]
    [InlineData("")]
    public async Task A_bad_replicate_value_creates_nothing_and_says_so(string value)
    {
        await CreateDeploymentAsync("web", Managed, Replicate(value));

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        Assert.Null(Schedule());
        Assert.Equal(0, _schedulesApi.CallCount("create"));
        var e = Assert.Single(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInvalidAnnotation);
        Assert.Equal(("Deployment", "web", "Warning"), (e.Kind, e.Name, e.Type));
        Assert.Contains($"annotation {Annotations.CheckpointReplicate}: '{value}' is not one of registry, none (or Registry, None)", e.Message);
        Assert.Contains("no CheckpointSchedule is created", e.Message);
    }

    [Fact]
    public async Task A_bad_replicate_value_and_a_bad_interval_are_said_together()
    {
        await CreateDeploymentAsync("web", Managed, Interval("abc"), Replicate("s3"));
        await ReconcileAsync();

        Assert.Null(Schedule());
        var e = Assert.Single(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInvalidAnnotation);
        Assert.Contains($"{Annotations.CheckpointInterval}: 'abc'", e.Message);
        Assert.Contains($"{Annotations.CheckpointReplicate}: 's3'", e.Message);
    }

    [Fact]
    public async Task A_bad_replicate_value_leaves_an_existing_schedule_as_it_was_with_a_condition_until_fixed()
    {
        await CreateDeploymentAsync("web", Managed, Interval("5m"), Replicate("registry"));
        await ReconcileAsync();

        // a bad replicate value with a new interval: neither is applied
        await AnnotateAsync("web", Replicate("s3"), Interval("1h"));
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        var s = Schedule()!;
        Assert.Equal((CheckpointReplication.Registry, "5m"), (s.Spec.Replicate, s.Spec.Interval));
        Assert.Equal(0, _schedulesApi.CallCount("update"));
        var degraded = s.Status!.FindCondition(ConditionTypes.Degraded)!;
        Assert.Equal((ConditionStatus.True, DeploymentReconciler.ReasonInvalidAnnotation), (degraded.Status, degraded.Reason));
        Assert.Contains($"{Annotations.CheckpointReplicate}: 's3' is not one of registry, none", degraded.Message);
        Assert.Contains("keeps interval 5m and replicate Registry", degraded.Message);
        var e = Assert.Single(_events.Events, e => e.Reason == DeploymentReconciler.ReasonInvalidAnnotation);
        Assert.Equal(("Deployment", "web", "Warning"), (e.Kind, e.Name, e.Type));
        Assert.Contains("'s3'", e.Message);

        await AnnotateAsync("web", Replicate("none"));
        await ReconcileAsync();
        s = Schedule()!;
        Assert.Equal((CheckpointReplication.None, "1h"), (s.Spec.Replicate, s.Spec.Interval));
        Assert.Null(s.Status?.FindCondition(ConditionTypes.Degraded));
    }

    [Fact]
    public void A_bad_replicate_value_makes_the_deployment_unmanaged_like_a_bad_interval()
    {
        Deployment D(string replicate) => new()
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns, Name = "web",
                Annotations = new() { [Annotations.CheckpointRestore] = "true", [Annotations.CheckpointReplicate] = replicate },
            },
        };
        Assert.Equal(new ManagedWorkload(true, null), ManagedWorkload.Read(D("registry")));
        var bad = ManagedWorkload.Read(D("s3"));
        Assert.False(bad.Managed);
        Assert.Contains($"{Annotations.CheckpointReplicate}: 's3'", bad.Problem);
    }

    [Fact]
    public async Task A_users_own_schedule_of_that_name_is_not_touched()
    {
        var mine = await _schedulesApi.SeedAsync(new CheckpointSchedule
        {
            Metadata = new ObjectMeta { Namespace = Ns, Name = "web" },
            Spec = new CheckpointScheduleSpec
            {
                Target = new ScheduleTarget { Kind = ScheduleTargetKind.Deployment, Name = "web" },
                Cron = "@daily",
            },
        }, CancellationToken.None);
        await CreateDeploymentAsync("web", Managed, Interval("5m"));

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());

        Assert.Equal(mine.Metadata.ResourceVersion, Schedule()!.Metadata.ResourceVersion);
        var e = Assert.Single(_events.Events, e => e.Reason == DeploymentReconciler.ReasonScheduleNotOwned);
        Assert.Equal(("web", "Warning"), (e.Name, e.Type));

        // nor deleted when the Deployment stops being managed
        await AnnotateAsync("web", (Annotations.CheckpointRestore, null));
        await ReconcileAsync();
        Assert.Equal(mine.Metadata.ResourceVersion, Schedule()!.Metadata.ResourceVersion);
        Assert.Equal(0, _schedulesApi.CallCount("delete"));
    }

    [Fact]
    public async Task A_deleted_deployment_is_left_to_garbage_collection()
    {
        await CreateDeploymentAsync("web", Managed);
        await ReconcileAsync();
        await _deploymentsApi.DeleteAsync(Ns, "web", null, CancellationToken.None);

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());
        Assert.NotNull(Schedule()); // the API's garbage collector removes it by its ownerReference
        Assert.Equal(0, _schedulesApi.CallCount("delete"));
    }

    [Fact]
    public async Task A_schedule_left_by_an_earlier_deployment_of_the_same_name_is_replaced()
    {
        await CreateDeploymentAsync("web", Managed);
        await ReconcileAsync();
        var old = Schedule()!;
        await _deploymentsApi.DeleteAsync(Ns, "web", null, CancellationToken.None);
        var recreated = await CreateDeploymentAsync("web", Managed);

        await ReconcileAsync(); // deletes the stale one
        Assert.Null(Schedule());
        await ReconcileAsync(); // makes its own
        var s = Schedule()!;
        Assert.NotEqual(old.Metadata.Uid, s.Metadata.Uid);
        Assert.Equal(recreated.Metadata.Uid, Assert.Single(s.Metadata.OwnerReferences!).Uid);
    }

    [Fact]
    public void Deployment_updates_that_change_nothing_the_reconciler_reads_are_not_queued()
    {
        var queued = new List<ObjectKey>();
        var handler = DeploymentReconciler.DeploymentEvents(queued.Add);
        Deployment D(string? restore, string? interval, int ready = 1)
        {
            var d = new Deployment { Metadata = new ObjectMeta { Namespace = Ns, Name = "web", Uid = "u1", Annotations = [] } };
            if (restore is not null) d.Metadata.Annotations[Annotations.CheckpointRestore] = restore;
            if (interval is not null) d.Metadata.Annotations[Annotations.CheckpointInterval] = interval;
            d.Status = new DeploymentStatus { ReadyReplicas = ready };
            return d;
        }

        handler.OnUpdate(D("true", "5m", ready: 1), D("true", "5m", ready: 2)); // a replica became ready
        Assert.Empty(queued);

        handler.OnUpdate(D("true", "5m"), D("true", "6m"));
        handler.OnUpdate(D("true", "5m"), D(null, "5m"));
        var same = D("true", "5m");
        handler.OnUpdate(same, same); // a resync
        handler.OnAdd(same);
        handler.OnDelete(same);
        Assert.Equal(5, queued.Count);
        Assert.All(queued, k => Assert.Equal(new ObjectKey(Ns, "web"), k));
    }

    [Fact]
    public void A_changed_replicate_annotation_is_queued()
    {
        var queued = new List<ObjectKey>();
        var handler = DeploymentReconciler.DeploymentEvents(queued.Add);
        Deployment D(string? replicate)
        {
            var d = new Deployment { Metadata = new ObjectMeta { Namespace = Ns, Name = "web", Uid = "u1", Annotations = [] } };
            d.Metadata.Annotations[Annotations.CheckpointRestore] = "true";
            if (replicate is not null) d.Metadata.Annotations[Annotations.CheckpointReplicate] = replicate;
            return d;
        }

        handler.OnUpdate(D("registry"), D("registry"));
        Assert.Empty(queued);
        handler.OnUpdate(D("registry"), D("none"));
        handler.OnUpdate(D(null), D("registry"));
        handler.OnUpdate(D("registry"), D(null));
        Assert.Equal(3, queued.Count);
    }

    [Fact]
    public async Task The_controller_reconciles_on_deployment_and_schedule_changes()
    {
        var manager = new ControllerManager(new ControllerManagerOptions
        {
            Kube = _kube, Events = _events, Time = TimeProvider.System, Loggers = NullLoggerFactory.Instance,
        });
        DeploymentReconciler.SetUp(manager);
        Assert.Equal(["informer/deployments", "informer/checkpointschedules"], manager.Informers.All.Select(i => i.Name));
        Assert.All(manager.Informers.All, i => Assert.True(manager.RunsOnlyWhileLeading(i), $"{i.Name} is the leader's only"));
        _running.Add(manager.RunAsync(_stop.Token));

        await CreateDeploymentAsync("web", Managed, Interval("5m"));
        await Eventually.TrueAsync(() => Schedule()?.Spec.Interval == "5m", "schedule created");

        // a user deletes the schedule: the Deployment still asks for one, so it comes back
        var first = Schedule()!.Metadata.Uid;
        await _schedulesApi.DeleteAsync(Ns, "web", null, CancellationToken.None);
        await Eventually.TrueAsync(() => Schedule() is { } s && s.Metadata.Uid != first, "schedule made again");

        await AnnotateAsync("web", (Annotations.CheckpointRestore, "no"));
        await Eventually.TrueAsync(() => Schedule() is null, "schedule deleted");
    }
}

using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Controllers.Workloads;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Workloads;

public sealed class PodFailureReconcilerTests : IAsyncLifetime
{
    private const string Ns = "shop";
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly ManualTimeProvider _time = new(Start);
    private readonly FakeKube _kube;
    private readonly FakeResourceClient<Pod> _podsApi;
    private readonly FakeResourceClient<ReplicaSet> _rsApi;
    private readonly FakeResourceClient<Deployment> _deployApi;
    private readonly FakeResourceClient<Restore> _restoresApi;
    private readonly RecordingEventRecorder _events = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _running = [];
    private Detector? _detector;

    public PodFailureReconcilerTests()
    {
        _kube = new FakeKube(_time);
        _podsApi = _kube.For(Resources.Pods);
        _rsApi = _kube.For(Resources.ReplicaSets);
        _deployApi = _kube.For(Resources.Deployments);
        _restoresApi = _kube.For(CrscResources.Restores);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit 2 runs IAsyncLifetime.DisposeAsync on a test class, never IAsyncDisposable's: cleanup must be here
    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_running);
        _stop.Dispose();
    }

    // ---- the reconciler under test: its own informers over the fake API; a new one is a new leader ----

    private sealed record Detector(PodFailureReconcilerTests T, PodFailureReconciler Reconciler, Informer<Pod> Pods,
        Informer<ReplicaSet> ReplicaSets, Informer<Deployment> Deployments, Informer<Restore> Restores)
    {
        /// <summary>Reconciles the Deployment once every cache shows the API as it is now (level-triggered, from the caches).</summary>
        public async Task<ReconcileResult> ReconcileAsync(string deployment)
        {
            await Eventually.TrueAsync(() => Synced(Pods, T._podsApi) && Synced(ReplicaSets, T._rsApi)
                                             && Synced(Deployments, T._deployApi) && Synced(Restores, T._restoresApi),
                "caches show the API as stored");
            return await Reconciler.ReconcileAsync(new ObjectKey(Ns, deployment), CancellationToken.None);
        }

        private static bool Synced<T>(Informer<T> cache, FakeResourceClient<T> api) where T : class, IKubernetesObject
        {
            var stored = api.AllStored();
            return stored.Count == cache.Count
                   && stored.All(o => cache.Get(o.Metadata.Key)?.Metadata.ResourceVersion == o.Metadata.ResourceVersion);
        }
    }

    private async Task<Detector> StartDetectorAsync(PodFailureOptions? options = null)
    {
        Informer<T> Informer<T>(FakeResourceClient<T> api) where T : class, IKubernetesObject
        {
            var i = new Informer<T>(api, new InformerOptions(), TimeProvider.System, NullLogger.Instance);
            _running.Add(i.RunAsync(_stop.Token));
            return i;
        }
        var pods = Informer(_podsApi);
        var rs = Informer(_rsApi);
        var deployments = Informer(_deployApi);
        var restores = Informer(_restoresApi);
        foreach (var i in new IInformer[] { pods, rs, deployments, restores }) await i.WaitForSyncAsync(_stop.Token);
        var reconciler = new PodFailureReconciler(_kube, pods, rs, deployments, restores, _events,
            options ?? new PodFailureOptions(), _time, NullLogger.Instance);
        return _detector = new Detector(this, reconciler, pods, rs, deployments, restores);
    }

    private Task<ReconcileResult> ReconcileAsync(string deployment = "web") => _detector!.ReconcileAsync(deployment);

    // ---- the world: a Deployment, its ReplicaSet and pods ----

    private async Task<Deployment> SeedDeploymentAsync(string name = "web", int replicas = 1,
        Dictionary<string, string>? annotations = null, bool liveness = false)
    {
        var d = await _deployApi.SeedAsync(new Deployment
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns,
                Name = name,
                Annotations = annotations ?? new() { [Annotations.CheckpointRestore] = "true" },
            },
        }, CancellationToken.None);
        var rs = await _rsApi.SeedAsync(new ReplicaSet
        {
            Metadata = new ObjectMeta
            {
                Namespace = Ns,
                Name = $"{name}-7d9f8b6c5",
                OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = name, Uid = d.Metadata.Uid!, Controller = true }],
            },
        }, CancellationToken.None);
        for (var i = 0; i < replicas; i++)
            await _podsApi.SeedAsync(NewPod($"{name}-7d9f8b6c5-p{i}", rs.Metadata.Name!, "ReplicaSet", rs.Metadata.Uid!, liveness), CancellationToken.None);
        return d;
    }

    private Pod NewPod(string name, string owner, string ownerKind, string ownerUid, bool liveness = false) => new()
    {
        Metadata = new ObjectMeta
        {
            Namespace = Ns,
            Name = name,
            Labels = new() { [PodOwnerWorkloadResolver.PodTemplateHashLabel] = "7d9f8b6c5" },
            OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = ownerKind, Name = owner, Uid = ownerUid, Controller = true }],
        },
        Spec = new PodSpec
        {
            NodeName = "n1",
            Containers =
            [
                new Container
                {
                    Name = "app",
                    Image = "registry.local/app:1",
                    LivenessProbe = liveness ? JsonDocument.Parse("""{"httpGet":{"path":"/healthz","port":8080}}""").RootElement : null,
                },
                new Container { Name = PodFailureOptions.InterceptorSidecar, Image = "registry.local/crsc:1" },
            ],
        },
        Status = new PodStatus
        {
            Phase = "Running",
            ContainerStatuses =
            [
                Running("app", _time.GetUtcNow()),
                Running(PodFailureOptions.InterceptorSidecar, _time.GetUtcNow()),
            ],
        },
    };

    private static ContainerStatus Running(string name, DateTimeOffset since, int restarts = 0, bool ready = true) => new()
    {
        Name = name,
        Ready = ready,
        Started = true,
        RestartCount = restarts,
        ContainerID = $"containerd://{name}-{restarts}",
        State = new ContainerState { Running = new ContainerStateRunning { StartedAt = since } },
    };

    private async Task UpdatePodAsync(string pod, Action<Pod> change)
    {
        var p = _podsApi.Stored(Ns, pod)!;
        change(p);
        await _podsApi.SeedAsync(p, CancellationToken.None); // the kubelet's write: spec and status
    }

    private ContainerStatus App(Pod p) => p.Status!.ContainerStatuses!.Single(c => c.Name == "app");

    /// <summary>The app container exited with <paramref name="exitCode"/> now and the kubelet started it again.</summary>
    private Task CrashAndRestartAsync(string pod, int exitCode, string reason = "Error") => UpdatePodAsync(pod, p =>
    {
        var s = App(p);
        var now = _time.GetUtcNow();
        var restarted = Running("app", now, s.RestartCount + 1);
        restarted.LastState = new ContainerState
        {
            Terminated = new ContainerStateTerminated { ExitCode = exitCode, Reason = reason, StartedAt = now.AddMinutes(-1), FinishedAt = now },
        };
        p.Status!.ContainerStatuses![p.Status.ContainerStatuses.IndexOf(s)] = restarted;
    });

    private async Task SetRestorePhaseAsync(string name, RestorePhase phase, string? pod = null, int? restoredRestartCount = null)
    {
        var r = _restoresApi.Stored(Ns, name)!;
        r.Status ??= new RestoreStatus();
        r.Status.Phase = phase;
        r.Status.PodName ??= pod;
        r.Status.RestoredRestartCount = restoredRestartCount;
        if (phase is RestorePhase.Restored or RestorePhase.Failed or RestorePhase.FellBack) r.Status.CompletedAt = _time.GetUtcNow();
        else r.Status.StartedAt ??= _time.GetUtcNow();
        await _restoresApi.UpdateStatusAsync(r, CancellationToken.None);
    }

    private IReadOnlyList<Restore> Restores() => [.. _restoresApi.AllStored().OrderBy(r => r.Metadata.CreationTimestamp)];

    private List<(string Kind, string? Name, string Type, string Reason, string Message)> Events(string reason) =>
        [.. _events.Events.Where(e => e.Reason == reason)];

    private void Advance(TimeSpan by) => _time.Advance(by);

    // ---- each signal creates exactly one Restore ----

    [Fact]
    public async Task A_container_terminated_with_an_error_gets_one_restore_named_and_labelled_as_agreed()
    {
        var d = await SeedDeploymentAsync();
        await StartDetectorAsync();
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());
        Assert.Empty(Restores());

        Advance(TimeSpan.FromSeconds(10));
        var failedAt = _time.GetUtcNow();
        await UpdatePodAsync("web-7d9f8b6c5-p0", p =>
        {
            var s = App(p);
            s.Ready = false;
            s.State = new ContainerState { Terminated = new ContainerStateTerminated { ExitCode = 1, Reason = "Error", FinishedAt = failedAt } };
        });
        await ReconcileAsync();

        var r = Assert.Single(Restores());
        Assert.Equal("web-app-20260101000010", r.Metadata.Name);
        Assert.Equal(Ns, r.Metadata.Namespace);
        Assert.Equal("web", r.Metadata.Labels![Labels.Workload]);
        Assert.Equal("web-7d9f8b6c5-p0", r.Metadata.Annotations![Annotations.FailedPod]);
        Assert.Equal((RestoreTargetKind.Deployment, "web"), (r.Spec.Target.Kind, r.Spec.Target.Name));
        Assert.Equal("app", r.Spec.Container);
        Assert.Equal(RestoreFallback.ColdStart, r.Spec.Fallback);
        Assert.Equal(3, r.Spec.MaxAttempts);
        Assert.Null(r.Spec.CheckpointName);
        Assert.Empty(r.Spec.Validate());
        var owner = Assert.Single(r.Metadata.OwnerReferences!);
        Assert.Equal(("Deployment", "web", d.Metadata.Uid), (owner.Kind, owner.Name, owner.Uid));
        var created = Assert.Single(Events(PodFailureReconciler.RestoreCreatedReason));
        Assert.Equal(("Deployment", "web", "Normal"), (created.Kind, created.Name, created.Type));
        Assert.Contains("terminated with exit code 1 (Error)", created.Message);
        Assert.Contains("web-app-20260101000010", created.Message);

        // the same incident seen again (later, and by reconciles the Restore's own events cause) is not a new one
        Advance(TimeSpan.FromSeconds(5));
        await ReconcileAsync();
        await ReconcileAsync();
        Assert.Single(Restores());
        Assert.Empty(Events(PodFailureReconciler.RestoreSuppressedReason));
    }

    [Fact]
    public async Task A_restart_count_that_grew_gets_one_restore_even_after_a_clean_exit()
    {
        await SeedDeploymentAsync();
        await StartDetectorAsync();
        await ReconcileAsync(); // restart count 0 seen

        Advance(TimeSpan.FromSeconds(30));
        await CrashAndRestartAsync("web-7d9f8b6c5-p0", exitCode: 0, reason: "Completed");
        await ReconcileAsync();

        var r = Assert.Single(Restores());
        Assert.Equal("web-app-20260101000030", r.Metadata.Name);
        Assert.Contains("restarted (restart count 0 → 1", Assert.Single(Events(PodFailureReconciler.RestoreCreatedReason)).Message);
        await ReconcileAsync();
        Assert.Single(Restores());
    }

    [Fact]
    public async Task CrashLoopBackOff_gets_one_restore()
    {
        await SeedDeploymentAsync();
        Advance(TimeSpan.FromSeconds(40));
        var lastExit = _time.GetUtcNow();
        await UpdatePodAsync("web-7d9f8b6c5-p0", p =>
        {
            var s = App(p);
            s.Ready = false;
            s.RestartCount = 4;
            s.State = new ContainerState { Waiting = new ContainerStateWaiting { Reason = "CrashLoopBackOff", Message = "back-off 40s restarting failed container" } };
            // it exits cleanly each time: only the waiting reason tells
            s.LastState = new ContainerState { Terminated = new ContainerStateTerminated { ExitCode = 0, Reason = "Completed", FinishedAt = lastExit } };
        });
        Advance(TimeSpan.FromSeconds(5));
        await StartDetectorAsync();
        await ReconcileAsync();

        var r = Assert.Single(Restores());
        Assert.Equal("web-app-20260101000040", r.Metadata.Name);
        Assert.Contains("CrashLoopBackOff", Assert.Single(Events(PodFailureReconciler.RestoreCreatedReason)).Message);
        Advance(TimeSpan.FromSeconds(5));
        await ReconcileAsync();
        Assert.Single(Restores());
    }

    [Fact]
    public async Task Not_ready_with_a_liveness_probe_for_longer_than_the_threshold_gets_one_restore()
    {
        await SeedDeploymentAsync(liveness: true);
        await SeedDeploymentAsync("noprobe"); // the same state without a liveness probe is not a failure
        await StartDetectorAsync();
        var unreadySince = _time.GetUtcNow();
        foreach (var pod in new[] { "web-7d9f8b6c5-p0", "noprobe-7d9f8b6c5-p0" })
            await UpdatePodAsync(pod, p =>
            {
                App(p).Ready = false;
                p.Status!.Conditions = [new PodCondition { Type = "ContainersReady", Status = "False", LastTransitionTime = unreadySince }];
            });

        Advance(TimeSpan.FromSeconds(10));
        var early = await ReconcileAsync();
        Assert.Empty(Restores());
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(20)), early); // looks again when the threshold passes

        Advance(TimeSpan.FromSeconds(21));
        await ReconcileAsync();
        var r = Assert.Single(Restores());
        Assert.Equal("web-app-20260101000030", r.Metadata.Name); // dated when the threshold passed
        Assert.Contains("liveness probe", Assert.Single(Events(PodFailureReconciler.RestoreCreatedReason)).Message);

        Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync("noprobe"));
        Assert.Single(Restores());
    }

    // ---- what is not a failure, or not crsc's ----

    [Fact]
    public async Task Pods_of_unmanaged_workloads_and_crsc_sidecar_are_ignored()
    {
        await SeedDeploymentAsync("plain", annotations: new() { ["team"] = "shop" });
        await SeedDeploymentAsync("off", annotations: new() { [Annotations.CheckpointRestore] = "false" });
        await SeedDeploymentAsync("web");
        // a StatefulSet's pod and a bare pod, failing
        await _podsApi.SeedAsync(NewPod("db-0", "db", "StatefulSet", "ss-1"), CancellationToken.None);
        var bare = NewPod("bare", "x", "ReplicaSet", "x");
        bare.Metadata.OwnerReferences = null;
        await _podsApi.SeedAsync(bare, CancellationToken.None);
        var detector = await StartDetectorAsync();
        await ReconcileAsync("plain");
        await ReconcileAsync("off");
        await ReconcileAsync("web");

        Advance(TimeSpan.FromSeconds(10));
        foreach (var pod in new[] { "plain-7d9f8b6c5-p0", "off-7d9f8b6c5-p0", "db-0", "bare" })
            await CrashAndRestartAsync(pod, exitCode: 1);
        // the managed Deployment's pod: only crsc's sidecar fails
        await UpdatePodAsync("web-7d9f8b6c5-p0", p =>
        {
            var s = p.Status!.ContainerStatuses!.Single(c => c.Name == PodFailureOptions.InterceptorSidecar);
            s.RestartCount = 3;
            s.State = new ContainerState { Waiting = new ContainerStateWaiting { Reason = "CrashLoopBackOff" } };
            s.LastState = new ContainerState { Terminated = new ContainerStateTerminated { ExitCode = 2, FinishedAt = _time.GetUtcNow() } };
        });
        foreach (var d in new[] { "plain", "off", "web", "db" }) await ReconcileAsync(d);

        Assert.Empty(Restores());
        Assert.Null(detector.Reconciler.WorkloadOf(_podsApi.Stored(Ns, "db-0")!));
        Assert.Null(detector.Reconciler.WorkloadOf(_podsApi.Stored(Ns, "bare")!));
        Assert.Equal(new ObjectKey(Ns, "web"), detector.Reconciler.WorkloadOf(_podsApi.Stored(Ns, "web-7d9f8b6c5-p0")!));
    }

    [Theory]
    [InlineData(Annotations.CheckpointRestore, "yes")]
    [InlineData(Annotations.CheckpointInterval, "abc")]
    [InlineData(Annotations.CheckpointInterval, "0s")]
    [InlineData(Annotations.CheckpointReplicate, "yes")]
    public async Task A_bad_annotation_on_the_Deployment_creates_nothing(string annotation, string value)
    {
        var annotations = new Dictionary<string, string> { [Annotations.CheckpointRestore] = "true", [annotation] = value };
        await SeedDeploymentAsync(annotations: annotations);
        await StartDetectorAsync();
        await ReconcileAsync();
        Advance(TimeSpan.FromSeconds(10));
        await CrashAndRestartAsync("web-7d9f8b6c5-p0", exitCode: 1);

        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());
        Assert.Empty(Restores());
        Assert.False(ManagedWorkload.Read(_deployApi.Stored(Ns, "web")!).Managed);
        Assert.Contains($"'{value}'", ManagedWorkload.Read(_deployApi.Stored(Ns, "web")!).Problem);

        // the same Deployment with good values is watched
        await _deployApi.PatchAsync(Ns, "web", PatchType.Merge,
            "{\"metadata\":{\"annotations\":{\"" + Annotations.CheckpointRestore + "\":\"true\",\"" + Annotations.CheckpointInterval + "\":\"5m\",\""
            + Annotations.CheckpointReplicate + "\":\"none\"}}}",
            CancellationToken.None);
        await ReconcileAsync();
        Assert.Single(Restores());
    }

    // ---- no storms ----

    [Fact]
    public async Task At_most_one_active_restore_per_workload_the_next_waits_with_a_warning()
    {
        await SeedDeploymentAsync(replicas: 2);
        await StartDetectorAsync();
        await ReconcileAsync();

        Advance(TimeSpan.FromSeconds(10));
        await CrashAndRestartAsync("web-7d9f8b6c5-p0", exitCode: 1);
        await ReconcileAsync();
        var first = Assert.Single(Restores()).Metadata.Name!;

        Advance(TimeSpan.FromSeconds(10));
        await SetRestorePhaseAsync(first, RestorePhase.Restoring, "web-7d9f8b6c5-p0");
        await CrashAndRestartAsync("web-7d9f8b6c5-p1", exitCode: 137, reason: "OOMKilled");
        Assert.Equal(ReconcileResult.Done, await ReconcileAsync());
        Assert.Single(Restores());
        var warning = Assert.Single(Events(PodFailureReconciler.RestoreSuppressedReason));
        Assert.Equal(("Deployment", "web", "Warning"), (warning.Kind, warning.Name, warning.Type));
        Assert.Contains("web-7d9f8b6c5-p1", warning.Message);
        Assert.Contains($"restore {first} of this workload is in progress", warning.Message);
        await ReconcileAsync();
        Assert.Single(Events(PodFailureReconciler.RestoreSuppressedReason)); // not repeated while nothing changes

        // the first one done and the backoff (1 min after it) over: the second pod's failure gets its own Restore
        Advance(TimeSpan.FromSeconds(5));
        await SetRestorePhaseAsync(first, RestorePhase.Restored);
        Advance(TimeSpan.FromSeconds(50));
        await ReconcileAsync();
        Assert.Equal(2, Restores().Count);
        var second = Restores()[1];
        Assert.Equal("web-app-20260101000020", second.Metadata.Name);
        Assert.Equal("web-7d9f8b6c5-p1", second.Metadata.Annotations![Annotations.FailedPod]);
    }

    [Fact]
    public async Task Backoff_doubles_between_incidents_and_a_cap_per_hour_holds_further_ones_with_warnings()
    {
        var options = new PodFailureOptions { MaxRestoresPerHour = 3 };
        await SeedDeploymentAsync();
        await StartDetectorAsync(options);
        await ReconcileAsync();
        const string pod = "web-7d9f8b6c5-p0";

        async Task<string> IncidentAsync()
        {
            await CrashAndRestartAsync(pod, exitCode: 1);
            await ReconcileAsync();
            return Restores()[^1].Metadata.Name!;
        }

        // 00:00:00 first incident: at once
        var r1 = await IncidentAsync();
        Assert.Single(Restores());
        Advance(TimeSpan.FromSeconds(5));
        await SetRestorePhaseAsync(r1, RestorePhase.Restored, pod);

        // 00:01:10 second: the 1 min backoff is over
        Advance(TimeSpan.FromSeconds(65));
        var r2 = await IncidentAsync();
        Assert.Equal(2, Restores().Count);
        Assert.Equal("web-app-20260101000110", r2);
        Advance(TimeSpan.FromSeconds(5));
        await SetRestorePhaseAsync(r2, RestorePhase.Restored, pod);

        // 00:02:20 third: the backoff is 2 min now (until 00:03:10)
        Advance(TimeSpan.FromSeconds(65));
        await CrashAndRestartAsync(pod, exitCode: 1);
        var held = await ReconcileAsync();
        Assert.Equal(2, Restores().Count);
        Assert.Equal(ReconcileResult.RequeueAfter(TimeSpan.FromSeconds(50)), held);
        var backoff = Assert.Single(Events(PodFailureReconciler.RestoreSuppressedReason));
        Assert.Equal("Warning", backoff.Type);
        Assert.Contains("backoff: 2 automatic restore(s) of this workload in a row", backoff.Message);
        Assert.Contains("the next restore may start at 2026-01-01T00:03:10Z", backoff.Message);

        // when the backoff is over, the incident held back is acted on
        Advance(TimeSpan.FromSeconds(50));
        await ReconcileAsync();
        Assert.Equal(3, Restores().Count);
        Assert.Equal("web-app-20260101000220", Restores()[2].Metadata.Name);
        Advance(TimeSpan.FromSeconds(5));
        await SetRestorePhaseAsync(Restores()[2].Metadata.Name!, RestorePhase.FellBack, pod);

        // 00:13:15 a crash loop: three in the hour already, so it waits for the first to leave the hour (01:00:00)
        Advance(TimeSpan.FromMinutes(10));
        var crashing = _time.GetUtcNow();
        await UpdatePodAsync(pod, p =>
        {
            var s = App(p);
            s.Ready = false;
            s.RestartCount += 1;
            s.State = new ContainerState { Waiting = new ContainerStateWaiting { Reason = "CrashLoopBackOff" } };
            s.LastState = new ContainerState { Terminated = new ContainerStateTerminated { ExitCode = 1, FinishedAt = crashing } };
        });
        var capped = await ReconcileAsync();
        Assert.Equal(3, Restores().Count);
        Assert.Equal(ReconcileResult.RequeueAfter(Start.AddHours(1) - _time.GetUtcNow()), capped);
        var cap = Events(PodFailureReconciler.RestoreSuppressedReason)[^1];
        Assert.Contains("limit: 3 automatic restores of this workload in the last hour (at most 3)", cap.Message);
        Assert.Contains("the next restore may start at 2026-01-01T01:00:00Z", cap.Message);

        Advance(Start.AddHours(1) - _time.GetUtcNow());
        await ReconcileAsync();
        Assert.Equal(4, Restores().Count);
    }

    [Fact]
    public void Backoff_is_reset_after_a_quiet_hour_and_capped()
    {
        var o = new PodFailureOptions();
        var t0 = Start;
        Assert.True(RestoreThrottle.Decide([], t0, o).Allows(t0));
        // four in a row: 1, 2, 4, 8 min; then at most 10
        Assert.Equal(TimeSpan.FromMinutes(8), RestoreThrottle.Backoff(4, o));
        Assert.Equal(TimeSpan.FromMinutes(10), RestoreThrottle.Backoff(5, o));
        DateTimeOffset[] run = [t0, t0.AddMinutes(2), t0.AddMinutes(5), t0.AddMinutes(10)];
        Assert.Equal(t0.AddMinutes(18), RestoreThrottle.Decide(run, t0.AddMinutes(11), o).NextAllowed);
        // an hour after the last one, nothing waits any more
        Assert.True(RestoreThrottle.Decide(run, t0.AddMinutes(70), o).Allows(t0.AddMinutes(70)));
        // a restore after a quiet hour starts the run again: 1 min
        DateTimeOffset[] later = [.. run, t0.AddMinutes(75)];
        Assert.Equal(t0.AddMinutes(76), RestoreThrottle.Decide(later, t0.AddMinutes(75), o).NextAllowed);
    }

    // ---- crsc's own restarts ----

    private const string RestoredPod = "web-7d9f8b6c5-p0";

    /// <summary>
    /// A crash of <see cref="RestoredPod"/> makes Restore r1; the Restore reconciler patches the image, and the kubelet
    /// kills the container (137) and starts the checkpoint: crsc's own restart. Returns r1's name.
    /// </summary>
    private async Task<string> CrashAndRestoreInPlaceAsync()
    {
        await SeedDeploymentAsync();
        await StartDetectorAsync();
        await ReconcileAsync();

        Advance(TimeSpan.FromSeconds(10));
        await CrashAndRestartAsync(RestoredPod, exitCode: 1);
        await ReconcileAsync();
        var r1 = Assert.Single(Restores()).Metadata.Name!;

        Advance(TimeSpan.FromSeconds(2));
        await SetRestorePhaseAsync(r1, RestorePhase.Restoring, RestoredPod);
        await UpdatePodAsync(RestoredPod, p => (p.Metadata.Annotations ??= [])[Annotations.Restore] = r1);
        Advance(TimeSpan.FromSeconds(1));
        await CrashAndRestartAsync(RestoredPod, exitCode: 137, reason: "Error");
        await ReconcileAsync();
        return r1;
    }

    [Fact]
    public async Task Restarts_while_crsc_restores_the_pod_are_not_failures_and_become_the_baseline()
    {
        const string pod = RestoredPod;
        var r1 = await CrashAndRestoreInPlaceAsync();
        Advance(TimeSpan.FromSeconds(1));
        await CrashAndRestartAsync(pod, exitCode: 137, reason: "Error"); // a second try of the runtime
        await ReconcileAsync();
        Advance(TimeSpan.FromSeconds(3));
        await SetRestorePhaseAsync(r1, RestorePhase.Restored);
        // still within the grace period after Restored: the restored process settling
        Advance(TimeSpan.FromSeconds(30));
        await CrashAndRestartAsync(pod, exitCode: 0, reason: "Completed");
        await ReconcileAsync();
        Advance(TimeSpan.FromSeconds(40)); // grace over
        await ReconcileAsync();

        Assert.Single(Restores());
        Assert.Empty(Events(PodFailureReconciler.RestoreSuppressedReason)); // not even held back: not a failure at all
        Assert.Equal(4, App(_podsApi.Stored(Ns, pod)!).RestartCount);

        // the next restart after the grace period is a new incident, counted from the baseline crsc's restarts left
        Advance(TimeSpan.FromSeconds(10));
        await CrashAndRestartAsync(pod, exitCode: 0, reason: "Completed");
        await ReconcileAsync();
        Assert.Equal(2, Restores().Count);
        Assert.Contains("restart count 4 → 5", Events(PodFailureReconciler.RestoreCreatedReason)[^1].Message);
    }

    /// <summary>
    /// A Restore that recorded the instance it restored: a crash of that instance, however soon after Restored, is a new
    /// failure (a new Restore from the newest checkpoint), while crsc's own restarts before Restored stay its own.
    /// </summary>
    [Fact]
    public async Task A_crash_of_the_restored_instance_soon_after_Restored_is_a_new_failure()
    {
        const string pod = RestoredPod;
        var r1 = await CrashAndRestoreInPlaceAsync(); // crsc's patch restarts the container (137): its own doing
        Assert.Single(Restores());
        // Restored, with the restored instance's restart count
        Advance(TimeSpan.FromSeconds(3));
        await SetRestorePhaseAsync(r1, RestorePhase.Restored, restoredRestartCount: App(_podsApi.Stored(Ns, pod)!).RestartCount);
        await ReconcileAsync();
        Assert.Single(Restores());

        // 10 s later the restored process crashes: well inside the old 60 s window, and a failure all the same
        Advance(TimeSpan.FromSeconds(10));
        await CrashAndRestartAsync(pod, exitCode: 1);
        await ReconcileAsync();

        // seen as a failure at once (the old time window hid it); the workload's backoff holds the new Restore a minute
        Assert.Contains("(restart count 3); not restoring now: backoff", Assert.Single(Events(PodFailureReconciler.RestoreSuppressedReason)).Message);
        Advance(TimeSpan.FromMinutes(1));
        await ReconcileAsync();
        Assert.True(Restores().Count == 2, string.Join(" | ", _events.Events.Select(e => $"{e.Reason}: {e.Message}")));
        Assert.Contains("restart count 3", Events(PodFailureReconciler.RestoreCreatedReason)[^1].Message);
    }

    // ---- leader change ----

    [Fact]
    public async Task A_new_leader_creates_no_duplicate_and_keeps_the_backoff()
    {
        await SeedDeploymentAsync(replicas: 2);
        var old = await StartDetectorAsync();
        await old.ReconcileAsync("web");
        Advance(TimeSpan.FromSeconds(10));
        await CrashAndRestartAsync("web-7d9f8b6c5-p0", exitCode: 1);
        await old.ReconcileAsync("web");
        var r1 = Assert.Single(Restores()).Metadata.Name!;

        // the leader changes while the Restore is pending, and again after it finished
        var second = await StartDetectorAsync();
        Advance(TimeSpan.FromSeconds(3));
        await second.ReconcileAsync("web");
        Assert.Single(Restores());
        Advance(TimeSpan.FromSeconds(2));
        await SetRestorePhaseAsync(r1, RestorePhase.Restored, "web-7d9f8b6c5-p0");
        Advance(TimeSpan.FromSeconds(5));
        var third = await StartDetectorAsync();
        await third.ReconcileAsync("web");
        Assert.Single(Restores());
        Advance(TimeSpan.FromMinutes(2)); // past the grace period: still the same, handled incident
        await StartDetectorAsync();
        await ReconcileAsync();
        Assert.Single(Restores());
        Assert.Empty(Events(PodFailureReconciler.RestoreSuppressedReason));

        // the backoff is read from the API: a fresh leader holds a new incident back as the old one would
        var fourth = await StartDetectorAsync(new PodFailureOptions { InitialBackoff = TimeSpan.FromMinutes(5) });
        await CrashAndRestartAsync("web-7d9f8b6c5-p1", exitCode: 1);
        await fourth.ReconcileAsync("web");
        Assert.Single(Restores());
        Assert.Contains("backoff: 1 automatic restore(s)", Assert.Single(Events(PodFailureReconciler.RestoreSuppressedReason)).Message);
    }

    [Fact]
    public async Task Two_leaders_seeing_the_same_incident_make_one_restore()
    {
        await SeedDeploymentAsync();
        var a = await StartDetectorAsync();
        var b = await StartDetectorAsync();
        await a.ReconcileAsync("web");
        await b.ReconcileAsync("web");
        Advance(TimeSpan.FromSeconds(10));
        await CrashAndRestartAsync("web-7d9f8b6c5-p0", exitCode: 1);
        await Eventually.TrueAsync(() => b.Pods.Get(new ObjectKey(Ns, "web-7d9f8b6c5-p0")) is { } p && App(p).RestartCount == 1, "b sees the crash");
        await a.ReconcileAsync("web");
        // a second leader a second later whose view of the Restores lags behind (its watch has not delivered the
        // Restore yet): only the name, derived from the failure's own time, keeps it from making a second one
        Advance(TimeSpan.FromSeconds(1));
        var lagging = new PodFailureReconciler(_kube, b.Pods, b.ReplicaSets, b.Deployments,
            new Informer<Restore>(_restoresApi, new InformerOptions(), TimeProvider.System, NullLogger.Instance), // never run: empty
            _events, new PodFailureOptions(), _time, NullLogger.Instance);
        await lagging.ReconcileAsync(new ObjectKey(Ns, "web"), CancellationToken.None);

        Assert.Single(Restores());
        Assert.True(_restoresApi.CallCount("create") == 2, "the second leader tried, and was told AlreadyExists");
        Assert.Single(Events(PodFailureReconciler.RestoreCreatedReason));
    }

    // ---- the interceptor: a Deployment that asks for it is restored only in pods that have it ----

    [Fact]
    public async Task Of_a_deployment_asking_for_the_interceptor_only_pods_with_the_sidecar_get_a_restore()
    {
        await SeedDeploymentAsync(replicas: 2, annotations: new()
        {
            [Annotations.CheckpointRestore] = "true",
            [Annotations.Interceptor] = "true",
            [Annotations.InterceptorPort] = "http:18080",
        });
        // p1 is of the template with the sidecar; p0 of the template before it
        await UpdatePodAsync("web-7d9f8b6c5-p1", p => p.Metadata.Annotations = new() { [Annotations.InterceptorSidecarAttached] = "true" });
        await StartDetectorAsync();
        await ReconcileAsync();

        Advance(TimeSpan.FromSeconds(10));
        await CrashAndRestartAsync("web-7d9f8b6c5-p0", exitCode: 1);
        await ReconcileAsync();
        Assert.Empty(Restores());
        Assert.Equal(0, _restoresApi.CallCount("create"));

        Advance(TimeSpan.FromSeconds(10));
        await CrashAndRestartAsync("web-7d9f8b6c5-p1", exitCode: 1);
        await ReconcileAsync();
        var r = Assert.Single(Restores());
        Assert.Equal("web-7d9f8b6c5-p1", r.Metadata.Annotations![Annotations.FailedPod]);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("false")]
    public async Task Of_a_deployment_not_asking_for_the_interceptor_a_pod_without_the_sidecar_annotation_gets_a_restore(string? interceptor)
    {
        var annotations = new Dictionary<string, string> { [Annotations.CheckpointRestore] = "true" };
        if (interceptor is not null) annotations[Annotations.Interceptor] = interceptor;
        await SeedDeploymentAsync(annotations: annotations);
        await StartDetectorAsync();
        await ReconcileAsync();

        Advance(TimeSpan.FromSeconds(10));
        await CrashAndRestartAsync("web-7d9f8b6c5-p0", exitCode: 1);
        await ReconcileAsync();

        var r = Assert.Single(Restores());
        Assert.Equal("web-7d9f8b6c5-p0", r.Metadata.Annotations![Annotations.FailedPod]);
    }

    // ---- wired: informers, controller, events → keys ----

    [Fact]
    public async Task Wired_with_its_controller_a_pod_status_change_turns_into_a_restore()
    {
        await SeedDeploymentAsync();
        var manager = new ControllerManager(new ControllerManagerOptions { Kube = _kube, Events = _events, Time = _time, Loggers = NullLoggerFactory.Instance });
        var setup = PodFailureReconciler.SetUp(manager);
        Assert.Equal(4, manager.Informers.All.Count);
        Assert.All(manager.Informers.All, i => Assert.True(manager.RunsOnlyWhileLeading(i), $"{i.Name} is the leader's only"));
        _running.Add(manager.RunAsync(_stop.Token));
        await Eventually.TrueAsync(() => setup.Controller.Queue is not null && manager.Informers.For(Resources.Pods).HasSynced, "controller running");
        await Eventually.TrueAsync(() => setup.Controller.Queue is { Count: 0, InFlight: 0 }, "first reconcile done");

        Advance(TimeSpan.FromSeconds(10));
        await CrashAndRestartAsync("web-7d9f8b6c5-p0", exitCode: 1);
        await Eventually.TrueAsync(() => Restores().Count == 1, "a Restore for the crash");
        Assert.Equal("web-app-20260101000010", Restores()[0].Metadata.Name);
        // when the failure showed: the start of the Restore's timeline
        Assert.Equal("2026-01-01T00:00:10Z", Restores()[0].Metadata.Annotations![Annotations.FailedAt]);
    }
}

using Crsc.Storage;
using System.Formats.Tar;
using System.Text;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Storage;
using Crsc.Testing;

namespace Crsc.Controllers.Tests.NodeAgent;

public sealed class CheckpointRunnerTests : IDisposable
{
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly FakeContainerRuntime _runtime = new();
    private readonly FakeCheckpointStore _store;
    private readonly FakeStagingArea _staging = new();
    private readonly MetricsRegistry _registry = new();
    private readonly CheckpointMetrics _metrics;
    private CheckpointRunner? _runner;

    public CheckpointRunnerTests()
    {
        _store = new FakeCheckpointStore(_time);
        _metrics = new CheckpointMetrics(_registry);
    }

    private CheckpointRunner Runner(Func<CheckpointRunnerOptions, CheckpointRunnerOptions>? tweak = null,
        IWorkloadNameResolver? workloads = null)
    {
        var options = new CheckpointRunnerOptions { NodeName = "n1" };
        if (tweak is not null) options = tweak(options);
        _runner = new CheckpointRunner(_runtime, _runtime, _store, options, _time, metrics: _metrics, staging: _staging,
            workloads: workloads);
        return _runner;
    }

    public void Dispose() => _runner?.Dispose();

    /// <summary>
    /// Records what happened to the pod's traffic, in order with the runtime's call and the ingest (the replay log's
    /// steps too when <paramref name="recordLogSteps"/>).
    /// </summary>
    private sealed class RecordingHold(List<string> log, bool hasInterceptor = true, bool recordLogSteps = false) : IPodTrafficHold
    {
        public Task<IHeldTraffic?> HoldAsync(string ns, string pod, string podUid, string reason, CancellationToken ct)
        {
            if (!hasInterceptor) return Task.FromResult<IHeldTraffic?>(null);
            log.Add($"hold {ns}/{pod} {podUid}: {reason}");
            return Task.FromResult<IHeldTraffic?>(new Releaser(log, recordLogSteps));
        }

        private sealed class Releaser(List<string> log, bool recordLogSteps) : IHeldTraffic
        {
            public ValueTask DisposeAsync()
            {
                log.Add("release");
                return ValueTask.CompletedTask;
            }

            public Task CheckpointCommittedAsync(CancellationToken ct)
            {
                if (recordLogSteps) log.Add("checkpoint committed");
                return Task.CompletedTask;
            }

            public Task<ReplayOutcome?> ReplayAsync(CancellationToken ct)
            {
                if (recordLogSteps) log.Add("replay");
                return Task.FromResult<ReplayOutcome?>(null);
            }
        }
    }

    [Theory]
    [InlineData("succeeds")]
    [InlineData("the runtime fails")]
    [InlineData("the ingest fails")]
    public async Task The_replay_log_is_truncated_only_once_the_checkpoint_is_committed(string how)
    {
        var log = new List<string>();
        _runtime.AddContainer("shop", "web-7d9f-abcde", "app", podUid: "uid-1");
        var original = _runtime.OnCheckpoint;
        _runtime.OnCheckpoint = (t, p, timeout, ct) => how == "the runtime fails"
            ? throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed, "criu dump failed", "Internal")
            : original(t, p, timeout, ct);
        _store.OnIngest = _ =>
        {
            log.Add("ingest");
            if (how == "the ingest fails") throw new CheckpointStoreException("disk full");
        };
        var runner = Runner(o => o with { TrafficHold = new RecordingHold(log, recordLogSteps: true) });

        var run = runner.CheckpointAsync(new CheckpointRequest("shop", "web-7d9f-abcde", "app"), null, CancellationToken.None);
        if (how == "succeeds") await run;
        else await Assert.ThrowsAnyAsync<Exception>(() => run);

        Assert.Equal(how == "succeeds", log.Contains("checkpoint committed"));
        if (how == "succeeds") Assert.Equal("checkpoint committed", log[^1]); // after the ingest
        Assert.DoesNotContain("replay", log);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task The_pods_traffic_is_held_for_the_runtimes_checkpoint_call_only_and_released_when_it_fails(bool runtimeFails)
    {
        var log = new List<string>();
        _runtime.AddContainer("shop", "web-7d9f-abcde", "app", podUid: "uid-1");
        var original = _runtime.OnCheckpoint;
        _runtime.OnCheckpoint = (t, p, timeout, ct) =>
        {
            log.Add("runtime checkpoint");
            return runtimeFails
                ? throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed, "criu dump failed", "Internal")
                : original(t, p, timeout, ct);
        };
        _store.OnIngest = _ => log.Add("ingest");
        var runner = Runner(o => o with { TrafficHold = new RecordingHold(log) });

        var run = runner.CheckpointAsync(new CheckpointRequest("shop", "web-7d9f-abcde", "app"), null, CancellationToken.None);
        if (runtimeFails) await Assert.ThrowsAnyAsync<Exception>(() => run);
        else await run;

        Assert.Equal(runtimeFails
            ? ["hold shop/web-7d9f-abcde uid-1: checkpoint of app", "runtime checkpoint", "release"]
            : ["hold shop/web-7d9f-abcde uid-1: checkpoint of app", "runtime checkpoint", "release", "ingest"], log);
    }

    [Fact]
    public async Task A_pod_without_an_interceptor_is_checkpointed_as_before()
    {
        var log = new List<string>();
        _runtime.AddContainer("shop", "web-7d9f-abcde", "app", podUid: "uid-1");
        var runner = Runner(o => o with { TrafficHold = new RecordingHold(log, hasInterceptor: false) });

        await runner.CheckpointAsync(new CheckpointRequest("shop", "web-7d9f-abcde", "app"), null, CancellationToken.None);

        Assert.Empty(log);
        Assert.Single(_store.Ingests);
    }

    [Fact]
    public async Task Checkpoints_the_named_container_into_staging_and_ingests_it_with_the_stores_default_compression_at_level_1()
    {
        var app = _runtime.AddContainer("shop", "web-7d9f-abcde", "app", podUid: "uid-1");
        _runtime.AddContainer("shop", "web-7d9f-abcde", "crsc-interceptor");
        var progress = new ProgressLog();

        var outcome = await Runner(workloads: new StaticWorkloads("web")).CheckpointAsync(
            new CheckpointRequest("shop", "web-7d9f-abcde", "app"), progress, CancellationToken.None);

        var call = Assert.Single(_runtime.CheckpointCalls);
        Assert.Equal(app.Id, call.Target.ContainerId);
        Assert.Equal("app", call.Target.Container);
        Assert.Equal(TimeSpan.FromMinutes(5), call.Timeout);
        var source = Assert.Single(_store.StagingRequests);
        Assert.Equal(("shop", "web", "app", "web-7d9f-abcde", "uid-1"), (source.Namespace, source.Workload, source.Container, source.PodName, source.PodUid));
        var ingest = Assert.Single(_store.Ingests);
        Assert.Equal(call.Path, ingest.Staged);
        // the store's default (zstd, unless it cannot shrink the archive), at level 1
        Assert.Null(ingest.Options.Compression);
        Assert.Equal(1, ingest.Options.CompressionLevel);
        Assert.Equal("n1", outcome.Node);
        Assert.Equal(app.Id, outcome.ContainerId);
        Assert.Equal(outcome.Checkpoint.Id, Assert.Single(_store.List()).Id);
        Assert.Contains(call.Path, _staging.Deleted);
        Assert.Equal([CheckpointStages.Resolving, CheckpointStages.Checkpointing, CheckpointStages.Ingesting,
            CheckpointStages.Ingesting, CheckpointStages.Committed], progress.Stages);
        Assert.Equal(1000, progress.Reports.Where(r => r.Stage == CheckpointStages.Ingesting).Last().Bytes);
        Assert.Equal(1, _metrics.Checkpoints.Value(CheckpointMetrics.ResultSucceeded));
        Assert.Equal(outcome.Checkpoint.Size, _metrics.ArchiveBytes.Value());
        Assert.Equal(outcome.Checkpoint.Size, _metrics.StoreBytes.Value());
        var text = _registry.Render();
        Assert.Contains("crsc_checkpoint_duration_seconds_count{part=\"runtime\"} 1", text);
        Assert.Contains("crsc_checkpoint_duration_seconds_count{part=\"crsc\"} 1", text);
    }

    [Fact]
    public async Task Without_a_container_name_picks_the_only_container_that_is_not_crscs_and_names_the_workload_after_the_pod()
    {
        _runtime.AddContainer("shop", "db-0", "crsc-interceptor");
        var db = _runtime.AddContainer("shop", "db-0", "postgres");

        var outcome = await Runner().CheckpointAsync(new CheckpointRequest("shop", "db-0", null), null, CancellationToken.None);

        Assert.Equal(db.Id, outcome.ContainerId);
        Assert.Equal("db-0", Assert.Single(_store.StagingRequests).Workload);
    }

    [Fact]
    public async Task Without_a_container_name_refuses_a_pod_with_several_app_containers_and_lists_them()
    {
        _runtime.AddContainer("shop", "web-0", "app");
        _runtime.AddContainer("shop", "web-0", "cache");
        _runtime.AddContainer("shop", "web-0", "crsc-interceptor");

        var e = await Assert.ThrowsAsync<ContainerResolutionException>(() =>
            Runner().CheckpointAsync(new CheckpointRequest("shop", "web-0", null), null, CancellationToken.None));

        Assert.Contains("app, cache", e.Message);
        Assert.Contains("name the one", e.Message);
        Assert.Equal(["app", "cache", "crsc-interceptor"], e.Candidates);
        Assert.Equal(ContainerRuntimeErrorKind.NotFound, e.Kind);
        Assert.Empty(_runtime.CheckpointCalls);
        Assert.Empty(_store.StagingRequests);
        Assert.Equal(1, _metrics.Checkpoints.Value(CheckpointMetrics.ResultInvalid));
    }

    [Fact]
    public async Task A_missing_container_or_pod_is_a_clear_error_naming_what_exists()
    {
        _runtime.AddContainer("shop", "web-0", "app");
        var runner = Runner();

        var missing = await Assert.ThrowsAsync<ContainerResolutionException>(() =>
            runner.CheckpointAsync(new CheckpointRequest("shop", "web-0", "sidecar"), null, CancellationToken.None));
        Assert.Contains("no container 'sidecar'", missing.Message);
        Assert.Contains("it has: app", missing.Message);

        var noPod = await Assert.ThrowsAsync<ContainerResolutionException>(() =>
            runner.CheckpointAsync(new CheckpointRequest("shop", "web-9", "app"), null, CancellationToken.None));
        Assert.Contains("shop/web-9 has no containers", noPod.Message);
        Assert.Contains("n1", noPod.Message);
        Assert.Empty(_runtime.CheckpointCalls);
    }

    [Fact]
    public async Task A_container_that_is_not_running_is_refused()
    {
        _runtime.AddContainer("shop", "web-0", "app", ContainerState.Exited);

        var e = await Assert.ThrowsAsync<ContainerResolutionException>(() =>
            Runner().CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None));

        Assert.Contains("is exited, not running", e.Message);
        Assert.Equal(ContainerState.Exited, e.State);
        Assert.Empty(_runtime.CheckpointCalls);
    }

    [Fact]
    public async Task A_restarted_container_is_checkpointed_in_its_newest_running_attempt()
    {
        _runtime.AddContainer("shop", "web-0", "app", ContainerState.Exited, attempt: 0);
        var current = _runtime.AddContainer("shop", "web-0", "app", ContainerState.Running, attempt: 1);

        var outcome = await Runner().CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None);

        Assert.Equal(current.Id, outcome.ContainerId);
    }

    [Fact]
    public async Task A_runtime_failure_keeps_the_runtime_message_and_the_end_of_the_criu_log_named_in_it()
    {
        var app = _runtime.AddContainer("shop", "web-0", "app");
        var logPath = $"/var/lib/containers/storage/overlay-containers/{app.Id}/userdata/dump.log";
        var log = new StringBuilder();
        for (var i = 0; i < 400; i++) log.Append("(00.").Append(i.ToString("D6")).Append(") dumping memory of task 1\n");
        log.Append("Error (criu/cr-dump.c:1600): Dump of task 1 failed: tcp connection in state established\n");
        _staging.Logs[logPath] = log.ToString();
        _runtime.OnCheckpoint = (_, _, _, _) => throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed,
            "runtime said Unknown", "Unknown",
            $"failed to checkpoint container {app.Id}: running \"/usr/bin/runc\" checkpoint failed: criu failed: type NOTIFY errno 0\nlog file: {logPath}");

        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() =>
            Runner().CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None));

        Assert.Contains("checkpoint of shop/web-0/app", e.Message);
        Assert.Contains("criu failed", e.Message);
        Assert.Equal("Unknown", e.Code);
        Assert.NotNull(e.CriuLog);
        Assert.True(e.CriuLog!.Length <= 4096);
        Assert.EndsWith("tcp connection in state established\n", e.CriuLog);
        Assert.StartsWith("(00.", e.CriuLog); // cut at a line start
        Assert.Equal(logPath, e.CriuLogPath);
        Assert.IsType<ContainerRuntimeException>(e.InnerException);
        Assert.Single(_runtime.CheckpointCalls);
        Assert.Empty(_store.Ingests);
        Assert.Contains(_runtime.CheckpointCalls[0].Path, _staging.Deleted);
        Assert.Equal(1, _metrics.Checkpoints.Value(CheckpointMetrics.ResultFailed));
    }

    [Fact]
    public async Task A_runtime_failure_takes_the_criu_log_from_what_the_runtime_left_in_staging()
    {
        _runtime.AddContainer("shop", "web-0", "app");
        _runtime.OnCheckpoint = (_, path, _, _) =>
        {
            _staging.ArchiveLogs[path] = "Error (criu/files-reg.c:1710): Can't lookup mount=1234 for fd=5 path=/data/x\n";
            throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed, "checkpoint failed", "Unknown", "criu failed");
        };

        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() =>
            Runner().CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None));

        Assert.Contains("Can't lookup mount", e.CriuLog);
        Assert.EndsWith("!dump.log", e.CriuLogPath);
    }

    [Fact]
    public async Task An_archive_the_store_refuses_fails_with_the_stores_error_and_the_staged_file_is_removed()
    {
        _runtime.AddContainer("shop", "web-0", "app");
        _store.IngestError = new ArchiveRejectedException("archive refused: entry escapes the root", "../etc/passwd");

        var e = await Assert.ThrowsAsync<ArchiveRejectedException>(() =>
            Runner().CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None));

        Assert.Equal("../etc/passwd", e.Entry);
        Assert.Contains(_runtime.CheckpointCalls[0].Path, _staging.Deleted);
        Assert.Empty(_store.List());
        Assert.Equal(1, _metrics.Checkpoints.Value(CheckpointMetrics.ResultRejected));
    }

    [Fact]
    public async Task A_failed_cleanup_never_hides_the_outcome()
    {
        _runtime.AddContainer("shop", "web-0", "app");
        _staging.DeleteError = new IOException("read-only file system");
        var runner = Runner();

        var ok = await runner.CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None);
        Assert.NotNull(ok.Checkpoint);

        _runtime.OnCheckpoint = (_, _, _, _) => throw new CheckpointNotSupportedException("runtime cannot checkpoint", "Unimplemented");
        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() =>
            runner.CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None));
        Assert.Equal(ContainerRuntimeErrorKind.NotSupported, e.Kind);
        Assert.Equal(2, _staging.Deleted.Count);
    }

    [Fact]
    public async Task The_kubelets_archive_is_ingested_as_the_file_checked_and_removed_only_after()
    {
        const string dir = "/var/lib/kubelet/checkpoints";
        const string name = "checkpoint-web-0_shop-app-2026-01-01T00:00:00Z.tar";
        var identity = new FileIdentity(0x800000001, 4242);
        _staging.Files[$"{dir}/{name}"] = identity;
        _runtime.AddContainer("shop", "web-0", "app");
        _runtime.OnCheckpoint = (_, _, _, _) => Task.FromResult(new CheckpointArchive($"{dir}/{name}"));

        await Runner(o => o with { KubeletCheckpointDirectory = dir }).CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None);

        var ingest = Assert.Single(_store.Ingests);
        Assert.Equal($"{dir}/{name}", ingest.Staged);
        Assert.Equal(identity, ingest.Options.ExpectedFile);
        Assert.False(ingest.Options.RemoveStaged); // the store leaves the kubelet's file alone
        Assert.Contains($"{dir}/{name}", _staging.Deleted);
        Assert.Contains(_runtime.CheckpointCalls[0].Path, _staging.Deleted);
    }

    [Fact]
    public async Task A_criu_log_named_outside_the_runtimes_log_locations_for_the_container_is_never_read()
    {
        var app = _runtime.AddContainer("shop", "web-0", "app");
        var other = _runtime.AddContainer("shop", "web-1", "app");
        string[] named =
        [
            "/root/.secret.log",
            "/var/log/auth.log",
            $"/var/lib/containers/storage/overlay-containers/{other.Id}/userdata/dump.log", // another container's
            $"/var/lib/containers/storage/overlay-containers/{app.Id}/userdata/../../../../../../etc/x.log",
            $"/var/lib/containers/storage/overlay-containers/{app.Id}/userdata/other.log",
        ];
        foreach (var path in named) _staging.Logs[path] = "secret\n";
        _runtime.OnCheckpoint = (_, _, _, _) => throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed,
            "checkpoint failed", "500", "criu failed; log file: " + string.Join(" see ", named));

        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() =>
            Runner().CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None));

        Assert.Null(e.CriuLog);
        Assert.Null(e.CriuLogPath);
        Assert.Empty(_staging.LogReads);
    }

    [Fact]
    public async Task A_containerd_criu_log_of_the_container_is_read()
    {
        var app = _runtime.AddContainer("shop", "web-0", "app");
        var path = $"/run/containerd/io.containerd.runtime.v2.task/k8s.io/{app.Id}/criu-dump.log";
        _staging.Logs[path] = "Error (criu/sk-inet.c:191): inet: Connected TCP socket, consider using --tcp-established option.\n";
        _runtime.OnCheckpoint = (_, _, _, _) => throw new ContainerRuntimeException(ContainerRuntimeErrorKind.Failed,
            "checkpoint failed", "Unknown", $"criu failed: type NOTIFY errno 0 path= {path}: unknown");

        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() =>
            Runner().CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None));

        Assert.Contains("--tcp-established", e.CriuLog);
        Assert.Equal(path, e.CriuLogPath);
    }

    [Fact]
    public async Task A_second_checkpoint_waits_for_the_nodes_only_slot_and_reports_queued()
    {
        _runtime.AddContainer("shop", "web-0", "app");
        _runtime.AddContainer("shop", "web-1", "app");
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _runtime.OnCheckpoint = async (t, path, _, ct) =>
        {
            if (t.Pod == "web-0")
            {
                entered.TrySetResult();
                await release.Task.WaitAsync(ct);
            }
            return new CheckpointArchive(path);
        };
        var runner = Runner();
        var first = runner.CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None);
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var secondProgress = new ProgressLog();
        var second = runner.CheckpointAsync(new CheckpointRequest("shop", "web-1", "app"), secondProgress, CancellationToken.None);

        await Eventually.TrueAsync(() => secondProgress.Stages.Contains(CheckpointStages.Queued), "second reports queued");
        Assert.Equal(2, runner.InFlight);
        Assert.Single(_runtime.CheckpointCalls);
        Assert.False(second.IsCompleted);

        release.SetResult();
        await first.WaitAsync(TimeSpan.FromSeconds(10));
        var done = await second.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(2, _runtime.CheckpointCalls.Count);
        Assert.Equal(CheckpointStages.Committed, secondProgress.Stages[^1]);
        Assert.Equal(0, runner.InFlight);
        Assert.NotNull(done.Checkpoint);
    }

    [Fact]
    public async Task Two_slots_run_two_checkpoints_at_once()
    {
        _runtime.AddContainer("shop", "web-0", "app");
        _runtime.AddContainer("shop", "web-1", "app");
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _runtime.OnCheckpoint = async (_, path, _, ct) =>
        {
            await release.Task.WaitAsync(ct);
            return new CheckpointArchive(path);
        };
        var runner = Runner(o => o with { MaxConcurrent = 2 });
        var a = runner.CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None);
        var b = runner.CheckpointAsync(new CheckpointRequest("shop", "web-1", "app"), null, CancellationToken.None);

        await Eventually.TrueAsync(() => _runtime.CheckpointCalls.Count == 2, "both in the runtime");
        release.SetResult();
        await Task.WhenAll(a, b).WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Node_away_checkpoints_have_their_own_slots_and_do_not_wait_behind_a_scheduled_one()
    {
        foreach (var pod in new[] { "web-0", "web-1", "web-2", "web-3" }) _runtime.AddContainer("shop", pod, "app");
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _runtime.OnCheckpoint = async (_, path, _, ct) =>
        {
            await release.Task.WaitAsync(ct);
            return new CheckpointArchive(path);
        };
        var runner = Runner(o => o with { MaxConcurrent = 1, MaxConcurrentNodeAway = 2 });
        // a scheduled checkpoint holds the one ordinary slot
        var scheduled = runner.CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None);
        await Eventually.TrueAsync(() => _runtime.CheckpointCalls.Count == 1, "the scheduled checkpoint in the runtime");

        var away = new[] { "web-1", "web-2", "web-3" }.Select(p => runner.CheckpointAsync(
            new CheckpointRequest("shop", p, "app") { Reason = CheckpointReasons.NodeShutdown }, null, CancellationToken.None)).ToList();

        // two node-away checkpoints run beside it at once; the third waits for one of their two slots
        await Eventually.TrueAsync(() => _runtime.CheckpointCalls.Count == 3, "two node-away checkpoints in the runtime");
        await Task.Delay(100);
        Assert.Equal(3, _runtime.CheckpointCalls.Count);
        release.SetResult();
        await Task.WhenAll([scheduled, .. away]).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(4, _runtime.CheckpointCalls.Count);
    }

    [Fact]
    public async Task A_runtime_call_that_outlives_the_timeout_fails_as_a_deadline_and_frees_the_slot()
    {
        _runtime.AddContainer("shop", "web-0", "app");
        _runtime.OnCheckpoint = async (_, path, _, ct) =>
        {
            await Task.Delay(Timeout.Infinite, ct); // a runtime that ignores its deadline
            return new CheckpointArchive(path);
        };
        var runner = Runner(o => o with { DefaultTimeout = TimeSpan.FromSeconds(30) });

        var run = runner.CheckpointAsync(new CheckpointRequest("shop", "web-0", "app") { Timeout = TimeSpan.FromSeconds(10) },
            null, CancellationToken.None);
        await Eventually.TrueAsync(() => _runtime.CheckpointCalls.Count == 1, "runtime called");
        Assert.Equal(TimeSpan.FromSeconds(10), _runtime.CheckpointCalls[0].Timeout);
        // past the timeout, the runtime's own deadline should have answered; crsc waits out the grace, then gives up
        _time.Advance(TimeSpan.FromSeconds(39));
        await Task.Delay(50);
        Assert.False(run.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(2));

        var e = await Assert.ThrowsAsync<CheckpointFailedException>(() => run.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(ContainerRuntimeErrorKind.DeadlineExceeded, e.Kind);
        Assert.True(e.Transient);
        Assert.Contains("within 00:00:10", e.Message);
        Assert.Equal(1, _metrics.Checkpoints.Value(CheckpointMetrics.ResultTimeout));
        Assert.Contains(_runtime.CheckpointCalls[0].Path, _staging.Deleted);

        // the slot is free again
        _runtime.OnCheckpoint = (_, path, _, _) => Task.FromResult(new CheckpointArchive(path));
        await runner.CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None)
            .WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Cancelling_a_queued_request_leaves_the_running_one_alone()
    {
        _runtime.AddContainer("shop", "web-0", "app");
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _runtime.OnCheckpoint = async (_, path, _, ct) =>
        {
            await release.Task.WaitAsync(ct);
            return new CheckpointArchive(path);
        };
        var runner = Runner();
        var first = runner.CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, CancellationToken.None);
        await Eventually.TrueAsync(() => _runtime.CheckpointCalls.Count == 1, "first in the runtime");
        using var cts = new CancellationTokenSource();
        var second = runner.CheckpointAsync(new CheckpointRequest("shop", "web-0", "app"), null, cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => second);
        release.SetResult();
        await first.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Single(_runtime.CheckpointCalls);
        Assert.Equal(1, _metrics.Checkpoints.Value(CheckpointMetrics.ResultCanceled));
    }

    [Fact]
    public void The_pod_owner_names_the_workload()
    {
        var pod = new Crsc.Api.Kubernetes.Pod();
        pod.Metadata.Name = "web-7d9f8c6b5-x2x9z";
        pod.Metadata.Labels = new() { [PodOwnerWorkloadResolver.PodTemplateHashLabel] = "7d9f8c6b5" };
        pod.Metadata.OwnerReferences = [new() { Kind = "ReplicaSet", Name = "web-7d9f8c6b5", Controller = true }];
        Assert.Equal("web", PodOwnerWorkloadResolver.WorkloadOf(pod));

        pod.Metadata.OwnerReferences = [new() { Kind = "StatefulSet", Name = "db", Controller = true }];
        Assert.Equal("db", PodOwnerWorkloadResolver.WorkloadOf(pod));

        pod.Metadata.OwnerReferences = null;
        Assert.Equal("web-7d9f8c6b5-x2x9z", PodOwnerWorkloadResolver.WorkloadOf(pod));
    }

    [Fact]
    public void The_file_staging_area_reads_log_tails_from_files_and_archives_and_deletes_files()
    {
        using var dir = new TempDir();
        var area = new FileStagingArea();
        var log = dir.Combine("dump.log");
        File.WriteAllText(log, new string('x', 10_000) + "\nError: the end\n");
        Assert.EndsWith("Error: the end\n", area.ReadLogTail(log, 100));
        Assert.Equal(100, area.ReadLogTail(log, 100)!.Length);
        Assert.Null(area.ReadLogTail(dir.Combine("none.log"), 100));

        var archive = dir.Combine("partial.tar");
        using (var file = File.Create(archive))
        using (var tar = new TarWriter(file))
        {
            var config = new PaxTarEntry(TarEntryType.RegularFile, "config.dump") { DataStream = new MemoryStream("{}"u8.ToArray()) };
            tar.WriteEntry(config);
            var dump = new PaxTarEntry(TarEntryType.RegularFile, "dump.log")
            {
                DataStream = new MemoryStream(Encoding.UTF8.GetBytes(new string('y', 9000) + "\nError (criu): failed\n")),
            };
            tar.WriteEntry(dump);
        }
        Assert.EndsWith("Error (criu): failed\n", area.ReadArchiveLogTail(archive, 4096));
        Assert.Equal(4096, area.ReadArchiveLogTail(archive, 4096)!.Length);
        Assert.Null(area.ReadArchiveLogTail(dir.Combine("missing.tar"), 4096));
        File.WriteAllText(dir.Combine("garbage.tar"), "not a tar at all, just text that is long enough to be read as a header maybe");
        Assert.Null(area.ReadArchiveLogTail(dir.Combine("garbage.tar"), 4096));

        area.Delete(archive);
        Assert.False(File.Exists(archive));
        area.Delete(archive); // gone already: fine
    }

    private sealed class StaticWorkloads(string name) : IWorkloadNameResolver
    {
        public string? WorkloadOf(string @namespace, string pod) => name;
    }
}

using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Hosting;
using Crsc.Controllers.Nodes;
using Crsc.Controllers.Tests.NodeAgent;
using Crsc.Controllers.Tests.Support;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Nodes;

/// <summary>The node agent's own CheckpointNode: what it found, written only when that changes.</summary>
public sealed class CheckpointNodeReporterTests : IAsyncLifetime
{
    private const string Node = "node-a";
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);
    private readonly ManualTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 8, 0, 0, TimeSpan.Zero));
    private readonly FakeKube _kube;
    private readonly FakeResourceClient<CheckpointNode> _objects;
    private readonly Source _source = new();
    private readonly CancellationTokenSource _stop = new();
    private Task _running = Task.CompletedTask;
    private CheckpointNodeReporter _reporter = null!;
    private ControllerManager _manager = null!;

    public CheckpointNodeReporterTests()
    {
        _kube = new FakeKube(_time);
        _objects = _kube.For(CrscResources.CheckpointNodes);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _running.WaitAsync(TimeSpan.FromSeconds(20));
        _stop.Dispose();
    }

    private sealed class Source : INodeReportSource
    {
        public volatile NodeReport Report = new(
            new NodeRuntime { Name = "containerd", Version = "v2.2.7", ApiVersion = "v1" }, "4.2.1",
            new NodeCapability { State = CapabilityState.Supported, Reason = "CheckpointContainer answers" },
            new NodeCapability
            {
                State = CapabilityState.DisabledByConfig, Reason = "restore via CreateContainer is off by default in containerd 2.2.7",
                Fix = "enable_experimental_restore_via_create = true, then restart containerd",
            },
            new NodeStore { Checkpoints = 2, Bytes = 2 << 20, FreeBytes = 10L << 30, Used = "2.0 MiB" },
            "0.9.0");
        public int Calls;
        public ValueTask<NodeReport> ReportAsync(CancellationToken ct)
        {
            Interlocked.Increment(ref Calls);
            return ValueTask.FromResult(Report);
        }
    }

    private async Task StartAsync(TimeSpan? heartbeat = null)
    {
        var manager = _manager = new ControllerManager(new ControllerManagerOptions
        {
            Kube = _kube, Events = new RecordingEventRecorder(), Time = _time, Loggers = NullLoggerFactory.Instance,
        });
        _reporter = CheckpointNodeReporter.SetUp(manager, _source, new CheckpointNodeReporterOptions
        {
            NodeName = Node, Interval = Interval, HeartbeatInterval = heartbeat ?? TimeSpan.FromHours(6),
        });
        _running = manager.RunAsync(_stop.Token);
        await Eventually.TrueAsync(() => Stored()?.Status is not null, "the first report");
        await SettleAsync();
    }

    /// <summary>Until the reporter waits with its cache at the stored object (its own writes seen, nothing in flight).</summary>
    private Task SettleAsync() => Eventually.TrueAsync(() =>
        _reporter.Waiting
        && _manager.Informers.For(CrscResources.CheckpointNodes, new() { FieldSelector = $"metadata.name={Node}" })
            .Get(Crsc.Api.ObjectKey.Cluster(Node))?.Metadata.ResourceVersion == Stored()?.Metadata.ResourceVersion,
        "the reporter at rest");

    private CheckpointNode? Stored() => _objects.AllStored().SingleOrDefault();

    /// <summary>
    /// Writes that changed the object: each takes a new resourceVersion (nothing else writes to this API server). A
    /// request the server refused (a 409 for a write from a cache that had not seen the reporter's own last write yet)
    /// changed nothing and is not counted.
    /// </summary>
    private int Writes => (int)_kube.CurrentResourceVersion;

    /// <summary>Moves the clock one interval at a time, each time once the reporter waits, and lets the round run.</summary>
    private async Task PassAsync(TimeSpan span)
    {
        for (var t = TimeSpan.Zero; t < span; t += Interval)
        {
            await SettleAsync();
            var rounds = _reporter.Rounds;
            _time.Advance(Interval);
            await Eventually.TrueAsync(() => _reporter.Rounds > rounds, "a round ran");
        }
        await SettleAsync();
    }

    [Fact]
    public async Task The_node_agent_creates_its_CheckpointNode_with_what_it_found()
    {
        await StartAsync();
        var node = Stored()!;
        Assert.Equal(Node, node.Metadata.Name);
        var s = node.Status!;
        Assert.Equal("containerd v2.2.7", s.RuntimeSummary);
        Assert.Equal(("containerd", "v2.2.7"), (s.Runtime!.Name, s.Runtime.Version));
        Assert.Equal("4.2.1", s.CriuVersion);
        Assert.Equal(CapabilityState.Supported, s.Checkpoint.State);
        Assert.Equal(CapabilityState.DisabledByConfig, s.Restore.State);
        Assert.Equal("enable_experimental_restore_via_create = true, then restart containerd", s.Restore.Fix);
        Assert.Equal((2, 2L << 20, "2.0 MiB"), (s.Store!.Checkpoints, s.Store.Bytes, s.Store.Used));
        Assert.Equal("0.9.0", s.AgentVersion);
        Assert.Equal(_time.GetUtcNow(), s.LastHeartbeatTime);
        Assert.True(s.IsConditionTrue(CheckpointNodeConditions.CheckpointReady));
        var restore = s.FindCondition(CheckpointNodeConditions.RestoreReady)!;
        Assert.Equal((ConditionStatus.False, "DisabledByConfig"), (restore.Status, restore.Reason));
        Assert.Contains("enable_experimental_restore_via_create = true", restore.Message);
    }

    [Fact]
    public async Task At_rest_a_simulated_hour_writes_nothing()
    {
        await StartAsync();
        var writes = Writes;
        Assert.Equal(2, writes); // the object, then its status (the status subresource ignores a create's status)

        await PassAsync(TimeSpan.FromHours(1));

        Assert.Equal(writes, Writes);
        Assert.True(_reporter.Rounds >= 120, $"{_reporter.Rounds} rounds: the report was looked at every interval");
    }

    [Fact]
    public async Task A_change_is_written_once_and_the_condition_moves()
    {
        await StartAsync();
        var before = Writes;
        var transition = Stored()!.Status!.FindCondition(CheckpointNodeConditions.RestoreReady)!.LastTransitionTime;
        _source.Report = _source.Report with
        {
            Restore = new NodeCapability { State = CapabilityState.Supported, Reason = "enabled in the CRI runtime config" },
        };
        _reporter.Poke();
        await Eventually.TrueAsync(() => Stored()!.Status!.Restore.State == CapabilityState.Supported, "the new state");
        await PassAsync(TimeSpan.FromMinutes(5));
        Assert.Equal(before + 1, Writes);
        var restore = Stored()!.Status!.FindCondition(CheckpointNodeConditions.RestoreReady)!;
        Assert.Equal(ConditionStatus.True, restore.Status);
        Assert.Null(Stored()!.Status!.Restore.Fix);
        Assert.True(restore.LastTransitionTime >= transition);
    }

    [Fact]
    public async Task The_heartbeat_is_written_when_due_and_only_then()
    {
        await StartAsync(heartbeat: TimeSpan.FromMinutes(10));
        var first = Stored()!.Status!.LastHeartbeatTime;
        var before = Writes;
        await PassAsync(TimeSpan.FromMinutes(9));
        Assert.Equal(before, Writes);
        await PassAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(before + 1, Writes);
        Assert.True(Stored()!.Status!.LastHeartbeatTime > first);
    }

    [Fact]
    public async Task A_deleted_object_is_made_again_and_someone_elses_edit_is_put_right()
    {
        await StartAsync();
        await _objects.DeleteAsync(null, Node, null, CancellationToken.None);
        await Eventually.TrueAsync(() => Stored()?.Status?.Restore.State == CapabilityState.DisabledByConfig, "made again");

        var edited = StatusWriterCopy(Stored()!);
        edited.Status!.Restore = new NodeCapability { State = CapabilityState.Supported, Reason = "someone says so" };
        await _objects.UpdateStatusAsync(edited, CancellationToken.None);
        await Eventually.TrueAsync(() => Stored()!.Status!.Restore.State == CapabilityState.DisabledByConfig, "put right");
    }

    [Fact]
    public async Task While_the_api_server_is_away_the_report_waits_and_is_written_when_it_is_back()
    {
        await StartAsync();
        _objects.Unavailable = true;
        _source.Report = _source.Report with { Store = new NodeStore { Checkpoints = 3, Bytes = 3 << 20, FreeBytes = 10L << 30, Used = "3.0 MiB" } };
        _reporter.Poke();
        // "waiting" can still be the wait before the last advance (the reporter not yet woken on a busy machine: CI
        // saw 2 rounds after 8 advances), so the clock moves until the rounds are seen, not a fixed number of times
        for (var i = 0; i < 4; i++)
        {
            var rounds = _reporter.Rounds;
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (_reporter.Rounds <= rounds)
            {
                // 15 s is past any retry wait it may have (at most 3 s while the server cannot be reached)
                if (_reporter.Waiting) _time.Advance(TimeSpan.FromSeconds(15));
                await Task.Delay(20);
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(30), $"round {i + 1}: the reporter did not try again ({_reporter.Rounds} rounds)");
            }
        }
        await Eventually.TrueAsync(() => _reporter.Waiting, "the reporter waits for its retry");
        Assert.Equal(2, Stored()!.Status!.Store!.Checkpoints);
        _objects.Unavailable = false;
        // the informer and the reporter both wait on the clock to try again
        await Clock.AdvanceUntilAsync(_time, () => Stored()!.Status!.Store!.Checkpoints == 3, TimeSpan.FromSeconds(5),
            TimeSpan.FromMinutes(5), "written once the server is back");
    }

    /// <summary>
    /// After minutes away the report is written within 5 s of the API server's return: while it cannot be reached the
    /// retry grows only to 3 s. The old retry doubled up to the interval (<c>CheckpointNodeReporterOptions.Interval</c>,
    /// 30 s here and in production) whatever the failure.
    /// </summary>
    [Fact]
    public async Task After_minutes_away_the_report_is_written_within_5_s_of_the_api_servers_return()
    {
        await StartAsync();
        _objects.Unavailable = true;
        _source.Report = _source.Report with { Store = new NodeStore { Checkpoints = 3, Bytes = 3 << 20, FreeBytes = 10L << 30, Used = "3.0 MiB" } };
        _reporter.Poke();
        var step = TimeSpan.FromMilliseconds(100);
        var lastMinute = _time.GetUtcNow() + TimeSpan.FromMinutes(4);
        await StepUntilAsync(() => _time.GetUtcNow() >= lastMinute, step, TimeSpan.FromMinutes(5), "away");
        var rounds = _reporter.Rounds;
        var back = lastMinute + TimeSpan.FromMinutes(1);
        await StepUntilAsync(() => _time.GetUtcNow() >= back, step, TimeSpan.FromMinutes(2), "still away");
        Assert.Equal(2, Stored()!.Status!.Store!.Checkpoints);
        // in the fifth minute away it tries every 3 s (a little later when a step of the clock overtakes it), not
        // more often; the old doubling tried twice (every 30 s)
        Assert.InRange(_reporter.Rounds - rounds, 15, 21);

        _objects.Unavailable = false;
        var took = await StepUntilAsync(() => Stored()!.Status!.Store!.Checkpoints == 3, step, TimeSpan.FromMinutes(1),
            "written once the server is back");
        Assert.True(took <= TimeSpan.FromSeconds(5), $"written {took} after the server came back");
    }

    /// <summary>Advances the clock by <paramref name="step"/>, each time once the reporter waits, until <paramref name="done"/>.</summary>
    private async Task<TimeSpan> StepUntilAsync(Func<bool> done, TimeSpan step, TimeSpan max, string what)
    {
        var advanced = TimeSpan.Zero;
        while (true)
        {
            await Eventually.TrueAsync(() => done() || _reporter.Waiting, $"{what}, or the reporter waits");
            if (done()) return advanced;
            if (advanced >= max) throw new TimeoutException($"not true within {max} of simulated time: {what}");
            _time.Advance(step);
            advanced += step;
        }
    }

    private static CheckpointNode StatusWriterCopy(CheckpointNode obj) =>
        Crsc.Controllers.Kubernetes.StatusWriter.DeepCopy(CrscResources.CheckpointNodes, obj);
}

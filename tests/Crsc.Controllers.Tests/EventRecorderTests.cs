using Crsc.Api.Kubernetes;
using Crsc.Controllers.Events;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Tests.Support;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests;

public sealed class EventRecorderTests
{
    private readonly ManualTimeProvider _time = new();
    private readonly FakeResourceClient<CoreEvent> _events;
    private readonly EventRecorder _recorder;
    private readonly TestObject _pod;

    public EventRecorderTests()
    {
        _events = new FakeKube(_time).For(EventResources.CoreEvents);
        _recorder = new EventRecorder(new ApiEventSink(_events),
            new EventRecorderOptions { Host = "node-1", ReportingInstance = "node-1_abc" }, _time, NullLogger.Instance);
        _pod = TestObject.New("ns", "web-0");
        _pod.Metadata.Uid = "uid-1";
        _pod.Metadata.ResourceVersion = "7";
    }

    private IReadOnlyList<CoreEvent> Stored => _events.AllStored();

    [Fact]
    public async Task An_event_names_its_object_source_and_reporter()
    {
        _recorder.Warning(_pod, "CheckpointFailed", "runtime said no");
        await _recorder.FlushAsync(default);
        var ev = Assert.Single(Stored);
        Assert.Equal("ns", ev.Metadata.Namespace);
        Assert.StartsWith("web-0.", ev.Metadata.Name);
        Assert.Equal(("test.crsc.io/v1", "TestObject", "ns", "web-0", "uid-1"),
            (ev.InvolvedObject.ApiVersion, ev.InvolvedObject.Kind, ev.InvolvedObject.Namespace, ev.InvolvedObject.Name, ev.InvolvedObject.Uid));
        Assert.Equal(CoreEvent.Warning, ev.Type);
        Assert.Equal("CheckpointFailed", ev.Reason);
        Assert.Equal("runtime said no", ev.Message);
        Assert.Equal("crsc", ev.Source!.Component);
        Assert.Equal("node-1", ev.Source.Host);
        Assert.Equal("crsc", ev.ReportingComponent);
        Assert.Equal("node-1_abc", ev.ReportingInstance);
        Assert.Equal(1, ev.Count);
        Assert.Equal(_time.GetUtcNow(), ev.FirstTimestamp);
    }

    [Fact]
    public async Task Repeats_within_the_window_raise_the_count_of_one_event()
    {
        var first = _time.GetUtcNow();
        _recorder.Normal(_pod, "Checkpointed", "checkpoint done");
        await _recorder.FlushAsync(default);
        for (var i = 0; i < 4; i++)
        {
            _time.Advance(TimeSpan.FromMinutes(1));
            _recorder.Normal(_pod, "Checkpointed", "checkpoint done");
        }
        await _recorder.FlushAsync(default);
        var ev = Assert.Single(Stored);
        Assert.Equal(5, ev.Count);
        Assert.Equal(first, ev.FirstTimestamp);
        Assert.Equal(_time.GetUtcNow(), ev.LastTimestamp);
        Assert.Equal(1, _events.CallCount("create"));
        Assert.Equal(4, _events.CallCount("patch"));
    }

    [Fact]
    public async Task A_different_message_reason_type_or_object_is_a_new_event()
    {
        var other = TestObject.New("ns", "web-1");
        _recorder.Normal(_pod, "Checkpointed", "one");
        _recorder.Normal(_pod, "Checkpointed", "two");
        _recorder.Normal(_pod, "Restored", "one");
        _recorder.Warning(_pod, "Checkpointed", "one");
        _recorder.Normal(other, "Checkpointed", "one");
        _recorder.Normal(_pod, "Checkpointed", "one");
        await _recorder.FlushAsync(default);
        Assert.Equal(5, Stored.Count);
        Assert.Equal(5, Stored.Select(e => e.Metadata.Name).Distinct().Count());
        Assert.Equal(2, Stored.Single(e => e.Message == "one" && e.Reason == "Checkpointed" && e.Type == CoreEvent.Normal && e.InvolvedObject.Name == "web-0").Count);
    }

    [Fact]
    public async Task After_the_window_a_repeat_starts_a_new_event()
    {
        _recorder.Normal(_pod, "Checkpointed", "done");
        await _recorder.FlushAsync(default);
        _time.Advance(TimeSpan.FromMinutes(11));
        _recorder.Normal(_pod, "Checkpointed", "done");
        await _recorder.FlushAsync(default);
        Assert.Equal(2, Stored.Count);
        Assert.All(Stored, e => Assert.Equal(1, e.Count));
    }

    [Fact]
    public async Task A_repeat_of_an_expired_event_creates_a_new_one_carrying_the_count()
    {
        _recorder.Normal(_pod, "Checkpointed", "done");
        await _recorder.FlushAsync(default);
        var first = Assert.Single(Stored);
        await _events.DeleteAsync(first.Metadata.Namespace, first.Metadata.Name!, null, default); // the API server's TTL
        _recorder.Normal(_pod, "Checkpointed", "done");
        await _recorder.FlushAsync(default);
        var second = Assert.Single(Stored);
        Assert.NotEqual(first.Metadata.Name, second.Metadata.Name);
        Assert.Equal(2, second.Count);
    }

    [Fact]
    public async Task Write_failures_are_logged_and_dropped_never_thrown()
    {
        _events.Unavailable = true;
        _recorder.Warning(_pod, "CheckpointFailed", "x");
        await _recorder.FlushAsync(default); // does not throw
        Assert.Empty(Stored);
        _events.Unavailable = false;
        _events.BeforeCall = (verb, _) => { if (verb == "create") throw new ForbiddenException("Forbidden", "no"); };
        _recorder.Warning(_pod, "Other", "y");
        await _recorder.FlushAsync(default);
        _events.BeforeCall = null;
        _recorder.Warning(_pod, "Third", "z");
        await _recorder.FlushAsync(default);
        Assert.Equal("Third", Assert.Single(Stored).Reason);
    }

    [Fact]
    public async Task A_full_queue_drops_and_counts_instead_of_blocking()
    {
        var small = new EventRecorder(new ApiEventSink(_events), new EventRecorderOptions { QueueCapacity = 2 }, _time, NullLogger.Instance);
        for (var i = 0; i < 5; i++) small.Normal(_pod, "R", $"m{i}");
        Assert.Equal(3, small.Dropped);
        await small.FlushAsync(default);
        Assert.Equal(["m0", "m1"], Stored.Select(e => e.Message).Order());
    }

    [Fact]
    public async Task Cluster_scoped_objects_get_their_events_in_default()
    {
        var node = new Lease { Metadata = new ObjectMeta { Name = "n1" }, Kind = "Node", ApiVersion = "v1" };
        _recorder.Normal(node, "Draining", "node is draining");
        await _recorder.FlushAsync(default);
        var ev = Assert.Single(Stored);
        Assert.Equal("default", ev.Metadata.Namespace);
        Assert.Null(ev.InvolvedObject.Namespace);
    }

    [Fact]
    public async Task Run_writes_in_the_background()
    {
        using var cts = new CancellationTokenSource();
        var run = _recorder.RunAsync(cts.Token);
        _recorder.Normal(_pod, "Checkpointed", "done");
        _recorder.Normal(_pod, "Checkpointed", "done");
        await Eventually.TrueAsync(() => Stored.Count == 1 && Stored[0].Count == 2, "written and aggregated");
        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10));
    }
}

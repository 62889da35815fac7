using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Testing;
using Crsc.Testing.Kube;

namespace Crsc.Kube.Tests;

public sealed class WatchTests : IAsyncLifetime
{
    private FakeApiServer _server = null!;
    private KubeApi _api = null!;
    private IKubeResourceClient<ConfigMap> _cms = null!;
    private readonly CancellationToken _ct = TestClients.Timeout(60);

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromHours(1) });
        _api = TestClients.For(_server);
        _cms = _api.Resource(Resources.ConfigMaps);
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _server.DisposeAsync();
    }

    private Task<ConfigMap> CreateAsync(string name, string value = "1", string ns = "ns1", Dictionary<string, string>? labels = null)
        => _cms.CreateAsync(new ConfigMap { Metadata = new() { Name = name, Namespace = ns, Labels = labels }, Data = new() { ["v"] = value } }, _ct);

    private async Task<ConfigMap> SetAsync(string name, string value, string ns = "ns1")
    {
        var cm = await _cms.GetAsync(ns, name, _ct);
        cm.Data = new() { ["v"] = value };
        return await _cms.UpdateAsync(cm, _ct);
    }

    /// <summary>Reads events from a watch on a background task so the test can act while it runs.</summary>
    private sealed class Collector
    {
        private readonly List<WatchEvent<ConfigMap>> _events = [];
        public Task Completion { get; }
        public Exception? Error { get; private set; }

        public Collector(IAsyncEnumerable<WatchEvent<ConfigMap>> stream)
        {
            Completion = Task.Run(async () =>
            {
                try { await foreach (var e in stream) lock (_events) _events.Add(e); }
                catch (Exception e) { Error = e; }
            });
        }

        public List<WatchEvent<ConfigMap>> Events { get { lock (_events) return _events.ToList(); } }

        public List<string> Describe(bool withBookmarks = false)
            => Events.Where(e => withBookmarks || e.Type != WatchEventType.Bookmark)
                .Select(e => $"{e.Type} {e.Object.Metadata.Name}={e.Object.Data?.GetValueOrDefault("v")}").ToList();
    }

    [Fact]
    public async Task Watch_from_a_resource_version_sees_later_changes_with_their_resource_versions()
    {
        await CreateAsync("a");
        var list = await _cms.ListAsync("ns1", new ListOptions(), _ct);
        await CreateAsync("b");
        var collector = new Collector(_cms.WatchAsync("ns1", new WatchOptions(list.Metadata.ResourceVersion), _ct));
        await Eventually.TrueAsync(() => _server.WatchCount == 1, "watch registered");
        var updated = await SetAsync("a", "2");
        await _cms.DeleteAsync("ns1", "b", null, _ct);

        await Eventually.TrueAsync(() => collector.Events.Count == 3, "three events");
        Assert.Equal(["Added b=1", "Modified a=2", "Deleted b=1"], collector.Describe());
        Assert.Equal(updated.Metadata.ResourceVersion, collector.Events[1].Object.Metadata.ResourceVersion);
        // the DELETED event carries the deletion's own (final) resourceVersion
        Assert.True(long.Parse(collector.Events[2].Object.Metadata.ResourceVersion!) > long.Parse(updated.Metadata.ResourceVersion!));

        var request = _server.Requests.Single(r => r.IsWatch);
        Assert.Contains("allowWatchBookmarks=true", request.Query);
        Assert.Contains($"resourceVersion={list.Metadata.ResourceVersion}", request.Query);
    }

    [Fact]
    public async Task Watch_without_resource_version_starts_with_synthetic_added_events()
    {
        await CreateAsync("a");
        await CreateAsync("other", ns: "ns2");
        var collector = new Collector(_cms.WatchAsync("ns1", new WatchOptions(null), _ct));
        await Eventually.TrueAsync(() => collector.Events.Count == 1, "synthetic ADDED");
        Assert.Equal(["Added a=1"], collector.Describe());
    }

    [Fact]
    public async Task Bookmarks_carry_the_current_resource_version()
    {
        var created = await CreateAsync("a");
        var collector = new Collector(_cms.WatchAsync("ns1", new WatchOptions(created.Metadata.ResourceVersion), _ct));
        await Eventually.TrueAsync(() => _server.WatchCount == 1, "watch registered");
        await CreateAsync("elsewhere", ns: "ns2");
        _server.SendBookmarks();
        await Eventually.TrueAsync(() => collector.Events.Count == 1, "bookmark");
        var bookmark = collector.Events[0];
        Assert.Equal(WatchEventType.Bookmark, bookmark.Type);
        Assert.Equal(_server.ResourceVersion.ToString(), bookmark.Object.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task Periodic_bookmarks_are_sent_when_allowed()
    {
        await using var server = await FakeApiServer.StartAsync(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(100) });
        using var api = TestClients.For(server);
        var collector = new Collector(api.Resource(Resources.ConfigMaps).WatchAsync("ns1", new WatchOptions("0"), _ct));
        await Eventually.TrueAsync(() => collector.Events.Count(e => e.Type == WatchEventType.Bookmark) >= 2, "periodic bookmarks");
    }

    [Fact]
    public async Task A_compacted_resource_version_is_410_gone()
    {
        var created = await CreateAsync("a");
        await SetAsync("a", "2");
        _server.Compact();
        var expired = await Assert.ThrowsAsync<ResourceExpiredException>(async () =>
        {
            await foreach (var _ in _cms.WatchAsync("ns1", new WatchOptions(created.Metadata.ResourceVersion), _ct)) { }
        });
        Assert.Equal(410, expired.Code);
        Assert.Equal("Expired", expired.Reason);
        Assert.Contains("too old resource version", expired.Message);
    }

    [Fact]
    public async Task A_malformed_line_is_skipped_and_the_watch_goes_on()
    {
        var created = await CreateAsync("a");
        var collector = new Collector(_cms.WatchAsync("ns1", new WatchOptions(created.Metadata.ResourceVersion), _ct));
        await Eventually.TrueAsync(() => _server.WatchCount == 1, "watch registered");
        _server.SendRawWatchLine("{not json");
        _server.SendRawWatchLine("""{"type":"ADDED"}""");
        _server.SendRawWatchLine("""{"type":"SOMETHING","object":{}}""");
        _server.SendRawWatchLine("""{"type":"MODIFIED","object":{"metadata":{"name":5}}}""");
        await SetAsync("a", "2");
        await Eventually.TrueAsync(() => collector.Events.Count == 1, "the good event");
        Assert.Equal(["Modified a=2"], collector.Describe());
        Assert.Null(collector.Error);
        Assert.False(collector.Completion.IsCompleted);
    }

    [Fact]
    public async Task Server_closing_the_stream_ends_the_sequence_and_timeout_seconds_is_honoured()
    {
        var created = await CreateAsync("a");
        var collector = new Collector(_cms.WatchAsync("ns1", new WatchOptions(created.Metadata.ResourceVersion), _ct));
        await Eventually.TrueAsync(() => _server.WatchCount == 1, "watch registered");
        _server.CloseWatches();
        await collector.Completion.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Null(collector.Error);

        var timed = new Collector(_cms.WatchAsync("ns1", new WatchOptions(created.Metadata.ResourceVersion, TimeoutSeconds: 1), _ct));
        await timed.Completion.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Null(timed.Error);
        Assert.Contains(_server.Requests, r => r.IsWatch && r.Query.Contains("timeoutSeconds=1"));
    }

    [Fact]
    public async Task Selector_watch_reports_objects_entering_and_leaving_the_selection()
    {
        var created = await CreateAsync("a", labels: new() { ["crsc.io/managed"] = "true" });
        var collector = new Collector(_cms.WatchAsync("ns1",
            new WatchOptions(created.Metadata.ResourceVersion, LabelSelector: "crsc.io/managed=true"), _ct));
        await Eventually.TrueAsync(() => _server.WatchCount == 1, "watch registered");
        await CreateAsync("b");
        var b = await _cms.GetAsync("ns1", "b", _ct);
        b.Metadata.Labels = new() { ["crsc.io/managed"] = "true" };
        await _cms.UpdateAsync(b, _ct);
        var a = await _cms.GetAsync("ns1", "a", _ct);
        a.Metadata.Labels = null;
        await _cms.UpdateAsync(a, _ct);
        await Eventually.TrueAsync(() => collector.Events.Count == 2, "two transitions");
        Assert.Equal(["Added b=1", "Deleted a=1"], collector.Describe());
    }

    [Fact]
    public async Task A_watch_resumed_from_its_last_resource_version_after_a_close_or_an_outage_repeats_nothing()
    {
        var created = await CreateAsync("a");
        var first = new Collector(_cms.WatchAsync("ns1", new WatchOptions(created.Metadata.ResourceVersion), _ct));
        await Eventually.TrueAsync(() => _server.WatchCount == 1, "watching");
        var updated = await SetAsync("a", "2");
        await Eventually.TrueAsync(() => first.Events.Count == 1, "a live event");
        _server.CloseWatches();
        await first.Completion.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Null(first.Error);

        var second = new Collector(_cms.WatchAsync("ns1", new WatchOptions(first.Events[^1].Object.Metadata.ResourceVersion), _ct));
        await Eventually.TrueAsync(() => _server.WatchCount == 1, "resumed");
        await SetAsync("a", "3");
        await Eventually.TrueAsync(() => second.Events.Count == 1, "the event after the resume");

        // the server stops under an open watch: the sequence ends, and after the outage the watch resumes
        await _server.StopAsync();
        await second.Completion.WaitAsync(TimeSpan.FromSeconds(20));
        await _server.StartAsync();
        var third = new Collector(_cms.WatchAsync("ns1", new WatchOptions(second.Events[^1].Object.Metadata.ResourceVersion), _ct));
        await Eventually.TrueAsync(() => _server.WatchCount == 1, "watching again after the outage");
        await SetAsync("a", "4");
        await Eventually.TrueAsync(() => third.Events.Count == 1, "the event after the outage");

        Assert.Equal(["Modified a=2"], first.Describe());
        Assert.Equal(["Modified a=3"], second.Describe());
        Assert.Equal(["Modified a=4"], third.Describe());
        Assert.Equal(updated.Metadata.ResourceVersion, first.Events[0].Object.Metadata.ResourceVersion);
    }
}

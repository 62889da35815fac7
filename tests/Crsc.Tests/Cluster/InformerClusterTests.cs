using Crsc.Api.Kubernetes;
using Crsc.Controllers.Health;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Kube;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Tests.Cluster;

/// <summary><see cref="Informer{T}"/> through the real HTTP client against <see cref="FakeApiServer"/>.</summary>
public sealed class InformerClusterTests : IAsyncLifetime
{
    private FakeApiServer _server = null!;
    private KubeApi _api = null!;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _events = [];
    private readonly HealthRegistry _health = new(TimeProvider.System);
    private Informer<Pod> _informer = null!;
    private Task _run = Task.CompletedTask;

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync();
        _api = ClusterTestKit.Api(_server);
    }

    public async Task DisposeAsync()
    {
        _server.BeforeRequest = null;
        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(30));
        _api.Dispose();
        await _server.DisposeAsync();
    }

    private IKubeResourceClient<Pod> Pods => _api.Resource(Resources.Pods);

    private async Task StartAsync(InformerOptions? options = null)
    {
        _informer = new Informer<Pod>(Pods, options ?? new InformerOptions
        {
            PageSize = 4,
            InitialBackoff = TimeSpan.FromMilliseconds(100),
            MaxBackoff = TimeSpan.FromSeconds(1),
        }, TimeProvider.System, NullLogger.Instance, _health);
        _informer.AddEventHandler(new ResourceEventHandler<Pod>(
            p => Record($"add {p.Metadata.Name}"),
            (_, p) => Record($"update {p.Metadata.Name}"),
            p => Record($"delete {p.Metadata.Name}")));
        _run = _informer.RunAsync(_stop.Token);
        await _informer.WaitForSyncAsync(ClusterTestKit.Timeout());
    }

    private void Record(string e) { lock (_events) _events.Add(e); }

    private List<string> Events() { lock (_events) return [.. _events]; }

    private void ClearEvents() { lock (_events) _events.Clear(); }

    private void Seed(int count, string node = "node-a")
    {
        for (var i = 0; i < count; i++) _server.Seed(Resources.Pods, ClusterTestKit.Pod($"pod-{i:00}", node));
    }

    private HealthEntry? Entry => _health.Snapshot().SingleOrDefault(e => e.Component == "informer/pods");

    private async Task<bool> CacheMatchesServerAsync()
    {
        var server = _server.All(_server.ResourceOf(Resources.Pods))
            .Select(o => $"{o["metadata"]!["name"]}@{o["metadata"]!["resourceVersion"]}").Order().ToList();
        var cache = _informer.List().Select(p => $"{p.Metadata.Name}@{p.Metadata.ResourceVersion}").Order().ToList();
        await Task.Yield();
        return server.SequenceEqual(cache);
    }

    private static bool IsListOfPods(FakeRequest r) => r is { Method: "GET", Path: "/api/v1/pods", IsWatch: false };

    [Fact]
    public async Task Lists_every_page_then_watches_changes()
    {
        Seed(25);
        await StartAsync();

        Assert.Equal(25, _informer.Count);
        var lists = _server.Requests.Where(IsListOfPods).ToList();
        Assert.Equal(7, lists.Count); // 25 objects, 4 a page
        Assert.All(lists, r => Assert.Contains("limit=4", r.Query));
        Assert.Equal(6, lists.Count(r => r.Query.Contains("continue=", StringComparison.Ordinal)));
        Assert.Equal(Enumerable.Range(0, 25).Select(i => $"add pod-{i:00}"), Events().Order());
        Assert.Equal(HealthStatus.Healthy, Entry?.Status);

        ClearEvents();
        await Pods.CreateAsync(ClusterTestKit.Pod("new", "node-a"), ClusterTestKit.Timeout());
        var changed = await Pods.GetAsync("default", "pod-03", ClusterTestKit.Timeout());
        changed.Metadata.Labels!["app"] = "changed";
        await Pods.UpdateAsync(changed, ClusterTestKit.Timeout());
        await Pods.DeleteAsync("default", "pod-07", null, ClusterTestKit.Timeout());

        await Eventually.TrueAsync(() => Events().Count == 3, "three watch events");
        Assert.Equal(["add new", "update pod-03", "delete pod-07"], Events());
        Assert.Equal("changed", _informer.Get(new("default", "pod-03"))!.Metadata.Labels!["app"]);
        Assert.True(await CacheMatchesServerAsync());
    }

    [Fact]
    public async Task After_compaction_a_410_relists_and_announces_each_change_once()
    {
        Seed(10);
        await StartAsync();
        ClearEvents();
        var listsBefore = _server.Requests.Count(IsListOfPods);
        var watchesBefore = _server.Requests.Count(r => r.IsWatch);

        // hold the informer's next watch back while the world changes and the history is compacted away
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _server.BeforeRequest = (r, ct) => r.IsWatch ? gate.Task.WaitAsync(ct) : Task.CompletedTask;
        _server.CloseWatches();
        await Pods.CreateAsync(ClusterTestKit.Pod("late", "node-a"), ClusterTestKit.Timeout());
        await Pods.DeleteAsync("default", "pod-02", null, ClusterTestKit.Timeout());
        var changed = await Pods.GetAsync("default", "pod-05", ClusterTestKit.Timeout());
        changed.Metadata.Labels!["app"] = "changed";
        await Pods.UpdateAsync(changed, ClusterTestKit.Timeout());
        _server.Compact();
        await Eventually.TrueAsync(() => _server.Requests.Count(r => r.IsWatch) > watchesBefore, "the informer re-watches");
        gate.SetResult();

        await Eventually.TrueAsync(() => _server.Requests.Count(IsListOfPods) > listsBefore, "a relist after 410");
        await Eventually.TrueAsync(() => Events().Count >= 3, "the difference announced");
        await Eventually.TrueAsync(CacheMatchesServerAsync, "the cache matches the server");
        await Task.Delay(300); // nothing more trickles in
        Assert.Equal(["add late", "delete pod-02", "update pod-05"], Events().Order());
        Assert.Equal(10, _informer.Count);
    }

    [Fact]
    public async Task A_stream_the_server_closes_is_resumed_from_the_last_resource_version_without_a_relist()
    {
        Seed(5);
        await StartAsync();
        ClearEvents();
        var listsBefore = _server.Requests.Count(IsListOfPods);
        var watchesBefore = _server.Requests.Count(r => r.IsWatch);
        var rv = _informer.LastSyncResourceVersion;

        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _server.BeforeRequest = (r, ct) => r.IsWatch ? gate.Task.WaitAsync(ct) : Task.CompletedTask;
        _server.CloseWatches();
        await Pods.CreateAsync(ClusterTestKit.Pod("while-closed", "node-a"), ClusterTestKit.Timeout());
        await Eventually.TrueAsync(() => _server.Requests.Count(r => r.IsWatch) > watchesBefore, "the informer re-watches");
        gate.SetResult();

        await Eventually.TrueAsync(() => Events().Count == 1, "the event made while closed");
        Assert.Equal(["add while-closed"], Events());
        var resumed = _server.Requests.Where(r => r.IsWatch).Skip(watchesBefore).First();
        Assert.Contains($"resourceVersion={rv}", resumed.Query);
        Assert.Equal(listsBefore, _server.Requests.Count(IsListOfPods));
        Assert.True(await CacheMatchesServerAsync());
    }

    [Fact]
    public async Task An_api_server_outage_is_degraded_then_healthy_with_the_changes_made_meanwhile()
    {
        Seed(5);
        await StartAsync();
        Assert.Equal(HealthStatus.Healthy, Entry?.Status);
        ClearEvents();

        await _server.StopAsync();
        await Eventually.TrueAsync(() => Entry?.Status == HealthStatus.Degraded, "the informer reports the outage");
        Assert.Contains("unreachable", Entry!.Message);
        Assert.True(_informer.HasSynced); // the cache stays usable meanwhile
        Assert.Equal(5, _informer.Count);

        // the world moves on while the informer cannot see it
        _server.Seed(Resources.Pods, ClusterTestKit.Pod("during-outage", "node-a"));
        await _server.StartAsync();

        await Eventually.TrueAsync(() => Entry?.Status == HealthStatus.Healthy, "healthy again");
        await Eventually.TrueAsync(CacheMatchesServerAsync, "the cache caught up");
        Assert.Equal(["add during-outage"], Events());
    }

    /// <summary>
    /// With production's backoff: while the API server cannot be reached, however long, the informer tries every 3 to
    /// 3.75 s (never more often, never less), so that it lists again within 5 s of the server's return. The old single
    /// backoff (<c>InformerOptions.MaxBackoff</c> = 30 s, stretched by up to 100 %) waited 30 to 60 s between attempts
    /// after the first half minute.
    /// </summary>
    [Fact]
    public async Task An_api_server_away_for_minutes_is_tried_every_few_seconds_and_listed_within_5_s_of_its_return()
    {
        Seed(3);
        var time = new ManualTimeProvider();
        var outage = new ApiServerOutage(_server, time, IsListOfPods);
        _informer = new Informer<Pod>(Pods, new InformerOptions(), time, NullLogger.Instance, _health, new Random(5));
        _run = _informer.RunAsync(_stop.Token);
        await _informer.WaitForSyncAsync(ClusterTestKit.Timeout());
        await Eventually.TrueAsync(() => _server.Requests.Any(r => r.IsWatch), "watching");

        var step = TimeSpan.FromMilliseconds(100);
        var away = time.GetUtcNow();
        outage.Away = true;
        _server.CloseWatches(); // the stream breaks as the server goes
        await ApiServerOutage.AdvanceUntilAsync(time, () => false, step, TimeSpan.FromMinutes(5), "away");
        Assert.Equal(HealthStatus.Degraded, Entry?.Status);
        Assert.Contains("unreachable", Entry!.Message);

        var back = time.GetUtcNow();
        outage.Away = false;
        var took = await ApiServerOutage.AdvanceUntilAsync(time, () => Entry?.Status == HealthStatus.Healthy, step,
            TimeSpan.FromSeconds(30), "listed again");
        Assert.True(took <= TimeSpan.FromSeconds(5), $"listed again {took} after the server came back");

        // after the first attempts (0.8 s, 1.6 s), each wait is the 3 s cap plus up to 25 %: within a step of the clock
        var gaps = ApiServerOutage.Gaps(outage.Attempts(away, back));
        Assert.True(gaps.Count >= 75, $"{gaps.Count} attempts in 5 minutes");
        Assert.All(gaps, g => Assert.InRange(g, TimeSpan.Zero, TimeSpan.FromSeconds(3.75) + step));
        Assert.All(gaps.Skip(3), g => Assert.InRange(g, TimeSpan.FromSeconds(3) - step, TimeSpan.FromSeconds(3.75) + step));
    }
}

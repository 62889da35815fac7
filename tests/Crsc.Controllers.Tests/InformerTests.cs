using System.Collections.Concurrent;
using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Health;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Tests.Support;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests;

public sealed class InformerTests : IAsyncLifetime
{
    private readonly ManualTimeProvider _time = new();
    private readonly FakeKube _kube;
    private readonly FakeResourceClient<TestObject> _objects;
    private readonly HealthRegistry _health;
    private readonly CancellationTokenSource _stop = new();
    private readonly Recorder _events = new();
    private Informer<TestObject> _informer = null!;
    private Task _run = Task.CompletedTask;

    public InformerTests()
    {
        _kube = new FakeKube(_time);
        _objects = _kube.For(TestResources.TestObjects);
        _objects.FieldReader = (o, field) => field == "spec.nodeName" ? o.Spec.NodeName : null;
        _health = new HealthRegistry(_time);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(20));
        _stop.Dispose();
    }

    /// <summary>Every notification as "add ns/name", "update ns/name old->new", "delete ns/name".</summary>
    private sealed class Recorder : IResourceEventHandler<TestObject>
    {
        public ConcurrentQueue<string> Seen { get; } = new();
        public void OnAdd(TestObject obj) => Seen.Enqueue($"add {obj.Metadata.Key}");
        public void OnUpdate(TestObject oldObj, TestObject newObj)
            => Seen.Enqueue($"update {newObj.Metadata.Key} {oldObj.Spec.Value}->{newObj.Spec.Value}");
        public void OnDelete(TestObject obj) => Seen.Enqueue($"delete {obj.Metadata.Key}");
        public List<string> Take()
        {
            var list = new List<string>();
            while (Seen.TryDequeue(out var s)) list.Add(s);
            return list;
        }
    }

    private async Task StartAsync(InformerOptions? options = null)
    {
        _informer = new Informer<TestObject>(_objects, options ?? new InformerOptions { PageSize = 10, JitterFactor = 0 },
            _time, NullLogger.Instance, _health, new Random(1));
        _informer.AddIndexer(Indexers.Namespace, Indexers.ByNamespace);
        _informer.AddIndexer(Indexers.NodeName, Indexers.ByNodeName<TestObject>(o => o.Spec.NodeName));
        _informer.AddIndexer(Indexers.OwnerUid, Indexers.ByOwnerUid);
        _informer.AddEventHandler(_events);
        _run = _informer.RunAsync(_stop.Token);
        await _informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));
        await WatchingAsync();
    }

    private async Task WatchingAsync() => await Eventually.TrueAsync(() => _objects.OpenWatches == 1, "watching");

    private Task<TestObject> CreateAsync(string ns, string name, string? node = null, string? value = null,
        List<OwnerReference>? owners = null)
        => _objects.CreateAsync(TestObject.New(ns, name, node, value, owners: owners), default);

    private async Task<TestObject> SetValueAsync(string ns, string name, string value)
    {
        var o = await _objects.GetAsync(ns, name, default);
        o.Spec.Value = value;
        return await _objects.UpdateAsync(o, default);
    }

    private async Task SeenAsync(params string[] expected)
    {
        var seen = new List<string>();
        await Eventually.TrueAsync(() =>
        {
            seen.AddRange(_events.Take());
            return seen.Count >= expected.Length;
        }, $"events {string.Join(", ", expected)}");
        await Task.Delay(50); // nothing more may follow
        seen.AddRange(_events.Take());
        Assert.Equal(expected, seen);
    }

    [Fact]
    public async Task Initial_list_reads_every_page_and_syncs()
    {
        for (var i = 0; i < 25; i++) await CreateAsync(i % 2 == 0 ? "even" : "odd", $"o{i:00}");
        var rv = _kube.CurrentResourceVersion.ToString();
        await StartAsync();
        Assert.True(_informer.HasSynced);
        Assert.Equal(3, _objects.CallCount("list"));
        Assert.Equal(25, _informer.Count);
        Assert.Equal(rv, _informer.LastSyncResourceVersion);
        Assert.Equal(rv, _objects.WatchResourceVersions.Single()); // the watch starts where the list ended
        Assert.Equal(25, _events.Take().Count(e => e.StartsWith("add ")));
        Assert.Equal(13, _informer.ByIndex(Indexers.Namespace, "even").Count);
        Assert.Equal(HealthStatus.Healthy, _health.Overall);
    }

    [Fact]
    public async Task Running_again_is_not_synced_until_the_new_list_and_announces_what_changed_meanwhile()
    {
        await CreateAsync("ns", "a", value: "1");
        await StartAsync();
        _events.Take();
        await _stop.CancelAsync();
        await _run.WaitAsync(TimeSpan.FromSeconds(20));

        // while stopped (another instance led), the world moved on; the second run's first list fails
        await SetValueAsync("ns", "a", "2");
        await CreateAsync("ns", "b", value: "1");
        var lists = _objects.CallCount("list");
        _objects.Unavailable = true;
        using var again = new CancellationTokenSource();
        var run = Task.Run(() => _informer.RunAsync(again.Token));
        await Eventually.TrueAsync(() => _objects.CallCount("list") > lists, "the second run lists");
        Assert.False(_informer.HasSynced); // the old cache must not pass for synced
        var sync = _informer.WaitForSyncAsync(CancellationToken.None);
        Assert.False(sync.IsCompleted);
        _objects.Unavailable = false;
        await Clock.AdvanceUntilAsync(_time, () => sync.IsCompleted, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(2), "listed again");
        Assert.Equal("2", _informer.Get(new ObjectKey("ns", "a"))!.Spec.Value);
        await SeenAsync("update ns/a 1->2", "add ns/b");
        await again.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task A_second_index_of_the_same_name_is_refused_by_AddIndexer_and_skipped_by_TryAddIndexer()
    {
        await CreateAsync("ns", "a", node: "n1");
        await StartAsync();
        Assert.Throws<InvalidOperationException>(() => _informer.AddIndexer(Indexers.NodeName, _ => ["other"]));
        Assert.False(_informer.TryAddIndexer(Indexers.NodeName, _ => ["other"]));
        Assert.Single(_informer.ByIndex(Indexers.NodeName, "n1")); // the first index stays
        Assert.Empty(_informer.ByIndex(Indexers.NodeName, "other"));
        Assert.True(_informer.TryAddIndexer("by-value", o => [o.Spec.Value ?? ""]));
    }

    [Fact]
    public async Task Watch_events_update_the_cache_and_the_handlers_in_order()
    {
        await CreateAsync("ns", "a", value: "1");
        await StartAsync();
        _events.Take();
        await CreateAsync("ns", "b", value: "1");
        await SetValueAsync("ns", "a", "2");
        await _objects.DeleteAsync("ns", "b", null, default);
        await SeenAsync("add ns/b", "update ns/a 1->2", "delete ns/b");
        Assert.Equal("2", _informer.Get(new ObjectKey("ns", "a"))!.Spec.Value);
        Assert.Null(_informer.Get(new ObjectKey("ns", "b")));
        Assert.Equal(_kube.CurrentResourceVersion.ToString(), _informer.LastSyncResourceVersion);
    }

    [Fact]
    public async Task Indexes_follow_changes()
    {
        var owner = new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = "rs", Uid = "rs-uid", Controller = true };
        await CreateAsync("ns", "p1", node: "n1", owners: [owner]);
        await CreateAsync("ns", "p2", node: "n2");
        await CreateAsync("other", "p3", node: "n1");
        await StartAsync();
        Assert.Equal(["ns/p1", "other/p3"], _informer.ByIndex(Indexers.NodeName, "n1").Select(o => o.Metadata.Key.ToString()).Order());
        Assert.Equal("p1", Assert.Single(_informer.ByIndex(Indexers.OwnerUid, "rs-uid")).Metadata.Name);
        Assert.Equal(2, _informer.ByIndex(Indexers.Namespace, "ns").Count);

        var p1 = await _objects.GetAsync("ns", "p1", default);
        p1.Spec.NodeName = "n2";
        await _objects.UpdateAsync(p1, default);
        await _objects.DeleteAsync("other", "p3", null, default);
        await Eventually.TrueAsync(() => _informer.ByIndex(Indexers.NodeName, "n1").Count == 0, "moved off n1");
        Assert.Equal(2, _informer.ByIndex(Indexers.NodeName, "n2").Count);
        Assert.Empty(_informer.ByIndex(Indexers.Namespace, "other"));
        Assert.Throws<InvalidOperationException>(() => _informer.ByIndex("nope", "x"));

        // an index added late covers what is cached already
        _informer.AddIndexer("value", o => o.Spec.Value is null ? ["none"] : [o.Spec.Value]);
        Assert.Equal(2, _informer.ByIndex("value", "none").Count);
    }

    [Fact]
    public async Task A_410_relists_and_announces_exactly_the_difference()
    {
        await CreateAsync("ns", "keep", value: "1");
        await CreateAsync("ns", "change", value: "1");
        await CreateAsync("ns", "remove", value: "1");
        await StartAsync();
        _events.Take();

        // the watch ends; while we are away things change and the history is compacted
        _objects.CloseWatches();
        await Eventually.TrueAsync(() => _objects.OpenWatches == 0 && _time.ActiveTimers == 1, "waiting to reconnect");
        await CreateAsync("ns", "new", value: "1");
        await SetValueAsync("ns", "change", "2");
        await _objects.DeleteAsync("ns", "remove", null, default);
        var recreated = await CreateAsync("ns", "remove", value: "3"); // same name, new object
        _objects.Compact();
        var listsBefore = _objects.CallCount("list");

        await Clock.AdvanceUntilAsync(_time, () => _objects.OpenWatches == 1, TimeSpan.FromMilliseconds(200),
            TimeSpan.FromMinutes(1), "watching again");
        Assert.Equal(listsBefore + 1, _objects.CallCount("list"));
        var seen = new List<string>();
        await Eventually.TrueAsync(() => { seen.AddRange(_events.Take()); return seen.Count >= 4; }, "deltas");
        await Task.Delay(50);
        seen.AddRange(_events.Take());
        Assert.Equal(["add ns/new", "add ns/remove", "delete ns/remove", "update ns/change 1->2"], seen.Order());
        Assert.Equal(4, seen.Count);
        Assert.Contains("add ns/new", seen);
        Assert.Contains("update ns/change 1->2", seen);
        Assert.True(seen.IndexOf("delete ns/remove") < seen.IndexOf("add ns/remove"), "the old object goes before the new one comes");
        Assert.DoesNotContain(seen, s => s.Contains("keep"));
        Assert.Equal(recreated.Metadata.Uid, _informer.Get(new ObjectKey("ns", "remove"))!.Metadata.Uid);
        Assert.Equal(4, _informer.Count);

        // and the watch goes on from the relist's resourceVersion without repeating anything
        await SetValueAsync("ns", "keep", "2");
        await SeenAsync("update ns/keep 1->2");
    }

    [Fact]
    public async Task A_closed_stream_resumes_from_the_last_resourceVersion_including_bookmarks()
    {
        await CreateAsync("ns", "a", value: "1");
        await StartAsync();
        _events.Take();
        _objects.BumpResourceVersion(5); // writes to other kinds
        _objects.SendBookmark();
        var bookmark = _kube.CurrentResourceVersion.ToString();
        await Eventually.TrueAsync(() => _informer.LastSyncResourceVersion == bookmark, "bookmark seen");

        _objects.CloseWatches();
        await Eventually.TrueAsync(() => _objects.OpenWatches == 0 && _time.ActiveTimers == 1, "waiting to reconnect");
        await CreateAsync("ns", "b", value: "1"); // while disconnected: must arrive once, from the history
        await Clock.AdvanceUntilAsync(_time, () => _objects.OpenWatches == 1, TimeSpan.FromMilliseconds(100),
            TimeSpan.FromMinutes(1), "watching again");
        Assert.Equal(bookmark, _objects.WatchResourceVersions[^1]);
        Assert.Equal(1, _objects.CallCount("list")); // resumed, not relisted
        await SeenAsync("add ns/b");
        Assert.Equal(HealthStatus.Healthy, _health.Overall);
    }

    [Fact]
    public async Task Reconnects_back_off_with_jitter_on_the_injected_clock()
    {
        await StartAsync(new InformerOptions { JitterFactor = 1.0, InitialBackoff = TimeSpan.FromSeconds(1), MaxBackoff = TimeSpan.FromSeconds(8) });
        var waits = new List<TimeSpan>();
        for (var i = 0; i < 5; i++)
        {
            _objects.CloseWatches(); // closes at once, without any event: the wait grows
            waits.Add(await Clock.AdvanceUntilAsync(_time, () => _objects.OpenWatches == 1, TimeSpan.FromMilliseconds(100),
                TimeSpan.FromMinutes(1), "reconnected"));
        }
        // 1 s, 2 s, 4 s, 8 s, 8 s, each stretched by up to 100 %
        var bases = new[] { 1, 2, 4, 8, 8 };
        for (var i = 0; i < 5; i++)
            Assert.InRange(waits[i].TotalSeconds, bases[i], bases[i] * 2 + 0.1);
        Assert.Equal(6, _objects.WatchResourceVersions.Count);
    }

    [Fact]
    public async Task Unreachable_api_server_is_degraded_retried_forever_and_recovers_with_the_difference()
    {
        await CreateAsync("ns", "a", value: "1");
        await StartAsync();
        _events.Take();
        _objects.Unavailable = true; // breaks the watch and every call
        await Eventually.TrueAsync(() => _health.Overall == HealthStatus.Degraded, "degraded");
        Assert.Contains("unreachable", _health.Summary());
        var lists = _objects.CallCount("list");
        for (var i = 0; i < 8; i++) // 8 more failed attempts, each after a backoff
        {
            var before = _objects.CallCount("list");
            await Clock.AdvanceUntilAsync(_time, () => _objects.CallCount("list") > before, TimeSpan.FromSeconds(1),
                TimeSpan.FromMinutes(2), "another attempt");
        }
        Assert.True(_objects.CallCount("list") >= lists + 8);
        Assert.Equal(HealthStatus.Degraded, _health.Overall);
        Assert.True(_informer.HasSynced); // the cache stays usable

        _objects.Unavailable = false;
        await CreateAsync("ns", "b", value: "1");
        await SetValueAsync("ns", "a", "2");
        await Clock.AdvanceUntilAsync(_time, () => _objects.OpenWatches == 1, TimeSpan.FromSeconds(1),
            TimeSpan.FromMinutes(2), "reconnected");
        await Eventually.TrueAsync(() => _health.Overall == HealthStatus.Healthy, "healthy again");
        var seen = new List<string>();
        await Eventually.TrueAsync(() => { seen.AddRange(_events.Take()); return seen.Count >= 2; }, "deltas");
        await Task.Delay(50);
        seen.AddRange(_events.Take());
        Assert.Equal(["add ns/b", "update ns/a 1->2"], seen.Order());
        Assert.Equal(2, seen.Count);
        Assert.Contains("add ns/b", seen);
        Assert.Contains("update ns/a 1->2", seen);
    }

    [Fact]
    public async Task Selectors_filter_list_and_watch()
    {
        await CreateAsync("ns", "mine", node: "node-a");
        await CreateAsync("ns", "theirs", node: "node-b");
        await CreateAsync("other", "mine-elsewhere", node: "node-a");
        await StartAsync(new InformerOptions { Namespace = "ns", FieldSelector = "spec.nodeName=node-a", JitterFactor = 0 });
        Assert.Equal(["ns/mine"], _informer.Keys().Select(k => k.ToString()));
        _events.Take();
        await CreateAsync("ns", "mine2", node: "node-a");
        await CreateAsync("ns", "theirs2", node: "node-b");
        await SeenAsync("add ns/mine2");
    }

    [Fact]
    public async Task A_late_handler_first_gets_the_cache_then_the_changes()
    {
        await CreateAsync("ns", "a", value: "1");
        await StartAsync();
        var late = new Recorder();
        using (var registration = _informer.AddEventHandler(late))
        {
            Assert.Equal(["add ns/a"], late.Take());
            await SetValueAsync("ns", "a", "2");
            await Eventually.TrueAsync(() => late.Seen.Count == 1, "late handler sees the update");
            Assert.Equal(["update ns/a 1->2"], late.Take());
        }
        await SetValueAsync("ns", "a", "3");
        await SeenAsync("add ns/a", "update ns/a 1->2", "update ns/a 2->3");
        Assert.Empty(late.Take()); // removed
    }

    /// <summary>
    /// Runs <paramref name="read"/> on another thread and waits for it a bounded time: "read" if it finished and
    /// returned true, "stale" if it returned false, "blocked" if it did not finish.
    /// </summary>
    private static string ReadFromAnotherThread(Func<bool> read)
    {
        var task = Task.Run(read);
        return !task.Wait(TimeSpan.FromSeconds(5)) ? "blocked" : task.Result ? "read" : "stale";
    }

    [Fact]
    public async Task A_handler_may_wait_for_another_thread_reading_the_cache_and_that_reader_sees_the_change()
    {
        await StartAsync();
        var reads = new ConcurrentQueue<string>();
        // the reader also checks that the cache already holds what the handler is told about
        _informer.AddEventHandler(new ResourceEventHandler<TestObject>(
            onAdd: o => reads.Enqueue(ReadFromAnotherThread(() => _informer.Get(o.Metadata.Key) is not null)),
            onUpdate: (_, o) => reads.Enqueue(ReadFromAnotherThread(() =>
                _informer.Get(o.Metadata.Key)?.Spec.Value == o.Spec.Value
                && _informer.ByIndex(Indexers.Namespace, "ns").Count == 1))));
        await CreateAsync("ns", "a", value: "1");
        await SetValueAsync("ns", "a", "2");
        await Eventually.TrueAsync(() => reads.Count == 2, "both handled");
        Assert.Equal(["read", "read"], reads);
        await SeenAsync("add ns/a", "update ns/a 1->2");
    }

    [Fact]
    public async Task Handlers_of_two_informers_reading_each_others_cache_from_other_threads_do_not_deadlock()
    {
        await StartAsync();
        var other = new Informer<TestObject>(_objects, new InformerOptions { PageSize = 10, JitterFactor = 0 },
            _time, NullLogger.Instance, random: new Random(2));
        var reads = new ConcurrentQueue<string>();
        // each informer's handler, for each event, waits on a thread that reads the other informer
        _informer.AddEventHandler(new ResourceEventHandler<TestObject>(onAdd: o =>
            reads.Enqueue("first " + ReadFromAnotherThread(() => other.List() is not null))));
        other.AddEventHandler(new ResourceEventHandler<TestObject>(onAdd: o =>
            reads.Enqueue("second " + ReadFromAnotherThread(() => _informer.List() is not null))));
        var run = other.RunAsync(_stop.Token);
        await other.WaitForSyncAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));
        await Eventually.TrueAsync(() => _objects.OpenWatches == 2, "both watching");

        for (var i = 0; i < 5; i++) await CreateAsync("ns", $"o{i}");
        await Eventually.TrueAsync(() => reads.Count == 10, "every event handled by both", TimeSpan.FromSeconds(60));
        Assert.Equal(5, reads.Count(r => r == "first read"));
        Assert.Equal(5, reads.Count(r => r == "second read"));
        await _stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20));
    }

    /// <summary>Replays notifications onto its own copy of the cache and notes every one that does not fit.</summary>
    private sealed class Replayer : IResourceEventHandler<TestObject>
    {
        private readonly Dictionary<ObjectKey, string> _state = [];
        public List<string> Problems { get; } = [];
        public int Seen { get; private set; }

        public Dictionary<ObjectKey, string> State { get { lock (_state) return new(_state); } }

        public void OnAdd(TestObject obj)
        {
            lock (_state)
            {
                Seen++;
                if (!_state.TryAdd(obj.Metadata.Key, obj.Metadata.ResourceVersion!)) Problems.Add($"add of known {obj.Metadata.Key}");
            }
        }

        public void OnUpdate(TestObject oldObj, TestObject newObj)
        {
            lock (_state)
            {
                Seen++;
                if (!_state.TryGetValue(newObj.Metadata.Key, out var rv)) Problems.Add($"update of unknown {newObj.Metadata.Key}");
                else if (rv != oldObj.Metadata.ResourceVersion) Problems.Add($"update of {newObj.Metadata.Key} from {oldObj.Metadata.ResourceVersion}, last told {rv}");
                _state[newObj.Metadata.Key] = newObj.Metadata.ResourceVersion!;
            }
        }

        public void OnDelete(TestObject obj)
        {
            lock (_state)
            {
                Seen++;
                if (!_state.Remove(obj.Metadata.Key)) Problems.Add($"delete of unknown {obj.Metadata.Key}");
            }
        }
    }

    [Fact]
    public async Task Handlers_added_while_watch_events_stream_in_miss_nothing_and_repeat_nothing()
    {
        await StartAsync();
        var writes = Task.Run(async () =>
        {
            for (var i = 0; i < 200; i++)
            {
                await CreateAsync("ns", $"o{i % 40}-{i / 40}", value: "1");
                if (i % 3 == 0) await SetValueAsync("ns", $"o{i % 40}-{i / 40}", "2");
                if (i % 5 == 0) await _objects.DeleteAsync("ns", $"o{i % 40}-{i / 40}", null, default);
                if (i % 10 != 9) continue;
                // now and then let the informer catch up, so handlers are added all along the stream
                var rv = _kube.CurrentResourceVersion.ToString();
                await Eventually.TrueAsync(() => _informer.LastSyncResourceVersion == rv, "the informer follows");
            }
        });
        // on another thread, a new handler whenever the informer has moved on
        var late = new List<Replayer>();
        var adding = Task.Run(() =>
        {
            string? lastRv = null;
            while (!writes.IsCompleted)
            {
                var rv = _informer.LastSyncResourceVersion;
                if (rv == lastRv)
                {
                    Thread.Yield();
                    continue;
                }
                lastRv = rv;
                var replayer = new Replayer();
                _informer.AddEventHandler(replayer);
                late.Add(replayer);
            }
        });
        await adding.WaitAsync(TimeSpan.FromSeconds(60));
        await writes;
        var final = _kube.CurrentResourceVersion.ToString();
        await Eventually.TrueAsync(() => _informer.LastSyncResourceVersion == final, "the informer caught up");
        var expected = _informer.List().ToDictionary(o => o.Metadata.Key, o => o.Metadata.ResourceVersion!);
        Assert.Equal(160, expected.Count);
        Assert.True(late.Count > 2, "handlers were added while the events came");
        foreach (var replayer in late)
        {
            Assert.Empty(replayer.Problems);
            Assert.Equal(expected.OrderBy(e => e.Key.ToString()), replayer.State.OrderBy(e => e.Key.ToString()));
        }
    }

    [Fact]
    public async Task A_handler_may_add_and_remove_handlers_while_it_is_being_told()
    {
        await CreateAsync("ns", "a", value: "1");
        await CreateAsync("ns", "b", value: "1");
        await StartAsync();
        _events.Take();
        var added = new Recorder();
        var removed = new Recorder();
        IDisposable? removedRegistration = null;
        using var changer = _informer.AddEventHandler(new ResourceEventHandler<TestObject>(onUpdate: (_, o) =>
        {
            if (o.Spec.Value != "2") return;
            removedRegistration!.Dispose();
            _informer.AddEventHandler(added);
        }));
        removedRegistration = _informer.AddEventHandler(removed);
        Assert.Equal(["add ns/a", "add ns/b"], removed.Take());

        await SetValueAsync("ns", "a", "2");
        await SetValueAsync("ns", "a", "3");
        await Eventually.TrueAsync(() => added.Seen.Count == 3, "the added handler's cache and the next change");
        // told the cache as it is with the change that made it be added, then only what came after
        Assert.Equal(["add ns/a", "add ns/b", "update ns/a 2->3"], added.Take().Order(StringComparer.Ordinal));
        await SeenAsync("update ns/a 1->2", "update ns/a 2->3");
        // removed in the round of the change that removed it, by a handler told before it: not told that change
        Assert.Empty(removed.Take());
    }

    [Fact]
    public async Task Removing_a_handler_waits_for_its_delivery_on_another_thread_and_ends_it()
    {
        await StartAsync();
        var entered = new ManualResetEventSlim();
        var release = new ManualResetEventSlim();
        var calls = 0;
        var registration = _informer.AddEventHandler(new ResourceEventHandler<TestObject>(onAdd: _ =>
        {
            Interlocked.Increment(ref calls);
            entered.Set();
            release.Wait(TimeSpan.FromSeconds(20));
        }));
        await CreateAsync("ns", "a");
        Assert.True(entered.Wait(TimeSpan.FromSeconds(20)), "the handler runs");
        var removing = Task.Run(registration.Dispose);
        await Task.Delay(100);
        Assert.False(removing.IsCompleted); // the handler is still running
        release.Set();
        await removing.WaitAsync(TimeSpan.FromSeconds(20));
        await CreateAsync("ns", "b");
        await SeenAsync("add ns/a", "add ns/b");
        Assert.Equal(1, calls);
    }

    [Fact]
    public async Task Periodic_resync_reannounces_cached_objects()
    {
        await CreateAsync("ns", "a", value: "1");
        await CreateAsync("ns", "b", value: "1");
        await StartAsync(new InformerOptions { ResyncPeriod = TimeSpan.FromMinutes(5), JitterFactor = 0 });
        _events.Take();
        _time.Advance(TimeSpan.FromMinutes(4));
        await Task.Delay(50);
        Assert.Empty(_events.Take());
        _time.Advance(TimeSpan.FromMinutes(1));
        var seen = new List<string>();
        await Eventually.TrueAsync(() => { seen.AddRange(_events.Take()); return seen.Count >= 2; }, "resync");
        Assert.Equal(["update ns/a 1->1", "update ns/b 1->1"], seen.Order());
    }

    [Fact]
    public async Task Owner_handler_enqueues_the_owners_keys()
    {
        var keys = new ConcurrentQueue<ObjectKey>();
        var rs = new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = "rs1", Uid = "u1", Controller = true };
        var other = new OwnerReference { ApiVersion = "v1", Kind = "ConfigMap", Name = "cm", Uid = "u2" };
        await CreateAsync("ns", "p", owners: [rs, other]);
        await StartAsync();
        _informer.AddEventHandler(EnqueueHandlers.ForOwner<TestObject>("ReplicaSet", keys.Enqueue, ownerApiGroup: "apps", onlyController: true));
        Assert.Equal([new ObjectKey("ns", "rs1")], keys);
    }
}

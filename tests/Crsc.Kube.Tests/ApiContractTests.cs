using System.Threading.Channels;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Testing.Kube;

namespace Crsc.Kube.Tests;

/// <summary>
/// What both in-process API servers must do exactly as kube-apiserver does, run once over <see cref="FakeKube"/>
/// (in memory, for the controller tests) and once over the real HTTP client talking to <see cref="FakeApiServer"/>,
/// so the two fakes cannot drift apart. Pods: both serve them with a status subresource and the spec.nodeName field.
/// </summary>
public abstract class ApiContractTests : IAsyncLifetime
{
    private const string Ns = "contract";
    private readonly CancellationToken _ct = TestClients.Timeout(10);

    /// <summary>The client under test, ready after <see cref="InitializeAsync"/>.</summary>
    protected abstract IKubeApi Api { get; }

    /// <summary>Forget the watch history (an etcd compaction): older resourceVersions now get 410.</summary>
    protected abstract void Compact();

    public abstract Task InitializeAsync();

    public abstract Task DisposeAsync();

    private IKubeResourceClient<Pod> Pods => Api.Resource(Resources.Pods);

    private static Pod NewPod(string name, string? node = null, Dictionary<string, string>? labels = null, List<string>? finalizers = null)
        => new()
        {
            Metadata = new() { Name = name, Namespace = Ns, Labels = labels, Finalizers = finalizers },
            Spec = new() { NodeName = node, Containers = [new() { Name = "main", Image = "registry.example/app:1" }] },
        };

    private Task<Pod> CreateAsync(string name, string? node = null, Dictionary<string, string>? labels = null, List<string>? finalizers = null)
        => Pods.CreateAsync(NewPod(name, node, labels, finalizers), _ct);

    private static long Rv(IKubernetesObject o) => long.Parse(o.Metadata.ResourceVersion!);

    /// <summary>The resourceVersion of a list, after a first write: a watch from "0" would mean "from any state".</summary>
    private async Task<long> ListRvAsync()
    {
        await Pods.CreateAsync(NewPod("unrelated-" + Guid.NewGuid().ToString("N")[..8], node: "elsewhere"), _ct);
        return long.Parse((await Pods.ListAsync(Ns, new ListOptions(), _ct)).Metadata.ResourceVersion!);
    }

    private async Task<List<string>> NamesAsync(ListOptions options)
        => [.. (await Pods.ListAsync(Ns, options, _ct)).Items.Select(p => p.Metadata.Name!).Order(StringComparer.Ordinal)];

    [Fact]
    public async Task Scheduling_gates_can_only_be_removed_and_node_affinity_only_narrowed_while_the_pod_is_gated()
    {
        var gated = NewPod("gated");
        gated.Spec.Extra = new() { ["schedulingGates"] = System.Text.Json.JsonDocument.Parse("""[{"name":"example.com/a"}]""").RootElement.Clone() };
        var created = await Pods.CreateAsync(gated, _ct);
        await CreateAsync("plain");
        const string narrow = """{"spec":{"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"NotIn","values":["n1"]}]}]}}}}}""";

        var added = await Assert.ThrowsAsync<InvalidException>(() => Pods.PatchAsync(Ns, "gated", PatchType.Merge,
            """{"spec":{"schedulingGates":[{"name":"example.com/a"},{"name":"example.com/b"}]}}""", _ct));
        Assert.Contains("only deletion is allowed, but found new scheduling gate 'example.com/b'", added.Message);
        var ungated = await Assert.ThrowsAsync<InvalidException>(() => Pods.PatchAsync(Ns, "plain", PatchType.Merge, narrow, _ct));
        Assert.Contains("pod updates may not change fields other than", ungated.Message);

        // narrowing and releasing in one write is allowed (the old pod is gated); then the affinity is fixed
        var released = await Pods.PatchAsync(Ns, "gated", PatchType.Merge, narrow.Replace("""{"spec":{""", """{"spec":{"schedulingGates":null,"""), _ct);
        Assert.True(Rv(released) > Rv(created));
        Assert.False(released.Spec.Extra?.ContainsKey("schedulingGates") ?? false);
        Assert.Contains("NotIn", released.Spec.Affinity!.Value.GetRawText());
        var late = await Assert.ThrowsAsync<InvalidException>(() => Pods.PatchAsync(Ns, "gated", PatchType.Merge,
            narrow.Replace("n1", "n2"), _ct));
        Assert.Contains("pod updates may not change fields other than", late.Message);
    }

    [Fact]
    public async Task Create_stamps_identity_and_a_resourceVersion()
    {
        var created = await CreateAsync("a");

        Assert.False(string.IsNullOrEmpty(created.Metadata.ResourceVersion));
        Assert.False(string.IsNullOrEmpty(created.Metadata.Uid));
        Assert.NotNull(created.Metadata.CreationTimestamp);
        var read = await Pods.GetAsync(Ns, "a", _ct);
        Assert.Equal(created.Metadata.ResourceVersion, read.Metadata.ResourceVersion);
        Assert.Equal(created.Metadata.Uid, read.Metadata.Uid);
    }

    [Fact]
    public async Task Every_write_takes_a_newer_resourceVersion()
    {
        var a = await CreateAsync("a");
        var b = await CreateAsync("b");
        a.Metadata.Labels = new() { ["x"] = "1" };
        var updated = await Pods.UpdateAsync(a, _ct);

        Assert.True(Rv(b) > Rv(a));
        Assert.True(Rv(updated) > Rv(b));
    }

    [Fact]
    public async Task A_write_that_changes_nothing_keeps_the_resourceVersion_and_sends_no_event()
    {
        var from = await ListRvAsync();
        var pod = await CreateAsync("a", labels: new() { ["v"] = "1" });
        await using var watch = Watch(new WatchOptions(from.ToString(), AllowBookmarks: false));

        var same = await Pods.UpdateAsync(pod, _ct);
        Assert.Equal(pod.Metadata.ResourceVersion, same.Metadata.ResourceVersion);
        pod.Metadata.Labels!["v"] = "2";
        var changed = await Pods.UpdateAsync(pod, _ct);

        Assert.True(Rv(changed) > Rv(same));
        Assert.Equal(["Added a", "Modified a"], (await watch.TakeAsync(2, _ct)).Select(Describe));
    }

    [Fact]
    public async Task Update_with_a_stale_resourceVersion_is_a_conflict_and_changes_nothing()
    {
        var stale = await CreateAsync("a");
        var fresh = await Pods.GetAsync(Ns, "a", _ct);
        fresh.Metadata.Labels = new() { ["v"] = "1" };
        var current = await Pods.UpdateAsync(fresh, _ct);

        stale.Metadata.Labels = new() { ["v"] = "2" };
        var e = await Assert.ThrowsAsync<ConflictException>(() => Pods.UpdateAsync(stale, _ct));

        Assert.Equal(409, e.Code);
        var read = await Pods.GetAsync(Ns, "a", _ct);
        Assert.Equal(current.Metadata.ResourceVersion, read.Metadata.ResourceVersion);
        Assert.Equal("1", read.Metadata.Labels!["v"]);
    }

    [Fact]
    public async Task Create_of_an_existing_name_is_409_AlreadyExists()
    {
        var first = await CreateAsync("a", node: "n1");

        var e = await Assert.ThrowsAsync<AlreadyExistsException>(() => CreateAsync("a", node: "n2"));

        Assert.Equal(409, e.Code);
        Assert.Equal("AlreadyExists", e.Reason);
        var read = await Pods.GetAsync(Ns, "a", _ct);
        Assert.Equal(first.Metadata.Uid, read.Metadata.Uid);
        Assert.Equal("n1", read.Spec.NodeName);
    }

    [Fact]
    public async Task Get_update_and_delete_of_a_missing_object_are_404()
    {
        var get = await Assert.ThrowsAsync<NotFoundException>(() => Pods.GetAsync(Ns, "missing", _ct));
        Assert.Equal(404, get.Code);
        await Assert.ThrowsAsync<NotFoundException>(() => Pods.UpdateAsync(NewPod("missing"), _ct));
        await Assert.ThrowsAsync<NotFoundException>(() => Pods.DeleteAsync(Ns, "missing", null, _ct));
    }

    [Fact]
    public async Task An_update_keeps_the_stored_status_and_a_status_update_keeps_the_stored_spec()
    {
        var pod = await CreateAsync("a", node: "n1");
        pod.Status = new PodStatus { Phase = "Running" };
        pod = await Pods.UpdateStatusAsync(pod, _ct);
        Assert.Equal("Running", pod.Status?.Phase);

        // the main resource ignores status ...
        pod.Spec.NodeName = "n2";
        pod.Status = new PodStatus { Phase = "Failed" };
        pod = await Pods.UpdateAsync(pod, _ct);
        var read = await Pods.GetAsync(Ns, "a", _ct);
        Assert.Equal("n2", read.Spec.NodeName);
        Assert.Equal("Running", read.Status?.Phase);

        // ... and the status subresource ignores spec
        pod.Spec.NodeName = "n3";
        pod.Status = new PodStatus { Phase = "Succeeded" };
        await Pods.UpdateStatusAsync(pod, _ct);
        read = await Pods.GetAsync(Ns, "a", _ct);
        Assert.Equal("n2", read.Spec.NodeName);
        Assert.Equal("Succeeded", read.Status?.Phase);
    }

    [Fact]
    public async Task Create_ignores_status_when_there_is_a_status_subresource()
    {
        var pod = NewPod("a");
        pod.Status = new PodStatus { Phase = "Running" };

        await Pods.CreateAsync(pod, _ct);

        Assert.Null((await Pods.GetAsync(Ns, "a", _ct)).Status?.Phase);
    }

    [Fact]
    public async Task A_list_carries_a_resourceVersion_no_older_than_its_items()
    {
        await CreateAsync("a");
        var b = await CreateAsync("b");

        var list = await Pods.ListAsync(Ns, new ListOptions(), _ct);

        Assert.Equal(["a", "b"], list.Items.Select(p => p.Metadata.Name).Order(StringComparer.Ordinal));
        Assert.True(long.Parse(list.Metadata.ResourceVersion!) >= Rv(b));
    }

    [Fact]
    public async Task A_watch_from_a_lists_resourceVersion_delivers_every_later_change_in_order_and_nothing_before()
    {
        var from = await ListRvAsync();
        var a = await CreateAsync("a");
        a.Metadata.Labels = new() { ["v"] = "2" };
        await Pods.UpdateAsync(a, _ct);
        await Pods.DeleteAsync(Ns, "a", null, _ct);
        await using var watch = Watch(new WatchOptions(from.ToString(), AllowBookmarks: false));
        await CreateAsync("after");

        var events = await watch.TakeAsync(4, _ct);

        Assert.Equal(["Added a", "Modified a", "Deleted a", "Added after"], events.Select(Describe));
        Assert.Equal("2", events[1].Object.Metadata.Labels!["v"]);
        var rvs = events.Select(e => Rv(e.Object)).ToList();
        Assert.Equal(rvs.Order(), rvs);
        Assert.Equal(rvs.Count, rvs.Distinct().Count());
        Assert.True(rvs[0] > from);
    }

    [Fact]
    public async Task A_watch_without_a_resourceVersion_starts_with_the_current_objects_as_ADDED()
    {
        await CreateAsync("a");
        var b = await CreateAsync("b");
        await Pods.DeleteAsync(Ns, "b", null, _ct);
        await using var watch = Watch(new WatchOptions(null, AllowBookmarks: false));

        var events = await watch.TakeAsync(1, _ct);
        await CreateAsync("c");
        events.AddRange(await watch.TakeAsync(1, _ct));

        Assert.Equal(["Added a", "Added c"], events.Select(Describe));
        Assert.True(Rv(events[1].Object) > Rv(b));
    }

    [Fact]
    public async Task A_watch_from_a_compacted_resourceVersion_is_410_Gone()
    {
        var old = await CreateAsync("a");
        await CreateAsync("b");
        Compact();

        await using var watch = Watch(new WatchOptions(old.Metadata.ResourceVersion, AllowBookmarks: false));
        var e = await Assert.ThrowsAsync<ResourceExpiredException>(() => watch.TakeAsync(1, _ct));

        Assert.Equal(410, e.Code);
    }

    [Fact]
    public async Task A_watch_from_the_newest_resourceVersion_survives_a_compaction()
    {
        await CreateAsync("a");
        var from = await ListRvAsync();
        Compact();
        await using var watch = Watch(new WatchOptions(from.ToString(), AllowBookmarks: false));
        await CreateAsync("b");

        Assert.Equal(["Added b"], (await watch.TakeAsync(1, _ct)).Select(Describe));
    }

    [Fact]
    public async Task Label_selectors_filter_lists()
    {
        await CreateAsync("a", labels: new() { ["app"] = "web", ["tier"] = "front" });
        await CreateAsync("b", labels: new() { ["app"] = "web" });
        await CreateAsync("c", labels: new() { ["app"] = "db" });
        await CreateAsync("d");

        Assert.Equal(["a", "b"], await NamesAsync(new ListOptions(LabelSelector: "app=web")));
        Assert.Equal(["a", "b"], await NamesAsync(new ListOptions(LabelSelector: "app==web")));
        Assert.Equal(["c", "d"], await NamesAsync(new ListOptions(LabelSelector: "app!=web")));
        Assert.Equal(["a"], await NamesAsync(new ListOptions(LabelSelector: "app=web,tier")));
        Assert.Equal(["a", "b", "c"], await NamesAsync(new ListOptions(LabelSelector: "app")));
        Assert.Equal(["d"], await NamesAsync(new ListOptions(LabelSelector: "!app")));
        Assert.Empty(await NamesAsync(new ListOptions(LabelSelector: "app=none")));
    }

    [Fact]
    public async Task Field_selectors_on_name_and_node_filter_lists()
    {
        await CreateAsync("a", node: "n1");
        await CreateAsync("b", node: "n2");
        await CreateAsync("c");

        Assert.Equal(["b"], await NamesAsync(new ListOptions(FieldSelector: "metadata.name=b")));
        Assert.Equal(["a", "c"], await NamesAsync(new ListOptions(FieldSelector: "metadata.name!=b")));
        Assert.Equal(["a"], await NamesAsync(new ListOptions(FieldSelector: "spec.nodeName=n1")));
        Assert.Equal(["c"], await NamesAsync(new ListOptions(FieldSelector: "spec.nodeName=")));
        Assert.Equal(["a", "b"], await NamesAsync(new ListOptions(FieldSelector: "spec.nodeName!=")));
        Assert.Equal(["b"], await NamesAsync(new ListOptions(FieldSelector: "spec.nodeName=n2,metadata.name=b")));
    }

    [Fact]
    public async Task Selectors_filter_watches_and_an_object_leaving_the_selection_is_DELETED()
    {
        var from = await ListRvAsync();
        await using var byLabel = Watch(new WatchOptions(from.ToString(), LabelSelector: "app=web", AllowBookmarks: false));
        await using var byNode = Watch(new WatchOptions(from.ToString(), FieldSelector: "spec.nodeName=n1", AllowBookmarks: false));
        await CreateAsync("other", node: "n2", labels: new() { ["app"] = "db" });
        var web = await CreateAsync("web", node: "n1", labels: new() { ["app"] = "web" });
        web.Metadata.Labels = new() { ["app"] = "db" };
        await Pods.UpdateAsync(web, _ct);
        await CreateAsync("last", node: "n1", labels: new() { ["app"] = "web" });

        Assert.Equal(["Added web", "Deleted web", "Added last"], (await byLabel.TakeAsync(3, _ct)).Select(Describe));
        Assert.Equal(["Added web", "Modified web", "Added last"], (await byNode.TakeAsync(3, _ct)).Select(Describe));
    }

    [Fact]
    public async Task Delete_of_an_object_with_a_finalizer_marks_it_and_removing_the_last_finalizer_deletes_it()
    {
        var from = await ListRvAsync();
        var created = await CreateAsync("a", finalizers: ["example.com/one", "example.com/two"]);

        await Pods.DeleteAsync(Ns, "a", null, _ct);

        var marked = await Pods.GetAsync(Ns, "a", _ct);
        Assert.NotNull(marked.Metadata.DeletionTimestamp);
        Assert.Equal(created.Metadata.Uid, marked.Metadata.Uid);
        Assert.True(Rv(marked) > Rv(created));

        marked.Metadata.Finalizers = ["example.com/two"];
        var one = await Pods.UpdateAsync(marked, _ct);
        Assert.NotNull(one.Metadata.DeletionTimestamp);
        Assert.NotNull(await Pods.GetAsync(Ns, "a", _ct));

        one.Metadata.Finalizers = [];
        await Pods.UpdateAsync(one, _ct);

        await Assert.ThrowsAsync<NotFoundException>(() => Pods.GetAsync(Ns, "a", _ct));
        await using var watch = Watch(new WatchOptions(from.ToString(), AllowBookmarks: false));
        var events = await watch.TakeAsync(4, _ct);
        Assert.Equal(["Added a", "Modified a", "Modified a", "Deleted a"], events.Select(Describe));
        Assert.NotNull(events[1].Object.Metadata.DeletionTimestamp);
    }

    [Fact]
    public async Task A_delete_precondition_that_does_not_hold_is_a_conflict()
    {
        var older = await CreateAsync("older");
        var pod = await CreateAsync("a");

        await Assert.ThrowsAsync<ConflictException>(() =>
            Pods.DeleteAsync(Ns, "a", new DeleteOptions(PreconditionUid: Guid.NewGuid().ToString()), _ct));
        await Assert.ThrowsAsync<ConflictException>(() =>
            Pods.DeleteAsync(Ns, "a", new DeleteOptions(PreconditionResourceVersion: older.Metadata.ResourceVersion), _ct));

        Assert.Equal(pod.Metadata.Uid, (await Pods.GetAsync(Ns, "a", _ct)).Metadata.Uid);
        await Pods.DeleteAsync(Ns, "a", new DeleteOptions(PreconditionUid: pod.Metadata.Uid), _ct);
        await Assert.ThrowsAsync<NotFoundException>(() => Pods.GetAsync(Ns, "a", _ct));
    }

    [Fact]
    public async Task Generation_starts_at_1_and_grows_only_when_the_spec_changes()
    {
        var pod = await CreateAsync("a", node: "n1");
        Assert.Equal(1, pod.Metadata.Generation);

        pod.Metadata.Labels = new() { ["v"] = "1" };
        pod = await Pods.UpdateAsync(pod, _ct);
        Assert.Equal(1, pod.Metadata.Generation); // metadata only

        pod.Spec.NodeName = "n2";
        pod = await Pods.UpdateAsync(pod, _ct);
        Assert.Equal(2, pod.Metadata.Generation);

        pod.Status = new PodStatus { Phase = "Running" };
        pod = await Pods.UpdateStatusAsync(pod, _ct);
        Assert.Equal("Running", pod.Status?.Phase);
        Assert.Equal(2, pod.Metadata.Generation); // status subresource

        pod = await Pods.PatchAsync(Ns, "a", PatchType.Merge, """{"status":{"phase":"Succeeded"}}""", _ct, status: true);
        Assert.Equal("Succeeded", pod.Status?.Phase);
        Assert.Equal(2, pod.Metadata.Generation);

        pod = await Pods.PatchAsync(Ns, "a", PatchType.Merge, """{"spec":{"nodeName":"n3"}}""", _ct);
        Assert.Equal(3, pod.Metadata.Generation);

        // the generation is the server's: a client's value is ignored, in an update as in a patch
        pod = await Pods.PatchAsync(Ns, "a", PatchType.Merge, """{"metadata":{"generation":10,"annotations":{"x":"1"}}}""", _ct);
        Assert.Equal(3, pod.Metadata.Generation);
        pod.Metadata.Generation = 20;
        pod.Metadata.Labels = new() { ["v"] = "2" };
        pod = await Pods.UpdateAsync(pod, _ct);
        Assert.Equal(3, pod.Metadata.Generation);

        var read = await Pods.GetAsync(Ns, "a", _ct);
        Assert.Equal(3, read.Metadata.Generation);
        Assert.Equal("n3", read.Spec.NodeName);
    }

    [Fact]
    public async Task Generation_of_a_kind_without_a_status_subresource_grows_with_any_change_outside_metadata()
    {
        var cms = Api.Resource(Resources.ConfigMaps);
        var cm = await cms.CreateAsync(new ConfigMap { Metadata = new() { Name = "a", Namespace = Ns }, Data = new() { ["k"] = "1" } }, _ct);
        Assert.Equal(1, cm.Metadata.Generation);

        cm.Metadata.Labels = new() { ["v"] = "1" };
        cm = await cms.UpdateAsync(cm, _ct);
        Assert.Equal(1, cm.Metadata.Generation);

        cm.Data = new() { ["k"] = "2" };
        cm = await cms.UpdateAsync(cm, _ct);
        Assert.Equal(2, cm.Metadata.Generation);

        cm = await cms.PatchAsync(Ns, "a", PatchType.Merge, """{"data":{"k":"3"}}""", _ct);
        Assert.Equal(3, cm.Metadata.Generation);
        Assert.Equal(3, (await cms.GetAsync(Ns, "a", _ct)).Metadata.Generation);
    }

    [Fact]
    public async Task Marking_an_object_for_deletion_grows_its_generation_once()
    {
        var from = await ListRvAsync();
        var created = await CreateAsync("a", finalizers: ["example.com/one"]);
        Assert.Equal(1, created.Metadata.Generation);

        await Pods.DeleteAsync(Ns, "a", null, _ct);
        var marked = await Pods.GetAsync(Ns, "a", _ct);
        Assert.NotNull(marked.Metadata.DeletionTimestamp);
        Assert.Equal(2, marked.Metadata.Generation);

        await Pods.DeleteAsync(Ns, "a", null, _ct); // marked already: nothing changes
        Assert.Equal(2, (await Pods.GetAsync(Ns, "a", _ct)).Metadata.Generation);

        marked.Metadata.Finalizers = [];
        await Pods.UpdateAsync(marked, _ct);
        await using var watch = Watch(new WatchOptions(from.ToString(), AllowBookmarks: false));
        var events = await watch.TakeAsync(3, _ct);
        Assert.Equal(["Added a", "Modified a", "Deleted a"], events.Select(Describe));
        Assert.Equal([1L, 2L, 2L], events.Select(e => e.Object.Metadata.Generation ?? 0));
    }

    private static string Describe(WatchEvent<Pod> e) => $"{e.Type} {e.Object.Metadata.Name}";

    private WatchReader Watch(WatchOptions options) => new(Pods.WatchAsync(Ns, options, CancellationToken.None));

    /// <summary>Reads a watch on a background task; the test takes events as they come.</summary>
    private sealed class WatchReader : IAsyncDisposable
    {
        private readonly Channel<WatchEvent<Pod>> _events = Channel.CreateUnbounded<WatchEvent<Pod>>();
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _pump;

        public WatchReader(IAsyncEnumerable<WatchEvent<Pod>> stream)
        {
            _pump = Task.Run(async () =>
            {
                try
                {
                    await foreach (var e in stream.WithCancellation(_stop.Token))
                        if (e.Type != WatchEventType.Bookmark) await _events.Writer.WriteAsync(e);
                    _events.Writer.TryComplete();
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                    _events.Writer.TryComplete();
                }
                catch (Exception e)
                {
                    _events.Writer.TryComplete(e);
                }
            });
        }

        /// <summary>The next <paramref name="count"/> events; the watch's error if it fails first.</summary>
        public async Task<List<WatchEvent<Pod>>> TakeAsync(int count, CancellationToken ct)
        {
            var taken = new List<WatchEvent<Pod>>();
            try
            {
                while (taken.Count < count) taken.Add(await _events.Reader.ReadAsync(ct));
            }
            catch (ChannelClosedException e) when (e.InnerException is { } inner)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(inner);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw new TimeoutException($"only {taken.Count} of {count} events came: " + string.Join(", ", taken.Select(Describe)));
            }
            catch (ChannelClosedException)
            {
                throw new InvalidOperationException($"the watch ended after {taken.Count} of {count} events: "
                    + string.Join(", ", taken.Select(Describe)));
            }
            return taken;
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _pump;
            _stop.Dispose();
        }
    }
}

/// <summary>The contract over the in-memory <see cref="FakeKube"/> the controller tests use.</summary>
public sealed class FakeKubeContractTests : ApiContractTests
{
    private readonly FakeKube _kube = new();

    protected override IKubeApi Api => _kube;

    protected override void Compact() => _kube.For(Resources.Pods).Compact();

    public override Task InitializeAsync() => Task.CompletedTask;

    public override Task DisposeAsync() => Task.CompletedTask;
}

/// <summary>The contract over the real HTTP client and <see cref="FakeApiServer"/>.</summary>
public sealed class FakeApiServerContractTests : ApiContractTests
{
    private FakeApiServer _server = null!;
    private KubeApi _api = null!;

    protected override IKubeApi Api => _api;

    protected override void Compact() => _server.Compact();

    public override async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync(new FakeApiServerOptions { BookmarkInterval = TimeSpan.FromHours(1) });
        _api = TestClients.For(_server);
    }

    public override async Task DisposeAsync()
    {
        _api.Dispose();
        await _server.DisposeAsync();
    }
}

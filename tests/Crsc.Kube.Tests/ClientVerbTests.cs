using System.Text.Json.Nodes;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Testing.Kube;

namespace Crsc.Kube.Tests;

public sealed class ClientVerbTests : IAsyncLifetime
{
    private FakeApiServer _server = null!;
    private KubeApi _api = null!;
    private IKubeResourceClient<Pod> _pods = null!;
    private readonly CancellationToken _ct = TestClients.Timeout(60);

    public async Task InitializeAsync()
    {
        _server = await FakeApiServer.StartAsync();
        _api = TestClients.For(_server);
        _pods = _api.Resource(Resources.Pods);
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _server.DisposeAsync();
    }

    private static Pod NewPod(string name, string ns = "ns1", string node = "n1", Dictionary<string, string>? labels = null) => new()
    {
        Metadata = new() { Name = name, Namespace = ns, Labels = labels },
        Spec = new() { NodeName = node, Containers = [new() { Name = "app", Image = "registry/app:1" }] },
    };

    [Fact]
    public async Task Create_get_update_delete_with_resource_versions_uid_and_generation()
    {
        var created = await _pods.CreateAsync(NewPod("a"), _ct);
        Assert.False(string.IsNullOrEmpty(created.Metadata.Uid));
        Assert.NotNull(created.Metadata.CreationTimestamp);
        Assert.Equal(1, created.Metadata.Generation);
        Assert.Equal("/api/v1/namespaces/ns1/pods", _server.Requests[^1].Path);

        var got = await _pods.GetAsync("ns1", "a", _ct);
        Assert.Equal(created.Metadata.ResourceVersion, got.Metadata.ResourceVersion);

        got.Spec.Containers[0].Image = "registry/app:2";
        var updated = await _pods.UpdateAsync(got, _ct);
        Assert.Equal(2, updated.Metadata.Generation);
        Assert.True(long.Parse(updated.Metadata.ResourceVersion!) > long.Parse(created.Metadata.ResourceVersion!));
        Assert.Equal(created.Metadata.Uid, updated.Metadata.Uid);

        // a metadata-only change does not bump generation; a no-op update writes nothing
        updated.Metadata.Labels = new() { ["x"] = "y" };
        var relabeled = await _pods.UpdateAsync(updated, _ct);
        Assert.Equal(2, relabeled.Metadata.Generation);
        var again = await _pods.UpdateAsync(relabeled, _ct);
        Assert.Equal(relabeled.Metadata.ResourceVersion, again.Metadata.ResourceVersion);

        await _pods.DeleteAsync("ns1", "a", null, _ct);
        var e = await Assert.ThrowsAsync<NotFoundException>(() => _pods.GetAsync("ns1", "a", _ct));
        Assert.Equal("NotFound", e.Reason);
        Assert.Contains("pods \"a\" not found", e.Message);
    }

    [Fact]
    public async Task Stale_update_is_a_conflict_and_create_of_an_existing_name_already_exists()
    {
        var created = await _pods.CreateAsync(NewPod("a"), _ct);
        var first = await _pods.GetAsync("ns1", "a", _ct);
        first.Metadata.Labels = new() { ["one"] = "1" };
        await _pods.UpdateAsync(first, _ct);

        created.Metadata.Labels = new() { ["two"] = "2" };
        var conflict = await Assert.ThrowsAsync<ConflictException>(() => _pods.UpdateAsync(created, _ct));
        Assert.Equal(409, conflict.Code);
        Assert.Equal("Conflict", conflict.Reason);
        Assert.Contains("the object has been modified", conflict.Message);

        var exists = await Assert.ThrowsAsync<AlreadyExistsException>(() => _pods.CreateAsync(NewPod("a"), _ct));
        Assert.Equal("AlreadyExists", exists.Reason);
    }

    [Fact]
    public async Task GenerateName_and_default_namespace()
    {
        var pod = NewPod("");
        pod.Metadata.Name = null;
        pod.Metadata.Namespace = null;
        pod.Metadata.GenerateName = "ckpt-";
        var created = await _pods.CreateAsync(pod, _ct);
        Assert.StartsWith("ckpt-", created.Metadata.Name);
        Assert.Equal("ckpt-".Length + 5, created.Metadata.Name!.Length);
        Assert.Equal("default", created.Metadata.Namespace);
    }

    [Fact]
    public async Task Unknown_fields_survive_a_read_modify_write_through_the_server()
    {
        var seeded = _server.Seed(_server.ResourceOf(Resources.Pods), JsonNode.Parse("""
            {"metadata":{"name":"p","namespace":"ns1"},
             "spec":{"containers":[{"name":"app","image":"a","livenessProbe":{"httpGet":{"port":8080}}}],"dnsPolicy":"None"},
             "status":{"phase":"Running","qosClass":"Burstable"}}
            """)!.AsObject());
        var pod = await _pods.GetAsync("ns1", "p", _ct);
        pod.Metadata.Annotations = new() { ["crsc.io/original-image"] = "a" };
        await _pods.UpdateAsync(pod, _ct);
        var stored = _server.Get(_server.ResourceOf(Resources.Pods), "ns1", "p")!;
        Assert.Equal(8080, (int)stored["spec"]!["containers"]![0]!["livenessProbe"]!["httpGet"]!["port"]!);
        Assert.Equal("None", (string?)stored["spec"]!["dnsPolicy"]);
        Assert.Equal("Burstable", (string?)stored["status"]!["qosClass"]);
        Assert.Equal("a", (string?)stored["metadata"]!["annotations"]!["crsc.io/original-image"]);
        Assert.NotNull(seeded);
    }

    [Fact]
    public async Task Status_subresource_changes_only_status_and_main_update_ignores_status()
    {
        await _pods.CreateAsync(NewPod("a"), _ct);
        var pod = await _pods.GetAsync("ns1", "a", _ct);
        Assert.Null(pod.Status);

        pod.Status = new() { Phase = "Running", PodIP = "10.0.0.7" };
        pod.Spec.Containers[0].Image = "ignored-by-status";
        var withStatus = await _pods.UpdateStatusAsync(pod, _ct);
        Assert.Equal("Running", withStatus.Status!.Phase);
        Assert.Equal("registry/app:1", withStatus.Spec.Containers[0].Image);
        Assert.Equal(1, withStatus.Metadata.Generation);
        Assert.EndsWith("/pods/a/status", _server.Requests[^1].Path);

        withStatus.Status.Phase = "Failed";
        var main = await _pods.UpdateAsync(withStatus, _ct);
        Assert.Equal("Running", main.Status!.Phase);

        var patched = await _pods.PatchAsync("ns1", "a", PatchType.Merge, """{"status":{"phase":"Succeeded"}}""", _ct, status: true);
        Assert.Equal("Succeeded", patched.Status!.Phase);

        // ConfigMaps have no status subresource
        var cms = _api.Resource(Resources.ConfigMaps);
        await cms.CreateAsync(new ConfigMap { Metadata = new() { Name = "c", Namespace = "ns1" } }, _ct);
        await Assert.ThrowsAsync<NotFoundException>(() =>
            cms.UpdateStatusAsync(new ConfigMap { Metadata = new() { Name = "c", Namespace = "ns1" } }, _ct));
    }

    [Fact]
    public async Task Merge_json_and_strategic_patches()
    {
        var pod = NewPod("a", labels: new() { ["keep"] = "1", ["drop"] = "2" });
        pod.Spec.Containers.Add(new() { Name = "sidecar", Image = "side:1" });
        await _pods.CreateAsync(pod, _ct);

        var merged = await _pods.PatchAsync("ns1", "a", PatchType.Merge,
            """{"metadata":{"labels":{"drop":null,"new":"3"}}}""", _ct);
        Assert.Equal(new Dictionary<string, string> { ["keep"] = "1", ["new"] = "3" }, merged.Metadata.Labels);
        Assert.Equal("application/merge-patch+json", _server.Requests[^1].ContentType);

        var jsonPatched = await _pods.PatchAsync("ns1", "a", PatchType.Json,
            """
            [{"op":"test","path":"/spec/containers/0/image","value":"registry/app:1"},
             {"op":"replace","path":"/spec/containers/0/image","value":"registry/app:ckpt"},
             {"op":"add","path":"/metadata/annotations","value":{"crsc.io/original-image":"registry/app:1"}},
             {"op":"remove","path":"/metadata/labels/keep"}]
            """, _ct);
        Assert.Equal("registry/app:ckpt", jsonPatched.Spec.Containers[0].Image);
        Assert.Equal("registry/app:1", jsonPatched.Metadata.Annotations!["crsc.io/original-image"]);
        Assert.False(jsonPatched.Metadata.Labels!.ContainsKey("keep"));
        Assert.Equal(2, jsonPatched.Metadata.Generation);

        var failedTest = await Assert.ThrowsAsync<InvalidException>(() => _pods.PatchAsync("ns1", "a", PatchType.Json,
            """[{"op":"test","path":"/spec/containers/0/image","value":"something-else"}]""", _ct));
        Assert.Equal(422, failedTest.Code);

        // strategic merge merges containers by name: the sidecar stays
        var strategic = await _pods.PatchAsync("ns1", "a", PatchType.StrategicMerge,
            """{"spec":{"containers":[{"name":"app","image":"registry/app:1"}]}}""", _ct);
        Assert.Equal(2, strategic.Spec.Containers.Count);
        Assert.Equal("registry/app:1", strategic.Spec.Containers.Single(c => c.Name == "app").Image);
        Assert.Equal("side:1", strategic.Spec.Containers.Single(c => c.Name == "sidecar").Image);

        // a patch that names a stale resourceVersion conflicts
        await Assert.ThrowsAsync<ConflictException>(() => _pods.PatchAsync("ns1", "a", PatchType.Merge,
            """{"metadata":{"resourceVersion":"1","labels":{"x":"y"}}}""", _ct));
    }

    [Fact]
    public async Task Server_side_apply_creates_then_merges_and_needs_a_field_manager()
    {
        var cms = _api.Resource(Resources.ConfigMaps);
        var applied = await cms.PatchAsync("ns1", "cfg", PatchType.Apply,
            """{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg","namespace":"ns1"},"data":{"a":"1"}}""", _ct,
            fieldManager: "crsc", force: true);
        Assert.Equal("1", applied.Data!["a"]);
        var request = _server.Requests[^1];
        Assert.Equal("application/apply-patch+yaml", request.ContentType);
        Assert.Contains("fieldManager=crsc", request.Query);
        Assert.Contains("force=true", request.Query);

        var again = await cms.PatchAsync("ns1", "cfg", PatchType.Apply,
            """{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"},"data":{"b":"2"}}""", _ct, fieldManager: "crsc");
        Assert.Equal("1", again.Data!["a"]);
        Assert.Equal("2", again.Data!["b"]);

        await Assert.ThrowsAsync<ArgumentException>(() => cms.PatchAsync("ns1", "cfg", PatchType.Apply, "{}", _ct));
    }

    [Fact]
    public async Task Delete_preconditions_propagation_and_finalizers()
    {
        var created = await _pods.CreateAsync(NewPod("a"), _ct);

        var wrongUid = await Assert.ThrowsAsync<ConflictException>(() =>
            _pods.DeleteAsync("ns1", "a", new DeleteOptions(PreconditionUid: "not-the-uid"), _ct));
        Assert.Contains("Precondition failed: UID", wrongUid.Message);
        var wrongRv = await Assert.ThrowsAsync<ConflictException>(() =>
            _pods.DeleteAsync("ns1", "a", new DeleteOptions(PreconditionResourceVersion: "999"), _ct));
        Assert.Contains("ResourceVersion", wrongRv.Message);

        await _pods.DeleteAsync("ns1", "a", new DeleteOptions(created.Metadata.Uid, created.Metadata.ResourceVersion,
            PropagationPolicy.Foreground, 0), _ct);
        await Assert.ThrowsAsync<NotFoundException>(() => _pods.GetAsync("ns1", "a", _ct));
        await Assert.ThrowsAsync<NotFoundException>(() => _pods.DeleteAsync("ns1", "a", null, _ct));

        // with a finalizer: marked first, gone when the finalizer is removed
        var cms = _api.Resource(Resources.ConfigMaps);
        await cms.CreateAsync(new ConfigMap { Metadata = new() { Name = "f", Namespace = "ns1", Finalizers = ["crsc.io/archive"] } }, _ct);
        await cms.DeleteAsync("ns1", "f", new DeleteOptions(PropagationPolicy: PropagationPolicy.Background), _ct);
        var marked = await cms.GetAsync("ns1", "f", _ct);
        Assert.NotNull(marked.Metadata.DeletionTimestamp);
        marked.Metadata.Finalizers = [];
        await cms.UpdateAsync(marked, _ct);
        await Assert.ThrowsAsync<NotFoundException>(() => cms.GetAsync("ns1", "f", _ct));
    }

    [Fact]
    public async Task List_pages_with_limit_and_continue()
    {
        for (var i = 0; i < 7; i++) await _pods.CreateAsync(NewPod($"p{i}"), _ct);
        await _pods.CreateAsync(NewPod("elsewhere", ns: "ns2"), _ct);

        var names = new List<string>();
        string? next = null;
        var pages = 0;
        do
        {
            var page = await _pods.ListAsync("ns1", new ListOptions(Limit: 3, Continue: next), _ct);
            pages++;
            names.AddRange(page.Items.Select(p => p.Metadata.Name!));
            next = page.Metadata.Continue;
            Assert.True(page.Items.Count <= 3);
            Assert.False(string.IsNullOrEmpty(page.Metadata.ResourceVersion));
        } while (!string.IsNullOrEmpty(next));
        Assert.Equal(3, pages);
        Assert.Equal(Enumerable.Range(0, 7).Select(i => $"p{i}"), names);

        var all = await _pods.ListAllAsync(null, null, _ct, pageSize: 2);
        Assert.Equal(8, all.Items.Count);
        Assert.Equal("/api/v1/pods", _server.Requests[^1].Path);

        var garbage = await Assert.ThrowsAsync<KubeApiException>(() => _pods.ListAsync("ns1", new ListOptions(Limit: 2, Continue: "!!"), _ct));
        Assert.Equal(400, garbage.Code);

        // a continue token from before a compaction is expired
        var first = await _pods.ListAsync("ns1", new ListOptions(Limit: 2), _ct);
        await _pods.CreateAsync(NewPod("late"), _ct);
        _server.Compact();
        await Assert.ThrowsAsync<ResourceExpiredException>(() =>
            _pods.ListAsync("ns1", new ListOptions(Limit: 2, Continue: first.Metadata.Continue), _ct));
    }

    [Fact]
    public async Task Label_and_field_selectors()
    {
        await _pods.CreateAsync(NewPod("a", node: "n1", labels: new() { ["app"] = "web", ["tier"] = "front" }), _ct);
        await _pods.CreateAsync(NewPod("b", node: "n2", labels: new() { ["app"] = "db" }), _ct);
        await _pods.CreateAsync(NewPod("c", node: "n1", labels: new() { ["app"] = "cache", ["crsc.io/managed"] = "true" }), _ct);
        await _pods.CreateAsync(NewPod("d", node: "n2"), _ct);

        async Task<string> Names(string? labels, string? fields = null)
            => string.Join(",", (await _pods.ListAsync("ns1", new ListOptions(labels, fields), _ct)).Items.Select(p => p.Metadata.Name));

        Assert.Equal("a", await Names("app=web"));
        Assert.Equal("a", await Names("app==web"));
        Assert.Equal("b,c,d", await Names("app!=web"));
        Assert.Equal("a,b", await Names("app in (web, db)"));
        Assert.Equal("c,d", await Names("app notin (web,db)"));
        Assert.Equal("a,b,c", await Names("app"));
        Assert.Equal("d", await Names("!app"));
        Assert.Equal("c", await Names("crsc.io/managed=true,app"));
        Assert.Equal("a,c", await Names(null, "spec.nodeName=n1"));
        Assert.Equal("b", await Names("app", "spec.nodeName=n2"));
        Assert.Equal("a", await Names(null, "metadata.name=a"));
        Assert.Equal("b,c,d", await Names(null, "metadata.name!=a"));

        var bad = await Assert.ThrowsAsync<KubeApiException>(() => _pods.ListAsync("ns1", new ListOptions(FieldSelector: "spec.image=x"), _ct));
        Assert.Equal(400, bad.Code);
        Assert.Contains("field label not supported", bad.Message);
    }

    [Fact]
    public async Task Cluster_scoped_and_grouped_resources_use_their_urls()
    {
        var nodes = _api.Resource(Resources.Nodes);
        await nodes.CreateAsync(new Node { Metadata = new() { Name = "n1" } }, _ct);
        Assert.Equal("/api/v1/nodes", _server.Requests[^1].Path);
        Assert.Null((await nodes.GetAsync(null, "n1", _ct)).Metadata.Namespace);

        var namespaces = _api.Resource(Resources.Namespaces);
        await namespaces.CreateAsync(new Namespace { Metadata = new() { Name = "crsc-system" } }, _ct);
        Assert.Equal("crsc-system", (await namespaces.GetAsync(null, "crsc-system", _ct)).Metadata.Name);
        Assert.Equal("/api/v1/namespaces/crsc-system", _server.Requests[^1].Path);

        var leases = _api.Resource(Resources.Leases);
        var t = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(1234560);
        await leases.CreateAsync(new Lease { Metadata = new() { Name = "crsc-leader", Namespace = "crsc-system" },
            Spec = new() { HolderIdentity = "n1_abc", RenewTime = t, LeaseDurationSeconds = 15 } }, _ct);
        Assert.Equal("/apis/coordination.k8s.io/v1/namespaces/crsc-system/leases", _server.Requests[^1].Path);
        var lease = await leases.GetAsync("crsc-system", "crsc-leader", _ct);
        Assert.Equal(t, lease.Spec.RenewTime);
        Assert.Equal("2026-01-01T00:00:00.123456Z",
            (string?)_server.Get(_server.ResourceOf(Resources.Leases), "crsc-system", "crsc-leader")!["spec"]!["renewTime"]);

        var deployments = _api.Resource(Resources.Deployments);
        await deployments.CreateAsync(new Deployment { Metadata = new() { Name = "d", Namespace = "ns1" }, Spec = new() { Replicas = 1 } }, _ct);
        Assert.Equal("/apis/apps/v1/namespaces/ns1/deployments", _server.Requests[^1].Path);

        var events = _api.Resource(Resources.Events);
        var ev = await events.CreateAsync(new EventsV1Event { Metadata = new() { GenerateName = "d.", Namespace = "ns1" },
            EventTime = t, Reason = "Checkpointed", Note = "ok", Type = "Normal", Action = "Checkpoint",
            ReportingController = "crsc.io/daemon", ReportingInstance = "n1",
            Regarding = new() { Kind = "Deployment", Name = "d", Namespace = "ns1" } }, _ct);
        Assert.Equal(t, ev.EventTime);
        Assert.Equal("/apis/events.k8s.io/v1/namespaces/ns1/events", _server.Requests[^1].Path);
    }

    [Fact]
    public async Task Errors_keep_code_reason_and_message_and_outages_name_the_server()
    {
        _server.FailNext(1, 403, "Forbidden", "pods is forbidden: User \"crsc\" cannot list resource \"pods\"");
        var forbidden = await Assert.ThrowsAsync<ForbiddenException>(() => _pods.ListAsync("ns1", new ListOptions(), _ct));
        Assert.Equal("Forbidden", forbidden.Reason);
        Assert.Contains("cannot list resource", forbidden.Message);

        _server.FailNext(1, 500, "InternalError", "etcdserver: request timed out");
        var internalError = await Assert.ThrowsAsync<KubeApiException>(() => _pods.GetAsync("ns1", "x", _ct));
        Assert.Equal(500, internalError.Code);
        Assert.Contains("etcdserver", internalError.Message);

        _server.FailNext(1, 0);
        await Assert.ThrowsAsync<KubeUnavailableException>(() => _pods.GetAsync("ns1", "x", _ct));

        await _server.StopAsync();
        var down = await Assert.ThrowsAsync<KubeUnavailableException>(() => _pods.GetAsync("ns1", "x", _ct));
        Assert.Contains(_server.Url.Authority, down.Message);

        await _server.StartAsync();
        await Assert.ThrowsAsync<NotFoundException>(() => _pods.GetAsync("ns1", "x", _ct));
        Assert.Equal("v1.34.0-crsc-fake", await _api.GetVersionAsync(_ct));
    }

    [Fact]
    public async Task Request_log_shows_that_reads_do_not_write()
    {
        await _pods.CreateAsync(NewPod("a"), _ct);
        _server.ClearRequests();
        await _pods.GetAsync("ns1", "a", _ct);
        await _pods.ListAsync("ns1", new ListOptions(), _ct);
        Assert.DoesNotContain(_server.Requests, r => r.IsWrite);
        Assert.Equal(2, _server.Requests.Count);
    }

    /// <summary>
    /// API discovery of one group: the versions served, and none (not an error) for a group the server does not serve
    /// — how crsc tells whether the API server has the pod-level checkpoint API (KEP-5823, checkpoint.k8s.io).
    /// </summary>
    [Fact]
    public async Task Group_discovery_lists_the_served_versions_and_nothing_for_an_unknown_group()
    {
        Assert.Empty(await _api.GetGroupVersionsAsync("checkpoint.k8s.io", _ct));
        Assert.Equal("/apis/checkpoint.k8s.io", _server.Requests[^1].Path);

        _server.Register(new FakeResource("checkpoint.k8s.io", "v1alpha1", "podcheckpoints", "PodCheckpoint", Namespaced: true,
            HasStatusSubresource: true));
        Assert.Equal(["checkpoint.k8s.io/v1alpha1"], await _api.GetGroupVersionsAsync("checkpoint.k8s.io", _ct));
        Assert.Equal(["apps/v1"], await _api.GetGroupVersionsAsync("apps", _ct));
    }
}

using System.Text.Json;
using System.Net;
using System.Net.Sockets;
using Crsc.Api.Kubernetes;
using Crsc.Configuration;
using Crsc.Controllers.Health;
using Crsc.Controllers.Leadership;
using Crsc.Daemon;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Crsc.Testing.Kube;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Presence;
using Crsc.Controllers.Reconciling;

namespace Crsc.Tests.Cluster;

/// <summary>
/// The daemon as composed by <see cref="DaemonHost.Build"/>, pointed at a kubeconfig for a <see cref="FakeApiServer"/>:
/// what /readyz and STATUS= say while it connects, syncs, leads, loses the API server and gets it back.
/// </summary>
public sealed class DaemonClusterTests
{
    private const string Node = "node-t";

    private sealed class Daemon : IAsyncDisposable
    {
        private readonly TempDir _dir = new();
        private readonly HttpClient _http;

        public Daemon(string? kubeconfigYaml, string node = Node)
        {
            var kubeconfig = "";
            if (kubeconfigYaml is not null)
            {
                kubeconfig = _dir.Combine("kubeconfig");
                File.WriteAllText(kubeconfig, kubeconfigYaml);
            }
            Socket = _dir.Combine("crsc.sock");
            var options = new CrscOptions
            {
                NodeName = node, Kubeconfig = kubeconfig, Socket = Socket, Namespace = "crsc-system",
                // each daemon its own store: the store's lock refuses a second daemon on one store
                CheckpointDir = _dir.Combine("checkpoints"), StagingDir = _dir.Combine("staging"), StateDir = _dir.Combine("state"),
                // the node state of the test, not the machine's; no logind here, and none wanted (a fully ready daemon)
                NodeStateDirectory = _dir.Combine("node-state"), ShutdownCheckpoint = "false",
                // a runtime that answers, so a connected daemon is fully ready (not degraded by its runtime)
                RuntimeEndpoint = "unix://" + _dir.Combine("cri.sock"),
                ImagesListen = "", // two daemons in one process: no fixed port (tests/Crsc.Tests/Images covers the endpoint)
            };
            App = DaemonHost.Build(options, new Serilog.LoggerConfiguration().CreateLogger(), TimeProvider.System);
            var timings = App.Services.GetRequiredService<ClusterConnectionOptions>();
            timings.ProbeInterval = TimeSpan.FromSeconds(1);
            timings.InitialRetry = TimeSpan.FromMilliseconds(200);
            timings.MaxRetry = TimeSpan.FromSeconds(1);
            _http = new HttpClient(new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(Socket), ct);
                    return new NetworkStream(s, ownsSocket: true);
                },
            }) { BaseAddress = new Uri("http://localhost"), Timeout = TimeSpan.FromSeconds(10) };
        }

        public WebApplication App { get; }
        public string Socket { get; }
        public HealthRegistry Health => App.Services.GetRequiredService<HealthRegistry>();
        public ClusterServices Cluster => App.Services.GetRequiredService<ClusterServices>();

        private FakeCriServer? _cri;

        public async Task StartAsync(Action<FakeCriServer>? runtime = null)
        {
            _cri = await FakeCriServer.StartAsync(_dir.Combine("cri.sock"));
            runtime?.Invoke(_cri);
            await App.StartAsync(ClusterTestKit.Timeout());
            App.Services.GetRequiredService<DaemonState>().Started = true;
        }

        public async Task<(HttpStatusCode Code, string Body)> ReadyzAsync()
        {
            using var response = await _http.GetAsync("/readyz");
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        public async Task<string> MetricsAsync()
        {
            using var response = await _http.GetAsync("/metrics");
            response.EnsureSuccessStatusCode();
            return await response.Content.ReadAsStringAsync();
        }

        public async Task<bool> ReadyzContainsAsync(params string[] lines)
        {
            var (code, body) = await ReadyzAsync();
            return code == HttpStatusCode.OK && lines.All(l => body.Contains(l, StringComparison.Ordinal));
        }

        public async ValueTask DisposeAsync()
        {
            await App.StopAsync(ClusterTestKit.Timeout());
            await App.DisposeAsync();
            if (_cri is not null) await _cri.DisposeAsync();
            _http.Dispose();
            _dir.Dispose();
        }
    }

    private static async Task<FakeApiServer> ServerAsync()
    {
        var server = await FakeApiServer.StartAsync();
        ClusterTestKit.RegisterCrds(server);
        for (var i = 0; i < 3; i++) server.Seed(Resources.Pods, ClusterTestKit.Pod($"mine-{i}", Node));
        for (var i = 0; i < 2; i++) server.Seed(Resources.Pods, ClusterTestKit.Pod($"other-{i}", "node-other"));
        return server;
    }

    private static Lease? LeaseOf(FakeApiServer server)
        => server.Get(Resources.Leases, "crsc-system", LeaderElectionOptions.DefaultLeaseName);

    [Fact]
    public async Task Connected_synced_leading_then_degraded_when_the_api_server_goes_away_and_back_when_it_returns()
    {
        await using var server = await ServerAsync();
        await using var daemon = new Daemon(server.KubeconfigYaml());
        await daemon.StartAsync();
        var url = server.Url.GetLeftPart(UriPartial.Authority);

        await Eventually.TrueAsync(() => daemon.ReadyzContainsAsync(
            "ready\n",
            $"[+]kube healthy: connected to {url} (v1.34.0-crsc-fake)",
            "[+]informers healthy: synced (3 pods on node)",
            "[+]leader healthy: leading",
            $"[+]node-agent healthy: node {Node}"), "connected, synced and leading", TimeSpan.FromSeconds(30));
        var summary = daemon.Health.Summary();
        Assert.StartsWith("running: ", summary);
        Assert.Contains($"kube: connected to {url}", summary);
        Assert.Contains("informers: synced (3 pods on node)", summary);
        Assert.Contains("leader: leading", summary);
        Assert.StartsWith(Node + "_", LeaseOf(server)!.Spec.HolderIdentity);
        Assert.Equal(daemon.Cluster.Elector!.Identity, LeaseOf(server)!.Spec.HolderIdentity);
        // the informer asked for this node's pods only
        Assert.Contains(server.Requests, r => r.Path == "/api/v1/pods" && r.Query.Contains("spec.nodeName%3Dnode-t", StringComparison.Ordinal)
                                              || r.Path == "/api/v1/pods" && r.Query.Contains("spec.nodeName=node-t", StringComparison.Ordinal));

        // a pod scheduled to this node shows in the count
        server.Seed(Resources.Pods, ClusterTestKit.Pod("mine-new", Node));
        await Eventually.TrueAsync(() => daemon.ReadyzContainsAsync("[+]informers healthy: synced (4 pods on node)"), "the count follows");

        await server.StopAsync();
        await Eventually.TrueAsync(() => daemon.ReadyzContainsAsync("ready (degraded)\n", "[~]kube degraded: api-server unreachable since "),
            "degraded, still ready", TimeSpan.FromSeconds(30));
        var (code, body) = await daemon.ReadyzAsync();
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Contains("[+]node-agent healthy", body);
        Assert.StartsWith("degraded: ", daemon.Health.Summary());
        Assert.Contains("kube: api-server unreachable since ", daemon.Health.Summary());

        await server.StartAsync();
        await Eventually.TrueAsync(() => daemon.ReadyzContainsAsync(
            "ready\n", $"[+]kube healthy: connected to {url}", "[+]informers healthy: synced (4 pods on node)", "[+]leader healthy: leading"),
            "healthy again", TimeSpan.FromSeconds(30));

        // graceful shutdown empties the Lease so that another instance takes over at once
        await daemon.App.StopAsync(ClusterTestKit.Timeout());
        Assert.True(string.IsNullOrEmpty(LeaseOf(server)!.Spec.HolderIdentity), $"lease still held by {LeaseOf(server)!.Spec.HolderIdentity}");
    }

    [Fact]
    public async Task An_unreachable_api_server_at_start_is_degraded_and_retried_until_it_answers()
    {
        await using var server = await ServerAsync();
        var kubeconfig = server.KubeconfigYaml();
        await server.StopAsync();
        await using var daemon = new Daemon(kubeconfig);
        await daemon.StartAsync();

        await Eventually.TrueAsync(() => daemon.ReadyzContainsAsync(
            "[~]kube degraded: api-server unreachable since ", "[~]informers degraded: waiting for the API server"),
            "degraded while unreachable", TimeSpan.FromSeconds(30));

        await server.StartAsync();
        await Eventually.TrueAsync(() => daemon.ReadyzContainsAsync(
            "ready\n", "[+]kube healthy: connected to ", "[+]informers healthy: synced (3 pods on node)", "[+]leader healthy: leading"),
            "connected once the server answers", TimeSpan.FromSeconds(30));
    }

    /// <summary>Records the keys it reconciles while its leadership term lasts.</summary>
    private sealed class RecordingReconciler : IReconciler
    {
        private readonly List<ObjectKey> _keys = [];
        public IReadOnlyList<ObjectKey> Keys { get { lock (_keys) return [.. _keys]; } }
        public ValueTask<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken ct)
        {
            lock (_keys) _keys.Add(key);
            return ValueTask.FromResult(ReconcileResult.Done);
        }
    }

    private static RecordingReconciler AddLeaderController(Daemon daemon)
    {
        var reconciler = new RecordingReconciler();
        daemon.Cluster.Manager!.Add(new Controller("test-checkpoints", reconciler, TimeProvider.System, NullLogger.Instance)
            .Watch(daemon.Cluster.Checkpoints!), leaderOnly: true);
        return reconciler;
    }

    [Fact]
    public async Task Leader_controllers_run_on_the_leading_daemon_only_and_move_to_the_other_when_it_shuts_down()
    {
        await using var server = await ServerAsync();
        server.Seed(CrscResources.ContainerCheckpoints, new ContainerCheckpoint
        {
            Metadata = new ObjectMeta { Name = "ckpt-1", Namespace = "apps" },
            Spec = new ContainerCheckpointSpec { PodName = "mine-0", Container = "main" },
        });
        await using var first = new Daemon(server.KubeconfigYaml(), "node-1");
        var firstWork = AddLeaderController(first);
        await first.StartAsync();
        await Eventually.TrueAsync(() => first.ReadyzContainsAsync("[+]leader healthy: leading"), "the first daemon leads", TimeSpan.FromSeconds(30));
        await Eventually.TrueAsync(() => firstWork.Keys.Contains(new ObjectKey("apps", "ckpt-1")), "its leader controller reconciles");

        await using var second = new Daemon(server.KubeconfigYaml(), "node-2");
        var secondWork = AddLeaderController(second);
        await second.StartAsync();
        await Eventually.TrueAsync(() => second.ReadyzContainsAsync(
            "[+]informers healthy: synced (0 pods on node)", $"[+]leader healthy: following {first.Cluster.Elector!.Identity}"),
            "the second daemon follows", TimeSpan.FromSeconds(30));
        Assert.Empty(secondWork.Keys);

        // graceful shutdown releases the Lease: the second takes over well before the 15 s lease would expire
        var sw = System.Diagnostics.Stopwatch.StartNew();
        await first.App.StopAsync(ClusterTestKit.Timeout());
        await Eventually.TrueAsync(() => second.ReadyzContainsAsync("[+]leader healthy: leading"), "the second daemon leads", TimeSpan.FromSeconds(30));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(12), $"failover took {sw.Elapsed}");
        await Eventually.TrueAsync(() => secondWork.Keys.Contains(new ObjectKey("apps", "ckpt-1")), "its leader controller reconciles");
        Assert.Equal(second.Cluster.Elector!.Identity, LeaseOf(server)!.Spec.HolderIdentity);
    }

    /// <summary>
    /// Issue 16: a restore does not wait for a new leader. The leader's Lease is held by a daemon that crashed (never
    /// renewed again, not released: 15 s before this daemon may take it); a managed pod on this daemon's node has just
    /// failed. This daemon's node agent, not leading, sees the Lease unchanged for 3 s and acts in the leader's place: the
    /// failure becomes the Restore the leader would create and its restore starts (the pod chosen), while the daemon
    /// still follows the crashed leader.
    /// </summary>
    [Fact]
    public async Task A_follower_restores_a_failure_on_its_node_while_the_crashed_leaders_Lease_has_not_expired()
    {
        await using var server = await ServerAsync();
        server.Seed(Resources.Leases, new Lease
        {
            Metadata = new ObjectMeta { Namespace = "crsc-system", Name = LeaderElectionOptions.DefaultLeaseName },
            Spec = new LeaseSpec { HolderIdentity = "crashed_1", LeaseDurationSeconds = 15, RenewTime = DateTimeOffset.UtcNow },
        });
        var deployment = server.Seed(Resources.Deployments, new Deployment
        {
            Metadata = new ObjectMeta { Name = "web", Namespace = "default", Annotations = new() { [Annotations.CheckpointRestore] = "true" } },
        });
        var rs = server.Seed(Resources.ReplicaSets, new ReplicaSet
        {
            Metadata = new ObjectMeta
            {
                Name = "web-6c5d8", Namespace = "default",
                OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = "web", Uid = deployment.Metadata.Uid!, Controller = true }],
            },
        });
        var pod = ClusterTestKit.Pod("web-6c5d8-abcde", Node);
        pod.Metadata.Labels = new() { ["pod-template-hash"] = "6c5d8" };
        pod.Metadata.OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = rs.Metadata.Name!, Uid = rs.Metadata.Uid!, Controller = true }];
        pod.Spec.Containers[0].Name = "app";
        var failedAt = DateTimeOffset.UtcNow;
        pod.Status = new PodStatus
        {
            Phase = "Running",
            ContainerStatuses =
            [
                new ContainerStatus
                {
                    Name = "app", Ready = true, RestartCount = 1,
                    State = new ContainerState { Running = new ContainerStateRunning { StartedAt = failedAt } },
                    LastState = new ContainerState { Terminated = new ContainerStateTerminated { ExitCode = 137, Reason = "Error", FinishedAt = failedAt } },
                },
            ],
        };
        server.Seed(Resources.Pods, pod);

        var sw = System.Diagnostics.Stopwatch.StartNew();
        await using var daemon = new Daemon(server.KubeconfigYaml());
        await daemon.StartAsync();

        Restore? restore = null;
        await Eventually.TrueAsync(() =>
        {
            restore = server.All(server.ResourceOf(CrscResources.Restores))
                .Select(o => o.Deserialize(CrscJsonContext.Default.Restore)!).SingleOrDefault();
            return restore?.Status?.PodName is not null;
        }, "the node agent creates the Restore and starts it", TimeSpan.FromSeconds(30));
        var took = sw.Elapsed;
        Assert.True(await daemon.ReadyzContainsAsync("[+]leader healthy: following crashed_1"), "the daemon still follows the crashed leader");
        Assert.True(took < TimeSpan.FromSeconds(12), $"took {took} (the Lease expires 15 s after the daemon first saw it)");
        Assert.Equal("crashed_1", LeaseOf(server)!.Spec.HolderIdentity);
        Assert.Equal("web-6c5d8-abcde", restore!.Metadata.Annotations![Annotations.FailedPod]);
        Assert.Equal(Crsc.Controllers.Workloads.PodFailureReconciler.RestoreName("web", "app", failedAt), restore.Metadata.Name);
        Assert.Equal(("web-6c5d8-abcde", Node), (restore.Status!.PodName, restore.Status.Node));
    }

    /// <summary>
    /// The daemon renews its node's presence Lease, and as leader lets go of the archive finalizer of a deleted
    /// checkpoint whose node and node agent are gone, so that the deletion (and its namespace's) can finish.
    /// </summary>
    [Fact]
    public async Task The_daemon_renews_its_presence_lease_and_the_leader_releases_a_checkpoint_of_a_vanished_node()
    {
        await using var server = await ServerAsync();
        // node-gone ran crsc once: its Lease (never renewed again: 1 s long), and a checkpoint it stored there
        server.Seed(Resources.Leases, new Lease
        {
            Metadata = new ObjectMeta { Namespace = "crsc-system", Name = NodeLeases.NameFor("node-gone") },
            Spec = new LeaseSpec { HolderIdentity = "node-gone", LeaseDurationSeconds = 1, RenewTime = DateTimeOffset.UtcNow.AddHours(-1) },
        });
        server.Seed(CrscResources.ContainerCheckpoints, new ContainerCheckpoint
        {
            Metadata = new ObjectMeta { Name = "ckpt-gone", Namespace = "apps", Finalizers = [Finalizers.Archive] },
            Spec = new ContainerCheckpointSpec { PodName = "gone-0", Container = "main" },
            Status = new ContainerCheckpointStatus { Phase = ContainerCheckpointPhase.Completed, Node = "node-gone" },
        });
        await using var daemon = new Daemon(server.KubeconfigYaml());
        await daemon.StartAsync();

        await Eventually.TrueAsync(() => server.Get(Resources.Leases, "crsc-system", "crsc-node-" + Node)?.Spec.HolderIdentity == Node,
            "the daemon's presence Lease", TimeSpan.FromSeconds(30));
        await Eventually.TrueAsync(() => daemon.ReadyzContainsAsync("[+]leader healthy: leading"), "leading", TimeSpan.FromSeconds(30));
        using var api = ClusterTestKit.Api(server);
        await api.Resource(CrscResources.ContainerCheckpoints).DeleteAsync("apps", "ckpt-gone", null, ClusterTestKit.Timeout());
        Assert.NotNull(server.Get(CrscResources.ContainerCheckpoints, "apps", "ckpt-gone")); // the finalizer holds it

        await Eventually.TrueAsync(() => server.Get(CrscResources.ContainerCheckpoints, "apps", "ckpt-gone") is null,
            "the leader removes the finalizer and the API server finishes the deletion", TimeSpan.FromSeconds(30));
        await Eventually.TrueAsync(() => server.All(server.ResourceOf(Resources.CoreEvents)).Any(e =>
            (string?)e["reason"] == AbandonedCheckpointReconciler.ArchiveAbandonedReason && (string?)e["type"] == "Warning"
            && ((string?)e["message"])!.Contains("node node-gone no longer exists", StringComparison.Ordinal)), "a Warning Event says so");

        // the daemon's /metrics shows its controllers as controller-runtime's metrics: the leader's that released the
        // checkpoint, and the node's that reconciled it too (it is not this node's: nothing to do)
        const string abandoned = AbandonedCheckpointReconciler.ControllerName;
        await Eventually.TrueAsync(async () => (await daemon.MetricsAsync()).Contains(
            $"controller_runtime_reconcile_total{{controller=\"{abandoned}\",result=\"success\"}} ", StringComparison.Ordinal),
            "the leader's controller counts its reconciles");
        var metrics = await daemon.MetricsAsync();
        Assert.Contains($"controller_runtime_max_concurrent_reconciles{{controller=\"{abandoned}\"}} 1\n", metrics);
        Assert.Contains($"controller_runtime_reconcile_time_seconds_count{{controller=\"{abandoned}\"}} ", metrics);
        Assert.Contains($"workqueue_adds_total{{name=\"{abandoned}\",controller=\"{abandoned}\"}} ", metrics);
        Assert.Contains($"workqueue_queue_duration_seconds_bucket{{name=\"{abandoned}\",controller=\"{abandoned}\",le=\"1e-08\"}} ", metrics);
        const string node = ContainerCheckpointReconciler.ControllerName;
        Assert.Contains($"controller_runtime_reconcile_total{{controller=\"{node}\",result=\"success\"}} ", metrics);
        Assert.Contains($"workqueue_depth{{name=\"{node}\",controller=\"{node}\"}} ", metrics);
        Assert.Contains("# TYPE controller_runtime_reconcile_time_seconds histogram\n", metrics);
    }

    /// <summary>
    /// The daemon writes its node's CheckpointNode: what the runtime probe found (this fake runtime is no runtime the
    /// probe knows: never a guess shown as a fact), its store and its version.
    /// </summary>
    [Fact]
    public async Task The_daemon_reports_its_node_in_a_CheckpointNode()
    {
        await using var server = await ServerAsync();
        await using var daemon = new Daemon(server.KubeconfigYaml());
        await daemon.StartAsync();

        await Eventually.TrueAsync(() => server.Get(CrscResources.CheckpointNodes, null, Node)?.Status is not null,
            "the daemon's CheckpointNode", TimeSpan.FromSeconds(30));
        using var api = ClusterTestKit.Api(server);
        var node = await api.Resource(CrscResources.CheckpointNodes).GetAsync(null, Node, ClusterTestKit.Timeout());
        var status = node.Status!;
        Assert.Equal("fake-cri", status.Runtime!.Name);
        Assert.StartsWith("fake-cri ", status.RuntimeSummary);
        // without CRIU on this machine's search path the verdict is NotSupported naming criu; with it, Unknown naming
        // the runtime the probe does not know. Either way never Supported, and the condition says the same
        var criuMissing = status.Restore.State == CapabilityState.NotSupported;
        Assert.Equal(criuMissing ? CapabilityState.NotSupported : CapabilityState.Unknown, status.Restore.State);
        Assert.Contains(criuMissing ? "criu" : "fake-cri", status.Restore.Reason, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(criuMissing ? ConditionStatus.False : ConditionStatus.Unknown,
            status.FindCondition(CheckpointNodeConditions.RestoreReady)!.Status);
        Assert.Equal((0, 0L, "0 B"), (status.Store!.Checkpoints, status.Store.Bytes, status.Store.Used));
        Assert.Equal(BuildInfo.Version, status.AgentVersion);
        // this API server has no pod-level checkpoint API (KEP-5823): said, from discovery
        Assert.Equal("not served", status.PodCheckpointApi);
    }

    [Fact]
    public async Task An_api_server_with_the_pod_level_checkpoint_api_is_reported_as_serving_it()
    {
        await using var server = await ServerAsync();
        server.Register(new FakeResource("checkpoint.k8s.io", "v1alpha1", "podcheckpoints", "PodCheckpoint", Namespaced: true,
            HasStatusSubresource: true));
        await using var daemon = new Daemon(server.KubeconfigYaml());
        await daemon.StartAsync();
        await Eventually.TrueAsync(() => server.Get(CrscResources.CheckpointNodes, null, Node)?.Status?.PodCheckpointApi is not null,
            "the daemon's CheckpointNode", TimeSpan.FromSeconds(30));
        Assert.Equal("served: checkpoint.k8s.io/v1alpha1", server.Get(CrscResources.CheckpointNodes, null, Node)!.Status!.PodCheckpointApi);
    }

    /// <summary>
    /// `crsc status` on a node whose containerd 2.3.4 has restore off: the runtime rows name the verdict and the setting
    /// that turns restore on, the runtime health entry is degraded for it, and the store and schedules are shown; no API
    /// server is needed for any of it.
    /// </summary>
    [Fact]
    public async Task Crsc_status_shows_what_the_runtime_can_do_and_how_to_change_it()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST"))) return; // in a cluster
        await using var daemon = new Daemon(null);
        await daemon.StartAsync(cri =>
        {
            cri.RuntimeName = "containerd";
            cri.RuntimeVersion = "v2.3.4";
            cri.StatusInfo["config"] = RuntimeAnswers.ContainerdConfigJson(restoreViaCreate: false);
        });
        await Eventually.TrueAsync(() => daemon.ReadyzContainsAsync("restore: disabled by runtime config"), "the runtime probed");

        var (code, output, err) = await Crsc.Tests.Cli.CliStore.RunAsync("status", "--socket", daemon.Socket);

        Assert.True(code == 0, err);
        Assert.Contains($"Node {Node}: crsc {BuildInfo.Version}, degraded", output);
        Assert.Contains("Runtime: containerd v2.3.4", output);
        Assert.Matches(@"restore\s+DisabledByConfig: .*enable_experimental_restore_via_create", output);
        Assert.Matches(@"to change it: .*enable_experimental_restore_via_create = true", output);
        Assert.Contains("[~] runtime      containerd v2.3.4", output);
        Assert.Contains("Store: 0 checkpoint(s), 0 B", output);
        Assert.Contains("Schedules: none of this node's pods has one", output);
        Assert.Contains("Recent checkpoints: none in the store", output);

        var (jsonCode, json, _) = await Crsc.Tests.Cli.CliStore.RunAsync("status", "--json", "--socket", daemon.Socket);
        Assert.Equal(0, jsonCode);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("DisabledByConfig", doc.RootElement.GetProperty("runtime").GetProperty("restore").GetProperty("state").GetString());
        Assert.Equal(Node, doc.RootElement.GetProperty("node").GetString());
    }

    [Fact]
    public async Task Crsc_status_without_a_daemon_says_so_and_fails()
    {
        using var dir = new TempDir();
        var (code, _, err) = await Crsc.Tests.Cli.CliStore.RunAsync("status", "--socket", dir.Combine("crsc.sock"));
        Assert.Equal(1, code);
        Assert.Contains("cannot reach the crsc daemon", err);
        Assert.Contains(dir.Combine("crsc.sock"), err);
    }

    [Fact]
    public async Task Without_an_api_server_the_daemon_is_a_node_agent_only_and_still_ready()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST"))) return; // in a cluster
        await using var daemon = new Daemon(null);
        await daemon.StartAsync();
        var (code, body) = await daemon.ReadyzAsync();
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Contains("[~]kube degraded: no API server configured (node agent only)", body);
        Assert.DoesNotContain("informers", body);
        Assert.Null(daemon.Cluster.Api);
    }

    /// <summary>
    /// Issue 7's seed flow as the daemon composes it: the leader's Deployment reconciler gives an annotated Deployment
    /// its schedule, and the node agent of the node running its pod creates the schedule's ContainerCheckpoints.
    /// </summary>
    [Fact]
    public async Task An_annotated_Deployment_gets_a_schedule_and_its_pod_on_this_node_gets_scheduled_checkpoints()
    {
        await using var server = await ServerAsync();
        var labels = new Dictionary<string, string> { ["app"] = "web" };
        var deployment = server.Seed(Resources.Deployments, new Deployment
        {
            Metadata = new ObjectMeta
            {
                Name = "web", Namespace = "default", Labels = labels,
                Annotations = new() { [Annotations.CheckpointRestore] = "true", [Annotations.CheckpointInterval] = "10s" },
            },
            Spec = new DeploymentSpec
            {
                Replicas = 1, Selector = new LabelSelector { MatchLabels = labels },
                Template = new PodTemplateSpec { Metadata = new ObjectMeta { Labels = labels },
                    Spec = new PodSpec { Containers = [new Container { Name = "app", Image = "registry.k8s.io/pause:3.10" }] } },
            },
        });
        var rs = server.Seed(Resources.ReplicaSets, new ReplicaSet
        {
            Metadata = new ObjectMeta
            {
                Name = "web-6c5d8", Namespace = "default", Labels = new(labels) { ["pod-template-hash"] = "6c5d8" },
                OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "Deployment", Name = "web", Uid = deployment.Metadata.Uid!, Controller = true }],
            },
        });
        var pod = ClusterTestKit.Pod("web-6c5d8-abcde", Node);
        pod.Metadata.Labels = new(labels) { ["pod-template-hash"] = "6c5d8" };
        pod.Metadata.OwnerReferences = [new OwnerReference { ApiVersion = "apps/v1", Kind = "ReplicaSet", Name = rs.Metadata.Name!, Uid = rs.Metadata.Uid!, Controller = true }];
        pod.Spec.Containers[0].Name = "app";
        pod.Status = new PodStatus { Phase = "Running" };
        server.Seed(Resources.Pods, pod);

        await using var daemon = new Daemon(server.KubeconfigYaml());
        await daemon.StartAsync();

        CheckpointSchedule? schedule = null;
        await Eventually.TrueAsync(() => (schedule = server.Get(CrscResources.CheckpointSchedules, "default", "web")) is not null,
            "the leader gives the Deployment its schedule", TimeSpan.FromSeconds(30));
        Assert.Equal("10s", schedule!.Spec.Interval);
        Assert.Equal(ScheduleTargetKind.Deployment, schedule.Spec.Target.Kind);
        Assert.Contains(schedule.Metadata.OwnerReferences!, o => o.Kind == "Deployment" && o.Uid == deployment.Metadata.Uid && o.Controller == true);

        ContainerCheckpoint? checkpoint = null;
        await Eventually.TrueAsync(() =>
        {
            checkpoint = server.All(server.ResourceOf(CrscResources.ContainerCheckpoints))
                .Select(o => o.Deserialize(CrscJsonContext.Default.ContainerCheckpoint)!).FirstOrDefault();
            return checkpoint is not null;
        }, "the node agent creates the schedule's first checkpoint", TimeSpan.FromSeconds(40));
        Assert.Equal("web-6c5d8-abcde", checkpoint!.Spec.PodName);
        Assert.Equal("app", checkpoint.Spec.Container);
        Assert.StartsWith("web-app-", checkpoint.Metadata.Name);
        Assert.Equal("web", checkpoint.Metadata.Labels![Labels.Schedule]);
        Assert.Contains(checkpoint.Metadata.OwnerReferences!, o => o.Kind == CheckpointSchedule.KindName && o.Name == "web");
    }
}

using System.Diagnostics;
using System.Text.Json;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Crsc.Testing.Kube;
using Xunit.Abstractions;

namespace Crsc.E2E.Tests.Binary;

/// <summary>
/// Issue 5 with the published AOT daemon, a <see cref="FakeApiServer"/> and a <see cref="FakeCriServer"/>: a 10 s
/// schedule checkpoints while connected, goes on through the runtime while the API server is stopped (also across a
/// daemon restart, from its state on disk), and when the API server is back every archive taken meanwhile appears as
/// one Completed ContainerCheckpoint and one ContainerCheckpointContent.
/// </summary>
public sealed class AutonomyTests(ITestOutputHelper output) : IDisposable
{
    private const string Node = "e2e-node";
    private const string Ns = "default";
    private const string PodName = "web-6c5d8-abcde";
    private readonly TempDir _dir = new("crsc-e2e-autonomy-");

    public void Dispose() => _dir.Dispose();

    private int Archives() => Directory.Exists(_dir.Combine("checkpoints"))
        ? Directory.GetFiles(_dir.Combine("checkpoints"), "*.tar*", SearchOption.AllDirectories).Length
        : 0;

    private static List<T> All<T>(FakeApiServer api, ResourceType<T> type) where T : class, IKubernetesObject =>
        [.. api.All(api.ResourceOf(type)).Select(o => o.Deserialize(type.Json)!)];

    [Fact]
    public async Task Checkpoints_go_on_while_the_api_server_is_away_and_across_a_restart_and_are_published_once_when_it_returns()
    {
        await using var cri = await FakeCriServer.StartAsync(_dir.Combine("cri.sock"));
        cri.AddRunningContainer(Ns, PodName, "app");
        await using var api = await FakeApiServer.StartAsync();
        foreach (var t in new[] { FakeResource.From(CrscResources.ContainerCheckpoints, true), FakeResource.From(CrscResources.ContainerCheckpointContents, true),
                     FakeResource.From(CrscResources.CheckpointSchedules, true), FakeResource.From(CrscResources.Restores, true) })
            api.Register(t);
        api.Seed(Resources.Pods, JsonSerializer.Deserialize($$$"""
            {"metadata":{"name":"{{{PodName}}}","namespace":"{{{Ns}}}","uid":"pod-uid-1","labels":{"pod-template-hash":"6c5d8"},
              "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-6c5d8","uid":"rs-1","controller":true}]},
             "spec":{"nodeName":"{{{Node}}}","containers":[{"name":"app","image":"registry.local/busybox:1"}]},
             "status":{"phase":"Running"}}
            """, KubeJsonContext.Default.Pod)!);
        api.Seed(CrscResources.CheckpointSchedules, new CheckpointSchedule
        {
            Metadata = new ObjectMeta { Name = "web", Namespace = Ns },
            Spec = new CheckpointScheduleSpec
            {
                Target = new ScheduleTarget { Kind = ScheduleTargetKind.Deployment, Name = "web" },
                Interval = "10s",
                Retention = new RetentionPolicy { KeepLast = 1000 },
            },
        });
        var kubeconfig = _dir.Combine("kubeconfig");
        File.WriteAllText(kubeconfig, api.KubeconfigYaml());
        File.WriteAllText(_dir.Combine("config.yaml"), "");
        using var notify = new NotifySocket(_dir.Combine("notify.sock"));
        var socket = _dir.Combine("run", "crsc.sock");
        var env = new Dictionary<string, string>
        {
            ["NODE_NAME"] = Node,
            ["CRSC_CONFIG"] = _dir.Combine("config.yaml"),
            ["CRSC_KUBECONFIG"] = kubeconfig,
            ["CRSC_SOCKET"] = socket,
            ["CRSC_STATE_DIR"] = _dir.Combine("state"),
            ["CRSC_NODE_STATE_DIRECTORY"] = _dir.Combine("node-state"),
            ["CRSC_CHECKPOINT_DIR"] = _dir.Combine("checkpoints"),
            ["CRSC_STAGING_DIR"] = _dir.Combine("staging"),
            ["CRSC_RUNTIME_ENDPOINT"] = cri.Endpoint,
            ["CRSC_IMAGES_LISTEN"] = "",
            ["CRSC_LOG_FORMAT"] = "json",
            ["NOTIFY_SOCKET"] = notify.Path,
        };
        Process? daemon = null;
        var logs = new List<Task<string>>();
        Process Start()
        {
            var p = Process.Start(PublishedBinary.Start(["daemon"], env))!;
            logs.Add(p.StandardOutput.ReadToEndAsync());
            logs.Add(p.StandardError.ReadToEndAsync());
            return p;
        }
        try
        {
            daemon = Start();

            // connected: the schedule's checkpoints are created and completed online, and the node state is saved
            await Eventually.TrueAsync(() => daemon.HasExited || All(api, CrscResources.ContainerCheckpoints)
                    .Any(c => c.Status?.Phase == ContainerCheckpointPhase.Completed),
                "a checkpoint completed online", TimeSpan.FromSeconds(60));
            Assert.False(daemon.HasExited, "the daemon exited");
            var stateFile = _dir.Combine("state", "node", "state.json");
            await Eventually.TrueAsync(() => File.Exists(stateFile) && File.ReadAllText(stateFile).Contains(PodName, StringComparison.Ordinal),
                "the node state names the schedule's pod", TimeSpan.FromSeconds(30));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(stateFile));

            // the API server goes away: STATUS= says so, and archives go on appearing in the store
            await api.StopAsync();
            await Eventually.TrueAsync(() => notify.Lines.Any(l => l.StartsWith("STATUS=", StringComparison.Ordinal)
                    && l.Contains("api-server unreachable since", StringComparison.Ordinal)),
                "STATUS= says the API server is unreachable", TimeSpan.FromSeconds(40));
            var atOutage = Archives();
            await Eventually.TrueAsync(() => Archives() >= atOutage + 2, "two offline checkpoints", TimeSpan.FromSeconds(45));
            using (var http = PublishedBinary.UnixHttpClient(socket))
            {
                var readyz = await http.GetAsync("/readyz");
                var body = await readyz.Content.ReadAsStringAsync();
                Assert.True(readyz.IsSuccessStatusCode, body);
                Assert.Contains("[~]kube degraded: api-server unreachable since ", body);
                Assert.Contains("record(s) waiting for the API server", body);
            }

            // a restart while it is still away: the daemon resumes from its state on disk
            DaemonProcess.Stop(daemon);
            var beforeRestart = Archives();
            daemon = Start();
            await Eventually.TrueAsync(() => daemon.HasExited || Archives() >= beforeRestart + 1,
                "an offline checkpoint after the restart", TimeSpan.FromSeconds(45));
            Assert.False(daemon.HasExited, "the restarted daemon exited");

            // back: every archive becomes one Completed ContainerCheckpoint and one Content, once
            await api.StartAsync();
            await Eventually.TrueAsync(() =>
            {
                var archives = Archives();
                var ckpts = All(api, CrscResources.ContainerCheckpoints);
                var contents = All(api, CrscResources.ContainerCheckpointContents);
                return ckpts.Count >= archives && contents.Count >= archives
                       && ckpts.All(c => c.Status?.Phase == ContainerCheckpointPhase.Completed);
            }, "the cluster learns every checkpoint", TimeSpan.FromSeconds(90));
            // let any late republish happen, then count against the store
            await Task.Delay(TimeSpan.FromSeconds(3));
            var store = new Crsc.Storage.ReadOnlyCheckpointStore(_dir.Combine("checkpoints")).List();
            var all = All(api, CrscResources.ContainerCheckpoints);
            var allContents = All(api, CrscResources.ContainerCheckpointContents);
            var offline = all.Where(c => c.Metadata.Annotations?.ContainsKey("crsc.io/taken-offline-on") == true).ToList();
            output.WriteLine($"{store.Count} archives, {all.Count} checkpoints ({offline.Count} offline), {allContents.Count} contents");
            Assert.True(offline.Count >= 3, $"{offline.Count} offline checkpoints");
            foreach (var archive in store)
            {
                var contents = allContents.Where(c => c.Spec.Path == archive.ArchivePath).ToList();
                Assert.True(contents.Count == 1, $"archive {archive.Id} has {contents.Count} contents");
                var ckpt = Assert.Single(all, c => c.Metadata.Uid == contents[0].Spec.CheckpointRef.Uid);
                Assert.Equal(ContainerCheckpointPhase.Completed, ckpt.Status!.Phase);
                Assert.Equal(archive.Digest, ckpt.Status.Digest);
            }
            Assert.Equal(store.Count, all.Count);
            Assert.Equal(store.Count, allContents.Count);
            // and the checkpoint names are the schedule's: <workload>-<container>-<time>
            Assert.All(all, c => Assert.Matches(@"^web-app-\d{14}$", c.Metadata.Name));
            var schedule = api.Get(CrscResources.CheckpointSchedules, Ns, "web")!;
            Assert.Contains(schedule.Status!.LastCheckpointName, all.Select(c => c.Metadata.Name));
        }
        finally
        {
            DaemonProcess.Stop(daemon);
            foreach (var log in logs)
            {
                var text = await log;
                output.WriteLine(text.Length > 20000 ? text[^20000..] : text);
            }
        }
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Cri;
using Crsc.Testing.Kube;
using Crsc.Testing.Kubelet;
using V1 = Runtime.V1;

namespace Crsc.Testing.Scenarios;

public sealed record CheckpointRestoreScenarioOptions
{
    /// <summary>The crsc binary (the published AOT build).</summary>
    public required string Binary { get; init; }

    /// <summary>CRI endpoint of the real runtime (the sandbox's containerd).</summary>
    public required string RuntimeEndpoint { get; init; }

    /// <summary>The image the counter runs from, pullable by the runtime.</summary>
    public required string Image { get; init; }

    /// <summary>cgroupfs parent for pods (the sandbox's <c>/crsc-sandbox</c>).</summary>
    public required string CgroupParent { get; init; }

    /// <summary>A fresh directory at the same path for this process and the runtime.</summary>
    public required string WorkDirectory { get; init; }

    /// <summary>The node's name (the pod's <c>spec.nodeName</c>, the daemon's <c>NODE_NAME</c>).</summary>
    public string NodeName { get; init; } = "sandbox";

    /// <summary>Host:port of the daemon's embedded image endpoint; the runtime must be allowed to pull from it.</summary>
    public string ImagesListen { get; init; } = "127.0.0.1:5055";

    /// <summary>The Deployment's <c>crsc.io/checkpoint-interval</c>.</summary>
    public string Interval { get; init; } = "15s";

    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(6);

    /// <summary>Seconds between two steps of the counter (busybox sleep takes fractions).</summary>
    public string Step { get; init; } = "0.5";

    /// <summary>MiB of incompressible memory the counter's container keeps resident (0: a small container).</summary>
    public int MemoryMiB { get; init; }
}

/// <summary>What the scenario saw.</summary>
public sealed record CheckpointRestoreResult(
    string CheckpointName,
    string CheckpointImage,
    long CounterAtCheckpointStart,
    long CounterAtCheckpointEnd,
    long CounterBeforeCrash,
    /// <summary>-1 when crsc patched the image before the kubelet restarted the killed container.</summary>
    long CounterAfterColdStart,
    long FirstCounterAfterRestore,
    string RestoreName,
    RestorePhase? RestorePhase,
    string PodUidBefore,
    string PodUidAfter,
    string ContainerIdBefore,
    string ContainerIdAfter);

/// <summary>
/// crsc's seed flow end to end on a real runtime: an API server (the in-process fake kube-apiserver), the kubelet's
/// part (<see cref="SandboxKubelet"/> over the real CRI runtime), and the crsc daemon as users run it. A Deployment
/// annotated <c>crsc.io/checkpoint-restore: "true"</c> runs a counter; crsc gives it a schedule and checkpoints it;
/// the container is killed (its memory, the counter, is lost and it cold-starts from 1); crsc notices, creates a
/// Restore, makes the checkpoint image pullable from its embedded endpoint and patches the pod's image to it; the
/// kubelet restarts the container from the checkpoint image and the counter goes on from the checkpointed value —
/// same pod. Used by <c>make demo</c> (narrated) and by the end-to-end tests (asserted).
/// </summary>
public sealed partial class CheckpointRestoreScenario(CheckpointRestoreScenarioOptions options, Action<string> say)
{
    public const string Namespace = "demo";
    public const string DeploymentName = "counter";
    public const string ContainerName = "counter";
    private const string ReplicaSetName = "counter-5d8f7b9c4";
    private const string PodName = "counter-5d8f7b9c4-x7k2p";

    public async Task<CheckpointRestoreResult> RunAsync(CancellationToken cancel)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(options.Timeout);
        var ct = timeout.Token;

        var work = options.WorkDirectory;
        var data = Directory.CreateDirectory(Path.Combine(work, "data")).FullName;
        var counterFile = Path.Combine(data, "counter");
        await using var rig = await Rig.StartAsync(options, say, ct);
        var (api, cri, kubelet, kubeconfig) = (rig.Api, rig.Cri, rig.Kubelet, rig.Kubeconfig);

        SeedWorkload(api, data);
        say($"Deployment {Namespace}/{DeploymentName} annotated crsc.io/checkpoint-restore=true, interval {options.Interval}; its pod {PodName} runs a counter (one step every {options.Step} s, kept in memory, written to {counterFile})");

        Process? daemon = null;
        var daemonLog = Path.Combine(work, "daemon.log");
        try
        {
            await WaitAsync(() => Counter(counterFile) >= 3, "the counter is running", TimeSpan.FromSeconds(60), ct);
            var incarnation = Incarnation(counterFile);
            var podUidBefore = Pod(api)!.Metadata.Uid!;

            EnsureImagesPortFree(options.ImagesListen);
            daemon = StartDaemon(work, kubeconfig, daemonLog);
            say($"crsc daemon started (pid {daemon.Id}, log {daemonLog})");

            var schedule = await WaitForAsync(() => api.Get(CrscResources.CheckpointSchedules, Namespace, DeploymentName), daemon,
                "crsc creates the CheckpointSchedule for the Deployment", TimeSpan.FromSeconds(60), daemonLog, ct);
            say($"CheckpointSchedule {Namespace}/{schedule.Metadata.Name}: every {schedule.Spec.Interval}, owned by the Deployment");

            // the first scheduled checkpoint: counter values around it bound what the restore must bring back
            long atStart = -1;
            ContainerCheckpoint? completed = null;
            await WaitAsync(() =>
            {
                CheckDaemon(daemon, daemonLog);
                var checkpoints = Checkpoints(api);
                if (atStart < 0 && checkpoints.Count > 0) atStart = Counter(counterFile);
                completed = checkpoints.FirstOrDefault(c => c.Status?.Phase == ContainerCheckpointPhase.Completed);
                if (checkpoints.FirstOrDefault(c => c.Status?.Phase == ContainerCheckpointPhase.Failed) is { } failed)
                    throw new InvalidOperationException($"checkpoint {failed.Metadata.Name} failed: {failed.Status!.Message}");
                return completed is not null;
            }, "the schedule's first checkpoint completes", TimeSpan.FromMinutes(2), ct, TimeSpan.FromMilliseconds(50));
            var atEnd = Counter(counterFile);
            var content = await WaitForAsync(() => completed!.Status?.ContentName is { } n
                    ? api.Get(CrscResources.ContainerCheckpointContents, null, n) is { Spec.ImageReference: not null } c ? c : null : null,
                daemon, "the checkpoint's image reference is published", TimeSpan.FromSeconds(30), daemonLog, ct);
            say($"ContainerCheckpoint {completed!.Metadata.Name}: Completed, {completed.Status!.SizeBytes} bytes, {completed.Status.Digest}; the counter was between {atStart} and {atEnd}");
            say($"checkpoint image: {content.Spec.ImageReference}");

            await Task.Delay(TimeSpan.FromSeconds(3), ct);
            var beforeCrash = Counter(counterFile);
            var containerId = kubelet.ContainerIdOf(Namespace, PodName, ContainerName)
                              ?? throw new InvalidOperationException("the kubelet has no container for the counter");
            say($"counter now {beforeCrash}; killing the container {containerId[..12]} (SIGKILL): its memory is gone");
            await cri.StopContainerAsync(new V1.StopContainerRequest { ContainerId = containerId, Timeout = 0 }, ct: ct);

            // the kubelet restarts it at once from its image: a cold start, the counter begins again — unless crsc has
            // patched the pod's image by then, and the first restart is the restore already
            long coldStart = -1;
            using var coldStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var coldWatch = Task.Run(async () =>
            {
                while (!coldStop.IsCancellationRequested && coldStart < 0)
                {
                    var value = Counter(counterFile);
                    if (value >= 1 && Incarnation(counterFile) is { } i && i != incarnation)
                    {
                        coldStart = value;
                        say($"cold start: the counter is back at {value} — the state is lost");
                    }
                    await Task.Delay(50, coldStop.Token);
                }
            }, coldStop.Token);

            var restore = await WaitForAsync(() => api.All(api.ResourceOf(CrscResources.Restores)).FirstOrDefault()?.Deserialize(CrscJsonContext.Default.Restore),
                daemon, "crsc creates a Restore for the failure", TimeSpan.FromSeconds(60), daemonLog, ct);
            say($"Restore {Namespace}/{restore.Metadata.Name} created for container {restore.Spec.Container}");

            Restore? done = null;
            RestorePhase? lastPhase = null;
            await WaitAsync(() =>
            {
                CheckDaemon(daemon, daemonLog);
                done = api.Get(CrscResources.Restores, Namespace, restore.Metadata.Name!);
                if (done?.Status?.Phase != lastPhase)
                {
                    lastPhase = done?.Status?.Phase;
                    say($"Restore phase {lastPhase}{(done?.Status?.Message is { } m ? ": " + m : "")}");
                }
                return done?.Status?.Phase is RestorePhase.Restored or RestorePhase.Failed or RestorePhase.FellBack;
            }, "the Restore finishes", TimeSpan.FromMinutes(3), ct, TimeSpan.FromMilliseconds(100));

            await coldStop.CancelAsync();
            try { await coldWatch; } catch (OperationCanceledException) { }
            var newContainer = kubelet.ContainerIdOf(Namespace, PodName, ContainerName);
            if (coldStart < 0) say("(no cold start seen: crsc patched the image before the kubelet's restart)");
            // the counter goes on from the checkpoint: the process that writes it is the first incarnation again
            long first = -1;
            await WaitAsync(() =>
            {
                var value = Counter(counterFile);
                if (value >= 0 && Incarnation(counterFile) == incarnation) first = value;
                return first >= 0;
            }, "the restored counter continues from the checkpoint", TimeSpan.FromSeconds(60), ct, TimeSpan.FromMilliseconds(20));
            var pod = Pod(api)!;
            var image = pod.Spec.Containers.Single(c => c.Name == ContainerName).Image;
            say($"after the restore: the counter reads {first} (checkpointed between {atStart} and {atEnd}); pod {pod.Metadata.Name} uid {pod.Metadata.Uid} runs {image}");
            await Task.Delay(TimeSpan.FromSeconds(2), ct);
            say($"two seconds later: {Counter(counterFile)}");

            return new CheckpointRestoreResult(completed.Metadata.Name!, content.Spec.ImageReference!, atStart, atEnd, beforeCrash,
                coldStart, first, restore.Metadata.Name!, done!.Status!.Phase, podUidBefore, pod.Metadata.Uid!, containerId,
                newContainer ?? "");
        }
        finally
        {
            DaemonProcess.Stop(daemon);
        }
    }

    /// <summary>
    /// What every run of the scenario stands on: the in-process API server with crsc's resources, its kubeconfig, a CRI
    /// client of the real runtime and the sandbox kubelet syncing the node's pods (stopped, its pods removed, on dispose).
    /// </summary>
    private sealed class Rig : IAsyncDisposable
    {
        public required FakeApiServer Api { get; init; }
        public required CriClient Cri { get; init; }
        public required SandboxKubelet Kubelet { get; init; }
        public required string Kubeconfig { get; init; }
        private CancellationTokenSource? _stop;
        private Task? _run;

        public static async Task<Rig> StartAsync(CheckpointRestoreScenarioOptions options, Action<string> say, CancellationToken ct)
        {
            var api = await FakeApiServer.StartAsync();
            api.Register(FakeResource.From(CrscResources.ContainerCheckpoints, true));
            api.Register(FakeResource.From(CrscResources.ContainerCheckpointContents, true));
            api.Register(FakeResource.From(CrscResources.CheckpointSchedules, true));
            api.Register(FakeResource.From(CrscResources.Restores, true));
            api.Register(FakeResource.From(CrscResources.CheckpointNodes, true));
            var kubeconfig = Path.Combine(options.WorkDirectory, "kubeconfig");
            File.WriteAllText(kubeconfig, api.KubeconfigYaml());
            say($"API server (in-process fake kube-apiserver) at {api.Url}; node \"{options.NodeName}\"; runtime {options.RuntimeEndpoint}");
            var cri = new CriClient(new CriClientOptions { Endpoint = options.RuntimeEndpoint });
            var kubelet = new SandboxKubelet(api, cri, new SandboxKubeletOptions
            {
                NodeName = options.NodeName, CgroupParent = options.CgroupParent, DataRoot = Path.Combine(options.WorkDirectory, "kubelet"),
            });
            kubelet.OnAction = line => say("kubelet: " + line);
            var rig = new Rig { Api = api, Cri = cri, Kubelet = kubelet, Kubeconfig = kubeconfig };
            rig._stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            rig._run = kubelet.RunAsync(rig._stop.Token);
            return rig;
        }

        public async ValueTask DisposeAsync()
        {
            if (_stop is not null) await _stop.CancelAsync();
            try { if (_run is not null) await _run; } catch (OperationCanceledException) { }
            await Kubelet.DisposeAsync();
            Cri.Dispose();
            await Api.DisposeAsync();
            _stop?.Dispose();
        }
    }

    private static Pod? Pod(FakeApiServer api) => api.Get(Resources.Pods, Namespace, PodName);

    private static List<ContainerCheckpoint> Checkpoints(FakeApiServer api) =>
        api.All(api.ResourceOf(CrscResources.ContainerCheckpoints))
            .Select(o => o.Deserialize(CrscJsonContext.Default.ContainerCheckpoint)!)
            .OrderBy(c => c.Metadata.CreationTimestamp).ToList();

    private void SeedWorkload(FakeApiServer api, string data)
    {
        var replicaSet = SeedDeployment(api, data, DeploymentName, ReplicaSetName);
        SeedPod(api, PodName, data, replicaSet);
    }

    /// <summary>The counter's command: the start time marks the incarnation (a cold start writes a new one, a restored
    /// process its old one). With <see cref="CheckpointRestoreScenarioOptions.MemoryMiB"/>, a dd first reads that much
    /// random data into one buffer and keeps it resident (it blocks writing into a pipe the counter never drains).</summary>
    private string[] CounterCommand()
    {
        var loop = $"s=$(date +%s); i=0; while :; do i=$((i+1)); echo \"$s $i\" > /data/counter; sleep {options.Step}; done";
        return options.MemoryMiB > 0
            ? ["/bin/sh", "-c", $"dd if=/dev/urandom bs={options.MemoryMiB}M count=1 iflag=fullblock 2>/dev/null | {{ head -c 1 >/dev/null; {loop}; }}"]
            : ["/bin/sh", "-c", loop];
    }

    private Container CounterContainer() => new()
    {
        Name = ContainerName,
        Image = options.Image,
        Command = [.. CounterCommand()],
        VolumeMounts = [new VolumeMount { Name = "data", MountPath = "/data" }],
    };

    private static List<Volume> DataVolume(string data) => [new() { Name = "data", HostPath = new HostPathVolumeSource { Path = data } }];

    /// <summary>The annotated Deployment and its ReplicaSet (as the Deployment controller would make it); returns the latter.</summary>
    /// <param name="annotations">more of the Deployment's annotations (beside checkpoint-restore and checkpoint-interval)</param>
    private ReplicaSet SeedDeployment(FakeApiServer api, string data, string name, string replicaSetName,
        Dictionary<string, string>? annotations = null)
    {
        var labels = new Dictionary<string, string> { ["app"] = name };
        var container = CounterContainer();
        var volumes = DataVolume(data);
        var deployment = api.Seed(Resources.Deployments, new Deployment
        {
            Metadata = new ObjectMeta
            {
                Name = name, Namespace = Namespace, Labels = labels,
                Annotations = new(annotations ?? [])
                {
                    ["crsc.io/checkpoint-restore"] = "true", ["crsc.io/checkpoint-interval"] = options.Interval,
                },
            },
            Spec = new DeploymentSpec
            {
                Replicas = 1,
                Selector = new LabelSelector { MatchLabels = labels },
                Template = new PodTemplateSpec
                {
                    Metadata = new ObjectMeta { Labels = labels },
                    Spec = new PodSpec { Containers = [container], Volumes = volumes },
                },
            },
        });
        var rsLabels = new Dictionary<string, string>(labels) { ["pod-template-hash"] = "5d8f7b9c4" };
        return api.Seed(Resources.ReplicaSets, new ReplicaSet
        {
            Metadata = new ObjectMeta
            {
                Name = replicaSetName, Namespace = Namespace, Labels = rsLabels,
                OwnerReferences = [Owner("apps/v1", "Deployment", deployment.Metadata)],
            },
            Spec = new ReplicaSetSpec
            {
                Replicas = 1,
                Selector = new LabelSelector { MatchLabels = rsLabels },
                Template = new PodTemplateSpec { Metadata = new ObjectMeta { Labels = rsLabels }, Spec = new PodSpec { Containers = [container], Volumes = volumes } },
            },
        });
    }

    /// <summary>A pod of <paramref name="replicaSet"/> on the node, as the scheduler leaves it, its counter writing into <paramref name="data"/>.</summary>
    private Pod SeedPod(FakeApiServer api, string name, string data, ReplicaSet replicaSet, Action<Pod>? edit = null)
    {
        var pod = new Pod
        {
            Metadata = new ObjectMeta
            {
                Name = name, Namespace = Namespace, Labels = replicaSet.Metadata.Labels,
                OwnerReferences = [Owner("apps/v1", "ReplicaSet", replicaSet.Metadata)],
            },
            Spec = new PodSpec { NodeName = options.NodeName, Containers = [CounterContainer()], Volumes = DataVolume(data), RestartPolicy = "Always" },
            Status = new PodStatus { Phase = "Pending" },
        };
        edit?.Invoke(pod);
        return api.Seed(Resources.Pods, pod);
    }

    /// <summary>
    /// A second node beside the scenario's: both Nodes Ready in the API server, and a kubelet for
    /// <paramref name="node"/> on the same runtime (its root under <paramref name="work"/>), running until disposed.
    /// </summary>
    private async Task<SecondNode> SecondNodeAsync(Rig rig, string node, string work, CancellationToken ct)
    {
        foreach (var name in new[] { options.NodeName, node })
            rig.Api.Seed(Resources.Nodes, new Node
            {
                Metadata = new ObjectMeta { Name = name }, Spec = new NodeSpec(),
                Status = new NodeStatus { Conditions = [new NodeCondition { Type = "Ready", Status = "True", Reason = "KubeletReady" }] },
            });
        var kubelet = new SandboxKubelet(rig.Api, rig.Cri, new SandboxKubeletOptions
        {
            NodeName = node, CgroupParent = options.CgroupParent, DataRoot = Path.Combine(work, "kubelet"),
        });
        kubelet.OnAction = line => say($"kubelet {node}: {line}");
        var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        await Task.Yield();
        return new SecondNode(kubelet, stop, kubelet.RunAsync(stop.Token));
    }

    private sealed class SecondNode(SandboxKubelet kubelet, CancellationTokenSource stop, Task run) : IAsyncDisposable
    {
        public SandboxKubelet Kubelet => kubelet;

        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            try { await run; } catch (OperationCanceledException) { }
            await kubelet.DisposeAsync();
            stop.Dispose();
        }
    }

    /// <summary>
    /// Copies the logs that exist (path, name to keep it under) to a new /tmp/crsc-<paramref name="scenario"/>-scenario-HHmmss
    /// and returns that directory: a failed scenario's work directory goes with the test that made it.
    /// </summary>
    private static string KeepLogs(string scenario, params (string Path, string Name)[] logs)
    {
        var kept = Path.Combine(Path.GetTempPath(), $"crsc-{scenario}-scenario-{DateTime.UtcNow:HHmmss}");
        Directory.CreateDirectory(kept);
        foreach (var (log, name) in logs)
            if (File.Exists(log)) File.Copy(log, Path.Combine(kept, name), overwrite: true);
        return kept;
    }

    private static OwnerReference Owner(string apiVersion, string kind, ObjectMeta meta) => new()
    {
        ApiVersion = apiVersion, Kind = kind, Name = meta.Name!, Uid = meta.Uid!, Controller = true, BlockOwnerDeletion = true,
    };

    /// <summary>
    /// security.keySecret of the two-node scenarios: nodes that share crsc's key take each other's pull tokens, and one
    /// node's archive MAC verifies on the other.
    /// </summary>
    private const string SharedKeySecret = "crsc-system/crsc-key";

    /// <summary>
    /// The daemons of a two-node scenario, both with <see cref="SharedKeySecret"/>: the scenario's node (its work directory
    /// and image endpoint) and <paramref name="targetNode"/>. The first is stopped again when the second cannot start.
    /// </summary>
    /// <param name="registry">images.registry in registryMode replicate for both; null: none</param>
    private (Process Source, Process Target) StartTwoDaemons(Rig rig, string work, string sourceLog, string targetWork, string targetLog,
        string targetNode, string targetImagesListen, string? registry = null)
    {
        EnsureImagesPortFree(options.ImagesListen);
        EnsureImagesPortFree(targetImagesListen);
        var source = StartDaemon(work, rig.Kubeconfig, sourceLog, keySecret: SharedKeySecret, registry: registry);
        try
        {
            return (source, StartDaemon(targetWork, rig.Kubeconfig, targetLog, targetNode, targetImagesListen, SharedKeySecret, registry));
        }
        catch
        {
            DaemonProcess.Stop(source);
            throw;
        }
    }

    /// <param name="nodeName">the daemon's node (default: the scenario's)</param>
    /// <param name="imagesListen">where it serves checkpoint images (default: the scenario's)</param>
    /// <param name="keySecret">security.keySecret (the key nodes share, so that one node's archives verify on another
    /// and its pull tokens open another's endpoint); null: the node's own key</param>
    /// <param name="registry">images.registry (plain HTTP) in registryMode replicate: checkpoints of schedules with
    /// replicate: Registry are copied there; null: none</param>
    private Process StartDaemon(string work, string kubeconfig, string log, string? nodeName = null, string? imagesListen = null,
        string? keySecret = null, string? registry = null)
    {
        var psi = new ProcessStartInfo(options.Binary, ["daemon"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.Environment.Clear();
        psi.Environment["PATH"] = Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin";
        psi.Environment["NODE_NAME"] = nodeName ?? options.NodeName;
        psi.Environment["CRSC_KUBECONFIG"] = kubeconfig;
        psi.Environment["CRSC_RUNTIME_ENDPOINT"] = options.RuntimeEndpoint;
        psi.Environment["CRSC_SOCKET"] = Path.Combine(work, "run", "crsc.sock");
        psi.Environment["CRSC_STATE_DIR"] = Path.Combine(work, "state");
        psi.Environment["CRSC_NODE_STATE_DIRECTORY"] = Path.Combine(work, "node-state");
        psi.Environment["CRSC_CHECKPOINT_DIR"] = Path.Combine(work, "checkpoints");
        psi.Environment["CRSC_STAGING_DIR"] = Path.Combine(work, "staging");
        psi.Environment["CRSC_IMAGES_LISTEN"] = imagesListen ?? options.ImagesListen;
        if (keySecret is not null) psi.Environment["CRSC_SECURITY_KEY_SECRET"] = keySecret;
        if (registry is not null)
        {
            psi.Environment["CRSC_IMAGES_REGISTRY"] = registry;
            psi.Environment["CRSC_IMAGES_REGISTRY_INSECURE"] = "true";
            psi.Environment["CRSC_IMAGES_REGISTRY_MODE"] = "replicate";
        }
        // the sandbox kubelet's root (its pods' volumes are under <root>/pods, where crsc finds an interceptor's socket)
        psi.Environment["CRSC_KUBELET_CHECKPOINT_DIR"] = Path.Combine(work, "kubelet", "checkpoints");
        psi.Environment["CRSC_CONFIG"] = Path.Combine(work, "config.yaml");
        psi.Environment["CRSC_LOG_FORMAT"] = "json";
        File.WriteAllText(psi.Environment["CRSC_CONFIG"]!, "");
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + options.Binary);
        var sink = new StreamWriter(log) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (sink) sink.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (sink) sink.WriteLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>
    /// The daemon serves checkpoint images on <paramref name="listen"/>; when another program holds that port the
    /// daemon still starts (degraded) and no image reference is ever published, so say so before starting it.
    /// </summary>
    private static void EnsureImagesPortFree(string listen)
    {
        if (LoopbackPorts.WhyTaken(listen) is { } why)
            throw new InvalidOperationException(
                $"{listen}, where the crsc daemon serves checkpoint images, is taken by another program ({why}); " +
                "stop it, or set CRSC_DEMO_IMAGES_LISTEN to another loopback address the sandbox's containerd may pull from " +
                "(setup-containerd.sh allows 127.0.0.1:5055 and 127.0.0.1:5056; CRSC_SANDBOX_IMAGE_ENDPOINTS changes the list)");
    }

    private static void CheckDaemon(Process daemon, string log)
    {
        if (daemon.HasExited)
            throw new InvalidOperationException($"the crsc daemon exited with {daemon.ExitCode}; its log:\n{Tail(log)}");
    }

    private static string Tail(string log)
    {
        try { return string.Join('\n', File.ReadLines(log).TakeLast(40)); }
        catch (IOException) { return "(no log)"; }
    }

    private async Task<T> WaitForAsync<T>(Func<T?> probe, Process daemon, string what, TimeSpan within, string log,
        CancellationToken ct) where T : class
    {
        T? value = null;
        await WaitAsync(() =>
        {
            CheckDaemon(daemon, log);
            value = probe();
            return value is not null;
        }, what, within, ct);
        return value!;
    }

    /// <summary>How often a long wait says that it is still waiting, and for what.</summary>
    public static readonly TimeSpan ProgressEvery = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Polls <paramref name="condition"/> until it holds or <paramref name="within"/> is over (a <see cref="TimeoutException"/>
    /// naming <paramref name="what"/>); every <see cref="ProgressEvery"/> it says what it is still waiting for, so a slow
    /// step is never a silent one.
    /// </summary>
    private async Task WaitAsync(Func<bool> condition, string what, TimeSpan within, CancellationToken ct, TimeSpan? poll = null)
    {
        var clock = Stopwatch.StartNew();
        var nextNote = ProgressEvery;
        while (!condition())
        {
            if (clock.Elapsed > within) throw new TimeoutException($"timed out after {within.TotalSeconds:0} s waiting until {what}");
            if (clock.Elapsed >= nextNote)
            {
                say($"... still waiting until {what} ({clock.Elapsed.TotalSeconds:0} s of at most {within.TotalSeconds:0} s)");
                nextNote += ProgressEvery;
            }
            await Task.Delay(poll ?? TimeSpan.FromMilliseconds(200), ct);
        }
    }

    /// <summary>The counter file's value, or -1 while it is missing or half-written.</summary>
    public static long Counter(string file) => Field(file, 1) ?? -1;

    /// <summary>When the process writing the counter started (its incarnation), or null.</summary>
    public static long? Incarnation(string file) => Field(file, 0);

    private static long? Field(string file, int index)
    {
        try
        {
            var parts = File.ReadAllText(file).Trim().Split(' ');
            return parts.Length == 2 && long.TryParse(parts[index], NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;
        }
        catch (IOException) { return null; }
    }
}

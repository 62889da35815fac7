using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Runtime;
using ContainerState = Crsc.Api.Kubernetes.ContainerState;
using Crsc.Cri;
using Crsc.Testing.Kube;
using V1 = Runtime.V1;

namespace Crsc.Testing.Kubelet;

/// <summary>
/// One container the sandbox kubelet created and started: <see cref="Create"/> and <see cref="Start"/> are the runtime's
/// CreateContainer and StartContainer calls. For a checkpoint image they are the runtime's restore (containerd restores
/// in CreateContainer and resumes the process in StartContainer).
/// </summary>
public sealed record ContainerStart(string Namespace, string Pod, string Container, string Image, string ContainerId,
    DateTimeOffset CreateCalledAt, TimeSpan Create, TimeSpan Start)
{
    public TimeSpan Runtime => Create + Start;
}

public sealed record SandboxKubeletOptions
{
    /// <summary>The node whose pods this kubelet runs (<c>spec.nodeName</c>).</summary>
    public required string NodeName { get; init; }

    /// <summary>cgroupfs parent of the pod sandboxes (the sandbox's <c>/crsc-sandbox</c> tree).</summary>
    public required string CgroupParent { get; init; }

    /// <summary>A directory the runtime can write (seen at the same path inside the sandbox): pod logs, emptyDirs.</summary>
    public required string DataRoot { get; init; }

    /// <summary>How often pods are synced with the runtime.</summary>
    public TimeSpan SyncPeriod { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Wait before restarting a container that exited again (the first exit restarts at once); doubles up to
    /// <see cref="MaxRestartBackoff"/> (the real kubelet starts at 10 s; tests shorten it).</summary>
    public TimeSpan RestartBackoff { get; init; } = TimeSpan.FromSeconds(2);

    public TimeSpan MaxRestartBackoff { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Grace period of a stop (PID 1 in a container ignores SIGTERM without a handler; SIGKILL follows).</summary>
    public long StopGraceSeconds { get; init; } = 2;

    /// <summary>How long <see cref="SandboxKubelet.DisposeAsync"/> may spend on one pod (stop, remove) before it gives up with a warning.</summary>
    public TimeSpan CleanupTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// The kubelet's part of the pod lifecycle, played against a real CRI runtime (the sandbox's containerd) for the pods
/// a <see cref="FakeApiServer"/> schedules to one node: it runs each pod's sandbox and containers through CRI as the
/// kubelet does (labels, log paths, hostPath and emptyDir mounts, node network), restarts exited containers with a
/// growing back-off (<c>restartPolicy: Always</c>), and recreates a container whose image in the pod spec changed —
/// which is what makes a restore in place happen: the new image is a checkpoint image and the runtime restores from it.
/// It reports what it sees as the pod's status (phase, container states, restart counts, image IDs), as the kubelet's
/// status manager does. It runs privileged containers (in a privileged sandbox) and resolves the downward API's
/// <c>fieldRef</c> env values. What it leaves out: probes, init containers, resource limits, secrets and config maps.
/// </summary>
public sealed class SandboxKubelet : IAsyncDisposable
{
    private const string Runtime = "containerd";

    private readonly FakeApiServer _api;
    private readonly CriClient _cri;
    private readonly SandboxKubeletOptions _options;
    private readonly FakeResource _pods;
    private readonly ConcurrentDictionary<string, PodRecord> _records = new(StringComparer.Ordinal);
    private readonly List<string> _log = [];
    private readonly List<ContainerStart> _starts = [];

    public SandboxKubelet(FakeApiServer api, CriClient cri, SandboxKubeletOptions options)
    {
        _api = api;
        _cri = cri;
        _options = options;
        _pods = api.ResourceOf(Resources.Pods);
    }

    /// <summary>What the kubelet did, one line per action (for test output and the demo).</summary>
    public IReadOnlyList<string> Log { get { lock (_log) return _log.ToList(); } }

    /// <summary>Called for each action as it happens.</summary>
    public Action<string>? OnAction { get; set; }

    /// <summary>Every container this kubelet created and started, in order, with how long the runtime took for each call.</summary>
    public IReadOnlyList<ContainerStart> Starts { get { lock (_starts) return _starts.ToList(); } }

    /// <summary>The host directory of a pod's emptyDir volume, laid out as the kubelet lays it out under its root.</summary>
    public string EmptyDirPath(string podUid, string volume) =>
        Path.Combine(_options.DataRoot, "pods", podUid, "volumes", "kubernetes.io~empty-dir", volume);

    /// <summary>The runtime's id of a pod's current container, or null.</summary>
    public string? ContainerIdOf(string ns, string pod, string container)
        => _records.Values.FirstOrDefault(r => r.Namespace == ns && r.Name == pod)?.Containers.GetValueOrDefault(container)?.ContainerId;

    /// <summary>The sandbox id of a pod, or null.</summary>
    public string? SandboxIdOf(string ns, string pod)
        => _records.Values.FirstOrDefault(r => r.Namespace == ns && r.Name == pod)?.SandboxId;

    /// <summary>Syncs until <paramref name="ct"/> fires. Errors of one pod are reported in its status and retried.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            await SyncOnceAsync(ct);
            try { await Task.Delay(_options.SyncPeriod, ct); }
            catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>One pass over the node's pods.</summary>
    public async Task SyncOnceAsync(CancellationToken ct)
    {
        var live = new HashSet<string>(StringComparer.Ordinal);
        foreach (var json in _api.All(_pods))
        {
            var pod = json.Deserialize(KubeJsonContext.Default.Pod);
            if (pod?.Metadata.Uid is not { } uid || pod.Spec.NodeName != _options.NodeName) continue;
            if (pod.Metadata.DeletionTimestamp is not null) continue;
            live.Add(uid);
            try
            {
                await SyncPodAsync(pod, ct);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Record($"pod {pod.Metadata.Namespace}/{pod.Metadata.Name}: {e.Message}");
            }
        }
        foreach (var gone in _records.Keys.Where(uid => !live.Contains(uid)).ToList())
        {
            if (_records.TryRemove(gone, out var record)) await KillPodAsync(record, ct);
        }
    }

    private async Task SyncPodAsync(Pod pod, CancellationToken ct)
    {
        var record = _records.GetOrAdd(pod.Metadata.Uid!, _ => new PodRecord(pod.Metadata.Namespace ?? "default", pod.Metadata.Name!, pod.Metadata.Uid!));
        var sandboxConfig = SandboxConfig(record, pod.Spec.Containers.Any(Privileged));
        if (record.SandboxId is null)
        {
            Directory.CreateDirectory(sandboxConfig.LogDirectory);
            record.SandboxId = (await _cri.RunPodSandboxAsync(new V1.RunPodSandboxRequest { Config = sandboxConfig }, ct: ct)).PodSandboxId;
            record.StartTime = DateTimeOffset.UtcNow;
            Record($"pod {record.Namespace}/{record.Name}: sandbox {Short(record.SandboxId)} running");
        }

        foreach (var container in pod.Spec.Containers)
        {
            var state = record.Containers.GetOrAdd(container.Name, _ => new ContainerRecord());
            await SyncContainerAsync(pod, record, sandboxConfig, container, state, ct);
        }
        WriteStatus(record, pod.Spec.Containers);
    }

    private async Task SyncContainerAsync(Pod pod, PodRecord record, V1.PodSandboxConfig sandboxConfig, Container container,
        ContainerRecord state, CancellationToken ct)
    {
        var image = container.Image ?? throw new InvalidOperationException($"container {container.Name} has no image");
        if (state.ContainerId is { } id)
        {
            var status = (await _cri.ContainerStatusAsync(new V1.ContainerStatusRequest { ContainerId = id }, ct: ct)).Status;
            if (status.State == V1.ContainerState.ContainerRunning && state.Image != image)
            {
                // the pod spec's image changed: the kubelet kills the container and starts one from the new image
                Record($"pod {record.Name}: image of {container.Name} changed to {image}; restarting the container");
                await _cri.StopContainerAsync(new V1.StopContainerRequest { ContainerId = id, Timeout = _options.StopGraceSeconds }, ct: ct);
                status = (await _cri.ContainerStatusAsync(new V1.ContainerStatusRequest { ContainerId = id }, ct: ct)).Status;
                state.Terminated(status, "Killed to change the image");
                await RemoveAsync(id, ct);
                state.ContainerId = null;
                state.BackoffUntil = null;
            }
            else if (status.State == V1.ContainerState.ContainerRunning)
            {
                state.Running = true;
                state.StartedAt = FromNanos(status.StartedAt);
                return;
            }
            else if (status.State == V1.ContainerState.ContainerExited)
            {
                state.Terminated(status, null);
                Record($"pod {record.Name}: container {container.Name} exited with {status.ExitCode} ({status.Reason})");
                await RemoveAsync(id, ct);
                state.ContainerId = null;
                // like the kubelet: the first crash restarts at once, later ones back off (doubling, capped). The kubelet
                // keys its back-off by the container's spec hash, so a container whose image changed in the pod spec
                // (crsc's patch to a checkpoint image) starts over: it is restarted at once, not after the old back-off.
                if (state.Image != image)
                {
                    state.Exits = 0;
                    state.Backoff = TimeSpan.Zero;
                }
                state.Backoff = state.Exits++ == 0 ? TimeSpan.Zero
                    : state.Backoff == TimeSpan.Zero ? _options.RestartBackoff
                    : TimeSpan.FromTicks(Math.Min(state.Backoff.Ticks * 2, _options.MaxRestartBackoff.Ticks));
                state.BackoffUntil = DateTimeOffset.UtcNow + state.Backoff;
                state.WaitingReason = state.Backoff > TimeSpan.Zero ? "CrashLoopBackOff" : null;
                state.WaitingMessage = $"back-off {state.Backoff.TotalSeconds:0}s restarting failed container";
            }
            else
            {
                return; // created: starting
            }
        }

        // a back-off belongs to the container's spec (the kubelet keys it by the spec's hash): a new image starts at once
        if (state.BackoffUntil is { } until && DateTimeOffset.UtcNow < until && state.Image == image) return;

        try
        {
            var imageRef = await EnsureImageAsync(image, ct);
            var config = ContainerConfig(pod, record, container, image, state.Attempt);
            var createCalledAt = DateTimeOffset.UtcNow;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var newId = (await _cri.CreateContainerAsync(new V1.CreateContainerRequest
            {
                PodSandboxId = record.SandboxId, Config = config, SandboxConfig = sandboxConfig,
            }, ct: ct)).ContainerId;
            var created = clock.Elapsed;
            if (state.Attempt > 0) state.Restarts++;
            state.Attempt++;
            state.ContainerId = newId;
            state.Image = image;
            state.ImageRef = imageRef;
            try
            {
                await _cri.StartContainerAsync(new V1.StartContainerRequest { ContainerId = newId }, ct: ct);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                state.WaitingReason = "RunContainerError";
                state.WaitingMessage = e.Message;
                state.Running = false;
                Record($"pod {record.Name}: starting {container.Name} failed: {e.Message}");
                state.BackoffUntil = DateTimeOffset.UtcNow + _options.RestartBackoff;
                return;
            }
            lock (_starts)
                _starts.Add(new ContainerStart(record.Namespace, record.Name, container.Name, image, newId, createCalledAt, created,
                    clock.Elapsed - created));
            state.Running = true;
            state.WaitingReason = null;
            state.WaitingMessage = null;
            state.StartedAt = DateTimeOffset.UtcNow;
            Record($"pod {record.Name}: container {container.Name} started from {image} (attempt {state.Attempt - 1}, id {Short(newId)})");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            state.Running = false;
            state.WaitingReason = "CreateContainerError";
            state.WaitingMessage = e.Message;
            state.BackoffUntil = DateTimeOffset.UtcNow + _options.RestartBackoff;
            Record($"pod {record.Name}: creating {container.Name} from {image} failed: {e.Message}");
        }
    }

    private async Task<string> EnsureImageAsync(string image, CancellationToken ct)
    {
        var status = await _cri.ImageStatusAsync(new V1.ImageStatusRequest { Image = new V1.ImageSpec { Image = image } }, ct: ct);
        if (status.Image is { } present && !string.IsNullOrEmpty(present.Id)) return present.Id;
        Record($"pulling {image}");
        return (await _cri.PullImageAsync(new V1.PullImageRequest { Image = new V1.ImageSpec { Image = image } }, ct: ct)).ImageRef;
    }

    private async Task RemoveAsync(string containerId, CancellationToken ct)
    {
        try { await _cri.RemoveContainerAsync(new V1.RemoveContainerRequest { ContainerId = containerId }, ct: ct); }
        catch (Exception e) when (e is not OperationCanceledException) { Record($"removing {Short(containerId)}: {e.Message}"); }
    }

    private void WriteStatus(PodRecord record, IReadOnlyList<Container> containers)
    {
        var statuses = new List<ContainerStatus>();
        foreach (var c in containers)
        {
            var s = record.Containers.GetValueOrDefault(c.Name) ?? new ContainerRecord();
            var state = new ContainerState();
            if (s.Running && s.ContainerId is not null) state.Running = new ContainerStateRunning { StartedAt = s.StartedAt };
            else state.Waiting = new ContainerStateWaiting { Reason = s.WaitingReason ?? "ContainerCreating", Message = s.WaitingMessage };
            statuses.Add(new ContainerStatus
            {
                Name = c.Name,
                Ready = s.Running && s.ContainerId is not null,
                Started = s.Running,
                RestartCount = s.Restarts,
                Image = s.Image ?? c.Image,
                ImageID = s.ImageRef ?? "",
                ContainerID = s.ContainerId is { } id ? $"{Runtime}://{id}" : null,
                State = state,
                LastState = s.LastTerminated is { } t ? new ContainerState { Terminated = t } : new ContainerState(),
            });
        }
        var allReady = statuses.All(s => s.Ready);
        var status = new PodStatus
        {
            Phase = "Running",
            HostIP = "127.0.0.1",
            PodIP = "127.0.0.1",
            StartTime = record.StartTime,
            ContainerStatuses = statuses,
            Conditions =
            [
                new PodCondition { Type = "PodScheduled", Status = "True" },
                new PodCondition { Type = "Initialized", Status = "True" },
                new PodCondition { Type = "ContainersReady", Status = allReady ? "True" : "False" },
                new PodCondition { Type = "Ready", Status = allReady ? "True" : "False" },
            ],
        };
        var node = JsonSerializer.SerializeToNode(status, KubeJsonContext.Default.PodStatus)!;
        _api.Mutate(_pods, record.Namespace, record.Name, obj =>
        {
            if ((string?)obj["metadata"]?["uid"] != record.Uid) return false;
            if (obj["status"] is { } old && Comparable(old) == Comparable(node)) return false;
            obj["status"] = node.DeepClone();
            return true;
        });
    }

    // transition times aside, has the status changed?
    private static string Comparable(JsonNode status) => status.ToJsonString();

    /// <summary><c>securityContext.privileged</c> of a container (crsc's Container model keeps securityContext as extra JSON).</summary>
    private static bool Privileged(Container c) =>
        c.Extra?.GetValueOrDefault("securityContext") is { ValueKind: JsonValueKind.Object } sc
        && sc.TryGetProperty("privileged", out var p) && p.ValueKind == JsonValueKind.True;

    /// <summary>The downward API's <c>fieldRef</c> values the kubelet resolves for env (the ones static pods use).</summary>
    private string? FieldRef(Pod pod, JsonElement? valueFrom)
    {
        if (valueFrom is not { ValueKind: JsonValueKind.Object } v || !v.TryGetProperty("fieldRef", out var fieldRef)
            || !fieldRef.TryGetProperty("fieldPath", out var path)) return null;
        return path.GetString() switch
        {
            "spec.nodeName" => _options.NodeName,
            "metadata.name" => pod.Metadata.Name,
            "metadata.namespace" => pod.Metadata.Namespace,
            "metadata.uid" => pod.Metadata.Uid,
            _ => null,
        };
    }

    private V1.PodSandboxConfig SandboxConfig(PodRecord record, bool privileged) => new()
    {
        Metadata = new V1.PodSandboxMetadata { Name = record.Name, Namespace = record.Namespace, Uid = record.Uid },
        LogDirectory = Path.Combine(_options.DataRoot, "pods", $"{record.Namespace}_{record.Name}_{record.Uid}"),
        Labels =
        {
            [KubeletLabels.PodName] = record.Name,
            [KubeletLabels.PodNamespace] = record.Namespace,
            [KubeletLabels.PodUid] = record.Uid,
        },
        Linux = new V1.LinuxPodSandboxConfig
        {
            CgroupParent = $"{_options.CgroupParent}/pod{record.Uid}",
            SecurityContext = new V1.LinuxSandboxSecurityContext
            {
                // as the kubelet: a pod with a privileged container has a privileged sandbox (containerd refuses it otherwise)
                Privileged = privileged,
                NamespaceOptions = new V1.NamespaceOption
                {
                    Network = V1.NamespaceMode.Node, Pid = V1.NamespaceMode.Container, Ipc = V1.NamespaceMode.Pod,
                },
            },
        },
    };

    private V1.ContainerConfig ContainerConfig(Pod pod, PodRecord record, Container container, string image, uint attempt)
    {
        var config = new V1.ContainerConfig
        {
            Metadata = new V1.ContainerMetadata { Name = container.Name, Attempt = attempt },
            Image = new V1.ImageSpec { Image = image },
            LogPath = Path.Combine(container.Name, $"{attempt}.log"),
            WorkingDir = container.WorkingDir ?? "",
            Labels =
            {
                [KubeletLabels.PodName] = record.Name,
                [KubeletLabels.PodNamespace] = record.Namespace,
                [KubeletLabels.PodUid] = record.Uid,
                [KubeletLabels.ContainerName] = container.Name,
            },
            Annotations = { ["io.kubernetes.container.restartCount"] = attempt.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            Linux = new V1.LinuxContainerConfig
            {
                SecurityContext = new V1.LinuxContainerSecurityContext
                {
                    Privileged = Privileged(container),
                    NamespaceOptions = new V1.NamespaceOption
                    {
                        Network = V1.NamespaceMode.Node, Pid = V1.NamespaceMode.Container, Ipc = V1.NamespaceMode.Pod,
                    },
                },
            },
        };
        Directory.CreateDirectory(Path.Combine(_options.DataRoot, "pods", $"{record.Namespace}_{record.Name}_{record.Uid}", container.Name));
        if (container.Command is { } command) config.Command.AddRange(command);
        if (container.Args is { } args) config.Args.AddRange(args);
        foreach (var env in container.Env ?? [])
            if ((env.Value ?? FieldRef(pod, env.ValueFrom)) is { } value) config.Envs.Add(new V1.KeyValue { Key = env.Name, Value = value });
        foreach (var mount in container.VolumeMounts ?? [])
        {
            var volume = pod.Spec.Volumes?.FirstOrDefault(v => v.Name == mount.Name)
                ?? throw new InvalidOperationException($"container {container.Name} mounts unknown volume {mount.Name}");
            string hostPath;
            if (volume.HostPath is { } hp) hostPath = hp.Path;
            else if (volume.EmptyDir is not null)
            {
                // where the kubelet keeps it: <root>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>
                hostPath = EmptyDirPath(record.Uid, volume.Name);
                Directory.CreateDirectory(hostPath);
            }
            else throw new InvalidOperationException($"volume {volume.Name}: only hostPath and emptyDir are supported here");
            config.Mounts.Add(new V1.Mount { HostPath = hostPath, ContainerPath = mount.MountPath, Readonly = mount.ReadOnly ?? false });
        }
        return config;
    }

    private async Task KillPodAsync(PodRecord record, CancellationToken ct)
    {
        foreach (var c in record.Containers.Values)
        {
            if (c.ContainerId is not { } id) continue;
            try { await _cri.StopContainerAsync(new V1.StopContainerRequest { ContainerId = id, Timeout = _options.StopGraceSeconds }, ct: ct); }
            catch (Exception e) when (e is not OperationCanceledException) { Record($"stopping {Short(id)}: {e.Message}"); }
            await RemoveAsync(id, ct);
        }
        if (record.SandboxId is { } sandbox)
        {
            try
            {
                await _cri.StopPodSandboxAsync(new V1.StopPodSandboxRequest { PodSandboxId = sandbox }, ct: ct);
                await _cri.RemovePodSandboxAsync(new V1.RemovePodSandboxRequest { PodSandboxId = sandbox }, ct: ct);
            }
            catch (Exception e) when (e is not OperationCanceledException) { Record($"removing sandbox {Short(sandbox)}: {e.Message}"); }
        }
        Record($"pod {record.Namespace}/{record.Name}: gone, its containers and sandbox removed");
    }

    /// <summary>
    /// Stops and removes everything this kubelet started, each pod within <see cref="SandboxKubeletOptions.CleanupTimeout"/>.
    /// Never throws: it runs while an earlier error may be on its way out (a <c>finally</c>, an <c>await using</c>), and a
    /// cleanup failure must not replace that error; what could not be removed is reported through <see cref="OnAction"/>
    /// as a WARNING naming the pod and what went wrong.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var uid in _records.Keys.ToList())
        {
            if (!_records.TryRemove(uid, out var record)) continue;
            using var cts = new CancellationTokenSource(_options.CleanupTimeout);
            try { await KillPodAsync(record, cts.Token); }
            catch (OperationCanceledException)
            {
                Record($"WARNING: pod {record.Namespace}/{record.Name}: cleanup did not finish within {_options.CleanupTimeout.TotalSeconds:0} s; " +
                       $"sandbox {Short(record.SandboxId ?? "-")} and its containers may be left in the runtime");
            }
            catch (Exception e)
            {
                Record($"WARNING: pod {record.Namespace}/{record.Name}: cleanup failed: {e.GetType().Name}: {e.Message}");
            }
        }
    }

    private void Record(string line)
    {
        lock (_log) _log.Add(line);
        OnAction?.Invoke(line);
    }

    private static string Short(string id) => id.Length > 12 ? id[..12] : id;

    private static DateTimeOffset? FromNanos(long nanos) => nanos > 0 ? DateTimeOffset.UnixEpoch.AddTicks(nanos / 100) : null;

    private sealed class PodRecord(string ns, string name, string uid)
    {
        public string Namespace { get; } = ns;
        public string Name { get; } = name;
        public string Uid { get; } = uid;
        public string? SandboxId { get; set; }
        public DateTimeOffset? StartTime { get; set; }
        public ConcurrentDictionary<string, ContainerRecord> Containers { get; } = new(StringComparer.Ordinal);
    }

    private sealed class ContainerRecord
    {
        public string? ContainerId { get; set; }
        public string? Image { get; set; }
        public string? ImageRef { get; set; }
        public uint Attempt { get; set; }
        public int Restarts { get; set; }
        public bool Running { get; set; }
        public DateTimeOffset? StartedAt { get; set; }
        public string? WaitingReason { get; set; }
        public string? WaitingMessage { get; set; }
        public TimeSpan Backoff { get; set; }
        public int Exits { get; set; }
        public DateTimeOffset? BackoffUntil { get; set; }
        public ContainerStateTerminated? LastTerminated { get; set; }

        public void Terminated(V1.ContainerStatus status, string? message)
        {
            Running = false;
            LastTerminated = new ContainerStateTerminated
            {
                ExitCode = status.ExitCode,
                Reason = status.ExitCode == 0 ? "Completed" : "Error",
                Message = message ?? (string.IsNullOrEmpty(status.Message) ? null : status.Message),
                StartedAt = FromNanos(status.StartedAt),
                FinishedAt = FromNanos(status.FinishedAt),
                ContainerID = $"{Runtime}://{status.Id}",
            };
        }
    }
}

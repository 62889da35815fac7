using Crsc.Configuration;
using Crsc.Controllers.Health;
using Crsc.Controllers.Metrics;
using Crsc.Controllers.NodeAgent;
using Crsc.Controllers.Reconciling;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Storage;
using Crsc.Cri;
using Crsc.Kube.Kubelet;
using Crsc.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Crsc.Daemon;

/// <summary>
/// The node's checkpoint path in the daemon: the archive store, the container runtime (CRI, or the kubelet for
/// the checkpoint call), one <see cref="CheckpointRunner"/> shared by the node API (<c>crsc checkpoint</c>) and the
/// ContainerCheckpoint reconciler, and a monitor that reports the runtime's health. Only wiring: the decisions
/// live in Crsc.Controllers.NodeAgent.
/// </summary>
internal static partial class NodeCheckpointing
{
    public const string RuntimeComponent = "runtime";
    public const string StoreComponent = StoreUsageReporter.Component;

    public static void Register(IServiceCollection services, CrscOptions options)
    {
        // created on first use; the daemon resolves the store before it starts (lock + recovery)
        services.AddSingleton(sp => new DiskCheckpointStore(new DiskCheckpointStoreOptions
        {
            CheckpointDirectory = options.CheckpointDir,
            StagingDirectory = options.StagingDir,
            NodeName = options.NodeName,
            Key = sp.GetRequiredService<Crsc.Storage.Security.NodeKey>(), // manifests signed at ingest, checked when read
        }, sp.GetRequiredService<TimeProvider>(), sp.GetService<ILogger<DiskCheckpointStore>>()));
        services.AddSingleton<ICheckpointStore>(sp => sp.GetRequiredService<DiskCheckpointStore>());
        services.AddSingleton(sp => new CriContainerRuntime(
            new CriClientOptions { Endpoint = options.RuntimeEndpoint, TimeProvider = sp.GetRequiredService<TimeProvider>() },
            sp.GetService<ILogger<CriContainerRuntime>>()));
        services.AddSingleton<IContainerRuntime>(sp => sp.GetRequiredService<CriContainerRuntime>());
        services.AddSingleton<IContainerCheckpointer>(sp => options.CheckpointVia == "kubelet"
            ? KubeletClient(options, sp.GetRequiredService<ClusterServices>(), sp.GetRequiredService<ILoggerFactory>().CreateLogger("Crsc.Kubelet"))
            : sp.GetRequiredService<CriContainerRuntime>());
        services.AddSingleton(sp => new CheckpointMetrics(sp.GetRequiredService<MetricsRegistry>()));
        services.AddSingleton(sp => new StoreUsageReporter(sp.GetRequiredService<ICheckpointStore>(),
            sp.GetRequiredService<HealthRegistry>(), sp.GetRequiredService<CheckpointMetrics>(), Cli.CliOutput.Bytes));
        services.AddSingleton(sp =>
        {
            var cluster = sp.GetRequiredService<ClusterServices>();
            return new CheckpointRunner(
                sp.GetRequiredService<IContainerRuntime>(),
                sp.GetRequiredService<IContainerCheckpointer>(),
                sp.GetRequiredService<ICheckpointStore>(),
                new CheckpointRunnerOptions
                {
                    NodeName = options.NodeName,
                    // only in kubelet mode may the archive be anywhere but crsc's staging path
                    KubeletCheckpointDirectory = options.CheckpointVia == "kubelet" ? options.KubeletCheckpointDir : null,
                    TrafficHold = sp.GetRequiredService<IPodTrafficHold>(),
                    MaxConcurrentNodeAway = options.ShutdownParallelismValue,
                },
                sp.GetRequiredService<TimeProvider>(),
                // node files through Storage: no link followed, and a partial archive only through the bounded tar reader
                new FileStagingArea(),
                sp.GetService<ILogger<CheckpointRunner>>(),
                sp.GetRequiredService<CheckpointMetrics>(),
                // the informer's pods, else (started while the API server is away) the saved node state's
                new ChainedWorkloadResolver(
                    cluster.NodePods is { } pods ? new PodOwnerWorkloadResolver(pods) : null,
                    sp.GetRequiredService<NodeAutonomy>().State));
        });
        services.AddSingleton<ICheckpointRunner>(sp => sp.GetRequiredService<CheckpointRunner>());
        services.AddSingleton<DaemonNodeReportSource>();
        // the kubelet keeps its checkpoints under <root-dir>/checkpoints: its pods' volumes are under <root-dir>/pods
        services.AddSingleton<IPodTrafficHold>(sp => new InterceptorTrafficHold(
            Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(options.KubeletCheckpointDir)) ?? "/var/lib/kubelet",
            sp.GetRequiredService<ILogger<InterceptorTrafficHold>>()));
        services.AddSingleton<RuntimeMonitor>();
        services.AddHostedService(sp => sp.GetRequiredService<RuntimeMonitor>());
        services.AddSingleton<IRuntimeProbeTrigger>(sp => sp.GetRequiredService<RuntimeMonitor>());
    }

    /// <summary>
    /// With an API server: the ContainerCheckpoint reconciler runs on every node (not leader-only), fed by the
    /// cluster connection's informers. Call before the host starts.
    /// </summary>
    public static void AttachReconciler(IServiceProvider services)
    {
        if (services.GetRequiredService<ClusterServices>() is not { Manager: { } manager } cluster) return;
        ContainerCheckpointReconciler.SetUp(manager, cluster.NodeName, services.GetRequiredService<CheckpointRunner>(),
            services.GetRequiredService<ICheckpointStore>(), services.GetRequiredService<CheckpointMetrics>(),
            services.GetService<ICheckpointImagePublisher>(), replicas: RegistryPublishing.Remover(services, manager.Events));
    }

    /// <summary>
    /// Takes the store (its lock refuses a second daemon on the same store), cleans what a crash left, and from then on
    /// keeps <c>store</c> in /readyz and <c>crsc_store_bytes</c> following every change of the store.
    /// </summary>
    public static void OpenStore(IServiceProvider services, ILogger logger)
    {
        var store = services.GetRequiredService<DiskCheckpointStore>();
        var report = store.Recover();
        var usage = services.GetRequiredService<StoreUsageReporter>();
        store.Changed += () => usage.Refresh();
        var count = usage.Refresh()?.Checkpoints ?? 0;
        Log.StoreOpened(logger, store.StagingDirectory, count,
            report.Clean ? "nothing to clean" : $"{report.Removed.Count} leftover(s) removed, {report.Warnings.Count} warning(s)");
    }

    /// <summary>
    /// The kubelet's checkpoint API, its serving certificate verified: against <c>kubelet.caFile</c>, else the cluster CA
    /// the daemon's API connection trusts (kubeconfig, or the in-cluster service account's ca.crt), else the system's
    /// trust store; for <c>kubelet.serverName</c> (default: the node's name).
    /// </summary>
    private static KubeletCheckpointClient KubeletClient(CrscOptions options, ClusterServices cluster, ILogger logger)
    {
        const string serviceAccount = "/var/run/secrets/kubernetes.io/serviceaccount/token";
        var clusterCa = options.KubeletCaFile.Length == 0 ? cluster.Api?.Config : null;
        var client = new KubeletCheckpointClient(new KubeletClientOptions
        {
            Url = new Uri(options.KubeletUrl),
            // in a pod, the service account's token (RBAC: nodes/checkpoint create)
            BearerTokenFile = File.Exists(serviceAccount) ? serviceAccount : null,
            CaFile = options.KubeletCaFile.Length > 0 ? options.KubeletCaFile : null,
            CertificateAuthorities = clusterCa?.CertificateAuthorities,
            CertificateAuthoritiesSource = clusterCa is null ? null : $"the cluster CA of {clusterCa.Source}",
            ServerName = options.EffectiveKubeletServerName,
            AllowHttp = options.KubeletHttpAllowed,
        });
        Log.KubeletCheckpoints(logger, options.KubeletUrl, client.TrustDescription, options.KubeletCheckpointDir);
        if (options.KubeletHttpAllowed && options.KubeletUrl.StartsWith("http:", StringComparison.OrdinalIgnoreCase))
            Log.KubeletOverHttp(logger, options.KubeletUrl);
        return client;
    }

    private static partial class Log
    {
        [LoggerMessage(70501, LogLevel.Information, "Checkpoint store open ({Checkpoints} checkpoints; staging {Staging}); recovery: {Recovery}")]
        public static partial void StoreOpened(ILogger logger, string staging, int checkpoints, string recovery);

        [LoggerMessage(70502, LogLevel.Information, "Checkpoints through the kubelet at {Url}: its certificate must be {Trust}; archives only from {CheckpointDir}")]
        public static partial void KubeletCheckpoints(ILogger logger, string url, string trust, string checkpointDir);

        [LoggerMessage(70503, LogLevel.Warning, "kubelet.allowHttp: talking plain HTTP to {Url}; anyone who can listen there is taken for the kubelet. For tests only")]
        public static partial void KubeletOverHttp(ILogger logger, string url);
    }
}

/// <summary>
/// Reports whether the container runtime answers on its CRI socket (<c>runtime</c> in /readyz and STATUS=), and what it
/// can do: a full probe (CRI Version, then the capability probe) every <see cref="Interval"/>, and at once when the
/// runtime restarted. A restarted runtime recreates its socket, so between probes the socket's identity (device, inode,
/// change time: one stat) is looked at every <see cref="RestartCheck"/>; a socket changed, gone or back is probed
/// without waiting out the interval (and, not answering yet, at every check for <see cref="RestartGrace"/>). A runtime
/// that restarts behind a socket that stays (socket activation) shows at the next probe, by its Version answer.
/// </summary>
internal sealed partial class RuntimeMonitor(IContainerRuntime runtime, CrscOptions options, HealthRegistry health, TimeProvider time,
    ILogger<RuntimeMonitor> logger, DaemonNodeReportSource capabilities) : BackgroundService, IRuntimeProbeTrigger
{
    // completed by ProbeNow; the wait between probes ends on it and takes a fresh one
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Probes at once (a restore the probe allowed was refused by the runtime: the verdict may be stale). The reason is
    /// logged when the wait ends on it.
    /// </summary>
    public void ProbeNow(string why)
    {
        Log.ProbeAsked(logger, options.RuntimeEndpoint, why);
        Volatile.Read(ref _wake).TrySetResult();
    }

    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    /// <summary>How often, between full probes, the runtime's socket is looked at for a restart (a stat, no connection).</summary>
    public static readonly TimeSpan RestartCheck = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long after its socket changed a runtime that does not answer is asked again at every check rather than every
    /// interval: a runtime binds its socket a moment before it serves (containerd answers "server is not initialized
    /// yet" until its CRI plugin is up), and the first probe can still meet the old runtime's closing connection.
    /// </summary>
    public static readonly TimeSpan RestartGrace = TimeSpan.FromSeconds(10);

    /// <summary>How long READY=1 waits for the first answer (or refusal) of the runtime, so its STATUS= names it.</summary>
    public static readonly TimeSpan FirstProbeWait = TimeSpan.FromSeconds(1);

    private readonly TaskCompletionSource _firstProbe = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Waits until the first probe has reported the runtime's state, at most <paramref name="limit"/>; true when it
    /// has. A missing socket is refused at once and a live runtime answers in milliseconds: only a hung runtime makes
    /// the caller wait the whole limit (and then the line without it goes out; the probe reports when it ends).
    /// </summary>
    public async Task<bool> WaitForFirstProbeAsync(TimeSpan limit, CancellationToken ct)
    {
        try
        {
            await _firstProbe.Task.WaitAsync(limit, time, ct).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException) { return false; }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { return false; }
    }

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        try { await ProbeLoopAsync(ct); }
        finally { _firstProbe.TrySetResult(); } // nobody waits for a probe that will not come
    }

    // Changed: another device, inode or change time. Not told apart: a socket recreated at once often gets the freed
    // inode back, so only its change time differs (a chmod of the same socket counts too: a probe costs a few CRI calls)
    private enum SocketChange { None, Changed, Appeared, Gone }

    private async Task ProbeLoopAsync(CancellationToken ct)
    {
        // an endpoint that does not parse has no socket to look at: the probe says what is wrong with it
        var socket = CriEndpoint.TryParse(options.RuntimeEndpoint, out var endpoint) ? endpoint!.SocketPath : null;
        var wasReachable = (bool?)null;
        string? lastSaid = null;
        (string Name, string Version)? lastRuntime = null;
        var restartLogged = false;
        long? changedAt = null; // when the socket last changed or appeared, until the runtime behind it answered
        while (!ct.IsCancellationRequested)
        {
            // taken before the probe: a restart while it runs shows at the next check, and is probed again
            var seen = socket is null ? null : NativeMethods.Stamp(socket);
            try
            {
                var v = await runtime.VersionAsync(ct);
                var now = (v.RuntimeName, v.RuntimeVersionString);
                if (wasReachable != true) Log.Reachable(logger, options.RuntimeEndpoint, v.RuntimeName, v.RuntimeVersionString);
                else if (lastRuntime is { } before && before != now && !restartLogged)
                    Log.Restarted(logger, options.RuntimeEndpoint, $"was {before.Name} {before.Version}, now {v.RuntimeName} {v.RuntimeVersionString}");
                wasReachable = true;
                changedAt = null;
                // what it can do, from the runtime itself: a runtime that turns restore off (or cannot) is degraded,
                // named in /readyz and STATUS= ("restore: disabled by runtime config"); Unknown is said, not alarmed
                var caps = await capabilities.ProbeAsync(ct, v);
                var said = DaemonNodeReportSource.Describe(caps);
                health.Report(NodeCheckpointing.RuntimeComponent,
                    DaemonNodeReportSource.NeedsAction(caps) ? HealthStatus.Degraded : HealthStatus.Healthy,
                    said.Length == 0 ? $"{v.RuntimeName} {v.RuntimeVersionString}" : $"{v.RuntimeName} {v.RuntimeVersionString}; {said}");
                // another version is said again even when its verdicts are the same
                if (said != lastSaid || lastRuntime != now)
                    Log.Capabilities(logger, v.RuntimeName, v.RuntimeVersionString, said.Length == 0 ? "checkpoint and restore supported" : said);
                lastSaid = said;
                lastRuntime = now;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e)
            {
                // degraded, not unhealthy: the daemon still serves, keeps its store and retries
                health.Report(NodeCheckpointing.RuntimeComponent, HealthStatus.Degraded, $"unreachable: {e.Message}");
                if (wasReachable != false) Log.Unreachable(logger, options.RuntimeEndpoint, e.Message);
                wasReachable = false;
            }
            _firstProbe.TrySetResult();
            var soon = wasReachable == false && seen is not null && changedAt is { } at && time.GetElapsedTime(at) < RestartGrace;
            SocketChange change;
            try { change = await WaitForProbeAsync(socket, seen, soon ? RestartCheck : Interval, ct); }
            catch (OperationCanceledException) { return; }
            // gone or back: the probe's unreachable or reachable line says it
            if (change is SocketChange.Changed or SocketChange.Appeared) changedAt = time.GetTimestamp();
            restartLogged = change == SocketChange.Changed;
            if (restartLogged) Log.Restarted(logger, options.RuntimeEndpoint, $"its socket {socket} changed");
        }
    }

    /// <summary>
    /// Waits out <paramref name="wait"/>, looking at the socket every <see cref="RestartCheck"/>; returns early with what
    /// changed when it is no longer the file <paramref name="seen"/> (the runtime restarted, stopped or came back).
    /// </summary>
    private async Task<SocketChange> WaitForProbeAsync(string? socket, NativeMethods.FileStamp? seen, TimeSpan wait, CancellationToken ct)
    {
        var start = time.GetTimestamp();
        while (true)
        {
            var left = wait - time.GetElapsedTime(start);
            if (left <= TimeSpan.Zero) return SocketChange.None;
            var wake = Volatile.Read(ref _wake);
            using (var check = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                var delay = Task.Delay(left < RestartCheck ? left : RestartCheck, time, check.Token);
                if (await Task.WhenAny(delay, wake.Task) == wake.Task)
                {
                    await check.CancelAsync(); // its timer goes with it
                    Interlocked.CompareExchange(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), wake);
                    return SocketChange.None; // probe now
                }
                await delay;
            }
            if (socket is null) continue;
            var now = NativeMethods.Stamp(socket);
            if (now == seen) continue;
            return seen is null ? SocketChange.Appeared : now is null ? SocketChange.Gone : SocketChange.Changed;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(70601, LogLevel.Information, "Container runtime at {Endpoint}: {RuntimeName} {RuntimeVersion}")]
        public static partial void Reachable(ILogger logger, string endpoint, string runtimeName, string runtimeVersion);

        [LoggerMessage(70602, LogLevel.Warning, "Container runtime at {Endpoint} is unreachable: {Reason}")]
        public static partial void Unreachable(ILogger logger, string endpoint, string reason);

        [LoggerMessage(70603, LogLevel.Information, "Container runtime {RuntimeName} {RuntimeVersion}: {Capabilities}")]
        public static partial void Capabilities(ILogger logger, string runtimeName, string runtimeVersion, string capabilities);

        [LoggerMessage(70605, LogLevel.Information, "Container runtime at {Endpoint} probed again now: {Why}")]
        public static partial void ProbeAsked(ILogger logger, string endpoint, string why);

        [LoggerMessage(70604, LogLevel.Information, "Container runtime at {Endpoint} restarted ({Evidence}); probing it again")]
        public static partial void Restarted(ILogger logger, string endpoint, string evidence);
    }
}

using System.Globalization;
using System.Threading.Channels;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Health;
using Crsc.Controllers.Informers;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Queue;
using Crsc.Controllers.Reconciling;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Crsc.Daemon;

/// <summary>
/// The daemon's cluster half. With a kubeconfig (or in a cluster) it probes the API server until it answers,
/// then runs the controller manager: the shared informers, the node controllers and leader election, whose term runs
/// the leader-only controllers. It reports three health entries: <c>kube</c> (connecting / connected to … / api-server unreachable
/// since …), <c>informers</c> (syncing / synced (N pods on node)) and <c>leader</c> (leading / following …). An
/// unreachable or failing API server is retried forever and is Degraded, never fatal: the node agent goes on.
/// On shutdown the elector releases the Lease so that another instance takes over at once.
/// </summary>
internal sealed partial class ClusterConnection(
    ClusterServices cluster,
    ClusterConnectionOptions timings,
    HealthRegistry health,
    ApiServerState apiServer,
    TimeProvider time,
    ILogger<ClusterConnection> logger) : BackgroundService
{
    private static readonly TimeSpan FoldDelay = TimeSpan.FromMilliseconds(200);

    private readonly Channel<bool> _probeNow = Channel.CreateBounded<bool>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly Channel<bool> _informersChanged = Channel.CreateBounded<bool>(
        new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly TaskCompletionSource _firstConnected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _connected;

    /// <summary>Reports what the connection starts from before the host says it is ready, so the first STATUS= has it.</summary>
    public override Task StartAsync(CancellationToken ct)
    {
        if (!cluster.Configured)
        {
            // no API server is configured: run as a node agent only; this is degraded, never fatal
            health.Report(ClusterServices.KubeComponent, HealthStatus.Degraded, "no API server configured (node agent only)");
            apiServer.ReportUnreachable("no API server configured");
            Log.NoApiServer(logger, cluster.NodeName);
            return Task.CompletedTask;
        }
        if (cluster.Api is not { } api)
        {
            health.Report(ClusterServices.KubeComponent, HealthStatus.Degraded, $"kubeconfig unusable: {cluster.ConfigError}");
            apiServer.ReportUnreachable($"kubeconfig unusable: {cluster.ConfigError}");
            Log.ConfigUnusable(logger, cluster.ConfigError ?? "");
            return Task.CompletedTask;
        }
        health.Report(ClusterServices.KubeComponent, HealthStatus.Degraded, $"connecting to {Server(api)}");
        health.Report(ClusterServices.InformersComponent, HealthStatus.Degraded, "waiting for the API server");
        Log.Connecting(logger, Server(api), api.Config.Source);
        return base.StartAsync(ct);
    }

    private static string Server(Kube.KubeApi api) => api.Config.Server.GetLeftPart(UriPartial.Authority);

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        var api = cluster.Api!;
        var server = Server(api);
        var monitor = Guard("api-server probe", MonitorAsync(api, server, ct));
        try
        {
            await _firstConnected.Task.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await monitor.ConfigureAwait(false);
            return;
        }

        cluster.InformerHealth!.Changed += OnInformersChanged;
        using var podCount = cluster.NodePods!.AddEventHandler(new ResourceEventHandler<Pod>(
            _ => OnInformersChanged(), null, _ => OnInformersChanged()));
        // the manager runs the informers, the node controllers and the leader election, whose terms run the
        // leader-only controllers; on shutdown the elector releases the Lease so that another instance takes over
        await Task.WhenAll(monitor, Guard("informer health", FoldInformersAsync(ct)), Guard("controllers", cluster.Manager!.RunAsync(ct)))
            .ConfigureAwait(false);
        cluster.InformerHealth.Changed -= OnInformersChanged;
        Log.Disconnected(logger, server);
    }

    /// <summary>Probes <c>/version</c>: until it answers (every few seconds while it cannot be reached, backing off
    /// further when it answers with errors), then every probe interval, and at once when an informer says the server
    /// went away. Reports the <c>kube</c> entry.</summary>
    private async Task MonitorAsync(Kube.KubeApi api, string server, CancellationToken ct)
    {
        var backoff = new ReconnectBackoff(timings.InitialRetry, timings.MaxRetry, timings.UnreachableMaxRetry);
        DateTimeOffset? downSince = null;
        while (!ct.IsCancellationRequested)
        {
            TimeSpan wait;
            try
            {
                var version = await api.GetVersionAsync(ct).ConfigureAwait(false);
                if (!_connected || downSince is not null) Log.Connected(logger, server, version);
                downSince = null;
                backoff.Reset();
                health.Report(ClusterServices.KubeComponent, HealthStatus.Healthy, $"connected to {server} ({version})");
                wait = timings.ProbeInterval;
                _connected = true;
                apiServer.ReportReachable();
                _firstConnected.TrySetResult();
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                var first = downSince is null;
                downSince ??= time.GetUtcNow();
                var since = downSince.Value.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);
                var message = e switch
                {
                    KubeUnavailableException => $"api-server unreachable since {since}: {e.Message}",
                    KubeApiException k => $"api-server failing since {since}: {k.Code} {k.Reason}: {k.Message}",
                    _ => $"api-server unreachable since {since}: {e.Message}",
                };
                health.Report(ClusterServices.KubeComponent, HealthStatus.Degraded, message);
                apiServer.ReportUnreachable(message);
                wait = backoff.Next(e);
                if (first) Log.Unreachable(logger, server, e.Message, wait);
            }

            using var delay = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var sleeping = Task.Delay(wait, time, delay.Token);
            var woken = _connected && downSince is null ? _probeNow.Reader.WaitToReadAsync(delay.Token).AsTask() : Task.Delay(Timeout.Infinite, delay.Token);
            await Task.WhenAny(sleeping, woken).ConfigureAwait(false);
            await delay.CancelAsync().ConfigureAwait(false);
            while (_probeNow.Reader.TryRead(out _)) { }
        }
    }

    private void OnInformersChanged()
    {
        _informersChanged.Writer.TryWrite(true);
        // an informer that lost the server is the first to know: probe now rather than at the next interval
        if (_connected && cluster.InformerHealth!.Snapshot().Any(e => e.Status != HealthStatus.Healthy))
            _probeNow.Writer.TryWrite(true);
    }

    /// <summary>Folds the informers' own entries into one <c>informers</c> entry, at most every <see cref="FoldDelay"/>.</summary>
    private async Task FoldInformersAsync(CancellationToken ct)
    {
        FoldInformers();
        try
        {
            while (await _informersChanged.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                await Task.Delay(FoldDelay, time, ct).ConfigureAwait(false);
                _informersChanged.Reader.TryRead(out _);
                FoldInformers();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    internal void FoldInformers()
    {
        var synced = cluster.Manager!.NodeInformers.All(i => i.HasSynced);
        var troubles = cluster.InformerHealth!.Snapshot()
            .Where(e => e.Status != HealthStatus.Healthy && e.Message != "not synced yet")
            .Select(e => $"{e.Component}: {e.Message}")
            .ToList();
        var detail = troubles.Count == 0 ? "" : "; " + string.Join("; ", troubles);
        if (!synced)
            health.Report(ClusterServices.InformersComponent, HealthStatus.Degraded, "syncing" + detail);
        else
            health.Report(ClusterServices.InformersComponent, troubles.Count == 0 ? HealthStatus.Healthy : HealthStatus.Degraded,
                $"synced ({cluster.NodePods!.Count} pods on node){detail}");
    }

    /// <summary>None of the cluster's loops may take the daemon down: an unexpected failure is logged and that loop ends.</summary>
    private async Task Guard(string what, Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            Log.LoopFailed(logger, e, what);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(70001, LogLevel.Warning, "No API server is configured (no kubeconfig, not in a cluster); node {NodeName} runs as a node agent only")]
        public static partial void NoApiServer(ILogger logger, string nodeName);

        [LoggerMessage(70002, LogLevel.Error, "The API server configuration cannot be used; running as a node agent only: {Reason}")]
        public static partial void ConfigUnusable(ILogger logger, string reason);

        [LoggerMessage(70003, LogLevel.Information, "Connecting to the API server {Server} ({Source})")]
        public static partial void Connecting(ILogger logger, string server, string source);

        [LoggerMessage(70004, LogLevel.Information, "Connected to the API server {Server} ({ServerVersion})")]
        public static partial void Connected(ILogger logger, string server, string serverVersion);

        [LoggerMessage(70005, LogLevel.Warning, "The API server {Server} is unreachable, retrying in {Retry}: {Reason}")]
        public static partial void Unreachable(ILogger logger, string server, string reason, TimeSpan retry);

        [LoggerMessage(70008, LogLevel.Error, "The cluster loop {Loop} failed; the node agent goes on without it")]
        public static partial void LoopFailed(ILogger logger, Exception exception, string loop);

        [LoggerMessage(70009, LogLevel.Information, "Disconnected from the API server {Server}")]
        public static partial void Disconnected(ILogger logger, string server);
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using V1 = Runtime.V1;

namespace Crsc.Testing.Scenarios;

/// <summary>What the load generator and the app said in <see cref="CheckpointRestoreScenario.RunInterceptorAsync"/>.</summary>
public sealed record InterceptorRestoreResult(
    long Sent,
    long Failed,
    long PostsAcknowledged,
    long CounterBeforeKill,
    long FinalCounter,
    RestorePhase? RestorePhase,
    TimeSpan LatencyP50,
    TimeSpan LatencyP99,
    TimeSpan LongestRequest,
    IReadOnlyList<string> Failures,
    string InterceptorStatus);

public sealed partial class CheckpointRestoreScenario
{
    private const string InterceptorVolume = "crsc-interceptor";

    /// <summary>
    /// The interceptor's promise on the real runtime: an HTTP counter (busybox httpd; a POST increments a count kept in
    /// the container's own filesystem, which a checkpoint saves and a cold start loses; a GET reads it) behind
    /// <c>crsc interceptor</c> with replay of POSTs, a load generator on loopback sending a steady mix through it, crsc
    /// checkpointing on its schedule (holding the traffic through the pod's control socket), the container killed and
    /// restored in place (the traffic held from the patch until the restored process runs, the POSTs since the checkpoint
    /// replayed to it first). The interceptor runs beside the pod on the node's network, its control socket and replay
    /// log in the pod's <c>crsc-interceptor</c> emptyDir, where crsc's node agent looks for it — as the injected sidecar
    /// would have them; the sandbox runs no image of crsc to run it in the pod.
    /// </summary>
    public async Task<InterceptorRestoreResult> RunInterceptorAsync(int requestsPerSecond, CancellationToken cancel)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(options.Timeout);
        var ct = timeout.Token;
        var work = options.WorkDirectory;
        await using var rig = await Rig.StartAsync(options, say, ct);
        var api = rig.Api;
        var appPort = LoopbackPorts.Free();
        var proxyPort = LoopbackPorts.Free();
        const string deployment = "web";
        var podName = $"{deployment}-5d8f7b9c4-q4z8m"; // the ReplicaSet is named after the pod-template-hash, as the Deployment controller names it
        var replicaSet = SeedDeployment(api, Directory.CreateDirectory(Path.Combine(work, "data")).FullName, deployment, $"{deployment}-5d8f7b9c4");
        var pod = SeedPod(api, podName, Path.Combine(work, "data"), replicaSet, p =>
        {
            var app = p.Spec.Containers[0];
            app.Command = [.. HttpCounterCommand(appPort)];
            app.VolumeMounts = [.. app.VolumeMounts ?? [], new VolumeMount { Name = InterceptorVolume, MountPath = "/run/crsc-interceptor" }];
            p.Spec.Volumes = [.. p.Spec.Volumes ?? [], new Volume { Name = InterceptorVolume, EmptyDir = JsonDocument.Parse("{}").RootElement.Clone() }];
        });
        say($"pod {Namespace}/{podName}: an HTTP counter on 127.0.0.1:{appPort} (POST /cgi-bin/counter adds one, GET reads it; the count lives in the container's filesystem)");

        using var http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromSeconds(30) }) { Timeout = TimeSpan.FromSeconds(60) };
        await WaitAsync(() => Get(http, appPort) >= 0, "the app answers", TimeSpan.FromMinutes(1), ct);

        var daemonLog = Path.Combine(work, "daemon.log");
        EnsureImagesPortFree(options.ImagesListen);
        var daemon = StartDaemon(work, rig.Kubeconfig, daemonLog);
        Process? interceptor = null;
        // the logs say why something failed; the work directory may be removed by whoever made it
        string KeepInterceptorLogs() =>
            KeepLogs("interceptor", (daemonLog, "daemon.log"), (Path.Combine(work, "interceptor.log"), "interceptor.log"));
        string? shortLink = null;
        try
        {
            // the emptyDir's path here is longer than a Unix socket's address may be (108 bytes; in a pod the sidecar
            // binds /run/crsc-interceptor/control.sock), so the interceptor binds through a short link to that directory;
            // the socket file itself is in the emptyDir, where crsc's node agent opens it (and connects through the handle)
            var volume = rig.Kubelet.EmptyDirPath(pod.Metadata.Uid!, InterceptorVolume);
            var control = Path.Combine(volume, "control.sock");
            shortLink = Path.Combine(Path.GetTempPath(), "crsc-ic-" + Guid.NewGuid().ToString("N")[..8]);
            File.CreateSymbolicLink(shortLink, volume);
            interceptor = StartInterceptor(proxyPort, appPort, Path.Combine(shortLink, "control.sock"), Path.Combine(work, "interceptor.log"));
            await WaitAsync(() => { CheckDaemon(daemon, daemonLog); return Get(http, proxyPort) >= 0; },
                "the interceptor answers", TimeSpan.FromSeconds(30), ct);
            say($"crsc interceptor on 127.0.0.1:{proxyPort} -> 127.0.0.1:{appPort}, replaying POSTs; control socket {control}");

            var failedSeen = new HashSet<string>(StringComparer.Ordinal);
            using var stopLoad = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var load = new LoadGenerator(http, proxyPort, requestsPerSecond);
            var loadRun = load.RunAsync(stopLoad.Token);
            say($"load: {requestsPerSecond} requests/s through the interceptor, POST and GET in turn, at most {LoadGenerator.MaxInFlight} waiting at once");

            await WaitAsync(() =>
            {
                CheckDaemon(daemon, daemonLog);
                // under load a dump can fail (seen at 200 requests/s: runc's "criu failed: type NOTIFY"); the schedule's
                // next checkpoint is the retry, as on a real node
                foreach (var failed in Checkpoints(api).Where(c => c.Spec.PodName == podName && c.Status?.Phase == ContainerCheckpointPhase.Failed))
                    if (failedSeen.Add(failed.Metadata.Name!)) say($"checkpoint {failed.Metadata.Name} failed (the schedule's next one retries): {failed.Status!.Message}");
                return Checkpoints(api).Any(c => c.Spec.PodName == podName && c.Status?.Phase == ContainerCheckpointPhase.Completed
                    && c.Status.ContentName is { } n && api.Get(CrscResources.ContainerCheckpointContents, null, n)?.Spec.ImageReference is not null);
            }, "a checkpoint of the app completes (its traffic held while the runtime dumps it)", TimeSpan.FromMinutes(2), ct, TimeSpan.FromMilliseconds(100));
            say($"checkpoint completed; {load.Summary()}");
            await Task.Delay(TimeSpan.FromSeconds(2), ct);

            var before = Get(http, appPort);
            var containerId = rig.Kubelet.ContainerIdOf(Namespace, podName, ContainerName)
                              ?? throw new InvalidOperationException($"the kubelet has no container for {podName}");
            say($"count {before}; killing the app's container {containerId[..12]} (SIGKILL) under load");
            await rig.Cri.StopContainerAsync(new V1.StopContainerRequest { ContainerId = containerId, Timeout = 0 }, ct: ct);

            Restore? restore = null;
            await WaitAsync(() =>
            {
                CheckDaemon(daemon, daemonLog);
                restore = api.All(api.ResourceOf(CrscResources.Restores)).Select(o => o.Deserialize(CrscJsonContext.Default.Restore)!)
                    .FirstOrDefault(r => r.Status?.PodName == podName);
                return restore?.Status?.Phase is RestorePhase.Restored or RestorePhase.Failed or RestorePhase.FellBack;
            }, "the Restore finishes", TimeSpan.FromMinutes(2), ct, TimeSpan.FromMilliseconds(50));
            say($"Restore {restore!.Metadata.Name}: {restore.Status!.Phase}; {load.Summary()}");

            await Task.Delay(TimeSpan.FromSeconds(3), ct);
            await stopLoad.CancelAsync();
            await loadRun;
            var status = await InterceptorStatusAsync(Path.Combine(shortLink, "control.sock"), ct);
            var final = Get(http, appPort);
            say($"load stopped: {load.Summary()}; the app's count {final}");
            say($"interceptor: {status}");
            if (load.Failed > 0)
            {
                // a failed request: what the interceptor logged about it, and both logs kept for a closer look
                var log = Path.Combine(work, "interceptor.log");
                foreach (var line in File.Exists(log) ? File.ReadLines(log).Where(l => !l.Contains("\"Information\"", StringComparison.Ordinal)).TakeLast(20) : [])
                    say("interceptor log: " + line);
                say($"the daemon's and the interceptor's logs are kept in {KeepInterceptorLogs()}");
            }
            var latencies = load.Latencies();
            return new InterceptorRestoreResult(load.Sent, load.Failed, load.PostsAcknowledged, before, final, restore.Status.Phase,
                Percentile(latencies, 0.5), Percentile(latencies, 0.99), latencies.Count > 0 ? latencies[^1] : TimeSpan.Zero,
                load.FailureSamples(), status);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new InvalidOperationException($"{e.Message} (the daemon's and the interceptor's logs: {KeepInterceptorLogs()})", e);
        }
        finally
        {
            if (interceptor is { HasExited: false })
            {
                try { interceptor.Kill(); } catch (InvalidOperationException) { }
                await interceptor.WaitForExitAsync(CancellationToken.None);
            }
            DaemonProcess.Stop(daemon);
            if (shortLink is not null) File.Delete(shortLink);
        }
    }

    private static TimeSpan Percentile(List<TimeSpan> sorted, double p) =>
        sorted.Count == 0 ? TimeSpan.Zero : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    /// <summary>
    /// busybox httpd with a CGI counter; a mkdir lock serialises the read-increment-write of concurrent POSTs. A CGI that
    /// finds the lock taken sleeps 1 ms before it tries again: spinning, dozens of waiting CGIs took the CPU from the one
    /// holding the lock, requests took longer than the interceptor's 5 s hold wait on a busy machine, and the held queue
    /// overflowed (CI saw 1984 of 4597 requests refused with 503).
    /// </summary>
    private static string[] HttpCounterCommand(int port) =>
    [
        "/bin/sh", "-c",
        "mkdir -p /www/cgi-bin /state && cat > /www/cgi-bin/counter <<'EOF'\n" +
        "#!/bin/sh\n" +
        "while ! mkdir /state/lock 2>/dev/null; do usleep 1000; done\n" +
        "n=$(cat /state/count 2>/dev/null); n=${n:-0}\n" +
        "if [ \"$REQUEST_METHOD\" = POST ]; then n=$((n+1)); echo $n > /state/count; fi\n" +
        "rmdir /state/lock\n" +
        "printf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' \"$n\"\n" +
        "EOF\n" +
        $"chmod +x /www/cgi-bin/counter && exec httpd -f -p 127.0.0.1:{port} -h /www",
    ];

    /// <summary>The count through a GET to <paramref name="port"/>, or -1 when nothing good answers.</summary>
    private static long Get(HttpClient http, int port)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            using var response = http.GetAsync($"http://127.0.0.1:{port}/cgi-bin/counter", cts.Token).GetAwaiter().GetResult();
            if (!response.IsSuccessStatusCode) return -1;
            var text = response.Content.ReadAsStringAsync(cts.Token).GetAwaiter().GetResult().Trim();
            return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1;
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException) { return -1; }
    }

    private Process StartInterceptor(int listen, int upstream, string control, string log)
    {
        var psi = new ProcessStartInfo(options.Binary,
        [
            "interceptor", "--mode", "http", "--listen", $"127.0.0.1:{listen}", "--upstream", $"127.0.0.1:{upstream}",
            "--control-socket", control, "--replay-methods", "POST",
        ])
        { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start the interceptor");
        var sink = new StreamWriter(log) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (sink) sink.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (sink) sink.WriteLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static async Task<string> InterceptorStatusAsync(string control, CancellationToken ct)
    {
        try
        {
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            await socket.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(control), ct);
            await using var stream = new System.Net.Sockets.NetworkStream(socket, ownsSocket: false);
            await stream.WriteAsync("status\n"u8.ToArray(), ct);
            using var reader = new StreamReader(stream);
            return (await reader.ReadLineAsync(ct)) ?? "(no answer)";
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException) { return "(status: " + e.Message + ")"; }
    }

    /// <summary>Requests at a steady rate, POST and GET in turn, each on its own task; counts what came back.</summary>
    /// <summary>
    /// Requests at <paramref name="perSecond"/>, POST and GET in turn, but never more than <see cref="MaxInFlight"/>
    /// waiting for an answer at once, as clients with a connection pool behave: an open-loop load piled requests up
    /// without bound whenever the machine was busier than the app's capacity (a busybox CGI forks per request), and the
    /// interceptor's held queue overflowed for reasons that are not the interceptor's.
    /// </summary>
    private sealed class LoadGenerator(HttpClient http, int port, int perSecond)
    {
        public const int MaxInFlight = 32;
        private readonly SemaphoreSlim _slots = new(MaxInFlight);
        private long _sent, _failed, _posts;
        private readonly List<TimeSpan> _latencies = [];
        private readonly List<string> _failures = [];
        private readonly List<Task> _inFlight = [];

        public long Sent => Interlocked.Read(ref _sent);
        public long Failed => Interlocked.Read(ref _failed);
        public long PostsAcknowledged => Interlocked.Read(ref _posts);

        public string Summary() => $"{Sent} requests sent, {Failed} failed, {PostsAcknowledged} POSTs acknowledged";

        public List<TimeSpan> Latencies() { lock (_latencies) return [.. _latencies.Order()]; }

        public IReadOnlyList<string> FailureSamples() { lock (_failures) return [.. _failures]; }

        public async Task RunAsync(CancellationToken stop)
        {
            var clock = Stopwatch.StartNew();
            var n = 0L;
            while (!stop.IsCancellationRequested)
            {
                var due = TimeSpan.FromSeconds((double)n / perSecond);
                if (due > clock.Elapsed)
                {
                    try { await Task.Delay(due - clock.Elapsed, stop); }
                    catch (OperationCanceledException) { break; }
                }
                try { await _slots.WaitAsync(stop); }
                catch (OperationCanceledException) { break; }
                var post = n++ % 2 == 0;
                var task = OneAsync(post);
                lock (_inFlight) { _inFlight.RemoveAll(t => t.IsCompleted); _inFlight.Add(task); }
            }
            Task[] pending;
            lock (_inFlight) pending = [.. _inFlight];
            await Task.WhenAll(pending); // every request sent gets its answer counted
        }

        private async Task OneAsync(bool post)
        {
            Interlocked.Increment(ref _sent);
            var started = Stopwatch.GetTimestamp();
            try
            {
                using var request = new HttpRequestMessage(post ? HttpMethod.Post : HttpMethod.Get, $"http://127.0.0.1:{port}/cgi-bin/counter");
                if (post) request.Content = new ByteArrayContent([]);
                using var response = await http.SendAsync(request);
                var body = await response.Content.ReadAsStringAsync();
                if (!response.IsSuccessStatusCode) Fail($"{request.Method} -> {(int)response.StatusCode} {body.Trim()}");
                else if (post) Interlocked.Increment(ref _posts);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
            {
                Fail($"{(post ? "POST" : "GET")} -> {e.GetType().Name}: {e.Message}");
            }
            finally
            {
                lock (_latencies) _latencies.Add(Stopwatch.GetElapsedTime(started));
                _slots.Release();
            }
        }

        private void Fail(string what)
        {
            Interlocked.Increment(ref _failed);
            lock (_failures) if (_failures.Count < 10) _failures.Add(what);
        }
    }
}

using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using ContainerCheckpoint = Crsc.Api.Crds.ContainerCheckpoint;
using ContainerCheckpointPhase = Crsc.Api.Crds.ContainerCheckpointPhase;
using KubeletLabels = Crsc.Api.Kubernetes.KubeletLabels;
using CrscJsonContext = Crsc.Api.Crds.CrscJsonContext;
using CrscResources = Crsc.Api.Crds.CrscResources;
using Crsc.Controllers.Runtime;
using Crsc.Controllers.Storage;
using Crsc.Cri;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Storage;
using Crsc.Testing;
using Xunit.Abstractions;
using V1 = Runtime.V1;

namespace Crsc.E2E.Tests.RealRuntime;

/// <summary>
/// Issue 4, "Real runtime": a pod and a counter container started through crsc's own CRI client on
/// a real containerd 2.1 + runc + CRIU 4, checkpointed through crsc's runtime adapter (the product's
/// checkpoint path: the container found by its kubelet labels, the archive written into the store's
/// staging directory), ingested into a <see cref="DiskCheckpointStore"/>, verified, and shown by
/// checkpointctl to be a CRI checkpoint of that container -- which keeps running.
/// </summary>
[Collection(RealRuntimeCollection.Name)]
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed partial class CheckpointTests(RealRuntimeFixture sandbox, ITestOutputHelper output)
{
    private const string PodNamespace = "crsc-e2e";
    private const string ContainerName = "counter";

    [RealComponentsFact]
    public async Task Runtime_answers_through_crscs_own_CRI_client()
    {
        using var runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = sandbox.CriEndpoint });
        var version = await runtime.VersionAsync(CancellationToken.None);
        Assert.Equal("containerd", version.RuntimeName);
        Assert.Matches(@"^v?2\.([1-9]|\d\d)", version.RuntimeVersionString);
        Assert.Equal("v1", version.RuntimeApiVersion);
    }

    [RealComponentsFact]
    public async Task A_running_counter_container_is_checkpointed_into_the_store_and_keeps_running()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var ct = timeout.Token;
        // everything the runtime reads or writes is in the shared directory: the same path on the host
        // (this test, the store) and in the namespace (containerd)
        var (work, data, logs, podName, podUid) = NewCounterPod("checkpoint-test-");

        using var client = new CriClient(new CriClientOptions { Endpoint = sandbox.CriEndpoint });
        using var runtime = new CriContainerRuntime(client);
        string? podId = null;
        try
        {
            // 1. pod sandbox and counter container, as the kubelet would ask for them
            await client.PullImageAsync(new V1.PullImageRequest { Image = new V1.ImageSpec { Image = sandbox.BusyboxImage } }, ct: ct);
            var podConfig = PodConfig(podName, podUid, logs);
            podId = (await client.RunPodSandboxAsync(new V1.RunPodSandboxRequest { Config = podConfig }, ct: ct)).PodSandboxId;
            var containerId = (await client.CreateContainerAsync(new V1.CreateContainerRequest
            {
                PodSandboxId = podId,
                Config = CounterConfig(podName, podUid, data),
                SandboxConfig = podConfig,
            }, ct: ct)).ContainerId;
            await client.StartContainerAsync(new V1.StartContainerRequest { ContainerId = containerId }, ct: ct);
            output.WriteLine($"pod {podId[..12]} container {containerId[..12]}");

            var counterFile = Path.Combine(data, "counter");
            await Eventually.TrueAsync(() => ReadCounter(counterFile) >= 3, "the counter reaches 3", TimeSpan.FromSeconds(30));

            // 2. checkpoint through the product's checkpoint path into the store's staging directory
            using var store = new DiskCheckpointStore(new DiskCheckpointStoreOptions
            {
                CheckpointDirectory = Path.Combine(work, "store", "checkpoints"),
                StagingDirectory = Path.Combine(work, "store", "staging"),
                NodeName = "sandbox",
            });
            var source = new CheckpointedContainer(PodNamespace, podName, ContainerName) { PodName = podName, PodUid = podUid };
            var staged = store.NewStagingPath(source);
            var before = ReadCounter(counterFile);
            var sw = Stopwatch.StartNew();
            var archive = await runtime.CheckpointAsync(
                new CheckpointTarget(PodNamespace, podName, ContainerName), staged, TimeSpan.FromMinutes(2), ct);
            output.WriteLine($"CheckpointContainer: {sw.Elapsed.TotalSeconds:0.00} s, archive {new FileInfo(archive.Path).Length} bytes, counter was {before}");
            Assert.Equal(staged, archive.Path);
            Assert.True(File.Exists(staged), $"the runtime wrote no archive at {staged}");
            var stagedDigest = await Sha256Async(staged, ct);

            // 3. the container keeps running and counting (a CRI checkpoint leaves it running)
            var status = await runtime.ContainerStatusAsync(containerId, verbose: false, ct);
            Assert.Equal(ContainerState.Running, status.State);
            var after = ReadCounter(counterFile);
            await Eventually.TrueAsync(() => ReadCounter(counterFile) > after + 2, "the counter goes on after the checkpoint", TimeSpan.FromSeconds(30));

            // 4. ingest (zstd), verify the digest, read it back
            sw.Restart();
            var info = await store.IngestAsync(staged, source, IngestOptions.Default, null, ct);
            output.WriteLine($"ingested {info.Id}: {info.UncompressedSize} -> {info.Size} bytes ({info.Compression}) in {sw.Elapsed.TotalSeconds:0.00} s");
            Assert.Equal(stagedDigest, info.UncompressedDigest);
            Assert.StartsWith("sha256:", info.Digest);
            Assert.Equal(containerId, info.Archive.RuntimeContainerId);
            Assert.Equal(ContainerName, info.Archive.ContainerName);
            Assert.False(File.Exists(staged), "the staged archive is removed once committed");
            Assert.Single(store.List(), c => c.Id == info.Id);

            var verification = await store.VerifyAsync(info.Id, ct);
            Assert.True(verification.Valid, verification.Problem);

            var readBack = Path.Combine(work, "read-back.tar");
            await using (var stream = await store.OpenReadAsync(info.Id, ct))
            await using (var file = File.Create(readBack))
                await stream.CopyToAsync(file, ct);
            Assert.Equal(stagedDigest, await Sha256Async(readBack, ct));

            // 5. checkpointctl (Debian's, in the namespace) reads it as a checkpoint of that container
            var show = await sandbox.InNamespaceAsync(["checkpointctl", "show", readBack], TimeSpan.FromMinutes(1), ct);
            output.WriteLine(show.Stdout);
            Assert.True(show.Succeeded, show.ToString());
            Assert.Contains(ContainerName, show.Stdout);
            Assert.Contains("containerd", show.Stdout);
            Assert.Contains(sandbox.BusyboxImage, show.Stdout);

            var inspect = await sandbox.InNamespaceAsync(
                ["checkpointctl", "inspect", "--format", "json", "--ps-tree-cmd", readBack], TimeSpan.FromMinutes(1), ct);
            Assert.True(inspect.Succeeded, inspect.ToString());
            using (var doc = JsonDocument.Parse(inspect.Stdout))
            {
                var json = doc.RootElement.ValueKind == JsonValueKind.Array ? doc.RootElement[0] : doc.RootElement;
                output.WriteLine(json.ToString());
                Assert.Equal(ContainerName, json.GetProperty("container_name").GetString());
                Assert.Equal(containerId, json.GetProperty("id").GetString());
                Assert.Equal(sandbox.BusyboxImage, json.GetProperty("image").GetString());
                Assert.Equal("containerd", json.GetProperty("engine").GetString());
                Assert.True(json.GetProperty("checkpoint_size").GetProperty("memory_pages_size").GetInt64() > 0, "no memory pages in the checkpoint");
            }
            // the process CRIU saved is the counter loop itself: its script is in the saved memory. Read from the archive
            // (not from checkpointctl's process tree: checkpointctl 1.3.0 prints the cmdline of a criu 4.2 image as blanks)
            Assert.True(await MemoryPagesContainAsync(readBack, "/data/counter", ct),
                "no checkpoint/pages-*.img in the archive holds the counter loop's script (/data/counter)");

            // still running after all that
            status = await runtime.ContainerStatusAsync(containerId, verbose: false, ct);
            Assert.Equal(ContainerState.Running, status.State);
        }
        finally
        {
            if (podId is not null) await RemovePodAsync(client, podId);
            try { Directory.Delete(work, recursive: true); } catch (IOException e) { output.WriteLine($"cleanup of {work}: {e.Message}"); }
        }
    }

    /// <summary>
    /// What the node agent does to the instance a restore's patch replaced: CRI StopContainer with no grace period. The
    /// counter runs as PID 1 of its PID namespace under sh, which ignores SIGTERM, so only an immediate kill ends it
    /// well inside the 30 s a graceful stop would wait; stopping it again, or a container that is not there, succeeds.
    /// </summary>
    [RealComponentsFact]
    public async Task StopContainer_without_a_grace_period_kills_a_container_that_ignores_SIGTERM_at_once()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var ct = timeout.Token;
        var (work, data, logs, podName, podUid) = NewCounterPod("stop-test-");
        using var client = new CriClient(new CriClientOptions { Endpoint = sandbox.CriEndpoint });
        using var runtime = new CriContainerRuntime(client);
        string? podId = null;
        try
        {
            string containerId;
            (podId, containerId) = await StartCounterAsync(client, podName, podUid, logs, data, ct);
            var before = await runtime.ContainerStatusAsync(containerId, verbose: false, ct);
            Assert.Equal(ContainerState.Running, before.State);
            Assert.Equal(podUid, before.Labels[KubeletLabels.PodUid]);

            var stopped = Stopwatch.StartNew();
            await runtime.StopContainerAsync(containerId, TimeSpan.Zero, ct);
            var after = await runtime.ContainerStatusAsync(containerId, verbose: false, ct);
            output.WriteLine($"StopContainer(timeout 0) returned after {stopped.ElapsedMilliseconds} ms; state {after.State}, exit code {after.ExitCode}");
            Assert.Equal(ContainerState.Exited, after.State);
            Assert.Equal(137, after.ExitCode); // SIGKILL, not a graceful end
            Assert.True(stopped.Elapsed < TimeSpan.FromSeconds(20), $"a stop without grace took {stopped.Elapsed}");

            // idempotent, as the CRI asks: stopped already, or not there at all (containerd 2.1 answers both with success)
            await runtime.StopContainerAsync(containerId, TimeSpan.Zero, ct);
            await runtime.StopContainerAsync(new string('f', 64), TimeSpan.Zero, ct);
        }
        finally
        {
            if (podId is not null) await RemovePodAsync(client, podId);
            try { Directory.Delete(work, recursive: true); } catch (IOException e) { output.WriteLine($"cleanup of {work}: {e.Message}"); }
        }
    }

    /// <summary>
    /// The product end to end: the published AOT daemon on the real containerd, <c>crsc checkpoint NS/POD/CONTAINER</c>
    /// through its node socket, then <c>crsc list</c> and <c>crsc inspect</c> reading the verified archive.
    /// </summary>
    [RealComponentsFact]
    public async Task Crsc_checkpoint_through_the_daemon_stores_a_verified_archive_that_crsc_inspect_reads()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var ct = timeout.Token;
        var (work, data, logs, podName, podUid) = NewCounterPod("daemon-checkpoint-test-");
        using var client = new CriClient(new CriClientOptions { Endpoint = sandbox.CriEndpoint });
        string? podId = null;
        Process? daemon = null;
        var env = DaemonEnvironment(work);
        try
        {
            string containerId;
            (podId, containerId) = await StartCounterAsync(client, podName, podUid, logs, data, ct);
            var counterFile = Path.Combine(data, "counter");

            daemon = Process.Start(Binary.PublishedBinary.Start(["daemon"], env))!;
            var daemonOut = daemon.StandardOutput.ReadToEndAsync(ct);
            var daemonErr = daemon.StandardError.ReadToEndAsync(ct);
            using (var http = Binary.PublishedBinary.UnixHttpClient(env["CRSC_SOCKET"]))
            {
                await Eventually.TrueAsync(async () => daemon.HasExited || (await http.GetStringAsync("/readyz", ct)).Contains("[+]runtime healthy: containerd"),
                    "the daemon reaches the runtime", TimeSpan.FromSeconds(60));
                if (daemon.HasExited) Assert.Fail("the daemon exited: " + await daemonErr);
            }

            var target = $"{PodNamespace}/{podName}/{ContainerName}";
            var (code, stdout, stderr) = await Binary.PublishedBinary.RunAsync(["checkpoint", target, "--json"], env, TimeSpan.FromMinutes(3));
            output.WriteLine(stdout);
            Assert.True(code == 0, $"crsc checkpoint exited {code}: {stderr}\n{stdout}");
            var resultLine = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last(l => l.Contains("\"result\"", StringComparison.Ordinal));
            string id;
            using (var doc = JsonDocument.Parse(resultLine))
            {
                var result = doc.RootElement.GetProperty("result");
                id = result.GetProperty("id").GetString()!;
                Assert.StartsWith("sha256:", result.GetProperty("digest").GetString());
                Assert.True(result.GetProperty("sizeBytes").GetInt64() > 0);
            }

            // the container keeps running and counting
            var after = ReadCounter(counterFile);
            await Eventually.TrueAsync(() => ReadCounter(counterFile) > after + 2, "the counter goes on after the checkpoint", TimeSpan.FromSeconds(30));

            var list = await Binary.PublishedBinary.RunAsync(["list", PodNamespace], env);
            Assert.True(list.Code == 0, list.Err);
            Assert.Contains(id, list.Out);

            // crsc status: the real containerd 2.1 named, its verdicts never "disabled" or "not supported" (2.1 restores
            // in CreateContainer without an opt-in; whether CRIU is there may be unknown to a daemon that has no criu on
            // its own path until a checkpoint succeeded), the store and the checkpoint just taken
            var status = await Binary.PublishedBinary.RunAsync(["status"], env, TimeSpan.FromMinutes(1));
            output.WriteLine(status.Out);
            Assert.True(status.Code == 0, status.Err);
            Assert.Matches(@"Runtime: containerd v?2\.1\.", status.Out);
            Assert.Matches(@"\n  restore\s+(Supported|Unknown): ", status.Out);
            Assert.Matches(@"\n  checkpoint\s+(Supported|Unknown): ", status.Out);
            Assert.Contains("Store: 1 checkpoint(s)", status.Out);
            Assert.Contains(id, status.Out);

            var inspect = await Binary.PublishedBinary.RunAsync(["inspect", id], env, TimeSpan.FromMinutes(1));
            output.WriteLine(inspect.Out);
            Assert.True(inspect.Code == 0, inspect.Err);
            Assert.Contains(ContainerName, inspect.Out);
            Assert.Contains($"id {containerId[..12]}", inspect.Out);
            Assert.Contains(sandbox.BusyboxImage, inspect.Out);
            Assert.Contains("verified", inspect.Out);

            // checkpointctl agrees that the stored archive is a checkpoint of that container
            var archive = Directory.GetFiles(env["CRSC_CHECKPOINT_DIR"], id + ".tar*", SearchOption.AllDirectories).Single();
            var readBack = Path.Combine(work, "read-back.tar");
            await using (var stream = new Crsc.Storage.ReadOnlyCheckpointStore(env["CRSC_CHECKPOINT_DIR"]).OpenRead(id))
            await using (var file = File.Create(readBack))
                await stream.CopyToAsync(file, ct);
            var show = await sandbox.InNamespaceAsync(["checkpointctl", "show", readBack], TimeSpan.FromMinutes(1), ct);
            Assert.True(show.Succeeded, show.ToString());
            Assert.Contains(ContainerName, show.Stdout);
            Assert.True(File.Exists(archive));
        }
        finally
        {
            DaemonProcess.Stop(daemon);
            if (podId is not null) await RemovePodAsync(client, podId);
            try { Directory.Delete(work, recursive: true); } catch (IOException e) { output.WriteLine($"cleanup of {work}: {e.Message}"); }
        }
    }

    /// <summary>
    /// The cluster path on the real runtime: the AOT daemon pointed at an API server (the in-process fake kube-apiserver
    /// serving crsc's CRDs), a ContainerCheckpoint for a pod on its node, the real containerd checkpointing it:
    /// the object reaches Completed with digest and size, its Content exists, the archive is in the store.
    /// </summary>
    [RealComponentsFact]
    public async Task A_ContainerCheckpoint_on_the_real_runtime_is_completed_by_the_daemon()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var ct = timeout.Token;
        var (work, data, logs, podName, podUid) = NewCounterPod("ckpt-object-test-");
        await using var api = await Crsc.Testing.Kube.FakeApiServer.StartAsync();
        api.Register(Crsc.Testing.Kube.FakeResource.From(CrscResources.ContainerCheckpoints, true));
        api.Register(Crsc.Testing.Kube.FakeResource.From(CrscResources.ContainerCheckpointContents, true));
        api.Register(Crsc.Testing.Kube.FakeResource.From(CrscResources.CheckpointSchedules, true));
        api.Register(Crsc.Testing.Kube.FakeResource.From(CrscResources.Restores, true));
        var kubeconfig = Path.Combine(work, "kubeconfig");
        File.WriteAllText(kubeconfig, api.KubeconfigYaml());
        using var client = new CriClient(new CriClientOptions { Endpoint = sandbox.CriEndpoint });
        string? podId = null;
        Process? daemon = null;
        var env = DaemonEnvironment(work);
        env["CRSC_KUBECONFIG"] = kubeconfig;
        try
        {
            string containerId;
            (podId, containerId) = await StartCounterAsync(client, podName, podUid, logs, data, ct);
            var counterFile = Path.Combine(data, "counter");

            // what the kubelet would have reported to the API server for that pod
            api.Seed(Crsc.Api.Kubernetes.Resources.Pods, JsonSerializer.Deserialize($$$$"""
                {"metadata":{"name":"{{{{podName}}}}","namespace":"{{{{PodNamespace}}}}","uid":"{{{{podUid}}}}"},
                 "spec":{"nodeName":"sandbox","containers":[{"name":"{{{{ContainerName}}}}","image":"{{{{sandbox.BusyboxImage}}}}"}]},
                 "status":{"phase":"Running","containerStatuses":[{"name":"{{{{ContainerName}}}}","ready":true,"restartCount":0,
                   "image":"{{{{sandbox.BusyboxImage}}}}","containerID":"containerd://{{{{containerId}}}}","state":{"running":{}}}]}}
                """, Crsc.Api.Kubernetes.KubeJsonContext.Default.Pod)!);

            daemon = Process.Start(Binary.PublishedBinary.Start(["daemon"], env))!;
            var daemonOut = daemon.StandardOutput.ReadToEndAsync(ct);
            var daemonErr = daemon.StandardError.ReadToEndAsync(ct);

            api.Seed(CrscResources.ContainerCheckpoints, JsonSerializer.Deserialize($$$"""
                {"metadata":{"name":"by-object","namespace":"{{{PodNamespace}}}"},
                 "spec":{"podName":"{{{podName}}}","container":"{{{ContainerName}}}","deletionPolicy":"Retain"}}
                """, CrscJsonContext.Default.ContainerCheckpoint)!);

            ContainerCheckpoint? done = null;
            await Eventually.TrueAsync(() =>
            {
                done = api.Get(CrscResources.ContainerCheckpoints, PodNamespace, "by-object");
                return daemon.HasExited || done?.Status?.Phase is ContainerCheckpointPhase.Completed or ContainerCheckpointPhase.Failed;
            }, "the ContainerCheckpoint is executed", TimeSpan.FromMinutes(2));
            if (daemon.HasExited) Assert.Fail("the daemon exited: " + await daemonErr);
            Assert.True(done!.Status!.Phase == ContainerCheckpointPhase.Completed, $"{done.Status.Phase}: {done.Status.Message}");
            Assert.Equal("sandbox", done.Status.Node);
            Assert.StartsWith("sha256:", done.Status.Digest);
            Assert.True(done.Status.SizeBytes > 0);
            var content = api.Get(CrscResources.ContainerCheckpointContents, null, done.Status.ContentName!);
            Assert.NotNull(content);
            Assert.Equal(done.Status.Digest, content!.Spec.Digest);
            Assert.True(File.Exists(content.Spec.Path), $"the archive {content.Spec.Path} is in the store");

            // the container keeps running and counting
            var after = ReadCounter(counterFile);
            await Eventually.TrueAsync(() => ReadCounter(counterFile) > after + 2, "the counter goes on after the checkpoint", TimeSpan.FromSeconds(30));
        }
        finally
        {
            DaemonProcess.Stop(daemon);
            if (podId is not null) await RemovePodAsync(client, podId);
            try { Directory.Delete(work, recursive: true); } catch (IOException e) { output.WriteLine($"cleanup of {work}: {e.Message}"); }
        }
    }

    /// <summary>The daemon's configuration for a test: everything under <paramref name="work"/> (the shared directory,
    /// so the runtime writes its archive into the store's staging at the same path inside the sandbox).</summary>
    private Dictionary<string, string> DaemonEnvironment(string work)
    {
        var env = new Dictionary<string, string>
        {
            ["CRSC_CONFIG"] = Path.Combine(work, "config.yaml"),
            ["CRSC_SOCKET"] = Path.Combine(work, "run", "crsc.sock"),
            ["CRSC_RUNTIME_ENDPOINT"] = sandbox.CriEndpoint,
            ["CRSC_CHECKPOINT_DIR"] = Path.Combine(work, "store", "checkpoints"),
            ["CRSC_STAGING_DIR"] = Path.Combine(work, "store", "staging"),
            ["CRSC_STATE_DIR"] = Path.Combine(work, "state"),
            ["CRSC_NODE_STATE_DIRECTORY"] = Path.Combine(work, "node-state"),
            ["NODE_NAME"] = "sandbox",
            ["CRSC_LOG_FORMAT"] = "json",
        };
        File.WriteAllText(env["CRSC_CONFIG"], "");
        return env;
    }

    /// <summary>A pod sandbox and the counter container, started as the kubelet would, counting to 3 at least.</summary>
    /// <summary>
    /// A test's directory under the sandbox's shared one (the same path on the host and in the namespace), with the
    /// counter's data and pod-log directories in it, and a new pod name and UID for the counter.
    /// </summary>
    private (string Work, string Data, string Logs, string PodName, string PodUid) NewCounterPod(string prefix)
    {
        var work = sandbox.CreateSharedDirectory(prefix);
        return (work, Directory.CreateDirectory(Path.Combine(work, "data")).FullName,
            Directory.CreateDirectory(Path.Combine(work, "pod-logs")).FullName,
            "counter-" + Guid.NewGuid().ToString("N")[..6], Guid.NewGuid().ToString());
    }

    private async Task<(string PodId, string ContainerId)> StartCounterAsync(CriClient client, string podName, string podUid,
        string logs, string data, CancellationToken ct)
    {
        await client.PullImageAsync(new V1.PullImageRequest { Image = new V1.ImageSpec { Image = sandbox.BusyboxImage } }, ct: ct);
        var podConfig = PodConfig(podName, podUid, logs);
        var podId = (await client.RunPodSandboxAsync(new V1.RunPodSandboxRequest { Config = podConfig }, ct: ct)).PodSandboxId;
        var containerId = (await client.CreateContainerAsync(new V1.CreateContainerRequest
        {
            PodSandboxId = podId, Config = CounterConfig(podName, podUid, data), SandboxConfig = podConfig,
        }, ct: ct)).ContainerId;
        await client.StartContainerAsync(new V1.StartContainerRequest { ContainerId = containerId }, ct: ct);
        var counterFile = Path.Combine(data, "counter");
        await Eventually.TrueAsync(() => ReadCounter(counterFile) >= 3, "the counter reaches 3", TimeSpan.FromSeconds(30));
        return (podId, containerId);
    }

    private V1.PodSandboxConfig PodConfig(string name, string uid, string logDirectory) =>
        SandboxPods.PodConfig(sandbox, PodNamespace, name, uid, logDirectory);

    private V1.ContainerConfig CounterConfig(string podName, string podUid, string dataDirectory) =>
        SandboxPods.BusyboxConfig(sandbox, PodNamespace, podName, podUid, ContainerName, dataDirectory,
            "/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /data/counter; echo $i; sleep 0.2; done");

    /// <summary>Whether any CRIU memory image (<c>checkpoint/pages-N.img</c>) of the tar at <paramref name="tarPath"/> holds <paramref name="text"/>.</summary>
    private static async Task<bool> MemoryPagesContainAsync(string tarPath, string text, CancellationToken ct)
    {
        var needle = System.Text.Encoding.ASCII.GetBytes(text);
        await using var file = File.OpenRead(tarPath);
        await using var reader = new System.Formats.Tar.TarReader(file);
        var pages = 0;
        while (await reader.GetNextEntryAsync(copyData: false, ct) is { } entry)
        {
            var name = entry.Name.TrimStart('.', '/');
            if (!name.StartsWith("checkpoint/pages-", StringComparison.Ordinal) || entry.DataStream is null) continue;
            pages++;
            using var buffer = new MemoryStream();
            await entry.DataStream.CopyToAsync(buffer, ct);
            if (buffer.GetBuffer().AsSpan(0, (int)buffer.Length).IndexOf(needle) >= 0) return true;
        }
        Assert.True(pages > 0, "the archive has no checkpoint/pages-*.img");
        return false;
    }

    private static async Task<string> Sha256Async(string path, CancellationToken ct)
    {
        await using var file = File.OpenRead(path);
        return "sha256:" + Convert.ToHexStringLower(await SHA256.HashDataAsync(file, ct));
    }

    private static long ReadCounter(string path)
    {
        try { return long.TryParse(File.ReadAllText(path).Trim(), out var n) ? n : 0; }
        catch (IOException) { return 0; }
    }

    /// <summary>Stops and removes the pod and its containers; a failure here is reported, not thrown.</summary>
    private Task RemovePodAsync(CriClient client, string podId) => SandboxPods.RemovePodAsync(client, podId, output.WriteLine);
}

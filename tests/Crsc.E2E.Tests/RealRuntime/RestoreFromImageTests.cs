using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Crsc.Cri;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Testing;
using V1 = Runtime.V1;

namespace Crsc.E2E.Tests.RealRuntime;

/// <summary>
/// Issue 7, "Real restore": the counter checkpointed through the AOT daemon, its checkpoint image served by the
/// daemon's own read-only OCI endpoint, and the container created again from that image through CRI -- as the kubelet
/// does after the pod's image is patched -- in the same pod sandbox and in a new one. The counter goes on from its
/// checkpointed value, not from zero.
/// </summary>
public sealed partial class CheckpointTests
{
    [RealComponentsFact]
    public async Task A_checkpoint_image_served_by_the_daemon_restores_the_counter_in_the_same_pod_and_in_a_new_one()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        var ct = timeout.Token;
        var work = sandbox.CreateSharedDirectory("restore-image-test-");
        var data = Directory.CreateDirectory(Path.Combine(work, "data")).FullName;
        var logs = Directory.CreateDirectory(Path.Combine(work, "pod-logs")).FullName;
        var logs2 = Directory.CreateDirectory(Path.Combine(work, "pod-logs-2")).FullName;
        var podName = "counter-" + Guid.NewGuid().ToString("N")[..6];
        var podUid = Guid.NewGuid().ToString();
        var counterFile = Path.Combine(data, "counter");
        using var client = new CriClient(new CriClientOptions { Endpoint = sandbox.CriEndpoint });
        var pods = new List<string>();
        Process? daemon = null;
        var images = sandbox.CheckpointImagesAddress;
        AssertPortFree(images);
        var env = DaemonEnvironment(work);
        env["CRSC_IMAGES_LISTEN"] = images;
        try
        {
            var (podId, containerId) = await StartCounterAsync(client, podName, podUid, logs, data, ct);
            pods.Add(podId);
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} counter started");
            await Eventually.TrueAsync(() => ReadCounter(counterFile) >= 10, "the counter reaches 10", TimeSpan.FromSeconds(30));

            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} starting the daemon");
            daemon = Process.Start(Binary.PublishedBinary.Start(["daemon"], env))!;
            var daemonErr = daemon.StandardError.ReadToEndAsync(ct);
            _ = daemon.StandardOutput.ReadToEndAsync(ct);
            using (var unix = Binary.PublishedBinary.UnixHttpClient(env["CRSC_SOCKET"]))
            {
                await Eventually.TrueAsync(async () => daemon.HasExited || (await unix.GetStringAsync("/readyz", ct)) is var r
                        && r.Contains("[+]runtime healthy: containerd") && r.Contains("[+]images healthy"),
                    "the daemon reaches the runtime and serves images", TimeSpan.FromSeconds(60));
                if (daemon.HasExited) Assert.Fail("the daemon exited: " + await daemonErr);
            }

            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} daemon ready");
            // 1. checkpoint through the daemon; the counter's value then is between these two readings
            var before = ReadCounter(counterFile);
            var (code, stdout, stderr) = await Binary.PublishedBinary.RunAsync(
                ["checkpoint", $"{PodNamespace}/{podName}/{ContainerName}", "--json"], env, TimeSpan.FromMinutes(3));
            var after = ReadCounter(counterFile);
            Assert.True(code == 0, $"crsc checkpoint exited {code}: {stderr}\n{stdout}");
            string id;
            using (var doc = JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last(l => l.Contains("\"result\"", StringComparison.Ordinal))))
                id = doc.RootElement.GetProperty("result").GetProperty("id").GetString()!;
            var info = new Crsc.Storage.ReadOnlyCheckpointStore(env["CRSC_CHECKPOINT_DIR"]).Get(id)!;
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} checkpoint {id} ({info.Compression}, {info.Size} bytes); counter between {before} and {after}");

            // 2. the image as the daemon's endpoint serves it: the manifest by tag, then by the digest a pod would name
            using var http = new HttpClient { BaseAddress = new Uri($"http://{images}") };
            var repository = $"crsc/{info.Namespace}/{info.Workload}/{info.Container}";
            using (var anonymous = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/{repository}/manifests/{id}"), ct))
                Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            // a pull token as an admin gets one (the node agent mints its own for a Restore)
            var (tokenCode, tokenOut, tokenErr) = await Binary.PublishedBinary.RunAsync(["image-token", repository, "--ttl", "10m"], env);
            Assert.True(tokenCode == 0, $"crsc image-token exited {tokenCode}: {tokenErr}");
            var token = tokenOut.Trim();
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/{repository}/manifests/{id}"), ct);
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            var digest = head.Headers.GetValues("Docker-Content-Digest").Single();
            var image = $"{images}/{repository}@{digest}";
            output.WriteLine($"checkpoint image {image}");

            // the original keeps counting well past the checkpoint, then goes (a CRI checkpoint leaves it running)
            await Eventually.TrueAsync(() => ReadCounter(counterFile) > after + 25, "the original counts on", TimeSpan.FromSeconds(30));
            await client.StopContainerAsync(new V1.StopContainerRequest { ContainerId = containerId, Timeout = 0 }, ct: ct);
            await client.RemoveContainerAsync(new V1.RemoveContainerRequest { ContainerId = containerId }, ct: ct);
            var lastOriginal = ReadCounter(counterFile);
            output.WriteLine($"original stopped at {lastOriginal}");

            // 3. what the kubelet does after the pod's image is patched: pull the new image, create, start -- same sandbox
            // containerd itself is refused without the token, and pulls with it as the Basic password of the challenge
            var refused = await Assert.ThrowsAnyAsync<Exception>(() =>
                client.PullImageAsync(new V1.PullImageRequest { Image = new V1.ImageSpec { Image = image } }, ct: ct));
            output.WriteLine($"PullImage without credentials: {refused.Message}");
            Assert.Contains("authorization failed", refused.Message); // containerd: "no basic auth credentials"
            var sw = Stopwatch.StartNew();
            var pulled = await client.PullImageAsync(new V1.PullImageRequest
            {
                Image = new V1.ImageSpec { Image = image },
                Auth = new V1.AuthConfig { Username = Crsc.Storage.Security.PullTokens.UserName, Password = token },
            }, ct: ct);
            output.WriteLine($"PullImage {sw.Elapsed.TotalSeconds:0.00} s: {pulled.ImageRef}");
            var restored = await RestoreAndReadAsync(client, podId, PodConfig(podName, podUid, logs), podName, podUid, data, image,
                "the same pod sandbox", ct);
            AssertContinues(restored, before, after, lastOriginal, "same pod sandbox");

            // 4. and into a new pod sandbox (a replacement pod), from the same image
            await client.StopContainerAsync(new V1.StopContainerRequest { ContainerId = restored.ContainerId, Timeout = 0 }, ct: ct);
            var lastRestored = ReadCounter(counterFile);
            var pod2Name = podName + "-b";
            var pod2Uid = Guid.NewGuid().ToString();
            var pod2Config = PodConfig(pod2Name, pod2Uid, logs2);
            var pod2 = (await client.RunPodSandboxAsync(new V1.RunPodSandboxRequest { Config = pod2Config }, ct: ct)).PodSandboxId;
            pods.Add(pod2);
            var inNewPod = await RestoreAndReadAsync(client, pod2, pod2Config, pod2Name, pod2Uid, data, image, "a new pod sandbox", ct);
            AssertContinues(inNewPod, before, after, Math.Max(lastOriginal, lastRestored), "new pod sandbox");
        }
        catch
        {
            output.WriteLine("containerd log (tail): " + TailOf(Path.Combine(sandbox.RootfsPath, "var/log/crsc-sandbox-containerd.log"), 40));
            throw;
        }
        finally
        {
            DaemonProcess.Stop(daemon);
            foreach (var p in pods) await RemovePodAsync(client, p);
            try { Directory.Delete(work, recursive: true); } catch (IOException e) { output.WriteLine($"cleanup of {work}: {e.Message}"); }
        }
    }

    private sealed record Restored(string ContainerId, long FirstValue, IReadOnlyDictionary<string, string> Annotations);

    /// <summary>
    /// Zeroes the counter file (a cold start would count 1, 2, 3 from there), creates and starts the container from the
    /// checkpoint image, and returns the first value the process writes.
    /// </summary>
    private async Task<Restored> RestoreAndReadAsync(CriClient client, string podId, V1.PodSandboxConfig podConfig, string podName,
        string podUid, string data, string image, string where, CancellationToken ct)
    {
        var counterFile = Path.Combine(data, "counter");
        await File.WriteAllTextAsync(counterFile, "0\n", ct);
        var config = CounterConfig(podName, podUid, data);
        config.Image = new V1.ImageSpec { Image = image };
        var sw = Stopwatch.StartNew();
        var created = await client.CreateContainerAsync(new V1.CreateContainerRequest
        {
            PodSandboxId = podId, Config = config, SandboxConfig = podConfig,
        }, ct: ct);
        await client.StartContainerAsync(new V1.StartContainerRequest { ContainerId = created.ContainerId }, ct: ct);
        output.WriteLine($"restore in {where}: CreateContainer + StartContainer {sw.Elapsed.TotalSeconds:0.00} s");
        long first = 0;
        await Eventually.TrueAsync(() => (first = ReadCounter(counterFile)) > 0, $"the restored counter writes in {where}", TimeSpan.FromSeconds(60));
        var status = await client.ContainerStatusAsync(new V1.ContainerStatusRequest { ContainerId = created.ContainerId }, ct: ct);
        output.WriteLine($"{where}: first value {first}, state {status.Status.State}, annotations {string.Join(", ", status.Status.Annotations.Select(a => a.Key + "=" + a.Value))}");
        Assert.Equal(V1.ContainerState.ContainerRunning, status.Status.State);
        return new Restored(created.ContainerId, first, status.Status.Annotations);
    }

    private void AssertContinues(Restored restored, long before, long after, long lastOriginal, string where)
    {
        // the process state came back: it counts on from the checkpointed value (between the readings around the
        // checkpoint; the archived value may be one ahead), not from 1, and not from where the original stopped
        Assert.True(restored.FirstValue > before && restored.FirstValue <= after + 5,
            $"{where}: the restored counter wrote {restored.FirstValue}; the checkpoint was taken between {before} and {after}");
        Assert.True(restored.FirstValue < lastOriginal, $"{where}: {restored.FirstValue} is not below {lastOriginal}, where the original stopped");
        // containerd marks a container it restored from a checkpoint
        Assert.Equal("true", restored.Annotations.GetValueOrDefault("restored"));
    }

    private static void AssertPortFree(string hostPort)
    {
        if (LoopbackPorts.WhyTaken(hostPort) is { } why)
            Assert.Fail($"{hostPort} (the sandbox's address for crsc's image endpoint) is taken by another program: {why}");
    }

    private static string TailOf(string path, int lines)
    {
        try { return string.Join('\n', File.ReadLines(path).TakeLast(lines)); }
        catch (IOException e) { return e.Message; }
    }
}

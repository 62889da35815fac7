using System.Formats.Tar;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Cri;
using Crsc.E2E.Tests.Binary;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Crsc.Testing.Kubelet;
using Xunit.Abstractions;
using YamlDotNet.RepresentationModel;
using V1 = Runtime.V1;

namespace Crsc.E2E.Tests.RealRuntime;

/// <summary>
/// Issue "Step 7", finding 12: the static pod must be able to run. The image <c>make image</c> built (the published
/// binary on a few Debian packages, an OCI layout tarball) is imported into the sandbox's containerd the way a node's
/// admin would (<c>ctr -n k8s.io images import</c>), and the pod <c>crsc manifests static-pod --image REF</c> prints
/// runs from it through CRI with that manifest's mounts, privilege and env (the host paths pointed at directories of
/// the test, the containerd socket's at the sandbox's). The daemon inside reaches READY, answers on the node socket in
/// the mounted run directory and on the probes' address, and reaches containerd and the API server (TLS, from the
/// image's libssl). <c>podman load</c> takes the same tarball under the same name.
/// </summary>
[Collection(RealRuntimeCollection.Name)]
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed class StaticPodImageTests(RealRuntimeFixture sandbox, ITestOutputHelper output)
{
    private const string NodeName = "sandbox";
    /// <summary>Where the manifest's comment tells containerd users to point <c>CRSC_RUNTIME_ENDPOINT</c>.</summary>
    private const string ContainerdSocketDirectory = "/run/containerd";

    [RealComponentsFact]
    public async Task The_crsc_image_runs_as_the_static_pod_on_containerd_and_its_daemon_answers_on_its_socket()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var ct = timeout.Token;
        var image = await ImageTarball.LocateAsync();
        output.WriteLine($"image {image.Reference} {image.ManifestDigest} from {image.Path}");
        var work = sandbox.CreateSharedDirectory("static-pod-image-");
        var tarball = Path.Combine(work, Path.GetFileName(image.Path));
        File.Copy(image.Path, tarball);

        string[] ctr = ["ctr", "--address", sandbox.CriSocketPath, "-n", "k8s.io"];
        using var cri = new CriClient(new CriClientOptions { Endpoint = sandbox.CriEndpoint });
        try
        {
            // 1. the node admin's step: import the tarball into the runtime's k8s.io namespace; it is named as the
            // static pod will ask for it, and CRI (the kubelet's view) has it, so nothing is pulled
            var import = await sandbox.InNamespaceAsync([.. ctr, "images", "import", tarball], TimeSpan.FromMinutes(2), ct);
            output.WriteLine(import.Output);
            Assert.True(import.Succeeded, import.ToString());
            var list = await sandbox.InNamespaceAsync([.. ctr, "images", "ls"], TimeSpan.FromMinutes(1), ct);
            // REF TYPE DIGEST SIZE PLATFORMS LABELS
            Assert.Contains(list.Stdout.Split('\n'), l => l.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries) is [var name, _, var digest, ..]
                                                        && name == image.Reference && digest == image.ManifestDigest);
            var status = await cri.ImageStatusAsync(new V1.ImageStatusRequest { Image = new V1.ImageSpec { Image = image.Reference } }, ct: ct);
            Assert.True(status.Image is not null, $"CRI does not see {image.Reference} after the import");
            Assert.Equal(image.ConfigDigest, status.Image.Id);

            // 2. the static pod as crsc prints it for that image
            var printed = await PublishedBinary.RunAsync(["manifests", "static-pod", "--image", image.Reference]);
            Assert.True(printed.Code == 0, printed.Err);
            var pod = ParsePod(printed.Out);
            var container = Assert.Single(pod.Spec.Containers);
            Assert.Equal(image.Reference, container.Image);

            // 3. this node: the manifest's host paths become directories of the test, except the containerd socket's,
            // which is the sandbox's; the env is the manifest's with what its comments say to change for containerd
            var hostPaths = new Dictionary<string, string>(StringComparer.Ordinal); // mount path in the container → host directory
            var mountOf = container.VolumeMounts!.ToDictionary(m => m.Name, m => m.MountPath);
            Assert.Contains(ContainerdSocketDirectory, mountOf.Values);
            foreach (var volume in pod.Spec.Volumes!)
            {
                var hostPath = Assert.IsType<HostPathVolumeSource>(volume.HostPath);
                var mountPath = mountOf[volume.Name];
                hostPath.Path = mountPath == ContainerdSocketDirectory
                    ? sandbox.RunDirectory
                    : Directory.CreateDirectory(Path.Combine(work, "host", hostPath.Path.TrimStart('/'))).FullName;
                hostPaths[mountPath] = hostPath.Path;
            }
            var probePort = LoopbackPorts.Free();
            SetEnv(container, "CRSC_RUNTIME_ENDPOINT", $"unix://{ContainerdSocketDirectory}/containerd.sock");
            // the pod shares the host's network with whatever else runs on this machine: a free port for the probes, the
            // sandbox's port for checkpoint images (not the default 5055, which another daemon here may hold)
            SetEnv(container, "CRSC_METRICS_ADDRESS", $"127.0.0.1:{probePort}");
            container.Env!.Add(new EnvVar { Name = "CRSC_IMAGES_LISTEN", Value = sandbox.CheckpointImagesAddress });
            pod.Spec.NodeName = NodeName;

            // the API server the daemon authenticates to with /etc/crsc/kubeconfig (the manifest's CRSC_KUBECONFIG): HTTPS
            // with a bearer token, as a node's kubeconfig would be, so the TLS handshake runs on the image's libssl
            const string token = "static-pod-token";
            await using var api = await FakeApiServer.StartAsync(new FakeApiServerOptions { Tls = true, Tokens = [token] });
            api.Register(FakeResource.From(CrscResources.ContainerCheckpoints, true));
            api.Register(FakeResource.From(CrscResources.ContainerCheckpointContents, true));
            api.Register(FakeResource.From(CrscResources.CheckpointSchedules, true));
            api.Register(FakeResource.From(CrscResources.Restores, true));
            var kubeconfigPath = container.Env!.Single(e => e.Name == "CRSC_KUBECONFIG").Value!;
            var configDirectory = hostPaths[Path.GetDirectoryName(kubeconfigPath)!];
            File.WriteAllText(Path.Combine(configDirectory, Path.GetFileName(kubeconfigPath)), api.KubeconfigYaml(token));
            api.Seed(Resources.Pods, pod);

            // 4. the kubelet's part: run the pod through CRI
            await using var kubelet = new SandboxKubelet(api, cri, new SandboxKubeletOptions
            {
                NodeName = NodeName, CgroupParent = sandbox.CgroupParent, DataRoot = Path.Combine(work, "kubelet"),
            });
            kubelet.OnAction = line => output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.f} kubelet: {line}");
            using var stopKubelet = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var kubeletRun = kubelet.RunAsync(stopKubelet.Token);
            try
            {
                // 5. the daemon in the container: READY on the node socket in the mounted run directory ...
                Assert.True(hostPaths.TryGetValue(Path.GetDirectoryName(DefaultSocket)!, out var runDirectory), $"the pod does not mount {Path.GetDirectoryName(DefaultSocket)}");
                var socketPath = Path.Combine(runDirectory, Path.GetFileName(DefaultSocket));
                string readyz = "";
                using (var http = PublishedBinary.UnixHttpClient(socketPath))
                {
                    await Eventually.TrueAsync(async () =>
                    {
                        if (kubelet.Log.LastOrDefault(l => l.Contains("exited")) is { } exited) Assert.Fail($"{exited}\n{ContainerLog(work)}");
                        if (!File.Exists(socketPath)) return false;
                        try
                        {
                            using var response = await http.GetAsync("/readyz", ct);
                            readyz = await response.Content.ReadAsStringAsync(ct);
                            return response.IsSuccessStatusCode && readyz.Contains("[+]runtime") && readyz.Contains("[+]kube");
                        }
                        catch (HttpRequestException) { return false; }
                    }, "the daemon in the static pod is ready on its socket", TimeSpan.FromMinutes(2));
                }
                output.WriteLine(readyz);
                Assert.StartsWith("ready", readyz);
                Assert.Contains("[+]runtime healthy: containerd", readyz);
                Assert.Contains($"[+]kube healthy: connected to https://127.0.0.1:{api.Url.Port} ", readyz);
                Assert.Contains($"node-agent healthy: node {NodeName}", readyz); // NODE_NAME from the downward API

                // ... on the address the kubelet's probes use ...
                var probes = ProbePaths(printed.Out);
                using (var tcp = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
                    foreach (var path in probes)
                    {
                        using var response = await tcp.GetAsync($"http://127.0.0.1:{probePort}{path}", ct);
                        Assert.True(response.IsSuccessStatusCode, $"probe {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
                    }

                // ... and its log (JSON lines on stdout, kept by the runtime) says it started
                var log = ContainerLog(work);
                Assert.Contains($"started on node {NodeName}", log);
                var containerId = kubelet.ContainerIdOf(pod.Metadata.Namespace!, pod.Metadata.Name!, container.Name)!;
                var running = await cri.ContainerStatusAsync(new V1.ContainerStatusRequest { ContainerId = containerId }, ct: ct);
                Assert.Equal(V1.ContainerState.ContainerRunning, running.Status.State);
                Assert.Equal(image.Reference, running.Status.Image.Image);
            }
            finally
            {
                await stopKubelet.CancelAsync();
                try { await kubeletRun; } catch (OperationCanceledException) { }
                output.WriteLine(ContainerLog(work));
            }
        }
        finally
        {
            var rm = await sandbox.InNamespaceAsync([.. ctr, "images", "rm", image.Reference], TimeSpan.FromMinutes(1), CancellationToken.None);
            if (!rm.Succeeded) output.WriteLine($"removing {image.Reference}: {rm}");
        }
    }

    [RealComponentsFact]
    public async Task Podman_loads_the_tarball_under_the_same_name()
    {
        var image = await ImageTarball.LocateAsync();
        var work = sandbox.CreateSharedDirectory("podman-load-");
        var tarball = Path.Combine(work, Path.GetFileName(image.Path));
        File.Copy(image.Path, tarball);
        try
        {
            var load = await sandbox.InNamespaceAsync(["podman", "load", "-i", tarball], TimeSpan.FromMinutes(2));
            output.WriteLine(load.Output);
            Assert.True(load.Succeeded, load.ToString());
            Assert.Contains($"Loaded image: {image.Reference}", load.Stdout);
            var images = await sandbox.InNamespaceAsync(["podman", "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
            Assert.Contains($"{image.Reference} {image.ConfigDigest}", images.Stdout);
        }
        finally
        {
            var rm = await sandbox.InNamespaceAsync(["podman", "rmi", "--force", image.Reference]);
            if (!rm.Succeeded) output.WriteLine($"podman rmi {image.Reference}: {rm}");
        }
    }

    /// <summary>crsc's default node socket (DESIGN.md §4); the manifest sets no other.</summary>
    private const string DefaultSocket = "/run/crsc/crsc.sock";

    private static string ContainerLog(string work)
    {
        string[] logs = Directory.Exists(Path.Combine(work, "kubelet"))
            ? [.. Directory.GetFiles(Path.Combine(work, "kubelet"), "*.log", SearchOption.AllDirectories).Order(StringComparer.Ordinal)]
            : [];
        return string.Join('\n', logs.Select(f => $"--- {f}\n{File.ReadAllText(f)}"));
    }

    private static void SetEnv(Container container, string name, string value)
    {
        var env = container.Env!.Single(e => e.Name == name);
        env.Value = value;
    }

    /// <summary>The httpGet paths of the manifest's liveness and readiness probes.</summary>
    private static string[] ProbePaths(string yaml)
    {
        var container = (JsonObject)ToJson(Yaml(yaml))!["spec"]!["containers"]![0]!;
        return [.. new[] { "livenessProbe", "readinessProbe" }.Select(p => (string)container[p]!["httpGet"]!["path"]!)];
    }

    private static YamlNode Yaml(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return Assert.Single(stream.Documents).RootNode;
    }

    /// <summary>The pod of a static-pod manifest, read as the API server reads YAML (plain true/false and integers typed).</summary>
    private static Pod ParsePod(string yaml) => ToJson(Yaml(yaml))!.Deserialize(KubeJsonContext.Default.Pod)!;

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode m => new JsonObject(m.Children.Select(kv => KeyValuePair.Create(((YamlScalarNode)kv.Key).Value!, ToJson(kv.Value)))),
        YamlSequenceNode s => new JsonArray([.. s.Children.Select(ToJson)]),
        YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain, Value: "true" or "false" } b => JsonValue.Create(b.Value == "true"),
        YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain } n when long.TryParse(n.Value, out var number) => JsonValue.Create(number),
        YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain, Value: null or "" or "null" or "~" } => null,
        YamlScalarNode scalar => JsonValue.Create(scalar.Value),
        _ => throw new InvalidDataException($"unexpected YAML node {node.NodeType}"),
    };
}

/// <summary>
/// The image <c>make image</c> built: <c>$CRSC_IMAGE</c>, else obj/image/crsc-VERSION.oci.tar of this checkout, VERSION
/// the published binary's. It must pack that very binary (a stale tarball would test an older crsc).
/// </summary>
public sealed record ImageTarball(string Path, string Reference, string ManifestDigest, string ConfigDigest)
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static ImageTarball? _located;

    public static async Task<ImageTarball> LocateAsync()
    {
        await Gate.WaitAsync();
        try { return _located ??= await ReadAsync(); }
        finally { Gate.Release(); }
    }

    private static async Task<ImageTarball> ReadAsync()
    {
        var version = await PublishedBinary.RunAsync(["version", "--short"]);
        Assert.True(version.Code == 0, version.Err);
        var path = Environment.GetEnvironmentVariable("CRSC_IMAGE") is { Length: > 0 } given
            ? given
            : System.IO.Path.Combine(Packaging.Packages.RepositoryRoot, "obj", "image", $"crsc-{version.Out.Trim()}.oci.tar");
        if (!File.Exists(path)) throw new InvalidOperationException($"no image tarball at {path}: run `make image` first (make e2e does), or set CRSC_IMAGE");

        // index.json, the manifest and the config (the layers are not read into memory)
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        await using (var reader = new TarReader(File.OpenRead(path)))
            while (await reader.GetNextEntryAsync() is { } e)
            {
                if (e.DataStream is null || e.Length > 1 << 20) continue;
                var m = new MemoryStream();
                await e.DataStream.CopyToAsync(m);
                files[e.Name] = m.ToArray();
            }
        using var index = JsonDocument.Parse(files["index.json"]);
        var entry = index.RootElement.GetProperty("manifests")[0];
        var manifestDigest = entry.GetProperty("digest").GetString()!;
        var reference = entry.GetProperty("annotations").GetProperty("org.opencontainers.image.ref.name").GetString()!;
        using var manifest = JsonDocument.Parse(files["blobs/sha256/" + manifestDigest["sha256:".Length..]]);
        var configDigest = manifest.RootElement.GetProperty("config").GetProperty("digest").GetString()!;

        // the top layer holds usr/bin/crsc: it must be the binary under test
        var top = manifest.RootElement.GetProperty("layers").EnumerateArray().Last().GetProperty("digest").GetString()!;
        var packed = await CommandRunner.RunAsync("bash",
            ["-c", "set -o pipefail; tar -xOf \"$1\" \"blobs/sha256/$2\" | zstd -d -q -c | tar -xO usr/bin/crsc | sha256sum", "bash", path, top["sha256:".Length..]],
            timeout: TimeSpan.FromMinutes(1));
        Assert.True(packed.Succeeded, packed.ToString());
        await using (var binary = File.OpenRead(PublishedBinary.Path))
        {
            var expected = Convert.ToHexStringLower(await SHA256.HashDataAsync(binary));
            Assert.True(packed.Stdout.StartsWith(expected, StringComparison.Ordinal),
                $"{path} packs another crsc than {PublishedBinary.Path}: run `make image` again");
        }
        return new ImageTarball(path, reference, manifestDigest, configDigest);
    }
}

using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;

namespace Crsc.E2E.Tests.Sandbox;

/// <summary>The sandbox itself: each real component answers before crsc is put against it.</summary>
[Collection(RealRuntimeCollection.Name)]
[Trait(RealComponents.Category, RealComponents.Trait)]
public sealed class SandboxTests(RealRuntimeFixture sandbox)
{
    [RealComponentsFact]
    public async Task Criu_check_inside_the_namespace_looks_good()
    {
        var version = await sandbox.InNamespaceAsync("criu", "--version");
        Assert.True(version.Succeeded, version.ToString());
        Assert.Matches(@"Version: [4-9]\.", version.Stdout);

        var check = await sandbox.InNamespaceAsync("criu", "check");
        Assert.True(check.Succeeded, check.ToString());
        Assert.Contains("Looks good", check.Output);
    }

    [RealComponentsFact]
    public async Task The_namespace_root_is_the_trixie_rootfs_and_shares_the_run_and_scratch_directories()
    {
        var osRelease = await sandbox.InNamespaceAsync("cat", "/etc/os-release");
        Assert.True(osRelease.Succeeded, osRelease.ToString());
        Assert.Contains("VERSION_CODENAME=trixie", osRelease.Stdout);

        // a file written by the host in the shared directory is seen at the same path inside
        var dir = sandbox.CreateSharedDirectory("sandbox-test-");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "hello"), "from the host");
            var cat = await sandbox.InNamespaceAsync("cat", Path.Combine(dir, "hello"));
            Assert.True(cat.Succeeded, cat.ToString());
            Assert.Equal("from the host", cat.Stdout.TrimEnd('\n'));
        }
        finally { Directory.Delete(dir, recursive: true); }
        Assert.True(File.Exists(sandbox.HostPath("/etc/crsc-sandbox/containerd/config.toml")));
    }

    [RealComponentsFact]
    public async Task Containerd_answers_on_the_socket_shared_with_the_host()
    {
        Assert.True(File.Exists(sandbox.CriSocketPath), $"no socket at {sandbox.CriSocketPath}");

        var version = await sandbox.InNamespaceAsync("ctr", "--address", sandbox.CriSocketPath, "version");
        Assert.True(version.Succeeded, version.ToString());
        Assert.Matches(@"Server:\s+Version:\s+v?2\.([1-9]|\d\d)", version.Stdout);

        var plugins = await sandbox.InNamespaceAsync("ctr", "--address", sandbox.CriSocketPath, "plugins", "ls");
        Assert.Matches(@"io\.containerd\.grpc\.v1\s+cri\s+.*\sok", plugins.Stdout);
    }

    [RealComponentsFact]
    public async Task Setting_up_and_starting_again_changes_nothing_that_runs()
    {
        var pids = new[] { "ns-holder.pid", "registry.pid", "containerd.pid" }
            .ToDictionary(f => f, f => File.ReadAllText(Path.Combine(sandbox.RunDirectory, f)).Trim());
        foreach (var script in new[] { "setup-rootfs.sh", "ns-up.sh", "setup-containerd.sh", "start-containerd.sh" })
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var again = await sandbox.RunSandboxScriptAsync(script, TimeSpan.FromMinutes(2));
            Assert.True(again.Succeeded, $"{script}: {again}");
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"{script} took {sw.Elapsed.TotalSeconds:0} s on a second run");
        }
        foreach (var (file, pid) in pids)
            Assert.Equal(pid, File.ReadAllText(Path.Combine(sandbox.RunDirectory, file)).Trim());
    }

    [RealComponentsFact]
    public async Task The_loopback_registry_serves_the_busybox_image()
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://{sandbox.RegistryAddress}/"), Timeout = TimeSpan.FromSeconds(30) };
        using var request = new HttpRequestMessage(HttpMethod.Get, "v2/crsc-sandbox/busybox/manifests/1");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.oci.image.manifest.v1+json"));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.docker.distribution.manifest.v2+json"));
        using var response = await http.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, $"GET manifest: {(int)response.StatusCode}");

        using var manifest = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var layers = manifest.RootElement.GetProperty("layers");
        Assert.Equal(1, layers.GetArrayLength());

        // the layer is really there and its content matches its digest
        var digest = layers[0].GetProperty("digest").GetString()!;
        var blob = await http.GetByteArrayAsync($"v2/crsc-sandbox/busybox/blobs/{digest}");
        Assert.Equal(digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(blob)));
        Assert.Equal(layers[0].GetProperty("size").GetInt64(), blob.LongLength);

        // and the tools inside see the same image
        var inspect = await sandbox.InNamespaceAsync("skopeo", "inspect", "--config", "--tls-verify=false", $"docker://{sandbox.BusyboxImage}");
        Assert.True(inspect.Succeeded, inspect.ToString());
        using var config = JsonDocument.Parse(inspect.Stdout);
        Assert.Equal("/bin/sh", config.RootElement.GetProperty("config").GetProperty("Entrypoint")[0].GetString());
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Crsc.E2E.Tests.Sandbox;
using Crsc.Testing;

namespace Crsc.E2E.Tests.Registry;

/// <summary>
/// Debian's <c>docker-registry</c> (distribution 2.8) on the host, on a free 127.0.0.1 port with its own config and
/// storage in a temp directory, optionally behind htpasswd basic auth. Killed and removed on dispose.
/// </summary>
public sealed class DockerRegistry : IAsyncDisposable
{
    public const string Binary = "/usr/bin/docker-registry";
    public const string Htpasswd = "/usr/bin/htpasswd";
    public const string Skopeo = "/usr/bin/skopeo";

    private readonly TempDir _dir;
    private readonly Process _process;
    private readonly StringBuilder _output;

    private DockerRegistry(TempDir dir, Process process, StringBuilder output, int port)
    {
        _dir = dir;
        _process = process;
        _output = output;
        Port = port;
    }

    public int Port { get; }
    public string Host => $"127.0.0.1:{Port}";
    public string Output { get { lock (_output) return _output.ToString(); } }

    /// <summary>Null when every program the round trip needs is installed; otherwise what is missing and how to get it.</summary>
    public static string? Missing()
    {
        var missing = new[] { Binary, Skopeo, Htpasswd }.Where(p => !File.Exists(p)).ToList();
        return missing.Count == 0 ? null
            : $"missing {string.Join(", ", missing)}: install the Debian packages docker-registry, skopeo and apache2-utils (make deps / .ci/deps.sh)";
    }

    public static async Task<DockerRegistry> StartAsync(string? user = null, string? password = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            try { return await TryStartAsync(user, password); }
            catch (IOException) when (attempt < 3) { /* the free port was taken in between; pick another */ }
        }
    }

    private static async Task<DockerRegistry> TryStartAsync(string? user, string? password)
    {
        var dir = new TempDir("crsc-registry-");
        try
        {
            var port = LoopbackPorts.Free();
            var storage = dir.Combine("storage");
            Directory.CreateDirectory(storage);
            var config = new StringBuilder($"""
                version: 0.1
                log:
                  level: info
                  accesslog:
                    disabled: true
                storage:
                  filesystem:
                    rootdirectory: {storage}
                  delete:
                    enabled: true
                http:
                  addr: 127.0.0.1:{port}
                  secret: crsc-e2e-not-secret

                """);
            if (user is not null)
            {
                // bcrypt, as distribution's htpasswd backend requires
                var line = await CommandRunner.RunAsync(Htpasswd, ["-Bbn", user, password ?? ""], timeout: TimeSpan.FromSeconds(30));
                if (!line.Succeeded) throw new InvalidOperationException($"htpasswd failed: {line}");
                var htpasswd = dir.Combine("htpasswd");
                await File.WriteAllTextAsync(htpasswd, line.Stdout.Trim() + "\n");
                config.Append($"""
                    auth:
                      htpasswd:
                        realm: crsc-e2e
                        path: {htpasswd}

                    """);
            }
            var configPath = dir.Combine("config.yml");
            await File.WriteAllTextAsync(configPath, config.ToString());

            var psi = new ProcessStartInfo(Binary)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add("serve");
            psi.ArgumentList.Add(configPath);
            foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("REGISTRY_", StringComparison.Ordinal)).ToList())
                psi.Environment.Remove(key);
            var output = new StringBuilder();
            var process = new Process { StartInfo = psi };
            process.OutputDataReceived += (_, e) => { if (e.Data is { } l) lock (output) output.AppendLine(l); };
            process.ErrorDataReceived += (_, e) => { if (e.Data is { } l) lock (output) output.AppendLine(l); };
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var registry = new DockerRegistry(dir, process, output, port);
            try
            {
                await registry.WaitReadyAsync();
            }
            catch
            {
                await registry.DisposeAsync();
                throw;
            }
            return registry;
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    private async Task WaitReadyAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (_process.HasExited)
            {
                var output = Output;
                if (output.Contains("address already in use", StringComparison.Ordinal)) throw new IOException(output);
                throw new InvalidOperationException($"docker-registry exited with {_process.ExitCode}:\n{output}");
            }
            try
            {
                using var response = await http.GetAsync($"http://{Host}/v2/");
                if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(50);
        }
        throw new TimeoutException($"docker-registry did not answer on {Host} within 30 s:\n{Output}");
    }

    /// <summary>
    /// <c>skopeo copy docker://HOST/repo:tag oci:DIR:tag</c> (plain HTTP, any signature policy) into a fresh OCI layout
    /// under this registry's temp directory; returns the layout's directory.
    /// </summary>
    public async Task<string> PullWithSkopeoAsync(string repository, string tag, string? user = null, string? password = null)
    {
        var layout = _dir.Combine($"oci-{Guid.NewGuid():N}");
        var home = _dir.Combine("home");
        Directory.CreateDirectory(home);
        var policy = _dir.Combine("policy.json");
        await File.WriteAllTextAsync(policy, """{"default":[{"type":"insecureAcceptAnything"}]}""");
        // keep the image as it is: no compression of the uncompressed layer, and fail rather than change a digest
        List<string> args = ["--policy", policy, "copy", "--src-tls-verify=false", "--dest-oci-accept-uncompressed-layers", "--preserve-digests"];
        if (user is not null) args.AddRange(["--src-creds", $"{user}:{password}"]);
        else args.Add("--src-no-creds");
        args.AddRange([$"docker://{Host}/{repository}:{tag}", $"oci:{layout}:{tag}"]);
        var result = await CommandRunner.RunAsync(Skopeo, args, timeout: TimeSpan.FromMinutes(2),
            environment: new Dictionary<string, string> { ["HOME"] = home, ["TMPDIR"] = _dir.Path, ["XDG_RUNTIME_DIR"] = home });
        if (!result.Succeeded)
            throw new InvalidOperationException($"skopeo {string.Join(' ', args)} failed: {result}\n--- registry ---\n{Output}");
        return layout;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
        _dir.Dispose();
    }
}

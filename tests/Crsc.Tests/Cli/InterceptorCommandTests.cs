using System.Net;
using System.Net.Sockets;
using System.Text;
using Crsc.Api;
using Crsc.Api.Kubernetes;
using Crsc.Cli;
using Crsc.Controllers.Workloads;
using Crsc.Interceptor;
using Crsc.Testing;

namespace Crsc.Tests.Cli;

public sealed class InterceptorCommandTests
{
    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await new CommandLineParser(Commands.Root(), o, e).RunAsync(args, CancellationToken.None);
        return (code, o.ToString(), e.ToString());
    }

    [Theory]
    [InlineData("needs --listen", "--upstream", "127.0.0.1:1")]
    [InlineData("needs --upstream", "--listen", ":8080")]
    [InlineData("--listen 'eighty' is not an address", "--listen", "eighty", "--upstream", "1")]
    [InlineData("--listen ':70000' is not an address", "--listen", ":70000", "--upstream", "1")]
    [InlineData("--upstream '0.0.0.0:80' is not an address to connect to", "--listen", ":1", "--upstream", "0.0.0.0:80")]
    [InlineData("--upstream 'app:80' is not an address", "--listen", ":1", "--upstream", "app:80")]
    [InlineData("--mode 'udp' is not a mode: http or tcp", "--listen", ":1", "--upstream", "2", "--mode", "udp")]
    [InlineData("--max-queue '-1' is not a whole number", "--listen", ":1", "--upstream", "2", "--max-queue=-1")]
    [InlineData("--max-queued-bytes 'lots' is not a size", "--listen", ":1", "--upstream", "2", "--max-queued-bytes", "lots")]
    [InlineData("--max-wait '30' has no unit", "--listen", ":1", "--upstream", "2", "--max-wait", "30")]
    [InlineData("--max-hold 'forever' is not a duration", "--listen", ":1", "--upstream", "2", "--max-hold", "forever")]
    [InlineData("--max-wait 'soon' is not a duration", "--listen", ":1", "--upstream", "2", "--max-wait", "soon")]
    [InlineData("--listen names 2 address(es) and --upstream 1", "--listen", ":1,:2", "--upstream", "3")]
    [InlineData("--listen names port 1 twice", "--listen", ":1,127.0.0.1:1", "--upstream", "3,4")]
    [InlineData("--listen 'x' is not an address", "--listen", ":1,x", "--upstream", "3,4")]
    [InlineData("--control-socket 'control.sock' is not an absolute path", "--listen", ":1", "--upstream", "2", "--control-socket", "control.sock")]
    [InlineData("--replay-methods 'post' is not none, all, non-GET or a comma list", "--listen", ":1", "--upstream", "2", "--control-socket", "/run/c.sock", "--replay-methods", "post")]
    [InlineData("--replay-methods needs --mode http", "--listen", ":1", "--upstream", "2", "--control-socket", "/run/c.sock", "--replay-methods", "all", "--mode", "tcp")]
    [InlineData("--replay-methods needs --replay-log PATH or --control-socket", "--listen", ":1", "--upstream", "2", "--replay-methods", "all")]
    [InlineData("--replay-log 'replay.log' is not an absolute path", "--listen", ":1", "--upstream", "2", "--replay-methods", "all", "--replay-log", "replay.log")]
    [InlineData("--replay-max-bytes '1k' is not a size of at least 4096 bytes", "--listen", ":1", "--upstream", "2", "--control-socket", "/run/c.sock", "--replay-methods", "non-GET", "--replay-max-bytes", "1k")]
    [InlineData("--replay-max-entries '0' is not a positive whole number", "--listen", ":1", "--upstream", "2", "--control-socket", "/run/c.sock", "--replay-methods", "POST", "--replay-max-entries", "0")]
    [InlineData("--replay-log needs --replay-methods (replay is off: none)", "--listen", ":1", "--upstream", "2", "--replay-log", "/run/replay.log")]
    [InlineData("--metrics-listen 'metrics' is not an address", "--listen", ":1", "--upstream", "2", "--metrics-listen", "metrics")]
    [InlineData("--metrics-listen port 1 is one of --listen's ports", "--listen", ":1", "--upstream", "2", "--metrics-listen", "127.0.0.1:1")]
    public async Task Bad_input_is_a_usage_error_naming_it(string expected, params string[] args)
    {
        var (code, _, err) = await Run(["interceptor", .. args]);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains(expected, err);
        Assert.Contains("crsc interceptor --help", err);
    }

    [Fact]
    public async Task Help_names_every_flag_and_the_control_protocol()
    {
        var (code, output, _) = await Run("interceptor", "--help");
        Assert.Equal(ExitCodes.Ok, code);
        foreach (var flag in new[] { "--listen ADDR", "--upstream ADDR", "--mode MODE", "--control-socket PATH", "--max-queue N", "--max-queued-bytes SIZE", "--max-wait DURATION", "--max-hold DURATION" })
            Assert.Contains(flag, output);
        foreach (var flag in new[] { "--replay-methods METHODS", "--replay-log PATH", "--replay-max-bytes SIZE", "--replay-max-entries N" })
            Assert.Contains(flag, output);
        Assert.Contains("checkpointed POS", output);
        Assert.Contains("--metrics-listen ADDR", output);
        Assert.Contains("hold [REASON]", output);
        Assert.Contains("Retry-After", output);
    }

    /// <summary>The sections of a help text, by heading ("" for what comes before the first).</summary>
    private static Dictionary<string, string> Sections(string help)
    {
        var sections = new Dictionary<string, string>();
        var heading = "";
        foreach (var line in help.Split('\n'))
        {
            if (line is "Usage:" or "Options:" or "Examples:" || line.StartsWith("Usage: ", StringComparison.Ordinal)) heading = line.Split(':')[0];
            sections[heading] = sections.GetValueOrDefault(heading, "") + line + "\n";
        }
        return sections;
    }

    [Fact]
    public async Task The_sidecars_own_binary_has_the_verbs_options_description_and_examples()
    {
        var (code, verb, _) = await Run("interceptor", "--help");
        Assert.Equal(ExitCodes.Ok, code);
        var o = new StringWriter();
        var small = InterceptorCommand.Spec(InterceptorCommand.ExecutableName, InterceptorCommand.ExecutableName, () => Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        Assert.Equal(ExitCodes.Ok, await new CommandLineParser(small, o, new StringWriter()).RunAsync(["--help"], CancellationToken.None));
        var (a, b) = (Sections(verb), Sections(o.ToString()));
        Assert.Equal(["", "Usage", "Options", "Examples"], a.Keys);
        Assert.Equal(a.Keys, b.Keys);
        Assert.Equal(a[""], b[""]);
        Assert.Equal(a["Options"], b["Options"]);
        Assert.Equal(a["Examples"].Replace("crsc interceptor ", "crsc-interceptor "), b["Examples"]);
        Assert.Contains("Usage: crsc interceptor [options]", a["Usage"]);
        Assert.Contains("Usage: crsc-interceptor [options]", b["Usage"]);
    }

    [Fact]
    public async Task The_injected_sidecars_command_line_is_what_crsc_interceptor_accepts()
    {
        var d = new Deployment
        {
            Metadata = new ObjectMeta
            {
                Namespace = "shop", Name = "web",
                Annotations = new()
                {
                    [Annotations.Interceptor] = "true", [Annotations.InterceptorPort] = "http:18080",
                    [Annotations.InterceptorReplay] = "true", [Annotations.InterceptorReplayMethods] = "non-GET",
                },
            },
            Spec = new DeploymentSpec
            {
                Template = new PodTemplateSpec
                {
                    Spec = new PodSpec { Containers = [new Container { Name = "app", Image = "app:1", Ports = [new ContainerPort { Name = "http", Port = 8080, Protocol = "TCP" }] }] },
                },
            },
        };
        Assert.Null(InterceptorInjection.Reconcile(d, new InterceptorSidecarOptions()).Error);
        var sidecar = d.Spec.Template.Spec.Containers.Single(c => c.Name == "crsc-interceptor");
        Assert.Equal(["/usr/bin/" + InterceptorCommand.ExecutableName], sidecar.Command!);

        // read as the small binary reads them, without running it
        var small = InterceptorCommand.Spec(InterceptorCommand.ExecutableName, InterceptorCommand.ExecutableName, () => Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        ParsedCommand? parsed = null;
        var probe = new CommandSpec(small.Name, small.Summary) { Options = small.Options, Handler = (p, _) => { parsed = p; return Task.FromResult(ExitCodes.Ok); } };
        var err = new StringWriter();
        Assert.True(await new CommandLineParser(probe, new StringWriter(), err).RunAsync([.. sidecar.Args!], CancellationToken.None) == ExitCodes.Ok, err.ToString());
        var (options, control, replay, problem) = InterceptorCommand.ParseWithReplay(parsed!);
        Assert.Null(problem);
        var proxy = Assert.Single(options!);
        Assert.Equal(("0.0.0.0:8080", "127.0.0.1:18080", InterceptorMode.Http), (proxy.Listen.ToString(), proxy.Upstream.ToString(), proxy.Mode));
        Assert.Equal("/run/crsc-interceptor/control.sock", control);
        Assert.Equal("/run/crsc-interceptor/replay.log", replay!.LogPath);
        var (metrics, metricsProblem) = InterceptorCommand.ParseMetricsListen(parsed!, options!);
        Assert.Null(metricsProblem);
        Assert.Equal(9464, metrics!.Port);
    }

    [Theory]
    [InlineData("127.0.0.1:8080", "127.0.0.1:8080")]
    [InlineData(":8080", "0.0.0.0:8080")]
    [InlineData("8080", "127.0.0.1:8080")]
    [InlineData("localhost:8080", "127.0.0.1:8080")]
    [InlineData("[::1]:8080", "[::1]:8080")]
    public void Addresses_parse(string text, string expected)
    {
        var fallback = text.StartsWith(':') ? IPAddress.Any : IPAddress.Loopback;
        Assert.True(InterceptorCommand.TryParseEndPoint(text, fallback, out var ep));
        Assert.Equal(expected, ep.ToString());
    }

    [Fact]
    public async Task A_port_in_use_fails_naming_listen()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var (code, _, err) = await Run("interceptor", "--listen", taken.LocalEndpoint.ToString()!, "--upstream", "1");
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("(--listen)", err);
    }

    [Fact]
    public async Task Runs_the_proxy_and_the_control_socket_until_cancelled()
    {
        using var dir = new TempDir();
        var control = dir.Combine("control.sock");
        var listen = LoopbackPorts.Free();
        using var cts = new CancellationTokenSource();
        var o = new StringWriter();
        var e = new StringWriter();
        var run = new CommandLineParser(Commands.Root(), o, e).RunAsync(
            ["interceptor", "--listen", $"127.0.0.1:{listen}", "--upstream", "127.0.0.1:1", "--control-socket", control, "--max-queue", "0"], cts.Token);
        await Eventually.TrueAsync(() => File.Exists(control), "control socket made");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(control));

        using (var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await s.ConnectAsync(new UnixDomainSocketEndPoint(control));
            await s.SendAsync(Encoding.ASCII.GetBytes("hold test\n"));
            var buffer = new byte[4096];
            var answer = Encoding.ASCII.GetString(buffer, 0, await s.ReceiveAsync(buffer));
            Assert.StartsWith("ok {\"held\":true", answer);
        }
        // held with no queue allowed: the proxy answers 503 at once
        using (var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await c.ConnectAsync(IPAddress.Loopback, listen);
            await c.SendAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
            var buffer = new byte[4096];
            var response = Encoding.ASCII.GetString(buffer, 0, await c.ReceiveAsync(buffer));
            Assert.StartsWith("HTTP/1.1 503 Service Unavailable", response);
        }
        await cts.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await run.WaitAsync(Eventually.DefaultTimeout));
        Assert.False(File.Exists(control));
    }

    [Fact]
    public async Task Metrics_listen_serves_the_counters_and_health_until_cancelled()
    {
        var listen = LoopbackPorts.Free();
        var metricsPort = LoopbackPorts.Free();
        using var cts = new CancellationTokenSource();
        var o = new StringWriter();
        var e = new StringWriter();
        var run = new CommandLineParser(Commands.Root(), o, e).RunAsync(
            ["interceptor", "--listen", $"127.0.0.1:{listen}", "--upstream", "127.0.0.1:1", "--metrics-listen", $"127.0.0.1:{metricsPort}"], cts.Token);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{metricsPort}") };
        string? text = null;
        await Eventually.TrueAsync(async () =>
        {
            try { text = await http.GetStringAsync("/metrics"); return true; }
            catch (HttpRequestException) { return false; }
        }, "metrics served");
        Assert.Contains("\ncrsc_interceptor_requests_forwarded_total 0\n", text);
        Assert.Contains("crsc_interceptor_held 0\n", text);
        Assert.DoesNotContain("replay", text); // replay is off
        Assert.Equal("ok\n", await http.GetStringAsync("/healthz"));
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/")).StatusCode);

        await cts.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await run.WaitAsync(Eventually.DefaultTimeout));
        using var after = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await Assert.ThrowsAsync<SocketException>(async () => await after.ConnectAsync(IPAddress.Loopback, metricsPort)); // closed
    }

    [Fact]
    public async Task A_metrics_port_in_use_fails_naming_metrics_listen()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var (code, _, err) = await Run("interceptor", "--listen", $"127.0.0.1:{LoopbackPorts.Free()}", "--upstream", "1", "--metrics-listen", taken.LocalEndpoint.ToString()!);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("(--metrics-listen)", err);
    }

    [Fact]
    public async Task With_replay_methods_the_log_goes_beside_the_control_socket_and_status_shows_it()
    {
        using var dir = new TempDir();
        var control = dir.Combine("control.sock");
        var listen = LoopbackPorts.Free();
        using var cts = new CancellationTokenSource();
        var run = new CommandLineParser(Commands.Root(), new StringWriter(), new StringWriter()).RunAsync(
            ["interceptor", "--listen", $"127.0.0.1:{listen}", "--upstream", "127.0.0.1:1", "--control-socket", control,
                "--replay-methods", "POST,PUT", "--replay-max-entries", "7"], cts.Token);
        await Eventually.TrueAsync(() => File.Exists(control), "control socket made");
        Assert.True(File.Exists(dir.Combine("replay.log")));

        using (var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await s.ConnectAsync(new UnixDomainSocketEndPoint(control));
            await s.SendAsync(Encoding.ASCII.GetBytes("status\n"));
            var buffer = new byte[8192];
            var text = new StringBuilder();
            while (!text.ToString().EndsWith('\n')) text.Append(Encoding.ASCII.GetString(buffer, 0, await s.ReceiveAsync(buffer)));
            var replay = System.Text.Json.JsonDocument.Parse(text.ToString()[3..]).RootElement.GetProperty("replay");
            Assert.Equal("POST,PUT", replay.GetProperty("methods").GetString());
            Assert.Equal(dir.Combine("replay.log"), replay.GetProperty("path").GetString());
            Assert.Equal(0, replay.GetProperty("entries").GetInt32());
        }
        await cts.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await run.WaitAsync(Eventually.DefaultTimeout));
    }

    [Fact]
    public async Task Two_ports_are_proxied_and_one_hold_holds_both()
    {
        using var dir = new TempDir();
        var control = dir.Combine("control.sock");
        var (a, b) = (LoopbackPorts.Free(), LoopbackPorts.Free());
        using var cts = new CancellationTokenSource();
        var run = new CommandLineParser(Commands.Root(), new StringWriter(), new StringWriter()).RunAsync(
            ["interceptor", "--listen", $"127.0.0.1:{a},127.0.0.1:{b}", "--upstream", "127.0.0.1:1,127.0.0.1:2", "--control-socket", control,
                "--max-queue", "0"], cts.Token);
        await Eventually.TrueAsync(() => File.Exists(control), "control socket made");

        // not held: both ports answer, and as proxies (nothing listens upstream and --max-queue 0 leaves no room to wait
        // for it: 503 from the interceptor, saying so)
        foreach (var port in new[] { a, b })
        {
            var answer = await GetAsync(port);
            Assert.StartsWith("HTTP/1.1 503", answer);
            Assert.Contains("the app is not accepting connections", answer);
        }
        using (var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            await s.ConnectAsync(new UnixDomainSocketEndPoint(control));
            await s.SendAsync(Encoding.ASCII.GetBytes("hold both\n"));
            var buffer = new byte[4096];
            Assert.StartsWith("ok", Encoding.ASCII.GetString(buffer, 0, await s.ReceiveAsync(buffer)));
        }
        foreach (var port in new[] { a, b }) Assert.StartsWith("HTTP/1.1 503", await GetAsync(port));
        await cts.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await run.WaitAsync(Eventually.DefaultTimeout));
    }

    private static async Task<string> GetAsync(int port)
    {
        using var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await c.ConnectAsync(IPAddress.Loopback, port);
        await c.SendAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        var buffer = new byte[4096];
        return Encoding.ASCII.GetString(buffer, 0, await c.ReceiveAsync(buffer));
    }
}

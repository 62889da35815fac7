using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Crsc.Testing;
using Xunit.Abstractions;

namespace Crsc.E2E.Tests.Binary;

/// <summary>
/// <c>crsc-interceptor</c>, the published binary the injected sidecar runs: the same command as <c>crsc interceptor</c>,
/// small enough to keep the sidecar under 15 MB of RSS (issue 17). The RSS target is judged by the <c>interceptor</c>
/// benchmark (PASS/FAIL in <c>make bench</c>), not here: a memory figure asserted in a test depends on the machine.
/// </summary>
[Trait("Category", "E2E")]
public sealed class InterceptorBinaryTests(ITestOutputHelper output)
{
    /// <summary>The Options section of a help text.</summary>
    private static string Options(string help) => help[help.IndexOf("\nOptions:\n", StringComparison.Ordinal)..help.IndexOf("\nExamples:\n", StringComparison.Ordinal)];

    [Fact]
    public async Task Its_help_lists_the_options_of_crsc_interceptor_and_a_bad_option_exits_2_naming_it()
    {
        var (code, help, err) = await PublishedBinary.RunInterceptorAsync(["--help"]);
        Assert.True(code == 0, err);
        var (verbCode, verbHelp, verbErr) = await PublishedBinary.RunAsync(["interceptor", "--help"]);
        Assert.True(verbCode == 0, verbErr);
        Assert.Contains("Usage: crsc-interceptor [options]", help);
        Assert.Contains("--control-socket PATH", help);
        Assert.Equal(Options(verbHelp), Options(help));

        var (bad, stdout, stderr) = await PublishedBinary.RunInterceptorAsync(["--listen", ":1", "--upstream", "2", "--max-qeue", "3"]);
        Assert.Equal(2, bad);
        Assert.Equal("", stdout);
        Assert.StartsWith("crsc-interceptor: unknown option '--max-qeue' for 'crsc-interceptor' (did you mean '--max-queue'?)", stderr);
    }

    [Fact]
    public async Task It_proxies_10000_requests_says_its_RSS_and_stops_on_SIGTERM()
    {
        using var app = new FixedAnswerHttpApp();
        var listen = LoopbackPorts.Free();
        using var sidecar = Process.Start(PublishedBinary.StartInterceptor(["--listen", $"127.0.0.1:{listen}", "--upstream", app.EndPoint.ToString()]))!;
        var stdout = sidecar.StandardOutput.ReadToEndAsync();
        var stderr = sidecar.StandardError.ReadToEndAsync();
        try
        {
            await Eventually.TrueAsync(async () =>
            {
                if (sidecar.HasExited) return true;
                try { using var probe = new TcpClient(); await probe.ConnectAsync(IPAddress.Loopback, listen); return true; }
                catch (SocketException) { return false; }
            }, "crsc-interceptor listens", TimeSpan.FromSeconds(30));
            Assert.False(sidecar.HasExited, "crsc-interceptor exited: " + (sidecar.HasExited ? await stderr : ""));
            await Task.Delay(500);
            var idle = Rss(sidecar.Id, "VmRSS");

            // load: 4 kept-alive connections at once, 2,500 requests each
            var answered = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => Load(listen, 2500))));
            Assert.Equal([2500, 2500, 2500, 2500], answered);
            var peak = Rss(sidecar.Id, "VmHWM");
            output.WriteLine($"crsc-interceptor ({new FileInfo(PublishedBinary.InterceptorPath).Length} bytes): RSS idle {idle:0.0} MB, peak under load {peak:0.0} MB");

            using (var kill = Process.Start("kill", ["-TERM", sidecar.Id.ToString(CultureInfo.InvariantCulture)])) kill.WaitForExit();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await sidecar.WaitForExitAsync(cts.Token);
            Assert.Equal(0, sidecar.ExitCode);
            // its logs: JSON lines on stderr (not a terminal), nothing on stdout
            Assert.Equal("", await stdout);
            var lines = (await stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Contains(lines, l => l.Contains($"Interceptor listening on 127.0.0.1:{listen}", StringComparison.Ordinal));
            foreach (var line in lines)
            {
                using var doc = JsonDocument.Parse(line);
                Assert.True(doc.RootElement.TryGetProperty("level", out _), line);
            }
        }
        finally
        {
            if (!sidecar.HasExited) sidecar.Kill();
        }
    }

    /// <summary>Sends <paramref name="count"/> GETs on one connection, each after the last answer; the number answered 200.</summary>
    private static int Load(int port, int count)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        s.Connect(IPAddress.Loopback, port);
        var request = "GET /ping HTTP/1.1\r\nHost: e2e\r\n\r\n"u8.ToArray();
        var buffer = new byte[4096];
        var ok = 0;
        for (var i = 0; i < count; i++)
        {
            s.Send(request);
            var got = 0;
            while (got < FixedAnswerHttpApp.Response.Length)
            {
                var n = s.Receive(buffer, got, buffer.Length - got, SocketFlags.None);
                if (n == 0) return ok;
                got += n;
            }
            if (buffer.AsSpan(0, got).StartsWith("HTTP/1.1 200 "u8)) ok++;
        }
        return ok;
    }

    private static double Rss(int pid, string field) =>
        File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith(field + ":", StringComparison.Ordinal))
            .Select(l => double.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024).First();
}

using System.Net.Http;
using Crsc.Cli;
using Crsc.Testing;
using Microsoft.Extensions.Logging;

namespace Crsc.Interceptor.Tests;

/// <summary>
/// The command as the small <c>crsc-interceptor</c> binary runs it: its own root, not a verb of crsc (the flags themselves
/// are tested through <c>crsc interceptor</c> in tests/Crsc.Tests/Cli/InterceptorCommandTests.cs, the same code).
/// </summary>
public sealed class InterceptorCommandTests
{
    private static CommandSpec Root(StringWriter? log = null) =>
        InterceptorCommand.Spec(InterceptorCommand.ExecutableName, InterceptorCommand.ExecutableName,
            () => new LineLoggerFactory(log ?? new StringWriter(), json: true, TimeProvider.System));

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await new CommandLineParser(Root(), o, e).RunAsync(args, CancellationToken.None);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task Help_is_the_commands_own_under_the_binarys_name()
    {
        var (code, output, _) = await Run("--help");
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("\nUsage: crsc-interceptor [options]\n", output);
        Assert.Contains("  --listen ADDR ", output);
        Assert.Contains("  --replay-methods METHODS ", output);
        Assert.Contains("\n  crsc-interceptor --listen :8080 --upstream 127.0.0.1:18080", output);
        Assert.DoesNotContain("crsc interceptor --listen", output);
    }

    [Theory]
    [InlineData("unknown option '--listn' for 'crsc-interceptor' (did you mean '--listen'?)", "--listn", ":1")]
    [InlineData("option '--upstream' of 'crsc-interceptor' needs a value (ADDR)", "--listen", ":1", "--upstream")]
    [InlineData("'crsc-interceptor' takes no arguments, got 'interceptor'", "interceptor", "--listen", ":1", "--upstream", "2")]
    [InlineData("needs --upstream ADDR", "--listen", ":1")]
    [InlineData("--max-wait '30' has no unit", "--listen", ":1", "--upstream", "2", "--max-wait", "30")]
    public async Task Bad_input_exits_2_naming_it_under_the_binarys_name(string expected, params string[] args)
    {
        var (code, output, err) = await Run(args);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Equal("", output);
        Assert.StartsWith("crsc-interceptor: ", err);
        Assert.Contains(expected, err);
        Assert.EndsWith("Run 'crsc-interceptor --help' for usage.\n", err);
    }

    [Fact]
    public async Task It_proxies_a_request_to_the_app_and_logs_through_the_loggers_it_is_given()
    {
        await using var app = await EchoApp.StartAsync();
        var listen = LoopbackPorts.Free();
        var log = new StringWriter();
        using var cts = new CancellationTokenSource();
        var err = new StringWriter();
        var run = new CommandLineParser(Root(log), new StringWriter(), err).RunAsync(
            ["--listen", $"127.0.0.1:{listen}", "--upstream", app.EndPoint.ToString()], cts.Token);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{listen}") };
        string? answer = null;
        await Eventually.TrueAsync(async () =>
        {
            try { answer = await (await http.PostAsync("/hello", new StringContent("hi"))).Content.ReadAsStringAsync(); return true; }
            catch (HttpRequestException) { return false; }
        }, "the interceptor answers");
        Assert.Equal("POST /hello: hi", answer);
        Assert.Equal(("POST", "/hello", "hi"), app.Requests.Select(r => (r.Method, r.Path, r.Body)).Single());

        await cts.CancelAsync();
        Assert.Equal(ExitCodes.Ok, await run.WaitAsync(Eventually.DefaultTimeout));
        Assert.Equal("", err.ToString());
        Assert.Contains($"\"msg\":\"Interceptor listening on 127.0.0.1:{listen}, forwarding to {app.EndPoint}", log.ToString());
    }
}

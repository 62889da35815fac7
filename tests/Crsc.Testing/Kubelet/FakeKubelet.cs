using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;

namespace Crsc.Testing.Kubelet;

/// <summary>
/// Whatever answers at <c>kubelet.url</c>: the kubelet's checkpoint route (<c>POST /checkpoint/{ns}/{pod}/{container}</c>)
/// on 127.0.0.1, over HTTPS with the given serving certificate (or plain HTTP without one), answering what the test
/// says — a real kubelet, or anyone who bound the port while it was down.
/// </summary>
public sealed class FakeKubelet : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FakeKubelet(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
    }

    public Uri Url { get; }

    /// <summary>The routes asked for (<c>ns/pod/container</c>).</summary>
    public ConcurrentQueue<string> Requests { get; } = new();

    /// <summary>Status and body for a request (namespace, pod, container); default: 200 naming <c>/var/lib/kubelet/checkpoints/x.tar</c>.</summary>
    public Func<string, string, string, (int Status, string Body)> Answer { get; set; } =
        (_, _, _) => (200, ArchiveAnswer("/var/lib/kubelet/checkpoints/x.tar"));

    /// <summary>The kubelet's success body naming one archive path.</summary>
    public static string ArchiveAnswer(string path) =>
        "{\"items\":[" + System.Text.Json.JsonSerializer.Serialize(path) + "]}";

    /// <param name="certificate">the serving certificate (with its key); null: plain HTTP</param>
    public static async Task<FakeKubelet> StartAsync(X509Certificate2? certificate)
    {
        var port = LoopbackPorts.Free();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (certificate is not null) builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, listen =>
        {
            if (certificate is not null)
                listen.UseHttps(new HttpsConnectionAdapterOptions { ServerCertificate = certificate });
        }));
        var app = builder.Build();
        var kubelet = new FakeKubelet(app, new Uri($"{(certificate is null ? "http" : "https")}://127.0.0.1:{port}"));
        app.Run(kubelet.HandleAsync);
        await app.StartAsync();
        return kubelet;
    }

    private async Task HandleAsync(HttpContext ctx)
    {
        var segments = ctx.Request.Path.Value!.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (ctx.Request.Method != "POST" || segments.Length != 4 || segments[0] != "checkpoint")
        {
            ctx.Response.StatusCode = 404;
            await ctx.Response.WriteAsync("404 page not found\n");
            return;
        }
        var (ns, pod, container) = (Uri.UnescapeDataString(segments[1]), Uri.UnescapeDataString(segments[2]), Uri.UnescapeDataString(segments[3]));
        Requests.Enqueue($"{ns}/{pod}/{container}");
        var (status, body) = Answer(ns, pod, container);
        ctx.Response.StatusCode = status;
        if (status == 200) ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(body);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

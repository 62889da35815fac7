using Crsc.Testing.Kube;

namespace Crsc.Kube.Tests;

internal static class TestClients
{
    public static KubeApi For(FakeApiServer server, Action<KubeClientConfigBuilder>? configure = null)
    {
        var builder = new KubeClientConfigBuilder { Server = server.Url };
        configure?.Invoke(builder);
        return new KubeApi(builder.Build());
    }

    public static CancellationToken Timeout(int seconds = 20) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;
}

internal sealed class KubeClientConfigBuilder
{
    public required Uri Server { get; set; }
    public IBearerTokenSource? Token { get; set; }
    public string Namespace { get; set; } = "default";
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public KubeClientConfig Build() => new()
    {
        Server = Server, Token = Token, Namespace = Namespace, RequestTimeout = RequestTimeout, Source = "test",
    };
}

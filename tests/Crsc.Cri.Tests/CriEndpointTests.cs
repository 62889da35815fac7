using Crsc.Cri;

namespace Crsc.Cri.Tests;

public sealed class CriEndpointTests
{
    [Theory]
    [InlineData("unix:///var/run/crio/crio.sock", "/var/run/crio/crio.sock")]
    [InlineData("unix:///run/containerd/containerd.sock", "/run/containerd/containerd.sock")]
    [InlineData("unix:/run/containerd/containerd.sock", "/run/containerd/containerd.sock")]
    [InlineData("/run/containerd/containerd.sock", "/run/containerd/containerd.sock")]
    [InlineData("  /run/x.sock  ", "/run/x.sock")]
    [InlineData("", "/var/run/crio/crio.sock")]
    [InlineData(null, "/var/run/crio/crio.sock")]
    public void Parses_unix_endpoints_and_plain_paths(string? endpoint, string expected)
    {
        var e = CriEndpoint.Parse(endpoint);
        Assert.Equal(expected, e.SocketPath);
        Assert.Equal("unix://" + expected, e.ToString());
    }

    [Fact]
    public void Default_endpoint_is_crio() =>
        Assert.Equal("/var/run/crio/crio.sock", new CriClient(new CriClientOptions()).Endpoint.SocketPath);

    [Theory]
    [InlineData("tcp://127.0.0.1:1234")]
    [InlineData("npipe:////./pipe/containerd")]
    [InlineData("unix://relative/path.sock")]
    [InlineData("unix://")]
    public void Rejects_what_is_not_a_unix_socket(string endpoint)
    {
        var e = Assert.Throws<FormatException>(() => CriEndpoint.Parse(endpoint));
        Assert.Contains(endpoint, e.Message);
        Assert.False(CriEndpoint.TryParse(endpoint, out _));
    }
}

using Crsc.Controllers.Runtime;
using Crsc.Testing.Cri;
using Runtime.V1;
using ContainerFilter = Crsc.Controllers.Runtime.ContainerFilter;

namespace Crsc.Cri.Tests;

/// <summary>Messages split across DATA frames, large messages, and the size limit.</summary>
public sealed class FramingTests : IAsyncLifetime
{
    private FakeCriServer _cri = null!;

    public async Task InitializeAsync() => _cri = await FakeCriServer.StartAsync();
    public async Task DisposeAsync() => await _cri.DisposeAsync();

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(7)]
    public async Task A_message_split_across_data_frames_is_reassembled(int chunk)
    {
        _cri.AddRunningContainer("default", "counter", "count");
        _cri.ResponseChunkSize = chunk;
        using var runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = _cri.Endpoint });
        var c = Assert.Single(await runtime.ListContainersAsync(null, default));
        Assert.Equal("count", c.ContainerName);
        Assert.Equal("fake-cri", (await runtime.VersionAsync(default)).RuntimeName);
    }

    private void AddManyContainers(int n)
    {
        for (int i = 0; i < n; i++) _cri.AddRunningContainer("ns-" + new string('x', 400), $"pod-{i}", "app");
    }

    [Fact]
    public async Task A_large_message_spans_many_frames()
    {
        AddManyContainers(2000);
        _cri.ResponseChunkSize = 100_000;
        using var runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = _cri.Endpoint });
        var all = await runtime.ListContainersAsync(null, default);
        Assert.Equal(2000, all.Count);
        Assert.Equal(2000, all.Select(c => c.Id).Distinct().Count());
        Assert.True(new ListContainersResponse { Containers = { _cri.Containers } }.CalculateSize() > 1024 * 1024);
    }

    [Fact]
    public async Task A_message_over_the_receive_limit_is_refused()
    {
        AddManyContainers(100);
        using var runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = _cri.Endpoint, MaxReceiveMessageSize = 8 * 1024 });
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() => runtime.ListContainersAsync(null, default));
        Assert.Equal("ResourceExhausted", e.Code);
        Assert.Contains("larger than the limit", e.Message);
        // small answers still fit, on the same client
        Assert.Equal("fake-cri", (await runtime.VersionAsync(default)).RuntimeName);
    }

    [Fact]
    public async Task A_request_over_the_send_limit_is_not_sent()
    {
        using var runtime = new CriContainerRuntime(new CriClientOptions { Endpoint = _cri.Endpoint, MaxSendMessageSize = 1024 });
        var labels = Enumerable.Range(0, 100).ToDictionary(i => "label-" + i, i => new string('v', 20));
        var e = await Assert.ThrowsAsync<ContainerRuntimeException>(() =>
            runtime.ListContainersAsync(new ContainerFilter(Labels: labels), default));
        Assert.Equal("ResourceExhausted", e.Code);
        Assert.Empty(_cri.CallsTo("ListContainers"));
    }
}

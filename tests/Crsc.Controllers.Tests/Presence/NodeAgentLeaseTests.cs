using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Presence;
using Crsc.Testing;
using Crsc.Testing.Kube;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Controllers.Tests.Presence;

/// <summary>Each node's daemon says it is there by renewing its presence Lease, whatever the API server does meanwhile.</summary>
public sealed class NodeAgentLeaseTests
{
    private const string CrscNs = "crsc-system";
    private readonly ManualTimeProvider _time = new();
    private readonly FakeKube _kube;
    private readonly FakeResourceClient<Lease> _leasesApi;

    public NodeAgentLeaseTests()
    {
        _kube = new FakeKube(_time);
        _leasesApi = _kube.For(Resources.Leases);
    }

    private NodeAgentLease Agent(string node = "node-a") =>
        new(_kube, new NodeAgentLeaseOptions { Namespace = CrscNs, NodeName = node }, _time, NullLogger.Instance);

    private Lease? Stored(string node = "node-a") => _leasesApi.Stored(CrscNs, NodeLeases.NameFor(node));

    [Fact]
    public async Task Creates_its_lease_then_renews_it_every_interval()
    {
        var agent = Agent();
        var start = _time.GetUtcNow();
        using var stop = new CancellationTokenSource();
        var run = agent.RunAsync(stop.Token);

        await Eventually.TrueAsync(() => Stored() is not null, "the lease is created at once");
        var lease = Stored()!;
        Assert.Equal("crsc-node-node-a", lease.Metadata.Name);
        Assert.Equal(("node-a", 60, start, start), (lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds, lease.Spec.AcquireTime, lease.Spec.RenewTime));

        for (var i = 1; i <= 3; i++)
        {
            await Eventually.TrueAsync(() => _time.ActiveTimers > 0, "the agent waits for the next renewal");
            _time.Advance(TimeSpan.FromSeconds(20));
            var due = start + TimeSpan.FromSeconds(20 * i);
            await Eventually.TrueAsync(() => Stored()!.Spec.RenewTime == due, $"renewal {i}");
        }
        Assert.Equal(start, Stored()!.Spec.AcquireTime);
        Assert.Equal(1, _leasesApi.CallCount("create"));
        Assert.Equal(3, _leasesApi.CallCount("update"));
        Assert.Equal(1, _leasesApi.CallCount("get")); // updates go on from the lease last written

        await stop.CancelAsync();
        await run;
        Assert.NotNull(Stored()); // left in place: a restarted daemon renews it, an uninstalled one lets it go stale
    }

    [Fact]
    public async Task Goes_on_after_the_api_server_was_away_and_after_the_lease_was_changed_or_deleted()
    {
        var agent = Agent();
        await agent.RenewAsync(CancellationToken.None);

        _leasesApi.Unavailable = true;
        await Assert.ThrowsAsync<KubeUnavailableException>(() => agent.RenewAsync(CancellationToken.None));
        _leasesApi.Unavailable = false;
        _time.Advance(TimeSpan.FromSeconds(20));
        await agent.RenewAsync(CancellationToken.None);
        Assert.Equal(_time.GetUtcNow(), Stored()!.Spec.RenewTime);

        // someone else wrote it: a 409, then it reads it afresh
        var foreign = Stored()!;
        foreign.Metadata.Labels = new() { ["touched"] = "yes" };
        await _leasesApi.UpdateAsync(foreign, CancellationToken.None);
        await Assert.ThrowsAsync<ConflictException>(() => agent.RenewAsync(CancellationToken.None));
        _time.Advance(TimeSpan.FromSeconds(20));
        await agent.RenewAsync(CancellationToken.None);
        Assert.Equal(_time.GetUtcNow(), Stored()!.Spec.RenewTime);

        // deleted: made again
        await _leasesApi.DeleteAsync(CrscNs, NodeLeases.NameFor("node-a"), null, CancellationToken.None);
        await Assert.ThrowsAsync<NotFoundException>(() => agent.RenewAsync(CancellationToken.None));
        _time.Advance(TimeSpan.FromSeconds(20));
        await agent.RenewAsync(CancellationToken.None);
        Assert.Equal(_time.GetUtcNow(), Stored()!.Spec.RenewTime);
        Assert.Equal("node-a", Stored()!.Spec.HolderIdentity);
    }

    [Fact]
    public void Lease_names_are_valid_for_every_node_name()
    {
        Assert.Equal("crsc-node-worker-1.example.com", NodeLeases.NameFor("worker-1.example.com"));
        var longName = string.Join('.', Enumerable.Repeat(new string('a', 61) + "-b", 4)); // 255 characters
        var lease = NodeLeases.NameFor(longName);
        Assert.True(lease.Length <= 253, lease);
        Assert.StartsWith("crsc-node-aaa", lease);
        Assert.Matches("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", lease);
        Assert.NotEqual(lease, NodeLeases.NameFor(longName[..^1] + "c"));
    }
}

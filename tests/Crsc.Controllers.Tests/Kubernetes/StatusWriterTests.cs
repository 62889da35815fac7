using Crsc.Testing.Kube;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Tests.Fakes;

namespace Crsc.Controllers.Tests.Kubernetes;

/// <summary>The one read-modify-write, against the fake API server's real resourceVersions and 409s.</summary>
public sealed class StatusWriterTests
{
    private const string Ns = "shop";
    private readonly FakeResourceClient<ContainerCheckpoint> _api = new FakeKube().For(CrscResources.ContainerCheckpoints);

    private async Task<ContainerCheckpoint> CreateAsync() =>
        await _api.CreateAsync(new ContainerCheckpoint
        {
            Metadata = new ObjectMeta { Namespace = Ns, Name = "ckpt-1" },
            Spec = new ContainerCheckpointSpec { PodName = "cart-0", Container = "app" },
        }, CancellationToken.None);

    /// <summary>A real write by someone else (runs inside the fake's call, so it uses a verb the test ignores).</summary>
    private int _otherWrites;

    // a different value each time: a write that changes nothing keeps the resourceVersion (as the API server does)
    private void OtherWriter() =>
        _ = _api.PatchAsync(Ns, "ckpt-1", PatchType.Merge, "{\"metadata\":{\"labels\":{\"other\":\"x" + ++_otherWrites + "\"}}}", CancellationToken.None);

    private static Func<ContainerCheckpoint, bool> SetMessage(string message) => c =>
    {
        c.Status ??= new ContainerCheckpointStatus();
        if (c.Status.Message == message) return false;
        c.Status.Message = message;
        return true;
    };

    [Fact]
    public async Task Writes_the_change_and_leaves_the_input_alone()
    {
        var cached = await CreateAsync();
        var written = await StatusWriter.UpdateStatusAsync(_api, cached, SetMessage("hello"), CancellationToken.None);
        Assert.Equal("hello", written!.Status!.Message);
        Assert.Equal("hello", _api.Stored(Ns, "ckpt-1")!.Status!.Message);
        Assert.Null(cached.Status); // the informer's copy is never changed in place
        Assert.NotEqual(cached.Metadata.ResourceVersion, written.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task Nothing_to_change_is_no_write()
    {
        var cached = await CreateAsync();
        var once = await StatusWriter.UpdateStatusAsync(_api, cached, SetMessage("hello"), CancellationToken.None);
        var writes = _api.CallCount("updateStatus");
        var again = await StatusWriter.UpdateStatusAsync(_api, once!, SetMessage("hello"), CancellationToken.None);
        Assert.Null(again);
        Assert.Equal(writes, _api.CallCount("updateStatus"));
        Assert.Equal(once!.Metadata.ResourceVersion, _api.Stored(Ns, "ckpt-1")!.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task A_conflict_reads_again_and_keeps_the_other_writers_fields()
    {
        var cached = await CreateAsync();
        // another writer gets in first: the cached copy's resourceVersion is stale
        var other = await _api.GetAsync(Ns, "ckpt-1", CancellationToken.None);
        other.Status = new ContainerCheckpointStatus { Node = "node-b" };
        await _api.UpdateStatusAsync(other, CancellationToken.None);

        var calls = 0;
        var written = await StatusWriter.UpdateStatusAsync(_api, cached, c => { calls++; return SetMessage("hello")(c); },
            CancellationToken.None);

        Assert.Equal(2, calls);
        Assert.Equal(2, _api.CallCount("get"));
        Assert.Equal("hello", written!.Status!.Message);
        var stored = _api.Stored(Ns, "ckpt-1")!;
        Assert.Equal("hello", stored.Status!.Message);
        Assert.Equal("node-b", stored.Status.Node);
        Assert.Null(cached.Status);
    }

    [Fact]
    public async Task A_guard_that_fails_on_the_fresh_copy_writes_nothing()
    {
        var cached = await CreateAsync();
        var other = await _api.GetAsync(Ns, "ckpt-1", CancellationToken.None);
        other.Status = new ContainerCheckpointStatus { Phase = ContainerCheckpointPhase.Completed };
        await _api.UpdateStatusAsync(other, CancellationToken.None);
        var writes = _api.CallCount("updateStatus");

        var written = await StatusWriter.UpdateStatusAsync(_api, cached, c =>
            c.Status?.Phase != ContainerCheckpointPhase.Completed && SetMessage("hello")(c), CancellationToken.None);

        Assert.Null(written);
        Assert.Equal(writes + 1, _api.CallCount("updateStatus")); // the stale write, then nothing
        Assert.Null(_api.Stored(Ns, "ckpt-1")!.Status!.Message);
    }

    [Fact]
    public async Task A_conflict_on_every_attempt_is_thrown_after_the_attempts()
    {
        var cached = await CreateAsync();
        var writes = _api.CallCount("updateStatus");
        // someone writes between every read and write of ours
        _api.BeforeCall = (verb, _) => { if (verb == "updateStatus") OtherWriter(); };
        var calls = 0;
        var ex = await Assert.ThrowsAsync<ConflictException>(() => StatusWriter.UpdateStatusAsync(_api, cached,
            c => { calls++; return SetMessage("hello")(c); }, CancellationToken.None, attempts: 3));

        Assert.Equal(409, ex.Code);
        Assert.Equal(3, calls);
        Assert.Equal(writes + 3, _api.CallCount("updateStatus"));
        Assert.Equal(2, _api.CallCount("get"));
        Assert.Null(_api.Stored(Ns, "ckpt-1")!.Status);
    }

    [Fact]
    public async Task A_deleted_object_is_null()
    {
        var cached = await CreateAsync();
        await _api.DeleteAsync(Ns, "ckpt-1", null, CancellationToken.None);
        Assert.Null(await StatusWriter.UpdateStatusAsync(_api, cached, SetMessage("hello"), CancellationToken.None));
    }

    [Fact]
    public async Task Deleted_between_the_conflict_and_the_read_is_null()
    {
        var cached = await CreateAsync();
        _api.BeforeCall = (verb, _) =>
        {
            if (verb == "updateStatus") OtherWriter();
            if (verb == "get") _api.DeleteAsync(Ns, "ckpt-1", null, CancellationToken.None).GetAwaiter().GetResult(); // completes synchronously
        };
        Assert.Null(await StatusWriter.UpdateStatusAsync(_api, cached, SetMessage("hello"), CancellationToken.None));
        Assert.Equal(1, _api.CallCount("get"));
    }

    [Fact]
    public async Task Update_writes_metadata_with_the_same_retry()
    {
        var cached = await CreateAsync();
        var other = await _api.GetAsync(Ns, "ckpt-1", CancellationToken.None);
        other.Metadata.Labels = new Dictionary<string, string> { ["team"] = "cart" };
        await _api.UpdateAsync(other, CancellationToken.None);

        var written = await StatusWriter.UpdateAsync(_api, cached, c =>
        {
            c.Metadata.Finalizers = ["crsc.io/archive"];
            return true;
        }, CancellationToken.None);

        Assert.Equal(["crsc.io/archive"], written!.Metadata.Finalizers!);
        Assert.Equal("cart", _api.Stored(Ns, "ckpt-1")!.Metadata.Labels!["team"]);
        Assert.Null(cached.Metadata.Finalizers);
    }
}

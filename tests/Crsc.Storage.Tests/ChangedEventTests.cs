using Crsc.Controllers.Storage;

namespace Crsc.Storage.Tests;

/// <summary>
/// <see cref="DiskCheckpointStore.Changed"/>: what the daemon's <c>store</c> health entry and <c>crsc_store_bytes</c> follow.
/// Fires after each change of what the store lists, and only then; a listener that throws never fails the change.
/// </summary>
public sealed class ChangedEventTests : IDisposable
{
    private readonly StoreFixture _f = new();
    public void Dispose() => _f.Dispose();

    private async Task<CheckpointInfo> IngestAsync(DiskCheckpointStore store, int seed)
    {
        var a = new TestArchive { PageBytes = 16 * 1024, Seed = seed };
        var info = await store.IngestAsync(_f.Stage(a), a.Source("cart"), new IngestOptions { Compression = CheckpointCompression.None },
            null, CancellationToken.None);
        _f.Time.Advance(TimeSpan.FromHours(1));
        return info;
    }

    [Fact]
    public async Task Fires_after_an_ingest_a_delete_and_a_retention_run_with_the_change_already_visible()
    {
        using var store = _f.Open();
        var seen = new List<int>();
        store.Changed += () => seen.Add(store.List().Count);

        var first = await IngestAsync(store, 1);
        var second = await IngestAsync(store, 2);
        var third = await IngestAsync(store, 3);
        Assert.Equal([1, 2, 3], seen);

        Assert.True(store.Delete(first.Id));
        Assert.Equal([1, 2, 3, 2], seen);

        // one event for the whole run, however many it deletes
        var result = store.ApplyRetention(new RetentionRequest { Default = new StoreRetention(KeepLast: 1) });
        Assert.Equal(second.Id, Assert.Single(result.Deleted).Checkpoint.Id);
        Assert.Equal([1, 2, 3, 2, 1], seen);
        Assert.Equal(third.Id, Assert.Single(store.List()).Id);
    }

    [Fact]
    public async Task Does_not_fire_when_nothing_changed()
    {
        using var store = _f.Open();
        var first = await IngestAsync(store, 1);
        await IngestAsync(store, 2);
        var fired = 0;
        store.Changed += () => fired++;

        Assert.False(store.Delete("20990101T000000Z-00000000")); // no such checkpoint
        Assert.Single(store.ApplyRetention(new RetentionRequest { Default = new StoreRetention(KeepLast: 1), DryRun = true }).Deleted);
        Assert.Empty(store.ApplyRetention(new RetentionRequest { Default = new StoreRetention(KeepLast: 5) }).Deleted);
        await store.SetPinnedAsync(first.Id, true, CancellationToken.None);
        var foreign = new TestArchive { Namespace = "other", Seed = 3 };
        await Assert.ThrowsAsync<ArchiveRejectedException>(() => store.IngestAsync(_f.Stage(foreign),
            foreign.Source("cart") with { Namespace = "shop" }, IngestOptions.Default, null, CancellationToken.None));

        Assert.Equal(0, fired);
        Assert.Equal(2, store.List().Count);
    }

    [Fact]
    public async Task A_listener_that_throws_does_not_fail_the_change_nor_keep_the_others_from_hearing_of_it()
    {
        using var store = _f.Open();
        var heard = 0;
        store.Changed += () => throw new InvalidOperationException("listener bug");
        store.Changed += () => heard++;

        var info = await IngestAsync(store, 1);
        Assert.Equal(info.Id, Assert.Single(store.List()).Id);
        Assert.True(store.Delete(info.Id));
        Assert.Empty(store.List());
        Assert.Equal(2, heard);
    }
}

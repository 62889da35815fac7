using Crsc.Controllers.Storage;

namespace Crsc.Storage.Tests;

public sealed class RetentionTests : IDisposable
{
    private readonly StoreFixture _f = new();
    public void Dispose() => _f.Dispose();

    /// <summary>Ingests one checkpoint per hour (the clock moves between them), returned oldest first.</summary>
    private async Task<List<CheckpointInfo>> SeedAsync(DiskCheckpointStore store, int count, string workload = "cart", string container = "cart",
        string ns = "shop", bool pinFirst = false)
    {
        var result = new List<CheckpointInfo>();
        for (var i = 0; i < count; i++)
        {
            var a = new TestArchive { Container = container, Namespace = ns, PageBytes = 64 * 1024, Seed = i };
            var info = await store.IngestAsync(_f.Stage(a), a.Source(workload) with { PodUid = null, PodName = null },
                new IngestOptions { Compression = CheckpointCompression.None, Pinned = pinFirst && i == 0 }, null, CancellationToken.None);
            result.Add(info);
            _f.Time.Advance(TimeSpan.FromHours(1));
        }
        return result;
    }

    private static List<string> Ids(IEnumerable<CheckpointInfo> c) => c.Select(x => x.Id).Order(StringComparer.Ordinal).ToList();

    [Fact]
    public async Task KeepLast_keeps_the_newest()
    {
        using var store = _f.Open();
        var c = await SeedAsync(store, 5);
        var result = store.ApplyRetention(new RetentionRequest { Default = new StoreRetention(KeepLast: 2) });
        Assert.Equal(Ids(c.Take(3)), Ids(result.Deleted.Select(d => d.Checkpoint)));
        Assert.All(result.Deleted, d => Assert.Equal(RetentionReason.KeepLast, d.Reason));
        Assert.Equal(Ids(c.Skip(3)), Ids(store.List()));
        Assert.Equal(c.Take(3).Sum(x => x.Size), result.BytesFreed);
        Assert.Equal(c.Skip(3).Sum(x => x.Size), result.BytesRemaining);
        Assert.All(c.Take(3), x => Assert.False(File.Exists(x.ArchivePath)));
    }

    [Fact]
    public async Task MaxAge_uses_the_injected_clock()
    {
        using var store = _f.Open();
        var c = await SeedAsync(store, 4); // created at t0, t0+1h, t0+2h, t0+3h; now t0+4h
        var policy = new RetentionRequest { Default = new StoreRetention(MaxAge: TimeSpan.FromMinutes(150)) };
        Assert.Equal(Ids(c.Take(2)), Ids(store.ApplyRetention(policy).Deleted.Select(d => d.Checkpoint)));
        _f.Time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(Ids(c.Skip(2).Take(1)), Ids(store.ApplyRetention(policy).Deleted.Select(d => d.Checkpoint)));
        Assert.All(store.ApplyRetention(policy with { DryRun = true }).Deleted, d => Assert.Equal(RetentionReason.MaxAge, d.Reason));
    }

    [Fact]
    public async Task MaxBytes_counts_from_the_newest()
    {
        using var store = _f.Open();
        var c = await SeedAsync(store, 4);
        var two = c[2].Size + c[3].Size;
        var result = store.ApplyRetention(new RetentionRequest { Default = new StoreRetention(MaxBytes: two) });
        Assert.Equal(Ids(c.Take(2)), Ids(result.Deleted.Select(d => d.Checkpoint)));
        Assert.All(result.Deleted, d => Assert.Equal(RetentionReason.MaxBytes, d.Reason));
    }

    [Fact]
    public async Task The_only_good_checkpoint_of_a_container_is_never_deleted()
    {
        using var store = _f.Open();
        var c = await SeedAsync(store, 3);
        // every rule says "delete all": the newest survives anyway
        var result = store.ApplyRetention(new RetentionRequest { Default = new StoreRetention(KeepLast: 0, MaxAge: TimeSpan.Zero, MaxBytes: 0), GlobalMaxBytes = 0 });
        Assert.Equal(Ids(c.Take(2)), Ids(result.Deleted.Select(d => d.Checkpoint)));
        Assert.Equal([c[2].Id], Ids(store.List()));
        Assert.False(result.QuotaSatisfied);

        // when the newest is damaged (not the size its manifest records), the newest intact one is the one kept
        var d = await SeedAsync(store, 2, workload: "api");
        await using (var fs = new FileStream(d[1].ArchivePath, FileMode.Open, FileAccess.Write)) fs.SetLength(10);
        result = store.ApplyRetention(new RetentionRequest { Default = new StoreRetention(KeepLast: 0) });
        Assert.Equal([d[1].Id], Ids(result.Deleted.Select(x => x.Checkpoint)));
        Assert.Contains(d[0].Id, Ids(store.List()));
    }

    [Fact]
    public async Task Pinned_checkpoints_are_never_deleted()
    {
        using var store = _f.Open();
        var c = await SeedAsync(store, 4, pinFirst: true);
        await store.SetPinnedAsync(c[1].Id, true, CancellationToken.None);
        Assert.True(store.Get(c[1].Id)!.Pinned);
        var result = store.ApplyRetention(new RetentionRequest { Default = new StoreRetention(KeepLast: 1), GlobalMaxBytes = 1 });
        Assert.Equal([c[2].Id], Ids(result.Deleted.Select(d => d.Checkpoint)));
        Assert.Equal(Ids([c[0], c[1], c[3]]), Ids(store.List()));

        await store.SetPinnedAsync(c[1].Id, false, CancellationToken.None);
        Assert.False(store.Get(c[1].Id)!.Pinned);
        result = store.ApplyRetention(new RetentionRequest { Default = new StoreRetention(KeepLast: 1) });
        Assert.Equal([c[1].Id], Ids(result.Deleted.Select(d => d.Checkpoint)));
    }

    [Fact]
    public async Task Global_quota_evicts_oldest_first_across_workloads()
    {
        using var store = _f.Open();
        var cart = await SeedAsync(store, 3, workload: "cart");
        var api = await SeedAsync(store, 3, workload: "api", container: "api");
        var total = cart.Concat(api).Sum(x => x.Size);
        var quota = total - cart[0].Size - cart[1].Size - cart[2].Size / 2; // needs three evictions
        var result = store.ApplyRetention(new RetentionRequest { GlobalMaxBytes = quota });
        // oldest first: cart's first two, then cart's newest is protected (only good one), so api's oldest
        Assert.Equal([cart[0].Id, cart[1].Id, api[0].Id], result.Deleted.Select(d => d.Checkpoint.Id).ToList());
        Assert.All(result.Deleted, d => Assert.Equal(RetentionReason.GlobalQuota, d.Reason));
        Assert.True(result.QuotaSatisfied);
        Assert.True(result.BytesRemaining <= quota);
        Assert.Equal(Ids([cart[2], api[1], api[2]]), Ids(store.List()));
    }

    [Fact]
    public async Task Per_workload_policies_override_the_default()
    {
        using var store = _f.Open();
        var cart = await SeedAsync(store, 3, workload: "cart");
        var api = await SeedAsync(store, 3, workload: "api", container: "api");
        var result = store.ApplyRetention(new RetentionRequest
        {
            Default = new StoreRetention(KeepLast: 1),
            PerWorkload = new Dictionary<WorkloadRef, StoreRetention> { [new WorkloadRef("shop", "api")] = new(KeepLast: 3) },
        });
        Assert.Equal(Ids(cart.Take(2)), Ids(result.Deleted.Select(d => d.Checkpoint)));
        Assert.Equal(4, store.List().Count);
        _ = api;
    }

    [Fact]
    public async Task Each_container_of_a_workload_keeps_its_own_newest()
    {
        using var store = _f.Open();
        var app = await SeedAsync(store, 2, workload: "web", container: "app");
        var sidecar = await SeedAsync(store, 2, workload: "web", container: "proxy");
        var result = store.ApplyRetention(new RetentionRequest { Default = new StoreRetention(KeepLast: 1) });
        Assert.Equal(Ids([app[0], sidecar[0]]), Ids(result.Deleted.Select(d => d.Checkpoint)));
    }

    [Fact]
    public async Task Dry_run_reports_and_deletes_nothing()
    {
        using var store = _f.Open();
        var c = await SeedAsync(store, 4);
        var files = _f.StoreFiles();
        var request = new RetentionRequest { Default = new StoreRetention(KeepLast: 1), DryRun = true };
        var dry = store.ApplyRetention(request);
        Assert.True(dry.DryRun);
        Assert.Equal(Ids(c.Take(3)), Ids(dry.Deleted.Select(d => d.Checkpoint)));
        Assert.Equal(files, _f.StoreFiles());
        Assert.Equal(4, store.List().Count);

        var real = store.ApplyRetention(request with { DryRun = false });
        Assert.Equal(dry.Deleted.Select(d => d.Checkpoint.Id), real.Deleted.Select(d => d.Checkpoint.Id));
        Assert.Equal(dry.BytesFreed, real.BytesFreed);
        Assert.Single(store.List());
    }

    [Fact]
    public async Task Delete_removes_manifest_and_archive()
    {
        using var store = _f.Open();
        var c = await SeedAsync(store, 2);
        Assert.True(store.Delete(c[0].Id));
        Assert.False(store.Delete(c[0].Id));
        Assert.Equal([c[1].Id], Ids(store.List()));
        Assert.Equal(2, _f.StoreFiles().Count);
    }
}

using System.Text;
using Crsc.Controllers.Storage;

namespace Crsc.Storage.Tests;

public sealed class RecoveryTests : IDisposable
{
    private readonly StoreFixture _f = new();
    public void Dispose() => _f.Dispose();

    [Fact]
    public async Task Recovery_removes_leftovers_and_reports_each_with_its_reason()
    {
        CheckpointInfo good, orphanArchive, orphanManifest, corrupt;
        using (var store = _f.Open())
        {
            CheckpointInfo Ingest(string workload) { var a = new TestArchive(); return store.IngestAsync(_f.Stage(a), a.Source(workload), IngestOptions.Default, null, CancellationToken.None).GetAwaiter().GetResult(); }
            good = Ingest("cart");
            orphanArchive = Ingest("orphan-archive");
            orphanManifest = Ingest("orphan-manifest");
            corrupt = Ingest("corrupt");
        }
        var dirOf = (CheckpointInfo c) => Path.GetDirectoryName(c.ArchivePath)!;
        File.Delete(Path.Combine(dirOf(orphanArchive), orphanArchive.Id + ".json"));
        File.Delete(orphanManifest.ArchivePath);
        await File.WriteAllTextAsync(Path.Combine(dirOf(corrupt), corrupt.Id + ".json"), "{\"formatVersion\":1,\"kind\":\"crsc.io/checkpoint-manifest\",\"id\":");
        var temp = Path.Combine(dirOf(good), ".tmp-20260301T110000Z-0badc0de.tar.zst");
        await File.WriteAllBytesAsync(temp, new byte[1000]);
        var tempManifest = Path.Combine(dirOf(good), ".tmp-20260301T110000Z-0badc0de.json");
        await File.WriteAllTextAsync(tempManifest, "{");
        Directory.CreateDirectory(_f.Staging);
        var stagedFile = Path.Combine(_f.Staging, "shop_cart_cart-0123456789ab.tar");
        await File.WriteAllBytesAsync(stagedFile, new byte[10]);
        var stranger = Path.Combine(dirOf(good), "notes.txt");
        await File.WriteAllTextAsync(stranger, "operator's notes");

        using (var store = _f.Open())
        {
            // listing never shows the broken ones, even before recovery
            Assert.Equal([good.Id], store.List().Select(c => c.Id));

            var report = store.Recover();
            var removed = report.Removed.ToDictionary(r => r.Path, r => r.Reason);
            Assert.Equal(RecoveryReason.StagingLeftover, removed[stagedFile]);
            Assert.Equal(RecoveryReason.TempFile, removed[temp]);
            Assert.Equal(RecoveryReason.TempFile, removed[tempManifest]);
            Assert.Equal(RecoveryReason.ArchiveWithoutManifest, removed[orphanArchive.ArchivePath]);
            Assert.Equal(RecoveryReason.ManifestWithoutArchive, removed[Path.Combine(dirOf(orphanManifest), orphanManifest.Id + ".json")]);
            Assert.Equal(RecoveryReason.CorruptManifest, removed[Path.Combine(dirOf(corrupt), corrupt.Id + ".json")]);
            Assert.Equal(RecoveryReason.ArchiveWithoutManifest, removed[corrupt.ArchivePath]);
            Assert.Equal(7, report.Removed.Count);
            Assert.Contains(report.Warnings, w => w.Contains("notes.txt"));
            Assert.True(File.Exists(stranger), "files crsc does not know are left alone");

            Assert.Empty(Directory.EnumerateFileSystemEntries(_f.Staging));
            Assert.Equal([$"shop/cart/cart/{good.Id}.json", $"shop/cart/cart/{good.Id}.tar.zst", "shop/cart/cart/notes.txt"], _f.StoreFiles());
            Assert.True((await store.VerifyAsync(good.Id, CancellationToken.None)).Valid);

            var again = store.Recover();
            Assert.Empty(again.Removed);
        }
    }

    [Fact]
    public void A_staging_directory_pointing_at_foreign_files_keeps_them_and_reports_each()
    {
        // stagingDir set to a shared directory by mistake: recovery used to delete all of it, recursively
        Directory.CreateDirectory(_f.Staging);
        var leftover = Path.Combine(_f.Staging, "shop_cart_cart-0123456789ab.tar");
        File.WriteAllBytes(leftover, new byte[10]);
        var foreign = new[]
        {
            Path.Combine(_f.Staging, "passwd"),
            Path.Combine(_f.Staging, "backup.tar"),
            Path.Combine(_f.Staging, "shop_cart_cart-0123456789ab.tar.bak"),
            Path.Combine(_f.Staging, "shop_cart_cart-xyz.tar"),
        };
        foreach (var f in foreign) File.WriteAllText(f, "not crsc's");
        var foreignDir = Path.Combine(_f.Staging, "data");
        Directory.CreateDirectory(Path.Combine(foreignDir, "inner"));
        File.WriteAllText(Path.Combine(foreignDir, "inner", "file"), "x");
        var namedLikeStagingDir = Path.Combine(_f.Staging, "shop_cart_cart-ba9876543210.tar");
        Directory.CreateDirectory(namedLikeStagingDir);
        File.WriteAllText(Path.Combine(namedLikeStagingDir, "file"), "x");

        using var store = _f.Open(o => o with { StagingDirectory = _f.Staging });
        var report = store.Recover();

        Assert.Equal([new RecoveredItem(leftover, RecoveryReason.StagingLeftover)], report.Removed);
        foreach (var f in foreign)
        {
            Assert.True(File.Exists(f), f);
            Assert.Contains(report.Warnings, w => w.Contains(f + " ") && w.Contains("not a crsc staging file"));
        }
        Assert.True(File.Exists(Path.Combine(foreignDir, "inner", "file")));
        Assert.True(File.Exists(Path.Combine(namedLikeStagingDir, "file")));
        Assert.Contains(report.Warnings, w => w.Contains(foreignDir + " "));
        Assert.Contains(report.Warnings, w => w.Contains(namedLikeStagingDir + " "));
    }

    [Fact]
    public async Task A_manifest_of_a_newer_format_is_left_alone()
    {
        CheckpointInfo info;
        using (var store = _f.Open())
        {
            var a = new TestArchive();
            info = await store.IngestAsync(_f.Stage(a), a.Source(), IngestOptions.Default, null, CancellationToken.None);
        }
        var manifest = Path.Combine(Path.GetDirectoryName(info.ArchivePath)!, info.Id + ".json");
        // one past the newest format this crsc reads
        var newer = ManifestDocument.CurrentFormatVersion + 1;
        await File.WriteAllTextAsync(manifest, (await File.ReadAllTextAsync(manifest)).Replace("\"formatVersion\": 2", $"\"formatVersion\": {newer}"));
        using (var store = _f.Open())
        {
            Assert.Empty(store.List()); // this version cannot read it
            var report = store.Recover();
            Assert.Empty(report.Removed); // but it is not this version's to delete
            Assert.Contains(report.Warnings, w => w.Contains($"format version {newer}"));
            Assert.True(File.Exists(manifest));
            Assert.True(File.Exists(info.ArchivePath));
        }
    }

    [Fact]
    public void Recovery_of_a_clean_store_is_clean()
    {
        using var store = _f.Open();
        Assert.True(store.Recover().Clean);
    }

    [Fact]
    public async Task A_manifest_that_describes_another_place_is_not_trusted()
    {
        CheckpointInfo info;
        using (var store = _f.Open())
        {
            var a = new TestArchive();
            info = await store.IngestAsync(_f.Stage(a), a.Source(), IngestOptions.Default, null, CancellationToken.None);
        }
        var manifest = Path.Combine(Path.GetDirectoryName(info.ArchivePath)!, info.Id + ".json");
        var text = await File.ReadAllTextAsync(manifest, Encoding.UTF8);
        await File.WriteAllTextAsync(manifest, text.Replace("\"namespace\": \"shop\"", "\"namespace\": \"kube-system\""));
        using var store2 = _f.Open();
        Assert.Empty(store2.List());
    }
}

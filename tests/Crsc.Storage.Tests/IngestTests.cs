using System.Security.Cryptography;
using System.Text.Json;
using Crsc.Controllers.Storage;

namespace Crsc.Storage.Tests;

public sealed class IngestTests : IDisposable
{
    private readonly StoreFixture _f = new();
    public void Dispose() => _f.Dispose();

    private static string Sha(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>
    /// Whether compressing pays is judged over the whole file, not its start: a process's memory is stored in address
    /// order, so a compressible start (code, zeroed pages) can precede a bulk that zstd cannot shrink, and the reverse.
    /// </summary>
    [Theory]
    [InlineData("1 MiB of zeros, then 63 MiB random", false)] // its start compresses; the whole would save ~1.5 %
    [InlineData("4 MiB random, then 12 MiB of zeros", true)]  // its start does not; the whole saves ~75 %
    [InlineData("16 MiB of text", true)]
    [InlineData("100 KiB random", false)]
    public void Compression_is_judged_from_pieces_spread_over_the_whole_archive(string layout, bool worthIt)
    {
        var data = layout switch
        {
            "1 MiB of zeros, then 63 MiB random" => [.. new byte[1 << 20], .. TestArchive.RandomBytes(63 << 20, 1)],
            "4 MiB random, then 12 MiB of zeros" => [.. TestArchive.RandomBytes(4 << 20, 3), .. new byte[12 << 20]],
            "16 MiB of text" => System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("heap object cart item 0123456789 ", (16 << 20) / 33))),
            _ => TestArchive.RandomBytes(100 << 10, 4),
        };
        var path = _f.Dir.Combine("sample-" + Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(path, data);
        using var handle = File.OpenHandle(path);

        Assert.Equal(worthIt, IngestWriter.WorthCompressing(handle, data.Length, level: 1));
    }

    /// <summary>
    /// The store's default compression adapts: memory zstd cannot shrink (random pages, past the 4 MiB probe or not) is
    /// stored as it is — one digest, no compression pass — while compressible memory and an explicit request are zstd.
    /// </summary>
    [Theory]
    [InlineData(true, 6 << 20, null, true, ".tar")]          // incompressible, larger than the probe
    [InlineData(true, 1 << 20, null, true, ".tar")]          // incompressible, decided at the end
    [InlineData(false, 6 << 20, null, true, ".tar.zst")]     // compressible
    [InlineData(true, 6 << 20, CheckpointCompression.Zstd, true, ".tar.zst")]  // asked for: honoured
    [InlineData(true, 6 << 20, null, false, ".tar.zst")]     // adapting turned off
    public async Task The_default_compression_stores_memory_zstd_cannot_shrink_uncompressed(bool random, int pageBytes,
        CheckpointCompression? asked, bool skipIncompressible, string ext)
    {
        using var store = _f.Open(o => o with { SkipIncompressible = skipIncompressible });
        var archive = new TestArchive { RandomPages = random, PageBytes = pageBytes };
        var original = archive.Build();

        var info = await store.IngestAsync(_f.Stage(original), archive.Source(), new IngestOptions { Compression = asked }, null,
            CancellationToken.None);

        Assert.EndsWith(info.Id + ext, info.ArchivePath);
        Assert.Equal([$"shop/cart/cart/{info.Id}.json", $"shop/cart/cart/{info.Id}{ext}"], _f.StoreFiles());
        var stored = await File.ReadAllBytesAsync(info.ArchivePath);
        Assert.Equal(Sha(stored), info.Digest);
        Assert.Equal(Sha(original), info.UncompressedDigest);
        if (ext == ".tar")
        {
            Assert.Equal(CheckpointCompression.None, info.Compression);
            Assert.Equal(original, stored);
            Assert.Equal(info.UncompressedDigest, info.Digest);
        }
        else Assert.Equal(CheckpointCompression.Zstd, info.Compression);
        // verified and read back as the runtime wrote it, whichever way it is stored
        Assert.True((await store.VerifyAsync(info.Id, CancellationToken.None)).Valid);
        await using var read = await store.OpenReadAsync(info.Id, CancellationToken.None);
        var back = new MemoryStream();
        await read.CopyToAsync(back);
        Assert.Equal(original, back.ToArray());
    }

    [Theory]
    [InlineData(CheckpointCompression.Zstd, false)]
    [InlineData(CheckpointCompression.None, false)]
    [InlineData(CheckpointCompression.Zstd, true)]
    public async Task Ingest_commits_archive_and_manifest_with_digests_sizes_and_source_facts(CheckpointCompression compression, bool containerd)
    {
        using var store = _f.Open();
        var archive = new TestArchive { Containerd = containerd };
        var original = archive.Build();
        var staged = _f.Stage(original);
        long lastProgress = 0;

        var info = await store.IngestAsync(staged, archive.Source(), new IngestOptions { Compression = compression },
            new SyncProgress(p => lastProgress = p), CancellationToken.None);

        Assert.Equal(original.Length, lastProgress);
        Assert.False(File.Exists(staged)); // staged archive removed once committed
        var ext = compression == CheckpointCompression.Zstd ? ".tar.zst" : ".tar";
        Assert.Equal(Path.Combine(_f.Checkpoints, "shop", "cart", "cart", info.Id + ext), info.ArchivePath);
        Assert.Equal([$"shop/cart/cart/{info.Id}.json", $"shop/cart/cart/{info.Id}{ext}"], _f.StoreFiles());
        Assert.Matches("^20260301T120000Z-[0-9a-f]{8}$", info.Id);

        // digests: uncompressed = sha256 of the runtime's tar (diff_id), stored = sha256 of the file on disk (blob digest)
        var stored = await File.ReadAllBytesAsync(info.ArchivePath);
        Assert.Equal(Sha(original), info.UncompressedDigest);
        Assert.Equal(original.Length, info.UncompressedSize);
        Assert.Equal(Sha(stored), info.Digest);
        Assert.Equal(stored.Length, info.Size);
        if (compression == CheckpointCompression.None) Assert.Equal(original, stored);
        else Assert.True(stored.Length < original.Length, "zstd made it smaller");

        // facts from config.dump / spec.dump, whichever runtime wrote them
        Assert.Equal("cart", info.Archive.ContainerName);
        Assert.Equal(archive.Pod, info.Archive.PodName);
        Assert.Equal("shop", info.Archive.PodNamespace);
        Assert.Equal(archive.PodUid, info.Archive.PodUid);
        Assert.Equal("registry.example/shop/cart:1.4.2", info.Archive.ImageName);
        Assert.StartsWith("registry.example/shop/cart@sha256:", info.Archive.ImageRef);
        Assert.StartsWith("sha256:9a1b", info.Archive.ImageId);
        Assert.Equal(containerd ? "io.containerd.runc.v2" : "runc", info.Archive.Runtime);
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 1, 2, 3, 500, TimeSpan.Zero), info.Archive.CheckpointedAt);
        Assert.Equal("3c1d5f0b8a7e4c2d9f6b1a0e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c", info.Archive.RuntimeContainerId);
        Assert.Equal("node-a", info.NodeName);
        Assert.Equal("0.1.0-test", info.CrscVersion);
        Assert.Equal(_f.Time.GetUtcNow(), info.CreatedAt);

        // a reader gets back exactly the runtime's bytes
        await using (var read = await store.OpenReadAsync(info.Id, CancellationToken.None))
        {
            var copy = new MemoryStream();
            await read.CopyToAsync(copy);
            Assert.Equal(original, copy.ToArray());
        }
        Assert.Equal(info, store.Get(info.Id));
        Assert.Equal([info], store.List());
        Assert.True((await store.VerifyAsync(info.Id, CancellationToken.None)).Valid);
    }

    [Fact]
    public async Task Manifest_is_versioned_json_recording_everything()
    {
        using var store = _f.Open();
        var archive = new TestArchive();
        var info = await store.IngestAsync(_f.Stage(archive), archive.Source("cart-deploy"), new IngestOptions { Pinned = true }, null, CancellationToken.None);

        using var doc = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(Path.GetDirectoryName(info.ArchivePath)!, info.Id + ".json")));
        var root = doc.RootElement;
        Assert.Equal(2, root.GetProperty("formatVersion").GetInt32());
        Assert.Equal("crsc.io/checkpoint-manifest", root.GetProperty("kind").GetString());
        Assert.Equal(info.Id, root.GetProperty("id").GetString());
        Assert.Equal("cart-deploy", root.GetProperty("workload").GetString());
        Assert.Equal(archive.PodUid, root.GetProperty("podUid").GetString());
        Assert.Equal("zstd", root.GetProperty("archive").GetProperty("compression").GetString());
        Assert.Equal(1, root.GetProperty("archive").GetProperty("compressionLevel").GetInt32());
        Assert.Equal(info.Digest, root.GetProperty("archive").GetProperty("digest").GetString());
        Assert.Equal(info.UncompressedDigest, root.GetProperty("archive").GetProperty("uncompressedDigest").GetString());
        Assert.Equal("registry.example/shop/cart:1.4.2", root.GetProperty("source").GetProperty("imageName").GetString());
        Assert.True(root.GetProperty("pinned").GetBoolean());
        Assert.Equal("node-a", root.GetProperty("nodeName").GetString());
        Assert.Equal("0.1.0-test", root.GetProperty("crscVersion").GetString());
        Assert.True(root.TryGetProperty("createdAt", out _));
    }

    [Fact]
    public async Task Files_are_0600_and_directories_0700()
    {
        using var store = _f.Open();
        var archive = new TestArchive();
        var info = await store.IngestAsync(_f.Stage(archive), archive.Source(), IngestOptions.Default, null, CancellationToken.None);

        const UnixFileMode file = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        const UnixFileMode dir = file | UnixFileMode.UserExecute;
        Assert.Equal(file, File.GetUnixFileMode(info.ArchivePath));
        Assert.Equal(file, File.GetUnixFileMode(Path.Combine(Path.GetDirectoryName(info.ArchivePath)!, info.Id + ".json")));
        Assert.Equal(file, File.GetUnixFileMode(Path.Combine(_f.Checkpoints, DiskCheckpointStore.LockFileName)));
        foreach (var d in new[] { _f.Checkpoints, _f.Staging, Path.Combine(_f.Checkpoints, "shop"), Path.Combine(_f.Checkpoints, "shop", "cart"), Path.Combine(_f.Checkpoints, "shop", "cart", "cart") })
            Assert.Equal(dir, File.GetUnixFileMode(d));
    }

    [Fact]
    public void Staging_defaults_to_a_sibling_of_the_checkpoint_directory()
    {
        using var store = _f.Open();
        Assert.Equal(_f.Staging, store.StagingDirectory);
        Assert.True(Directory.Exists(_f.Staging));
        var path = store.NewStagingPath(new CheckpointedContainer("shop", "cart", "cart"));
        Assert.Equal(_f.Staging, Path.GetDirectoryName(path));
        Assert.StartsWith("shop_cart_cart-", Path.GetFileName(path));
        Assert.NotEqual(path, store.NewStagingPath(new CheckpointedContainer("shop", "cart", "cart")));
        Assert.Equal("/var/lib/crsc/staging", new DiskCheckpointStoreOptions().ResolveStagingDirectory());
    }

    [Fact]
    public async Task Archive_of_another_namespace_or_pod_is_refused()
    {
        using var store = _f.Open();
        var archive = new TestArchive { Namespace = "other" };
        var staged = _f.Stage(archive);
        var e = await Assert.ThrowsAsync<ArchiveRejectedException>(() =>
            store.IngestAsync(staged, archive.Source() with { Namespace = "shop" }, IngestOptions.Default, null, CancellationToken.None));
        Assert.Contains("namespace 'other'", e.Message);

        archive = new TestArchive();
        staged = _f.Stage(archive);
        e = await Assert.ThrowsAsync<ArchiveRejectedException>(() =>
            store.IngestAsync(staged, archive.Source() with { PodUid = "00000000-0000-0000-0000-000000000000" }, IngestOptions.Default, null, CancellationToken.None));
        Assert.Contains("pod UID", e.Message);
        Assert.Empty(store.List());
        Assert.True(File.Exists(staged), "a refused archive stays in staging for inspection");
    }

    [Fact]
    public async Task Compression_level_is_recorded_and_used()
    {
        using var store = _f.Open(o => o with { CompressionLevel = 3 });
        var archive = new TestArchive { PageBytes = 512 * 1024 };
        var bytes = archive.Build();
        var fast = await store.IngestAsync(_f.Stage(bytes), archive.Source(), new IngestOptions { CompressionLevel = 1 }, null, CancellationToken.None);
        var better = await store.IngestAsync(_f.Stage(bytes), archive.Source(), new IngestOptions(), null, CancellationToken.None);
        Assert.Equal(1, fast.CompressionLevel);
        Assert.Equal(3, better.CompressionLevel);
        Assert.Equal(fast.UncompressedDigest, better.UncompressedDigest);
        Assert.NotEqual(fast.Digest, better.Digest);
    }

    [Fact]
    public async Task Cancellation_leaves_nothing_behind()
    {
        using var store = _f.Open();
        var archive = new TestArchive { PageBytes = 3 << 20 };
        var staged = _f.Stage(archive);
        using var cts = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            store.IngestAsync(staged, archive.Source(), IngestOptions.Default, new SyncProgress(_ => cts.Cancel()), cts.Token));
        Assert.Empty(_f.StoreFiles());
        Assert.Empty(store.List());
        Assert.True(File.Exists(staged));
    }

    [Fact]
    public async Task An_expected_file_is_ingested_only_when_the_path_still_names_it_and_is_then_left_to_the_caller()
    {
        using var store = _f.Open();
        var archive = new TestArchive();
        var staged = _f.Stage(archive);
        var checkedFile = new FileStagingArea().CheckFileInDirectory(Path.GetDirectoryName(staged)!, Path.GetFileName(staged));
        var kept = new IngestOptions { ExpectedFile = checkedFile, RemoveStaged = false };

        // another file took the name after it was checked: refused, nothing stored, the file left where it is
        var replaced = checkedFile with { Inode = checkedFile.Inode + 1 };
        var e = await Assert.ThrowsAsync<ArchiveRejectedException>(() =>
            store.IngestAsync(staged, archive.Source(), kept with { ExpectedFile = replaced }, null, CancellationToken.None));
        Assert.Contains("not the file that was checked", e.Message);
        Assert.Empty(_f.StoreFiles());
        Assert.True(File.Exists(staged));

        var info = await store.IngestAsync(staged, archive.Source(), kept, null, CancellationToken.None);
        Assert.Equal(info, store.Get(info.Id));
        Assert.True(File.Exists(staged)); // RemoveStaged = false: the caller removes it, or not
    }
}

/// <summary>Reports on the caller's thread (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SyncProgress(Action<long> report) : IProgress<long>
{
    public void Report(long value) => report(value);
}

using System.Diagnostics;
using Crsc.Controllers.Storage;

namespace Crsc.Storage.Tests;

public sealed class ReadAndZstdTests : IDisposable
{
    private readonly StoreFixture _f = new();
    public void Dispose() => _f.Dispose();

    private async Task<(DiskCheckpointStore Store, CheckpointInfo Info, byte[] Original)> IngestAsync(CheckpointCompression compression)
    {
        var store = _f.Open();
        var archive = new TestArchive { PageBytes = 1 << 20 };
        var original = archive.Build();
        var info = await store.IngestAsync(_f.Stage(original), archive.Source(), new IngestOptions { Compression = compression }, null, CancellationToken.None);
        return (store, info, original);
    }

    private static async Task<byte[]> ReadAllAsync(Stream s)
    {
        var m = new MemoryStream();
        await s.CopyToAsync(m);
        return m.ToArray();
    }

    [Theory]
    [InlineData(CheckpointCompression.Zstd, 0.3)]
    [InlineData(CheckpointCompression.Zstd, 0.9)]
    [InlineData(CheckpointCompression.None, 0.5)]
    public async Task A_corrupted_stored_byte_is_detected_and_the_archive_refused(CheckpointCompression compression, double where)
    {
        var (store, info, _) = await IngestAsync(compression);
        using var _ = store;
        await using (var fs = new FileStream(info.ArchivePath, FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Position = (long)(fs.Length * where);
            var b = fs.ReadByte();
            fs.Position--;
            fs.WriteByte((byte)(b ^ 0x5a));
        }

        var result = await store.VerifyAsync(info.Id, CancellationToken.None);
        Assert.False(result.Valid);
        Assert.Contains("corrupt", result.Problem);
        Assert.Contains(info.Id, result.Problem);

        await using var read = await store.OpenReadAsync(info.Id, CancellationToken.None);
        var e = await Assert.ThrowsAsync<CheckpointCorruptException>(() => read.CopyToAsync(Stream.Null));
        Assert.Equal(info.Id, e.Id);

        await using var stored = await store.OpenStoredAsync(info.Id, CancellationToken.None);
        var e2 = await Assert.ThrowsAsync<CheckpointCorruptException>(() => stored.CopyToAsync(Stream.Null));
        Assert.Contains("digest", e2.Message);
    }

    [Theory]
    [InlineData(CheckpointCompression.Zstd)]
    [InlineData(CheckpointCompression.None)]
    public async Task A_truncated_or_extended_archive_is_refused(CheckpointCompression compression)
    {
        var (store, info, _) = await IngestAsync(compression);
        using var _ = store;
        await using (var fs = new FileStream(info.ArchivePath, FileMode.Open, FileAccess.ReadWrite)) fs.SetLength(fs.Length - 10);
        Assert.False((await store.VerifyAsync(info.Id, CancellationToken.None)).Valid);
        await using (var fs = new FileStream(info.ArchivePath, FileMode.Open, FileAccess.ReadWrite)) fs.SetLength(fs.Length + 20);
        Assert.False((await store.VerifyAsync(info.Id, CancellationToken.None)).Valid);
    }

    [Fact]
    public async Task Stored_stream_is_the_blob_whose_digest_the_manifest_records()
    {
        var (store, info, _) = await IngestAsync(CheckpointCompression.Zstd);
        using var _ = store;
        await using var stored = await store.OpenStoredAsync(info.Id, CancellationToken.None);
        Assert.Equal(await File.ReadAllBytesAsync(info.ArchivePath), await ReadAllAsync(stored));
    }

    [Fact]
    public async Task Unknown_id_is_not_found()
    {
        using var store = _f.Open();
        await Assert.ThrowsAsync<CheckpointNotFoundException>(() => store.OpenReadAsync("20260301T120000Z-00000000", CancellationToken.None));
        await Assert.ThrowsAsync<CheckpointNotFoundException>(() => store.VerifyAsync("20260301T120000Z-00000000", CancellationToken.None));
        Assert.Null(store.Get("20260301T120000Z-00000000"));
        Assert.False(store.Delete("20260301T120000Z-00000000"));
    }

    [Fact]
    public async Task The_zstd_cli_decompresses_what_crsc_stored()
    {
        var (store, info, original) = await IngestAsync(CheckpointCompression.Zstd);
        using var _ = store;
        var output = _f.Dir.Combine("cli.tar");
        var (code, err) = await RunAsync("zstd", "-q", "-d", "-f", info.ArchivePath, "-o", output);
        Assert.True(code == 0, err);
        Assert.Equal(original, await File.ReadAllBytesAsync(output));
        // crsc writes frame checksums: the CLI's integrity test passes
        (code, err) = await RunAsync("zstd", "-q", "-t", info.ArchivePath);
        Assert.True(code == 0, err);
    }

    [Fact]
    public async Task Crsc_decompresses_what_the_zstd_cli_wrote_including_several_frames()
    {
        var a = TestArchive.Pages(700_000, 1);
        var b = TestArchive.Pages(300_000, 2);
        var pa = _f.Dir.Combine("a.bin");
        var pb = _f.Dir.Combine("b.bin");
        await File.WriteAllBytesAsync(pa, a);
        await File.WriteAllBytesAsync(pb, b);
        Assert.Equal(0, (await RunAsync("zstd", "-q", "-19", "-f", pa, "-o", pa + ".zst")).Code);
        Assert.Equal(0, (await RunAsync("zstd", "-q", "-1", "-f", pb, "-o", pb + ".zst")).Code);
        var za = await File.ReadAllBytesAsync(pa + ".zst");
        var zb = await File.ReadAllBytesAsync(pb + ".zst");
        byte[] concatenated = [.. za, .. zb];

        await using var z = new ZstdDecompressStream(new MemoryStream(concatenated));
        byte[] expected = [.. a, .. b];
        Assert.Equal(expected, await ReadAllAsync(z));

        // a frame cut short is an error, not a silent short read
        await using var cut = new ZstdDecompressStream(new MemoryStream(concatenated[..^100]));
        await Assert.ThrowsAsync<InvalidDataException>(() => cut.CopyToAsync(Stream.Null));
    }

    [Fact]
    public void Compressor_round_trips_in_memory_with_workers()
    {
        var data = TestArchive.Pages(3 << 20, 3);
        var compressed = new MemoryStream();
        using (var c = new ZstdCompressor(level: 3, workers: 2, sink: s => compressed.Write(s)))
        {
            for (var off = 0; off < data.Length; off += 100_000) c.Write(data.AsSpan(off, Math.Min(100_000, data.Length - off)));
            c.Finish();
        }
        compressed.Position = 0;
        using var d = new ZstdDecompressStream(compressed);
        var back = new MemoryStream();
        d.CopyTo(back);
        Assert.Equal(data, back.ToArray());
        Assert.Matches(@"^1\.\d+\.\d+$", Zstd.Version);
    }

    [Fact]
    public void Missing_libzstd_is_reported_clearly()
    {
        var e = new ZstdUnavailableException(new DllNotFoundException("libzstd.so.1: cannot open shared object file"));
        Assert.Contains("libzstd.so.1", e.Message);
        Assert.Contains("libzstd1", e.Message);
        Assert.IsAssignableFrom<CheckpointStoreException>(e);
    }

    internal static async Task<(int Code, string Error)> RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        _ = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await err);
    }
}

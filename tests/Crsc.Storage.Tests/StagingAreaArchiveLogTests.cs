using System.Formats.Tar;
using System.Text;
using Crsc.Testing;

namespace Crsc.Storage.Tests;

/// <summary>
/// The node agent reads CRIU's log out of a partial archive when a checkpoint fails; the archive holds what the
/// container wrote, so it is read through the bounded tar reader like every other archive (issue "Step 8", finding 8).
/// </summary>
public sealed class StagingAreaArchiveLogTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private readonly FileStagingArea _area = new();

    private string Write(string name, byte[] bytes)
    {
        var path = _dir.Combine(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void The_tail_of_the_log_in_a_partial_archive_is_read()
    {
        var archive = _dir.Combine("partial.tar");
        using (var file = File.Create(archive))
        using (var tar = new TarWriter(file))
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "config.dump") { DataStream = new MemoryStream("{}"u8.ToArray()) });
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "dump.log")
            {
                DataStream = new MemoryStream(Encoding.UTF8.GetBytes(new string('y', 9000) + "\nError (criu): failed\n")),
            });
        }
        Assert.EndsWith("Error (criu): failed\n", _area.ReadArchiveLogTail(archive, 4096));
        Assert.Equal(4096, _area.ReadArchiveLogTail(archive, 4096)!.Length);
        Assert.Null(_area.ReadArchiveLogTail(_dir.Combine("missing.tar"), 4096));
        Assert.Null(_area.ReadArchiveLogTail(Write("garbage.tar", "not a tar at all, just text that is long enough to be read as a header maybe"u8.ToArray()), 4096));
    }

    [Theory]
    [MemberData(nameof(ArchiveBombTests.Bombs), MemberType = typeof(ArchiveBombTests))]
    public void A_memory_bomb_posing_as_a_partial_archive_gives_no_log_in_bounded_memory(string kind)
    {
        // the log after the bomb is never reached: a limit stops the reader first
        var bomb = ArchiveBombTests.Bomb(kind);
        var path = Write(kind + ".tar", bomb);
        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Null(_area.ReadArchiveLogTail(path, 4096));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 48L << 20, $"{kind}: {allocated} bytes allocated");
    }
}

/// <summary>
/// The third archive reader (CRIU's log out of a partial archive, on the node agent's failure path) against the same
/// generated hostile tars as ingest and <c>crsc inspect</c>: never an exception, bounded memory, and an end to each read
/// (a generous per-input bound: it catches a reader that loops, not a slow machine).
/// </summary>
public sealed class StagingAreaArchiveLogFuzzTests : IDisposable
{
    private const int Inputs = 2000;
    private const long MemoryBound = 64L << 20;
    private static readonly TimeSpan PerInput = TimeSpan.FromSeconds(10);
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Generated_hostile_partial_archives_give_a_log_or_none_in_bounded_memory_and_time()
    {
        var area = new FileStagingArea(new ArchiveLimits { MaxNameBytesTotal = 8 << 20 });
        var path = _dir.Combine("partial.tar");
        var found = 0;
        for (var i = 0; i < Inputs; i++)
        {
            var bytes = HostileTars.Generate(new Random(9000 + i));
            File.WriteAllBytes(path, bytes);
            var before = GC.GetAllocatedBytesForCurrentThread();
            var watch = System.Diagnostics.Stopwatch.StartNew();
            string? log = null;
            try { log = area.ReadArchiveLogTail(path, 4096); }
            catch (Exception e) { Assert.Fail($"input {i} (seed {9000 + i}, {bytes.Length} bytes): {e.GetType().Name}: {e.Message}"); }
            Assert.True(watch.Elapsed < PerInput, $"input {i} (seed {9000 + i}) took {watch.Elapsed}");
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < MemoryBound + 4L * bytes.Length, $"input {i} (seed {9000 + i}): {allocated} bytes allocated for {bytes.Length} bytes");
            Assert.True(log is null || log.Length <= 4096);
            if (log is not null) found++;
        }
        Assert.True(found < Inputs);
    }
}

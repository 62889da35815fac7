using System.Formats.Tar;
using System.Text;
using Crsc.Controllers.NodeAgent;
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

    private readonly FileStagingArea _area = new(new BoundedTarEntries(new ArchiveLimits()));

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

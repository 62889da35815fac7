using System.Formats.Tar;
using System.Text;
using Crsc.Controllers.Storage;

namespace Crsc.Storage.Tests;

/// <summary>
/// Archives built to exhaust or fool the ingest-time reader: link chains that leave the archive only once earlier
/// (or later) links are followed, and names, depths and extended headers that made memory grow without bound.
/// </summary>
public sealed class ArchiveBombTests : IDisposable
{
    private const long MemoryBound = 48L << 20; // far above a refusal's needs, far below what the bombs took
    private readonly StoreFixture _f = new();
    public void Dispose() => _f.Dispose();

    private async Task<ArchiveRejectedException> RefusedAsync(TestArchive archive)
    {
        using var store = _f.Open();
        var staged = _f.Stage(archive);
        var e = await Assert.ThrowsAsync<ArchiveRejectedException>(() =>
            store.IngestAsync(staged, archive.Source(), IngestOptions.Default, null, CancellationToken.None));
        Assert.Empty(_f.StoreFiles());
        return e;
    }

    private static void Symlink(TarWriter t, string name, string target) =>
        t.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = target });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_symlink_that_escapes_through_an_earlier_or_later_link_is_refused(bool linkFirst)
    {
        // d/up -> .. is the archive's root; x -> d/up/../etc/passwd is lexically d/etc/passwd, really ../etc/passwd
        var a = new TestArchive();
        a.Extra.Add(t => t.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "d/")));
        if (linkFirst) a.Extra.Add(t => Symlink(t, "x", "d/up/../etc/passwd"));
        a.Extra.Add(t => Symlink(t, "d/up", ".."));
        if (!linkFirst) a.Extra.Add(t => Symlink(t, "x", "d/up/../etc/passwd"));

        var e = await RefusedAsync(a);
        Assert.Equal("x", e.Entry);
        Assert.Contains("outside the archive", e.Message);
    }

    [Fact]
    public async Task A_symlink_loop_is_refused()
    {
        var a = new TestArchive();
        a.Extra.Add(t => Symlink(t, "loop-a", "loop-b/x"));
        a.Extra.Add(t => Symlink(t, "loop-b", "loop-a/x"));
        var e = await RefusedAsync(a);
        Assert.Contains("loops", e.Message);
    }

    [Fact]
    public async Task A_hard_link_to_a_symlink_is_refused()
    {
        // checkpoint/a/b/s -> ../.. stays inside; a hard link to it at the top would point two levels above the root
        var a = new TestArchive();
        a.Extra.Add(t => Symlink(t, "checkpoint/a/b/s", "../.."));
        a.Extra.Add(t => t.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "h") { LinkName = "checkpoint/a/b/s" }));
        var e = await RefusedAsync(a);
        Assert.Equal("h", e.Entry);
        Assert.Contains("symbolic link", e.Message);
    }

    [Fact]
    public async Task Links_that_stay_inside_through_other_links_are_accepted()
    {
        using var store = _f.Open(o => o with { Limits = o.Limits with { MaxEntryBytes = 256 * 1024 } });
        var a = new TestArchive();
        a.Extra.Add(t => Symlink(t, "checkpoint/self", "."));
        a.Extra.Add(t => Symlink(t, "img", "checkpoint/self/self/pages-1.img"));
        a.Extra.Add(t => Symlink(t, "checkpoint/up", ".."));
        a.Extra.Add(t => Symlink(t, "cfg", "checkpoint/up/config.dump"));
        var info = await store.IngestAsync(_f.Stage(a), a.Source(), IngestOptions.Default, null, CancellationToken.None);
        Assert.NotNull(info);
    }

    public static TheoryData<string> Bombs() => ["long-pax-names", "long-gnu-names", "deep-paths", "huge-pax-header", "huge-gnu-header", "many-long-links"];

    /// <summary>Built by hand where <see cref="TarWriter"/> would not write it.</summary>
    internal static byte[] Bomb(string kind)
    {
        var a = new TestArchive { PageBytes = 4096 };
        switch (kind)
        {
            case "long-pax-names":
                for (var i = 0; i < 40; i++)
                {
                    var n = i;
                    a.Extra.Add(t => TestArchive.File(t, new string((char)('a' + n % 26), 1 << 20), [1]));
                }
                return a.Build();
            case "long-gnu-names":
            {
                var ms = new MemoryStream();
                using (var t = new TarWriter(ms, TarEntryFormat.Gnu, leaveOpen: true))
                    for (var i = 0; i < 40; i++)
                        t.WriteEntry(new GnuTarEntry(TarEntryType.RegularFile, new string((char)('a' + i % 26), 1 << 20)));
                return ms.ToArray();
            }
            case "deep-paths":
                // each name 2000 levels deep under its own top directory: every parent is a new directory
                for (var i = 0; i < 40; i++)
                {
                    var top = "t" + i;
                    a.Extra.Add(t => TestArchive.File(t, top + string.Concat(Enumerable.Repeat("/a", 2000)), [1]));
                }
                return a.Build();
            case "huge-pax-header":
                return [.. RawTar.Header("PaxHeaders/x", 'x', int.MaxValue - 1), .. new byte[4096]];
            case "huge-gnu-header":
                return [.. RawTar.Header("././@LongLink", 'L', int.MaxValue - 1), .. new byte[4096]];
            case "many-long-links":
                for (var i = 0; i < 40; i++)
                {
                    var n = i;
                    a.Extra.Add(t => Symlink(t, "l" + n, new string('z', 1 << 20)));
                }
                return a.Build();
            default: throw new ArgumentOutOfRangeException(nameof(kind));
        }
    }

    [Theory]
    [MemberData(nameof(Bombs))]
    public void A_memory_bomb_is_refused_naming_the_limit_in_bounded_memory(string kind)
    {
        var bytes = Bomb(kind);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ArchiveRejectedException>(() => Inspect(bytes, new ArchiveLimits()));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Matches("over the limit of (4096|128|65536)", e.Message);
        Assert.True(allocated < MemoryBound, $"{kind}: {allocated} bytes allocated");
    }

    [Fact]
    public void The_names_kept_are_bounded_in_all()
    {
        var a = new TestArchive { PageBytes = 4096 };
        for (var i = 0; i < 2000; i++)
        {
            var n = i;
            a.Extra.Add(t => TestArchive.File(t, $"checkpoint/{n}-" + new string('n', 4000), [1]));
        }
        var e = Assert.Throws<ArchiveRejectedException>(() => Inspect(a.Build(), new ArchiveLimits { MaxNameBytesTotal = 4 << 20 }));
        Assert.Contains("MaxNameBytesTotal", e.Message);
    }

    [Fact]
    public void Too_many_entries_are_refused_naming_the_limit()
    {
        var a = new TestArchive { PageBytes = 4096 };
        for (var i = 0; i < 100; i++)
        {
            var n = i;
            a.Extra.Add(t => TestArchive.File(t, $"checkpoint/f{n}", [1]));
        }
        var e = Assert.Throws<ArchiveRejectedException>(() => Inspect(a.Build(), new ArchiveLimits { MaxEntries = 50 }));
        Assert.Contains("more than 50 entries", e.Message);
    }

    internal static ArchiveFacts Inspect(byte[] tar, ArchiveLimits limits)
    {
        using var stream = new CountingReadStream(new MemoryStream(tar), (_, _) => { }, 64 * 1024, null, CancellationToken.None);
        return ArchiveInspector.Inspect(stream, limits);
    }
}

/// <summary>Raw ustar header blocks, for headers no writer would produce.</summary>
internal static class RawTar
{
    public static byte[] Header(string name, char type, long size, string linkName = "")
    {
        var h = new byte[512];
        Encoding.ASCII.GetBytes(name.Length > 100 ? name[..100] : name).CopyTo(h, 0);
        Encoding.ASCII.GetBytes("0000644\0").CopyTo(h, 100);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(h, 108);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(h, 116);
        Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(11, '0')[^11..] + "\0").CopyTo(h, 124);
        Encoding.ASCII.GetBytes("00000000000\0").CopyTo(h, 136);
        h[156] = (byte)type;
        Encoding.ASCII.GetBytes(linkName.Length > 100 ? linkName[..100] : linkName).CopyTo(h, 157);
        Encoding.ASCII.GetBytes("ustar\0" + "00").CopyTo(h, 257);
        "        "u8.CopyTo(h.AsSpan(148));
        var sum = h.Sum(b => (int)b);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(h, 148);
        return h;
    }
}

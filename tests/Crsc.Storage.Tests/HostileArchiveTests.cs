using System.Formats.Tar;
using System.Text;
using Crsc.Controllers.Storage;

namespace Crsc.Storage.Tests;

/// <summary>Archives a broken or hostile runtime (or a user with access to staging) could hand crsc: all refused, naming the entry.</summary>
public sealed class HostileArchiveTests : IDisposable
{
    private readonly StoreFixture _f = new();
    public void Dispose() => _f.Dispose();

    public static TheoryData<string> Cases() =>
    [
        "traversal", "traversal-inside", "absolute", "symlink-escape", "symlink-absolute", "hardlink-escape", "hardlink-unknown",
        "missing-config", "missing-spec", "missing-checkpoint-dir", "duplicate", "file-and-directory", "char-device", "block-device",
        "fifo", "oversized-entry", "bad-config-json", "dot-component",
    ];

    private static (TestArchive Archive, string Entry) Hostile(string kind)
    {
        var a = new TestArchive { PageBytes = 32 * 1024 };
        string entry;
        switch (kind)
        {
            case "traversal":
                entry = "../../etc/cron.d/evil";
                a.Extra.Add(t => TestArchive.File(t, entry, Encoding.ASCII.GetBytes("* * * * * root sh\n")));
                break;
            case "traversal-inside":
                entry = "checkpoint/../../escape.img";
                a.Extra.Add(t => TestArchive.File(t, entry, [1, 2, 3]));
                break;
            case "absolute":
                entry = "/etc/shadow";
                a.Extra.Add(t => TestArchive.File(t, entry, [1]));
                break;
            case "symlink-escape":
                entry = "checkpoint/root-link";
                a.Extra.Add(t => t.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, entry) { LinkName = "../../../../etc" }));
                break;
            case "symlink-absolute":
                entry = "checkpoint/passwd";
                a.Extra.Add(t => t.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, entry) { LinkName = "/etc/passwd" }));
                break;
            case "hardlink-escape":
                entry = "checkpoint/shadow";
                a.Extra.Add(t => t.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, entry) { LinkName = "../../etc/shadow" }));
                break;
            case "hardlink-unknown":
                entry = "checkpoint/copy.img";
                a.Extra.Add(t => t.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, entry) { LinkName = "etc/shadow" }));
                break;
            case "missing-config":
                a.WithConfig = false;
                entry = "config.dump";
                break;
            case "missing-spec":
                a.WithSpec = false;
                entry = "spec.dump";
                break;
            case "missing-checkpoint-dir":
                a.WithCheckpointDirectory = false;
                entry = "checkpoint/";
                break;
            case "duplicate":
                entry = "config.dump";
                a.Extra.Add(t => TestArchive.File(t, entry, Encoding.UTF8.GetBytes("{\"id\":\"other\"}")));
                break;
            case "file-and-directory":
                entry = "config.dump/inner";
                a.Extra.Add(t => TestArchive.File(t, entry, [1]));
                break;
            case "char-device":
                entry = "checkpoint/mem";
                a.Extra.Add(t => t.WriteEntry(new PaxTarEntry(TarEntryType.CharacterDevice, entry) { DeviceMajor = 1, DeviceMinor = 1 }));
                break;
            case "block-device":
                entry = "checkpoint/sda";
                a.Extra.Add(t => t.WriteEntry(new PaxTarEntry(TarEntryType.BlockDevice, entry) { DeviceMajor = 8, DeviceMinor = 0 }));
                break;
            case "fifo":
                entry = "checkpoint/pipe";
                a.Extra.Add(t => t.WriteEntry(new PaxTarEntry(TarEntryType.Fifo, entry)));
                break;
            case "oversized-entry":
                a.PageBytes = 192 * 1024; // over the 64 KiB limit of the store below
                entry = "checkpoint/pages-1.img";
                break;
            case "bad-config-json":
                a.ConfigOverride = "{ not json";
                entry = "config.dump";
                break;
            case "dot-component":
                entry = "checkpoint/./x//y.img";
                a.Extra.Add(t => TestArchive.File(t, entry, [1]));
                break;
            default: throw new ArgumentOutOfRangeException(nameof(kind));
        }
        return (a, entry);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Hostile_archive_is_refused_naming_the_entry_and_leaves_nothing(string kind)
    {
        using var store = _f.Open(o => o with { Limits = o.Limits with { MaxEntryBytes = 64 * 1024 } });
        var (archive, entry) = Hostile(kind);
        var staged = _f.Stage(archive);

        var e = await Assert.ThrowsAsync<ArchiveRejectedException>(() =>
            store.IngestAsync(staged, archive.Source(), IngestOptions.Default, null, CancellationToken.None));

        Assert.True(e.Message.Contains(entry, StringComparison.Ordinal), e.Message);
        Assert.Contains(staged, e.Message);
        Assert.Equal(entry, e.Entry);
        Assert.Empty(store.List());
        Assert.Empty(_f.StoreFiles()); // no temp file, no archive, no manifest
        Assert.True(File.Exists(staged));
    }

    [Fact]
    public async Task A_well_formed_archive_passes_with_the_same_limits()
    {
        // the control case of the theory above: only the hostile part makes the difference
        using var store = _f.Open(o => o with { Limits = o.Limits with { MaxEntryBytes = 256 * 1024 } });
        var archive = new TestArchive();
        archive.Extra.Add(t => t.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "checkpoint/img-link") { LinkName = "../checkpoint/pages-1.img" }));
        archive.Extra.Add(t => t.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "checkpoint/pages-copy.img") { LinkName = "checkpoint/pages-1.img" }));
        var info = await store.IngestAsync(_f.Stage(archive), archive.Source(), IngestOptions.Default, null, CancellationToken.None);
        Assert.Equal([info.Id], store.List().Select(c => c.Id));
    }

    [Fact]
    public async Task Not_a_tar_is_refused()
    {
        using var store = _f.Open();
        var staged = Path.Combine(_f.Staging, "garbage.tar");
        Directory.CreateDirectory(_f.Staging);
        var junk = new byte[8192];
        new Random(7).NextBytes(junk);
        await File.WriteAllBytesAsync(staged, junk);
        var e = await Assert.ThrowsAsync<ArchiveRejectedException>(() =>
            store.IngestAsync(staged, new CheckpointedContainer("shop", "cart", "cart"), IngestOptions.Default, null, CancellationToken.None));
        Assert.Contains("not a tar archive", e.Message);
        Assert.Empty(_f.StoreFiles());
    }

    [Fact]
    public async Task Empty_file_is_refused()
    {
        using var store = _f.Open();
        Directory.CreateDirectory(_f.Staging);
        var staged = Path.Combine(_f.Staging, "empty.tar");
        await File.WriteAllBytesAsync(staged, []);
        await Assert.ThrowsAsync<ArchiveRejectedException>(() =>
            store.IngestAsync(staged, new CheckpointedContainer("shop", "cart", "cart"), IngestOptions.Default, null, CancellationToken.None));
        Assert.Empty(_f.StoreFiles());
    }

    [Theory]
    [InlineData("inside-data")]
    [InlineData("inside-header")]
    [InlineData("no-end-marker")]
    public async Task Truncated_tar_is_refused(string where)
    {
        using var store = _f.Open();
        var archive = new TestArchive();
        var bytes = archive.Build();
        var cut = where switch
        {
            "inside-data" => 4096 + 100,             // within checkpoint/pages-1.img
            "inside-header" => bytes.Length - 1024 - 200, // within the last entry's header or data
            _ => bytes.Length - 1024,                 // every entry complete, end-of-archive marker missing
        };
        Directory.CreateDirectory(_f.Staging);
        var staged = Path.Combine(_f.Staging, "cut.tar");
        await File.WriteAllBytesAsync(staged, bytes[..cut]);
        var e = await Assert.ThrowsAsync<ArchiveRejectedException>(() =>
            store.IngestAsync(staged, archive.Source(), IngestOptions.Default, null, CancellationToken.None));
        Assert.Contains("truncated", e.Message);
        Assert.Empty(_f.StoreFiles());
    }

    [Fact]
    public async Task Data_after_the_end_of_the_tar_is_refused()
    {
        using var store = _f.Open();
        var archive = new TestArchive();
        Directory.CreateDirectory(_f.Staging);
        var staged = Path.Combine(_f.Staging, "smuggled.tar");
        await File.WriteAllBytesAsync(staged, [.. archive.Build(), .. new byte[512], .. "smuggled"u8.ToArray()]);
        var e = await Assert.ThrowsAsync<ArchiveRejectedException>(() =>
            store.IngestAsync(staged, archive.Source(), IngestOptions.Default, null, CancellationToken.None));
        Assert.Contains("after the end", e.Message);
    }

    [Fact]
    public async Task Zero_padding_after_the_end_is_accepted()
    {
        // GNU tar pads archives to 10 KiB records
        using var store = _f.Open();
        var archive = new TestArchive();
        var bytes = archive.Build();
        var padded = new byte[(bytes.Length + 10239) / 10240 * 10240 + 10240];
        bytes.CopyTo(padded, 0);
        Directory.CreateDirectory(_f.Staging);
        var staged = Path.Combine(_f.Staging, "padded.tar");
        await File.WriteAllBytesAsync(staged, padded);
        var info = await store.IngestAsync(staged, archive.Source(), IngestOptions.Default, null, CancellationToken.None);
        Assert.Equal(padded.Length, info.UncompressedSize);
    }

    [Fact]
    public async Task Archive_larger_than_the_limit_is_refused_before_reading()
    {
        using var store = _f.Open(o => o with { Limits = o.Limits with { MaxArchiveBytes = 100 * 1024 } });
        var archive = new TestArchive();
        var e = await Assert.ThrowsAsync<ArchiveRejectedException>(() =>
            store.IngestAsync(_f.Stage(archive), archive.Source(), IngestOptions.Default, null, CancellationToken.None));
        Assert.Contains("over the limit", e.Message);
    }

    [Fact]
    public async Task Too_many_entries_are_refused()
    {
        using var store = _f.Open(o => o with { Limits = o.Limits with { MaxEntries = 5 } });
        var archive = new TestArchive();
        var e = await Assert.ThrowsAsync<ArchiveRejectedException>(() =>
            store.IngestAsync(_f.Stage(archive), archive.Source(), IngestOptions.Default, null, CancellationToken.None));
        Assert.Contains("more than 5 entries", e.Message);
    }
}

using System.Formats.Tar;
using System.Text;
using System.Text.Json;
using Crsc.Cli;
using Crsc.Controllers.Storage;

namespace Crsc.Tests.Cli;

/// <summary>
/// <c>crsc inspect</c> of archives made to attack whoever looks at them: terminal escapes in names and fields, hostile
/// entries (shown, listed as findings, exit 1), memory bombs and endless input (refused promptly, in bounded memory).
/// </summary>
public sealed class InspectHostileTests : IDisposable
{
    private readonly CliStore _s = new();
    public void Dispose() => _s.Dispose();

    internal static byte[] Archive(Action<TarWriter>? extra = null, string containerName = "app")
    {
        var ms = new MemoryStream();
        using (var t = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
        {
            t.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "checkpoint/"));
            File(t, "checkpoint/pages-1.img", new byte[4096]);
            File(t, "config.dump", Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Dictionary<string, string> { ["id"] = "abc", ["name"] = containerName, ["runtime"] = "runc" })));
            File(t, "spec.dump", "{\"annotations\":{}}"u8.ToArray());
            extra?.Invoke(t);
        }
        return ms.ToArray();
    }

    internal static void File(TarWriter t, string name, byte[] data) =>
        t.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) });

    private string Write(byte[] bytes)
    {
        var path = _s.Dir.Combine($"a-{Guid.NewGuid():N}.tar");
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public async Task Inspect_escapes_control_characters_of_names_and_fields()
    {
        const string evilName = "checkpoint/\u001b]0;pwned\u0007x\nArchive:    /forged";
        // ustar: .NET's PAX reader takes a newline inside a record for its end
        var path = Write(Archive(t => t.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, evilName) { DataStream = new MemoryStream([1]) }), containerName: "app\u001b[2J\r\nImage: forged\u009b31m"));

        var (code, output, err) = await CliStore.RunAsync(["inspect", path, "--files"]);
        Assert.True(code == ExitCodes.Ok, err);
        Assert.DoesNotContain('\u001b', output);
        Assert.DoesNotContain('\u0007', output);
        Assert.DoesNotContain('\r', output);
        Assert.DoesNotContain('\u009b', output);
        Assert.DoesNotContain("\nArchive:    /forged", output);
        Assert.DoesNotContain("\nImage: forged", output);
        Assert.Contains(@"checkpoint/\x1b]0;pwned\x07x\x0aArchive:    /forged", output);
        Assert.Contains(@"app\x1b[2J\x0d\x0aImage: forged\x9b31m", output);

        (code, output, err) = await CliStore.RunAsync(["inspect", path, "--json"]);
        Assert.True(code == ExitCodes.Ok, err);
        Assert.DoesNotContain('\u001b', output);
        Assert.DoesNotContain('\u0007', output);
        using var doc = JsonDocument.Parse(output); // the serializer's escapes decode back to the names as they are
        Assert.Contains(doc.RootElement.GetProperty("files").EnumerateArray(), f => f.GetProperty("name").GetString() == evilName);
    }

    public static TheoryData<string, string> HostileEntries() => new()
    {
        { "traversal", "../../etc/cron.d/evil" },
        { "absolute", "/etc/shadow" },
        { "symlink-escape", "checkpoint/root-link" },
        { "symlink-chain", "x" },
        { "device", "checkpoint/mem" },
        { "duplicate", "config.dump" },
        { "hardlink-escape", "checkpoint/shadow" },
    };

    private static void AddHostile(TarWriter t, string kind)
    {
        switch (kind)
        {
            case "traversal": File(t, "../../etc/cron.d/evil", [1]); break;
            case "absolute": File(t, "/etc/shadow", [1]); break;
            case "symlink-escape": t.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "checkpoint/root-link") { LinkName = "../../../etc" }); break;
            case "symlink-chain":
                t.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "d/up") { LinkName = ".." });
                t.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "x") { LinkName = "d/up/../etc/passwd" });
                break;
            case "device": t.WriteEntry(new PaxTarEntry(TarEntryType.CharacterDevice, "checkpoint/mem") { DeviceMajor = 1, DeviceMinor = 1 }); break;
            case "duplicate": File(t, "config.dump", "{}"u8.ToArray()); break;
            case "hardlink-escape": t.WriteEntry(new PaxTarEntry(TarEntryType.HardLink, "checkpoint/shadow") { LinkName = "../../etc/shadow" }); break;
            default: throw new ArgumentOutOfRangeException(nameof(kind));
        }
    }

    [Theory]
    [MemberData(nameof(HostileEntries))]
    public async Task Inspect_shows_a_hostile_archive_lists_each_hostile_entry_and_exits_1(string kind, string entry)
    {
        var path = Write(Archive(t => AddHostile(t, kind)));

        var (code, output, err) = await CliStore.RunAsync(["inspect", path, "--files"]);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("Files (", output); // still shown: a forensic tool
        Assert.Contains("not restorable", err);
        Assert.Contains(err.Split('\n'), l => l.StartsWith("crsc: finding: ", StringComparison.Ordinal) && l.Contains(entry, StringComparison.Ordinal));

        (code, output, err) = await CliStore.RunAsync(["inspect", path, "--json"]);
        Assert.Equal(ExitCodes.Failure, code);
        using var doc = JsonDocument.Parse(output);
        Assert.Contains(doc.RootElement.GetProperty("findings").EnumerateArray(), f => f.GetProperty("entry").GetString() == entry);
    }

    [Fact]
    public async Task Inspect_of_a_clean_archive_has_no_findings_and_exits_0()
    {
        var path = Write(Archive(t => t.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "checkpoint/img") { LinkName = "pages-1.img" })));
        var (code, output, err) = await CliStore.RunAsync(["inspect", path, "--json"]);
        Assert.True(code == ExitCodes.Ok, err);
        using var doc = JsonDocument.Parse(output);
        Assert.Empty(doc.RootElement.GetProperty("findings").EnumerateArray());
    }

    [Fact]
    public async Task Inspect_of_dev_zero_ends_promptly_saying_it_is_not_an_archive()
    {
        if (!System.IO.File.Exists("/dev/zero")) return;
        // all-zero blocks are the tar end marker; reading on after it never ends on /dev/zero (generous bound: a hang fails)
        var (code, output, err) = await Task.Run(() => CliStore.RunAsync(["inspect", "/dev/zero"])).WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Equal("", output);
        Assert.Contains("not a crsc checkpoint archive", err);
        Assert.Contains("no tar entries", err);
    }

    [Fact]
    public async Task Inspect_of_endless_zero_padding_after_an_archive_stops_reading()
    {
        // an archive followed by more zeros than any padding (a device, or a zstd stream that decompresses forever)
        var archive = Archive();
        var stream = new ConcatStream(archive, long.MaxValue);
        var report = await Task.Run(() => InspectCommand.Read(stream, CancellationToken.None, readToEnd: false)).WaitAsync(TimeSpan.FromSeconds(120));
        Assert.Contains(report.Warnings, w => w.Contains("follow the end of the tar archive", StringComparison.Ordinal));
        Assert.Equal("app", report.ContainerName);
    }

    [Fact]
    public async Task Inspect_refuses_a_memory_bomb_naming_the_limit_in_bounded_memory()
    {
        // 40 entries with 1 MB names: the tar reader would keep them all
        var bomb = Archive(t =>
        {
            for (var i = 0; i < 40; i++) File(t, new string((char)('a' + i % 26), 1 << 20), [1]);
        });
        var path = Write(bomb);
        var (code, _, err) = await CliStore.RunAsync(["inspect", path]);
        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("is refused", err);
        Assert.Contains("over the limit of", err);

        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.ThrowsAny<ArchiveRejectedException>(() => InspectCommand.Read(new MemoryStream(bomb), CancellationToken.None, readToEnd: false));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 48L << 20, $"{allocated} bytes allocated");
    }

    /// <summary>The bytes given, then zeros up to <c>length</c> bytes in all; not seekable.</summary>
    private sealed class ConcatStream(byte[] head, long length) : Stream
    {
        private long _pos;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, length - _pos);
            if (n <= 0) return 0;
            for (var i = 0; i < n; i++) buffer[offset + i] = _pos + i < head.Length ? head[_pos + i] : (byte)0;
            _pos += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

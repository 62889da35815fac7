using Crsc.Daemon;
using Xunit;

namespace Crsc.Tests.Daemon;

public sealed class StartupMemoryTests
{
    private const string Maps = """
        5568c52a5000-5568c52d1000 r--p 00000000 fe:00 5316774                    /usr/bin/crsc
        5568c52d1000-5568c5cf5000 r-xp 0002c000 fe:00 5316774                    /usr/bin/crsc
        5568c5cf5000-5568c6399000 r--p 00a50000 fe:00 5316774                    /usr/bin/crsc
        5568c67dd000-5568c6835000 rw-p 01537000 fe:00 5316774                    /usr/bin/crsc
        5568c6835000-5568c6faa000 rw-p 00000000 00:00 0 
        7f03574e6000-7f035763c000 r-xp 00026000 fe:00 332096                     /usr/lib/x86_64-linux-gnu/libc.so.6
        7f0357800000-7f0357801000 r--s 00000000 fe:00 1234                       /usr/bin/crsc
        7ffd1c5e0000-7ffd1c601000 rw-p 00000000 00:00 0                          [stack]
        not a mapping line
        """;

    [Fact]
    public void Picks_only_the_private_read_only_mappings_of_the_executable()
    {
        var picked = StartupMemory.ReadOnlyMappingsOf(Maps, "/usr/bin/crsc").ToList();
        Assert.Equal(
            [(0x5568c52a5000UL, 0x5568c52d1000UL, "r--p"), (0x5568c52d1000UL, 0x5568c5cf5000UL, "r-xp"), (0x5568c5cf5000UL, 0x5568c6399000UL, "r--p")],
            picked.Select(m => (m.Start, m.End, m.Permissions)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("zz-10 r--p 0 0 0 /x")]
    [InlineData("20-10 r--p 0 0 0 /x")]
    [InlineData("10-20")]
    public void Lines_that_are_not_mappings_are_skipped(string line) => Assert.Null(StartupMemory.Parse(line));

    [Fact]
    public void Parses_paths_with_spaces_and_anonymous_mappings()
    {
        Assert.Equal("/opt/my app/crsc", StartupMemory.Parse("10-20 r-xp 00000000 fe:00 1 /opt/my app/crsc")!.Value.Path);
        Assert.Equal("", StartupMemory.Parse("10-20 rw-p 00000000 00:00 0 ")!.Value.Path);
    }

    [Fact]
    public void Release_runs_on_this_process_without_error()
    {
        if (!OperatingSystem.IsLinux()) return;
        var report = StartupMemory.Release();
        Assert.Null(report.Error);
        Assert.True(report.Ranges > 0, "no read-only mapping of the test host's executable was found in /proc/self/maps");
    }

    [Fact]
    public void PageOut_gives_back_the_clean_pages_of_a_private_read_only_file_mapping()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var dir = new Crsc.Testing.TempDir();
        var path = Path.Combine(dir.Path, "image.bin");
        const int size = 8 << 20;
        File.WriteAllBytes(path, Enumerable.Range(0, size).Select(i => (byte)(i * 7)).ToArray());
        using var file = File.OpenHandle(path);
        var address = Mmap(0, size, ProtRead, MapPrivate, (int)file.DangerousGetHandle(), 0);
        Assert.NotEqual(-1, (long)address);
        try
        {
            long sum = 0;
            for (var offset = 0; offset < size; offset += 4096) sum += System.Runtime.InteropServices.Marshal.ReadByte(address, offset + 1);
            Assert.True(sum > 0);
            var before = ResidentKb(path);
            Assert.True(before >= 4096, $"only {before} kB resident after reading the whole mapping");

            var report = StartupMemory.PageOut(StartupMemory.ReadOnlyMappingsOf(File.ReadAllText("/proc/self/maps"), path));

            Assert.Null(report.Error);
            Assert.Equal(1, report.Ranges);
            var after = ResidentKb(path);
            Assert.True(after < before / 4, $"resident pages of the mapping: {before} kB before, {after} kB after");
            // the contents are still there: read back from the file on use
            Assert.Equal(unchecked((byte)(4097 * 7)), System.Runtime.InteropServices.Marshal.ReadByte(address, 4097));
        }
        finally
        {
            Munmap(address, size);
        }
    }

    private const int ProtRead = 1;
    private const int MapPrivate = 2;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static extern nint Mmap(nint address, nuint length, int protection, int flags, int fd, long offset);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "munmap")]
    private static extern int Munmap(nint address, nuint length);

    /// <summary>Rss of the executable's read-only private mappings, from /proc/self/smaps.</summary>
    private static long ResidentKb(string path)
    {
        long total = 0;
        var counting = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            if (StartupMemory.Parse(line) is { } m) counting = m.Path == path && m.Permissions is "r--p" or "r-xp";
            else if (counting && line.StartsWith("Rss:", StringComparison.Ordinal))
                total += long.Parse(line["Rss:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        }
        return total;
    }
}

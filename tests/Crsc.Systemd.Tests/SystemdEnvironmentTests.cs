using System.Diagnostics;
using Crsc.Testing;

namespace Crsc.Systemd.Tests;

public sealed class SystemdEnvironmentTests
{
    [Theory]
    [InlineData("8:12345", 8UL, 12345UL, true)]
    [InlineData("8:12346", 8UL, 12345UL, false)]
    [InlineData("9:12345", 8UL, 12345UL, false)]
    [InlineData("8:", 8UL, 12345UL, false)]
    [InlineData(":12345", 8UL, 12345UL, false)]
    [InlineData("8-12345", 8UL, 12345UL, false)]
    [InlineData("", 8UL, 12345UL, false)]
    public void JOURNAL_STREAM_matches_only_the_same_device_and_inode(string value, ulong device, ulong inode, bool matches)
    {
        Assert.Equal(matches, SystemdEnvironment.JournalStreamMatches(value, (device, inode)));
    }

    [Fact]
    public void Started_by_systemd_when_INVOCATION_ID_is_set_or_stderr_is_the_journal_stream()
    {
        Assert.True(SystemdEnvironment.IsStartedBySystemdCore("0123456789abcdef", null, null));
        Assert.True(SystemdEnvironment.IsStartedBySystemdCore(null, "8:99", (8, 99)));
        Assert.False(SystemdEnvironment.IsStartedBySystemdCore(null, "8:99", (8, 100)));
        Assert.False(SystemdEnvironment.IsStartedBySystemdCore("", null, (8, 99)));
        Assert.False(SystemdEnvironment.IsStartedBySystemdCore(null, null, null));
    }

    [Fact]
    public void makedev_matches_glibc()
    {
        Assert.Equal(0x801UL, SystemdEnvironment.MakeDevice(8, 1));
        Assert.Equal(0UL, SystemdEnvironment.MakeDevice(0, 0));
        Assert.Equal(0x1000_0010_0003UL, SystemdEnvironment.MakeDevice(0x1000, 0x103));
    }

    [Fact]
    public async Task The_identity_of_a_descriptor_is_what_stat_reports()
    {
        using var dir = new TempDir();
        var path = dir.Combine("file");
        await File.WriteAllTextAsync(path, "x");
        using var handle = File.OpenHandle(path);

        var identity = SystemdEnvironment.GetFileIdentity((int)handle.DangerousGetHandle());

        var stat = Process.Start(new ProcessStartInfo("stat", ["-c", "%d:%i", path]) { RedirectStandardOutput = true })!;
        var expected = (await stat.StandardOutput.ReadToEndAsync()).Trim();
        await stat.WaitForExitAsync();
        Assert.Equal(0, stat.ExitCode);
        Assert.NotNull(identity);
        Assert.Equal(expected, $"{identity.Value.Device}:{identity.Value.Inode}");
        Assert.True(SystemdEnvironment.JournalStreamMatches(expected, identity));
    }

    [Fact]
    public void Standard_error_has_an_identity()
    {
        Assert.NotNull(SystemdEnvironment.GetFileIdentity(2));
    }
}

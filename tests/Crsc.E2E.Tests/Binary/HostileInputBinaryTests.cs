using System.Diagnostics;
using System.Formats.Tar;
using Crsc.Testing;
using Xunit.Abstractions;

namespace Crsc.E2E.Tests.Binary;

/// <summary>
/// Issue "Step 8", findings 8 and 9 on the AOT binary itself: the memory bombs that took `crsc inspect` to gigabytes
/// (or never ended) and the YAML aliases that crashed config loading, run as a user would run them, with the
/// process's peak resident memory (VmHWM, sampled while it runs) and its time bounded.
/// </summary>
[Trait("Category", "E2E")]
public sealed class HostileInputBinaryTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new("crsc-e2e-hostile-");
    public void Dispose() => _dir.Dispose();

    private const long MemoryBound = 200L << 20;
    private static readonly TimeSpan TimeBound = TimeSpan.FromSeconds(60);

    /// <summary>Runs the binary, sampling its peak RSS; kills it at the time bound.</summary>
    private async Task<(int Code, string Out, string Err, long PeakBytes, TimeSpan Took)> RunMeasuredAsync(params string[] args)
    {
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(PublishedBinary.Start(args))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        long peak = 0;
        while (!p.HasExited && sw.Elapsed < TimeBound)
        {
            try { p.Refresh(); peak = Math.Max(peak, p.PeakWorkingSet64); }
            catch (InvalidOperationException) { break; }
            await Task.Delay(5);
        }
        if (!p.HasExited) p.Kill();
        await p.WaitForExitAsync();
        output.WriteLine($"crsc {string.Join(' ', args.Select(a => a.Length > 60 ? a[..60] + "…" : a))}: exit {p.ExitCode}, peak {peak >> 20} MiB, {sw.Elapsed.TotalSeconds:0.0} s");
        return (p.ExitCode, await stdout, await stderr, peak, sw.Elapsed);
    }

    [Fact]
    public async Task Inspect_of_a_small_zstd_archive_of_long_names_stays_small_and_ends_with_a_finding()
    {
        // 500 entries with a 1 MiB name each: 500 MiB of names in a file of a few KiB once compressed
        var tar = _dir.Combine("bomb.tar");
        await using (var f = File.Create(tar))
        await using (var w = new TarWriter(f, TarEntryFormat.Gnu))
            for (var i = 0; i < 500; i++)
                await w.WriteEntryAsync(new GnuTarEntry(TarEntryType.RegularFile, new string((char)('a' + i % 26), 1 << 20)));
        using (var z = Process.Start(new ProcessStartInfo("zstd", ["-q", "-19", "--rm", tar]) { UseShellExecute = false })!) await z.WaitForExitAsync();
        var bomb = tar + ".zst";
        output.WriteLine($"{bomb}: {new FileInfo(bomb).Length} bytes");
        Assert.True(new FileInfo(bomb).Length < 1 << 20);

        var r = await RunMeasuredAsync("inspect", bomb);
        Assert.True(r.Took < TimeBound, "inspect did not end");
        Assert.Equal(1, r.Code);
        Assert.Matches("over the limit of (4096|128|65536)", r.Err + r.Out); // the limit is named
        Assert.True(r.PeakBytes < MemoryBound, $"peak RSS {r.PeakBytes >> 20} MiB");
    }

    [Fact]
    public async Task Inspect_of_dev_zero_ends_with_an_error_in_bounded_memory()
    {
        var r = await RunMeasuredAsync("inspect", "/dev/zero");
        Assert.True(r.Took < TimeBound, "inspect /dev/zero did not end");
        Assert.NotEqual(0, r.Code);
        Assert.True(r.PeakBytes < MemoryBound, $"peak RSS {r.PeakBytes >> 20} MiB");
    }

    [Theory]
    [InlineData("a: &a [*a]\n")]
    [InlineData("a: &a\n  b: *a\n")]
    [InlineData("x: &x [1,1,1,1,1,1,1,1,1]\ny: &y [*x,*x,*x,*x,*x,*x,*x,*x,*x]\nz: &z [*y,*y,*y,*y,*y,*y,*y,*y,*y]\nw: [*z,*z,*z,*z,*z,*z,*z,*z,*z]\n")]
    public async Task A_config_with_YAML_aliases_is_exit_78_naming_the_file_for_check_and_daemon(string yaml)
    {
        var config = _dir.Combine("config.yaml");
        await File.WriteAllTextAsync(config, yaml);
        var check = await RunMeasuredAsync("config", "check", config);
        Assert.Equal(78, check.Code);
        Assert.Contains(config, check.Err);
        Assert.Contains("alias", check.Err, StringComparison.OrdinalIgnoreCase);
        Assert.True(check.PeakBytes < MemoryBound, $"peak RSS {check.PeakBytes >> 20} MiB");

        var daemon = await RunMeasuredAsync("daemon", "--config", config, "--socket", _dir.Combine("crsc.sock"));
        Assert.Equal(78, daemon.Code); // not SIGSEGV (139), not a restart loop
        Assert.True(daemon.Took < TimeSpan.FromSeconds(10));
    }
}

using Crsc.Cli;
using Crsc.Controllers.Storage;
using Crsc.Storage;
using Crsc.Testing;

namespace Crsc.Tests.Cli;

/// <summary>
/// <c>crsc inspect</c>'s reader against a few thousand generated hostile tars (seeded): each is reported (hostile
/// entries as findings) or refused with its documented exceptions, in bounded memory and with bounded lists.
/// </summary>
public sealed class InspectFuzzTests
{
    private const int Inputs = 3000;
    private const long MemoryBound = 64L << 20;

    [Fact]
    public void Generated_hostile_tars_are_reported_or_refused_in_bounded_memory()
    {
        var limits = new ArchiveLimits { MaxMetadataBytes = 16 << 20, MaxNameBytesTotal = 8 << 20 };
        var findings = 0;
        for (var i = 0; i < Inputs; i++)
        {
            var bytes = HostileTars.Generate(new Random(5000 + i));
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                var report = InspectCommand.Read(new MemoryStream(bytes), CancellationToken.None, readToEnd: false, limits);
                Assert.True(report.Files.Count <= limits.MaxEntries, $"input {i}: {report.Files.Count} files");
                Assert.True(report.Findings.Count <= 1000, $"input {i}: {report.Findings.Count} findings");
                if (report.Findings.Count > 0) findings++;
                foreach (var f in report.Files) Assert.DoesNotContain('\u001b', InspectCommand.Escape(f.Name));
            }
            catch (Exception e) when (e is NotATarException or ArchiveRejectedException) { }
            catch (Exception e)
            {
                Assert.Fail($"input {i} (seed {5000 + i}, {bytes.Length} bytes): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < MemoryBound + 4L * bytes.Length, $"input {i} (seed {5000 + i}): {allocated} bytes allocated for {bytes.Length} bytes of input");
        }
        Assert.True(findings > 0);
    }
}

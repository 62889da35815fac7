using Crsc.Controllers.Storage;
using Crsc.Testing;

namespace Crsc.Storage.Tests;

/// <summary>
/// The ingest-time reader against a few thousand generated hostile tars (seeded): each is refused with
/// <see cref="ArchiveRejectedException"/> or accepted, never another exception, in bounded memory.
/// </summary>
public sealed class ArchiveFuzzTests
{
    private const int Inputs = 3000;
    private const long MemoryBound = 64L << 20; // the inputs are a few MB at most; a declared size is never allocated

    [Fact]
    public void Generated_hostile_tars_are_refused_or_accepted_in_bounded_memory()
    {
        var limits = new ArchiveLimits { MaxNameBytesTotal = 8 << 20 };
        var accepted = 0;
        for (var i = 0; i < Inputs; i++)
        {
            var bytes = HostileTars.Generate(new Random(1000 + i));
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                ArchiveBombTests.Inspect(bytes, limits);
                accepted++;
            }
            catch (ArchiveRejectedException) { }
            catch (Exception e)
            {
                Assert.Fail($"input {i} (seed {1000 + i}, {bytes.Length} bytes): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < MemoryBound + 4L * bytes.Length, $"input {i} (seed {1000 + i}): {allocated} bytes allocated for {bytes.Length} bytes of input");
        }
        Assert.True(accepted < Inputs); // the generator does produce refusals (and the test sees them)
    }
}

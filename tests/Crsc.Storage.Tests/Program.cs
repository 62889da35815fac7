using Crsc.Controllers.Storage;

namespace Crsc.Storage.Tests;

/// <summary>
/// Entry point of this test assembly when run as a child process (<c>dotnet exec Crsc.Storage.Tests.dll --crash-child …</c>):
/// it ingests an archive, stops at the named point, says <c>READY point</c> and waits to be SIGKILLed.
/// </summary>
public static class Program
{
    public const string CrashChildFlag = "--crash-child";

    public static async Task<int> Main(string[] args)
    {
        if (args is not [CrashChildFlag, var checkpoints, var staged, var point]) return 2;
        var store = new DiskCheckpointStore(new DiskCheckpointStoreOptions { CheckpointDirectory = checkpoints, NodeName = "child" });
        void Stop(string at)
        {
            Console.Out.WriteLine("READY " + at);
            Console.Out.Flush();
            Thread.Sleep(Timeout.Infinite);
        }
        store.FaultInjection = p => { if (p == point) Stop(p); };
        var progress = new SyncProgress(bytes => { if (point == "mid-archive" && bytes >= 2 << 20) Stop(point); });
        await store.IngestAsync(staged, new CheckpointedContainer("shop", "cart", "cart"), IngestOptions.Default, progress, CancellationToken.None);
        return 1; // never reached: the parent kills us first
    }
}

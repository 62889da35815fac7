using System.Diagnostics;
using System.Reflection;
using Crsc.Controllers.Storage;
using Crsc.Testing;

namespace Crsc.Storage.Tests;

/// <summary>
/// A crash at any step of an ingestion never leaves a partial archive visible, and recovery on the next start cleans up.
/// Simulated at every fault point, and for real: a child process SIGKILLed mid-ingestion.
/// </summary>
public sealed class CrashTests : IDisposable
{
    private readonly StoreFixture _f = new();
    public void Dispose() => _f.Dispose();

    [Theory]
    [InlineData(DiskCheckpointStore.FaultPoints.ArchiveWritten, RecoveryReason.TempFile)]
    [InlineData(DiskCheckpointStore.FaultPoints.ArchiveRenamed, RecoveryReason.ArchiveWithoutManifest)]
    [InlineData(DiskCheckpointStore.FaultPoints.ManifestWritten, RecoveryReason.TempFile)]
    public async Task A_crash_before_the_manifest_is_committed_leaves_no_checkpoint(string point, RecoveryReason expected)
    {
        var archive = new TestArchive();
        var staged = _f.Stage(archive);
        using (var store = _f.Open())
        {
            store.FaultInjection = p => { if (p == point) throw new InjectedCrashException(p); };
            await Assert.ThrowsAsync<InjectedCrashException>(() => store.IngestAsync(staged, archive.Source(), IngestOptions.Default, null, CancellationToken.None));
            Assert.NotEmpty(_f.StoreFiles()); // the crash left something on disk…
            Assert.Empty(store.List());       // …that no reader sees
        }

        using var restarted = _f.Open();
        Assert.Empty(restarted.List());
        var report = restarted.Recover();
        Assert.Contains(report.Removed, r => r.Reason == expected);
        if (point == DiskCheckpointStore.FaultPoints.ManifestWritten)
            Assert.Contains(report.Removed, r => r.Reason == RecoveryReason.ArchiveWithoutManifest);
        Assert.Contains(report.Removed, r => r.Reason == RecoveryReason.StagingLeftover && r.Path == staged);
        Assert.Empty(_f.StoreFiles());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_f.Staging));

        // and the store works normally afterwards
        var info = await restarted.IngestAsync(_f.Stage(archive), archive.Source(), IngestOptions.Default, null, CancellationToken.None);
        Assert.True((await restarted.VerifyAsync(info.Id, CancellationToken.None)).Valid);
    }

    [Fact]
    public async Task A_crash_after_the_commit_keeps_a_complete_verified_checkpoint()
    {
        var archive = new TestArchive();
        var staged = _f.Stage(archive);
        string? id = null;
        using (var store = _f.Open())
        {
            store.FaultInjection = p =>
            {
                if (p != DiskCheckpointStore.FaultPoints.ManifestCommitted) return;
                id = store.List().Single().Id;
                throw new InjectedCrashException(p);
            };
            await Assert.ThrowsAsync<InjectedCrashException>(() => store.IngestAsync(staged, archive.Source(), IngestOptions.Default, null, CancellationToken.None));
        }
        using var restarted = _f.Open();
        var report = restarted.Recover();
        Assert.Equal([new RecoveredItem(staged, RecoveryReason.StagingLeftover)], report.Removed);
        Assert.Equal(id, restarted.List().Single().Id);
        Assert.True((await restarted.VerifyAsync(id!, CancellationToken.None)).Valid);
    }

    [Fact]
    public async Task Recovery_does_not_touch_an_ingestion_in_flight()
    {
        var archive = new TestArchive();
        var staged = _f.Stage(archive);
        using var store = _f.Open();
        RecoveryReport? during = null;
        store.FaultInjection = p => { if (p == DiskCheckpointStore.FaultPoints.ArchiveRenamed) during = store.Recover(); };
        var info = await store.IngestAsync(staged, archive.Source(), IngestOptions.Default, null, CancellationToken.None);
        Assert.DoesNotContain(during!.Removed, r => r.Reason != RecoveryReason.StagingLeftover);
        Assert.True((await store.VerifyAsync(info.Id, CancellationToken.None)).Valid);
    }

    public static TheoryData<string> KillPoints() => ["mid-archive", DiskCheckpointStore.FaultPoints.ArchiveRenamed, DiskCheckpointStore.FaultPoints.ManifestWritten];

    [Theory]
    [MemberData(nameof(KillPoints))]
    public async Task A_process_killed_mid_ingestion_leaves_no_partial_checkpoint(string point)
    {
        var archive = new TestArchive { PageBytes = 6 << 20 };
        var staged = _f.Stage(archive);
        using var child = StartChild(_f.Checkpoints, staged, point);
        try
        {
            var line = await child.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(line == "READY " + point, $"child said '{line}'; stderr: {(child.HasExited ? await child.StandardError.ReadToEndAsync() : "")}");
            // the child holds the store: a second daemon would be refused
            Assert.Throws<StoreLockedException>(() => _f.Open());
            Assert.NotEmpty(_f.StoreFiles());
        }
        finally
        {
            child.Kill(); // SIGKILL: no finally blocks, no cleanup, no lock release by the process
            await child.WaitForExitAsync();
        }

        // the kernel released the lock; a fresh store never lists the partial archive
        using var store = _f.Open();
        Assert.Empty(store.List());
        var report = store.Recover();
        Assert.NotEmpty(report.Removed);
        Assert.Empty(_f.StoreFiles());
        Assert.Empty(Directory.EnumerateFileSystemEntries(_f.Staging));
    }

    private static Process StartChild(string checkpoints, string staged, string point)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        var psi = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "exec", Assembly.GetExecutingAssembly().Location, Program.CrashChildFlag, checkpoints, staged, point })
            psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }
}

using Crsc.Controllers.Schedules;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Autonomy;
using Crsc.Storage.Autonomy;
using Crsc.Testing;

namespace Crsc.Storage.Tests.Autonomy;

public sealed class OutboxJournalTests
{
    private static OutboxRecord R(int i) => new(OutboxRecordKind.Event, $"{{\"n\":{i},\"text\":\"record {i} ü\"}}");

    [Fact]
    public void Records_come_back_in_order_across_a_reopen_and_acknowledged_ones_stay_gone()
    {
        using var dir = new TempDir();
        var path = dir.Combine("state", "outbox");
        using (var journal = new OutboxJournal(path, 1 << 20))
        {
            journal.Append([R(1), R(2)]);
            journal.Append([R(3)]);
            var first = journal.Pending(10);
            Assert.Equal([R(1), R(2), R(3)], first.Select(e => e.Record));
            journal.Acknowledge(first[0]);
            Assert.Throws<InvalidOperationException>(() => journal.Acknowledge(first[2])); // only the oldest
        }
        using (var journal = new OutboxJournal(path, 1 << 20))
        {
            Assert.Equal([R(2), R(3)], journal.Pending(10).Select(e => e.Record));
            Assert.Equal(2, journal.Usage.Records);
            foreach (var e in journal.Pending(10)) journal.Acknowledge(e);
            Assert.Equal(0, journal.Usage.Records);
            journal.Append([R(4)]);
        }
        using (var journal = new OutboxJournal(path, 1 << 20))
            Assert.Equal([R(4)], journal.Pending(10).Select(e => e.Record));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(path, OutboxJournal.JournalFile)));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(path, OutboxJournal.AcknowledgedFile)));
    }

    [Fact]
    public void A_torn_tail_from_a_crash_mid_append_is_cut_and_the_records_before_it_are_kept()
    {
        using var dir = new TempDir();
        var path = dir.Combine("outbox");
        using (var journal = new OutboxJournal(path, 1 << 20)) journal.Append([R(1), R(2)]);
        var file = Path.Combine(path, OutboxJournal.JournalFile);
        var intact = new FileInfo(file).Length;
        // half of a third frame: a length, a checksum and a few bytes of its body
        using (var s = new FileStream(file, FileMode.Append)) s.Write([200, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]);
        using (var journal = new OutboxJournal(path, 1 << 20))
        {
            Assert.Equal([R(1), R(2)], journal.Pending(10).Select(e => e.Record));
            Assert.Equal(intact, new FileInfo(file).Length);
            journal.Append([R(3)]);
        }
        // a flipped byte inside the last record: its checksum fails and it is cut too
        var bytes = File.ReadAllBytes(file);
        bytes[^2] ^= 0xFF;
        File.WriteAllBytes(file, bytes);
        using (var journal = new OutboxJournal(path, 1 << 20))
            Assert.Equal([R(1), R(2)], journal.Pending(10).Select(e => e.Record));
    }

    [Fact]
    public void The_bound_refuses_an_append_whole_and_names_the_sizes()
    {
        using var dir = new TempDir();
        using var journal = new OutboxJournal(dir.Combine("outbox"), 2048);
        var big = new OutboxRecord(OutboxRecordKind.Event, new string('x', 900));
        journal.Append([big, big]);
        var e = Assert.Throws<OutboxFullException>(() => journal.Append([R(1), big]));
        Assert.StartsWith("outbox full: ", e.Message);
        Assert.Contains("of 2048 bytes", e.Message);
        // nothing of the refused append is there, and nothing before it was lost
        Assert.Equal([big, big], journal.Pending(10).Select(x => x.Record));
        journal.Acknowledge(journal.Pending(1)[0]);
        journal.Append([R(1)]);
        Assert.Equal([big, R(1)], journal.Pending(10).Select(x => x.Record));
    }
}

public sealed class NodeStateFileTests
{
    private static NodeState Sample() => new()
    {
        Node = "node-a",
        Schedules =
        [
            new SavedSchedule(new CheckpointSchedule
            {
                Metadata = new ObjectMeta { Name = "web", Namespace = "default", Uid = "u1", CreationTimestamp = new DateTimeOffset(2026, 3, 1, 10, 0, 0, TimeSpan.Zero) },
                Spec = new CheckpointScheduleSpec { Target = new ScheduleTarget { Kind = ScheduleTargetKind.Deployment, Name = "web" }, Interval = "30s" },
                Status = new CheckpointScheduleStatus { LastCheckpointTime = new DateTimeOffset(2026, 3, 1, 10, 5, 0, TimeSpan.Zero), LastCheckpointName = "web-app-20260301100500" },
            }, ["web-1"]),
        ],
        Pods = [new SavedPod("default", "web-1", "pod-uid", "web", ["app"])],
        Runs = [new ScheduleRun("u1", "web-1", "app", new DateTimeOffset(2026, 3, 1, 10, 5, 0, TimeSpan.Zero), "web-app-20260301100500")],
    };

    [Fact]
    public void A_saved_state_loads_back_the_same_and_is_private()
    {
        using var dir = new TempDir();
        var file = new NodeStateFile(dir.Combine("state", "node"));
        Assert.Null(file.Load());
        file.Save(Sample());
        var loaded = file.Load()!;
        Assert.Equal("node-a", loaded.Node);
        var schedule = Assert.Single(loaded.Schedules);
        Assert.Equal("30s", schedule.Schedule.Spec.Interval);
        Assert.Equal(new DateTimeOffset(2026, 3, 1, 10, 0, 0, TimeSpan.Zero), schedule.Schedule.Metadata.CreationTimestamp);
        Assert.Equal("web-app-20260301100500", schedule.Schedule.Status!.LastCheckpointName);
        Assert.Equal(["web-1"], schedule.Pods);
        Assert.Equal(Sample().Pods.Single() with { Containers = loaded.Pods.Single().Containers }, loaded.Pods.Single());
        Assert.Equal(Sample().Runs, loaded.Runs);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file.Path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir.Combine("state", "node")));
        // atomic: no temp file left beside it
        Assert.Equal([NodeStateFile.FileName], Directory.GetFiles(dir.Combine("state", "node")).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData("{\"formatVersion\":2,\"node\":\"node-a\"}")]
    [InlineData("{\"node\":\"node-a\"}")]
    [InlineData("{\"formatVersion\":1,\"node\":\"node-a\",\"schedules\":[{\"sch")]
    [InlineData("not json at all")]
    public void A_newer_or_corrupt_file_is_refused_without_an_exception(string content)
    {
        using var dir = new TempDir();
        var file = new NodeStateFile(dir.Path);
        File.WriteAllText(file.Path, content);
        Assert.Null(file.Load());
        // and the next save replaces it
        file.Save(Sample());
        Assert.NotNull(file.Load());
    }
}

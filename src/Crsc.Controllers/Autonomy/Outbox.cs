namespace Crsc.Controllers.Autonomy;

/// <summary>What kind of write an outbox record stands for; the number is stored in the journal.</summary>
public enum OutboxRecordKind : byte
{
    /// <summary>Create a ContainerCheckpoint (body: the object).</summary>
    CheckpointCreate = 1,
    /// <summary>Create the ContainerCheckpointContent of an offline checkpoint (body: <see cref="OfflineArchive"/>).</summary>
    ContentCreate = 2,
    /// <summary>Mark an offline checkpoint Completed (body: <see cref="OfflineArchive"/>).</summary>
    CheckpointStatus = 3,
    /// <summary>A schedule's lastCheckpointTime/Name (body: <see cref="OfflineScheduleRun"/>).</summary>
    ScheduleStatus = 4,
    /// <summary>Create a core/v1 Event (body: the event).</summary>
    Event = 5,
    /// <summary>Raise the count of an Event created earlier (body: the event with its name).</summary>
    EventRepeat = 6,
    /// <summary>
    /// An offline run is about to checkpoint (body: <see cref="OfflineRun"/>), written before the runtime is called: a
    /// crash before the run's records are appended leaves this mark, so the archive it may have stored is found at the
    /// next start. Nothing is published for it.
    /// </summary>
    RunStarted = 7,
    /// <summary>
    /// The run marked by a <see cref="RunStarted"/> ended without a checkpoint to publish (body: <see cref="OfflineRun"/>).
    /// A <see cref="CheckpointCreate"/> of the same name ends it too. Nothing is published for it.
    /// </summary>
    RunEnded = 8,
}

/// <summary>One write the cluster must learn: its kind and a JSON body.</summary>
public sealed record OutboxRecord(OutboxRecordKind Kind, string Body);

/// <summary>A record waiting in the outbox: where it is (its identity for acknowledging) and its size on disk.</summary>
public sealed record OutboxEntry(long Position, OutboxRecord Record, int Size);

/// <summary>What the outbox holds now.</summary>
public readonly record struct OutboxUsage(int Records, long Bytes, long MaxBytes)
{
    public bool IsFull(long reserve = 0) => Bytes + reserve > MaxBytes;
}

/// <summary>The outbox has no room for a record (its <c>outbox.maxBytes</c> bound).</summary>
public sealed class OutboxFullException(string message) : Exception(message);

/// <summary>
/// The on-disk journal of writes that wait for the API server (implemented in Crsc.Storage): appended in order,
/// durable when <see cref="Append"/> returns, read back from the oldest unacknowledged record, acknowledged one by one.
/// </summary>
public interface IOutbox
{
    /// <summary>Appends the records in order, durably (all or, after a crash mid-write, a prefix of them).</summary>
    /// <exception cref="OutboxFullException">they do not fit under the bound; nothing was appended</exception>
    void Append(IReadOnlyList<OutboxRecord> records);

    /// <summary>Up to <paramref name="max"/> unacknowledged records, oldest first.</summary>
    IReadOnlyList<OutboxEntry> Pending(int max);

    /// <summary>Marks <paramref name="entry"/> (the oldest pending one) as published.</summary>
    void Acknowledge(OutboxEntry entry);

    OutboxUsage Usage { get; }
}

namespace Crsc.Controllers.Storage;

/// <summary>Base of the checkpoint store's errors.</summary>
public class CheckpointStoreException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The staged archive is not an acceptable checkpoint; <see cref="Entry"/> names the offending tar entry when there is one.</summary>
public sealed class ArchiveRejectedException(string message, string? entry = null, Exception? inner = null)
    : CheckpointStoreException(message, inner)
{
    public string? Entry { get; } = entry;
}

/// <summary>A stored archive does not match its manifest (size or digest): it is refused.</summary>
public sealed class CheckpointCorruptException(string id, string message) : CheckpointStoreException(message)
{
    public string Id { get; } = id;
}

public sealed class CheckpointNotFoundException(string id)
    : CheckpointStoreException($"no committed checkpoint with id '{id}'")
{
    public string Id { get; } = id;
}

/// <summary>Another process (or another store instance) holds the store's lock.</summary>
public sealed class StoreLockedException(string lockPath, int? holderPid)
    : CheckpointStoreException(holderPid is { } pid
        ? $"the checkpoint store is locked by process {pid} (lock file {lockPath}); is another crsc daemon using this store?"
        : $"the checkpoint store is locked by another process (lock file {lockPath}); is another crsc daemon using this store?")
{
    public string LockPath { get; } = lockPath;
    public int? HolderPid { get; } = holderPid;
}

/// <summary>A name from the cluster (namespace, workload, pod, container) or an id is not acceptable in a path.</summary>
public sealed class InvalidCheckpointNameException(string kind, string value, string reason)
    : CheckpointStoreException($"invalid {kind} '{value}': {reason}")
{
    public string Kind { get; } = kind;
    public string Value { get; } = value;
}

/// <summary>A checkpoint from another node cannot be taken into this store (the message names it and why).</summary>
/// <param name="inProgress">see <see cref="InProgress"/></param>
public sealed class CheckpointImportException(string id, string message, bool inProgress = false) : CheckpointStoreException(message)
{
    public string Id { get; } = id;

    /// <summary>Another import of this checkpoint is under way: nothing is wrong with it, it may be in the store soon.</summary>
    public bool InProgress { get; } = inProgress;
}

using Crsc.Api;

namespace Crsc.Controllers.StaticPods;

/// <summary>A Secret or ConfigMap as saved for a checkpoint: its name and one file per key.</summary>
public sealed record StaticDataObject(string Name, IReadOnlyDictionary<string, byte[]> Files);

/// <summary>Everything one checkpoint writes: the sanitized manifest and the saved Secrets and ConfigMaps.</summary>
public sealed record StaticCheckpointData(
    ObjectKey Parent,
    byte[] Manifest,
    IReadOnlyList<StaticDataObject> Secrets,
    IReadOnlyList<StaticDataObject> ConfigMaps);

/// <summary>A checkpoint found on disk: whose it is, and whether its inactive and active copies exist.</summary>
public sealed record StoredStaticCheckpoint(ObjectKey Parent, bool Inactive, bool Active);

/// <summary>What the checkpointer remembers across restarts, per parent.</summary>
public sealed record StaticCheckpointTimers
{
    /// <summary>Since when the parent has not run here while the API server was unreachable (activation grace).</summary>
    public DateTimeOffset? DownSince { get; init; }

    /// <summary>Since when the parent has run again while its checkpoint was active (deactivation grace).</summary>
    public DateTimeOffset? UpSince { get; init; }

    /// <summary>The parent's resourceVersion the inactive checkpoint was last written from.</summary>
    public string? WrittenVersion { get; init; }

    /// <summary>When the inactive checkpoint was last written (or found unchanged).</summary>
    public DateTimeOffset? WrittenAt { get; init; }

    public bool IsEmpty => DownSince is null && UpSince is null && WrittenVersion is null && WrittenAt is null;
}

/// <summary>The checkpointer's persisted state: timers by parent.</summary>
public sealed record StaticCheckpointState(IReadOnlyDictionary<ObjectKey, StaticCheckpointTimers> Timers)
{
    public static readonly StaticCheckpointState Empty = new(new Dictionary<ObjectKey, StaticCheckpointTimers>());

    public StaticCheckpointTimers For(ObjectKey parent) => Timers.GetValueOrDefault(parent) ?? new StaticCheckpointTimers();

    public bool SameAs(StaticCheckpointState other) =>
        Timers.Count == other.Timers.Count
        && Timers.All(kv => other.Timers.TryGetValue(kv.Key, out var o) && o == kv.Value);
}

/// <summary>
/// The node's static-pod checkpoints on disk (inactive copies, active copies the kubelet runs, saved Secrets and
/// ConfigMaps) and the checkpointer's state. Implemented by <c>Crsc.Storage.StaticManifests.DiskStaticManifestStore</c>:
/// atomic writes, validated names, no symlinks followed, and only files crsc wrote are ever removed.
/// </summary>
public interface IStaticManifestStore
{
    /// <summary>The checkpoints crsc wrote (manifests carrying <c>crsc.io/checkpoint-of</c>), inactive or active.</summary>
    IReadOnlyList<StoredStaticCheckpoint> List();

    /// <summary>Writes (or refreshes) the inactive checkpoint and its Secrets/ConfigMaps; false when nothing changed.</summary>
    bool WriteInactive(StaticCheckpointData data);

    /// <summary>Copies the inactive checkpoint into the kubelet's manifest directory.</summary>
    void Activate(ObjectKey parent);

    /// <summary>Removes the active copy (the kubelet stops the pod); the inactive one stays.</summary>
    void Deactivate(ObjectKey parent);

    /// <summary>Removes the active and inactive copies and the saved Secrets and ConfigMaps.</summary>
    void Remove(ObjectKey parent);

    StaticCheckpointState LoadState();

    void SaveState(StaticCheckpointState state);
}

/// <summary>A store operation refused or failed; the message names the path or value concerned.</summary>
public sealed class StaticManifestStoreException(string message, Exception? inner = null) : Exception(message, inner);

using System.Text.Json.Serialization;

namespace Crsc.Api.Crds;

/// <summary>What happens to an archive when its object is deleted (like a PersistentVolume's reclaim policy).</summary>
public enum DeletionPolicy
{
    /// <summary>The archive and its <see cref="ContainerCheckpointContent"/> stay.</summary>
    Retain,
    /// <summary>The archive and its <see cref="ContainerCheckpointContent"/> go with the object.</summary>
    Delete,
}

/// <summary>A reference to a namespaced object.</summary>
public sealed class NamespacedObjectReference
{
    public string Namespace { get; set; } = "";
    public string Name { get; set; } = "";
    /// <summary>The object's UID when it was bound, so a later object of the same name is not mistaken for it.</summary>
    public string? Uid { get; set; }
}

/// <summary>How an archive is compressed on disk.</summary>
public enum ArchiveCompression
{
    [JsonStringEnumMemberName("none")] None,
    [JsonStringEnumMemberName("zstd")] Zstd,
}

/// <summary>How an archive is encrypted on disk.</summary>
public enum EncryptionAlgorithm
{
    [JsonStringEnumMemberName("none")] None,
    [JsonStringEnumMemberName("aes-256-gcm")] Aes256Gcm,
}

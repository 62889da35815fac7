namespace Crsc.Controllers.Replication;

/// <summary>What the registry of this node's configuration (<c>images.registry</c>, <c>images.registryMode</c>) does for checkpoints.</summary>
public enum CheckpointRegistryMode
{
    /// <summary>No registry is configured: a schedule asking <c>replicate: Registry</c> is told so.</summary>
    None,
    /// <summary>Every checkpoint image is pushed there when it is published: its reference names the registry already.</summary>
    Publish,
    /// <summary>The node's endpoint publishes; the checkpoints of schedules with <c>replicate: Registry</c> are copied there.</summary>
    Replicate,
}

using Crsc.Api.Kubernetes;

namespace Crsc.Api.Crds;

/// <summary>
/// What one node can do for crsc (<c>ckn</c>, cluster-scoped, named after the node): its container runtime and CRIU,
/// whether checkpoint and restore work there (and, when not, why and what to change), its archive store and its
/// node agent. Written by that node's agent only, and only when something changed; read by the leader (a Restore
/// into a pod on a node that cannot restore falls back at once) and by people (<c>kubectl get ckn</c>).
/// </summary>
public sealed class CheckpointNode : IKubernetesObject
{
    public const string KindName = "CheckpointNode";

    public string? ApiVersion { get; set; } = CrscApi.GroupVersion;
    public string? Kind { get; set; } = KindName;
    public ObjectMeta Metadata { get; set; } = new();
    public CheckpointNodeStatus? Status { get; set; }
}

/// <summary>Whether a node can checkpoint (or restore), as its node agent found out from the runtime itself.</summary>
public enum CapabilityState
{
    /// <summary>The runtime does it.</summary>
    Supported,
    /// <summary>The runtime could, but its configuration turns it off; <see cref="NodeCapability.Fix"/> says what to set.</summary>
    DisabledByConfig,
    /// <summary>This runtime (version), kernel or host cannot; <see cref="NodeCapability.Reason"/> says why.</summary>
    NotSupported,
    /// <summary>Not known: what could not be read is in <see cref="NodeCapability.Reason"/>; never a guess shown as a fact.</summary>
    Unknown,
}

/// <summary>One capability of a node: its state, why, and (when it can be turned on) the exact setting that does.</summary>
public sealed class NodeCapability
{
    public const int MaxTextLength = 1024;

    public CapabilityState State { get; set; } = CapabilityState.Unknown;
    public string Reason { get; set; } = "";
    /// <summary>The setting that turns it on, for this runtime and version (a config line and what to restart).</summary>
    public string? Fix { get; set; }
}

/// <summary>The node's container runtime, from CRI <c>Version</c>.</summary>
public sealed class NodeRuntime
{
    /// <summary>containerd, cri-o, …</summary>
    public string Name { get; set; } = "";
    public string Version { get; set; } = "";
    /// <summary>The CRI API version it speaks (v1).</summary>
    public string? ApiVersion { get; set; }
}

/// <summary>The node agent's archive store.</summary>
public sealed class NodeStore
{
    /// <summary>Checkpoints stored.</summary>
    public int Checkpoints { get; set; }
    /// <summary>Bytes the archives take.</summary>
    public long Bytes { get; set; }
    /// <summary>Free bytes on the store's file system, rounded down to <see cref="FreeBytesStep"/> so that the object
    /// does not change with every write on the node.</summary>
    public long FreeBytes { get; set; }
    /// <summary>The archives' size for people (<c>1.2 GiB</c>): the STORE printer column.</summary>
    public string Used { get; set; } = "";

    public const long FreeBytesStep = 1L << 30;
}

public sealed class CheckpointNodeStatus : IHasConditions
{
    public NodeRuntime? Runtime { get; set; }
    /// <summary><c>containerd 2.1.9</c>: the RUNTIME printer column.</summary>
    public string? RuntimeSummary { get; set; }
    /// <summary>The CRIU version on the node, when the agent can see it.</summary>
    public string? CriuVersion { get; set; }
    public NodeCapability Checkpoint { get; set; } = new();
    public NodeCapability Restore { get; set; } = new();
    public NodeStore? Store { get; set; }
    /// <summary>
    /// Whether the API server serves the pod-level checkpoint API (KEP-5823, group <c>checkpoint.k8s.io</c>):
    /// <c>served: checkpoint.k8s.io/v1alpha1</c>, or <c>not served</c>; absent when it could not be asked. crsc does not
    /// use it yet; it says whether a pod-level restore could be.
    /// </summary>
    public string? PodCheckpointApi { get; set; }
    /// <summary>The crsc version of the node agent that wrote this.</summary>
    public string? AgentVersion { get; set; }
    /// <summary>
    /// When the node agent last wrote this object: on a change, and at the latest every few hours. Liveness is the
    /// node's presence Lease (renewed every few seconds), not this.
    /// </summary>
    public DateTimeOffset? LastHeartbeatTime { get; set; }
    public List<Condition>? Conditions { get; set; }
}

/// <summary>Condition types of a <see cref="CheckpointNode"/>.</summary>
public static class CheckpointNodeConditions
{
    /// <summary>True when the node's runtime checkpoints (<see cref="CheckpointNodeStatus.Checkpoint"/> Supported).</summary>
    public const string CheckpointReady = "CheckpointReady";
    /// <summary>True when the node's runtime restores (<see cref="CheckpointNodeStatus.Restore"/> Supported).</summary>
    public const string RestoreReady = "RestoreReady";
}

using System.Text.Json.Serialization;
using Crsc.Api.Crds;
using Crsc.Controllers.Schedules;

namespace Crsc.Controllers.Autonomy;

/// <summary>
/// What the node needs to run its schedules alone (<c>&lt;stateDir&gt;/node/</c>): the CheckpointSchedules whose
/// targets have pods on this node (as last seen, status included), those pods, and the last run per schedule, pod and
/// container (online and offline runs alike).
/// </summary>
public sealed record NodeState
{
    /// <summary>The format this build writes; a file with another (newer, unknown) version is refused.</summary>
    public const int CurrentFormatVersion = 1;

    public int FormatVersion { get; init; } = CurrentFormatVersion;
    public required string Node { get; init; }
    public List<SavedSchedule> Schedules { get; init; } = [];
    public List<SavedPod> Pods { get; init; } = [];
    public List<ScheduleRun> Runs { get; init; } = [];
    /// <summary>
    /// The pods the going-away episode under way has checkpointed (or tried to): a daemon restarted in the middle of a
    /// drain does not take them again (<see cref="Crsc.Controllers.Nodes.NodeDrainCheckpoints"/>).
    /// </summary>
    public List<AwayTried> AwayTried { get; init; } = [];
}

/// <summary>A pod a going-away episode has checkpointed (or tried to), and when.</summary>
public sealed record AwayTried(string Namespace, string Pod, string? Uid, DateTimeOffset At);

/// <param name="Pods">names of the target's running pods on this node (in <see cref="NodeState.Pods"/>)</param>
public sealed record SavedSchedule(CheckpointSchedule Schedule, List<string> Pods);

/// <param name="Workload">the pod's workload name (Deployment, StatefulSet, or the pod itself) for the store's layout</param>
public sealed record SavedPod(string Namespace, string Name, string? Uid, string Workload, List<string> Containers);

/// <summary>An archive taken while the API server was away, as the outbox's Content and status records name it.</summary>
public sealed record OfflineArchive
{
    public required string Namespace { get; init; }
    public required string CheckpointName { get; init; }
    public required string ArchiveId { get; init; }
    public required string Node { get; init; }
    public string? PodUid { get; init; }
    public DateTimeOffset StartedAt { get; init; }
    public DateTimeOffset CompletedAt { get; init; }
}

/// <summary>A schedule's last run as the outbox reports it (applied only when newer than what the API server has).</summary>
public sealed record OfflineScheduleRun(string Namespace, string Name, string Uid, DateTimeOffset LastCheckpointTime, string LastCheckpointName);

/// <summary>
/// One offline run as the outbox marks its start and end (<see cref="OutboxRecordKind.RunStarted"/>,
/// <see cref="OutboxRecordKind.RunEnded"/>): what it checkpoints and when it started, so an archive it stored before a
/// crash can be told from others.
/// </summary>
public sealed record OfflineRun
{
    public required string Namespace { get; init; }
    /// <summary>The ContainerCheckpoint's name.</summary>
    public required string CheckpointName { get; init; }
    public required string Schedule { get; init; }
    public required string ScheduleUid { get; init; }
    public required string Pod { get; init; }
    public required string Container { get; init; }
    public required DateTimeOffset RunAt { get; init; }
    /// <summary>Before the runtime was called (whole seconds, rounded down): the archive is not older.</summary>
    public required DateTimeOffset StartedAt { get; init; }
    /// <summary>
    /// Set for a node-away run (NodeDrain, NodeShutdown; see <see cref="NodeAwayPublication"/>): its records are a node-away
    /// checkpoint's, not a run of the schedule; null for a schedule's offline run.
    /// </summary>
    public string? Reason { get; init; }
}

/// <summary>JSON of the node state and the outbox bodies (AOT: source-generated), with the CRD types' time format.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true,
    WriteIndented = false,
    Converters = [typeof(KubeTimeJsonConverter)])]
[JsonSerializable(typeof(NodeState))]
[JsonSerializable(typeof(OfflineArchive))]
[JsonSerializable(typeof(OfflineScheduleRun))]
[JsonSerializable(typeof(OfflineRun))]
public sealed partial class AutonomyJsonContext : JsonSerializerContext;

/// <summary>Where the node state lives; implemented in Crsc.Storage (atomic, versioned, 0600 in a 0700 directory).</summary>
public interface INodeStateFile
{
    /// <summary>The saved state; null when there is none, or when it is refused (unknown version, corrupt): logged.</summary>
    NodeState? Load();

    void Save(NodeState state);
}


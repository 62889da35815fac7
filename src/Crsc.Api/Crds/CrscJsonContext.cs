using System.Text.Json.Serialization;
using Crsc.Api.Kubernetes;

namespace Crsc.Api.Crds;

/// <summary>
/// Source-generated (AOT-clean) JSON for crsc's own resources: camelCase, nulls omitted, enums as their
/// API strings, times as <c>metav1.Time</c>. Same options as <see cref="KubeJsonContext"/> otherwise.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true,
    Converters = [typeof(KubeTimeJsonConverter)])]
[JsonSerializable(typeof(CheckpointSchedule))]
[JsonSerializable(typeof(KubeList<CheckpointSchedule>))]
[JsonSerializable(typeof(ContainerCheckpoint))]
[JsonSerializable(typeof(KubeList<ContainerCheckpoint>))]
[JsonSerializable(typeof(ContainerCheckpointContent))]
[JsonSerializable(typeof(KubeList<ContainerCheckpointContent>))]
[JsonSerializable(typeof(Restore))]
[JsonSerializable(typeof(KubeList<Restore>))]
[JsonSerializable(typeof(CheckpointNode))]
[JsonSerializable(typeof(KubeList<CheckpointNode>))]
public sealed partial class CrscJsonContext : JsonSerializerContext;

/// <summary>Where crsc's resources live in the API (<c>crsc.io/v1alpha1</c>) and how they are (de)serialized.</summary>
public static class CrscResources
{
    public static readonly ResourceType<CheckpointSchedule> CheckpointSchedules = new(
        CrscApi.Group, CrscApi.Version, "checkpointschedules", CheckpointSchedule.KindName, Namespaced: true,
        CrscJsonContext.Default.CheckpointSchedule, CrscJsonContext.Default.KubeListCheckpointSchedule);

    public static readonly ResourceType<ContainerCheckpoint> ContainerCheckpoints = new(
        CrscApi.Group, CrscApi.Version, "containercheckpoints", ContainerCheckpoint.KindName, Namespaced: true,
        CrscJsonContext.Default.ContainerCheckpoint, CrscJsonContext.Default.KubeListContainerCheckpoint);

    public static readonly ResourceType<ContainerCheckpointContent> ContainerCheckpointContents = new(
        CrscApi.Group, CrscApi.Version, "containercheckpointcontents", ContainerCheckpointContent.KindName, Namespaced: false,
        CrscJsonContext.Default.ContainerCheckpointContent, CrscJsonContext.Default.KubeListContainerCheckpointContent);

    public static readonly ResourceType<Restore> Restores = new(
        CrscApi.Group, CrscApi.Version, "restores", Restore.KindName, Namespaced: true,
        CrscJsonContext.Default.Restore, CrscJsonContext.Default.KubeListRestore);

    public static readonly ResourceType<CheckpointNode> CheckpointNodes = new(
        CrscApi.Group, CrscApi.Version, "checkpointnodes", CheckpointNode.KindName, Namespaced: false,
        CrscJsonContext.Default.CheckpointNode, CrscJsonContext.Default.KubeListCheckpointNode);
}

using System.Text.Json;
using Crsc.Api.Crds;

namespace Crsc.Controllers.Autonomy;

/// <summary>How the outbox's start and end marks of offline runs are matched (<see cref="OutboxRecordKind.RunStarted"/>).</summary>
internal static class OutboxRuns
{
    /// <summary>The start or end mark (<paramref name="kind"/>) of <paramref name="run"/>.</summary>
    public static OutboxRecord Mark(OutboxRecordKind kind, OfflineRun run) =>
        new(kind, JsonSerializer.Serialize(run, AutonomyJsonContext.Default.OfflineRun));

    /// <summary>
    /// Whether <paramref name="record"/> ends the run of ContainerCheckpoint <paramref name="ns"/>/<paramref name="name"/>:
    /// its end mark, or its ContainerCheckpoint (the run's records are appended). A corrupt record ends nothing.
    /// </summary>
    public static bool Ends(OutboxRecord record, string ns, string name)
    {
        try
        {
            return record.Kind switch
            {
                OutboxRecordKind.RunEnded => JsonSerializer.Deserialize(record.Body, AutonomyJsonContext.Default.OfflineRun) is { } run
                    && run.Namespace == ns && run.CheckpointName == name,
                OutboxRecordKind.CheckpointCreate => JsonSerializer.Deserialize(record.Body, CrscResources.ContainerCheckpoints.Json) is { } ckpt
                    && ckpt.Metadata.Namespace == ns && ckpt.Metadata.Name == name,
                _ => false,
            };
        }
        catch (JsonException)
        {
            return false;
        }
    }
}

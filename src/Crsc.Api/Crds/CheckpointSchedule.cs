using System.Text.Json.Serialization;
using Crsc.Api.Kubernetes;

namespace Crsc.Api.Crds;

/// <summary>
/// Periodic checkpoints of a workload's containers (<c>cks</c>). The node agent running the workload's
/// pods is the scheduler; each run creates a <see cref="ContainerCheckpoint"/>.
/// </summary>
public sealed class CheckpointSchedule : IKubernetesObject
{
    public const string KindName = "CheckpointSchedule";

    public string? ApiVersion { get; set; } = CrscApi.GroupVersion;
    public string? Kind { get; set; } = KindName;
    public ObjectMeta Metadata { get; set; } = new();
    public CheckpointScheduleSpec Spec { get; set; } = new();
    public CheckpointScheduleStatus? Status { get; set; }
}

/// <summary>The kinds of workload a schedule can target.</summary>
public enum ScheduleTargetKind { Deployment, StatefulSet, Pod }

public sealed class ScheduleTarget
{
    public ScheduleTargetKind Kind { get; set; }
    public string Name { get; set; } = "";
}

public sealed class CheckpointScheduleSpec
{
    public const int MaxContainers = 32;

    public ScheduleTarget Target { get; set; } = new();

    /// <summary>Containers to checkpoint; empty means every container but crsc's own sidecar.</summary>
    public List<string>? Containers { get; set; }

    /// <summary>Time between checkpoints (Go duration or seconds). Exactly one of this and <see cref="Cron"/>.</summary>
    public string? Interval { get; set; }

    /// <summary>Five-field cron schedule (evaluated in UTC). Exactly one of this and <see cref="Interval"/>.</summary>
    public string? Cron { get; set; }

    /// <summary>Which checkpoints to keep; the API server defaults it to <c>keepLast: 5</c>.</summary>
    public RetentionPolicy? Retention { get; set; }

    /// <summary>No new checkpoints while true; existing ones and retention are untouched.</summary>
    public bool Suspend { get; set; }

    /// <summary>
    /// Where each new checkpoint is copied besides its node's store, so that losing the node does not lose it:
    /// <see cref="CheckpointReplication.Registry"/> pushes its image to the registry crsc is configured with
    /// (<c>images.registry</c>), in the background; retention deletes what it pushed there as well.
    /// </summary>
    public CheckpointReplication Replicate { get; set; } = CheckpointReplication.None;

    /// <summary>The interval as a <see cref="TimeSpan"/>, or null when the schedule uses cron or the value is bad.</summary>
    [JsonIgnore]
    public TimeSpan? IntervalValue => Interval is not null && GoDuration.TryParse(Interval, out var v) && v > TimeSpan.Zero ? v : null;

    /// <summary>What the schema checks, in C#; each error names its field.</summary>
    public IReadOnlyList<FieldError> Validate()
    {
        var errors = new List<FieldError>();
        Check.Defined(errors, "spec.target.kind", Target.Kind);
        Check.Name(errors, "spec.target.name", Target.Name);
        if (Containers is not null)
        {
            if (Containers.Count > MaxContainers)
                errors.Add(new FieldError("spec.containers", $"must have at most {MaxContainers} items"));
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < Containers.Count; i++)
            {
                Check.Label(errors, $"spec.containers[{i}]", Containers[i]);
                if (!seen.Add(Containers[i]))
                    errors.Add(new FieldError($"spec.containers[{i}]", $"duplicate container '{Containers[i]}'"));
            }
        }
        if ((Interval is null) == (Cron is null))
            errors.Add(new FieldError("spec", "exactly one of interval or cron must be set"));
        Check.Duration(errors, "spec.interval", Interval);
        Check.CronSchedule(errors, "spec.cron", Cron);
        Retention?.Validate(errors, "spec.retention");
        Check.Defined(errors, "spec.replicate", Replicate);
        return errors;
    }
}

/// <summary>Where a schedule's checkpoints are copied besides their node's store.</summary>
public enum CheckpointReplication
{
    /// <summary>Only the node that took the checkpoint holds it.</summary>
    None,
    /// <summary>Its image is pushed to the configured registry as well.</summary>
    Registry,
}

/// <summary>Which checkpoints of a schedule to keep. Limits combine: a checkpoint goes when any says so.</summary>
public sealed class RetentionPolicy
{
    public const int DefaultKeepLast = 5;
    public const int MaxKeepLast = 1000;

    /// <summary>Keep at most this many completed checkpoints per container.</summary>
    public int? KeepLast { get; set; }

    /// <summary>Delete completed checkpoints older than this (Go duration or seconds).</summary>
    public string? MaxAge { get; set; }

    /// <summary>Keep the archives of each container under this many bytes in total.</summary>
    public long? MaxBytes { get; set; }

    [JsonIgnore]
    public TimeSpan? MaxAgeValue => MaxAge is not null && GoDuration.TryParse(MaxAge, out var v) && v > TimeSpan.Zero ? v : null;

    internal void Validate(List<FieldError> errors, string path)
    {
        if (KeepLast is null && MaxAge is null && MaxBytes is null)
            errors.Add(new FieldError(path, "set at least one of keepLast, maxAge or maxBytes"));
        Check.Range(errors, path + ".keepLast", KeepLast, 1, MaxKeepLast);
        Check.Duration(errors, path + ".maxAge", MaxAge);
        Check.Range(errors, path + ".maxBytes", MaxBytes, 1, long.MaxValue);
    }
}

public sealed class CheckpointScheduleStatus : IHasConditions
{
    public long? ObservedGeneration { get; set; }
    public DateTimeOffset? LastCheckpointTime { get; set; }
    public DateTimeOffset? NextCheckpointTime { get; set; }
    public string? LastCheckpointName { get; set; }
    public List<Condition>? Conditions { get; set; }
}

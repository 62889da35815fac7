using Crsc.Api.Kubernetes;

namespace Crsc.Api.Crds;

/// <summary>
/// Restores a workload's container from a checkpoint, in place (<c>rst</c>). Created by the pod
/// reconciler on a failure or by a user (<c>crsc restore</c>); the spec cannot change once created.
/// </summary>
public sealed class Restore : IKubernetesObject
{
    public const string KindName = "Restore";

    public string? ApiVersion { get; set; } = CrscApi.GroupVersion;
    public string? Kind { get; set; } = KindName;
    public ObjectMeta Metadata { get; set; } = new();
    public RestoreSpec Spec { get; set; } = new();
    public RestoreStatus? Status { get; set; }
}

public enum RestoreTargetKind { Deployment, Pod }

public sealed class RestoreTarget
{
    public RestoreTargetKind Kind { get; set; }
    public string Name { get; set; } = "";
}

/// <summary>What to do when the restore keeps failing.</summary>
public enum RestoreFallback
{
    /// <summary>Put the original image back: the application starts fresh, without its state.</summary>
    ColdStart,
    /// <summary>Stop and leave the pod as it is, for a person to look at.</summary>
    Fail,
}

public sealed class RestoreSpec
{
    public const int DefaultMaxAttempts = 3;
    public const int MaxMaxAttempts = 10;

    public RestoreTarget Target { get; set; } = new();
    /// <summary>The container to restore; empty means the workload's only container besides crsc's sidecar.</summary>
    public string? Container { get; set; }
    /// <summary>The <see cref="ContainerCheckpoint"/> to restore from; empty means the latest completed one.</summary>
    public string? CheckpointName { get; set; }
    public RestoreFallback Fallback { get; set; } = RestoreFallback.ColdStart;
    public int MaxAttempts { get; set; } = DefaultMaxAttempts;

    public IReadOnlyList<FieldError> Validate()
    {
        var errors = new List<FieldError>();
        Check.Defined(errors, "spec.target.kind", Target.Kind);
        Check.Name(errors, "spec.target.name", Target.Name);
        Check.Label(errors, "spec.container", Container, required: false);
        Check.Name(errors, "spec.checkpointName", CheckpointName, required: false);
        Check.Defined(errors, "spec.fallback", Fallback);
        Check.Range(errors, "spec.maxAttempts", MaxAttempts, 1, MaxMaxAttempts);
        return errors;
    }
}

public enum RestorePhase { Pending, Restoring, Restored, Failed, FellBack }

public sealed class RestoreStatus : IHasConditions
{
    public long? ObservedGeneration { get; set; }
    public RestorePhase? Phase { get; set; }
    /// <summary>Restore attempts made so far (at most <see cref="RestoreSpec.MaxAttempts"/>).</summary>
    public int? Attempts { get; set; }
    /// <summary>The checkpoint chosen (the spec's, or the latest completed one).</summary>
    public string? CheckpointName { get; set; }
    /// <summary>The pod being restored in place.</summary>
    public string? PodName { get; set; }
    public string? Message { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }
    public List<Condition>? Conditions { get; set; }
}

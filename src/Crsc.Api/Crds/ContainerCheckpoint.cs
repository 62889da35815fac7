using Crsc.Api.Kubernetes;

namespace Crsc.Api.Crds;

/// <summary>
/// One checkpoint of one container of one pod (<c>ckpt</c>), created by a user or a schedule and
/// executed by the node agent of the pod's node. The spec cannot change once created.
/// </summary>
public sealed class ContainerCheckpoint : IKubernetesObject
{
    public const string KindName = "ContainerCheckpoint";

    public string? ApiVersion { get; set; } = CrscApi.GroupVersion;
    public string? Kind { get; set; } = KindName;
    public ObjectMeta Metadata { get; set; } = new();
    public ContainerCheckpointSpec Spec { get; set; } = new();
    public ContainerCheckpointStatus? Status { get; set; }
}

public sealed class ContainerCheckpointSpec
{
    public string PodName { get; set; } = "";
    public string Container { get; set; } = "";

    /// <summary>
    /// Copied to the <see cref="ContainerCheckpointContent"/>; from then on the content's policy (which can
    /// be changed there, e.g. to keep an archive) decides.
    /// </summary>
    public DeletionPolicy DeletionPolicy { get; set; } = DeletionPolicy.Delete;

    public IReadOnlyList<FieldError> Validate()
    {
        var errors = new List<FieldError>();
        Check.Name(errors, "spec.podName", PodName);
        Check.Label(errors, "spec.container", Container);
        Check.Defined(errors, "spec.deletionPolicy", DeletionPolicy);
        return errors;
    }
}

public enum ContainerCheckpointPhase { Pending, Running, Completed, Failed }

public sealed class ContainerCheckpointStatus : IHasConditions
{
    /// <summary>Longest CRIU log excerpt kept in the status (the end of the log, where the error is).</summary>
    public const int MaxCriuLogLength = 4096;

    public long? ObservedGeneration { get; set; }
    public ContainerCheckpointPhase? Phase { get; set; }
    public string? Message { get; set; }
    /// <summary>The node that executed (or is executing) the checkpoint.</summary>
    public string? Node { get; set; }
    /// <summary>UID of the pod that was checkpointed.</summary>
    public string? PodUid { get; set; }
    /// <summary>The <see cref="ContainerCheckpointContent"/> holding the archive.</summary>
    public string? ContentName { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }
    public long? SizeBytes { get; set; }
    public string? Digest { get; set; }
    /// <summary>The tail of CRIU's log when a checkpoint failed and the runtime left one.</summary>
    public string? CriuLog { get; set; }
    public List<Condition>? Conditions { get; set; }

    /// <summary>Keeps the last <see cref="MaxCriuLogLength"/> characters of <paramref name="log"/>, starting at a line.</summary>
    public static string CriuLogExcerpt(string log)
    {
        ArgumentNullException.ThrowIfNull(log);
        if (log.Length <= MaxCriuLogLength) return log;
        var tail = log[^MaxCriuLogLength..];
        var newline = tail.IndexOf('\n');
        return newline >= 0 && newline < tail.Length - 1 ? tail[(newline + 1)..] : tail;
    }
}

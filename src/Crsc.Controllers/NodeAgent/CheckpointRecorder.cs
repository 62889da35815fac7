using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Kubernetes;
using Crsc.Controllers.Storage;
using KubeTime = Crsc.Api.Kubernetes.KubeTime;

namespace Crsc.Controllers.NodeAgent;

/// <summary>
/// Records a finished checkpoint in the cluster: the <see cref="ContainerCheckpointContent"/> of a
/// <see cref="ContainerCheckpoint"/> for its archive — named after the object's UID
/// (<see cref="ContainerCheckpointReconciler.ContentNameFor"/>), so a retry finds the one made before instead of
/// making a second — and the <c>Completed</c> status. Shared by the node agent's reconciler (runs it executed or an
/// earlier daemon stored) and the outbox publisher (runs taken while the API server was away), so both write the
/// same Content and the same status. Each caller writes the status itself, with its own answer to a conflict.
/// </summary>
public sealed class CheckpointRecorder
{
    private readonly IKubeResourceClient<ContainerCheckpointContent> _contents;

    public CheckpointRecorder(IKubeApi kube)
    {
        ArgumentNullException.ThrowIfNull(kube);
        _contents = kube.Resource(CrscResources.ContainerCheckpointContents);
    }

    /// <summary>The Content of <paramref name="ckpt"/>, or null when there is none yet.</summary>
    /// <exception cref="InvalidOperationException">a Content of that name belongs to another checkpoint</exception>
    public async Task<ContainerCheckpointContent?> FindContentAsync(ContainerCheckpoint ckpt, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(ckpt);
        try
        {
            return Mine(ckpt, await _contents.GetAsync(null, ContainerCheckpointReconciler.ContentNameFor(ckpt.Metadata.Uid ?? ""), ct)
                .ConfigureAwait(false));
        }
        catch (NotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// Creates the Content of <paramref name="ckpt"/> (which has its UID) for the archive <paramref name="info"/> on
    /// <paramref name="node"/>, or finds the one made before for the same object (<c>Created</c> false).
    /// </summary>
    /// <exception cref="InvalidOperationException">a Content of that name belongs to another checkpoint</exception>
    public async Task<(ContainerCheckpointContent Content, bool Created)> EnsureContentAsync(ContainerCheckpoint ckpt, CheckpointInfo info,
        string node, string? imageReference, CancellationToken ct)
    {
        var content = NewContent(ckpt, info, node, imageReference);
        try
        {
            return (await _contents.CreateAsync(content, ct).ConfigureAwait(false), true);
        }
        catch (AlreadyExistsException)
        {
            // a retry after a crash or a failed status write, or the other recorder (reconciler or outbox) first
            return (Mine(ckpt, await _contents.GetAsync(null, content.Metadata.Name!, ct).ConfigureAwait(false)), false);
        }
    }

    /// <summary>
    /// Sets <paramref name="status"/> to <c>Completed</c> from <paramref name="content"/>: node, Content, size and digest,
    /// the times and pod UID given, <paramref name="message"/> and the Progressing/Ready conditions.
    /// </summary>
    public static void MarkCompleted(ContainerCheckpointStatus status, ContainerCheckpointContent content, string message,
        string? podUid, DateTimeOffset startedAt, DateTimeOffset completedAt, long? generation, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(status);
        ArgumentNullException.ThrowIfNull(content);
        status.Phase = ContainerCheckpointPhase.Completed;
        status.Node = content.Spec.Node;
        status.ContentName = content.Metadata.Name;
        status.SizeBytes = content.Spec.SizeBytes;
        status.Digest = content.Spec.Digest;
        status.PodUid = podUid;
        status.StartedAt = KubeTime.Truncate(startedAt);
        status.CompletedAt = KubeTime.Truncate(completedAt);
        status.Message = message;
        status.CriuLog = null;
        status.ObservedGeneration = generation;
        status.SetCondition(ConditionTypes.Progressing, ConditionStatus.False, "Completed", message, generation, now);
        status.SetCondition(ConditionTypes.Ready, ConditionStatus.True, "Completed", message, generation, now);
    }

    private static ContainerCheckpointContent Mine(ContainerCheckpoint ckpt, ContainerCheckpointContent existing) =>
        existing.Spec.CheckpointRef.Uid == ckpt.Metadata.Uid ? existing : throw new InvalidOperationException(
            $"ContainerCheckpointContent {existing.Metadata.Name} exists and belongs to another checkpoint ({existing.Spec.CheckpointRef.Uid})");

    /// <summary>The Content of <paramref name="ckpt"/> for the archive <paramref name="info"/> on <paramref name="node"/>.</summary>
    private static ContainerCheckpointContent NewContent(ContainerCheckpoint ckpt, CheckpointInfo info, string node, string? imageReference)
    {
        ArgumentNullException.ThrowIfNull(ckpt);
        ArgumentNullException.ThrowIfNull(info);
        var uid = ckpt.Metadata.Uid ?? "";
        return new ContainerCheckpointContent
        {
            Metadata = new ObjectMeta
            {
                Name = ContainerCheckpointReconciler.ContentNameFor(uid),
                Labels = new() { [Labels.CheckpointUid] = uid },
                Annotations = new() { [Annotations.ArchiveId] = info.Id },
                // informative: the API's garbage collector does not delete a cluster-scoped object for a namespaced
                // owner; the archive finalizer does that for deletionPolicy Delete
                OwnerReferences =
                [
                    new OwnerReference
                    {
                        ApiVersion = CrscApi.GroupVersion,
                        Kind = ContainerCheckpoint.KindName,
                        Name = ckpt.Metadata.Name!,
                        Uid = uid,
                        Controller = true,
                    },
                ],
            },
            Spec = new ContainerCheckpointContentSpec
            {
                Node = node,
                Path = info.ArchivePath,
                Digest = info.Digest,
                SizeBytes = info.Size,
                Compression = info.Compression == CheckpointCompression.Zstd ? ArchiveCompression.Zstd : ArchiveCompression.None,
                ImageReference = imageReference,
                Source = new CheckpointSource
                {
                    Namespace = info.Namespace,
                    Pod = info.PodName ?? ckpt.Spec.PodName,
                    PodUid = info.PodUid ?? ckpt.Status?.PodUid,
                    Container = info.Container,
                    Image = info.Archive.ImageName,
                    ImageId = info.Archive.ImageId ?? info.Archive.ImageRef,
                },
                DeletionPolicy = ckpt.Spec.DeletionPolicy,
                CheckpointRef = new NamespacedObjectReference
                {
                    Namespace = ckpt.Metadata.Namespace!,
                    Name = ckpt.Metadata.Name!,
                    Uid = uid,
                },
            },
        };
    }
}

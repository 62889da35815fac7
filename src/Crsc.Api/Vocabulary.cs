namespace Crsc.Api;

// crsc's API strings (DESIGN.md §2): every annotation, label and finalizer name crsc reads or writes, in one place,
// the way checkpointctl's metadata package holds CRI-O's and Podman's. Stable: users, tooling and crsc's other
// reconcilers select by them, so a value never changes (tests/Crsc.Api.Tests pins each one). One constant a line; add
// yours in its group. Informer index names are not API: they stay private next to their indexer.

/// <summary>The annotation names crsc reads and writes.</summary>
public static class Annotations
{
    // --- on Deployments (users set them) ---

    /// <summary><c>"true"</c> on a Deployment: crsc manages it (a schedule, automatic restore on failure).</summary>
    public const string CheckpointRestore = "crsc.io/checkpoint-restore";
    /// <summary>Time between checkpoints of a managed Deployment (Go duration or plain seconds).</summary>
    public const string CheckpointInterval = "crsc.io/checkpoint-interval";
    /// <summary>What <see cref="CheckpointInterval"/> means when it is absent (a value, not a name).</summary>
    public const string DefaultCheckpointInterval = "10m";
    /// <summary>
    /// <c>registry</c> or <c>none</c> (also <c>Registry</c>, <c>None</c>): the <c>spec.replicate</c> of the schedule crsc
    /// makes for a managed Deployment (copies in <c>images.registry</c>, with <c>images.registryMode: replicate</c>).
    /// Absent: a new schedule gets <c>None</c>, an existing one keeps what it has.
    /// </summary>
    public const string CheckpointReplicate = "crsc.io/checkpoint-replicate";
    /// <summary><c>"true"</c> on a Deployment: crsc gives its pod template the interceptor sidecar (any other value: no sidecar).</summary>
    public const string Interceptor = "crsc.io/interceptor";
    /// <summary>
    /// <c>&lt;containerPort name or number&gt;:&lt;loopback port&gt;</c>, or a comma list of them: the app port the sidecar
    /// takes over (it moves to the sidecar, so Services keep working) and the port on 127.0.0.1 the app moves to.
    /// </summary>
    public const string InterceptorPort = "crsc.io/interceptor-port";
    /// <summary>
    /// Optional: the env var (one per <see cref="InterceptorPort"/> entry, comma-separated, in order) crsc sets on the app
    /// container to the loopback port. Absent: the app must listen on the loopback port by itself.
    /// </summary>
    public const string InterceptorPortEnv = "crsc.io/interceptor-port-env";
    /// <summary>
    /// <c>"true"</c> or <c>"false"</c> (absent: false): the sidecar keeps a log of the requests (of
    /// <see cref="InterceptorReplayMethods"/>) answered since the last completed checkpoint, and after a restore replays
    /// them to the restored app, in order, before it lets held traffic go.
    /// </summary>
    public const string InterceptorReplay = "crsc.io/interceptor-replay";
    /// <summary>
    /// Which requests are safe to replay: <c>all</c>, <c>non-GET</c> (all but GET, HEAD, OPTIONS) or a comma list of
    /// methods such as <c>POST,PUT</c>. Required (and not <c>none</c>) with <see cref="InterceptorReplay"/> <c>"true"</c>;
    /// ignored without it.
    /// </summary>
    public const string InterceptorReplayMethods = "crsc.io/interceptor-replay-methods";
    /// <summary>
    /// Written by crsc on a Deployment whose template it gave the sidecar: what the injection replaced (JSON), so that it
    /// is undone exactly when <see cref="Interceptor"/> goes away.
    /// </summary>
    public const string InterceptorOriginal = "crsc.io/interceptor-original";

    // --- on pods ---

    /// <summary>
    /// <c>"true"</c> on pods whose template crsc gave the interceptor sidecar (set in the pod template). Of a Deployment
    /// with <see cref="Interceptor"/>, only pods that carry it are restored automatically.
    /// </summary>
    public const string InterceptorSidecarAttached = "crsc.io/interceptor-sidecar-attached";
    /// <summary>
    /// The name of a ContainerCheckpoint of the pod's namespace: once the pod runs, the node agent of its node (any node,
    /// also another than the one the checkpoint was taken on) brings the checkpoint there and restores the container the
    /// checkpoint is of in place, through a Restore it creates (<see cref="RestoreFromPod"/>). The pod's condition
    /// <see cref="PodConditions.RestoreFrom"/> says how far it got or why it keeps running cold.
    /// </summary>
    public const string RestoreFrom = "crsc.io/restore-from";

    // --- static pods (manifests in the kubelet's static pod directory) ---

    /// <summary><c>"true"</c>: keep this pod alive without an API server (a static-pod checkpoint).</summary>
    public const string StaticCheckpoint = "crsc.io/static-checkpoint";
    /// <summary>The pod-checkpointer's annotation of the same meaning as <see cref="StaticCheckpoint"/>, accepted too.</summary>
    public const string CoreOsCheckpoint = "checkpointer.alpha.coreos.com/checkpoint";
    /// <summary>Marks a static-pod checkpoint crsc wrote and names its parent pod.</summary>
    public const string CheckpointOf = "crsc.io/checkpoint-of";

    // --- on ContainerCheckpoints and ContainerCheckpointContents ---

    /// <summary>On ContainerCheckpoints a schedule made: the due time of the run (UTC, RFC 3339).</summary>
    public const string ScheduledFor = "crsc.io/scheduled-for";
    /// <summary>
    /// On the Content: the store id of its archive. On a ContainerCheckpoint: the archive a node took for it while the
    /// API server was away (the outbox published it); the object is finished from that archive, never executed.
    /// </summary>
    public const string ArchiveId = "crsc.io/archive-id";
    /// <summary>On a ContainerCheckpoint the outbox published: the node that took it while the API server was away.</summary>
    public const string TakenOfflineOn = "crsc.io/taken-offline-on";
    /// <summary>
    /// On a ContainerCheckpoint taken because its node was going away: <c>NodeDrain</c> or <c>NodeShutdown</c> (the
    /// reason its archive's manifest records). The next pod of its workload is restored from it.
    /// </summary>
    public const string CheckpointReason = "crsc.io/checkpoint-reason";

    // --- on Restores made by the pod reconciler ---

    /// <summary>The pod whose failure the Restore answers.</summary>
    public const string FailedPod = "crsc.io/failed-pod";
    /// <summary>On Restores made by the failure detector: when the failure showed in the pod's status (RFC 3339).</summary>
    public const string FailedAt = "crsc.io/failed-at";
    /// <summary>
    /// On a Restore a node agent made for a pod's <see cref="RestoreFrom"/>: the pod's name (its UID is the label
    /// <see cref="Labels.RestoreFromPodUid"/>).
    /// </summary>
    public const string RestoreFromPod = "crsc.io/restore-from-pod";

    // --- on Restores a user creates ---

    /// <summary>
    /// <c>"true"</c>: the node may restore from an archive its key cannot vouch for (no MAC, or another key's); one whose
    /// MAC does not verify, or that is of another workload, is refused all the same (<c>crsc restore --allow-unauthenticated</c>).
    /// </summary>
    public const string AllowUnauthenticated = "crsc.io/allow-unauthenticated";

    // --- on pods the Restore reconciler restores in place ---

    /// <summary>The Restore that is restoring (or restored) this pod.</summary>
    public const string Restore = "crsc.io/restore";
    /// <summary>The ContainerCheckpoint the pod was restored from.</summary>
    public const string RestoredFrom = "crsc.io/restored-from";
    /// <summary><c>&lt;container&gt;=&lt;image&gt;</c>: the image before the restore patched it.</summary>
    public const string OriginalImage = "crsc.io/original-image";
    /// <summary>
    /// The container the restore's patch replaced, as the API server held its status when it took the patch (JSON:
    /// container, containerID, restartCount, state). Only a later container, or the checkpoint image, is the restored one.
    /// </summary>
    public const string ReplacedContainer = "crsc.io/replaced-container";
    /// <summary>
    /// On a pod crsc released from <see cref="SchedulingGates.RestorePlacement"/>: what it did (<c>restricted: …</c>, the
    /// nodes it kept the pod off because they cannot restore; or <c>released</c>, with why nothing was restricted).
    /// </summary>
    public const string Placement = "crsc.io/placement";
}

/// <summary>The scheduling gates crsc removes from pods (a workload opts in by putting one in its pod template).</summary>
public static class SchedulingGates
{
    /// <summary>
    /// Holds a new pod until crsc has looked at it: the replacement a Restore waits for gets a node affinity that keeps it
    /// off nodes whose runtime cannot restore, then the gate goes; any other pod is released at once.
    /// </summary>
    public const string RestorePlacement = "crsc.io/restore-placement";
}

/// <summary>The label names crsc puts on the objects it creates (and selects them by).</summary>
public static class Labels
{
    /// <summary>On ContainerCheckpoints a schedule created: the schedule's name.</summary>
    public const string Schedule = "crsc.io/schedule";
    /// <summary>On ContainerCheckpoints, CheckpointSchedules and Restores: the workload (Deployment, StatefulSet or pod) they are of.</summary>
    public const string Workload = "crsc.io/workload";
    /// <summary>On ContainerCheckpoints: the container checkpointed.</summary>
    public const string Container = "crsc.io/container";
    /// <summary>On a ContainerCheckpointContent: the UID of its ContainerCheckpoint.</summary>
    public const string CheckpointUid = "crsc.io/checkpoint-uid";
    /// <summary>
    /// On a Restore a node agent made for a pod's <see cref="Annotations.RestoreFrom"/>: the UID of that pod (one Restore
    /// per pod, also across restarts of the agent).
    /// </summary>
    public const string RestoreFromPodUid = "crsc.io/restore-from-pod-uid";
}

/// <summary>The condition types crsc writes on pods (their status subresource; the kubelet keeps conditions it does not own).</summary>
public static class PodConditions
{
    /// <summary>
    /// On a pod with <see cref="Annotations.RestoreFrom"/>: True (reason <c>RestoreRequested</c>) once its Restore is made;
    /// Unknown while the checkpoint is fetched to the pod's node; False, with the reason, when it cannot be restored and
    /// keeps running cold (<c>InvalidAnnotation</c>, <c>CheckpointNotFound</c>, <c>CheckpointUnreachable</c>, …).
    /// </summary>
    public const string RestoreFrom = "crsc.io/RestoreFrom";
}

/// <summary>The finalizers crsc puts on objects.</summary>
public static class Finalizers
{
    /// <summary>
    /// On a ContainerCheckpoint of <c>deletionPolicy: Delete</c>: deleting it deletes its archive (on its node) and its
    /// Content first.
    /// </summary>
    public const string Archive = "crsc.io/archive";
}

/// <summary>API group and version of crsc's own resources.</summary>
public static class CrscApi
{
    public const string Group = "crsc.io";
    public const string Version = "v1alpha1";
    public const string GroupVersion = Group + "/" + Version;
}

using System.Text.Json;
using Crsc.Api;
using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;
using Crsc.Controllers.Restores;

namespace Crsc.Controllers.Tests.Restores;

/// <summary>
/// <see cref="RestoreStages.Classify"/> row by row: each row a Restore and the pod of its status, built in a few lines,
/// and the stage they are in — the boundaries between stages included (patched but <c>patchedAt</c> empty, a pod made
/// again under the same name, <c>ImagesReady</c> False against Unknown, the timeouts' edges, terminal phases).
/// </summary>
public sealed class RestoreStagesTests
{
    private const string PodName = "counter-7d9f8c6b5-abcde";
    private const string CheckpointImage = "10.0.0.1:5055/shop/cp1@sha256:abc";
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly RestoreReconcilerOptions Options = new();

    private sealed record Row(Restore Restore, Pod? Pod, RestoreStage Stage, DateTimeOffset? Now = null)
    {
        public string? Detail { get; init; }
        public bool TimedOut { get; init; }
        public bool LookAgain { get; init; }
        public string? Container { get; init; }
    }

    private static readonly Dictionary<string, Row> Rows = new()
    {
        // ---- before a pod ----
        ["restored is finished"] = new(With(Pending(), r => r.Status!.Phase = RestorePhase.Restored), null, RestoreStage.Finished),
        ["failed is finished"] = new(With(Pending(), r => r.Status!.Phase = RestorePhase.Failed), null, RestoreStage.Finished),
        ["fell back is finished"] = new(With(Pending(), r => r.Status!.Phase = RestorePhase.FellBack), null, RestoreStage.Finished),
        ["finished with an invalid spec is finished"] = new(
            With(Pending(), r => { r.Status!.Phase = RestorePhase.Failed; r.Spec.MaxAttempts = 0; }), null, RestoreStage.Finished),
        ["invalid spec"] = new(With(Pending(), r => r.Spec.MaxAttempts = 0), null, RestoreStage.InvalidSpec)
        {
            Detail = "invalid spec: spec.maxAttempts",
        },
        ["invalid spec before it is started"] = new(With(Pending(), r => { r.Status = null; r.Spec.Target.Name = ""; }), null,
            RestoreStage.InvalidSpec) { Detail = "invalid spec: spec.target.name" },
        ["no status is new"] = new(With(Pending(), r => r.Status = null), null, RestoreStage.New),
        ["a status without phase is new"] = new(With(Pending(), r => r.Status!.Phase = null), null, RestoreStage.New),
        ["pending without a pod chooses one"] = new(Pending(), null, RestoreStage.ChoosingPod),
        ["a pod without status.podName is not the restore's"] = new(Pending(), LivePod(), RestoreStage.ChoosingPod),

        // ---- the pod ----
        ["the pod is not in the cache"] = new(OnPod(), null, RestoreStage.PodGone),
        ["the pod is terminating"] = new(OnPod(), With(LivePod(), p => p.Metadata.DeletionTimestamp = T0), RestoreStage.PodGone),
        ["the pod failed"] = new(OnPod(), With(LivePod(), p => p.Status!.Phase = "Failed"), RestoreStage.PodGone),
        ["the pod succeeded"] = new(OnPod(), With(LivePod(), p => p.Status!.Phase = "Succeeded"), RestoreStage.PodGone),
        ["a pod made again under the same name (UID differs)"] = new(OnPod(), With(LivePod(), p => p.Metadata.Uid = "uid-2"),
            RestoreStage.PodGone),
        ["a patched pod made again under the same name"] = new(Counted(), With(Patched(LivePod()), p => p.Metadata.Uid = "uid-2"),
            RestoreStage.PodGone),
        ["no recorded UID accepts the pod of that name"] = new(With(OnPod(), r => r.Status!.PodUid = null),
            With(LivePod(), p => p.Metadata.Uid = "uid-2"), RestoreStage.ChoosingCheckpoint) { Container = "app" },
        ["a pending pod that is not terminating is live"] = new(OnPod(), With(LivePod(), p => p.Status!.Phase = "Pending"),
            RestoreStage.ChoosingCheckpoint),
        ["spec.container names none of the pod's"] = new(With(OnPod(), r => r.Spec.Container = "db"), LivePod(),
            RestoreStage.ContainerNotFound) { Detail = "spec.container: pod counter-7d9f8c6b5-abcde has no container 'db'; it has: app" },
        ["two containers and none named"] = new(OnPod(), TwoContainers(), RestoreStage.ContainerNotFound)
        {
            Detail = "spec.container: pod counter-7d9f8c6b5-abcde has 2 containers (app, sidecar); name the one to restore",
        },
        ["two containers and one named"] = new(With(OnPod(), r => r.Spec.Container = "sidecar"), TwoContainers(),
            RestoreStage.ChoosingCheckpoint) { Container = "sidecar" },

        // ---- checkpoint and images ----
        ["no image yet chooses a checkpoint"] = new(OnPod(), LivePod(), RestoreStage.ChoosingCheckpoint) { Container = "app" },
        ["no ImagesReady within the timeout"] = new(Chosen(), LivePod(), RestoreStage.WaitingForImages,
            T0 + Options.ImagePreparationTimeout - TimeSpan.FromSeconds(1)),
        ["ImagesReady Unknown within the timeout"] = new(Chosen(ConditionStatus.Unknown), LivePod(), RestoreStage.WaitingForImages,
            T0 + Options.ImagePreparationTimeout - TimeSpan.FromSeconds(1)),
        ["no ImagesReady at the timeout"] = new(Chosen(), LivePod(), RestoreStage.ImagesOverdue, T0 + Options.ImagePreparationTimeout),
        ["ImagesReady Unknown past the timeout"] = new(Chosen(ConditionStatus.Unknown), LivePod(), RestoreStage.ImagesOverdue,
            T0 + Options.ImagePreparationTimeout + TimeSpan.FromMinutes(1)),
        ["ImagesReady False at once"] = new(Chosen(ConditionStatus.False), LivePod(), RestoreStage.ImagesFailed, T0),
        ["ImagesReady True at once"] = new(Chosen(ConditionStatus.True), LivePod(), RestoreStage.ReadyToPatch, T0) { Container = "app" },
        ["ImagesReady True past the timeout"] = new(Chosen(ConditionStatus.True), LivePod(), RestoreStage.ReadyToPatch,
            T0 + TimeSpan.FromHours(1)),

        // ---- counted, not (or no longer) patched ----
        ["counted and the pod not patched"] = new(Counted(), LivePod(), RestoreStage.CountedNotPatched),
        ["counted and the pod patched by another restore"] = new(Counted(),
            With(Patched(LivePod()), p => p.Metadata.Annotations![Annotations.Restore] = "other"), RestoreStage.CountedNotPatched),
        ["counted, the pod annotated as mine with restored-from, the original image"] = new(Counted(),
            With(Patched(LivePod()), p => p.Spec.Containers[0].Image = RestoreFixture.ImageV1), RestoreStage.CountedNotPatched),
        ["counted, the pod mine without restored-from: patched back"] = new(Counted(), PatchedBack(LivePod()), RestoreStage.PatchedBack),

        // ---- the attempt ----
        ["patched by me and patchedAt empty: the pod is replaced"] = new(With(Counted(), r => r.Status!.PatchedAt = null),
            Patched(LivePod()), RestoreStage.PodToReplace) { Container = "app" },
        ["patched and no container status yet"] = new(Counted(), Patched(LivePod()), RestoreStage.Restoring)
        {
            Detail = "no container status yet",
        },
        ["patched and the replaced container still runs"] = new(Counted(), Patched(LivePod()).Running(RestoreFixture.ImageV1, "c-old"),
            RestoreStage.Restoring) { LookAgain = true },
        ["patched and the replaced container crash-loops"] = new(Counted(),
            Patched(LivePod()).Waiting(RestoreFixture.ImageV1, "CrashLoopBackOff"), RestoreStage.Restoring) { LookAgain = true },
        ["patched and the new container is being created"] = new(Counted(),
            Patched(LivePod()).Waiting(CheckpointImage, "ContainerCreating"), RestoreStage.Restoring) { LookAgain = false },
        ["a second before the restore timeout"] = new(Counted(), Patched(LivePod()), RestoreStage.Restoring,
            T0 + Options.RestoreTimeout - TimeSpan.FromSeconds(1)),
        ["at the restore timeout"] = new(Counted(), Patched(LivePod()), RestoreStage.AttemptFailed, T0 + Options.RestoreTimeout)
        {
            TimedOut = true, Detail = "no container status yet",
        },
        ["the checkpoint image runs"] = new(Counted(), Patched(LivePod()).Running(CheckpointImage, "c-new"), RestoreStage.AttemptSucceeded),
        ["the base image runs in another container than the replaced one"] = new(Counted(),
            Patched(LivePod()).Running(RestoreFixture.ImageV1, "c-new"), RestoreStage.AttemptSucceeded),
        ["running past the restore timeout still succeeds"] = new(Counted(), Patched(LivePod()).Running(CheckpointImage, "c-new"),
            RestoreStage.AttemptSucceeded, T0 + TimeSpan.FromHours(1)),
        ["running but not ready with a readiness probe"] = new(Counted(), WithProbe(Patched(LivePod())).Running(CheckpointImage, "c-new"),
            RestoreStage.Restoring) { Detail = "running, not ready yet" },
        ["running and ready with a readiness probe"] = new(Counted(),
            WithProbe(Patched(LivePod())).Running(CheckpointImage, "c-new", ready: true), RestoreStage.AttemptSucceeded),
        ["the restored container terminated"] = new(Counted(), Patched(LivePod()).Terminated(CheckpointImage, 137), RestoreStage.AttemptFailed)
        {
            Detail = "the restored container terminated (Error, exit code 137)",
        },
        ["the replaced container terminated"] = new(Counted(), Patched(LivePod()).Terminated(RestoreFixture.ImageV1, 137),
            RestoreStage.Restoring) { LookAgain = true },
        ["the kubelet cannot start the new image"] = new(Counted(), Patched(LivePod()).Waiting(RestoreFixture.ImageV1, "ErrImagePull"),
            RestoreStage.AttemptFailed) { Detail = "ErrImagePull" },
    };

    public static TheoryData<string> Names => new(Rows.Keys);

    [Theory]
    [MemberData(nameof(Names))]
    public void Classifies(string name)
    {
        var row = Rows[name];
        var at = RestoreStages.Classify(row.Restore, row.Pod, row.Now ?? T0, Options);
        Assert.Equal(row.Stage, at.Stage);
        if (row.Detail is not null) Assert.StartsWith(row.Detail, at.Detail);
        if (row.Container is not null) Assert.Equal(row.Container, at.Container);
        Assert.Equal(row.TimedOut, at.TimedOut);
        Assert.Equal(row.LookAgain, at.LookAgain);
    }

    [Fact]
    public void Every_stage_has_a_row()
    {
        var covered = Rows.Values.Select(r => r.Stage).ToHashSet();
        Assert.Empty(Enum.GetValues<RestoreStage>().Except(covered));
    }

    [Fact]
    public void Only_the_stages_that_write_to_the_pod_need_the_servers_restore()
    {
        var needing = Enum.GetValues<RestoreStage>().Where(s => new RestoreSituation(s).NeedsServerCopy);
        Assert.Equal([RestoreStage.CountedNotPatched, RestoreStage.AttemptFailed, RestoreStage.PodToReplace], needing);
    }

    [Fact]
    public void Classifying_changes_neither_the_restore_nor_the_pod()
    {
        var restore = Counted();
        var pod = Patched(LivePod()).Terminated(CheckpointImage, 1);
        var before = (Json(restore), JsonSerializer.Serialize(pod, Resources.Pods.Json));
        RestoreStages.Classify(restore, pod, T0 + TimeSpan.FromHours(1), Options);
        Assert.Equal(before, (Json(restore), JsonSerializer.Serialize(pod, Resources.Pods.Json)));
    }

    // ---- restores ----

    private static string Json(Restore r) => JsonSerializer.Serialize(r, CrscResources.Restores.Json);

    private static Restore Pending() => new()
    {
        Metadata = new ObjectMeta { Name = "rst", Namespace = RestoreFixture.Ns, Generation = 1 },
        Spec = new RestoreSpec { Target = new RestoreTarget { Kind = RestoreTargetKind.Deployment, Name = RestoreFixture.Deployment } },
        Status = new RestoreStatus { Phase = RestorePhase.Pending, Attempts = 0, StartedAt = T0, WaitingSince = T0 },
    };

    private static Restore OnPod() => With(Pending(), r =>
    {
        r.Status!.PodName = PodName;
        r.Status.PodUid = "uid-1";
        r.Status.Node = "n1";
    });

    private static Restore Chosen(ConditionStatus? imagesReady = null) => With(OnPod(), r =>
    {
        r.Status!.Phase = RestorePhase.Restoring;
        r.Status.CheckpointName = "cp1";
        r.Status.Image = CheckpointImage;
        r.Status.OriginalImage = RestoreFixture.ImageV1;
        if (imagesReady is { } value) r.Status.SetCondition(RestoreConditions.ImagesReady, value, "Node", "images", 1, T0);
    });

    private static Restore Counted() => With(Chosen(ConditionStatus.True), r =>
    {
        r.Status!.Attempts = 1;
        r.Status.PatchedAt = T0;
    });

    // ---- pods ----

    private static Pod LivePod() => new()
    {
        Metadata = new ObjectMeta { Name = PodName, Namespace = RestoreFixture.Ns, Uid = "uid-1" },
        Spec = new PodSpec { NodeName = "n1", Containers = [new Container { Name = "app", Image = RestoreFixture.ImageV1 }] },
        Status = new PodStatus { Phase = "Running" },
    };

    private static Pod TwoContainers() => With(LivePod(), p => p.Spec.Containers.Add(new Container { Name = "sidecar", Image = "sidecar:1" }));

    /// <summary>As this Restore's patch leaves the pod: the checkpoint image, and the replaced container running as <c>c-old</c>.</summary>
    private static Pod Patched(Pod pod) => With(pod, p =>
    {
        p.Spec.Containers[0].Image = CheckpointImage;
        p.Metadata.Annotations = new Dictionary<string, string>
        {
            [Annotations.Restore] = "rst",
            [Annotations.RestoredFrom] = "cp1",
            [Annotations.OriginalImage] = "app=" + RestoreFixture.ImageV1,
            [Annotations.ReplacedContainer] = new ReplacedContainer("app", "c-old", 0, "running").ToAnnotation(),
        };
    });

    /// <summary>As the fallback's patch back leaves the pod: the original image, the restore annotation alone.</summary>
    private static Pod PatchedBack(Pod pod) => With(pod, p =>
        p.Metadata.Annotations = new Dictionary<string, string> { [Annotations.Restore] = "rst" });

    private static Pod WithProbe(Pod pod) => With(pod, p =>
        p.Spec.Containers[0].Extra = new Dictionary<string, JsonElement> { ["readinessProbe"] = JsonDocument.Parse("{}").RootElement });

    private static T With<T>(T value, Action<T> change)
    {
        change(value);
        return value;
    }
}

/// <summary>The kubelet's report of the pod's one restored container, set in one call.</summary>
internal static class PodStatusRows
{
    public static Pod Running(this Pod pod, string image, string containerId, bool ready = false) =>
        pod.Report(image, containerId, new ContainerState { Running = new ContainerStateRunning() }, ready);

    public static Pod Terminated(this Pod pod, string image, int exitCode) =>
        pod.Report(image, "c-new", new ContainerState { Terminated = new ContainerStateTerminated { ExitCode = exitCode, Reason = "Error" } });

    public static Pod Waiting(this Pod pod, string image, string reason) =>
        pod.Report(image, "", new ContainerState { Waiting = new ContainerStateWaiting { Reason = reason } });

    private static Pod Report(this Pod pod, string image, string containerId, ContainerState state, bool ready = false)
    {
        pod.Status!.ContainerStatuses = [new ContainerStatus { Name = "app", Image = image, ContainerID = containerId, State = state, Ready = ready }];
        return pod;
    }
}

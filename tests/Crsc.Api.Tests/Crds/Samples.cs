using Crsc.Api.Crds;
using Crsc.Api.Kubernetes;

namespace Crsc.Api.Tests.Crds;

/// <summary>Fully populated, valid objects of every crsc kind: every field set, so the tests see them all.</summary>
public static class Samples
{
    public static readonly DateTimeOffset T0 = new(2025, 5, 20, 10, 0, 0, TimeSpan.Zero);

    public static List<Condition> Conditions() =>
    [
        new Condition
        {
            Type = ConditionTypes.Ready, Status = ConditionStatus.True, ObservedGeneration = 2,
            LastTransitionTime = T0, Reason = "CheckpointStored", Message = "archive stored on node-a",
        },
    ];

    public static ObjectMeta Meta(string name, string? ns = "shop") => new()
    {
        Name = name, Namespace = ns, Uid = "6f1c2a4e-0000-4000-8000-000000000001", ResourceVersion = "42",
        Generation = 2, CreationTimestamp = T0, Labels = new() { ["app"] = "counter" },
    };

    public static CheckpointSchedule Schedule() => new()
    {
        Metadata = Meta("counter"),
        Spec = new CheckpointScheduleSpec
        {
            Target = new ScheduleTarget { Kind = ScheduleTargetKind.StatefulSet, Name = "counter" },
            Containers = ["app", "worker"],
            Interval = "1h30m",
            Retention = new RetentionPolicy { KeepLast = 5, MaxAge = "72h", MaxBytes = 10L << 30 },
            Suspend = true,
            Replicate = CheckpointReplication.Registry,
        },
        Status = new CheckpointScheduleStatus
        {
            ObservedGeneration = 2, LastCheckpointTime = T0, NextCheckpointTime = T0.AddMinutes(90),
            LastCheckpointName = "counter-app-20250520-100000", Conditions = Conditions(),
        },
    };

    public static ContainerCheckpoint Checkpoint() => new()
    {
        Metadata = Meta("counter-app-20250520-100000"),
        Spec = new ContainerCheckpointSpec { PodName = "counter-7d9f8-abcde", Container = "app", DeletionPolicy = DeletionPolicy.Retain },
        Status = new ContainerCheckpointStatus
        {
            ObservedGeneration = 1, Phase = ContainerCheckpointPhase.Completed, Message = "stored",
            Node = "node-a", PodUid = "0a0b0c0d-0000-4000-8000-000000000002", ContentName = "ckptc-0a0b0c0d",
            StartedAt = T0, CompletedAt = T0.AddSeconds(3), SizeBytes = 123_456_789,
            Digest = "sha256:" + new string('a', 64), CriuLog = "(00.001) Error (criu/cr-dump.c:1): oops\n",
            Conditions = Conditions(),
        },
    };

    public static ContainerCheckpointContent Content() => new()
    {
        Metadata = Meta("ckptc-0a0b0c0d", ns: null),
        Spec = new ContainerCheckpointContentSpec
        {
            Node = "node-a",
            Path = "/var/lib/crsc/checkpoints/shop/counter/app/20250520T100000Z.tar.zst",
            Digest = "sha256:" + new string('0', 32) + new string('f', 32),
            SizeBytes = 123_456_789,
            Compression = ArchiveCompression.Zstd,
            Encryption = new ArchiveEncryption { Algorithm = EncryptionAlgorithm.Aes256Gcm, KeyId = "node-key-1" },
            ImageReference = "node-a.crsc.local:5000/shop/counter-app@sha256:" + new string('b', 64),
            Source = new CheckpointSource
            {
                Namespace = "shop", Pod = "counter-7d9f8-abcde", PodUid = "0a0b0c0d-0000-4000-8000-000000000002",
                Container = "app", Image = "registry.example/counter:1.2", ImageId = "sha256:" + new string('c', 64),
            },
            DeletionPolicy = DeletionPolicy.Retain,
            CheckpointRef = new NamespacedObjectReference { Namespace = "shop", Name = "counter-app-20250520-100000", Uid = "6f1c2a4e-0000-4000-8000-000000000001" },
        },
        Status = new ContainerCheckpointContentStatus
        {
            Copies =
            [
                new CheckpointCopy { Kind = CheckpointCopyKind.Node, Node = "node-b", ImageReference = "node-b.crsc.local:5055/crsc/shop/counter/app@sha256:" + new string('b', 64), CopiedAt = T0 },
                new CheckpointCopy { Kind = CheckpointCopyKind.Registry, Node = "node-a", ImageReference = "registry.example/crsc/shop/counter/app@sha256:" + new string('b', 64), CopiedAt = T0 },
            ],
            Conditions = Conditions(),
        },
    };

    /// <summary>A Migration of a bare pod to a named node (spec only).</summary>
    public static Restore Migration() => new()
    {
        Metadata = Meta("counter-migrate-1"),
        Spec = new RestoreSpec
        {
            Target = new RestoreTarget { Kind = RestoreTargetKind.Pod, Name = "counter-0" },
            Container = "app", Mode = RestoreMode.Migration, TargetNode = "node-2",
        },
    };

    public static Restore Restore() => new()
    {
        Metadata = Meta("counter-restore-1"),
        Spec = new RestoreSpec
        {
            Target = new RestoreTarget { Kind = RestoreTargetKind.Deployment, Name = "counter" },
            Container = "app", CheckpointName = "counter-app-20250520-100000",
            Fallback = RestoreFallback.Fail, MaxAttempts = 5,
        },
        Status = new RestoreStatus
        {
            ObservedGeneration = 1, Phase = RestorePhase.FellBack, Attempts = 5,
            CheckpointName = "counter-app-20250520-100000", PodName = "counter-7d9f8-abcde",
            PodUid = "6f1c2a4e-0000-4000-8000-000000000002", Node = "node-1",
            Image = "10.0.0.1:5055/shop/counter@sha256:" + new string('a', 64), OriginalImage = "registry.local/counter:1",
            RestoredContainerId = "containerd://" + new string('c', 64), RestoredRestartCount = 2,
            Timeline = new RestoreTimeline
            {
                FailedAt = T0.AddSeconds(-5), CheckpointedAt = T0.AddSeconds(-3), SourceDeletedAt = T0.AddSeconds(-2),
                SourceStoppedAt = T0.AddSeconds(-1), CheckpointChosenAt = T0, ImagesReadyAt = T0.AddSeconds(20), PatchedAt = T0.AddMinutes(1),
                RunningAt = T0.AddMinutes(1).AddSeconds(2), RestoredAt = T0.AddMinutes(2),
            },
            PatchedAt = T0.AddMinutes(1), WaitingSince = T0,
            Message = "restore failed 5 times; original image put back", StartedAt = T0, CompletedAt = T0.AddMinutes(2),
            Downtime = "1m3s", SourcePodUid = "6f1c2a4e-0000-4000-8000-000000000001", SourceNode = "node-0",
            ReplicaSet = "counter-7d9f8", SourcePod = "{\"spec\":{\"containers\":[]}}", ReplacementPod = "counter-7d9f8-abcde",
            ReplacementPodUid = "6f1c2a4e-0000-4000-8000-000000000002", InPlaceRestore = "counter-7d9f8-abcde-from-0a1b2c3d",
            Conditions = Conditions(),
        },
    };

    public static CheckpointNode Node() => new()
    {
        Metadata = Meta("node-1", ns: null),
        Status = new CheckpointNodeStatus
        {
            Runtime = new NodeRuntime { Name = "containerd", Version = "v2.2.7", ApiVersion = "v1" },
            RuntimeSummary = "containerd v2.2.7",
            CriuVersion = "4.2.1",
            Checkpoint = new NodeCapability { State = CapabilityState.Supported, Reason = "CheckpointContainer answers" },
            Restore = new NodeCapability
            {
                State = CapabilityState.DisabledByConfig, Reason = "containerd 2.2.7 restores via CreateContainer only when enabled",
                Fix = "set enable_experimental_restore_via_create = true in the CRI runtime section and restart containerd",
            },
            Store = new NodeStore { Checkpoints = 3, Bytes = 3 << 20, FreeBytes = 40L << 30, Used = "3.0 MiB" },
            PodCheckpointApi = "not served",
            AgentVersion = "0.9.0",
            LastHeartbeatTime = T0,
            Conditions = Conditions(),
        },
    };
}

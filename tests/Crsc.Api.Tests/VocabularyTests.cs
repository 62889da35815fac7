using System.Reflection;
using Crsc.Api.Archives;
using Crsc.Api.Kubernetes;

namespace Crsc.Api.Tests;

/// <summary>
/// Pins every public name of crsc's vocabulary to its string: users, manifests, tooling and stored objects carry these
/// strings, so renaming a constant is free but changing (or dropping) a value is a break this test makes visible. A new
/// constant fails here until it is pinned too.
/// </summary>
public sealed class VocabularyTests
{
    private static readonly Dictionary<string, string> Pinned = new()
    {
        ["Annotations.CheckpointRestore"] = "crsc.io/checkpoint-restore",
        ["Annotations.CheckpointInterval"] = "crsc.io/checkpoint-interval",
        ["Annotations.CheckpointReason"] = "crsc.io/checkpoint-reason",
        ["Annotations.DefaultCheckpointInterval"] = "10m",
        ["Annotations.CheckpointReplicate"] = "crsc.io/checkpoint-replicate",
        ["Annotations.Interceptor"] = "crsc.io/interceptor",
        ["Annotations.InterceptorPort"] = "crsc.io/interceptor-port",
        ["Annotations.InterceptorPortEnv"] = "crsc.io/interceptor-port-env",
        ["Annotations.InterceptorReplay"] = "crsc.io/interceptor-replay",
        ["Annotations.InterceptorReplayMethods"] = "crsc.io/interceptor-replay-methods",
        ["Annotations.InterceptorOriginal"] = "crsc.io/interceptor-original",
        ["Annotations.InterceptorSidecarAttached"] = "crsc.io/interceptor-sidecar-attached",
        ["Annotations.RestoreFrom"] = "crsc.io/restore-from",
        ["Annotations.StaticCheckpoint"] = "crsc.io/static-checkpoint",
        ["Annotations.CoreOsCheckpoint"] = "checkpointer.alpha.coreos.com/checkpoint",
        ["Annotations.CheckpointOf"] = "crsc.io/checkpoint-of",
        ["Annotations.ScheduledFor"] = "crsc.io/scheduled-for",
        ["Annotations.ArchiveId"] = "crsc.io/archive-id",
        ["Annotations.TakenOfflineOn"] = "crsc.io/taken-offline-on",
        ["Annotations.FailedPod"] = "crsc.io/failed-pod",
        ["Annotations.FailedAt"] = "crsc.io/failed-at",
        ["Annotations.RestoreFromPod"] = "crsc.io/restore-from-pod",
        ["Annotations.AllowUnauthenticated"] = "crsc.io/allow-unauthenticated",
        ["Annotations.Restore"] = "crsc.io/restore",
        ["Annotations.RestoredFrom"] = "crsc.io/restored-from",
        ["Annotations.OriginalImage"] = "crsc.io/original-image",
        ["Annotations.ReplacedContainer"] = "crsc.io/replaced-container",
        ["Annotations.Placement"] = "crsc.io/placement",
        ["SchedulingGates.RestorePlacement"] = "crsc.io/restore-placement",

        ["Labels.Schedule"] = "crsc.io/schedule",
        ["Labels.Workload"] = "crsc.io/workload",
        ["Labels.Container"] = "crsc.io/container",
        ["Labels.CheckpointUid"] = "crsc.io/checkpoint-uid",
        ["Labels.RestoreFromPodUid"] = "crsc.io/restore-from-pod-uid",

        ["PodConditions.RestoreFrom"] = "crsc.io/RestoreFrom",

        ["Finalizers.Archive"] = "crsc.io/archive",

        ["CrscApi.Group"] = "crsc.io",
        ["CrscApi.Version"] = "v1alpha1",
        ["CrscApi.GroupVersion"] = "crsc.io/v1alpha1",

        ["CheckpointArchiveLayout.CheckpointDirectory"] = "checkpoint",
        ["CheckpointArchiveLayout.ConfigDump"] = "config.dump",
        ["CheckpointArchiveLayout.SpecDump"] = "spec.dump",
        ["CheckpointArchiveLayout.RootfsDiffTar"] = "rootfs-diff.tar",
        ["CheckpointArchiveLayout.DeletedFiles"] = "deleted.files",
        ["CheckpointArchiveLayout.BindMounts"] = "bind.mounts",
        ["CheckpointArchiveLayout.NetworkStatus"] = "network.status",
        ["CheckpointArchiveLayout.StatsDump"] = "stats-dump",
        ["CheckpointArchiveLayout.DumpLog"] = "dump.log",
        ["CheckpointArchiveLayout.ContainerdDumpLog"] = "criu-dump.log",
        ["CheckpointArchiveLayout.DumpCriuLog"] = "dump-criu.log",

        ["ConfigDumpFields.Id"] = "id",
        ["ConfigDumpFields.Name"] = "name",
        ["ConfigDumpFields.RootfsImageName"] = "rootfsImageName",
        ["ConfigDumpFields.RootfsImageRef"] = "rootfsImageRef",
        ["ConfigDumpFields.RootfsImage"] = "rootfsImage",
        ["ConfigDumpFields.Runtime"] = "runtime",
        ["ConfigDumpFields.CreatedTime"] = "createdTime",
        ["ConfigDumpFields.CheckpointedTime"] = "checkpointedTime",

        ["SpecDumpAnnotations.Key"] = "annotations",
        ["SpecDumpAnnotations.CriOImageName"] = "io.kubernetes.cri-o.ImageName",
        ["SpecDumpAnnotations.CriOImageRef"] = "io.kubernetes.cri-o.ImageRef",
        ["SpecDumpAnnotations.ContainerdContainerName"] = "io.kubernetes.cri.container-name",
        ["SpecDumpAnnotations.ContainerdSandboxName"] = "io.kubernetes.cri.sandbox-name",
        ["SpecDumpAnnotations.ContainerdSandboxNamespace"] = "io.kubernetes.cri.sandbox-namespace",
        ["SpecDumpAnnotations.ContainerdSandboxUid"] = "io.kubernetes.cri.sandbox-uid",
        ["SpecDumpAnnotations.ContainerdImageName"] = "io.kubernetes.cri.image-name",

        ["KubeletLabels.PodName"] = "io.kubernetes.pod.name",
        ["KubeletLabels.PodNamespace"] = "io.kubernetes.pod.namespace",
        ["KubeletLabels.PodUid"] = "io.kubernetes.pod.uid",
        ["KubeletLabels.ContainerName"] = "io.kubernetes.container.name",

        ["CheckpointImageAnnotations.CriOCheckpointName"] = "io.kubernetes.cri-o.annotations.checkpoint.name",
        ["CheckpointImageAnnotations.CheckpointName"] = "org.criu.checkpoint.container.name",
        ["CheckpointImageAnnotations.PodName"] = "org.criu.checkpoint.pod.name",
        ["CheckpointImageAnnotations.PodNamespace"] = "org.criu.checkpoint.pod.namespace",
        ["CheckpointImageAnnotations.RootfsImageName"] = "org.criu.checkpoint.rootfsImageName",
        ["CheckpointImageAnnotations.RootfsImageId"] = "org.criu.checkpoint.rootfsImageID",
        ["CheckpointImageAnnotations.RuntimeName"] = "org.criu.checkpoint.runtime.name",
        ["CheckpointImageAnnotations.HostArch"] = "org.criu.checkpoint.host.arch",
        ["CheckpointImageAnnotations.Created"] = "org.opencontainers.image.created",
        ["CheckpointImageAnnotations.CrscCheckpointId"] = "io.crsc.checkpoint.id",
        ["CheckpointImageAnnotations.CrscWorkload"] = "io.crsc.checkpoint.workload",
        ["CheckpointImageAnnotations.CrscNode"] = "io.crsc.checkpoint.node",

        ["StoreManifest.Kind"] = "crsc.io/checkpoint-manifest",
    };

    private static readonly Type[] Vocabulary =
    [
        typeof(Annotations), typeof(Labels), typeof(Finalizers), typeof(SchedulingGates), typeof(PodConditions), typeof(CrscApi),
        typeof(CheckpointArchiveLayout), typeof(ConfigDumpFields), typeof(SpecDumpAnnotations), typeof(KubeletLabels),
        typeof(CheckpointImageAnnotations), typeof(StoreManifest),
    ];

    private static Dictionary<string, string> Declared() =>
        Vocabulary.SelectMany(t => t.GetFields(BindingFlags.Public | BindingFlags.Static)
                .Where(f => f.IsLiteral && f.FieldType == typeof(string))
                .Select(f => (Name: $"{t.Name}.{f.Name}", Value: (string)f.GetRawConstantValue()!)))
            .ToDictionary(x => x.Name, x => x.Value);

    [Fact]
    public void Every_public_name_keeps_its_string()
    {
        var declared = Declared();
        Assert.Empty(Pinned.Keys.Except(declared.Keys)); // dropped or renamed: say so here on purpose
        Assert.Empty(declared.Keys.Except(Pinned.Keys)); // new: pin its value
        foreach (var (name, value) in Pinned) Assert.True(value == declared[name], $"{name} is '{declared[name]}', pinned '{value}'");
    }

    [Fact]
    public void No_two_names_share_a_string()
    {
        // one string, one constant: two names for it are the aliasing this vocabulary replaced
        var shared = Declared().GroupBy(x => x.Value).Where(g => g.Count() > 1).Select(g => string.Join(", ", g.Select(x => x.Key)));
        Assert.Empty(shared);
    }

    [Theory]
    [InlineData("checkpoint", true)]
    [InlineData("checkpoint/pstree.img", true)]
    [InlineData("checkpoints", false)]
    [InlineData("checkpoint.img", false)]
    [InlineData("rootfs-diff.tar", false)]
    public void Tells_the_checkpoint_directory(string name, bool inside) =>
        Assert.Equal(inside, CheckpointArchiveLayout.IsInCheckpointDirectory(name));

    [Theory]
    [InlineData("checkpoint/pages-1.img", true)]
    [InlineData("checkpoint/pages-12.img", true)]
    [InlineData("checkpoint/pagemap-1.img", false)]
    [InlineData("pages-1.img", false)]
    [InlineData("checkpoint/pages-1.img.bak", false)]
    public void Tells_the_memory_pages(string name, bool pages) =>
        Assert.Equal(pages, CheckpointArchiveLayout.IsMemoryPages(name));

    [Theory]
    [InlineData("dump.log", true)]
    [InlineData("./dump.log", true)]
    [InlineData("checkpoint/criu-dump.log", true)]
    [InlineData("work/dump-criu.log", true)]
    [InlineData("restore.log", false)]
    [InlineData("dump.log.1", false)]
    [InlineData("xdump.log", false)]
    public void Tells_the_dump_log_in_any_directory(string name, bool log) =>
        Assert.Equal(log, CheckpointArchiveLayout.IsDumpLog(name));

}

namespace Crsc.Api.Archives;

// The vocabulary of the checkpoint archive format and of the images and manifests crsc makes of it, in one place: the
// role checkpointctl's metadata package plays for CRI-O and Podman. The strings are the runtimes' (CRI-O, containerd,
// CRIU) or crsc's stored format: none may change. tests/Crsc.Api.Tests pins each one.

/// <summary>
/// The entries of a CRI checkpoint archive: the tar CRI-O and containerd write for a container checkpoint (and restore
/// from). Entry names are relative to the archive's root, without a leading <c>./</c>.
/// </summary>
public static class CheckpointArchiveLayout
{
    /// <summary>CRIU's images (<c>pstree.img</c>, <c>pages-*.img</c>, …): a checkpoint archive has this directory.</summary>
    public const string CheckpointDirectory = "checkpoint";
    /// <summary>The container's configuration as the runtime recorded it (JSON, <see cref="ConfigDumpFields"/>): required.</summary>
    public const string ConfigDump = "config.dump";
    /// <summary>The container's OCI runtime spec (JSON, its annotations <see cref="SpecDumpAnnotations"/>): required.</summary>
    public const string SpecDump = "spec.dump";
    /// <summary>The changes to the container's root file system since it started (a tar), when there are any.</summary>
    public const string RootfsDiffTar = "rootfs-diff.tar";
    /// <summary>The files of the image the container deleted (a JSON list), when there are any.</summary>
    public const string DeletedFiles = "deleted.files";
    /// <summary>The container's bind mounts (CRI-O: JSON), recreated as mount points before restoring.</summary>
    public const string BindMounts = "bind.mounts";
    /// <summary>The container's network status at the checkpoint (CRI-O).</summary>
    public const string NetworkStatus = "network.status";
    /// <summary>CRIU's statistics of the dump (CRIU's protobuf).</summary>
    public const string StatsDump = "stats-dump";

    /// <summary>CRIU's log of the dump as CRI-O (and runc) name it.</summary>
    public const string DumpLog = "dump.log";
    /// <summary>CRIU's log of the dump as containerd's runc shim names it.</summary>
    public const string ContainerdDumpLog = "criu-dump.log";
    /// <summary>CRIU's log of the dump under the name some runtimes' versions use.</summary>
    public const string DumpCriuLog = "dump-criu.log";

    /// <summary>CRIU's memory pages: <c>checkpoint/pages-&lt;n&gt;.img</c>.</summary>
    private const string PagesPrefix = CheckpointDirectory + "/pages-";
    private const string ImageSuffix = ".img";

    /// <summary>True for the <see cref="CheckpointDirectory"/> itself and every entry under it.</summary>
    public static bool IsInCheckpointDirectory(string name) =>
        name == CheckpointDirectory || name.StartsWith(CheckpointDirectory + "/", StringComparison.Ordinal);

    /// <summary>True for a file of CRIU's dumped memory (<c>checkpoint/pages-*.img</c>).</summary>
    public static bool IsMemoryPages(string name) =>
        name.StartsWith(PagesPrefix, StringComparison.Ordinal) && name.EndsWith(ImageSuffix, StringComparison.Ordinal);

    /// <summary>True for an entry holding CRIU's dump log (any of the runtimes' names, in any directory).</summary>
    public static bool IsDumpLog(string name)
    {
        var file = name.TrimEnd('/');
        file = file[(file.LastIndexOf('/') + 1)..];
        return file is DumpLog or ContainerdDumpLog or DumpCriuLog;
    }
}

/// <summary>The fields of <see cref="CheckpointArchiveLayout.ConfigDump"/> crsc reads (CRI-O's and containerd's <c>ContainerConfig</c>).</summary>
public static class ConfigDumpFields
{
    /// <summary>The runtime's container id.</summary>
    public const string Id = "id";
    /// <summary>The container's name (a fallback: the spec's annotations name the Kubernetes container).</summary>
    public const string Name = "name";
    /// <summary>The image the container ran, as the pod named it: the image a restore starts from.</summary>
    public const string RootfsImageName = "rootfsImageName";
    /// <summary>The image the container ran, as a reference by digest.</summary>
    public const string RootfsImageRef = "rootfsImageRef";
    /// <summary>The image's id.</summary>
    public const string RootfsImage = "rootfsImage";
    /// <summary>The OCI runtime that ran the container (runc, crun).</summary>
    public const string Runtime = "runtime";
    /// <summary>When the container was created (RFC 3339; Go's zero time when unknown).</summary>
    public const string CreatedTime = "createdTime";
    /// <summary>When the checkpoint was taken (RFC 3339; Go's zero time when unknown).</summary>
    public const string CheckpointedTime = "checkpointedTime";
}

/// <summary>
/// The annotations of <see cref="CheckpointArchiveLayout.SpecDump"/> (the OCI spec's <see cref="Key"/>) crsc reads. CRI-O
/// writes the kubelet's labels there (<see cref="Kubernetes.KubeletLabels"/>) and its own image names; containerd
/// writes its CRI annotations.
/// </summary>
public static class SpecDumpAnnotations
{
    /// <summary>The member of the OCI runtime spec that holds the annotations.</summary>
    public const string Key = "annotations";
    /// <summary>CRI-O: the image the container ran, as the pod named it.</summary>
    public const string CriOImageName = "io.kubernetes.cri-o.ImageName";
    /// <summary>CRI-O: the image the container ran, by digest.</summary>
    public const string CriOImageRef = "io.kubernetes.cri-o.ImageRef";
    /// <summary>containerd: the Kubernetes container's name.</summary>
    public const string ContainerdContainerName = "io.kubernetes.cri.container-name";
    /// <summary>containerd: the pod's name.</summary>
    public const string ContainerdSandboxName = "io.kubernetes.cri.sandbox-name";
    /// <summary>containerd: the pod's namespace.</summary>
    public const string ContainerdSandboxNamespace = "io.kubernetes.cri.sandbox-namespace";
    /// <summary>containerd: the pod's UID.</summary>
    public const string ContainerdSandboxUid = "io.kubernetes.cri.sandbox-uid";
    /// <summary>containerd: the image the container ran, as the pod named it.</summary>
    public const string ContainerdImageName = "io.kubernetes.cri.image-name";
}

/// <summary>
/// The annotations of a checkpoint image (an OCI image whose one layer is the archive). The runtimes recognise a
/// checkpoint image by ONE manifest annotation each (checked against their code, and on the real containerd 2.1 of
/// tests/sandbox): CRI-O by <see cref="CriOCheckpointName"/> (its <c>checkIfCheckpointOCIImage</c> reads the image's
/// annotations), containerd by <see cref="CheckpointName"/> (its <c>checkIfCheckpointOCIImage</c> unmarshals the
/// image's top-level manifest and reads its <c>annotations</c>; config labels are not looked at). The others are the
/// <c>org.criu.checkpoint.*</c> facts checkpointctl documents, for people and tools, and crsc's own.
/// </summary>
public static class CheckpointImageAnnotations
{
    public const string CriOCheckpointName = "io.kubernetes.cri-o.annotations.checkpoint.name";
    public const string CheckpointName = "org.criu.checkpoint.container.name";
    public const string PodName = "org.criu.checkpoint.pod.name";
    public const string PodNamespace = "org.criu.checkpoint.pod.namespace";
    public const string RootfsImageName = "org.criu.checkpoint.rootfsImageName";
    public const string RootfsImageId = "org.criu.checkpoint.rootfsImageID";
    public const string RuntimeName = "org.criu.checkpoint.runtime.name";
    public const string HostArch = "org.criu.checkpoint.host.arch";
    /// <summary>OCI pre-defined annotation: when the image (here: the checkpoint) was made.</summary>
    public const string Created = "org.opencontainers.image.created";
    /// <summary>crsc's own: the store id of the checkpoint (also the image's tag on the embedded endpoint).</summary>
    public const string CrscCheckpointId = "io.crsc.checkpoint.id";
    /// <summary>crsc's own: the workload the checkpoint is of.</summary>
    public const string CrscWorkload = "io.crsc.checkpoint.workload";
    /// <summary>crsc's own: the node that took the checkpoint.</summary>
    public const string CrscNode = "io.crsc.checkpoint.node";
}

/// <summary>The manifest (<c>&lt;id&gt;.json</c>) crsc's store keeps beside each archive.</summary>
public static class StoreManifest
{
    /// <summary>Its <c>kind</c>: a manifest of another kind is not read.</summary>
    public const string Kind = "crsc.io/checkpoint-manifest";
}

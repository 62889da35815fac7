namespace Crsc.Storage.Oci;

/// <summary>Media types of the OCI image spec (v1.1) and the distribution spec that crsc writes and serves.</summary>
public static class OciMediaTypes
{
    public const string ImageManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string ImageConfig = "application/vnd.oci.image.config.v1+json";
    /// <summary>The <c>index.json</c> of an image layout (crsc's own image, <see cref="ContainerImageBuilder"/>).</summary>
    public const string ImageIndex = "application/vnd.oci.image.index.v1+json";
    /// <summary>An uncompressed layer: the stored archive of an uncompressed checkpoint.</summary>
    public const string LayerTar = "application/vnd.oci.image.layer.v1.tar";
    /// <summary>A zstd layer: the stored archive of a zstd checkpoint, as it is on disk.</summary>
    public const string LayerTarZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// <summary>What the distribution endpoint answers for blobs.</summary>
    public const string OctetStream = "application/octet-stream";
}

/// <summary>
/// The annotations of a checkpoint image. The runtimes recognise a checkpoint image by ONE manifest annotation each
/// (checked against their code, and on the real containerd 2.1 of tests/sandbox): CRI-O by
/// <see cref="CriOCheckpointName"/> (its <c>checkIfCheckpointOCIImage</c> reads the image's annotations), containerd
/// by <see cref="CheckpointName"/> (its <c>checkIfCheckpointOCIImage</c> unmarshals the image's top-level manifest
/// and reads its <c>annotations</c>; config labels are not looked at). The others are the
/// <c>org.criu.checkpoint.*</c> facts checkpointctl documents, for people and tools.
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
    public const string CrscWorkload = "io.crsc.checkpoint.workload";
    public const string CrscNode = "io.crsc.checkpoint.node";
}

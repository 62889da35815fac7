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

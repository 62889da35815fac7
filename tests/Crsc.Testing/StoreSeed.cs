using Crsc.Controllers.Storage;
using Crsc.Testing.Cri;
using Runtime.V1;

namespace Crsc.Testing;

/// <summary>Realistic checkpoints put straight into a store (a CRI-O-style archive, ingested as the node agent would).</summary>
public static class StoreSeed
{
    /// <summary>Writes an archive as CRI-O would and ingests it into <paramref name="store"/>.</summary>
    public static async Task<CheckpointInfo> AddAsync(ICheckpointStore store, string ns, string workload, string container,
        CheckpointCompression? compression = null)
    {
        var source = new CheckpointedContainer(ns, workload, container) { PodName = workload + "-0", PodUid = "0d1e2f3a-1111-2222-3333-444455556666" };
        var staged = store.NewStagingPath(source);
        var sandbox = new PodSandbox
        {
            Id = "5b0c9e1f2a3b4c5d6e7f8091a2b3c4d5",
            Metadata = new PodSandboxMetadata { Name = workload + "-0", Namespace = ns, Uid = source.PodUid },
        };
        var ctr = new Container
        {
            Id = "c0ffee0123456789abcdef0123456789",
            PodSandboxId = sandbox.Id,
            Metadata = new ContainerMetadata { Name = container },
            Image = new ImageSpec { Image = "docker.io/library/busybox:1.36" },
            ImageRef = "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741",
            CreatedAt = DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeMilliseconds() * 1_000_000,
        };
        CheckpointArchiveWriter.Write(staged, ctr, sandbox, "cri-o");
        return await store.IngestAsync(staged, source, new IngestOptions { Compression = compression }, null, CancellationToken.None);
    }
}

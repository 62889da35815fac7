using Crsc.Cli;
using Crsc.Controllers.Storage;
using Crsc.Storage;
using Crsc.Testing;
using Crsc.Testing.Cri;
using Runtime.V1;

namespace Crsc.Tests.Cli;

/// <summary>A real <see cref="DiskCheckpointStore"/> in a temp directory, filled with realistic CRI checkpoint archives.</summary>
internal sealed class CliStore : IDisposable
{
    public TempDir Dir { get; } = new("crsc-cli-");
    public string CheckpointDir => Dir.Combine("checkpoints");
    public string StagingDir => Dir.Combine("staging");
    public ManualTimeProvider Time { get; } = new(DateTimeOffset.UtcNow.AddDays(-10));
    public string StateDir => Dir.Combine("state");
    private Crsc.Storage.Security.NodeKey? _key;
    /// <summary>The node key under <see cref="StateDir"/> (made on first use, as the daemon does), which list and inspect read.</summary>
    public Crsc.Storage.Security.NodeKey Key => _key ??= Crsc.Storage.Security.NodeKey.LoadOrCreate(Crsc.Storage.Security.NodeKey.PathIn(StateDir), out _);

    public DiskCheckpointStore Open(CheckpointCompression compression = CheckpointCompression.Zstd) => new(new DiskCheckpointStoreOptions
    {
        CheckpointDirectory = CheckpointDir,
        StagingDirectory = StagingDir,
        NodeName = "node-a",
        DefaultCompression = compression,
        Key = Key,
    }, Time);

    /// <summary>Writes an archive as CRI-O would and ingests it into <paramref name="store"/>.</summary>
    public static async Task<CheckpointInfo> AddAsync(DiskCheckpointStore store, string ns, string workload, string container,
        CheckpointCompression? compression = null)
    {
        var source = new CheckpointSource(ns, workload, container) { PodName = workload + "-0", PodUid = "0d1e2f3a-1111-2222-3333-444455556666" };
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

    /// <summary>Flags of gc (opens the store for writing).</summary>
    public string[] StoreFlags => ["--checkpoint-dir", CheckpointDir, "--staging-dir", StagingDir];
    /// <summary>Flags of list and inspect (read-only: no staging directory).</summary>
    public string[] ReadFlags => ["--checkpoint-dir", CheckpointDir, "--state-dir", StateDir];

    public static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = await new CommandLineParser(Commands.Root(), o, e).RunAsync(args, CancellationToken.None);
        return (code, o.ToString(), e.ToString());
    }

    public void Dispose() => Dir.Dispose();
}

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
    public static Task<CheckpointInfo> AddAsync(DiskCheckpointStore store, string ns, string workload, string container,
        CheckpointCompression? compression = null) => StoreSeed.AddAsync(store, ns, workload, container, compression);

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

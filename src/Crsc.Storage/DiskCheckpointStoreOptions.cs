using Crsc.Controllers.Storage;

namespace Crsc.Storage;

/// <summary>Where the store lives and how it ingests. Every path is an option (DESIGN.md §4).</summary>
public sealed record DiskCheckpointStoreOptions
{
    public const string DefaultCheckpointDirectory = "/var/lib/crsc/checkpoints";

    /// <summary><c>checkpointDir</c>: archives and manifests, <c>&lt;ns&gt;/&lt;workload&gt;/&lt;container&gt;/&lt;id&gt;.tar[.zst]</c>.</summary>
    public string CheckpointDirectory { get; init; } = DefaultCheckpointDirectory;

    /// <summary>Where the runtime writes in-flight archives; null: <c>staging</c> beside the checkpoint directory.</summary>
    public string? StagingDirectory { get; init; }

    /// <summary>Recorded in manifests; null: the host name.</summary>
    public string? NodeName { get; init; }

    public CheckpointCompression DefaultCompression { get; init; } = CheckpointCompression.Zstd;

    /// <summary>
    /// With <see cref="DefaultCompression"/> zstd, an archive zstd cannot shrink by 3 % (tried on 16 pieces of 256 KiB
    /// spread over it) is stored uncompressed (memory of random or already-compressed data: compressing it costs a pass and a second digest and
    /// saves nothing). Only the default: a caller that asks for a compression gets it.
    /// </summary>
    public bool SkipIncompressible { get; init; } = true;

    /// <summary>zstd level (1 fast … 19 small; negative levels are faster still).</summary>
    public int CompressionLevel { get; init; } = 1;

    /// <summary>zstd worker threads (0: compress on the ingesting thread).</summary>
    public int CompressionWorkers { get; init; }

    public ArchiveLimits Limits { get; init; } = new();

    /// <summary>Recorded in manifests; null: this assembly's informational version.</summary>
    public string? CrscVersion { get; init; }

    /// <summary>
    /// The node key: manifests are signed with it at ingest and checked with it when read
    /// (<see cref="CheckpointInfo.Authenticity"/>). Null (a tool without the key): manifests are written unsigned and
    /// read as <see cref="CheckpointAuthenticity.Unchecked"/>.
    /// </summary>
    public Security.NodeKey? Key { get; init; }

    /// <summary>Open for reading only (a dry run): create no directory and no lock file, change no mode, take no lock.</summary>
    public bool ReadOnly { get; init; }

    internal string ResolveStagingDirectory()
    {
        if (StagingDirectory is { Length: > 0 } s) return System.IO.Path.GetFullPath(s);
        var root = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(CheckpointDirectory));
        var parent = System.IO.Path.GetDirectoryName(root) ?? root;
        return System.IO.Path.Join(parent, "staging");
    }

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(CheckpointDirectory)) throw new ArgumentException("checkpointDir must be set", nameof(CheckpointDirectory));
        if (CompressionLevel is < -7 or > 22) throw new ArgumentOutOfRangeException(nameof(CompressionLevel), CompressionLevel, "zstd levels are -7 … 22");
        if (CompressionWorkers is < 0 or > 64) throw new ArgumentOutOfRangeException(nameof(CompressionWorkers), CompressionWorkers, "0 … 64");
    }
}

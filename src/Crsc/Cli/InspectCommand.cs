using System.Formats.Tar;
using System.Text.Json;
using System.Text.Json.Serialization;
using Crsc.Api.Archives;
using Crsc.Controllers.Storage;
using Crsc.Storage;

namespace Crsc.Cli;

/// <summary>
/// <c>crsc inspect ARCHIVE|ID</c>: what checkpointctl shows about a CRI checkpoint archive (container, image, runtime,
/// pod, times, sizes, files), for a checkpoint of the store (read-only, digests checked) or any archive file.
/// </summary>
internal static class InspectCommand
{
    public static CommandSpec Spec() => new("inspect", "Show what a checkpoint archive contains: container, image, runtime, pod, times, sizes, files.")
    {
        Description = "ID is a checkpoint of this node's store (see `crsc list`); the store is read without its lock and the\n" +
                      "archive is read to the end, so its size and digests are verified against the manifest, and the\n" +
                      "manifest's MAC is checked with the node key (as root; `unchecked` when the key cannot be read).\n" +
                      "ARCHIVE is any checkpoint archive file as CRI-O or containerd write it (tar, or tar.zst recognised by\n" +
                      "its content); nothing is verified then. The process tree is not decoded (CRIU's pstree.img); use\n" +
                      "`checkpointctl inspect --ps-tree` for it.",
        Arguments = [new ArgumentSpec("ARCHIVE|ID", "a checkpoint id of the store, or a path to an archive file")],
        Options =
        [
            new OptionSpec("--json", null, "print the report as JSON"),
            new OptionSpec("--files", null, "list every file of the archive (default: the top level and the CRIU images)"),
            .. CliNode.ConfigFlags("--checkpoint-dir", "--state-dir"),
        ],
        Handler = RunAsync,
        Examples =
        [
            "crsc inspect 20261122T041809Z-1a2b3c4d",
            "crsc inspect /var/lib/crsc/staging/checkpoint-counter.tar",
            "crsc inspect ./counter.tar.zst --json | jq .image",
        ],
    };

    public static async Task<int> RunAsync(ParsedCommand p, CancellationToken ct)
    {
        var what = p.Arguments[0];
        InspectReport report;
        try
        {
            if (ReadOnlyCheckpointStore.IsId(what) && !File.Exists(what))
            {
                var options = CliNode.LoadOptions(p);
                if (options is null) return ExitCodes.Config;
                var store = new ReadOnlyCheckpointStore(options.CheckpointDir, CliNode.LoadNodeKey(p, options));
                var info = store.Get(what);
                if (info is null) return CliOutput.Fail(p, $"no checkpoint with id '{what}' in {store.CheckpointDirectory} (see `crsc list`)");
                await using var stream = store.OpenRead(what);
                report = Read(stream, ct, readToEnd: true) with
                {
                    Source = "store",
                    Id = info.Id,
                    Path = info.ArchivePath,
                    Namespace = info.Namespace,
                    Workload = info.Workload,
                    Node = info.NodeName,
                    Digest = info.Digest,
                    UncompressedDigest = info.UncompressedDigest,
                    Compression = info.Compression == CheckpointCompression.Zstd ? "zstd" : "none",
                    ArchiveBytes = info.Size,
                    StoredAt = info.CreatedAt,
                    Pinned = info.Pinned,
                    Reason = info.Reason,
                    Verified = true,
                    Authenticity = CliNode.Authenticity(info.Authenticity),
                    AuthenticityProblem = info.Authenticity == CheckpointAuthenticity.Unchecked ? null : info.AuthenticityProblem,
                    MacKeyId = info.MacKeyId,
                };
            }
            else if (File.Exists(what))
            {
                await using var stream = ReadOnlyCheckpointStore.OpenArchiveFile(what, out var zstd);
                report = Read(stream, ct, readToEnd: false) with
                {
                    Source = "file",
                    Path = Path.GetFullPath(what),
                    Compression = zstd ? "zstd" : "none",
                    ArchiveBytes = new FileInfo(what).Length,
                };
            }
            else
            {
                return CliOutput.Fail(p, $"'{what}' is neither a checkpoint id of the store nor an archive file");
            }
        }
        catch (NotATarException e)
        {
            return CliOutput.Fail(p, $"'{what}' is not a crsc checkpoint archive: {e.Message}");
        }
        catch (ArchiveRejectedException e)
        {
            // a limit of the reader: the archive is refused, not shown (its message names the limit and the entry)
            return CliOutput.Fail(p, $"'{what}' is refused: {Escape(e.Message)}");
        }
        catch (CheckpointCorruptException e)
        {
            return CliOutput.Fail(p, $"checkpoint {e.Id} is corrupt: {e.Message}");
        }
        catch (CheckpointStoreException e)
        {
            return CliOutput.Fail(p, $"cannot inspect '{what}': {e.Message}");
        }
        catch (InvalidDataException e)
        {
            // from the archive's stream, not the tar reader: e.g. a zstd frame that does not decode (crsc's own words)
            return CliOutput.Fail(p, $"'{what}' cannot be read as a checkpoint archive: {e.Message}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return CliOutput.Fail(p, $"cannot read '{what}': {e.Message}");
        }

        // a hostile entry makes the archive not restorable: it is shown (a forensic tool), listed, and the exit code says so
        var code = report.Findings.Count > 0 ? ExitCodes.Failure : ExitCodes.Ok;
        if (p.Has("--json"))
        {
            p.Out.WriteLine(JsonSerializer.Serialize(report, InspectJson.Default.InspectReport));
            return code;
        }
        Print(p.Out, report, p.Has("--files"));
        foreach (var w in report.Warnings) p.Error.WriteLine($"crsc: warning: {Escape(w)}");
        if (report.Findings.Count > 0)
        {
            p.Error.WriteLine($"crsc: the archive is hostile, not restorable: {report.Findings.Count} finding(s)");
            foreach (var f in report.Findings) p.Error.WriteLine($"crsc: finding: {Escape(f.Message)}");
            if (report.FindingsNotListed > 0) p.Error.WriteLine($"crsc: finding: … and {report.FindingsNotListed} more");
        }
        return code;
    }

    /// <summary>
    /// What a name or field from an archive may be printed as: control characters (ESC, newline, C1…) and the
    /// bidirectional overrides shown as escapes, so an archive cannot drive the terminal or forge lines of the report.
    /// </summary>
    internal static string Escape(string? s)
    {
        if (string.IsNullOrEmpty(s)) return s ?? "";
        var i = 0;
        while (i < s.Length && !NeedsEscape(s[i])) i++;
        if (i == s.Length) return s;
        var b = new System.Text.StringBuilder(s.Length + 16).Append(s, 0, i);
        for (; i < s.Length; i++)
        {
            var c = s[i];
            if (c == '\\') b.Append(@"\\");
            else if (!NeedsEscape(c)) b.Append(c);
            else if (c <= 0xFF) b.Append(@"\x").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            else b.Append(@"\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
        }
        return b.ToString();
    }

    private static bool NeedsEscape(char c) =>
        char.IsControl(c) || c is '\\' or (>= '\u202A' and <= '\u202E') or (>= '\u2066' and <= '\u2069') or '\u2028' or '\u2029';

    /// <summary>The most bytes read after the end-of-archive marker of a file that is not in the store (padding).</summary>
    private const long MaxTrailingBytes = 16 << 20;
    private const int MaxFindingsListed = 1000;

    /// <summary>
    /// Reads the tar once (to its end when <paramref name="readToEnd"/>, so a store stream verifies its digests) and
    /// collects the report, with every hostile entry as a finding.
    /// </summary>
    /// <exception cref="NotATarException">the bytes are not a tar archive (or it is cut short)</exception>
    /// <exception cref="ArchiveRejectedException">a limit of the reader (name, depth, extended header, entries) is exceeded</exception>
    internal static InspectReport Read(Stream archive, CancellationToken ct, bool readToEnd = true, ArchiveLimits? limits = null)
    {
        // The tar reader's own exceptions carry only resource keys under AOT (UseSystemResourceKeys): "TarInvalidNumber, ".
        // Those are turned into crsc's words here; what the archive's stream throws (a store's verification, zstd, I/O)
        // passes unchanged, which the watch on the stream tells apart.
        var tar = new FailureWatchingStream(archive);
        try
        {
            return ReadTar(tar, ct, readToEnd, limits ?? new ArchiveLimits());
        }
        catch (EndOfStreamException e) when (!tar.Failed)
        {
            throw new NotATarException("it ends in the middle of a tar entry (cut short, or not a tar file)", e);
        }
        catch (Exception e) when (!tar.Failed && e is InvalidDataException or FormatException or ArgumentException or OverflowException or InvalidOperationException)
        {
            throw new NotATarException("it is not a tar file (nor a zstd-compressed tar): its header blocks are not tar headers", e);
        }
    }

    private static InspectReport ReadTar(Stream tar, CancellationToken ct, bool readToEnd, ArchiveLimits limits)
    {
        // the archive's parts are told and read as ingest tells and reads them (CheckpointMetadata, ArchiveTree's names)
        var metadata = new CheckpointMetadata(limits);
        var files = new List<InspectFile>();
        long content = 0, pages = 0, rootfsDiff = 0;
        var warnings = new List<string>();
        var findings = new List<InspectFinding>();
        var notListed = 0;
        var tree = new ArchiveTree(limits);
        var sawCheckpointDir = false;
        void Finding(ArchiveFinding f)
        {
            if (findings.Count < MaxFindingsListed) findings.Add(new InspectFinding(f.Entry, f.Message));
            else notListed++;
        }
        using var reader = new BoundedTarReader(tar, limits);
        string? last = null;
        while (reader.GetNextEntry(last) is { } entry)
        {
            ct.ThrowIfCancellationRequested();
            if (entry.EntryType is TarEntryType.GlobalExtendedAttributes) continue;
            last = BoundedTarReader.Shorten(entry.Name);
            if (tree.Add(entry, out var checkedName) is { } finding) Finding(finding);
            var name = entry.Name.StartsWith("./", StringComparison.Ordinal) ? entry.Name[2..] : entry.Name;
            var type = entry.EntryType switch
            {
                TarEntryType.Directory => "dir",
                TarEntryType.SymbolicLink => "symlink",
                TarEntryType.HardLink => "hardlink",
                TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile => "file",
                _ => entry.EntryType.ToString().ToLowerInvariant(),
            };
            files.Add(new InspectFile(name.TrimEnd('/'), type, type == "file" ? entry.Length : 0));
            if (CheckpointArchiveLayout.IsInCheckpointDirectory(checkedName)) sawCheckpointDir = true;
            if (type != "file") continue;
            content += entry.Length;
            if (CheckpointArchiveLayout.IsMemoryPages(checkedName)) pages += entry.Length;
            else if (checkedName == CheckpointArchiveLayout.RootfsDiffTar) rootfsDiff = entry.Length;
            else if (metadata.Read(checkedName, entry) == MetadataEntry.TooLarge) warnings.Add($"{name} is {entry.Length} bytes; not read");
        }
        if (reader.Entries == 0)
            throw new NotATarException("it has no tar entries (it starts with an end-of-archive block of zeros)", new InvalidDataException("no entries"));
        foreach (var f in tree.ResolveLinks()) Finding(f);

        // the rest of the stream (end-of-archive blocks, padding): a verifying stream checks size and digest at its end;
        // a file not in the store is read no further than some padding (it may be a device or decompress forever)
        var sink = new byte[1 << 16];
        long total = 0;
        int n;
        while ((n = reader.Stream.Read(sink)) > 0)
        {
            total += n;
            if (!readToEnd && total > MaxTrailingBytes)
            {
                warnings.Add($"more than {MaxTrailingBytes} bytes follow the end of the tar archive; not read");
                break;
            }
        }

        ArchiveFacts? facts = null;
        if (metadata.Missing is { } missing)
            warnings.Add($"not a CRI checkpoint archive: no {missing}");
        if (!sawCheckpointDir)
            warnings.Add($"not a CRI checkpoint archive: no {CheckpointArchiveLayout.CheckpointDirectory}/ directory");
        if (metadata.ConfigDump is not null || metadata.SpecDump is not null)
        {
            try { facts = metadata.ReadFacts(); }
            catch (ArchiveRejectedException e) { warnings.Add(e.Message); }
        }
        return new InspectReport
        {
            Source = "file",
            ContainerName = facts?.ContainerName,
            RuntimeContainerId = facts?.RuntimeContainerId,
            Image = facts?.ImageName,
            ImageRef = facts?.ImageRef,
            ImageId = facts?.ImageId,
            Runtime = facts?.Runtime,
            PodNamespace = facts?.PodNamespace,
            PodName = facts?.PodName,
            PodUid = facts?.PodUid,
            ContainerCreatedAt = facts?.ContainerCreatedAt,
            CheckpointedAt = facts?.CheckpointedAt,
            ContentBytes = content,
            MemoryPagesBytes = pages,
            RootfsDiffBytes = rootfsDiff,
            Files = files,
            Warnings = warnings,
            Findings = findings,
            FindingsNotListed = notListed,
        };
    }

    private static void Print(TextWriter o, InspectReport r, bool allFiles)
    {
        static string V(string? s) => string.IsNullOrEmpty(s) ? "-" : Escape(s);
        static string T(DateTimeOffset? t) => t is { } x ? x.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture) : "-";
        var rows = new List<(string, string)>();
        if (r.Id is not null) rows.Add(("Checkpoint", $"{r.Id} ({r.Namespace}/{r.Workload}){(r.Pinned == true ? ", pinned" : "")}"));
        if (r.Reason is not null) rows.Add(("Reason", V(r.Reason)));
        rows.Add(("Archive", V(r.Path)));
        rows.Add(("Container", V(r.ContainerName) + (r.RuntimeContainerId is { } cid ? $" (id {V(cid[..Math.Min(12, cid.Length)])})" : "")));
        rows.Add(("Image", V(r.Image)));
        if (r.ImageRef is not null && r.ImageRef != r.Image) rows.Add(("Image ref", V(r.ImageRef)));
        rows.Add(("Image ID", V(r.ImageId)));
        rows.Add(("Runtime", V(r.Runtime)));
        rows.Add(("Pod", r.PodName is null ? "-" : $"{V(r.PodNamespace)}/{V(r.PodName)}{(r.PodUid is { } uid ? $" (uid {V(uid)})" : "")}"));
        if (r.Node is not null) rows.Add(("Node", V(r.Node)));
        rows.Add(("Created", T(r.ContainerCreatedAt)));
        rows.Add(("Checkpointed", T(r.CheckpointedAt)));
        if (r.StoredAt is not null) rows.Add(("Stored", T(r.StoredAt)));
        rows.Add(("Archive size", $"{CliOutput.Bytes(r.ArchiveBytes)}{(r.Compression == "zstd" ? " (zstd)" : "")}; content {CliOutput.Bytes(r.ContentBytes)}"));
        rows.Add(("Memory pages", CliOutput.Bytes(r.MemoryPagesBytes)));
        if (r.RootfsDiffBytes > 0) rows.Add(("Rootfs diff", CliOutput.Bytes(r.RootfsDiffBytes)));
        if (r.Digest is not null) rows.Add(("Digest", r.Digest + (r.Verified == true ? " (verified)" : "")));
        if (r.UncompressedDigest is not null && r.UncompressedDigest != r.Digest) rows.Add(("Tar digest", r.UncompressedDigest));
        if (r.Authenticity is not null)
            rows.Add(("MAC", r.Authenticity + (r.MacKeyId is { } k ? $" (key id {k})" : "") + (r.AuthenticityProblem is { } why ? ": " + why : "")));
        var w = rows.Max(x => x.Item1.Length) + 2;
        foreach (var (k, v) in rows) o.WriteLine((k + ":").PadRight(w) + v);
        o.WriteLine("Process tree:".PadRight(w) + "not decoded (use `checkpointctl inspect --ps-tree`)");

        var shown = allFiles ? r.Files : r.Files.Where(f => !f.Name.Contains('/') || CheckpointArchiveLayout.IsInCheckpointDirectory(f.Name)).ToList();
        o.WriteLine($"Files ({r.Files.Count}{(shown.Count != r.Files.Count ? $", {shown.Count} shown; --files for all" : "")}):");
        CliOutput.Table(o, ["  NAME", "SIZE"], shown.Select(f => (IReadOnlyList<string>)["  " + Escape(f.Name) + (f.Type == "dir" ? "/" : ""), f.Type == "file" ? CliOutput.Bytes(f.Size) : f.Type]));
    }
}

internal sealed record InspectFile(string Name, string Type, long Size);

/// <summary>A hostile entry: traversal, absolute name, device, duplicate, a link leading outside the archive.</summary>
internal sealed record InspectFinding(string Entry, string Message);

/// <summary>The tar reader refused what it read: the file is not a tar archive, or is cut short. The message is crsc's own.</summary>
internal sealed class NotATarException(string message, Exception inner) : Exception(message, inner);

/// <summary>Passes everything to <paramref name="inner"/> and remembers whether one of its calls threw.</summary>
internal sealed class FailureWatchingStream(Stream inner) : Stream
{
    /// <summary>True once a call to the inner stream threw: an exception seen after that is the stream's, not the tar reader's.</summary>
    public bool Failed { get; private set; }

    public override bool CanRead => inner.CanRead;
    public override bool CanSeek => inner.CanSeek;
    public override bool CanWrite => false;
    public override long Length => Watch(() => inner.Length);
    public override long Position { get => Watch(() => inner.Position); set => Watch(() => inner.Position = value); }
    public override int Read(byte[] buffer, int offset, int count) => Watch(() => inner.Read(buffer, offset, count));
    public override int Read(Span<byte> buffer)
    {
        try { return inner.Read(buffer); }
        catch { Failed = true; throw; }
    }
    public override long Seek(long offset, SeekOrigin origin) => Watch(() => inner.Seek(offset, origin));
    public override void Flush() { }
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private T Watch<T>(Func<T> call)
    {
        try { return call(); }
        catch { Failed = true; throw; }
    }
}

internal sealed record InspectReport
{
    /// <summary>"store" (a checkpoint of the store) or "file".</summary>
    public required string Source { get; init; }
    public string? Id { get; init; }
    public string? Path { get; init; }
    public string? Namespace { get; init; }
    public string? Workload { get; init; }
    public string? Node { get; init; }
    public string? ContainerName { get; init; }
    public string? RuntimeContainerId { get; init; }
    public string? Image { get; init; }
    public string? ImageRef { get; init; }
    public string? ImageId { get; init; }
    public string? Runtime { get; init; }
    public string? PodNamespace { get; init; }
    public string? PodName { get; init; }
    public string? PodUid { get; init; }
    public DateTimeOffset? ContainerCreatedAt { get; init; }
    public DateTimeOffset? CheckpointedAt { get; init; }
    public DateTimeOffset? StoredAt { get; init; }
    public string? Compression { get; init; }
    /// <summary>Bytes of the archive as stored (compressed when it is).</summary>
    public long ArchiveBytes { get; init; }
    /// <summary>Sum of the sizes of the archive's files.</summary>
    public long ContentBytes { get; init; }
    /// <summary>Sum of CRIU's <c>checkpoint/pages-*.img</c>: the dumped memory.</summary>
    public long MemoryPagesBytes { get; init; }
    public long RootfsDiffBytes { get; init; }
    public string? Digest { get; init; }
    public string? UncompressedDigest { get; init; }
    public bool? Pinned { get; init; }
    /// <summary>Why the checkpoint was taken (NodeDrain, NodeShutdown), as its manifest records it; a store checkpoint only.</summary>
    public string? Reason { get; init; }
    /// <summary>True when the archive was read to the end and matched its manifest's sizes and digests.</summary>
    public bool? Verified { get; init; }
    /// <summary>Whether the manifest's MAC verifies with the node key: verified, unsigned, INVALID-MAC, other-key or unchecked (a store checkpoint only).</summary>
    public string? Authenticity { get; init; }
    public string? AuthenticityProblem { get; init; }
    public string? MacKeyId { get; init; }
    public List<InspectFile> Files { get; init; } = [];
    public List<string> Warnings { get; init; } = [];
    /// <summary>The hostile entries (the first 1000): any makes the archive not restorable, and the exit code 1.</summary>
    public List<InspectFinding> Findings { get; init; } = [];
    public int FindingsNotListed { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true)]
[JsonSerializable(typeof(InspectReport))]
internal sealed partial class InspectJson : JsonSerializerContext;

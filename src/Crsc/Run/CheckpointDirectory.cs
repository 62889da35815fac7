using System.Security.Cryptography;

namespace Crsc.Run;

/// <summary>What was found in <c>imageDir</c> at start.</summary>
internal sealed record CheckpointFound(RunManifest? Manifest, string? Problem)
{
    public static readonly CheckpointFound None = new(null, null);
}

/// <summary>
/// crsc's own layout inside <c>imageDir</c>, and nothing else there is touched:
/// <code>
/// imageDir/checkpoint/            the complete checkpoint: manifest.json, images/ (CRIU), paths/N (additionalPaths)
/// imageDir/.checkpoint.tmp-*/      a checkpoint being written (removed at start: a dump killed half way)
/// imageDir/checkpoint.rejected/   the last checkpoint refused at start, kept for a person to look at (one)
/// imageDir/criu-dump.log, criu-restore.log   CRIU's logs of the last dump and restore
/// </code>
/// A checkpoint is written to a temp directory, fsynced file by file, described by a manifest with sizes and
/// SHA-256, renamed into place and the rename fsynced: <c>checkpoint/</c> is either complete or absent.
/// Files are 0600 and directories 0700 (process memory); the modes and owners they had are in the manifest.
/// </summary>
internal sealed class CheckpointDirectory(string imageDir)
{
    public const string CheckpointName = "checkpoint";
    public const string TempPrefix = ".checkpoint.tmp-";
    public const string RejectedName = "checkpoint.rejected";
    public const string ImagesEntry = "images";
    public const string PathsEntry = "paths";
    private const long MaxManifestBytes = 64 << 20;
    private const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode PrivateDir = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public string ImageDir { get; } = imageDir;
    public string CheckpointPath => Path.Combine(ImageDir, CheckpointName);
    public string RejectedPath => Path.Combine(ImageDir, RejectedName);
    public string DumpLog => Path.Combine(ImageDir, "criu-dump.log");
    public string RestoreLog => Path.Combine(ImageDir, "criu-restore.log");

    /// <summary>Removes temp directories left by a dump that did not finish; the names removed.</summary>
    public IReadOnlyList<string> RemoveLeftovers()
    {
        var removed = new List<string>();
        if (!Directory.Exists(ImageDir)) return removed;
        foreach (var dir in Directory.GetFileSystemEntries(ImageDir, TempPrefix + "*"))
        {
            DeleteTree(dir);
            removed.Add(Path.GetFileName(dir));
        }
        if (removed.Count > 0) RunNative.FSyncDirectory(ImageDir);
        return removed;
    }

    /// <summary>
    /// The checkpoint in <c>imageDir</c> when it is complete, verified and was taken of <paramref name="commandLine"/>;
    /// <see cref="CheckpointFound.None"/> when there is none; otherwise the problem in words.
    /// </summary>
    public CheckpointFound Find(IReadOnlyList<string> commandLine)
    {
        var dir = CheckpointPath;
        var info = new DirectoryInfo(dir);
        if (!info.Exists && info.LinkTarget is null) return File.Exists(dir) ? new(null, $"{dir} is not a directory") : CheckpointFound.None;
        if (info.LinkTarget is not null) return new(null, $"{dir} is a symlink");
        var manifestPath = Path.Combine(dir, RunManifest.FileName);
        RunManifest manifest;
        try
        {
            var fi = new FileInfo(manifestPath);
            if (!fi.Exists || fi.LinkTarget is not null) return new(null, "it has no manifest.json (a partial checkpoint)");
            if (fi.Length > MaxManifestBytes) return new(null, "its manifest.json is larger than 64 MiB");
            manifest = RunManifest.Parse(File.ReadAllBytes(manifestPath));
        }
        catch (FormatException e) { return new(null, e.Message); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return new(null, "its manifest cannot be read: " + e.Message); }
        if (Verify(dir, manifest) is { } problem) return new(null, problem);
        if (!manifest.CommandLine.SequenceEqual(commandLine, StringComparer.Ordinal))
            return new(null, $"it was taken of another command line ({Quote(manifest.CommandLine)}, this one is {Quote(commandLine)})");
        return new(manifest, null);
    }

    /// <summary>Every listed file exists with its size and SHA-256; nothing else is there; no symlink, no path out of the directory.</summary>
    public static string? Verify(string dir, RunManifest manifest)
    {
        var listed = new Dictionary<string, RunManifestFile>(StringComparer.Ordinal);
        foreach (var f in manifest.Files)
        {
            if (!IsSafeRelative(f.Path)) return $"the manifest lists a path outside the checkpoint: {f.Path}";
            if (!listed.TryAdd(f.Path, f)) return $"the manifest lists {f.Path} twice";
        }
        foreach (var d in manifest.Directories)
            if (!IsSafeRelative(d.Path)) return $"the manifest lists a directory outside the checkpoint: {d.Path}";
        foreach (var p in manifest.Paths)
            if (!IsSafeRelative(p.Entry) || !Path.IsPathFullyQualified(p.Source)) return $"the manifest lists a bad additional path: {p.Entry} → {p.Source}";

        // nothing on disk that the manifest does not list: no symlink, no device, no extra file
        var stack = new Stack<string>([dir]);
        var seen = 0;
        while (stack.Count > 0)
        {
            foreach (var entry in new DirectoryInfo(stack.Pop()).EnumerateFileSystemInfos())
            {
                var rel = Path.GetRelativePath(dir, entry.FullName);
                if (entry.LinkTarget is not null) return $"{rel} is a symlink";
                if (entry is DirectoryInfo) { stack.Push(entry.FullName); continue; }
                if ((entry.Attributes & FileAttributes.Device) != 0 || entry is not FileInfo) return $"{rel} is not a regular file";
                if (rel == RunManifest.FileName) continue;
                if (!listed.ContainsKey(rel)) return $"{rel} is not listed in the manifest";
                seen++;
            }
        }
        foreach (var f in manifest.Files)
        {
            var path = Path.Combine(dir, f.Path);
            var fi = new FileInfo(path);
            if (!fi.Exists) return $"{f.Path} is missing";
            if (!IsRegularFile(path)) return $"{f.Path} is not a regular file";
            if (fi.Length != f.Size) return $"{f.Path} has {fi.Length} bytes, the manifest says {f.Size}";
            string digest;
            try { digest = Sha256(path); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return $"{f.Path} cannot be read: {e.Message}"; }
            if (!string.Equals(digest, f.Sha256, StringComparison.OrdinalIgnoreCase)) return $"{f.Path} does not match its SHA-256 (the checkpoint is damaged)";
        }
        return seen == listed.Count ? null : "the checkpoint's files do not match the manifest";
    }

    /// <summary>Moves a refused checkpoint aside (replacing an older refused one) so the next start does not try it again.</summary>
    public void Reject()
    {
        if (Directory.Exists(RejectedPath) || File.Exists(RejectedPath)) DeleteTree(RejectedPath);
        if (new DirectoryInfo(CheckpointPath) is { LinkTarget: not null } || File.Exists(CheckpointPath)) File.Delete(CheckpointPath);
        else Directory.Move(CheckpointPath, RejectedPath);
        RunNative.FSyncDirectory(ImageDir);
    }

    /// <summary>Removes the checkpoint (after it was restored: the process moves on from it).</summary>
    public void Remove()
    {
        // renamed first, so a crash half way leaves a temp directory the next start removes, never a half checkpoint
        var doomed = Path.Combine(ImageDir, TempPrefix + "restored-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.Move(CheckpointPath, doomed);
        RunNative.FSyncDirectory(ImageDir);
        DeleteTree(doomed);
    }

    /// <summary>A new private temp directory for a checkpoint, with its <c>images/</c> directory.</summary>
    public string CreateTemp()
    {
        Directory.CreateDirectory(ImageDir);
        var temp = Path.Combine(ImageDir, TempPrefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(temp, PrivateDir);
        Directory.CreateDirectory(Path.Combine(temp, ImagesEntry), PrivateDir);
        return temp;
    }

    /// <summary>Copies the <c>additionalPaths</c> into <c>temp/paths/N</c>; a path that does not exist is skipped (returned in <paramref name="skipped"/>).</summary>
    public static IReadOnlyList<RunManifestPath> CopyAdditionalPaths(string temp, IReadOnlyList<string> sources, List<string> skipped, Dictionary<string, (int Mode, int Uid, int Gid)> originals)
    {
        var result = new List<RunManifestPath>();
        var root = Path.Combine(temp, PathsEntry);
        for (var i = 0; i < sources.Count; i++)
        {
            var source = sources[i];
            var entry = Path.Combine(PathsEntry, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var target = Path.Combine(temp, entry);
            var di = new DirectoryInfo(source);
            var fi = new FileInfo(source);
            if (di.Exists && di.LinkTarget is null)
            {
                Directory.CreateDirectory(root, PrivateDir);
                CopyTree(source, target, entry, skipped, originals);
                result.Add(new RunManifestPath(source, entry, true));
            }
            else if (fi.Exists && fi.LinkTarget is null)
            {
                Directory.CreateDirectory(root, PrivateDir);
                File.Copy(source, target);
                originals[entry] = Owner(source);
                result.Add(new RunManifestPath(source, entry, false));
            }
            else skipped.Add(source);
        }
        return result;
    }

    private static void CopyTree(string source, string target, string rel, List<string> skipped, Dictionary<string, (int, int, int)> originals)
    {
        Directory.CreateDirectory(target, PrivateDir);
        originals[rel] = Owner(source);
        foreach (var entry in new DirectoryInfo(source).EnumerateFileSystemInfos())
        {
            var to = Path.Combine(target, entry.Name);
            var toRel = Path.Combine(rel, entry.Name);
            if (entry.LinkTarget is not null) skipped.Add(entry.FullName);
            else if (entry is DirectoryInfo) CopyTree(entry.FullName, to, toRel, skipped, originals);
            else if (entry is FileInfo && (entry.Attributes & FileAttributes.Device) == 0)
            {
                File.Copy(entry.FullName, to);
                originals[toRel] = Owner(entry.FullName);
            }
            else skipped.Add(entry.FullName);
        }
    }

    /// <summary>
    /// Makes <paramref name="temp"/> the checkpoint: records every file's size, digest, mode and owner (and every
    /// directory's under <c>paths/</c>), sets 0600/0700, fsyncs the files, writes the manifest, fsyncs the
    /// directories, renames the temp directory to <c>checkpoint</c> and fsyncs <c>imageDir</c>.
    /// </summary>
    public RunManifest Seal(string temp, RunManifest described, IReadOnlyDictionary<string, (int Mode, int Uid, int Gid)> originals)
    {
        var files = new List<RunManifestFile>();
        var dirs = new List<RunManifestDirectory>();
        var dirPaths = new List<string>();
        var stack = new Stack<string>([temp]);
        while (stack.Count > 0)
        {
            var current = stack.Pop();
            dirPaths.Add(current);
            foreach (var entry in new DirectoryInfo(current).EnumerateFileSystemInfos())
            {
                var rel = Path.GetRelativePath(temp, entry.FullName);
                if (entry.LinkTarget is not null)
                {
                    // CRIU writes none; a copy never makes one
                    File.Delete(entry.FullName);
                    continue;
                }
                var (mode, uid, gid) = originals.TryGetValue(rel, out var o) ? o : Owner(entry.FullName);
                if (entry is DirectoryInfo)
                {
                    if (rel.StartsWith(PathsEntry + "/", StringComparison.Ordinal)) dirs.Add(new RunManifestDirectory(rel, mode, uid, gid));
                    File.SetUnixFileMode(entry.FullName, PrivateDir);
                    stack.Push(entry.FullName);
                    continue;
                }
                File.SetUnixFileMode(entry.FullName, PrivateFile);
                using (var fs = new FileStream(entry.FullName, FileMode.Open, FileAccess.ReadWrite))
                {
                    fs.Flush(flushToDisk: true);
                }
                files.Add(new RunManifestFile(rel, new FileInfo(entry.FullName).Length, Sha256(entry.FullName), mode, uid, gid));
            }
        }
        var manifest = described with { Files = files, Directories = dirs };
        var manifestPath = Path.Combine(temp, RunManifest.FileName);
        using (var fs = new FileStream(manifestPath, new FileStreamOptions { Mode = System.IO.FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = PrivateFile }))
        {
            fs.Write(manifest.ToJson());
            fs.Flush(flushToDisk: true);
        }
        foreach (var d in dirPaths) RunNative.FSyncDirectory(d);

        if (Directory.Exists(CheckpointPath))
        {
            // an older checkpoint nobody restored (this one replaces it): out of the way first
            var old = Path.Combine(ImageDir, TempPrefix + "old-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.Move(CheckpointPath, old);
            DeleteTree(old);
        }
        Directory.Move(temp, CheckpointPath);
        RunNative.FSyncDirectory(ImageDir);
        return manifest;
    }

    /// <summary>Copies the <c>additionalPaths</c> of a checkpoint back where they were, with their modes and owners.</summary>
    public void RestoreAdditionalPaths(RunManifest manifest)
    {
        var dir = CheckpointPath;
        foreach (var p in manifest.Paths)
        {
            var from = Path.Combine(dir, p.Entry);
            if (!p.IsDirectory)
            {
                CopyBack(from, p.Source, manifest.Files.FirstOrDefault(f => f.Path == p.Entry));
                continue;
            }
            Directory.CreateDirectory(p.Source);
            foreach (var d in manifest.Directories.Where(d => d.Path == p.Entry || d.Path.StartsWith(p.Entry + "/", StringComparison.Ordinal)).OrderBy(d => d.Path.Length))
            {
                var to = Path.Combine(p.Source, Path.GetRelativePath(p.Entry, d.Path));
                Directory.CreateDirectory(to);
                File.SetUnixFileMode(to, (UnixFileMode)(d.Mode & 0xFFF));
                RunNative.Chown(to, d.Uid, d.Gid);
            }
            foreach (var f in manifest.Files.Where(f => f.Path.StartsWith(p.Entry + "/", StringComparison.Ordinal)))
                CopyBack(Path.Combine(dir, f.Path), Path.Combine(p.Source, Path.GetRelativePath(p.Entry, f.Path)), f);
        }
    }

    private static void CopyBack(string from, string to, RunManifestFile? described)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        if (new FileInfo(to) is { LinkTarget: not null }) File.Delete(to);
        File.Copy(from, to, overwrite: true);
        if (described is null) return;
        File.SetUnixFileMode(to, (UnixFileMode)(described.Mode & 0xFFF));
        RunNative.Chown(to, described.Uid, described.Gid);
    }

    public static string Sha256(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    private static (int Mode, int Uid, int Gid) Owner(string path)
    {
        Span<byte> b = stackalloc byte[NativeMethods.StatxSize];
        const uint Mask = 0x1 | 0x2 | 0x8 | 0x10; // type, mode, uid, gid
        if (!NativeMethods.Stat(NativeMethods.AtFdCwd, path, NativeMethods.AtSymlinkNoFollow, Mask, b)) return (0b110_000_000, 0, 0);
        return (NativeMethods.ModeOf(b) & 0xFFF, BitConverter.ToInt32(b[20..24]), BitConverter.ToInt32(b[24..28]));
    }

    /// <summary>A regular file itself, not a FIFO (reading one would block) nor a device nor a link to one.</summary>
    private static bool IsRegularFile(string path)
    {
        Span<byte> b = stackalloc byte[NativeMethods.StatxSize];
        return NativeMethods.Stat(NativeMethods.AtFdCwd, path, NativeMethods.AtSymlinkNoFollow, 0x1, b) && (NativeMethods.ModeOf(b) & 0xF000) == 0x8000;
    }

    private static bool IsSafeRelative(string rel) =>
        rel.Length > 0 && !Path.IsPathRooted(rel) && !rel.Contains('\0') &&
        rel.Split('/').All(part => part.Length > 0 && part is not "." and not "..");

    private static string Quote(IReadOnlyList<string> argv) => string.Join(" ", argv.Select(a => a.Contains(' ') ? $"'{a}'" : a));

    /// <summary>Removes a directory tree without following symlinks out of it.</summary>
    public static void DeleteTree(string path)
    {
        var info = new DirectoryInfo(path);
        if (info.LinkTarget is not null || File.Exists(path)) { File.Delete(path); return; }
        if (!info.Exists) return;
        // a directory left 0500 by a copy would refuse its entries' removal
        try { File.SetUnixFileMode(path, PrivateDir); } catch (UnauthorizedAccessException) { }
        foreach (var entry in info.EnumerateFileSystemInfos())
        {
            if (entry is DirectoryInfo && entry.LinkTarget is null) DeleteTree(entry.FullName);
            else entry.Delete();
        }
        info.Delete();
    }
}

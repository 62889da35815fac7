using Crsc.Controllers.Storage;

namespace Crsc.Storage;

public sealed partial class DiskCheckpointStore
{
    /// <summary>
    /// Retention per container of a workload (the policy is looked up by namespace and workload), then the global quota,
    /// oldest first. Pinned checkpoints and the newest good checkpoint of each container are never deleted.
    /// </summary>
    public RetentionResult ApplyRetention(RetentionRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var now = _time.GetUtcNow();
        var all = List();
        var protectedIds = new HashSet<string>(StringComparer.Ordinal);
        var doomed = new Dictionary<string, RetentionDeletion>(StringComparer.Ordinal);

        foreach (var group in all.GroupBy(c => (c.Namespace, c.Workload, c.Container)))
        {
            var newestFirst = group.OrderByDescending(c => c.CreatedAt).ThenByDescending(c => c.Id, StringComparer.Ordinal).ToList();
            // the only good checkpoint of a container is what a restore would use: keep the newest intact one whatever the rules say
            if (newestFirst.FirstOrDefault(IsIntact) is { } newestGood) protectedIds.Add(newestGood.Id);
            foreach (var c in newestFirst.Where(c => c.Pinned)) protectedIds.Add(c.Id);

            var policy = request.PerWorkload.TryGetValue(new WorkloadRef(group.Key.Namespace, group.Key.Workload), out var p) ? p : request.Default;
            long bytes = 0;
            for (var i = 0; i < newestFirst.Count; i++)
            {
                var c = newestFirst[i];
                bytes += c.Size;
                RetentionReason? reason =
                    policy.KeepLast is { } keep && i >= keep ? RetentionReason.KeepLast
                    : policy.MaxAge is { } age && now - c.CreatedAt > age ? RetentionReason.MaxAge
                    : policy.MaxBytes is { } max && bytes > max ? RetentionReason.MaxBytes
                    : null;
                if (reason is { } r && !protectedIds.Contains(c.Id)) doomed[c.Id] = new RetentionDeletion(c, r);
            }
        }

        var remaining = all.Where(c => !doomed.ContainsKey(c.Id)).ToList();
        var remainingBytes = remaining.Sum(c => c.Size);
        var quotaSatisfied = true;
        if (request.GlobalMaxBytes is { } quota && remainingBytes > quota)
        {
            foreach (var c in remaining.Where(c => !protectedIds.Contains(c.Id)).OrderBy(c => c.CreatedAt).ThenBy(c => c.Id, StringComparer.Ordinal))
            {
                if (remainingBytes <= quota) break;
                doomed[c.Id] = new RetentionDeletion(c, RetentionReason.GlobalQuota);
                remainingBytes -= c.Size;
            }
            quotaSatisfied = remainingBytes <= quota;
        }

        var deleted = doomed.Values.OrderBy(d => d.Checkpoint.CreatedAt).ThenBy(d => d.Checkpoint.Id, StringComparer.Ordinal).ToList();
        try
        {
            foreach (var d in deleted)
            {
                var c = d.Checkpoint;
                Log.Retention(_logger, request.DryRun ? "would delete" : "deletes", c.Id, c.Namespace, c.Workload, c.Container, d.Reason, c.Size);
                if (!request.DryRun) DeleteCommitted(c);
            }
        }
        finally
        {
            if (!request.DryRun && deleted.Count > 0) OnChanged(); // once for the whole run
        }
        return new RetentionResult(request.DryRun, deleted, deleted.Sum(d => d.Checkpoint.Size), remainingBytes, quotaSatisfied);
    }

    /// <summary>Cheap integrity check: the archive has the size its manifest records (digests are checked on read and by VerifyAsync).</summary>
    private static bool IsIntact(CheckpointInfo c)
    {
        try { return new FileInfo(c.ArchivePath).Length == c.Size; }
        catch (IOException) { return false; }
    }

    public RecoveryReport Recover()
    {
        var removed = new List<RecoveredItem>();
        var warnings = new List<string>();

        void Remove(string path, RecoveryReason reason, bool directory = false)
        {
            try
            {
                if (directory) Directory.Delete(path, recursive: false);
                else File.Delete(path);
                removed.Add(new RecoveredItem(path, reason));
                Log.RecoveryRemoved(_logger, path, reason);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Warn($"cannot remove {path}: {e.Message}");
            }
        }

        void Warn(string warning)
        {
            warnings.Add(warning);
            Log.RecoveryWarning(_logger, warning);
        }

        // staging: a file named as NewStagingPath names them is a leftover of an ingestion that never finished
        // (the daemon is starting); anything else is not crsc's (stagingDir may point somewhere shared by mistake)
        // and is left alone and reported. Nothing is removed recursively.
        foreach (var entry in new DirectoryInfo(StagingDirectory).EnumerateFileSystemInfos())
        {
            var isRealDirectory = entry.LinkTarget is null && (entry.Attributes & FileAttributes.Directory) != 0;
            if (isRealDirectory || !IsStagingName(entry.Name))
                Warn($"{entry.FullName} in the staging directory is not a crsc staging file; left alone");
            else
                Remove(entry.FullName, RecoveryReason.StagingLeftover); // a symlink is unlinked, never followed
        }

        foreach (var nsDir in SafeSubdirectories(_root, _ => true))
        {
            if (!StoreNames.IsLabel(nsDir.Name)) { Warn($"{nsDir.FullName} is not a namespace directory; left alone"); continue; }
            foreach (var wlDir in SafeSubdirectories(nsDir.FullName, _ => true))
            {
                if (!StoreNames.IsSubdomain(wlDir.Name)) { Warn($"{wlDir.FullName} is not a workload directory; left alone"); continue; }
                foreach (var ctrDir in SafeSubdirectories(wlDir.FullName, _ => true))
                {
                    if (!StoreNames.IsLabel(ctrDir.Name)) { Warn($"{ctrDir.FullName} is not a container directory; left alone"); continue; }
                    var before = removed.Count;
                    RecoverContainerDirectory(ctrDir, nsDir.Name, wlDir.Name, Remove, Warn);
                    if (removed.Count != before) Native.FSyncDirectory(ctrDir.FullName);
                }
            }
        }
        return new RecoveryReport(removed, warnings);
    }

    private void RecoverContainerDirectory(DirectoryInfo dir, string ns, string workload,
        Action<string, RecoveryReason, bool> remove, Action<string> warn)
    {
        var files = dir.GetFileSystemInfos().ToDictionary(f => f.Name, StringComparer.Ordinal);
        var manifests = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, info) in files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            if (info.LinkTarget is not null || (info.Attributes & FileAttributes.ReparsePoint) != 0)
            {
                warn($"{info.FullName} is a symbolic link; left alone and never followed");
                continue;
            }
            if (name.StartsWith(TempPrefix, StringComparison.Ordinal))
            {
                if (IsInFlight(name[TempPrefix.Length..])) continue;
                remove(info.FullName, RecoveryReason.TempFile, false);
                continue;
            }
            if (!name.EndsWith(ManifestExtension, StringComparison.Ordinal)) continue;
            var id = name[..^ManifestExtension.Length];
            if (!StoreNames.IsId(id)) continue;
            ManifestDocument doc;
            try { doc = Manifests.Parse(ReadSmallFile(info.FullName), ns, workload, dir.Name, id); }
            catch (NotSupportedException e)
            {
                warn($"{info.FullName}: {e.Message}; left alone");
                manifests.Add(id);
                continue;
            }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                remove(info.FullName, RecoveryReason.CorruptManifest, false);
                continue; // its archive, now without a manifest, goes below
            }
            var archive = id + Manifests.ArchiveExtension(Manifests.Compression(doc));
            if (!files.TryGetValue(archive, out var a) || a.LinkTarget is not null || (a.Attributes & FileAttributes.Directory) != 0)
            {
                remove(info.FullName, RecoveryReason.ManifestWithoutArchive, false);
                continue;
            }
            manifests.Add(id);
        }
        foreach (var (name, info) in files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            if (info.LinkTarget is not null || !info.Exists) continue;
            string id;
            if (name.EndsWith(".tar.zst", StringComparison.Ordinal)) id = name[..^".tar.zst".Length];
            else if (name.EndsWith(".tar", StringComparison.Ordinal)) id = name[..^".tar".Length];
            else
            {
                if (!name.StartsWith(TempPrefix, StringComparison.Ordinal) && !name.EndsWith(ManifestExtension, StringComparison.Ordinal))
                    warn($"{info.FullName} is not a file of the store; left alone");
                continue;
            }
            if (!StoreNames.IsId(id)) { warn($"{info.FullName} is not a file of the store; left alone"); continue; }
            if (manifests.Contains(id) || IsInFlight(id)) continue;
            remove(info.FullName, RecoveryReason.ArchiveWithoutManifest, false);
        }
    }

    private bool IsInFlight(string nameOrId)
    {
        foreach (var id in _inFlight.Keys)
            if (nameOrId.StartsWith(id, StringComparison.Ordinal)) return true;
        return false;
    }
}

using System.Collections.Concurrent;
using System.Reflection;
using Crsc.Api.Archives;
using Crsc.Controllers.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Storage;

/// <summary>
/// The archive store on the node's disk (DESIGN.md §4):
/// <c>&lt;checkpointDir&gt;/&lt;ns&gt;/&lt;workload&gt;/&lt;container&gt;/&lt;id&gt;.tar[.zst]</c> plus <c>&lt;id&gt;.json</c>.
/// Files 0600, directories 0700; every write is temp → fsync → rename → fsync(dir), the archive before its manifest,
/// and the manifest's presence is the commit. Holds an exclusive lock on the store while it lives.
/// </summary>
public sealed partial class DiskCheckpointStore : ICheckpointStore, IDisposable
{
    internal const string TempPrefix = ".tmp-";
    internal const string LockFileName = ".crsc-store.lock";
    internal const string ManifestExtension = ".json";
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const int ChunkSize = 1 << 20;

    private readonly DiskCheckpointStoreOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly StoreLock? _lock;
    private readonly string _root;
    private readonly string _nodeName;
    private readonly string _version;
    private readonly Lock _gate = new();
    private readonly ConcurrentDictionary<string, byte> _inFlight = new(StringComparer.Ordinal);

    /// <summary>Opens (creating if needed) the store and takes its lock.</summary>
    /// <exception cref="StoreLockedException">another daemon or store instance uses this store</exception>
    public DiskCheckpointStore(DiskCheckpointStoreOptions options, TimeProvider? time = null, ILogger<DiskCheckpointStore>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _time = time ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.CheckpointDirectory));
        StagingDirectory = Path.TrimEndingDirectorySeparator(options.ResolveStagingDirectory());
        _nodeName = options.NodeName ?? Environment.MachineName;
        _version = options.CrscVersion
            ?? typeof(DiskCheckpointStore).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? "unknown";

        CreateRoot(_root);
        CreateRoot(StagingDirectory);
        _lock = options.ReadOnly ? null : StoreLock.Acquire(Path.Join(_root, LockFileName));
        Log.StoreOpened(_logger, _root, StagingDirectory);
    }

    public string CheckpointDirectory => _root;

    public string StagingDirectory { get; }

    /// <summary>The key the store signs and checks manifests with (null: none at hand).</summary>
    internal Security.NodeKey? Key => _options.Key;

    /// <summary>Test hook: called at named points of an ingestion. Throwing <see cref="InjectedCrashException"/> stops it as a crash would (no cleanup).</summary>
    internal Action<string>? FaultInjection { get; set; }

    /// <summary>Fault points, in the order an ingestion passes them.</summary>
    internal static class FaultPoints
    {
        public const string ArchiveWritten = "archive-written";     // temp archive written and fsynced, not renamed
        public const string ArchiveRenamed = "archive-renamed";     // archive in place, no manifest
        public const string ManifestWritten = "manifest-written";   // temp manifest written and fsynced, not renamed
        public const string ManifestCommitted = "manifest-committed"; // committed; staged file not yet removed
    }

    public void Dispose() => _lock?.Dispose();

    /// <summary>
    /// Fires after the committed checkpoints changed: one ingested, deleted, or removed by retention (not for a dry run).
    /// Listeners (the daemon's <c>store</c> health entry and <c>crsc_store_bytes</c>) read the store again; one that
    /// throws is logged and never fails the change.
    /// </summary>
    public event Action? Changed;

    private void OnChanged()
    {
        if (Changed is not { } changed) return;
        foreach (var listener in changed.GetInvocationList().Cast<Action>())
        {
            try { listener(); }
            catch (Exception e) { Log.ChangeListenerFailed(_logger, e); }
        }
    }

    public string NewStagingPath(CheckpointedContainer source)
    {
        ValidateSource(source);
        var random = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6));
        return Path.Join(StagingDirectory, $"{source.Namespace}_{source.Workload}_{source.Container}-{random}.tar");
    }

    /// <summary>Whether <paramref name="name"/> is one <see cref="NewStagingPath"/> hands out: <c>ns_workload_container-&lt;12 hex&gt;.tar</c>.</summary>
    internal static bool IsStagingName(string name) => StagingName().IsMatch(name);

    [System.Text.RegularExpressions.GeneratedRegex(@"^[a-z0-9][a-z0-9.-]*_[a-z0-9][a-z0-9.-]*_[a-z0-9][a-z0-9-]*-[0-9a-f]{12}\.tar$")]
    private static partial System.Text.RegularExpressions.Regex StagingName();

    public Task<CheckpointInfo> IngestAsync(string stagedArchivePath, CheckpointedContainer source, IngestOptions options,
        IProgress<long>? progress, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(stagedArchivePath);
        ArgumentNullException.ThrowIfNull(options);
        ValidateSource(source);
        ct.ThrowIfCancellationRequested();
        return Task.Run(() => Ingest(Path.GetFullPath(stagedArchivePath), source, options, progress, ct), ct);
    }

    private CheckpointInfo Ingest(string staged, CheckpointedContainer source, IngestOptions options, IProgress<long>? progress, CancellationToken ct)
    {
        var compression = options.Compression ?? _options.DefaultCompression;
        var level = options.CompressionLevel ?? _options.CompressionLevel;
        if (level is < -7 or > 22) throw new ArgumentOutOfRangeException(nameof(options), level, "zstd levels are -7 … 22");

        var stagedInfo = new FileInfo(staged);
        if (stagedInfo.LinkTarget is not null)
            throw new ArchiveRejectedException($"archive {staged} is a symbolic link; crsc ingests only regular files");
        var handle = Native.OpenReadNoFollow(staged);
        if (options.ExpectedFile is { } expected && Native.Identity(handle, staged) is var opened && opened != expected)
        {
            handle.Dispose();
            throw new ArchiveRejectedException($"archive {staged} is not the file that was checked there ({expected}; opened {opened}): it was replaced");
        }
        using var input = new FileStream(handle, FileAccess.Read, bufferSize: 0);
        if (stagedInfo.Exists && (stagedInfo.Attributes & FileAttributes.Directory) != 0)
            throw new ArchiveRejectedException($"archive {staged} is not a regular file");
        if (input.Length > _options.Limits.MaxArchiveBytes)
            throw new ArchiveRejectedException($"archive {staged} is {input.Length} bytes, over the limit of {_options.Limits.MaxArchiveBytes}");
        // only the store's default adapts: an archive zstd cannot shrink is stored as it is (one digest, no compression pass)
        if (options.Compression is null && _options.SkipIncompressible && compression == CheckpointCompression.Zstd
            && !IngestWriter.WorthCompressing(handle, input.Length, level))
            compression = CheckpointCompression.None;

        var now = _time.GetUtcNow();
        var id = StoreNames.NewId(now);
        var dir = EnsureContainerDirectory(source.Namespace, source.Workload, source.Container);
        var archive = Path.Join(dir, id + Manifests.ArchiveExtension(compression));
        var tempArchive = Path.Join(dir, TempPrefix + id + Manifests.ArchiveExtension(compression));
        var manifest = Path.Join(dir, id + ManifestExtension);
        var tempManifest = Path.Join(dir, TempPrefix + id + ManifestExtension);
        _inFlight[id] = 0;
        var committed = false;
        try
        {
            ArchiveFacts facts;
            string rawDigest, storedDigest;
            long rawBytes, storedBytes;
            using (var writer = new IngestWriter(tempArchive, compression, level, _options.CompressionWorkers))
            {
                var tee = new CountingReadStream(input, writer.Accept, ChunkSize, progress, ct);
                try { facts = ArchiveInspector.Inspect(tee, _options.Limits); }
                catch (ArchiveRejectedException e)
                {
                    throw new ArchiveRejectedException($"archive {staged} refused: {e.Message}", e.Entry, e);
                }
                CheckAgainstSource(staged, facts, source);
                (rawDigest, storedDigest) = writer.Complete();
                rawBytes = writer.RawBytes;
                storedBytes = writer.StoredBytes;
            }
            Fault(FaultPoints.ArchiveWritten);
            File.Move(tempArchive, archive, overwrite: false);
            Native.FSyncDirectory(dir);
            Fault(FaultPoints.ArchiveRenamed);

            var doc = new ManifestDocument
            {
                // the oldest format that holds what is recorded: a manifest without a reason stays readable by a format 2 crsc
                FormatVersion = source.Reason is null ? ManifestDocument.OwnerFormatVersion : ManifestDocument.ReasonFormatVersion,
                Id = id,
                Namespace = source.Namespace,
                Workload = source.Workload,
                Container = source.Container,
                PodName = source.PodName ?? facts.PodName,
                PodUid = source.PodUid ?? facts.PodUid,
                NodeName = _nodeName,
                Archive = new ManifestArchive
                {
                    Compression = Manifests.CompressionName(compression),
                    CompressionLevel = compression == CheckpointCompression.Zstd ? level : null,
                    Digest = storedDigest,
                    Size = storedBytes,
                    UncompressedDigest = rawDigest,
                    UncompressedSize = rawBytes,
                },
                Source = Manifests.FromFacts(facts),
                Owner = Manifests.FromOwner(source.Owner),
                Reason = source.Reason,
                CreatedAt = now,
                CrscVersion = _version,
                Pinned = options.Pinned,
            };
            Manifests.Sign(doc, _options.Key);
            WriteManifest(dir, tempManifest, manifest, doc);
            committed = true;
            Fault(FaultPoints.ManifestCommitted);
            var info = Manifests.ToInfo(doc, archive, _options.Key);
            Log.Ingested(_logger, id, source.Namespace, source.Workload, source.Container, rawBytes, storedBytes, compression, storedDigest);
            OnChanged();
            if (options.RemoveStaged) TryDelete(staged);
            return info;
        }
        catch (Exception e) when (e is not InjectedCrashException && !committed)
        {
            if (e is ArchiveRejectedException) Log.Rejected(_logger, staged, e.Message);
            TryDelete(tempManifest);
            TryDelete(manifest);
            TryDelete(tempArchive);
            TryDelete(archive);
            throw;
        }
        finally
        {
            _inFlight.TryRemove(id, out _);
        }
    }

    private static void CheckAgainstSource(string staged, ArchiveFacts facts, CheckpointedContainer source)
    {
        // the archive's own annotations must agree with what the cluster says it is: a mix-up files it in the wrong place
        if (facts.PodNamespace is { } ns && ns != source.Namespace)
            throw new ArchiveRejectedException($"archive {staged} is of a container in namespace '{ns}', not '{source.Namespace}'", CheckpointArchiveLayout.SpecDump);
        if (facts.PodUid is { } uid && source.PodUid is { } expected && uid != expected)
            throw new ArchiveRejectedException($"archive {staged} is of pod UID '{uid}', not '{expected}'", CheckpointArchiveLayout.SpecDump);
        if (facts.PodName is { } pod && source.PodName is { } expectedPod && pod != expectedPod)
            throw new ArchiveRejectedException($"archive {staged} is of pod '{pod}', not '{expectedPod}'", CheckpointArchiveLayout.SpecDump);
    }

    private void WriteManifest(string dir, string tempManifest, string manifest, ManifestDocument doc)
    {
        var bytes = Manifests.Serialize(doc);
        using (var file = new FileStream(tempManifest, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = 0,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }
        Fault(FaultPoints.ManifestWritten);
        lock (_gate) File.Move(tempManifest, manifest, overwrite: true);
        Native.FSyncDirectory(dir);
    }

    private void Fault(string point) => FaultInjection?.Invoke(point);

    public IReadOnlyList<CheckpointInfo> List(CheckpointFilter? filter = null)
    {
        if (filter is not null)
        {
            if (filter.Namespace is not null) StoreNames.Namespace(filter.Namespace);
            if (filter.Workload is not null) StoreNames.Workload(filter.Workload);
            if (filter.Container is not null) StoreNames.Container(filter.Container);
        }
        var result = new List<CheckpointInfo>();
        foreach (var (info, _) in Scan(filter)) result.Add(info);
        result.Sort((a, b) => b.CreatedAt != a.CreatedAt ? b.CreatedAt.CompareTo(a.CreatedAt) : string.CompareOrdinal(b.Id, a.Id));
        return result;
    }

    public CheckpointInfo? Get(string id) => Find(id)?.Info;

    public IReadOnlyList<CheckpointInfo> FindByOwner(string @namespace, string name, string? uid)
    {
        StoreNames.Namespace(@namespace);
        StoreNames.ObjectName(name);
        StoreNames.ObjectUid(uid);
        // an owner is in the namespace of the pod it checkpointed: only that namespace's manifests are read
        return [.. List(new CheckpointFilter(@namespace)).Where(c => c.Owner?.Is(@namespace, name, uid) == true)];
    }

    private (CheckpointInfo Info, ManifestDocument Doc)? Find(string id)
    {
        StoreNames.Id(id);
        foreach (var found in Scan(null, id)) return found;
        return null;
    }

    private (CheckpointInfo Info, ManifestDocument Doc) FindOrThrow(string id) =>
        Find(id) ?? throw new CheckpointNotFoundException(id);

    /// <summary>Committed checkpoints: a parseable manifest whose archive is a regular file. Never follows a symlink.</summary>
    private IEnumerable<(CheckpointInfo, ManifestDocument)> Scan(CheckpointFilter? filter, string? onlyId = null)
    {
        foreach (var nsDir in SafeSubdirectories(_root, StoreNames.IsLabel))
        {
            if (filter?.Namespace is { } ns && nsDir.Name != ns) continue;
            foreach (var wlDir in SafeSubdirectories(nsDir.FullName, StoreNames.IsSubdomain))
            {
                if (filter?.Workload is { } wl && wlDir.Name != wl) continue;
                foreach (var ctrDir in SafeSubdirectories(wlDir.FullName, StoreNames.IsLabel))
                {
                    if (filter?.Container is { } ctr && ctrDir.Name != ctr) continue;
                    foreach (var file in SafeFiles(ctrDir.FullName))
                    {
                        if (!file.Name.EndsWith(ManifestExtension, StringComparison.Ordinal)) continue;
                        var id = file.Name[..^ManifestExtension.Length];
                        if (!StoreNames.IsId(id) || (onlyId is not null && id != onlyId)) continue;
                        var loaded = TryLoad(ctrDir.FullName, nsDir.Name, wlDir.Name, ctrDir.Name, id, out var problem);
                        if (loaded is null)
                        {
                            Log.ManifestSkipped(_logger, file.FullName, problem!);
                            continue;
                        }
                        yield return loaded.Value;
                    }
                }
            }
        }
    }

    private (CheckpointInfo, ManifestDocument)? TryLoad(string dir, string ns, string workload, string container, string id, out string? problem)
    {
        var manifestPath = Path.Join(dir, id + ManifestExtension);
        ManifestDocument doc;
        try { doc = Manifests.Parse(ReadSmallFile(manifestPath), ns, workload, container, id); }
        catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException or UnauthorizedAccessException)
        {
            problem = e.Message;
            return null;
        }
        var archive = Path.Join(dir, id + Manifests.ArchiveExtension(Manifests.Compression(doc)));
        if (!IsRegularFile(archive))
        {
            problem = $"its archive {archive} is missing or not a regular file";
            return null;
        }
        problem = null;
        return (Manifests.ToInfo(doc, archive, _options.Key), doc);
    }

    private static byte[] ReadSmallFile(string path)
    {
        using var file = new FileStream(Native.OpenReadNoFollow(path), FileAccess.Read, bufferSize: 0);
        if (file.Length > 1 << 20) throw new InvalidDataException($"{path} is larger than a manifest can be");
        var bytes = new byte[file.Length];
        file.ReadExactly(bytes);
        return bytes;
    }

    public Task<Stream> OpenReadAsync(string id, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var (info, _) = FindOrThrow(id);
        Stream stored = OpenStored(info);
        if (info.Compression == CheckpointCompression.None) return Task.FromResult(stored);
        try
        {
            var raw = new ZstdDecompressStream(stored);
            return Task.FromResult<Stream>(new VerifyingReadStream(raw, info.Id, "the uncompressed archive", info.UncompressedDigest, info.UncompressedSize));
        }
        catch
        {
            stored.Dispose();
            throw;
        }
    }

    public Task<Stream> OpenStoredAsync(string id, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        return Task.FromResult<Stream>(OpenStored(FindOrThrow(id).Info));
    }

    private static VerifyingReadStream OpenStored(CheckpointInfo info)
    {
        var file = new FileStream(Native.OpenReadNoFollow(info.ArchivePath), FileAccess.Read, bufferSize: 1 << 16);
        return new VerifyingReadStream(file, info.Id, "the stored archive", info.Digest, info.Size);
    }

    public async Task<VerificationResult> VerifyAsync(string id, CancellationToken ct)
    {
        try
        {
            await using var stream = await OpenReadAsync(id, ct).ConfigureAwait(false);
            var buffer = new byte[1 << 20];
            while (stream.Read(buffer) > 0) ct.ThrowIfCancellationRequested();
            return new VerificationResult(id, true, null);
        }
        catch (CheckpointCorruptException e)
        {
            Log.VerificationFailed(_logger, id, e.Message);
            return new VerificationResult(id, false, e.Message);
        }
    }

    public Task<CheckpointInfo> SetPinnedAsync(string id, bool pinned, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var (info, doc) = FindOrThrow(id);
        if (doc.Pinned == pinned) return Task.FromResult(info);
        doc.Pinned = pinned;
        var dir = Path.GetDirectoryName(info.ArchivePath)!;
        var temp = Path.Join(dir, TempPrefix + id + ManifestExtension + "-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)));
        try { WriteManifest(dir, temp, Path.Join(dir, id + ManifestExtension), doc); }
        catch
        {
            TryDelete(temp);
            throw;
        }
        Log.PinChanged(_logger, id, pinned);
        return Task.FromResult(info with { Pinned = pinned });
    }

    public bool Delete(string id)
    {
        var found = Find(id);
        if (found is null) return false;
        try { DeleteCommitted(found.Value.Info); }
        finally { OnChanged(); } // even a half-done delete (manifest gone, archive not) changed what the store lists
        Log.Deleted(_logger, id, found.Value.Info.ArchivePath);
        return true;
    }

    /// <summary>Manifest first (the checkpoint stops existing), then the archive; a crash between leaves an orphan archive for recovery.</summary>
    private void DeleteCommitted(CheckpointInfo info)
    {
        var dir = Path.GetDirectoryName(info.ArchivePath)!;
        lock (_gate) File.Delete(Path.Join(dir, info.Id + ManifestExtension));
        Native.FSyncDirectory(dir);
        File.Delete(info.ArchivePath);
        Native.FSyncDirectory(dir);
    }

    private static void ValidateSource(CheckpointedContainer source)
    {
        ArgumentNullException.ThrowIfNull(source);
        StoreNames.Namespace(source.Namespace);
        StoreNames.Workload(source.Workload);
        StoreNames.Container(source.Container);
        if (source.PodName is not null) StoreNames.Pod(source.PodName);
        StoreNames.PodUid(source.PodUid);
        if (source.Owner is { } owner)
        {
            if (owner.Namespace != source.Namespace)
                throw new InvalidCheckpointNameException("ContainerCheckpoint namespace", owner.Namespace,
                    $"the owner of a checkpoint is in the checkpointed pod's namespace, '{source.Namespace}'");
            StoreNames.ObjectName(owner.Name);
            StoreNames.ObjectUid(owner.Uid);
            if (owner.Origin == CheckpointOrigin.Online && owner.Uid is null)
                throw new InvalidCheckpointNameException("ContainerCheckpoint UID", "", "an online run knows its object's UID");
        }
        if (source.Reason is { } reason && !CheckpointReasons.IsValid(reason))
            throw new InvalidCheckpointNameException("checkpoint reason", reason, "a reason is an UpperCamelCase word of letters and digits (e.g. NodeDrain)");
    }

    private void CreateRoot(string path)
    {
        if (_options.ReadOnly) PrivateDirectory.Check(path); // a dry run creates nothing
        else PrivateDirectory.Ensure(path);
    }

    /// <summary>Creates <c>&lt;root&gt;/ns/workload/container</c> (0700), refusing any component that is a symlink or a file.</summary>
    private string EnsureContainerDirectory(string ns, string workload, string container)
    {
        var path = _root;
        foreach (var part in (ReadOnlySpan<string>)[ns, workload, container])
        {
            path = Path.Join(path, part);
            var info = new DirectoryInfo(path);
            if (info.LinkTarget is not null)
                throw new IOException($"'{path}' is a symbolic link; crsc does not follow links in its store");
            if (!info.Exists)
            {
                if (File.Exists(path)) throw new IOException($"'{path}' is a file where crsc keeps a directory");
                Directory.CreateDirectory(path, DirectoryMode);
                if (new DirectoryInfo(path).LinkTarget is not null)
                    throw new IOException($"'{path}' is a symbolic link; crsc does not follow links in its store");
                Native.FSyncDirectory(Path.GetDirectoryName(path)!);
            }
        }
        return path;
    }

    private IEnumerable<DirectoryInfo> SafeSubdirectories(string path, Func<string, bool> validName)
    {
        DirectoryInfo[] dirs;
        try { dirs = new DirectoryInfo(path).GetDirectories(); }
        catch (DirectoryNotFoundException) { yield break; }
        Array.Sort(dirs, (a, b) => string.CompareOrdinal(a.Name, b.Name));
        foreach (var d in dirs)
        {
            if (d.LinkTarget is not null || (d.Attributes & FileAttributes.ReparsePoint) != 0)
            {
                Log.PathSkipped(_logger, d.FullName, "a symbolic link; never followed");
                continue;
            }
            if (!validName(d.Name)) continue;
            yield return d;
        }
    }

    private static IEnumerable<FileInfo> SafeFiles(string path)
    {
        FileInfo[] files;
        try { files = new DirectoryInfo(path).GetFiles(); }
        catch (DirectoryNotFoundException) { yield break; }
        foreach (var f in files)
        {
            if (f.LinkTarget is not null || (f.Attributes & FileAttributes.ReparsePoint) != 0) continue;
            yield return f;
        }
    }

    private static bool IsRegularFile(string path)
    {
        var info = new FileInfo(path);
        return info.LinkTarget is null && info.Exists && (info.Attributes & (FileAttributes.Directory | FileAttributes.ReparsePoint)) == 0;
    }

    private void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.CleanupFailed(_logger, path, e.Message);
        }
    }
}

/// <summary>Thrown by a test's fault hook: the ingestion stops where it is, as if the process had died.</summary>
internal sealed class InjectedCrashException(string point) : Exception($"injected crash at {point}")
{
    public string Point { get; } = point;
}

using System.Text.Json;
using System.Text.Json.Serialization;
using Crsc.Api;
using Crsc.Controllers.StaticPods;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Storage.StaticManifests;

/// <summary>Where the static-pod checkpoints live (absolute directories).</summary>
public sealed record StaticManifestStoreOptions
{
    /// <summary>The kubelet's static-pod directory: active checkpoints.</summary>
    public required string ManifestsDir { get; init; }
    public required string InactiveManifestsDir { get; init; }
    public required string SecretsDir { get; init; }
    public required string ConfigMapsDir { get; init; }
    /// <summary>The checkpointer's state file goes to <c>&lt;StateDir&gt;/static-pods/state.json</c>, the checkpoints' MACs to <c>static-pods/macs</c>.</summary>
    public required string StateDir { get; init; }

    /// <summary>
    /// The node key: each checkpoint written gets a MAC over its manifest, Secrets and ConfigMaps, and a checkpoint is
    /// activated only when its MAC verifies. Null (tests, tools): no MAC is written and none is checked.
    /// </summary>
    public Security.NodeKey? Key { get; init; }
}

/// <summary>
/// The static-pod checkpoints on disk. Inactive checkpoints are <c>&lt;inactive&gt;/&lt;ns&gt;-&lt;pod&gt;.json</c>, active ones
/// the same file in the kubelet's manifest directory; Secrets are <c>&lt;secrets&gt;/&lt;ns&gt;/&lt;pod&gt;/&lt;name&gt;/&lt;key&gt;</c>
/// and ConfigMaps likewise (directories 0700, files 0600). Every write is temp → fsync → rename → fsync(dir).
/// Names are validated before they become paths; no symlink is followed (a symlinked root or component is refused);
/// and only manifests carrying <c>crsc.io/checkpoint-of</c> of the parent in question are replaced or removed, so
/// other manifests in the kubelet's directory are never touched. With a key, each inactive checkpoint has a MAC
/// (<c>&lt;stateDir&gt;/static-pods/macs/&lt;ns&gt;-&lt;pod&gt;.mac</c>: key id and HMAC-SHA256 over the parent, the manifest and
/// every key of every saved Secret and ConfigMap), checked before the checkpoint is activated: files changed by anyone
/// but crsc are refused and left as they are.
/// </summary>
public sealed partial class DiskStaticManifestStore : IStaticManifestStore
{
    public const int StateFormatVersion = 1;
    private const UnixFileMode DirMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly StaticManifestStoreOptions _options;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();

    public DiskStaticManifestStore(StaticManifestStoreOptions options, ILogger? logger = null)
    {
        foreach (var (key, dir) in new[] { ("manifestsDir", options.ManifestsDir), ("inactiveManifestsDir", options.InactiveManifestsDir),
                     ("checkpointSecretsDir", options.SecretsDir), ("checkpointConfigMapsDir", options.ConfigMapsDir), ("stateDir", options.StateDir) })
        {
            if (!Path.IsPathFullyQualified(dir) || dir.Split('/').Any(p => p is ".." or "."))
                throw new ArgumentException($"{key} \"{dir}\" must be an absolute path without '..'", nameof(options));
        }
        _options = options;
        _logger = logger ?? NullLogger.Instance;
    }

    public StaticManifestStoreOptions Options => _options;

    private string StateDirectory => Path.Join(_options.StateDir, "static-pods");

    // --- listing ---

    public IReadOnlyList<StoredStaticCheckpoint> List()
    {
        lock (_gate)
        {
            var inactive = Scan(_options.InactiveManifestsDir);
            var active = Scan(_options.ManifestsDir);
            return inactive.Keys.Union(active.Keys)
                .Order(Comparer<ObjectKey>.Create((a, b) => string.CompareOrdinal(a.ToString(), b.ToString())))
                .Select(k => new StoredStaticCheckpoint(k, inactive.ContainsKey(k), active.ContainsKey(k)))
                .ToList();
        }
    }

    /// <summary>crsc's checkpoints in <paramref name="dir"/>: regular <c>.json</c> files whose content names their parent.</summary>
    private Dictionary<ObjectKey, string> Scan(string dir)
    {
        var found = new Dictionary<ObjectKey, string>();
        if (!Directory.Exists(dir) || IsLink(dir)) return found;
        foreach (var file in new DirectoryInfo(dir).EnumerateFiles("*" + StaticPodManifest.Extension))
        {
            if (file.Name.StartsWith('.') || file.LinkTarget is not null) continue;
            if (ReadParent(file.FullName) is { } parent && file.Name == FileName(parent)) found[parent] = file.FullName;
        }
        return found;
    }

    /// <summary>The parent a manifest crsc wrote names; null for anything else (not JSON, not a pod, not crsc's, bad names).</summary>
    private ObjectKey? ReadParent(string path)
    {
        try
        {
            var parent = StaticPodManifest.ParentOf(StaticPodManifest.Deserialize(ReadNoFollow(path)));
            if (parent is not { } p) return null;
            StaticPodNames.Namespace(p.Namespace);
            StaticPodNames.Object("pod name", p.Name);
            return p;
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or InvalidStaticPodNameException)
        {
            Log.NotACheckpoint(_logger, path, e.Message);
            return null;
        }
    }

    // --- writing ---

    public bool WriteInactive(StaticCheckpointData data)
    {
        var parent = Validate(data.Parent);
        var manifestParent = StaticPodManifest.ParentOf(StaticPodManifest.Deserialize(data.Manifest));
        if (manifestParent != parent)
            throw new StaticManifestStoreException($"the manifest for {parent} names parent {manifestParent?.ToString() ?? "(none)"}");
        foreach (var o in data.Secrets.Concat(data.ConfigMaps))
        {
            StaticPodNames.Object("secret or configmap name", o.Name);
            foreach (var key in o.Files.Keys) StaticPodNames.DataKeyName(key);
        }

        lock (_gate)
        {
            var inactiveDir = EnsureRoot(_options.InactiveManifestsDir, "inactiveManifestsDir");
            var target = Path.Join(inactiveDir, FileName(parent));
            EnsureOursOrAbsent(target, parent);
            var changed = WriteObjects(_options.SecretsDir, "checkpointSecretsDir", parent, data.Secrets);
            changed |= WriteObjects(_options.ConfigMapsDir, "checkpointConfigMapsDir", parent, data.ConfigMaps);
            // the manifest last: when it appears, what it mounts is there; its MAC after it (a crash between leaves a
            // checkpoint that is refused until it is written again, never one that is trusted without a MAC)
            changed |= WriteIfChanged(inactiveDir, FileName(parent), data.Manifest);
            if (_options.Key is { } key)
            {
                EnsureRoot(_options.StateDir, "stateDir");
                EnsureDir(EnsureDir(_options.StateDir, "static-pods"), MacDirectoryName);
                WriteIfChanged(MacDirectory, MacFileName(parent),
                    System.Text.Encoding.ASCII.GetBytes($"{MacFormat} {key.Id} {Mac(key, parent, data.Manifest, data.Secrets, data.ConfigMaps)}\n"));
            }
            return changed;
        }
    }

    public void Activate(ObjectKey parent)
    {
        parent = Validate(parent);
        lock (_gate)
        {
            var source = Path.Join(_options.InactiveManifestsDir, FileName(parent));
            if (IsLink(_options.InactiveManifestsDir)) throw Refused(_options.InactiveManifestsDir, "inactiveManifestsDir is a symbolic link");
            if (ReadParent(source) != parent) throw new StaticManifestStoreException($"there is no inactive checkpoint of {parent} at {source}");
            var bytes = ReadNoFollow(source);
            if (_options.Key is { } key && MacProblem(key, parent, bytes) is { } problem)
                throw new StaticManifestStoreException($"refused to activate the checkpoint of {parent} ({source}): {problem}; its files are left as they are");
            var manifestsDir = EnsureRoot(_options.ManifestsDir, "manifestsDir", create: true);
            var target = Path.Join(manifestsDir, FileName(parent));
            EnsureOursOrAbsent(target, parent);
            WriteIfChanged(manifestsDir, FileName(parent), bytes);
        }
    }

    public void Deactivate(ObjectKey parent)
    {
        parent = Validate(parent);
        lock (_gate) RemoveManifest(_options.ManifestsDir, "manifestsDir", parent);
    }

    public void Remove(ObjectKey parent)
    {
        parent = Validate(parent);
        lock (_gate)
        {
            // the active copy first: the kubelet stops the pod before its files go
            RemoveManifest(_options.ManifestsDir, "manifestsDir", parent);
            RemoveManifest(_options.InactiveManifestsDir, "inactiveManifestsDir", parent);
            RemoveObjects(_options.SecretsDir, "checkpointSecretsDir", parent);
            RemoveObjects(_options.ConfigMapsDir, "checkpointConfigMapsDir", parent);
            var mac = Path.Join(MacDirectory, MacFileName(parent));
            if (new FileInfo(mac) is { Exists: true, LinkTarget: null } && !IsLink(MacDirectory))
            {
                File.Delete(mac);
                Native.FSyncDirectory(MacDirectory);
            }
        }
    }

    // --- MACs ---

    private const string MacDirectoryName = "macs";
    private const string MacFormat = "crsc-static-mac-v1";
    /// <summary>The purpose the static-checkpoint MAC key is derived for.</summary>
    public const string MacPurpose = "crsc static manifest mac v1";

    private string MacDirectory => Path.Join(StateDirectory, MacDirectoryName);

    /// <summary>
    /// How many static-pod checkpoints under <paramref name="stateDir"/> name <paramref name="keyId"/> as their signer
    /// (read before the store is opened, to tell whether a key is in use; the MACs themselves are not checked here).
    /// </summary>
    public static int CountSignedBy(string stateDir, string keyId)
    {
        var dir = Path.Join(stateDir, "static-pods", MacDirectoryName);
        if (!Directory.Exists(dir)) return 0;
        var count = 0;
        foreach (var file in Directory.EnumerateFiles(dir, "*.mac"))
        {
            string text;
            try { text = System.Text.Encoding.ASCII.GetString(ReadNoFollow(file)); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            if (text.TrimEnd('\n').Split(' ') is [MacFormat, var id, _] && id == keyId) count++;
        }
        return count;
    }

    private static string MacFileName(ObjectKey parent) => StaticPodNames.FileStem(parent) + ".mac";

    /// <summary>HMAC-SHA256 (hex) over the parent, the manifest and each Secret's and ConfigMap's keys, by name, in ordinal order.</summary>
    private static string Mac(Security.NodeKey key, ObjectKey parent, byte[] manifest,
        IReadOnlyList<StaticDataObject> secrets, IReadOnlyList<StaticDataObject> configMaps)
    {
        using var w = new Security.MacWriter(key.Derive(MacPurpose), "crsc static pod checkpoint");
        w.Add(parent.Namespace).Add(parent.Name).Add(manifest);
        foreach (var (kind, objects) in new[] { ("secrets", secrets), ("configmaps", configMaps) })
        {
            w.Add(kind).Add(objects.Count);
            foreach (var o in objects.OrderBy(o => o.Name, StringComparer.Ordinal))
            {
                w.Add(o.Name).Add(o.Files.Count);
                foreach (var (name, bytes) in o.Files.OrderBy(f => f.Key, StringComparer.Ordinal)) w.Add(name).Add(bytes);
            }
        }
        return w.ToHex();
    }

    /// <summary>Why the checkpoint of <paramref name="parent"/> as it is on disk does not carry a valid MAC of <paramref name="key"/>; null when it does.</summary>
    private string? MacProblem(Security.NodeKey key, ObjectKey parent, byte[] manifest)
    {
        var path = Path.Join(MacDirectory, MacFileName(parent));
        string text;
        try { text = System.Text.Encoding.ASCII.GetString(ReadNoFollow(path)); }
        catch (FileNotFoundException) { return $"it has no MAC ({path} is missing): crsc did not write it, or wrote it before checkpoints had MACs"; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return $"its MAC {path} cannot be read: {e.Message}"; }
        var parts = text.TrimEnd('\n').Split(' ');
        if (parts is not [MacFormat, var keyId, var mac]) return $"its MAC file {path} is not one crsc writes";
        if (keyId != key.Id)
            return Security.NodeKey.IsId(keyId) ? $"it is signed by key id {keyId}, not by this node's key" : $"its MAC file {path} is not one crsc writes";
        List<StaticDataObject> secrets, configMaps;
        try
        {
            secrets = ReadObjects(_options.SecretsDir, parent);
            configMaps = ReadObjects(_options.ConfigMapsDir, parent);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"its Secrets or ConfigMaps cannot be read: {e.Message}";
        }
        return Security.MacWriter.Same(Mac(key, parent, manifest, secrets, configMaps), mac)
            ? null
            : "its MAC does not verify (invalid MAC): the manifest, a Secret or a ConfigMap was changed after crsc wrote it";
    }

    /// <summary>The saved objects of <paramref name="parent"/> under <paramref name="root"/>; anything but real directories and regular files is refused.</summary>
    private static List<StaticDataObject> ReadObjects(string root, ObjectKey parent)
    {
        var objects = new List<StaticDataObject>();
        var podDir = Path.Join(root, parent.Namespace, parent.Name);
        if (!Exists(podDir)) return objects;
        foreach (var dir in new[] { root, Path.Join(root, parent.Namespace), podDir })
            if (IsLink(dir)) throw new IOException($"'{dir}' is a symbolic link");
        foreach (var entry in new DirectoryInfo(podDir).EnumerateFileSystemInfos())
        {
            if (entry.LinkTarget is not null || entry is not DirectoryInfo objectDir) throw new IOException($"'{entry.FullName}' is not a directory crsc wrote");
            var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            foreach (var file in objectDir.EnumerateFileSystemInfos())
            {
                if (file.LinkTarget is not null || file is not FileInfo) throw new IOException($"'{file.FullName}' is not a file crsc wrote");
                files[file.Name] = ReadNoFollow(file.FullName);
            }
            objects.Add(new StaticDataObject(entry.Name, files));
        }
        return objects;
    }

    private void RemoveManifest(string root, string key, ObjectKey parent)
    {
        if (!Exists(root)) return;
        if (IsLink(root)) throw Refused(root, $"{key} is a symbolic link");
        var path = Path.Join(root, FileName(parent));
        if (!Exists(path)) return;
        if (ReadParent(path) != parent)
            throw Refused(path, $"it is not crsc's checkpoint of {parent}; crsc removes only manifests it wrote");
        File.Delete(path);
        Native.FSyncDirectory(root);
    }

    /// <summary>Writes <c>&lt;root&gt;/&lt;ns&gt;/&lt;pod&gt;/&lt;name&gt;/&lt;key&gt;</c> for each object; removes keys and objects no longer there.</summary>
    private bool WriteObjects(string root, string rootKey, ObjectKey parent, IReadOnlyList<StaticDataObject> objects)
    {
        var podDir = Path.Join(root, parent.Namespace, parent.Name);
        if (objects.Count == 0 && !Exists(podDir)) return false;
        EnsureRoot(root, rootKey);
        EnsureDir(root, parent.Namespace!);
        EnsureDir(Path.Join(root, parent.Namespace), parent.Name);
        var changed = false;
        var wanted = objects.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var stale in new DirectoryInfo(podDir).EnumerateFileSystemInfos().Where(e => !wanted.Contains(e.Name)))
        {
            RemoveTree(stale.FullName);
            changed = true;
        }
        foreach (var o in objects)
        {
            var dir = EnsureDir(podDir, o.Name);
            foreach (var stale in new DirectoryInfo(dir).EnumerateFileSystemInfos().Where(e => !o.Files.ContainsKey(e.Name)))
            {
                RemoveTree(stale.FullName);
                changed = true;
            }
            foreach (var (key, bytes) in o.Files.OrderBy(f => f.Key, StringComparer.Ordinal))
                changed |= WriteIfChanged(dir, key, bytes);
            if (changed) Native.FSyncDirectory(dir);
        }
        if (changed) Native.FSyncDirectory(podDir);
        return changed;
    }

    private static void RemoveObjects(string root, string rootKey, ObjectKey parent)
    {
        if (!Exists(root)) return;
        if (IsLink(root)) throw Refused(root, $"{rootKey} is a symbolic link");
        var nsDir = Path.Join(root, parent.Namespace);
        if (!Exists(nsDir)) return;
        if (IsLink(nsDir)) throw Refused(nsDir, "a symbolic link where crsc keeps a directory");
        var podDir = Path.Join(nsDir, parent.Name);
        if (!Exists(podDir)) return;
        RemoveTree(podDir);
        Native.FSyncDirectory(nsDir);
        // the namespace directory goes with its last pod
        if (!Directory.EnumerateFileSystemEntries(nsDir).Any())
        {
            Directory.Delete(nsDir);
            Native.FSyncDirectory(root);
        }
    }

    /// <summary>Removes a file, a symlink (the link, never its target) or a directory tree without following links.</summary>
    private static void RemoveTree(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null || !info.Attributes.HasFlag(FileAttributes.Directory))
        {
            File.Delete(path);
            return;
        }
        foreach (var entry in Directory.EnumerateFileSystemEntries(path)) RemoveTree(entry);
        Directory.Delete(path);
    }

    /// <summary>Writes <paramref name="name"/> in <paramref name="dir"/> (0600) unless it already holds these bytes.</summary>
    private static bool WriteIfChanged(string dir, string name, byte[] bytes)
    {
        var path = Path.Join(dir, name);
        var info = new FileInfo(path);
        if (info.LinkTarget is null && info.Exists)
        {
            // the same bytes in a private file: nothing to do; a file someone opened up is replaced by a new 0600 one
            // (crsc never changes the mode of a path in place)
            if ((File.GetUnixFileMode(path) & ~FileMode) == 0 && ReadNoFollow(path).AsSpan().SequenceEqual(bytes)) return false;
        }
        else if (Directory.Exists(path) && info.LinkTarget is null)
        {
            throw Refused(path, "a directory where crsc writes a file");
        }
        // a symlink at the path is replaced by the rename, never followed
        AtomicFile.Write(path, bytes);
        return true;
    }

    /// <summary>A root directory crsc writes into: created (0700) when missing; refused when it is a symlink or a file.</summary>
    private static string EnsureRoot(string root, string key, bool create = true)
    {
        if (IsLink(root)) throw Refused(root, $"{key} is a symbolic link; crsc does not follow links");
        if (File.Exists(root)) throw Refused(root, $"{key} is a file, not a directory");
        if (!Directory.Exists(root) && create)
        {
            Directory.CreateDirectory(root, DirMode);
            if (IsLink(root)) throw Refused(root, $"{key} is a symbolic link; crsc does not follow links");
            if (Path.GetDirectoryName(root) is { } up) Native.FSyncDirectory(up);
        }
        return root;
    }

    /// <summary><c>&lt;parent&gt;/&lt;name&gt;</c> as a real directory (0700), created when missing.</summary>
    private static string EnsureDir(string parentDir, string name)
    {
        var path = Path.Join(parentDir, name);
        if (IsLink(path)) throw Refused(path, "a symbolic link where crsc keeps a directory");
        if (File.Exists(path)) throw Refused(path, "a file where crsc keeps a directory");
        if (!Directory.Exists(path))
        {
            Directory.CreateDirectory(path, DirMode);
            if (IsLink(path)) throw Refused(path, "a symbolic link where crsc keeps a directory");
            Native.FSyncDirectory(parentDir);
        }
        else if (PrivateDirectory.Problem((int)File.GetUnixFileMode(path), Native.LStatModeAndOwner(path).Uid) is { } problem)
        {
            // a directory that holds Secrets must be crsc's own; an open or foreign one is refused, not re-moded
            throw Refused(path, $"it {problem}; crsc keeps Secrets only in a directory private to it (make it 0700, owned by crsc's user, or remove it)");
        }
        return path;
    }

    /// <summary>Refuses to replace a manifest that is not crsc's checkpoint of <paramref name="parent"/> (another parent whose
    /// <c>ns-name</c> collides, or someone else's file).</summary>
    private void EnsureOursOrAbsent(string path, ObjectKey parent)
    {
        if (!Exists(path)) return;
        if (IsLink(path)) throw Refused(path, "a symbolic link; crsc does not follow links");
        var owner = ReadParent(path);
        if (owner != parent)
            throw Refused(path, owner is { } o
                ? $"it is the checkpoint of {o}, whose file name collides with {parent}'s"
                : $"it is not a checkpoint crsc wrote; crsc does not replace it with {parent}'s");
    }

    private static ObjectKey Validate(ObjectKey parent) =>
        new(StaticPodNames.Namespace(parent.Namespace), StaticPodNames.Object("pod name", parent.Name));

    private static string FileName(ObjectKey parent) => StaticPodNames.FileStem(parent) + StaticPodManifest.Extension;

    private static byte[] ReadNoFollow(string path)
    {
        using var handle = Native.OpenReadNoFollow(path);
        using var stream = new FileStream(handle, FileAccess.Read);
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return buffer.ToArray();
    }

    private static bool IsLink(string path) => new FileInfo(path).LinkTarget is not null;

    /// <summary>Anything at the path, a dangling symlink included.</summary>
    private static bool Exists(string path) => new FileInfo(path) is var f && (f.Exists || Directory.Exists(path) || f.LinkTarget is not null);

    private static StaticManifestStoreException Refused(string path, string reason) => new($"refused '{path}': {reason}");

    // --- state ---

    public StaticCheckpointState LoadState()
    {
        var path = Path.Join(StateDirectory, "state.json");
        lock (_gate)
        {
            if (!Exists(path)) return StaticCheckpointState.Empty;
            try
            {
                var doc = JsonSerializer.Deserialize(ReadNoFollow(path), StaticPodStateJsonContext.Default.StaticPodStateDocument);
                if (doc is null || doc.FormatVersion != StateFormatVersion)
                {
                    Log.StateUnusable(_logger, path, $"format version {doc?.FormatVersion} is not {StateFormatVersion}");
                    return StaticCheckpointState.Empty;
                }
                var timers = new Dictionary<ObjectKey, StaticCheckpointTimers>();
                foreach (var e in doc.Checkpoints)
                {
                    timers[new ObjectKey(e.Namespace, e.Name)] = new StaticCheckpointTimers
                    {
                        DownSince = e.DownSince, UpSince = e.UpSince, WrittenVersion = e.WrittenVersion, WrittenAt = e.WrittenAt,
                    };
                }
                return new StaticCheckpointState(timers);
            }
            catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
            {
                // timers only: starting them afresh delays a decision by one grace period, nothing worse
                Log.StateUnusable(_logger, path, e.Message);
                return StaticCheckpointState.Empty;
            }
        }
    }

    public void SaveState(StaticCheckpointState state)
    {
        var doc = new StaticPodStateDocument
        {
            FormatVersion = StateFormatVersion,
            Checkpoints = state.Timers.OrderBy(kv => kv.Key.ToString(), StringComparer.Ordinal).Select(kv => new StaticPodStateEntry
            {
                Namespace = kv.Key.Namespace ?? "", Name = kv.Key.Name, DownSince = kv.Value.DownSince, UpSince = kv.Value.UpSince,
                WrittenVersion = kv.Value.WrittenVersion, WrittenAt = kv.Value.WrittenAt,
            }).ToList(),
        };
        var bytes = JsonSerializer.SerializeToUtf8Bytes(doc, StaticPodStateJsonContext.Default.StaticPodStateDocument);
        lock (_gate)
        {
            EnsureRoot(_options.StateDir, "stateDir");
            EnsureDir(_options.StateDir, "static-pods");
            WriteIfChanged(StateDirectory, "state.json", bytes);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(50300, LogLevel.Debug, "{Path} is not a crsc static-pod checkpoint; left alone: {Reason}")]
        public static partial void NotACheckpoint(ILogger logger, string path, string reason);

        [LoggerMessage(50301, LogLevel.Warning, "static-pod checkpointer state {Path} is unusable, starting its timers afresh: {Reason}")]
        public static partial void StateUnusable(ILogger logger, string path, string reason);
    }
}

internal sealed class StaticPodStateDocument
{
    public int FormatVersion { get; set; }
    public List<StaticPodStateEntry> Checkpoints { get; set; } = [];
}

internal sealed class StaticPodStateEntry
{
    public string Namespace { get; set; } = "";
    public string Name { get; set; } = "";
    public DateTimeOffset? DownSince { get; set; }
    public DateTimeOffset? UpSince { get; set; }
    public string? WrittenVersion { get; set; }
    public DateTimeOffset? WrittenAt { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true)]
[JsonSerializable(typeof(StaticPodStateDocument))]
internal sealed partial class StaticPodStateJsonContext : JsonSerializerContext;

using System.Formats.Tar;
using Crsc.Controllers.Storage;

namespace Crsc.Storage;

/// <summary>A hostile entry of an archive: what makes the archive not restorable.</summary>
public sealed record ArchiveFinding(string Entry, string Message);

/// <summary>
/// The tree an archive would extract to, built entry by entry, and the entries that make it hostile: traversal,
/// absolute names, devices, duplicates, links that lead outside the archive — resolved against the archive's own
/// links (earlier and later ones), not lexically only. Ingest refuses at the first finding; <c>crsc inspect</c>
/// lists them all. The names kept are bounded by <see cref="ArchiveLimits.MaxNameBytesTotal"/>.
/// </summary>
public sealed class ArchiveTree(ArchiveLimits limits)
{
    private const int MaxLinkSteps = 4096;
    private const int MaxLinkHops = 40; // Linux's MAXSYMLINKS
    private readonly HashSet<string> _files = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirs = new(StringComparer.Ordinal);
    private readonly HashSet<string> _explicitDirs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Target, string Raw)> _symlinks = new(StringComparer.Ordinal);
    private long _nameChars;

    public bool HasDirectory(string name) => _dirs.Contains(name);

    /// <summary>Adds an entry; returns what is hostile about it, or null.</summary>
    /// <exception cref="ArchiveRejectedException">the names kept exceed <see cref="ArchiveLimits.MaxNameBytesTotal"/></exception>
    public ArchiveFinding? Add(TarEntry entry, out string name)
    {
        name = "";
        var raw = BoundedTarReader.Shorten(entry.Name);
        try
        {
            name = ArchiveInspector.CheckName(entry.Name);
            switch (entry.EntryType)
            {
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    AddFile(name, raw);
                    break;
                case TarEntryType.Directory:
                    if (name.Length == 0) break; // "./"
                    if (_files.Contains(name)) throw new ArchiveRejectedException($"entry '{raw}' is both a file and a directory", raw);
                    if (_explicitDirs.Contains(name)) throw new ArchiveRejectedException($"duplicate entry '{raw}'", raw);
                    Keep(name);
                    _explicitDirs.Add(name);
                    _dirs.Add(name);
                    AddParents(name, raw);
                    break;
                case TarEntryType.SymbolicLink:
                    CheckSymlink(name, entry);
                    AddFile(name, raw);
                    Keep(entry.LinkName);
                    _symlinks[name] = (entry.LinkName, raw);
                    break;
                case TarEntryType.HardLink:
                    var target = ArchiveInspector.CheckName(entry.LinkName, entry.Name, "hard link target");
                    if (!_files.Contains(target))
                        throw new ArchiveRejectedException($"hard link '{raw}' points to '{BoundedTarReader.Shorten(entry.LinkName)}', which is not an earlier file of the archive", raw);
                    if (_symlinks.ContainsKey(target))
                        throw new ArchiveRejectedException($"hard link '{raw}' points to the symbolic link '{BoundedTarReader.Shorten(entry.LinkName)}' (a second link to it would resolve from another directory)", raw);
                    AddFile(name, raw);
                    break;
                case TarEntryType.CharacterDevice or TarEntryType.BlockDevice:
                    throw new ArchiveRejectedException($"entry '{raw}' is a device node; a checkpoint archive has none", raw);
                case TarEntryType.Fifo:
                    throw new ArchiveRejectedException($"entry '{raw}' is a fifo; a checkpoint archive has none", raw);
                default:
                    throw new ArchiveRejectedException($"entry '{raw}' has unsupported tar type {entry.EntryType}", raw);
            }
            if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile) && entry.Length != 0)
                throw new ArchiveRejectedException($"entry '{raw}' ({entry.EntryType}) claims {entry.Length} bytes of data", raw);
            return null;
        }
        catch (ArchiveRejectedException e) when (e.Entry is not null && !e.Message.Contains("MaxNameBytesTotal", StringComparison.Ordinal))
        {
            return new ArchiveFinding(e.Entry, e.Message);
        }
    }

    /// <summary>
    /// Once every entry is in: each symbolic link resolved through the archive's own links, as the kernel would follow
    /// them after extraction. A link that leads outside the archive (or loops) is a finding.
    /// </summary>
    public IEnumerable<ArchiveFinding> ResolveLinks()
    {
        foreach (var (name, (target, raw)) in _symlinks)
        {
            var problem = Resolve(name, target);
            if (problem is not null)
                yield return new ArchiveFinding(raw, $"symbolic link '{raw}' points to '{BoundedTarReader.Shorten(target)}', which {problem}");
        }
    }

    private string? Resolve(string name, string target)
    {
        var slash = name.LastIndexOf('/');
        var path = slash < 0 ? "" : name[..slash];
        var pending = new Stack<string>();
        Push(pending, target);
        int steps = 0, hops = 0;
        while (pending.TryPop(out var part))
        {
            if (++steps > MaxLinkSteps) return "takes too many steps to resolve";
            if (part is "" or ".") continue;
            if (part == "..")
            {
                if (path.Length == 0) return "leads outside the archive through its links";
                var s = path.LastIndexOf('/');
                path = s < 0 ? "" : path[..s];
                continue;
            }
            var next = path.Length == 0 ? part : path + "/" + part;
            if (_symlinks.TryGetValue(next, out var link))
            {
                if (++hops > MaxLinkHops) return "loops through links";
                if (link.Target.StartsWith('/')) return "leads to an absolute path through its links";
                Push(pending, link.Target); // resolved from the directory of that link: path stays
                continue;
            }
            path = next;
        }
        return null;
    }

    private static void Push(Stack<string> pending, string target)
    {
        var parts = target.Split('/');
        for (var i = parts.Length - 1; i >= 0; i--) pending.Push(parts[i]);
    }

    private void Keep(string s)
    {
        _nameChars += s.Length;
        if (_nameChars * 2 > limits.MaxNameBytesTotal)
            throw new ArchiveRejectedException($"the archive's names exceed {limits.MaxNameBytesTotal} bytes in all (MaxNameBytesTotal) at entry '{BoundedTarReader.Shorten(s)}'");
    }

    private void AddFile(string name, string raw)
    {
        if (_dirs.Contains(name)) throw new ArchiveRejectedException($"entry '{raw}' is both a file and a directory", raw);
        if (_files.Contains(name)) throw new ArchiveRejectedException($"duplicate entry '{raw}'", raw);
        AddParents(name, raw);
        Keep(name);
        _files.Add(name);
    }

    private void AddParents(string name, string raw)
    {
        for (var slash = name.LastIndexOf('/'); slash > 0; slash = name.LastIndexOf('/', slash - 1))
        {
            var parent = name[..slash];
            if (_files.Contains(parent)) throw new ArchiveRejectedException($"entry '{raw}' is inside '{BoundedTarReader.Shorten(parent)}', which is not a directory", raw);
            if (_dirs.Contains(parent)) break;
            Keep(parent);
            _dirs.Add(parent);
        }
    }

    private static void CheckSymlink(string name, TarEntry entry)
    {
        var raw = BoundedTarReader.Shorten(entry.Name);
        var target = entry.LinkName;
        if (string.IsNullOrEmpty(target)) throw new ArchiveRejectedException($"symbolic link '{raw}' has no target", raw);
        if (target[0] == '/') throw new ArchiveRejectedException($"symbolic link '{raw}' points to the absolute path '{BoundedTarReader.Shorten(target)}', outside the archive", raw);
        if (target.Contains('\0')) throw new ArchiveRejectedException($"symbolic link '{raw}' has a NUL in its target", raw);
        var depth = name.Count(c => c == '/'); // components of the link's directory
        foreach (var part in target.Split('/'))
        {
            if (part is "" or ".") continue;
            if (part == "..")
            {
                if (--depth < 0)
                    throw new ArchiveRejectedException($"symbolic link '{raw}' points to '{BoundedTarReader.Shorten(target)}', outside the archive", raw);
            }
            else depth++;
        }
    }
}

using System.Globalization;
using System.Text.Json;

namespace Crsc.Run;

/// <summary>One file of a checkpoint: its path relative to the checkpoint directory, size, SHA-256 (hex) and the mode it had.</summary>
internal sealed record RunManifestFile(string Path, long Size, string Sha256, int Mode, int Uid = 0, int Gid = 0);

/// <summary>A directory of a checkpoint (under <c>paths/</c>), with the mode and owner it had, to recreate it on restore.</summary>
internal sealed record RunManifestDirectory(string Path, int Mode, int Uid = 0, int Gid = 0);

/// <summary>An <c>additionalPaths</c> entry: the absolute path it was copied from and the entry under the checkpoint.</summary>
internal sealed record RunManifestPath(string Source, string Entry, bool IsDirectory);

/// <summary>
/// <c>checkpoint/manifest.json</c>: what a <c>crsc run</c> checkpoint holds and how to check it. Versioned; a reader
/// refuses a version it does not know.
/// </summary>
internal sealed record RunManifest
{
    public const int CurrentVersion = 1;
    public const string Kind = "crsc-run-checkpoint";
    public const string FileName = "manifest.json";

    public int FormatVersion { get; init; } = CurrentVersion;
    public required IReadOnlyList<string> CommandLine { get; init; }
    public required DateTimeOffset Created { get; init; }
    public string? Node { get; init; }
    public string? Reason { get; init; }
    public int RootPid { get; init; }
    /// <summary>What the child's descriptors 0, 1, 2 were at dump (<c>pipe:[N]</c>, a path…): the restore hands ours in for them.</summary>
    public IReadOnlyList<string> Stdio { get; init; } = [];
    public IReadOnlyList<RunManifestPath> Paths { get; init; } = [];
    public IReadOnlyList<RunManifestDirectory> Directories { get; init; } = [];
    public required IReadOnlyList<RunManifestFile> Files { get; init; }

    public byte[] ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("kind", Kind);
            w.WriteNumber("formatVersion", FormatVersion);
            w.WriteStartArray("commandLine");
            foreach (var a in CommandLine) w.WriteStringValue(a);
            w.WriteEndArray();
            w.WriteString("created", Created.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
            if (Node is not null) w.WriteString("node", Node);
            if (Reason is not null) w.WriteString("reason", Reason);
            w.WriteNumber("rootPid", RootPid);
            w.WriteStartArray("stdio");
            foreach (var s in Stdio) w.WriteStringValue(s);
            w.WriteEndArray();
            w.WriteStartArray("paths");
            foreach (var p in Paths)
            {
                w.WriteStartObject();
                w.WriteString("source", p.Source);
                w.WriteString("entry", p.Entry);
                w.WriteBoolean("directory", p.IsDirectory);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("directories");
            foreach (var d in Directories)
            {
                w.WriteStartObject();
                w.WriteString("path", d.Path);
                w.WriteNumber("mode", d.Mode);
                w.WriteNumber("uid", d.Uid);
                w.WriteNumber("gid", d.Gid);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("files");
            foreach (var f in Files)
            {
                w.WriteStartObject();
                w.WriteString("path", f.Path);
                w.WriteNumber("size", f.Size);
                w.WriteString("sha256", f.Sha256);
                w.WriteNumber("mode", f.Mode);
                w.WriteNumber("uid", f.Uid);
                w.WriteNumber("gid", f.Gid);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return stream.ToArray();
    }

    /// <exception cref="FormatException">not a manifest this version of crsc reads, with the reason</exception>
    public static RunManifest Parse(byte[] json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new FormatException("the manifest is not a JSON object");
            if (Str(r, "kind") != Kind) throw new FormatException($"the manifest's kind is not {Kind}");
            var version = Req(r, "formatVersion").GetInt32();
            if (version != CurrentVersion) throw new FormatException($"the manifest's formatVersion {version} is not {CurrentVersion} (written by another crsc version)");
            return new RunManifest
            {
                FormatVersion = version,
                CommandLine = [.. Req(r, "commandLine").EnumerateArray().Select(a => a.GetString() ?? throw new FormatException("commandLine holds a null"))],
                Created = DateTimeOffset.Parse(Str(r, "created") ?? throw new FormatException("created is missing"), CultureInfo.InvariantCulture),
                Node = Str(r, "node"),
                Reason = Str(r, "reason"),
                RootPid = r.TryGetProperty("rootPid", out var pid) ? pid.GetInt32() : 0,
                Stdio = r.TryGetProperty("stdio", out var stdio) ? [.. stdio.EnumerateArray().Select(s => s.GetString() ?? "")] : [],
                Paths = [.. Req(r, "paths").EnumerateArray().Select(p => new RunManifestPath(
                    Str(p, "source") ?? throw new FormatException("a path has no source"),
                    Str(p, "entry") ?? throw new FormatException("a path has no entry"),
                    Req(p, "directory").GetBoolean()))],
                Directories = [.. Req(r, "directories").EnumerateArray().Select(d => new RunManifestDirectory(
                    Str(d, "path") ?? throw new FormatException("a directory has no path"),
                    Req(d, "mode").GetInt32(), Req(d, "uid").GetInt32(), Req(d, "gid").GetInt32()))],
                Files = [.. Req(r, "files").EnumerateArray().Select(f => new RunManifestFile(
                    Str(f, "path") ?? throw new FormatException("a file has no path"),
                    Req(f, "size").GetInt64(),
                    Str(f, "sha256") ?? throw new FormatException("a file has no sha256"),
                    Req(f, "mode").GetInt32(), Req(f, "uid").GetInt32(), Req(f, "gid").GetInt32()))],
            };
        }
        catch (JsonException e) { throw new FormatException("the manifest is not valid JSON: " + e.Message, e); }
        catch (InvalidOperationException e) { throw new FormatException("the manifest has a value of the wrong type: " + e.Message, e); }
    }

    private static JsonElement Req(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) ? v : throw new FormatException($"the manifest has no \"{name}\"");

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}

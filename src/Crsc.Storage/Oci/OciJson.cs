using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Crsc.Storage.Oci;

/// <summary>One <c>history</c> entry of an image config.</summary>
public sealed record OciHistory(string Created, string CreatedBy, string Comment);

/// <summary>
/// What an image config says (OCI image spec, <c>config.md</c>): the platform, how a container of it runs
/// (<c>config</c>; null members are left out), the layers' uncompressed digests and their history.
/// </summary>
public sealed record OciImageConfig
{
    /// <summary>RFC 3339 (see <see cref="OciJson.Rfc3339"/>).</summary>
    public required string Created { get; init; }
    public required CheckpointImagePlatform Platform { get; init; }
    public IReadOnlyList<string>? Env { get; init; }
    public IReadOnlyList<string>? Entrypoint { get; init; }
    public IReadOnlyList<string>? Cmd { get; init; }
    public string? WorkingDir { get; init; }
    /// <summary>Written in this order (give them in ordinal order for a canonical document).</summary>
    public IReadOnlyList<KeyValuePair<string, string>>? Labels { get; init; }
    /// <summary>The uncompressed digest of each layer, bottom first.</summary>
    public required IReadOnlyList<string> DiffIds { get; init; }
    public IReadOnlyList<OciHistory> History { get; init; } = [];
}

/// <summary>
/// The JSON documents of the OCI image spec as crsc writes them: image configs, manifests and image indexes, every
/// member in a fixed order, no whitespace, maps in the order given. The same input gives the same bytes, hence the same
/// digest; checkpoint images (<see cref="CheckpointImageWriter"/>) and crsc's own image (<see cref="ContainerImageBuilder"/>)
/// are both written with it.
/// </summary>
public static class OciJson
{
    private static readonly JsonWriterOptions Options = new()
    {
        Indented = false,
        // '+' in media types stays '+'; still valid JSON that any parser reads, and what registries show
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static byte[] Config(OciImageConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("created", config.Created);
            w.WriteString("architecture", config.Platform.Architecture);
            w.WriteString("os", config.Platform.Os);
            w.WriteStartObject("config");
            if (config.Env is { } env) WriteStrings(w, "Env", env);
            if (config.Entrypoint is { } entrypoint) WriteStrings(w, "Entrypoint", entrypoint);
            if (config.Cmd is { } cmd) WriteStrings(w, "Cmd", cmd);
            if (config.WorkingDir is { } workingDir) w.WriteString("WorkingDir", workingDir);
            if (config.Labels is { } labels) WriteMap(w, "Labels", labels);
            w.WriteEndObject();
            w.WriteStartObject("rootfs");
            w.WriteString("type", "layers");
            WriteStrings(w, "diff_ids", config.DiffIds);
            w.WriteEndObject();
            w.WriteStartArray("history");
            foreach (var h in config.History)
            {
                w.WriteStartObject();
                w.WriteString("created", h.Created);
                w.WriteString("created_by", h.CreatedBy);
                w.WriteString("comment", h.Comment);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }

    /// <param name="annotations">the manifest's annotations; none (null or empty) leaves the member out</param>
    public static byte[] Manifest(OciDescriptor config, IReadOnlyList<OciDescriptor> layers,
        IReadOnlyList<KeyValuePair<string, string>>? annotations)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(layers);
        return Write(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("schemaVersion", 2);
            w.WriteString("mediaType", OciMediaTypes.ImageManifest);
            w.WritePropertyName("config");
            WriteDescriptor(w, config);
            w.WriteStartArray("layers");
            foreach (var layer in layers) WriteDescriptor(w, layer);
            w.WriteEndArray();
            if (annotations is { Count: > 0 }) WriteMap(w, "annotations", annotations);
            w.WriteEndObject();
        });
    }

    /// <summary>An image index (the <c>index.json</c> of an image layout) naming one manifest for one platform.</summary>
    public static byte[] Index(OciDescriptor manifest, CheckpointImagePlatform platform, IReadOnlyList<KeyValuePair<string, string>> annotations)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(platform);
        return Write(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("schemaVersion", 2);
            w.WriteString("mediaType", OciMediaTypes.ImageIndex);
            w.WriteStartArray("manifests");
            w.WriteStartObject();
            WriteDescriptorMembers(w, manifest);
            WriteMap(w, "annotations", annotations);
            w.WriteStartObject("platform");
            w.WriteString("architecture", platform.Architecture);
            w.WriteString("os", platform.Os);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }

    /// <summary>RFC 3339 in UTC with the fraction only when there is one (<c>2026-01-01T01:02:03.5Z</c>).</summary>
    public static string Rfc3339(DateTimeOffset t) =>
        t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);

    private static byte[] Write(Action<Utf8JsonWriter> write)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, Options)) write(w);
        return buffer.ToArray();
    }

    private static void WriteDescriptor(Utf8JsonWriter w, OciDescriptor d)
    {
        w.WriteStartObject();
        WriteDescriptorMembers(w, d);
        w.WriteEndObject();
    }

    private static void WriteDescriptorMembers(Utf8JsonWriter w, OciDescriptor d)
    {
        w.WriteString("mediaType", d.MediaType);
        w.WriteString("digest", d.Digest);
        w.WriteNumber("size", d.Size);
    }

    private static void WriteMap(Utf8JsonWriter w, string name, IReadOnlyList<KeyValuePair<string, string>> map)
    {
        w.WriteStartObject(name);
        foreach (var (k, v) in map) w.WriteString(k, v);
        w.WriteEndObject();
    }

    private static void WriteStrings(Utf8JsonWriter w, string name, IReadOnlyList<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }
}

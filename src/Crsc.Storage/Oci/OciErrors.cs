using System.Text.Encodings.Web;
using System.Text.Json;

namespace Crsc.Storage.Oci;

/// <summary>An error of the OCI distribution API: HTTP status, the spec's error code, a message naming the bad value.</summary>
public sealed record OciError(int StatusCode, string Code, string Message)
{
    public static OciError NameInvalid(string name) => new(400, "NAME_INVALID", $"invalid repository name '{Clip(name)}'");
    public static OciError NameUnknown(string name) => new(404, "NAME_UNKNOWN", $"repository '{Clip(name)}' is not known to this endpoint");
    public static OciError ManifestUnknown(string name, string reference, string? why = null) =>
        new(404, "MANIFEST_UNKNOWN", $"manifest '{Clip(reference)}' is not in repository '{Clip(name)}'" + (why is null ? "" : ": " + why));
    public static OciError BlobUnknown(string name, string digest) => new(404, "BLOB_UNKNOWN", $"blob '{Clip(digest)}' is not in repository '{Clip(name)}'");
    public static OciError DigestInvalid(string digest) =>
        new(400, "DIGEST_INVALID", $"'{Clip(digest)}' is not a valid digest (expected sha256: and 64 lower-case hex digits)");
    public static OciError Unsupported(string method) => new(405, "UNSUPPORTED", $"{Clip(method)} is not supported: this endpoint is read-only (GET and HEAD)");
    public static OciError NotFound(string path) => new(404, "NOT_FOUND", $"'{Clip(path)}' is not a path of the OCI distribution API");
    public static OciError Unauthorized(string message) => new(401, "UNAUTHORIZED", message);
    public static OciError Denied(string message) => new(403, "DENIED", message);
    /// <summary>The checkpoint exists but this node does not vouch for it (its manifest MAC): <paramref name="problem"/> names the failed check.</summary>
    public static OciError NotAuthentic(string name, string reference, string problem) =>
        new(403, "DENIED", $"'{Clip(reference)}' of repository '{Clip(name)}' is not served: {problem}");
    public static OciError BlobCorrupt(string digest) => new(500, "BLOB_UNKNOWN", $"blob '{digest}' is corrupt on this node and is not served");

    /// <summary>The spec's error body: <c>{"errors":[{"code":…,"message":…}]}</c>.</summary>
    public byte[] ToJson()
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteStartArray("errors");
            w.WriteStartObject();
            w.WriteString("code", Code);
            w.WriteString("message", Message);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    // a hostile request must not make the answer (or the log) large
    private static string Clip(string s) => s.Length <= 300 ? s : s[..300] + "…";
}

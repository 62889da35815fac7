using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Crsc.Controllers.Nodes;
using Microsoft.Extensions.Logging;

namespace Crsc.Storage;

/// <summary>
/// Publishes the node state for pods (<c>crsc run</c> reads it to tell "node going away" from an ordinary stop) as
/// <c>&lt;directory&gt;/state.json</c>, mode 0644, replaced whole on every change and at start: temp file → fsync →
/// rename → fsync(dir), so a reader sees the old file or the new one, never a part. The directory is created 0755 when
/// it is missing, and never chmod'ed when it exists. The contract (fixed; <c>crsc run</c> depends on it):
/// <code>
/// {"node":"&lt;name&gt;","goingAway":true|false,"reason":"Shutdown|Drain|Taint|Eviction"|null,
///  "detail":"…"|null,"since":"RFC3339"|null,"updated":"RFC3339"}
/// </code>
/// </summary>
public sealed partial class NodeStatePublisher(string directory, string nodeName, ILogger logger)
{
    public const string FileName = "state.json";

    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    private const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private readonly Lock _gate = new();

    public string Path { get; } = System.IO.Path.Combine(directory, FileName);

    /// <summary>Writes <paramref name="state"/>; a failure is logged (and returned false), never thrown: pods then read the last file.</summary>
    public bool Publish(NodeAwayState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        lock (_gate)
        {
            try
            {
                EnsureDirectory();
                Write(Serialize(nodeName, state));
                return true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log.Failed(logger, e, Path, e.Message);
                return false;
            }
        }
    }

    /// <summary>The file's bytes for <paramref name="state"/>: the contract's fields in its order, nulls written.</summary>
    public static byte[] Serialize(string node, NodeAwayState state)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("node", node);
            w.WriteBoolean("goingAway", state.GoingAway);
            if (state.GoingAway && state.Reason is { } reason) w.WriteString("reason", reason.ToString());
            else w.WriteNull("reason");
            if (state.GoingAway && state.Detail is { } detail) w.WriteString("detail", detail);
            else w.WriteNull("detail");
            if (state.GoingAway && state.Since is { } since) w.WriteString("since", Rfc3339(since));
            else w.WriteNull("since");
            w.WriteString("updated", Rfc3339(state.Updated));
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    private static string Rfc3339(DateTimeOffset t) => Crsc.Api.Kubernetes.KubeTime.FormatTime(t);

    private void EnsureDirectory()
    {
        if (Directory.Exists(directory)) return; // as the operator made it: never chmod'ed
        Directory.CreateDirectory(directory, DirectoryMode);
        File.SetUnixFileMode(directory, DirectoryMode); // the umask does not decide what pods can read
    }

    private void Write(byte[] content) => AtomicFile.Write(Path, content, FileMode);

    private static partial class Log
    {
        [LoggerMessage(50601, LogLevel.Warning, "Could not publish the node state to {Path}: {Reason}")]
        public static partial void Failed(ILogger logger, Exception e, string path, string reason);
    }
}

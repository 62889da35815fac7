using System.Text.Json;
using Crsc.Controllers.Autonomy;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Crsc.Storage.Autonomy;

/// <summary>
/// <c>&lt;stateDir&gt;/node/state.json</c> (0600 in a 0700 directory), written atomically (temp → fsync → rename →
/// fsync dir). A file with an unknown format version (a newer crsc's), or one that cannot be read as a node state,
/// is refused with a log line: the daemon starts without it and the next save replaces it.
/// </summary>
public sealed partial class NodeStateFile : INodeStateFile
{
    public const string FileName = "state.json";

    private readonly string _dir;
    private readonly ILogger _logger;

    public NodeStateFile(string directory, ILogger<NodeStateFile>? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        _dir = directory;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    public string Path => System.IO.Path.Combine(_dir, FileName);

    public NodeState? Load()
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(Path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Refused(_logger, Path, "cannot be read: " + e.Message);
            return null;
        }
        try
        {
            using (var doc = JsonDocument.Parse(bytes))
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object
                    || !doc.RootElement.TryGetProperty("formatVersion", out var version) || version.ValueKind != JsonValueKind.Number)
                {
                    Log.Refused(_logger, Path, "has no formatVersion");
                    return null;
                }
                if (!version.TryGetInt32(out var v) || v != NodeState.CurrentFormatVersion)
                {
                    Log.Refused(_logger, Path, $"has format version {version.GetRawText()}; this crsc reads version {NodeState.CurrentFormatVersion}");
                    return null;
                }
            }
            var state = JsonSerializer.Deserialize(bytes, AutonomyJsonContext.Default.NodeState);
            if (state is null || string.IsNullOrEmpty(state.Node))
            {
                Log.Refused(_logger, Path, "names no node");
                return null;
            }
            return state;
        }
        catch (JsonException e)
        {
            Log.Refused(_logger, Path, "is corrupt: " + e.Message);
            return null;
        }
    }

    public void Save(NodeState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        AtomicFile.EnsureDirectory(_dir);
        AtomicFile.Write(Path, JsonSerializer.SerializeToUtf8Bytes(state, AutonomyJsonContext.Default.NodeState));
    }

    private static partial class Log
    {
        [LoggerMessage(50001, LogLevel.Error, "Node state {Path} {Problem}; starting without it (it is replaced at the next save)")]
        public static partial void Refused(ILogger logger, string path, string problem);
    }
}

using System.Text.Json;

namespace Crsc.Run;

/// <summary>
/// The node agent's state file, as fixed with the lead:
/// <c>{"node":"…","goingAway":true|false,"reason":"Shutdown|Drain|Taint|Eviction"|null,"detail":…,"since":…,"updated":"RFC3339"}</c>.
/// </summary>
internal sealed record NodeState(string? Node, bool GoingAway, string? Reason, string? Detail);

/// <summary>What the SIGTERM means: checkpoint (the node is going away) or stop, and why, in words for the log.</summary>
internal sealed record NodeStateVerdict(bool Checkpoint, NodeState? State, string Why);

internal static class NodeStateReader
{
    private const int MaxBytes = 1 << 20;

    public static NodeStateVerdict Read(string path)
    {
        byte[] bytes;
        try
        {
            using var f = File.OpenRead(path);
            if (f.Length > MaxBytes) return new(false, null, $"node-state file {path} is larger than 1 MiB");
            bytes = new byte[f.Length];
            f.ReadExactly(bytes);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return new(false, null, $"node-state file {path} does not exist (is the node's /run/crsc/node-state mounted into the pod?)");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new(false, null, $"node-state file {path} cannot be read: {e.Message}");
        }
        NodeState state;
        try { state = Parse(bytes); }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return new(false, null, $"node-state file {path} is not the node agent's JSON: {e.Message}");
        }
        return state.GoingAway
            ? new(true, state, $"node {state.Node ?? "?"} is going away (reason {state.Reason ?? "unknown"}{(state.Detail is null ? "" : ": " + state.Detail)})")
            : new(false, state, $"node {state.Node ?? "?"} is not going away (node-state file {path})");
    }

    public static NodeState Parse(ReadOnlySpan<byte> json)
    {
        using var doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new JsonException("the top level is not an object");
        if (!root.TryGetProperty("goingAway", out var g) || g.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            throw new JsonException("\"goingAway\" is missing or not true/false");
        return new NodeState(Text(root, "node"), g.GetBoolean(), Text(root, "reason"), Text(root, "detail"));
    }

    private static string? Text(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Null => null,
            _ => v.GetRawText(),
        } : null;
}

using System.Text.Json.Nodes;

namespace Crsc.Testing.Kube;

/// <summary>The patch formats the fake API server applies to stored JSON.</summary>
public static class JsonPatches
{
    /// <summary>RFC 7386 JSON merge patch: objects merge, null deletes, anything else (arrays too) replaces.</summary>
    public static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject) return patch?.DeepClone();
        var result = target as JsonObject ?? new JsonObject();
        foreach (var (key, value) in patchObject)
        {
            if (value is null) result.Remove(key);
            else
            {
                var merged = MergePatch(result[key]?.DeepClone(), value);
                result[key] = merged;
            }
        }
        return result;
    }

    /// <summary>
    /// An approximation of a strategic merge patch: like <see cref="MergePatch"/>, except that lists whose patch
    /// elements are all objects with a merge key (<c>name</c>, else <c>type</c> for conditions, <c>mountPath</c> for
    /// volume mounts, <c>containerPort</c> for ports) merge element by element on that key, and
    /// <c>{"$patch":"delete", key: …}</c> removes an element. Other strategic directives are not supported.
    /// </summary>
    public static JsonNode? StrategicMergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is JsonArray patchArray && target is JsonArray targetArray && MergeKey(patchArray) is { } key)
        {
            var result = new JsonArray(targetArray.Select(n => n?.DeepClone()).ToArray());
            foreach (var element in patchArray.OfType<JsonObject>())
            {
                var id = element[key]?.ToJsonString();
                var existing = result.OfType<JsonObject>().FirstOrDefault(o => o[key]?.ToJsonString() == id);
                var delete = element["$patch"]?.GetValue<string>() == "delete";
                if (delete) { if (existing is not null) result.Remove(existing); continue; }
                if (existing is null) result.Add(element.DeepClone());
                else
                {
                    var index = result.IndexOf(existing);
                    result[index] = StrategicMergePatch(existing.DeepClone(), element);
                }
            }
            return result;
        }
        if (patch is not JsonObject patchObject) return patch?.DeepClone();
        var obj = target as JsonObject ?? new JsonObject();
        foreach (var (k, value) in patchObject)
        {
            if (value is null) obj.Remove(k);
            else obj[k] = StrategicMergePatch(obj[k]?.DeepClone(), value);
        }
        return obj;
    }

    private static string? MergeKey(JsonArray patch)
    {
        if (patch.Count == 0 || !patch.All(n => n is JsonObject)) return null;
        foreach (var key in new[] { "name", "type", "mountPath", "containerPort" })
            if (patch.All(n => ((JsonObject)n!).ContainsKey(key))) return key;
        return null;
    }

    /// <summary>RFC 6902 JSON patch: add, remove, replace, move, copy, test.</summary>
    /// <exception cref="InvalidOperationException">an operation failed (the server answers 422)</exception>
    /// <exception cref="FormatException">the patch is malformed (400)</exception>
    public static JsonNode ApplyJsonPatch(JsonNode document, JsonArray operations)
    {
        var root = new JsonObject { ["doc"] = document.DeepClone() };
        foreach (var node in operations)
        {
            if (node is not JsonObject op) throw new FormatException("a JSON patch operation must be an object");
            var kind = op["op"]?.GetValue<string>() ?? throw new FormatException("a JSON patch operation needs 'op'");
            var path = op["path"]?.GetValue<string>() ?? throw new FormatException("a JSON patch operation needs 'path'");
            switch (kind)
            {
                case "add": Add(root, path, Required(op, "value")); break;
                case "remove": Remove(root, path); break;
                case "replace": Remove(root, path); Add(root, path, Required(op, "value")); break;
                case "move":
                {
                    var from = op["from"]?.GetValue<string>() ?? throw new FormatException("'move' needs 'from'");
                    var value = Get(root, from);
                    Remove(root, from);
                    Add(root, path, value);
                    break;
                }
                case "copy":
                {
                    var from = op["from"]?.GetValue<string>() ?? throw new FormatException("'copy' needs 'from'");
                    Add(root, path, Get(root, from));
                    break;
                }
                case "test":
                    if (!JsonNode.DeepEquals(Get(root, path), op["value"]))
                        throw new InvalidOperationException($"the test at '{path}' failed");
                    break;
                default: throw new FormatException($"unknown JSON patch operation '{kind}'");
            }
        }
        return root["doc"]!;
    }

    private static JsonNode? Required(JsonObject op, string name)
        => op.ContainsKey(name) ? op[name]?.DeepClone() : throw new FormatException($"'{op["op"]}' needs '{name}'");

    private static List<string> Tokens(string pointer)
    {
        if (pointer.Length == 0) return ["doc"];
        if (pointer[0] != '/') throw new FormatException($"'{pointer}' is not a JSON pointer");
        return ["doc", .. pointer[1..].Split('/').Select(t => t.Replace("~1", "/").Replace("~0", "~"))];
    }

    private static (JsonNode Parent, string Token) Parent(JsonObject root, string pointer)
    {
        var tokens = Tokens(pointer);
        JsonNode? node = root;
        foreach (var t in tokens.Take(tokens.Count - 1)) node = Child(node, t, pointer);
        return (node ?? throw new InvalidOperationException($"'{pointer}' does not exist"), tokens[^1]);
    }

    private static JsonNode? Child(JsonNode? node, string token, string pointer) => node switch
    {
        JsonObject o when o.ContainsKey(token) => o[token],
        JsonArray a when int.TryParse(token, out var i) && i >= 0 && i < a.Count => a[i],
        _ => throw new InvalidOperationException($"'{pointer}' does not exist"),
    };

    private static JsonNode? Get(JsonObject root, string pointer)
    {
        var (parent, token) = Parent(root, pointer);
        return Child(parent, token, pointer)?.DeepClone();
    }

    private static void Add(JsonObject root, string pointer, JsonNode? value)
    {
        var (parent, token) = Parent(root, pointer);
        switch (parent)
        {
            case JsonObject o: o[token] = value; break;
            case JsonArray a when token == "-": a.Add(value); break;
            case JsonArray a when int.TryParse(token, out var i) && i >= 0 && i <= a.Count: a.Insert(i, value); break;
            default: throw new InvalidOperationException($"cannot add at '{pointer}'");
        }
    }

    private static void Remove(JsonObject root, string pointer)
    {
        var (parent, token) = Parent(root, pointer);
        switch (parent)
        {
            case JsonObject o when o.ContainsKey(token): o.Remove(token); break;
            case JsonArray a when int.TryParse(token, out var i) && i >= 0 && i < a.Count: a.RemoveAt(i); break;
            default: throw new InvalidOperationException($"'{pointer}' does not exist");
        }
    }
}

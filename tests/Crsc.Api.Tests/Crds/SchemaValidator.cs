using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Crsc.Api.Tests.Crds;

/// <summary>
/// Validates a JSON value against a structural schema node the way the API server's OpenAPI validation
/// does for the keywords crsc's schemas use (type, format date-time, enum, pattern, lengths, bounds,
/// required, items) — without CEL. Unknown fields are reported (the API server would prune them
/// silently, which for crsc's own objects means C# and schema disagree).
/// </summary>
public static class SchemaValidator
{
    public static IReadOnlyList<string> Validate(JsonNode? value, JsonObject schema, string path = "")
    {
        var errors = new List<string>();
        Walk(value, schema, path, errors);
        return errors;
    }

    private static void Walk(JsonNode? value, JsonObject schema, string path, List<string> errors)
    {
        var type = StructuralSchemaChecker.Str(schema, "type");
        if (value is null)
        {
            errors.Add($"{path}: null is not allowed (nullable is not used)");
            return;
        }
        if (type is not null && !StructuralSchemaChecker.MatchesType(value, type))
        {
            errors.Add($"{path}: {value.ToJsonString()} is not of type {type}");
            return;
        }
        if (schema["enum"] is JsonArray values && !values.Any(v => JsonNode.DeepEquals(v, value)))
            errors.Add($"{path}: {value.ToJsonString()} is not one of {values.ToJsonString()}");

        switch (type)
        {
            case "string":
                var s = value.GetValue<string>();
                var length = s.EnumerateRunes().Count(); // the API server counts characters (runes), not UTF-16 units
                if (StructuralSchemaChecker.Number(schema["maxLength"]) is { } max && length > max) errors.Add($"{path}: longer than {max}");
                if (StructuralSchemaChecker.Number(schema["minLength"]) is { } min && length < min) errors.Add($"{path}: shorter than {min}");
                // RE2's $ is the end of the text; .NET's also matches before a final newline.
                if (StructuralSchemaChecker.Str(schema, "pattern") is { } pattern
                    && (!Regex.IsMatch(s, pattern, RegexOptions.CultureInvariant) || (s.EndsWith('\n') && pattern.EndsWith('$'))))
                    errors.Add($"{path}: '{s}' does not match {pattern}");
                if (StructuralSchemaChecker.Str(schema, "format") == "date-time"
                    && !Regex.IsMatch(s, @"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"))
                    errors.Add($"{path}: '{s}' is not an RFC 3339 date-time");
                break;
            case "integer" or "number":
                var d = StructuralSchemaChecker.Number(value)!.Value;
                if (StructuralSchemaChecker.Number(schema["minimum"]) is { } lo && d < lo) errors.Add($"{path}: {d} < minimum {lo}");
                if (StructuralSchemaChecker.Number(schema["maximum"]) is { } hi && d > hi) errors.Add($"{path}: {d} > maximum {hi}");
                if (StructuralSchemaChecker.Str(schema, "format") == "int32" && (d < int.MinValue || d > int.MaxValue)) errors.Add($"{path}: {d} is not an int32");
                break;
            case "array":
                var arr = (JsonArray)value;
                if (StructuralSchemaChecker.Number(schema["maxItems"]) is { } mi && arr.Count > mi) errors.Add($"{path}: more than {mi} items");
                if (StructuralSchemaChecker.Number(schema["minItems"]) is { } ni && arr.Count < ni) errors.Add($"{path}: fewer than {ni} items");
                if (schema["items"] is JsonObject items)
                    for (var i = 0; i < arr.Count; i++) Walk(arr[i], items, $"{path}[{i}]", errors);
                if (StructuralSchemaChecker.Str(schema, "x-kubernetes-list-type") == "set"
                    && arr.Select(a => a?.ToJsonString()).Distinct().Count() != arr.Count)
                    errors.Add($"{path}: duplicate items in a set");
                break;
            case "object":
                var obj = (JsonObject)value;
                var props = schema["properties"] as JsonObject;
                if (schema["required"] is JsonArray req)
                    foreach (var r in req)
                        if (!obj.ContainsKey((string)r!)) errors.Add($"{path}.{r}: required");
                foreach (var (k, v) in obj)
                {
                    if (props?[k] is JsonObject ps) Walk(v, ps, $"{path}.{k}".TrimStart('.'), errors);
                    else if (schema["additionalProperties"] is JsonObject aps) Walk(v, aps, $"{path}.{k}".TrimStart('.'), errors);
                    else if (!IsOpen(schema, path)) errors.Add($"{path}.{k}".TrimStart('.') + ": unknown field (would be pruned)");
                }
                break;
        }
    }

    // metadata is `type: object` without properties: the API server validates ObjectMeta itself.
    private static bool IsOpen(JsonObject schema, string path) =>
        schema["x-kubernetes-preserve-unknown-fields"] is JsonValue p && p.GetValueKind() == JsonValueKind.True
        || path is "metadata" || path.EndsWith(".metadata", StringComparison.Ordinal);
}

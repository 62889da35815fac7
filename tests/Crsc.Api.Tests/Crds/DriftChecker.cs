using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Crsc.Api.Kubernetes;

namespace Crsc.Api.Tests.Crds;

/// <summary>
/// Compares a C# type, through the source-generated <see cref="JsonTypeInfo"/> metadata (the same
/// metadata the serializer uses, so it sees JSON names, not C# names), with a CRD schema, recursively:
/// <list type="bullet">
/// <item>the same property names on both sides;</item>
/// <item>matching types (string, integer with int32/int64, boolean, date-time, arrays, objects) and,
///   for enums, the same set of values as the C# enum serializes to;</item>
/// <item>required in the schema ⇒ not nullable in C#; nullable in C# ⇒ not required in the schema;
///   not nullable and not required ⇒ the schema has a default equal to the C# default.</item>
/// </list>
/// </summary>
public static class DriftChecker
{
    public static IReadOnlyList<string> Compare(JsonTypeInfo typeInfo, JsonObject schema)
    {
        var errors = new List<string>();
        CompareObject(typeInfo, schema, "", errors);
        return errors;
    }

    private static void CompareObject(JsonTypeInfo info, JsonObject schema, string path, List<string> errors)
    {
        if (info.Kind != JsonTypeInfoKind.Object) { errors.Add($"{Show(path)}: C# {info.Type.Name} is not an object type"); return; }
        if (StructuralSchemaChecker.Str(schema, "type") != "object") { errors.Add($"{Show(path)}: schema is not type object"); return; }
        var props = schema["properties"] as JsonObject ?? [];
        var required = (schema["required"] as JsonArray)?.Select(r => (string)r!).ToHashSet() ?? [];
        var csharp = info.Properties.Where(p => p.Get is not null).ToDictionary(p => p.Name);

        foreach (var name in csharp.Keys.Except(props.Select(p => p.Key)))
            errors.Add($"{Show(path, name)}: in C# ({info.Type.Name}) but not in the schema");
        foreach (var name in props.Select(p => p.Key).Except(csharp.Keys))
            errors.Add($"{Show(path, name)}: in the schema but not in C# ({info.Type.Name})");

        object? defaults = null;
        if (info.CreateObject is not null) defaults = info.CreateObject();

        foreach (var (name, prop) in csharp)
        {
            if (props[name] is not JsonObject propSchema) continue;
            var p = Show(path, name);
            var nullable = IsNullable(prop);
            var isRequired = required.Contains(name);
            if (isRequired && nullable) errors.Add($"{p}: required in the schema but nullable in C#");
            if (!isRequired && !nullable && !(path.Length == 0 && name == "metadata"))
            {
                if (propSchema["default"] is not JsonNode schemaDefault)
                    errors.Add($"{p}: C# always writes it (not nullable) but the schema neither requires it nor gives a default");
                else if (defaults is not null)
                {
                    var csDefault = JsonSerializer.SerializeToNode(prop.Get!(defaults), info.Options.GetTypeInfo(prop.PropertyType));
                    if (!JsonNode.DeepEquals(csDefault, schemaDefault))
                        errors.Add($"{p}: C# default {csDefault?.ToJsonString()} differs from the schema default {schemaDefault.ToJsonString()}");
                }
            }
            if (path.Length == 0 && name == "metadata")
            {
                if (prop.PropertyType != typeof(ObjectMeta)) errors.Add($"{p}: must be ObjectMeta");
                continue;
            }
            CompareValue(prop.PropertyType, info.Options, propSchema, p, errors);
        }
    }

    private static void CompareValue(Type type, JsonSerializerOptions options, JsonObject schema, string path, List<string> errors)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        var schemaType = StructuralSchemaChecker.Str(schema, "type");
        var format = StructuralSchemaChecker.Str(schema, "format");
        void Expect(string expectedType, string? expectedFormat = null)
        {
            if (schemaType != expectedType) errors.Add($"{path}: C# {t.Name} needs type {expectedType}, schema has {schemaType}");
            else if (expectedFormat is not null && format != expectedFormat) errors.Add($"{path}: C# {t.Name} needs format {expectedFormat}, schema has {format ?? "none"}");
        }

        if (t == typeof(string)) Expect("string");
        else if (t == typeof(bool)) Expect("boolean");
        else if (t == typeof(int)) Expect("integer", "int32");
        else if (t == typeof(long)) Expect("integer", "int64");
        else if (t == typeof(DateTimeOffset)) Expect("string", "date-time");
        else if (t.IsEnum)
        {
            Expect("string");
            var typeInfo = options.GetTypeInfo(t);
            var csValues = Enum.GetValuesAsUnderlyingType(t).Cast<object>()
                .Select(v => JsonSerializer.Serialize(Enum.ToObject(t, v), typeInfo).Trim('"'))
                .Order(StringComparer.Ordinal).ToList();
            var schemaValues = (schema["enum"] as JsonArray)?.Select(v => (string?)v ?? "").Order(StringComparer.Ordinal).ToList() ?? [];
            if (!csValues.SequenceEqual(schemaValues))
                errors.Add($"{path}: C# enum {t.Name} is [{string.Join(", ", csValues)}], schema enum is [{string.Join(", ", schemaValues)}]");
        }
        else
        {
            var info = options.GetTypeInfo(t);
            switch (info.Kind)
            {
                case JsonTypeInfoKind.Enumerable:
                    Expect("array");
                    if (schemaType == "array" && schema["items"] is JsonObject items)
                        CompareValue(info.ElementType!, options, items, path + "[]", errors);
                    break;
                case JsonTypeInfoKind.Dictionary:
                    Expect("object");
                    if (schema["additionalProperties"] is JsonObject values)
                        CompareValue(info.ElementType!, options, values, path + "{}", errors);
                    else errors.Add($"{path}: C# dictionary needs additionalProperties in the schema");
                    break;
                case JsonTypeInfoKind.Object:
                    CompareObject(info, schema, path, errors);
                    break;
                default:
                    errors.Add($"{path}: no rule for C# type {t.Name}");
                    break;
            }
        }
    }

    private static bool IsNullable(JsonPropertyInfo prop) =>
        Nullable.GetUnderlyingType(prop.PropertyType) is not null || (!prop.PropertyType.IsValueType && prop.IsGetNullable);

    private static string Show(string path, string? name = null) =>
        name is null ? (path.Length == 0 ? "(root)" : path) : (path.Length == 0 ? name : $"{path}.{name}");
}

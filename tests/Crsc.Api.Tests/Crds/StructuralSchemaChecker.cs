using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Crsc.Api.Tests.Crds;

/// <summary>
/// What kube-apiserver checks when a CustomResourceDefinition is created (apiextensions.k8s.io/v1
/// validation and the structural-schema rules), as strictly as a test without an API server can, plus
/// a few house rules that make the schemas better than the minimum:
/// <list type="bullet">
/// <item>every property has a description (<c>kubectl explain</c>);</item>
/// <item>every string is bounded (maxLength, enum or date-time) and every array has maxItems, which keeps
///   CEL cost estimates far below the budget;</item>
/// <item>no allOf/anyOf/oneOf/not/nullable at all (the API server allows restricted forms; crsc needs none);</item>
/// <item>every CEL rule has a message;</item>
/// <item>every version has the status subresource.</item>
/// </list>
/// Returns the problems, each with the schema path; an empty list means the CRD passes.
/// </summary>
public static partial class StructuralSchemaChecker
{
    private static readonly HashSet<string> Types = ["object", "array", "string", "integer", "number", "boolean"];

    private static readonly HashSet<string> AllowedKeys =
    [
        "type", "format", "title", "description", "default", "maximum", "exclusiveMaximum", "minimum",
        "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems",
        "multipleOf", "enum", "maxProperties", "minProperties", "required", "items", "properties",
        "additionalProperties", "example", "externalDocs",
        "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "x-kubernetes-embedded-resource",
        "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-validations",
    ];

    // Formats kube-openapi's strfmt registry knows, and the numeric ones of OpenAPI.
    private static readonly Dictionary<string, string> Formats = new()
    {
        ["int32"] = "integer", ["int64"] = "integer", ["float"] = "number", ["double"] = "number",
        ["byte"] = "string", ["date"] = "string", ["date-time"] = "string", ["datetime"] = "string",
        ["duration"] = "string", ["password"] = "string", ["uri"] = "string", ["email"] = "string",
        ["hostname"] = "string", ["ipv4"] = "string", ["ipv6"] = "string", ["cidr"] = "string",
        ["mac"] = "string", ["uuid"] = "string", ["uuid3"] = "string", ["uuid4"] = "string", ["uuid5"] = "string",
        ["bsonobjectid"] = "string", ["hexcolor"] = "string", ["rgbcolor"] = "string",
    };

    private static readonly HashSet<string> PrinterColumnTypes = ["integer", "number", "string", "boolean", "date"];

    // ObjectMeta fields a printer column or CEL rule may name although the schema says only `type: object`.
    private static readonly HashSet<string> MetadataFields =
    [
        "name", "generateName", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
        "deletionTimestamp", "labels", "annotations", "ownerReferences", "finalizers",
    ];

    public static IReadOnlyList<string> Check(JsonObject crd)
    {
        var errors = new List<string>();
        void Err(string path, string message) => errors.Add($"{path}: {message}");

        if ((string?)crd["apiVersion"] != "apiextensions.k8s.io/v1") Err("apiVersion", "must be apiextensions.k8s.io/v1");
        if ((string?)crd["kind"] != "CustomResourceDefinition") Err("kind", "must be CustomResourceDefinition");
        var spec = crd["spec"] as JsonObject;
        if (spec is null) { Err("spec", "missing"); return errors; }

        var group = Str(spec, "group");
        var names = spec["names"] as JsonObject;
        if (group is null || !DnsSubdomain().IsMatch(group) || !group.Contains('.'))
            Err("spec.group", "must be a DNS subdomain with at least one dot");
        if (names is null) { Err("spec.names", "missing"); return errors; }
        var kind = Str(names, "kind");
        var plural = Str(names, "plural");
        if (kind is null || !PascalCase().IsMatch(kind)) Err("spec.names.kind", "must be PascalCase");
        if (plural is null || !DnsLabel().IsMatch(plural)) Err("spec.names.plural", "must be lower-case DNS label");
        if (Str(names, "singular") is { } singular && !DnsLabel().IsMatch(singular)) Err("spec.names.singular", "must be lower-case DNS label");
        if (Str(names, "listKind") is { } listKind && listKind != kind + "List") Err("spec.names.listKind", $"should be {kind}List");
        foreach (var (field, list) in new[] { ("shortNames", names["shortNames"]), ("categories", names["categories"]) })
            if (list is not null)
                foreach (var item in (JsonArray)list)
                    if (item is null || item.GetValueKind() != JsonValueKind.String || !DnsLabel().IsMatch((string)item!))
                        Err($"spec.names.{field}", $"'{item}' must be a lower-case DNS label");
        foreach (var key in names.Select(p => p.Key))
            if (key is not ("kind" or "listKind" or "plural" or "singular" or "shortNames" or "categories"))
                Err("spec.names." + key, "unknown field");
        if ((string?)crd["metadata"]?["name"] != $"{plural}.{group}")
            Err("metadata.name", $"must be {plural}.{group}");
        if (Str(spec, "scope") is not ("Namespaced" or "Cluster")) Err("spec.scope", "must be Namespaced or Cluster");
        if (spec["preserveUnknownFields"] is JsonValue p && p.GetValue<bool>()) Err("spec.preserveUnknownFields", "must not be true in v1");
        foreach (var key in spec.Select(x => x.Key))
            if (key is not ("group" or "names" or "scope" or "versions" or "conversion" or "preserveUnknownFields"))
                Err("spec." + key, "unknown field");

        if (spec["versions"] is not JsonArray versions || versions.Count == 0) { Err("spec.versions", "must list at least one version"); return errors; }
        var storage = 0;
        var seen = new HashSet<string>();
        for (var i = 0; i < versions.Count; i++)
        {
            var vp = $"spec.versions[{i}]";
            if (versions[i] is not JsonObject version) { Err(vp, "must be an object"); continue; }
            var name = Str(version, "name");
            if (name is null || !VersionName().IsMatch(name)) Err(vp + ".name", "must look like v1, v1alpha1, v2beta3");
            else if (!seen.Add(name)) Err(vp + ".name", "duplicate version");
            if (version["served"] is not JsonValue served || served.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False)) Err(vp + ".served", "required boolean");
            if (version["storage"] is JsonValue st && st.GetValueKind() == JsonValueKind.True) storage++;
            if (version["subresources"]?["status"] is not JsonObject) Err(vp + ".subresources.status", "every crsc CRD has the status subresource");
            var schema = version["schema"]?["openAPIV3Schema"] as JsonObject;
            if (schema is null) { Err(vp + ".schema.openAPIV3Schema", "missing"); continue; }
            CheckRoot(schema, vp + ".schema.openAPIV3Schema", Err);
            CheckPrinterColumns(version["additionalPrinterColumns"] as JsonArray, schema, vp + ".additionalPrinterColumns", Err);
        }
        if (storage != 1) Err("spec.versions", $"exactly one version must have storage: true (found {storage})");
        return errors;
    }

    private static void CheckRoot(JsonObject root, string path, Action<string, string> err)
    {
        if (Str(root, "type") != "object") err(path + ".type", "the root must be type: object");
        if (root["properties"] is not JsonObject props) { err(path, "root needs properties"); return; }
        foreach (var f in new[] { "apiVersion", "kind" })
            if (props[f] is JsonObject s && (Str(s, "type") != "string" || s.Count(k => k.Key != "description") != 1))
                err($"{path}.properties.{f}", "must be just type: string (plus a description)");
        if (props["metadata"] is JsonObject meta)
        {
            if (Str(meta, "type") != "object") err(path + ".properties.metadata", "must be type: object");
            foreach (var (k, _) in meta)
                if (k is not ("type" or "properties")) err($"{path}.properties.metadata.{k}", "metadata may only restrict name and generateName");
            if (meta["properties"] is JsonObject mp)
                foreach (var (k, v) in mp)
                {
                    if (k is not ("name" or "generateName")) err($"{path}.properties.metadata.properties.{k}", "metadata may only restrict name and generateName");
                    else if (v is not JsonObject vs || Str(vs, "type") != "string") err($"{path}.properties.metadata.properties.{k}", "must be type: string");
                }
        }
        foreach (var (k, _) in root)
            if (k is not ("type" or "description" or "properties" or "required" or "x-kubernetes-validations"))
                err($"{path}.{k}", "not allowed at the root");
        CheckNode(root, path, root, isRoot: true, err);
    }

    private static void CheckNode(JsonObject node, string path, JsonObject root, bool isRoot, Action<string, string> err)
    {
        foreach (var (key, _) in node)
            if (!AllowedKeys.Contains(key))
                err($"{path}.{key}", key is "$ref" or "$schema" or "definitions" or "dependencies" or "id" or "patternProperties"
                        or "readOnly" or "writeOnly" or "xml" or "deprecated" or "discriminator"
                    ? "forbidden in a structural schema"
                    : key is "allOf" or "anyOf" or "oneOf" or "not" or "nullable"
                        ? "not used by crsc (value validations that must repeat every field; use CEL)"
                        : "unknown schema keyword");

        var preserve = Bool(node, "x-kubernetes-preserve-unknown-fields");
        var intOrString = Bool(node, "x-kubernetes-int-or-string");
        var type = Str(node, "type");
        if (type is null)
        {
            if (!intOrString && !preserve) err(path, "every node needs a type (structural schema)");
        }
        else if (!Types.Contains(type)) err(path + ".type", $"'{type}' is not a type");
        if (intOrString && type is not null) err(path, "x-kubernetes-int-or-string must not have a type");
        if (Bool(node, "uniqueItems")) err(path + ".uniqueItems", "uniqueItems: true is forbidden (use x-kubernetes-list-type: set)");
        if (node["additionalProperties"] is JsonValue ap && ap.GetValueKind() == JsonValueKind.False)
            err(path + ".additionalProperties", "additionalProperties: false is forbidden (unknown fields are pruned anyway)");
        if (node.ContainsKey("description") && Str(node, "description") is null) err(path + ".description", "must be a string");
        if (!isRoot && !path.EndsWith(".items", StringComparison.Ordinal) && !path.EndsWith(".metadata", StringComparison.Ordinal)
            && string.IsNullOrWhiteSpace(Str(node, "description")) && !IsRootTypeMeta(path))
            err(path, "needs a description (kubectl explain shows it)");

        // Keywords that belong to one type only.
        void OnlyFor(string t, params string[] keys)
        {
            foreach (var k in keys)
                if (node.ContainsKey(k) && type != t && !(intOrString && t == "string"))
                    err($"{path}.{k}", $"only applies to type {t}");
        }
        OnlyFor("string", "maxLength", "minLength", "pattern");
        OnlyFor("array", "items", "maxItems", "minItems", "x-kubernetes-list-type", "x-kubernetes-list-map-keys");
        OnlyFor("object", "properties", "additionalProperties", "required", "maxProperties", "minProperties", "x-kubernetes-map-type");
        if ((node.ContainsKey("minimum") || node.ContainsKey("maximum") || node.ContainsKey("multipleOf")) && type is not ("integer" or "number"))
            err(path, "minimum/maximum/multipleOf only apply to numbers");
        CheckRange(node, path, "minLength", "maxLength", err);
        CheckRange(node, path, "minItems", "maxItems", err);
        CheckRange(node, path, "minimum", "maximum", err);

        if (Str(node, "format") is { } format)
        {
            if (!Formats.TryGetValue(format, out var ft)) err(path + ".format", $"unknown format '{format}'");
            else if (ft != type) err(path + ".format", $"format {format} needs type {ft}");
        }
        if (Str(node, "pattern") is { } pattern) CheckPattern(pattern, path + ".pattern", err);

        // Bounded values (house rule; keeps CEL cost estimation happy).
        if (type == "string" && !node.ContainsKey("maxLength") && !node.ContainsKey("enum")
            && Str(node, "format") is not ("date-time" or "date") && !IsRootTypeMeta(path))
            err(path, "strings need a maxLength (or an enum or a date-time format)");
        if (type == "array" && !node.ContainsKey("maxItems")) err(path, "arrays need maxItems");

        if (node["enum"] is JsonNode enumNode)
        {
            if (enumNode is not JsonArray values || values.Count == 0) err(path + ".enum", "must be a non-empty list");
            else
            {
                var distinct = new HashSet<string>();
                foreach (var v in values)
                {
                    if (!MatchesType(v, type)) err(path + ".enum", $"value {v?.ToJsonString() ?? "null"} is not of type {type}");
                    if (!distinct.Add(v?.ToJsonString() ?? "null")) err(path + ".enum", $"duplicate value {v?.ToJsonString()}");
                }
            }
        }

        switch (type)
        {
            case "object":
                var props = node["properties"] as JsonObject;
                var additional = node["additionalProperties"];
                if (node.ContainsKey("properties") && props is null) err(path + ".properties", "must be a map");
                if (props is not null && additional is not null)
                    err(path, "properties and additionalProperties are mutually exclusive");
                if (props is null && additional is null && !preserve && !path.EndsWith(".properties.metadata", StringComparison.Ordinal))
                    err(path, "object without properties, additionalProperties or x-kubernetes-preserve-unknown-fields: every field would be pruned");
                if (props is not null)
                    foreach (var (name, child) in props)
                    {
                        if (child is not JsonObject cs) { err($"{path}.properties.{name}", "must be a schema"); continue; }
                        if (isRoot && name == "metadata") continue; // checked in CheckRoot
                        CheckNode(cs, $"{path}.properties.{name}", root, isRoot: false, err);
                    }
                if (additional is JsonObject addSchema) CheckNode(addSchema, path + ".additionalProperties", root, isRoot: false, err);
                if (node["required"] is JsonNode reqNode)
                {
                    if (reqNode is not JsonArray req) err(path + ".required", "must be a list");
                    else
                    {
                        var distinct = new HashSet<string>();
                        foreach (var r in req)
                        {
                            var rn = r?.GetValueKind() == JsonValueKind.String ? (string)r! : null;
                            if (rn is null) { err(path + ".required", "entries must be strings"); continue; }
                            if (!distinct.Add(rn)) err(path + ".required", $"duplicate '{rn}'");
                            if (props is null || !props.ContainsKey(rn)) err(path + ".required", $"'{rn}' is not a property");
                            else if (props[rn]?["default"] is not null) err(path + ".required", $"'{rn}' is required and has a default: the default never applies");
                        }
                    }
                }
                if (Str(node, "x-kubernetes-map-type") is { } mapType && mapType is not ("granular" or "atomic"))
                    err(path + ".x-kubernetes-map-type", "must be granular or atomic");
                break;
            case "array":
                if (node["items"] is not JsonObject items) err(path + ".items", "arrays need a single items schema");
                else
                {
                    CheckNode(items, path + ".items", root, isRoot: false, err);
                    CheckListType(node, items, path, err);
                }
                break;
        }

        if (Bool(node, "x-kubernetes-embedded-resource") && (type != "object" || (node["properties"] is null && !preserve)))
            err(path, "x-kubernetes-embedded-resource needs type object and properties or x-kubernetes-preserve-unknown-fields");

        if (node.ContainsKey("default"))
        {
            if (path.Contains(".properties.metadata", StringComparison.Ordinal)) err(path + ".default", "no defaults inside metadata");
            foreach (var problem in SchemaValidator.Validate(node["default"], node, path + ".default"))
                err(path + ".default", "default does not validate: " + problem);
        }

        if (node["x-kubernetes-validations"] is JsonNode validations)
        {
            if (validations is not JsonArray rules || rules.Count == 0) err(path + ".x-kubernetes-validations", "must be a non-empty list");
            else
                for (var i = 0; i < rules.Count; i++)
                {
                    var rp = $"{path}.x-kubernetes-validations[{i}]";
                    if (rules[i] is not JsonObject rule) { err(rp, "must be an object"); continue; }
                    foreach (var (k, _) in rule)
                        if (k is not ("rule" or "message" or "messageExpression" or "reason" or "fieldPath" or "optionalOldSelf"))
                            err($"{rp}.{k}", "unknown field");
                    if (string.IsNullOrWhiteSpace(Str(rule, "message")) && Str(rule, "messageExpression") is null)
                        err(rp, "needs a message (house rule: users see it when the rule fails)");
                    if (Str(rule, "message") is { } m && (m.Contains('\n') || m.Trim() != m))
                        err(rp + ".message", "must be one line without surrounding blanks");
                    if (Str(rule, "reason") is { } reason && reason is not ("FieldValueInvalid" or "FieldValueForbidden" or "FieldValueRequired" or "FieldValueDuplicate"))
                        err(rp + ".reason", "must be FieldValueInvalid, FieldValueForbidden, FieldValueRequired or FieldValueDuplicate");
                    var text = Str(rule, "rule");
                    if (string.IsNullOrWhiteSpace(text)) { err(rp + ".rule", "missing"); continue; }
                    foreach (var problem in CelChecker.Check(text, node))
                        err(rp + ".rule", problem);
                }
        }
    }

    private static void CheckListType(JsonObject node, JsonObject items, string path, Action<string, string> err)
    {
        var listType = Str(node, "x-kubernetes-list-type");
        var keys = node["x-kubernetes-list-map-keys"] as JsonArray;
        if (listType is null)
        {
            if (keys is not null) err(path + ".x-kubernetes-list-map-keys", "only with x-kubernetes-list-type: map");
            return;
        }
        var itemType = Str(items, "type");
        switch (listType)
        {
            case "atomic":
                break;
            case "set":
                if (itemType is "object" or "array" or null) err(path, "list-type set needs scalar items");
                break;
            case "map":
                if (itemType != "object") { err(path, "list-type map needs object items"); break; }
                if (keys is null || keys.Count == 0) { err(path + ".x-kubernetes-list-map-keys", "list-type map needs keys"); break; }
                var required = (items["required"] as JsonArray)?.Select(r => (string?)r).ToHashSet() ?? [];
                foreach (var k in keys)
                {
                    var key = (string?)k ?? "";
                    if (items["properties"]?[key] is not JsonObject keySchema) { err(path + ".x-kubernetes-list-map-keys", $"'{key}' is not a property of the items"); continue; }
                    if (Str(keySchema, "type") is not ("string" or "integer" or "number" or "boolean")) err(path + ".x-kubernetes-list-map-keys", $"'{key}' must be a scalar");
                    if (!required.Contains(key) && keySchema["default"] is null) err(path + ".x-kubernetes-list-map-keys", $"'{key}' must be required or have a default");
                }
                break;
            default:
                err(path + ".x-kubernetes-list-type", "must be atomic, set or map");
                break;
        }
    }

    private static void CheckPrinterColumns(JsonArray? columns, JsonObject schema, string path, Action<string, string> err)
    {
        if (columns is null) return;
        var names = new HashSet<string>();
        for (var i = 0; i < columns.Count; i++)
        {
            var cp = $"{path}[{i}]";
            if (columns[i] is not JsonObject c) { err(cp, "must be an object"); continue; }
            var name = Str(c, "name");
            var type = Str(c, "type");
            var jsonPath = Str(c, "jsonPath");
            if (string.IsNullOrEmpty(name)) err(cp + ".name", "required");
            else if (!names.Add(name)) err(cp + ".name", $"duplicate column '{name}'");
            if (type is null || !PrinterColumnTypes.Contains(type)) err(cp + ".type", "must be integer, number, string, boolean or date");
            if (c["priority"] is JsonNode prio && (Number(prio) is not { } pv || pv < 0 || Math.Floor(pv) != pv)) err(cp + ".priority", "must be a non-negative integer");
            if (Str(c, "format") is { } f && !Formats.ContainsKey(f)) err(cp + ".format", $"unknown format '{f}'");
            foreach (var (k, _) in c)
                if (k is not ("name" or "type" or "jsonPath" or "description" or "priority" or "format")) err($"{cp}.{k}", "unknown field");
            if (jsonPath is null || !SimpleJsonPath().IsMatch(jsonPath)) { err(cp + ".jsonPath", $"'{jsonPath}' must be a simple path like .status.phase"); continue; }

            var segments = jsonPath[1..].Split('.');
            if (segments[0] == "metadata")
            {
                if (segments.Length != 2 || !MetadataFields.Contains(segments[1])) err(cp + ".jsonPath", $"'{jsonPath}' is not an ObjectMeta field");
                else if (type == "date" && segments[1] is not ("creationTimestamp" or "deletionTimestamp")) err(cp + ".type", "date column on a non-time field");
                continue;
            }
            var node = schema;
            foreach (var seg in segments)
            {
                node = node?["properties"]?[seg] as JsonObject;
                if (node is null) break;
            }
            if (node is null) { err(cp + ".jsonPath", $"'{jsonPath}' does not resolve to a schema field"); continue; }
            var fieldType = Str(node, "type");
            var expected = type switch
            {
                "date" => "string",
                _ => type,
            };
            if (fieldType != expected) err(cp + ".type", $"column type {type} but {jsonPath} is {fieldType}");
            if (type == "date" && Str(node, "format") != "date-time") err(cp + ".type", $"date column but {jsonPath} is not date-time");
        }
    }

    private static void CheckRange(JsonObject node, string path, string minKey, string maxKey, Action<string, string> err)
    {
        var min = Number(node[minKey]);
        var max = Number(node[maxKey]);
        if (node.ContainsKey(minKey) && min is null) err($"{path}.{minKey}", "must be a number");
        if (node.ContainsKey(maxKey) && max is null) err($"{path}.{maxKey}", "must be a number");
        if (min is not null && max is not null && min > max) err(path, $"{minKey} {min} > {maxKey} {max}");
        if (minKey is "minLength" or "minItems" && min < 0) err($"{path}.{minKey}", "must not be negative");
    }

    private static void CheckPattern(string pattern, string path, Action<string, string> err)
    {
        // The API server compiles patterns with Go's RE2: no lookaround, backreferences, atomic groups,
        // possessive quantifiers or conditionals.
        if (Re2Unsupported().IsMatch(pattern)) err(path, $"'{pattern}' uses a construct RE2 does not support");
        try { _ = new Regex(pattern, RegexOptions.CultureInvariant); }
        catch (ArgumentException e) { err(path, $"'{pattern}' does not compile: {e.Message}"); }
    }

    internal static bool MatchesType(JsonNode? value, string? type) => type switch
    {
        "string" => value?.GetValueKind() == JsonValueKind.String,
        "boolean" => value?.GetValueKind() is JsonValueKind.True or JsonValueKind.False,
        "integer" => value?.GetValueKind() == JsonValueKind.Number && IsInteger(value),
        "number" => value?.GetValueKind() == JsonValueKind.Number,
        "object" => value is JsonObject,
        "array" => value is JsonArray,
        _ => true,
    };

    private static bool IsInteger(JsonNode value) => Number(value) is { } d && Math.Floor(d) == d;

    /// <summary>A JSON number as a double, whatever CLR type the node was built from (YAML gives long, code int).</summary>
    internal static double? Number(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? JsonSerializer.Deserialize<double>(v.ToJsonString()) : null;

    private static bool IsRootTypeMeta(string path) =>
        path.EndsWith("openAPIV3Schema.properties.apiVersion", StringComparison.Ordinal)
        || path.EndsWith("openAPIV3Schema.properties.kind", StringComparison.Ordinal);

    internal static string? Str(JsonObject o, string key) =>
        o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    private static bool Bool(JsonObject o, string key) =>
        o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.True;

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex DnsSubdomain();

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex DnsLabel();

    [GeneratedRegex(@"^[A-Z][A-Za-z0-9]*$")]
    private static partial Regex PascalCase();

    [GeneratedRegex(@"^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$")]
    private static partial Regex VersionName();

    [GeneratedRegex(@"^(\.[A-Za-z_][A-Za-z0-9_]*)+$")]
    private static partial Regex SimpleJsonPath();

    [GeneratedRegex(@"\(\?[=!<>]|\(\?<[=!]|\\[1-9]|\\k<|[*+?}]\+|\(\?\(")]
    private static partial Regex Re2Unsupported();
}

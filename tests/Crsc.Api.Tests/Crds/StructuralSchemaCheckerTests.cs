using System.Text.Json.Nodes;

namespace Crsc.Api.Tests.Crds;

/// <summary>The checker catches what kube-apiserver would refuse; each case breaks a valid CRD one way.</summary>
public sealed class StructuralSchemaCheckerTests
{
    private static JsonObject Crd() => RepoFiles.LoadCrd("CheckpointSchedule");

    private static JsonObject Root(JsonObject crd) => (JsonObject)crd["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!;

    private static JsonObject Spec(JsonObject crd) => (JsonObject)Root(crd)["properties"]!["spec"]!;

    private static JsonObject Prop(JsonObject crd, string path)
    {
        JsonNode node = Root(crd);
        foreach (var s in path.Split('.')) node = node["properties"]![s]!;
        return (JsonObject)node;
    }

    public static TheoryData<string, Action<JsonObject>, string> Breakages => new()
    {
        { "missing type", c => Prop(c, "spec.interval").Remove("type"), "every node needs a type" },
        { "bad type", c => Prop(c, "spec.interval")["type"] = "str", "'str' is not a type" },
        { "missing items type", c => ((JsonObject)Prop(c, "spec.containers")["items"]!).Remove("type"), "spec.properties.containers.items: every node needs a type" },
        { "$ref", c => Prop(c, "spec.target")["$ref"] = "#/definitions/x", "$ref: forbidden" },
        { "definitions", c => Root(c)["definitions"] = new JsonObject(), "definitions" },
        { "typo keyword", c => Prop(c, "spec.target")["requried"] = new JsonArray("name"), "unknown schema keyword" },
        { "nullable", c => Prop(c, "spec.interval")["nullable"] = true, "nullable: not used" },
        { "oneOf", c => Spec(c)["oneOf"] = new JsonArray(new JsonObject { ["required"] = new JsonArray("interval") }), "oneOf: not used" },
        { "properties and additionalProperties", c => Prop(c, "spec.target")["additionalProperties"] = new JsonObject { ["type"] = "string", ["maxLength"] = 1 }, "mutually exclusive" },
        { "additionalProperties false", c => { var t = Prop(c, "spec.target"); t.Remove("properties"); t.Remove("required"); t["additionalProperties"] = false; }, "additionalProperties: false is forbidden" },
        { "empty object", c => { var t = Prop(c, "spec.target"); t.Remove("properties"); t.Remove("required"); }, "every field would be pruned" },
        { "uniqueItems", c => Prop(c, "spec.containers")["uniqueItems"] = true, "uniqueItems: true is forbidden" },
        { "enum of wrong type", c => Prop(c, "spec.target.kind")["enum"]!.AsArray().Add(3), "is not of type string" },
        { "duplicate enum", c => Prop(c, "spec.target.kind")["enum"]!.AsArray().Add("Pod"), "duplicate value" },
        { "required unknown", c => Spec(c)["required"]!.AsArray().Add("nope"), "'nope' is not a property" },
        { "required with default", c => Spec(c)["required"]!.AsArray().Add("suspend"), "has a default" },
        { "bad default", c => Prop(c, "spec.suspend")["default"] = "no", "default does not validate" },
        { "default breaking a rule", c => Prop(c, "spec.retention")["default"] = new JsonObject { ["keepLast"] = 0 }, "minimum" },
        { "metadata restricted", c => Prop(c, "metadata")["properties"] = new JsonObject { ["labels"] = new JsonObject { ["type"] = "object" } }, "metadata may only restrict name and generateName" },
        { "metadata default", c => Prop(c, "metadata")["default"] = new JsonObject(), "metadata may only restrict" },
        { "pattern does not compile", c => Prop(c, "spec.interval")["pattern"] = "^([0-9]+$", "does not compile" },
        { "pattern not RE2", c => Prop(c, "spec.interval")["pattern"] = "^(?!0)[0-9]+$", "RE2 does not support" },
        { "backreference", c => Prop(c, "spec.interval")["pattern"] = "^(a)\\1$", "RE2 does not support" },
        { "unknown format", c => Prop(c, "spec.interval")["format"] = "go-duration", "unknown format" },
        { "format of another type", c => Prop(c, "spec.interval")["format"] = "int64", "needs type integer" },
        { "maxLength on integer", c => Prop(c, "spec.retention.keepLast")["maxLength"] = 3, "only applies to type string" },
        { "min above max", c => Prop(c, "spec.retention.keepLast")["minimum"] = 5000, "minimum 5000 > maximum 1000" },
        { "unbounded string", c => Prop(c, "spec.interval").Remove("maxLength"), "strings need a maxLength" },
        { "unbounded array", c => Prop(c, "spec.containers").Remove("maxItems"), "arrays need maxItems" },
        { "no description", c => Prop(c, "spec.suspend").Remove("description"), "needs a description" },
        { "set of objects", c => Prop(c, "status.conditions")["x-kubernetes-list-type"] = "set", "set needs scalar items" },
        { "map key not required", c => ((JsonObject)Prop(c, "status.conditions")["items"]!)["required"]!.AsArray().RemoveAt(0), "must be required or have a default" },
        { "map without keys", c => Prop(c, "status.conditions").Remove("x-kubernetes-list-map-keys"), "list-type map needs keys" },
        { "bad list type", c => Prop(c, "spec.containers")["x-kubernetes-list-type"] = "bag", "must be atomic, set or map" },
        { "no status subresource", c => ((JsonObject)c["spec"]!["versions"]![0]!)["subresources"] = new JsonObject(), "status subresource" },
        { "two storage versions", c => c["spec"]!["versions"]!.AsArray().Add(c["spec"]!["versions"]![0]!.DeepClone()), "duplicate version" },
        { "wrong crd name", c => c["metadata"]!["name"] = "schedules.crsc.io", "must be checkpointschedules.crsc.io" },
        { "bad short name", c => c["spec"]!["names"]!["shortNames"]!.AsArray().Add("CKS"), "lower-case DNS label" },
        { "bad scope", c => c["spec"]!["scope"] = "Namespace", "must be Namespaced or Cluster" },
        { "column to nowhere", c => c["spec"]!["versions"]![0]!["additionalPrinterColumns"]![0]!["jsonPath"] = ".spec.target.knd", "does not resolve" },
        { "column type mismatch", c => c["spec"]!["versions"]![0]!["additionalPrinterColumns"]![0]!["type"] = "integer", "column type integer but .spec.target.kind is string" },
        { "date column on string", c => c["spec"]!["versions"]![0]!["additionalPrinterColumns"]![0]!["type"] = "date", "not date-time" },
        { "column bad metadata", c => c["spec"]!["versions"]![0]!["additionalPrinterColumns"]![0]!["jsonPath"] = ".metadata.age", "not an ObjectMeta field" },
        { "column complex path", c => c["spec"]!["versions"]![0]!["additionalPrinterColumns"]![0]!["jsonPath"] = ".status.conditions[?(@.type==\"Ready\")].status", "simple path" },
        { "cel unbalanced", c => Rule(c, "has(self.interval != has(self.cron)"), "never closed" },
        { "cel unclosed string", c => Rule(c, "self.cron == 'x"), "not closed" },
        { "cel unknown field", c => Rule(c, "has(self.intervall) != has(self.cron)"), "has no field 'intervall'" },
        { "cel unknown identifier", c => Rule(c, "interval != cron"), "unknown identifier 'interval'" },
        { "cel unknown function", c => Rule(c, "hass(self.interval)"), "unknown function 'hass'" },
        { "cel assignment", c => Rule(c, "self.suspend = true"), "unexpected character '='" },
        { "cel dangling operator", c => Rule(c, "has(self.interval) &&"), "ends with '&&'" },
        { "cel operand pair", c => Rule(c, "self.suspend true"), "followed by 'true'" },
        { "cel string method on bool", c => Rule(c, "self.suspend.matches('x')"), "needs a string" },
        { "cel field of a string", c => Rule(c, "self.interval.seconds > 0"), "is not an object" },
        { "cel without message", c => ((JsonObject)Spec(c)["x-kubernetes-validations"]![0]!).Remove("message"), "needs a message" },
        { "cel bad reason", c => Spec(c)["x-kubernetes-validations"]![0]!["reason"] = "Invalid", "must be FieldValueInvalid" },
    };

    private static void Rule(JsonObject crd, string rule) => Spec(crd)["x-kubernetes-validations"]![0]!["rule"] = rule;

    [Theory]
    [MemberData(nameof(Breakages))]
    public void Catches(string what, Action<JsonObject> breakIt, string expected)
    {
        var crd = Crd();
        Assert.Empty(StructuralSchemaChecker.Check(crd));
        breakIt(crd);
        var errors = StructuralSchemaChecker.Check(crd);
        Assert.True(errors.Any(e => e.Contains(expected, StringComparison.Ordinal)),
            $"{what}: expected an error containing '{expected}', got:\n{string.Join("\n", errors)}");
    }

    [Theory]
    [InlineData("self == oldSelf")]
    [InlineData("has(self.interval) != has(self.cron)")]
    [InlineData("!has(self.containers) || self.containers.all(c, c.size() <= 63 && c.matches(r'^[a-z]\\w*$'))")]
    [InlineData("self.target.kind in ['Deployment', \"Pod\"] ? size(self.target.name) > 0 : true")]
    [InlineData("has(self.retention) && self.retention.keepLast >= 1 && duration(self.retention.maxAge) > duration('1s')")]
    [InlineData("self.containers.exists(x, x == 'app') || -1 < 0")]
    public void Accepts_valid_cel(string rule)
    {
        var spec = Spec(Crd());
        Assert.Empty(CelChecker.Check(rule, spec));
    }

    [Fact]
    public void Yaml_plain_scalars_that_yaml_1_1_reads_as_booleans_are_refused()
    {
        Assert.Throws<FormatException>(() => YamlTree.LoadSingle("enum: [yes, no]"));
        Assert.Equal("yes", (string?)YamlTree.LoadSingle("a: 'yes'")!["a"]);
        Assert.Equal(JsonValue.Create(5L).ToJsonString(), YamlTree.LoadSingle("a: 5")!["a"]!.ToJsonString());
        Assert.ThrowsAny<Exception>(() => YamlTree.LoadSingle("a: 1\na: 2"));
    }
}

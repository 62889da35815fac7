using System.Text.Json.Nodes;
using Crsc.Api.Crds;

namespace Crsc.Api.Tests.Crds;

/// <summary>The drift check fails when the YAML and the C# types part ways; each case edits the YAML one way.</summary>
public sealed class DriftCheckerTests
{
    private static JsonObject Schema() =>
        (JsonObject)RepoFiles.LoadCrd("ContainerCheckpointContent")["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!;

    private static JsonObject Prop(JsonObject schema, string path)
    {
        JsonNode node = schema;
        foreach (var s in path.Split('.')) node = node["properties"]![s]!;
        return (JsonObject)node;
    }

    public static TheoryData<string, Action<JsonObject>, string> Drifts => new()
    {
        { "field only in C#", s => Prop(s, "spec").AsObject()["properties"]!.AsObject().Remove("imageReference"), "spec.imageReference: in C#" },
        { "field only in YAML", s => Prop(s, "spec")["properties"]!["extra"] = new JsonObject { ["type"] = "string" }, "spec.extra: in the schema but not in C#" },
        { "renamed nested field", s => { var src = Prop(s, "spec.source")["properties"]!.AsObject(); var v = src["imageId"]!; src.Remove("imageId"); src["imageID"] = v; }, "spec.source.imageId: in C#" },
        { "type changed", s => Prop(s, "spec.sizeBytes")["type"] = "string", "spec.sizeBytes: C# Int64 needs type integer" },
        { "format changed", s => Prop(s, "spec.sizeBytes")["format"] = "int32", "needs format int64" },
        { "time without format", s => Prop(s, "status.conditions")["items"]!["properties"]!.AsObject()["lastTransitionTime"]!.AsObject().Remove("format"), "needs format date-time" },
        { "enum value missing", s => Prop(s, "spec.compression")["enum"] = new JsonArray("none"), "C# enum ArchiveCompression is [none, zstd]" },
        { "enum spelled differently", s => Prop(s, "spec.deletionPolicy")["enum"] = new JsonArray("Retain", "delete"), "C# enum DeletionPolicy" },
        { "nullable made required", s => Prop(s, "spec")["required"]!.AsArray().Add("imageReference"), "spec.imageReference: required in the schema but nullable in C#" },
        { "default removed", s => Prop(s, "spec.compression").Remove("default"), "spec.compression: C# always writes it" },
        { "default differs", s => Prop(s, "spec.deletionPolicy")["default"] = "Retain", "C# default \"Delete\" differs" },
        { "array became string", s => Prop(s, "status.conditions")["type"] = "string", "status.conditions: C# List`1 needs type array" },
    };

    [Theory]
    [MemberData(nameof(Drifts))]
    public void Catches(string what, Action<JsonObject> drift, string expected)
    {
        var schema = Schema();
        Assert.Empty(DriftChecker.Compare(CrscResources.ContainerCheckpointContents.Json, schema));
        drift(schema);
        var errors = DriftChecker.Compare(CrscResources.ContainerCheckpointContents.Json, schema);
        Assert.True(errors.Any(e => e.Contains(expected, StringComparison.Ordinal)),
            $"{what}: expected an error containing '{expected}', got:\n{string.Join("\n", errors)}");
    }
}

using System.Text.Json.Serialization;
using Crsc.Api.Kubernetes;

namespace Crsc.Controllers.Tests.Support;

/// <summary>A small namespaced kind for informer and controller tests (a pod-like object with a node name).</summary>
public sealed class TestObject : IKubernetesObject
{
    public string? ApiVersion { get; set; } = "test.crsc.io/v1";
    public string? Kind { get; set; } = "TestObject";
    public ObjectMeta Metadata { get; set; } = new();
    public TestSpec Spec { get; set; } = new();

    public static TestObject New(string ns, string name, string? node = null, string? value = null,
        Dictionary<string, string>? labels = null, List<OwnerReference>? owners = null)
        => new()
        {
            Metadata = new ObjectMeta { Namespace = ns, Name = name, Labels = labels, OwnerReferences = owners },
            Spec = new TestSpec { NodeName = node, Value = value },
        };
}

public sealed class TestSpec
{
    public string? NodeName { get; set; }
    public string? Value { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(TestObject))]
[JsonSerializable(typeof(KubeList<TestObject>))]
public sealed partial class TestJsonContext : JsonSerializerContext;

public static class TestResources
{
    public static readonly ResourceType<TestObject> TestObjects = new(
        "test.crsc.io", "v1", "testobjects", "TestObject", Namespaced: true,
        TestJsonContext.Default.TestObject, TestJsonContext.Default.KubeListTestObject);
}

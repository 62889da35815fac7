using System.Text.Json.Serialization.Metadata;

namespace Crsc.Api.Kubernetes;

/// <summary>
/// Where a kind lives in the API (group, version, plural, scope) and how it is (de)serialized without
/// reflection. The client builds its URLs from this; the fake API server stores objects by it.
/// </summary>
public sealed record ResourceType<T>(
    string Group,
    string Version,
    string Plural,
    string Kind,
    bool Namespaced,
    JsonTypeInfo<T> Json,
    JsonTypeInfo<KubeList<T>> ListJson) where T : class, IKubernetesObject
{
    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";
}
